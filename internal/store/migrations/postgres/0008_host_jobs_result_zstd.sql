-- Job results stored compressed (zstd): an install result of a real patch
-- set is 10-15 KB of JSON that compresses several times, and storing it
-- whole was most of what the one writer did with a burst of results.
-- New results go here, with result NULL; results stored before this
-- column stay in result and read as before.
ALTER TABLE host_jobs ADD COLUMN result_zstd BYTEA;

-- What a rollout step reads of a job result (the server's summary of it:
-- error, health, reboot, whether every package is as wanted), so that a
-- step reads a few bytes per result instead of the whole result, which
-- holds every package's versions and the log. NULL: the step reads the
-- result (results stored before this column).
ALTER TABLE host_jobs ADD COLUMN summary TEXT;

-- Detection results kept once per content: hosts with the same inventory
-- and the same apt configuration have the same list of updates, and a
-- fleet has far fewer distinct lists than hosts (the list of a Debian 12
-- host missing 130 updates is about 35 KB). host_updates names its list
-- by SHA-256; rows written before this version keep theirs inline in
-- host_updates.updates. Lists no host names any more are deleted by
-- PruneUpdateLists.

CREATE TABLE update_lists (
	hash    TEXT PRIMARY KEY,
	updates TEXT NOT NULL
);

ALTER TABLE host_updates ADD COLUMN updates_hash TEXT REFERENCES update_lists (hash);
CREATE INDEX host_updates_updates_hash ON host_updates (updates_hash);

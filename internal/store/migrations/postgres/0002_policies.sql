-- Patch baselines (package policy) kept as API objects: the YAML source
-- as the operator gave it, by name. version counts the changes of one
-- name (1 when created); priority orders the set a host's baseline is
-- chosen from (lowest first, then name).

CREATE TABLE policies (
	name       TEXT PRIMARY KEY,
	source     TEXT NOT NULL,
	priority   INTEGER NOT NULL DEFAULT 100,
	version    INTEGER NOT NULL DEFAULT 1,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	updated_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX policies_priority ON policies (priority, name);

-- Initial schema. Times are Unix milliseconds UTC, 0 meaning none; JSON
-- documents are text.

CREATE TABLE enroll_tokens (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL,
	labels      TEXT NOT NULL DEFAULT '{}',
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL DEFAULT 0,
	max_uses    INTEGER NOT NULL DEFAULT 0,
	uses        INTEGER NOT NULL DEFAULT 0,
	revoked_at  INTEGER NOT NULL DEFAULT 0,
	note        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE admin_tokens (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL,
	name        TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE inventories (
	hash       TEXT PRIMARY KEY,
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE hosts (
	id             TEXT PRIMARY KEY,
	machine_id     TEXT NOT NULL,
	hostname       TEXT NOT NULL DEFAULT '',
	labels         TEXT NOT NULL DEFAULT '{}',
	secret_hash    BLOB NOT NULL,
	enrolled_at    INTEGER NOT NULL,
	revoked_at     INTEGER NOT NULL DEFAULT 0,
	last_seen      INTEGER NOT NULL DEFAULT 0,
	facts          TEXT,
	inventory_hash TEXT REFERENCES inventories (hash),
	inventory_at   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX hosts_machine_id ON hosts (machine_id);
CREATE INDEX hosts_hostname ON hosts (hostname, id);
CREATE INDEX hosts_inventory_hash ON hosts (inventory_hash);

CREATE TABLE host_updates (
	host_id     TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
	computed_at INTEGER NOT NULL,
	basis       TEXT NOT NULL DEFAULT '',
	updates     TEXT,
	count       INTEGER NOT NULL DEFAULT 0,
	security    INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE jobs (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	params     TEXT,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_created_at ON jobs (created_at, id);

CREATE TABLE host_jobs (
	job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	host_id     TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
	state       TEXT NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	lease_until INTEGER NOT NULL DEFAULT 0,
	status      TEXT NOT NULL DEFAULT '',
	result      TEXT,
	finished_at INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (job_id, host_id)
);
CREATE INDEX host_jobs_host_state ON host_jobs (host_id, state, created_at, job_id);

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

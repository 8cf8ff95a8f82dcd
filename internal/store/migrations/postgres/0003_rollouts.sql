-- Rollouts (internal/rollout): the spec as the operator gave it, the patch
-- set frozen at creation, and the engine's State as JSON. version counts
-- the saved steps: a step is saved only over the version it was computed
-- from (optimistic concurrency between server replicas).

CREATE TABLE rollouts (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	spec       TEXT NOT NULL,
	patch_set  TEXT NOT NULL,
	set_hash   TEXT NOT NULL,
	state      TEXT NOT NULL,
	status     TEXT NOT NULL,
	version    INTEGER NOT NULL DEFAULT 1,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);
CREATE INDEX rollouts_created_at ON rollouts (created_at, id);
CREATE INDEX rollouts_status ON rollouts (status, id);

-- Every job a rollout queued, by its idempotency key: a key is queued at
-- most once, whatever replays or restarts happen.
CREATE TABLE rollout_jobs (
	key        TEXT PRIMARY KEY,
	rollout_id TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	job_id     TEXT NOT NULL,
	host_id    TEXT NOT NULL,
	ring       TEXT NOT NULL DEFAULT '',
	kind       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX rollout_jobs_job ON rollout_jobs (job_id);
CREATE INDEX rollout_jobs_rollout ON rollout_jobs (rollout_id, host_id);

-- Who did what when: the engine's audit lines and the server's own
-- (plans, manual rollbacks), in order per rollout.
CREATE TABLE rollout_audit (
	rollout_id TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	at         BIGINT NOT NULL,
	actor      TEXT NOT NULL,
	what       TEXT NOT NULL,
	ring       TEXT NOT NULL DEFAULT '',
	host       TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (rollout_id, seq)
);

-- Rollout state by parts. A rollout's row keeps the engine's state
-- without its hosts (status, rings, commands); each host's state is a row
-- of rollout_hosts, written only when it changes; a host's pins name a
-- list of rollout_pins, stored once per distinct list (hosts built from
-- one image share theirs). Before this version the whole state, every
-- host's pins inline, was one JSON document rewritten at every step: 650
-- MB at 100,000 hosts. Rows written before keep their hosts in
-- rollouts.state until the rollout's next step moves them here.
--
-- rollout_jobs.seen is how much of a job the engine has applied: 0
-- nothing, 1 that it was handed out, 2 its result (or the job is not one
-- the engine follows), so that a step reads only the jobs with news.
--
-- A job row may now serve many hosts of a rollout (hosts of one ring
-- with the same pins share an install job and its parameters), so a job
-- ID is unique per host, not alone.

CREATE TABLE rollout_hosts (
	rollout_id TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	idx        INTEGER NOT NULL,
	host_id    TEXT NOT NULL,
	pins       TEXT NOT NULL,
	phase      TEXT NOT NULL,
	state      TEXT NOT NULL,
	PRIMARY KEY (rollout_id, idx)
);

CREATE TABLE rollout_pins (
	rollout_id TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	hash       TEXT NOT NULL,
	pins       TEXT NOT NULL,
	PRIMARY KEY (rollout_id, hash)
);

ALTER TABLE rollout_jobs ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rollout_jobs_seen ON rollout_jobs (rollout_id, seen);
DROP INDEX rollout_jobs_job;
CREATE UNIQUE INDEX rollout_jobs_job_host ON rollout_jobs (job_id, host_id);

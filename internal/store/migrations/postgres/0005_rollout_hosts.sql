-- Rollout state by parts. A rollout's row keeps the engine's state
-- without its hosts (status, rings, commands); each host's state is a row
-- of rollout_hosts, written only when it changes; a host's pins name a
-- list of rollout_pins, stored once per distinct list (hosts built from
-- one image share theirs). Before this version the whole state, every
-- host's pins inline, was one JSON document rewritten at every step: 650
-- MB at 100,000 hosts. Rows written before keep their hosts in
-- rollouts.state until the rollout's next step moves them here.
--
-- rollout_jobs.news counts the changes of a job's state (handed out,
-- answered, taken back) and of its host's (revoked), by triggers, so that
-- every way a job changes is counted; rollout_jobs.seen is the count the
-- rollout's engine has applied. A step reads only the jobs with
-- news > seen (a partial index), not every job in flight.
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

ALTER TABLE rollout_jobs ADD COLUMN news INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollout_jobs ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
-- Jobs queued before this version: the engine reads each once more.
UPDATE rollout_jobs SET news = 1;
CREATE INDEX rollout_jobs_news ON rollout_jobs (rollout_id) WHERE news > seen;
CREATE INDEX rollout_jobs_host ON rollout_jobs (host_id);
DROP INDEX rollout_jobs_job;
CREATE UNIQUE INDEX rollout_jobs_job_host ON rollout_jobs (job_id, host_id);

CREATE FUNCTION rollout_job_news() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE rollout_jobs SET news = news + 1 WHERE job_id = NEW.job_id AND host_id = NEW.host_id;
	RETURN NULL;
END $$;
CREATE TRIGGER host_jobs_news AFTER UPDATE OF state ON host_jobs
	FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state) EXECUTE FUNCTION rollout_job_news();
CREATE FUNCTION rollout_host_revoked_news() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE rollout_jobs SET news = news + 1 WHERE host_id = NEW.id;
	RETURN NULL;
END $$;
CREATE TRIGGER hosts_revoked_news AFTER UPDATE OF revoked_at ON hosts
	FOR EACH ROW WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at) EXECUTE FUNCTION rollout_host_revoked_news();

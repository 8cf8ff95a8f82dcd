-- Queued jobs by the time they were queued, so that a server holding
-- agents' check-ins (long polls) finds, with one range read per second,
-- the jobs any replica has queued since it last looked (QueuedSince).
CREATE INDEX host_jobs_created ON host_jobs (created_at);

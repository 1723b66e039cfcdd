-- Each ingest job's log (crates/db/src/postgres/jobs.rs; the rules in
-- crates/catalog/src/jobs/mod.rs, `JobQueue::log`): a line for every change of the job's
-- message, stamped with this database's clock (`now()`); the newest 200 are kept per job.
-- A line is written in the transaction that changes the job's row (which it holds locked),
-- so a job's lines are in the order of its changes. A job's lines go with it.
CREATE TABLE ingest_job_log (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES ingest_jobs (id) ON DELETE CASCADE,
    at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    line   TEXT NOT NULL
);

CREATE INDEX ingest_job_log_by_job ON ingest_job_log (job_id, id);

-- Jobs from before the log start theirs with their latest message.
INSERT INTO ingest_job_log (job_id, at, line)
    SELECT id, updated_at, message FROM ingest_jobs ORDER BY id;

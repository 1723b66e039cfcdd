-- Each ingest job's log (crates/db/src/sqlite/jobs.rs; the rules in
-- crates/catalog/src/jobs/mod.rs, `JobQueue::log`): a line for every change of the job's
-- message, stamped with this database's clock (ms since the Unix epoch); the newest 200 are
-- kept per job. A job's lines go with it.
CREATE TABLE ingest_job_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES ingest_jobs (id) ON DELETE CASCADE,
    at_ms  INTEGER NOT NULL,
    line   TEXT NOT NULL
);

CREATE INDEX ingest_job_log_by_job ON ingest_job_log (job_id, id);

-- Jobs from before the log start theirs with their latest message.
INSERT INTO ingest_job_log (job_id, at_ms, line)
    SELECT id, updated_ms, message FROM ingest_jobs ORDER BY id;

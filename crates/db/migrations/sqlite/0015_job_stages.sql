-- Each job's stage as data beside its English message, on the job and on each line of its log
-- (`monsoon_catalog::Stage`, its JSON text: `{"name": "transcoding", "attempt": 1, …}`), so
-- the studio and the dashboard can say it in the operator's language. Rows from before keep
-- NULL and are shown by their message.
ALTER TABLE ingest_jobs ADD COLUMN stage TEXT;
ALTER TABLE ingest_job_log ADD COLUMN stage TEXT;

-- Ingest jobs, which `monsoon worker`s lease (crates/db/src/postgres/jobs.rs; the rules in
-- crates/catalog/src/jobs.rs). Lease times are this database's clock (`now()`), so workers on
-- machines whose clocks disagree still agree on whose lease has expired.
CREATE TABLE ingest_jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug             TEXT NOT NULL,
    -- The master's absolute path, the same on every worker (a shared mount).
    master           TEXT NOT NULL,
    film_toml        TEXT,
    -- The other ingest options (quality, ladder cap, subtitles), written by monsoon-ingest.
    options          JSONB NOT NULL,
    duration_s       DOUBLE PRECISION NOT NULL,
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts > 0),
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    percent          DOUBLE PRECISION NOT NULL DEFAULT 0,
    speed            DOUBLE PRECISION NOT NULL DEFAULT 0,
    message          TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    -- A running job, and only a running one, has a lease.
    CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- What a claim scans: the jobs not over, oldest first.
CREATE INDEX ingest_jobs_open ON ingest_jobs (id) WHERE state IN ('queued', 'running');

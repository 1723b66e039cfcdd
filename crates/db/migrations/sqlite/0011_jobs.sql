-- Ingest jobs on one machine (crates/db/src/sqlite/jobs.rs; the rules in
-- crates/catalog/src/jobs/mod.rs): the queue `monsoon serve`'s own worker, `monsoon worker`s on
-- the same machine and the operator's studio share. Times are ms since the Unix epoch on this
-- database's clock (SQLite's `julianday('now')`).
CREATE TABLE ingest_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    slug             TEXT NOT NULL,
    master           TEXT NOT NULL,
    film_toml        TEXT,
    options          TEXT NOT NULL,
    duration_s       REAL NOT NULL,
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts > 0),
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    percent          REAL NOT NULL DEFAULT 0,
    speed            REAL NOT NULL DEFAULT 0,
    message          TEXT NOT NULL DEFAULT '',
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    finished_ms      INTEGER,
    -- A running job, and only a running one, has a lease.
    CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_ms IS NOT NULL))
);

CREATE INDEX ingest_jobs_open ON ingest_jobs (id) WHERE state IN ('queued', 'running');

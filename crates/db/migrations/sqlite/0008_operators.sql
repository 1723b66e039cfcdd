-- Operator accounts, their sessions and the audit log (crates/catalog/src/operators/mod.rs;
-- crates/db/src/sqlite/operators.rs). Times are ms since the Unix epoch on this database's
-- clock; PostgreSQL keeps the same tables and columns (migrations/postgres/0006_operators.sql).
CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    -- argon2id, PHC form: the password itself is never stored.
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

-- A signed-in browser: `id` is the SHA-256 (hex) of the secret in its cookie. `operator` is an
-- account's name, or 'token' for a sign-in with the admin token (no row in `operators`).
CREATE TABLE operator_sessions (
    id           TEXT PRIMARY KEY,
    operator     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator);
CREATE INDEX operator_sessions_by_end ON operator_sessions (expires_at);

-- Who did what, when; appended to, never changed.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- JSON text.
    detail  TEXT NOT NULL
);

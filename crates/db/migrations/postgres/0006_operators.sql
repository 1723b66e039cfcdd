-- Operator accounts, their sessions and the audit log (crates/catalog/src/operators/mod.rs;
-- crates/db/src/postgres/operators.rs). Times are this database's clock (`now()`), so every
-- node of a cluster agrees on which session has expired; SQLite keeps the same tables and
-- columns (migrations/sqlite/0008_operators.sql).
CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    -- argon2id, PHC form: the password itself is never stored.
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ
);

-- A signed-in browser: `id` is the SHA-256 (hex) of the secret in its cookie. `operator` is an
-- account's name, or 'token' for a sign-in with the admin token (no row in `operators`).
CREATE TABLE operator_sessions (
    id           TEXT PRIMARY KEY,
    operator     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator);
CREATE INDEX operator_sessions_by_end ON operator_sessions (expires_at);

-- Who did what, when; appended to, never changed.
CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  JSONB NOT NULL
);

-- An account's last sign-in (the start of its last session), for the studio's list of
-- operators (crates/db/src/postgres/operators.rs), NULL until it signs in. SQLite:
-- migrations/sqlite/0012_operator_sign_ins.sql.
ALTER TABLE operators ADD COLUMN last_sign_in_at TIMESTAMPTZ;

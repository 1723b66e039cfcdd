-- An account's last sign-in (the start of its last session), for the studio's list of
-- operators (crates/db/src/sqlite/operators.rs): ms since the Unix epoch on this database's
-- clock, NULL until it signs in. PostgreSQL: migrations/postgres/0009_operator_sign_ins.sql.
ALTER TABLE operators ADD COLUMN last_sign_in_at INTEGER;

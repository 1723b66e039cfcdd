-- Sessions are found at start by when they began, which never changes, instead of by their
-- last heartbeat: a heartbeat's upsert then rewrites the table's row only, not an index entry
-- as well. (A session beats only while its token lives, so every session active since T
-- started after T minus the token's lifetime.)
DROP INDEX audience_sessions_active_at;
ALTER TABLE audience_sessions DROP COLUMN active_at;
ALTER TABLE audience_sessions ADD COLUMN started_at INTEGER NOT NULL DEFAULT 0;
UPDATE audience_sessions SET started_at = json_extract(json, '$.started_at');
CREATE INDEX audience_sessions_started_at ON audience_sessions (started_at);

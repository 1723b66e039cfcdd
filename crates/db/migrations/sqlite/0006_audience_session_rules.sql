-- The rules of docs/AUDIENCE.md since the hardening of the audience:
-- first_play_ms: a view counts playing time the server saw accrue from the session's first
--   accepted beat (rows from before count from 0, as the old rule did);
-- suspicious: a session opened while its viewer already watched in as many sessions as one
--   person can, kept out of the headline figures.
ALTER TABLE audience_sessions ADD COLUMN first_play_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audience_sessions ADD COLUMN suspicious INTEGER NOT NULL DEFAULT 0;
-- Minting keeps nothing any more: a session row exists from its first accepted heartbeat, so
-- rows of sessions minted and never played mean nothing.
DELETE FROM audience_sessions WHERE last_beat_at IS NULL;

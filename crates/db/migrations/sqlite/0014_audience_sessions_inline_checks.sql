-- The same table, with the rule on `network` written as comparisons instead of `IN (…)`.
-- SQLite evaluates a CHECK on every write of the row, and an `IN` list of more than two
-- constants is built into a temporary index each time a statement runs: with one UPDATE per
-- session in every commit of the audience writer, that was a fifth of the writer's time
-- (BENCHMARKS.md, "Heartbeats"). `codec`'s two names are compared inline already. A CHECK
-- cannot be altered in place, so the table is rebuilt (same columns, same order, same index).
CREATE TABLE audience_sessions_v3 (
    id                TEXT PRIMARY KEY NOT NULL,
    film              TEXT NOT NULL,
    viewer            TEXT NOT NULL,
    started_at        INTEGER NOT NULL, -- ms since the Unix epoch
    last_beat_at      INTEGER,          -- NULL until a heartbeat is accepted
    last_seq          INTEGER,
    state             TEXT,             -- the player state of the last accepted heartbeat
    -- The cumulative counters of the last accepted heartbeat.
    play_ms           INTEGER NOT NULL,
    rebuffer_ms       INTEGER NOT NULL,
    rebuffer_count    INTEGER NOT NULL,
    startup_ms        INTEGER NOT NULL,
    seek_ms           INTEGER NOT NULL,
    playhead_ms       INTEGER NOT NULL,
    height            INTEGER NOT NULL,
    bitrate_kbps      INTEGER NOT NULL,
    bytes             INTEGER NOT NULL,
    dropped_frames    INTEGER NOT NULL,
    fatal_error       INTEGER NOT NULL,
    view_counted      INTEGER NOT NULL,
    view_deduplicated INTEGER NOT NULL,
    rungs             TEXT NOT NULL,    -- JSON object: playing ms by rendition height
    first_play_ms     INTEGER NOT NULL DEFAULT 0,
    suspicious        INTEGER NOT NULL DEFAULT 0,
    codec             TEXT CHECK (codec = 'h264' OR codec = 'av1'),
    codecs            TEXT NOT NULL DEFAULT '{}',
    network           TEXT CHECK (network = 'slow-2g' OR network = '2g' OR network = '3g' OR network = '4g'),
    codec_bytes       TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO audience_sessions_v3 (
    id, film, viewer, started_at, last_beat_at, last_seq, state, play_ms, rebuffer_ms,
    rebuffer_count, startup_ms, seek_ms, playhead_ms, height, bitrate_kbps, bytes,
    dropped_frames, fatal_error, view_counted, view_deduplicated, rungs, first_play_ms,
    suspicious, codec, codecs, network, codec_bytes
)
SELECT
    id, film, viewer, started_at, last_beat_at, last_seq, state, play_ms, rebuffer_ms,
    rebuffer_count, startup_ms, seek_ms, playhead_ms, height, bitrate_kbps, bytes,
    dropped_frames, fatal_error, view_counted, view_deduplicated, rungs, first_play_ms,
    suspicious, codec, codecs, network, codec_bytes
FROM audience_sessions;
DROP TABLE audience_sessions;
ALTER TABLE audience_sessions_v3 RENAME TO audience_sessions;
CREATE INDEX audience_sessions_started_at ON audience_sessions (started_at);

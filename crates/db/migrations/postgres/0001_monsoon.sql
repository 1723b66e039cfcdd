-- The whole schema on PostgreSQL, as the SQLite migrations (../sqlite) left it at 0006:
-- the same tables and columns, PostgreSQL's types. Times are ms since the Unix epoch (BIGINT)
-- in the audience tables, RFC 3339 text in the catalog's, as on SQLite.

-- Films and their published versions. A film row exists only once a version is published;
-- `current_version` always names a row of `film_versions`.
CREATE TABLE films (
    slug            TEXT PRIMARY KEY,
    meta_json       TEXT NOT NULL,
    current_version TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE film_versions (
    slug         TEXT NOT NULL,
    version      TEXT NOT NULL,
    published_at TEXT NOT NULL,
    version_json TEXT NOT NULL,
    PRIMARY KEY (slug, version)
);

-- Each playback session's latest state: its counters are cumulative, so the newest row is
-- all there is to know. A row exists from the session's first accepted heartbeat.
CREATE TABLE audience_sessions (
    id                TEXT PRIMARY KEY,
    film              TEXT NOT NULL,
    viewer            TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    last_beat_at      BIGINT,
    last_seq          BIGINT,
    state             TEXT,
    play_ms           BIGINT NOT NULL,
    rebuffer_ms       BIGINT NOT NULL,
    rebuffer_count    BIGINT NOT NULL,
    startup_ms        BIGINT NOT NULL,
    seek_ms           BIGINT NOT NULL,
    playhead_ms       BIGINT NOT NULL,
    height            BIGINT NOT NULL,
    bitrate_kbps      BIGINT NOT NULL,
    bytes             BIGINT NOT NULL,
    dropped_frames    BIGINT NOT NULL,
    fatal_error       BOOLEAN NOT NULL,
    view_counted      BOOLEAN NOT NULL,
    view_deduplicated BOOLEAN NOT NULL,
    rungs             TEXT NOT NULL, -- JSON object: playing ms by rendition height
    first_play_ms     BIGINT NOT NULL,
    suspicious        BOOLEAN NOT NULL
);
CREATE INDEX audience_sessions_started_at ON audience_sessions (started_at);

-- Counted views: at most one per session.
CREATE TABLE audience_views (
    session TEXT PRIMARY KEY,
    film    TEXT NOT NULL,
    viewer  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX audience_views_at ON audience_views (at);

-- Each film's peak of concurrent viewers.
CREATE TABLE audience_peaks (
    film TEXT PRIMARY KEY,
    peak BIGINT NOT NULL,
    at   BIGINT NOT NULL
);

-- Minute rollups of each film's audience, for charts over time.
CREATE TABLE audience_minutes (
    film TEXT NOT NULL,
    at   BIGINT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (film, at)
);

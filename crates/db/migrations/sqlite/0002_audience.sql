-- Audience: each playback session's latest state (cumulative counters, so the newest row is
-- all there is to know), counted views, and each film's peak of concurrent viewers.
CREATE TABLE audience_sessions (
    id        TEXT PRIMARY KEY NOT NULL,
    film      TEXT NOT NULL,
    active_at INTEGER NOT NULL, -- last heartbeat (or start), ms since the Unix epoch
    json      TEXT NOT NULL
);
CREATE INDEX audience_sessions_active_at ON audience_sessions (active_at);

CREATE TABLE audience_views (
    session TEXT PRIMARY KEY NOT NULL, -- at most one view per session
    film    TEXT NOT NULL,
    viewer  TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX audience_views_at ON audience_views (at);

CREATE TABLE audience_peaks (
    film TEXT PRIMARY KEY NOT NULL,
    peak INTEGER NOT NULL,
    at   INTEGER NOT NULL
);

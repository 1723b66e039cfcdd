-- Minute rollups of each film's audience, for charts over time.
CREATE TABLE audience_minutes (
    film TEXT NOT NULL,
    at   INTEGER NOT NULL, -- start of the minute, ms since the Unix epoch
    json TEXT NOT NULL,
    PRIMARY KEY (film, at)
);

-- Films and their published versions. A film row exists only once a version is published;
-- `current_version` always names a row of `film_versions`.
CREATE TABLE films (
    slug            TEXT PRIMARY KEY NOT NULL,
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

-- Films created in the studio before any version is published (`FilmRepository::create_draft`):
-- a slug and its metadata, no media. The first publish of the slug deletes the row in its
-- transaction: a slug is a draft or a film, never both.
CREATE TABLE film_drafts (
    slug       TEXT PRIMARY KEY NOT NULL,
    meta_json  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

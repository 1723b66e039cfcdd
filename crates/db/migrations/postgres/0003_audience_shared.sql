-- Several nodes share the audience (crates/db/src/postgres/audience.rs, `exchange`): every
-- change to a session, a view or a peak takes the next revision of `audience_rev`, and a node
-- catches up with the revisions it has not seen. Every writer holds one advisory lock for its
-- whole transaction, so revisions are committed in the order they are taken.
CREATE SEQUENCE audience_rev;
ALTER TABLE audience_sessions ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
CREATE INDEX audience_sessions_rev ON audience_sessions (rev);
ALTER TABLE audience_views ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
CREATE INDEX audience_views_rev ON audience_views (rev);
ALTER TABLE audience_peaks ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;

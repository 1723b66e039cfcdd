-- The link a session's player is on (docs/AUDIENCE.md, `network`): the last beat's
-- Network Information `effectiveType` (`slow-2g`, `2g`, `3g`, `4g`, or NULL when the browser
-- does not say), and the bytes downloaded under each codec, a JSON object of bytes by codec
-- name, as `codecs` holds playing time. Rows from before named no network and no bytes.
ALTER TABLE audience_sessions ADD COLUMN network TEXT CHECK (network IN ('slow-2g', '2g', '3g', '4g'));
ALTER TABLE audience_sessions ADD COLUMN codec_bytes TEXT NOT NULL DEFAULT '{}';

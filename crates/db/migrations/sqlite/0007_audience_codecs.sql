-- The codec a session plays (docs/AUDIENCE.md, `codec`): the last beat's (`h264`, `av1`, or
-- NULL when the player named none), and the playing time under each codec, a JSON object of
-- playing ms by codec name, as `rungs` is by height. Rows from before named no codec.
ALTER TABLE audience_sessions ADD COLUMN codec TEXT CHECK (codec IN ('h264', 'av1'));
ALTER TABLE audience_sessions ADD COLUMN codecs TEXT NOT NULL DEFAULT '{}';

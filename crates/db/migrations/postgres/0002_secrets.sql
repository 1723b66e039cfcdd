-- Secrets every node of a cluster must share, made once by the first node that needs them
-- (the audience's session-token key): in the database all nodes already trust, not in a file
-- of one node's data directory.
CREATE TABLE monsoon_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Events whose primary hash each grouping hash is, kept with the hash (see the SQLite
-- migration 0009).
ALTER TABLE grouphashes ADD COLUMN events BIGINT NOT NULL DEFAULT 0;
UPDATE grouphashes SET events = (
    SELECT COUNT(*) FROM events e WHERE e.issue_id = grouphashes.issue_id AND e.primary_hash = grouphashes.hash
);

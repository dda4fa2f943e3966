-- Events whose primary hash each grouping hash is, kept with the hash: the issue page
-- showed them by counting the issue's stored events on every view.
ALTER TABLE grouphashes ADD COLUMN events INTEGER NOT NULL DEFAULT 0;
UPDATE grouphashes SET events = (
    SELECT COUNT(*) FROM events e WHERE e.issue_id = grouphashes.issue_id AND e.primary_hash = grouphashes.hash
);

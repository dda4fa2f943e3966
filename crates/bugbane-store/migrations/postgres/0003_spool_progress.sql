-- SQLite keeps its spool in a file of its own and records here how far processing got
-- (see the SQLite migration 0008). PostgreSQL spools in its own table with leases and does
-- not use this; both engines keep one schema.
CREATE TABLE spool_progress (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    last_id BIGINT NOT NULL
);
INSERT INTO spool_progress (id, last_id) VALUES (1, 0);

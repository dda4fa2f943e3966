-- The spool moved to a database file of its own (spool.sqlite3), so that committing newly
-- acknowledged envelopes never waits behind a transaction saving processed ones. A save
-- records here, in its own transaction, the last spooled envelope it covers; the spool's
-- rows up to it are then deleted there, and skipped if a crash came in between.
CREATE TABLE spool_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO spool_progress (id, last_id) VALUES (1, 0);

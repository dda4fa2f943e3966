-- Named jobs that must run on one process at a time (retention, monitor checks).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until REAL NOT NULL
) WITHOUT ROWID;
-- `end` is a reserved word in PostgreSQL; both engines use the same column names.
ALTER TABLE transactions RENAME COLUMN "end" TO finish;
ALTER TABLE spans RENAME COLUMN "end" TO finish;
-- Spool leases matter only when processes share a database; both engines keep one schema.
ALTER TABLE spool ADD COLUMN lease_holder TEXT;
ALTER TABLE spool ADD COLUMN lease_until REAL;

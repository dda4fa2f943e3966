-- Runs up to this time have been checked against alert rules.
ALTER TABLE monitors ADD COLUMN alerted_until REAL;

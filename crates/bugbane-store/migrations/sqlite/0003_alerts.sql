-- Alert rules (their definition is core::alerts::RuleSpec as JSON).
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL
);
CREATE INDEX alert_rules_project ON alert_rules (project_id);

-- When a rule last notified about an issue (its per-issue rate limit).
CREATE TABLE alert_fired (
    rule_id INTEGER NOT NULL,
    issue_id INTEGER NOT NULL,
    last_fired REAL NOT NULL,
    PRIMARY KEY (rule_id, issue_id)
) WITHOUT ROWID;

-- Events per issue per minute of arrival, for frequency triggers (kept a day).
CREATE TABLE issue_minutely (
    issue_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (issue_id, minute)
) WITHOUT ROWID;

-- When each user last hit the issue, for distinct-user triggers.
ALTER TABLE issue_users ADD COLUMN last_seen REAL NOT NULL DEFAULT 0;

-- The durable notification queue and delivery log. A row is written in the same
-- transaction as the event that fired it; a worker sends it, retrying with backoff.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER,
    project_id INTEGER NOT NULL,
    issue_id INTEGER,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    secret TEXT,
    -- what to say (reason, issue, event), as JSON
    message TEXT NOT NULL,
    -- pending, sent, failed (gave up), skipped (nowhere to send)
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    lease_until REAL,
    last_error TEXT,
    created REAL NOT NULL,
    sent REAL
);
CREATE INDEX notifications_due ON notifications (status, next_attempt);
CREATE INDEX notifications_rule ON notifications (rule_id, id);

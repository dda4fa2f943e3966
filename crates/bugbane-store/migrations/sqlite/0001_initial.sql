-- Accounts and tenancy.
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (org_id, slug)
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    team_id INTEGER REFERENCES teams(id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    platform TEXT,
    created REAL NOT NULL,
    next_short_id INTEGER NOT NULL DEFAULT 1,
    scrub_settings TEXT NOT NULL DEFAULT '{}',
    UNIQUE (org_id, slug)
);
CREATE TABLE project_keys (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    public_key TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    rate_limit_per_minute INTEGER,
    created REAL NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE org_members (
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);

-- The durable ingest spool: acknowledged envelopes not yet processed (zstd).
-- AUTOINCREMENT: ids must never be reused once processed rows are deleted, because the
-- processor reads the spool by increasing id.
CREATE TABLE spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    received REAL NOT NULL,
    client_ip TEXT,
    sdk_client TEXT,
    -- the Content-Encoding the body is still in (the SDK's own compression is kept)
    encoding TEXT,
    body BLOB NOT NULL
);

-- zstd dictionaries payloads are compressed with, by the id recorded in each frame.
CREATE TABLE dictionaries (
    dict_id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    data BLOB NOT NULL
);

-- Issues and their events.
CREATE TABLE issues (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    short_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    culprit TEXT NOT NULL,
    level TEXT NOT NULL,
    type TEXT NOT NULL,
    platform TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    substatus TEXT NOT NULL,
    resolution TEXT,
    ignore_condition TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    times_seen INTEGER NOT NULL,
    user_count INTEGER NOT NULL,
    first_release TEXT,
    last_release TEXT,
    resolved_at REAL,
    UNIQUE (project_id, short_id)
);
CREATE INDEX issues_last_seen ON issues (project_id, last_seen DESC);
CREATE INDEX issues_first_seen ON issues (project_id, first_seen DESC);
CREATE INDEX issues_times_seen ON issues (project_id, times_seen DESC);
CREATE INDEX issues_status ON issues (project_id, status, last_seen DESC);

CREATE TABLE grouphashes (
    project_id INTEGER NOT NULL,
    hash TEXT NOT NULL,
    issue_id INTEGER NOT NULL REFERENCES issues(id),
    config TEXT NOT NULL,
    PRIMARY KEY (project_id, hash)
) WITHOUT ROWID;
CREATE INDEX grouphashes_issue ON grouphashes (issue_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    issue_id INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    received REAL NOT NULL,
    level TEXT NOT NULL,
    release TEXT,
    environment TEXT,
    user_key TEXT,
    trace_id TEXT,
    primary_hash TEXT NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (project_id, event_id)
);
CREATE INDEX events_issue ON events (issue_id, timestamp);
CREATE INDEX events_trace ON events (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX events_received ON events (received);

-- Counters maintained at ingestion, so listings never scan events.
CREATE TABLE issue_users (
    issue_id INTEGER NOT NULL,
    user_key TEXT NOT NULL,
    PRIMARY KEY (issue_id, user_key)
) WITHOUT ROWID;
CREATE TABLE issue_hourly (
    issue_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (issue_id, hour)
) WITHOUT ROWID;
CREATE TABLE issue_tags (
    issue_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (issue_id, key, value)
) WITHOUT ROWID;
CREATE INDEX issue_tags_value ON issue_tags (key, value);
CREATE TABLE releases (
    project_id INTEGER NOT NULL,
    version TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (project_id, version)
) WITHOUT ROWID;
CREATE TABLE environments (
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
) WITHOUT ROWID;
CREATE TABLE activity (
    id INTEGER PRIMARY KEY,
    issue_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    user_id INTEGER,
    created REAL NOT NULL
);
CREATE INDEX activity_issue ON activity (issue_id, created);

-- Everything else an SDK sends, in structured form.
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    trace_id TEXT,
    span_id TEXT,
    name TEXT NOT NULL,
    op TEXT,
    status TEXT,
    start REAL NOT NULL,
    end REAL NOT NULL,
    release TEXT,
    environment TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX transactions_name ON transactions (project_id, name, end);
CREATE INDEX transactions_trace ON transactions (trace_id);
CREATE TABLE spans (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    segment_id TEXT,
    name TEXT NOT NULL,
    op TEXT,
    status TEXT,
    start REAL NOT NULL,
    end REAL NOT NULL,
    is_segment INTEGER NOT NULL,
    release TEXT,
    environment TEXT,
    data TEXT
);
CREATE INDEX spans_trace ON spans (trace_id);
CREATE TABLE sessions (
    project_id INTEGER NOT NULL,
    sid TEXT NOT NULL,
    did TEXT,
    release TEXT NOT NULL,
    environment TEXT,
    status TEXT NOT NULL,
    errors INTEGER NOT NULL,
    init INTEGER NOT NULL,
    started REAL NOT NULL,
    timestamp REAL NOT NULL,
    duration REAL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (project_id, sid)
) WITHOUT ROWID;
CREATE TABLE session_aggregates (
    project_id INTEGER NOT NULL,
    release TEXT NOT NULL,
    environment TEXT NOT NULL,
    started REAL NOT NULL,
    exited INTEGER NOT NULL,
    errored INTEGER NOT NULL,
    abnormal INTEGER NOT NULL,
    crashed INTEGER NOT NULL,
    PRIMARY KEY (project_id, release, environment, started)
) WITHOUT ROWID;
CREATE TABLE check_ins (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    check_in_id TEXT NOT NULL,
    monitor_slug TEXT NOT NULL,
    status TEXT NOT NULL,
    duration REAL,
    release TEXT,
    environment TEXT,
    timestamp REAL NOT NULL,
    trace_id TEXT
);
CREATE INDEX check_ins_monitor ON check_ins (project_id, monitor_slug, timestamp);
CREATE TABLE monitors (
    project_id INTEGER NOT NULL,
    slug TEXT NOT NULL,
    config TEXT,
    last_check_in REAL,
    last_status TEXT,
    PRIMARY KEY (project_id, slug)
) WITHOUT ROWID;
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT,
    associated_event_id TEXT,
    name TEXT,
    email TEXT,
    message TEXT NOT NULL,
    url TEXT,
    timestamp REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX feedback_event ON feedback (associated_event_id);
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    event_id TEXT,
    filename TEXT NOT NULL,
    content_type TEXT,
    attachment_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    received REAL NOT NULL
);
CREATE INDEX attachments_event ON attachments (project_id, event_id);
CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    trace_id TEXT,
    span_id TEXT,
    level TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    release TEXT,
    environment TEXT
);
CREATE INDEX logs_time ON logs (project_id, timestamp);
CREATE TABLE client_reports (
    project_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE raw_items (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    event_id TEXT,
    content_type TEXT,
    truncated INTEGER NOT NULL,
    received REAL NOT NULL,
    payload BLOB NOT NULL
);

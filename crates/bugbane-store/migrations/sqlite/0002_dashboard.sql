-- Dashboard sign-in sessions, by the SHA-256 of the cookie value (a leaked database
-- does not hand out live sessions).
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- Who is looking into an issue.
ALTER TABLE issues ADD COLUMN assignee_id INTEGER REFERENCES users(id);

//! Queries behind the dashboard: sign-in sessions, accounts and tokens, the counters its
//! lists draw, and the issue operations only people perform (assign, comment, merge,
//! unmerge).

use std::collections::HashMap;

use crate::db::{Db, OptionalExtension, Row};
use rusqlite::params;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::ingest::{record_activity, search_keys};
use crate::model::*;
use crate::store::{Store, count, now};

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        is_admin: r.get(2)?,
        created: r.get(3)?,
    })
}

impl Store {
    /// A user and their password hash, for signing in.
    pub async fn user_credentials(&self, email: String) -> Result<Option<(User, String)>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, email, is_admin, created, password_hash FROM users WHERE lower(email) = lower(?1)",
            )?
            .query_row([email], |r| Ok((user_row(r)?, r.get(4)?)))
            .optional()
        })
        .await
    }

    /// All users, by email.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT id, email, is_admin, created FROM users ORDER BY email")?;
            let rows = stmt.query_map(params![], user_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Replaces a user's password hash and ends their other sessions.
    pub async fn set_password(
        &self,
        user_id: i64,
        password_hash: String,
        keep_session: String,
    ) -> Result<()> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user_id, password_hash],
            )?;
            tx.execute(
                "DELETE FROM web_sessions WHERE user_id = ?1 AND id_hash != ?2",
                params![user_id, keep_session],
            )?;
            Ok(())
        })
        .await
    }

    /// Opens a sign-in session (stored by the hash of its cookie value), dropping
    /// expired ones on the way.
    pub async fn create_web_session(
        &self,
        id_hash: String,
        user_id: i64,
        csrf: String,
        ttl_secs: f64,
    ) -> Result<()> {
        self.write(move |tx| {
            let t = now();
            tx.execute("DELETE FROM web_sessions WHERE expires < ?1", [t])?;
            tx.execute(
                "INSERT INTO web_sessions (id_hash, user_id, csrf, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id_hash, user_id, csrf, t, t + ttl_secs],
            )?;
            Ok(())
        })
        .await
    }

    /// The live session with this cookie hash.
    pub async fn web_session(&self, id_hash: String) -> Result<Option<WebSession>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT u.id, u.email, u.is_admin, u.created, s.csrf FROM web_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = ?1 AND s.expires > ?2",
            )?
            .query_row(params![id_hash, now()], |r| {
                Ok(WebSession { user: user_row(r)?, csrf: r.get(4)? })
            })
            .optional()
        })
        .await
    }

    /// Ends a session.
    pub async fn delete_web_session(&self, id_hash: String) -> Result<()> {
        self.write(move |tx| {
            tx.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])?;
            Ok(())
        })
        .await
    }

    /// A user's live API tokens.
    pub async fn user_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, name, created FROM api_tokens WHERE user_id = ?1 AND revoked = 0 ORDER BY id",
            )?;
            let rows = stmt.query_map([user_id], |r| {
                Ok(ApiToken {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Revokes one of a user's tokens.
    pub async fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<()> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked = 1 WHERE id = ?1 AND user_id = ?2",
                params![token_id, user_id],
            )?;
            if n == 0 {
                return Err(Error::NotFound("token"));
            }
            Ok(())
        })
        .await
    }

    /// Adds a client key to a project.
    pub async fn create_key(
        &self,
        project_id: i64,
        label: String,
        public_key: String,
    ) -> Result<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO project_keys (project_id, public_key, label, created) VALUES (?1, ?2, ?3, ?4)",
                params![project_id, public_key, label, now()],
            )?;
            Ok(())
        })
        .await
    }

    /// Renames a project (its display name; the slug stays, since DSNs and links use it).
    pub async fn rename_project(&self, project_id: i64, name: String) -> Result<()> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE projects SET name = ?2 WHERE id = ?1",
                params![project_id, name],
            )?;
            Ok(())
        })
        .await
    }

    /// Per project: unresolved issues and events per hour since `since_hour`, from the
    /// hourly counters of issues seen in that window.
    pub async fn project_stats(
        &self,
        project_ids: Vec<i64>,
        since_hour: i64,
    ) -> Result<HashMap<i64, ProjectStats>> {
        self.read(move |c| {
            let mut out = HashMap::new();
            let mut unresolved = c.prepare_cached(
                "SELECT COUNT(*) FROM issues WHERE project_id = ?1 AND status = 'unresolved'",
            )?;
            let mut hourly = c.prepare_cached(
                "SELECT h.hour, SUM(h.count) FROM issues i JOIN issue_hourly h ON h.issue_id = i.id AND h.hour >= ?2
                 WHERE i.project_id = ?1 AND i.last_seen >= ?3 GROUP BY h.hour",
            )?;
            for pid in project_ids {
                let n: i64 = unresolved.query_row([pid], |r| r.get(0))?;
                let rows = hourly
                    .query_map(params![pid, since_hour, since_hour as f64 * 3600.0], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
                out.insert(
                    pid,
                    ProjectStats {
                        unresolved: n,
                        hourly: rows,
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// Environments seen in a project.
    pub async fn environments(&self, project_id: i64) -> Result<Vec<String>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT name FROM environments WHERE project_id = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([project_id], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }

    /// Issues a project has, in any state.
    pub async fn issue_count(&self, project_id: i64) -> Result<i64> {
        self.read(move |c| {
            count(
                c,
                "SELECT COUNT(*) FROM issues WHERE project_id = ?1",
                [project_id],
            )
        })
        .await
    }

    /// Events per hour since `since_hour` for each of some issues.
    pub async fn issues_hourly(
        &self,
        issue_ids: Vec<i64>,
        since_hour: i64,
    ) -> Result<HashMap<i64, Vec<(i64, i64)>>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT hour, count FROM issue_hourly WHERE issue_id = ?1 AND hour >= ?2",
            )?;
            let mut out = HashMap::new();
            for id in issue_ids {
                let rows = stmt
                    .query_map(params![id, since_hour], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
                out.insert(id, rows);
            }
            Ok(out)
        })
        .await
    }

    /// The event ids just older and just newer than an event within its issue.
    pub async fn event_neighbours(
        &self,
        issue_id: i64,
        timestamp: f64,
        id: i64,
    ) -> Result<(Option<String>, Option<String>)> {
        self.read(move |c| {
            let older = c
                .prepare_cached(
                    "SELECT event_id FROM events WHERE issue_id = ?1 AND (timestamp < ?2 OR (timestamp = ?2 AND id < ?3))
                     ORDER BY timestamp DESC, id DESC LIMIT 1",
                )?
                .query_row(params![issue_id, timestamp, id], |r| r.get(0))
                .optional()?;
            let newer = c
                .prepare_cached(
                    "SELECT event_id FROM events WHERE issue_id = ?1 AND (timestamp > ?2 OR (timestamp = ?2 AND id > ?3))
                     ORDER BY timestamp ASC, id ASC LIMIT 1",
                )?
                .query_row(params![issue_id, timestamp, id], |r| r.get(0))
                .optional()?;
            Ok((older, newer))
        })
        .await
    }

    /// Assigns an issue to a user, or clears the assignee.
    pub async fn assign_issue(
        &self,
        issue_id: i64,
        assignee: Option<i64>,
        by: Option<i64>,
    ) -> Result<()> {
        self.write(move |tx| {
            let email: Option<String> = match assignee {
                Some(u) => Some(
                    tx.query_row("SELECT email FROM users WHERE id = ?1", [u], |r| r.get(0))
                        .optional()?
                        .ok_or(Error::NotFound("user"))?,
                ),
                None => None,
            };
            if tx.execute(
                "UPDATE issues SET assignee_id = ?2 WHERE id = ?1",
                params![issue_id, assignee],
            )? == 0
            {
                return Err(Error::NotFound("issue"));
            }
            let (ty, data) = match email {
                Some(e) => ("assigned", json!({"assignee": e})),
                None => ("unassigned", json!({})),
            };
            record_activity(tx, issue_id, ty, &data, by)
        })
        .await
    }

    /// Adds a comment to an issue's activity.
    pub async fn comment_issue(&self, issue_id: i64, text: String, by: i64) -> Result<()> {
        self.write(move |tx| {
            if count(tx, "SELECT COUNT(*) FROM issues WHERE id = ?1", [issue_id])? == 0 {
                return Err(Error::NotFound("issue"));
            }
            record_activity(tx, issue_id, "note", &json!({"text": text}), Some(by))
        })
        .await
    }

    /// Merges issues of one project into the one with the most events: their hashes,
    /// events and counters move to it and the others are deleted. Returns the survivor.
    pub async fn merge_issues(&self, ids: Vec<i64>, by: Option<i64>) -> Result<i64> {
        self.write(move |tx| {
            if let Some(&first) = ids.first() {
                crate::ingest::lock_issue_project(tx, first)?;
            }
            let mut found: Vec<(i64, i64, i64, i64)> = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, project_id, times_seen, short_id FROM issues WHERE id = ?1",
                )?;
                for id in &ids {
                    if let Some(row) = stmt
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()?
                        && !found.iter().any(|f| f.0 == row.0)
                    {
                        found.push(row);
                    }
                }
            }
            if found.len() < 2 {
                return Err(Error::Conflict("merging needs at least two issues".into()));
            }
            if found.iter().any(|f| f.1 != found[0].1) {
                return Err(Error::Conflict(
                    "only issues of one project can be merged".into(),
                ));
            }
            found.sort_by_key(|f| (std::cmp::Reverse(f.2), f.0));
            let parent = found[0].0;
            let mut merged = Vec::new();
            for &(child, _, _, short_id) in &found[1..] {
                move_issue_rows(tx, child, parent)?;
                merged.push(short_id);
            }
            refresh_issue_totals(tx, parent)?;
            record_activity(tx, parent, "merge", &json!({"merged": merged}), by)?;
            Ok(parent)
        })
        .await
    }

    /// Moves one grouping hash, with the events whose primary hash it is, out of an issue
    /// into a new issue. Returns the new issue.
    pub async fn unmerge_hash(&self, issue_id: i64, hash: String, by: Option<i64>) -> Result<i64> {
        let dicts = self.dicts();
        self.write(move |tx| {
            crate::ingest::lock_issue_project(tx, issue_id)?;
            let owner: Option<i64> = tx
                .query_row(
                    "SELECT g.issue_id FROM grouphashes g JOIN issues i ON i.project_id = g.project_id AND i.id = g.issue_id
                     WHERE g.issue_id = ?1 AND g.hash = ?2",
                    params![issue_id, hash],
                    |r| r.get(0),
                )
                .optional()?;
            if owner.is_none() {
                return Err(Error::NotFound("hash"));
            }
            let moving = count(
                tx,
                "SELECT COUNT(*) FROM events WHERE issue_id = ?1 AND primary_hash = ?2",
                params![issue_id, hash],
            )?;
            let total = count(tx, "SELECT COUNT(*) FROM events WHERE issue_id = ?1", [issue_id])?;
            if moving == 0 || moving == total {
                return Err(Error::Conflict(
                    "unmerging needs events of this hash and events of other hashes".into(),
                ));
            }
            let pid: i64 = tx.query_row("SELECT project_id FROM issues WHERE id = ?1", [issue_id], |r| r.get(0))?;
            let short_id: i64 = tx.query_row(
                "UPDATE projects SET next_short_id = next_short_id + 1 WHERE id = ?1 RETURNING next_short_id - 1",
                [pid],
                |r| r.get(0),
            )?;
            let new_id: i64 = tx.query_row(
                "INSERT INTO issues (project_id, short_id, title, culprit, level, type, platform, metadata, status, substatus,
                   first_seen, last_seen, times_seen, user_count, first_release, last_release)
                 SELECT project_id, ?2, title, culprit, level, type, platform, metadata, 'unresolved', 'new',
                   first_seen, last_seen, 0, 0, first_release, last_release FROM issues WHERE id = ?1 RETURNING id",
                params![issue_id, short_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE grouphashes SET issue_id = ?2 WHERE issue_id = ?1 AND hash = ?3",
                params![issue_id, new_id, hash],
            )?;
            tx.execute(
                "UPDATE events SET issue_id = ?2 WHERE issue_id = ?1 AND primary_hash = ?3",
                params![issue_id, new_id, hash],
            )?;
            for id in [issue_id, new_id] {
                rebuild_counters(tx, &dicts, id)?;
            }
            record_activity(tx, issue_id, "unmerge_source", &json!({"hash": hash, "issue": new_id}), by)?;
            record_activity(tx, new_id, "unmerge_destination", &json!({"hash": hash, "issue": issue_id}), by)?;
            Ok(new_id)
        })
        .await
    }
}

/// Moves everything of `child` to `parent` and deletes `child`.
fn move_issue_rows(tx: &Db, child: i64, parent: i64) -> Result<()> {
    for sql in [
        "UPDATE grouphashes SET issue_id = ?2 WHERE issue_id = ?1",
        "UPDATE events SET issue_id = ?2 WHERE issue_id = ?1",
        "UPDATE activity SET issue_id = ?2 WHERE issue_id = ?1",
        "INSERT INTO issue_users (issue_id, user_key, last_seen) SELECT ?2, user_key, last_seen FROM issue_users WHERE issue_id = ?1
         ON CONFLICT (issue_id, user_key) DO UPDATE SET last_seen = GREATEST(issue_users.last_seen, excluded.last_seen)",
        "INSERT INTO issue_hourly (issue_id, hour, count) SELECT ?2, hour, count FROM issue_hourly WHERE issue_id = ?1
         ON CONFLICT (issue_id, hour) DO UPDATE SET count = issue_hourly.count + excluded.count",
        "INSERT INTO issue_minutely (issue_id, minute, count) SELECT ?2, minute, count FROM issue_minutely WHERE issue_id = ?1
         ON CONFLICT (issue_id, minute) DO UPDATE SET count = issue_minutely.count + excluded.count",
        "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
           SELECT ?2, key, value, count, first_seen, last_seen FROM issue_tags WHERE issue_id = ?1
         ON CONFLICT (issue_id, key, value) DO UPDATE SET count = issue_tags.count + excluded.count,
           first_seen = LEAST(issue_tags.first_seen, excluded.first_seen), last_seen = GREATEST(issue_tags.last_seen, excluded.last_seen)",
        "UPDATE issues SET times_seen = times_seen + (SELECT times_seen FROM issues WHERE id = ?1),
           first_seen = LEAST(first_seen, (SELECT first_seen FROM issues WHERE id = ?1)),
           last_seen = GREATEST(last_seen, (SELECT last_seen FROM issues WHERE id = ?1))
         WHERE id = ?2",
    ] {
        tx.execute(sql, params![child, parent])?;
    }
    for sql in [
        "DELETE FROM issue_users WHERE issue_id = ?1",
        "DELETE FROM issue_hourly WHERE issue_id = ?1",
        "DELETE FROM issue_minutely WHERE issue_id = ?1",
        "DELETE FROM issue_tags WHERE issue_id = ?1",
        "DELETE FROM alert_fired WHERE issue_id = ?1",
        "DELETE FROM issues WHERE id = ?1",
    ] {
        tx.execute(sql, [child])?;
    }
    Ok(())
}

/// Recomputes the user count from the issue's user set.
fn refresh_issue_totals(tx: &Db, id: i64) -> Result<()> {
    tx.execute(
        "UPDATE issues SET user_count = (SELECT COUNT(*) FROM issue_users WHERE issue_id = ?1) WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Rebuilds an issue's counters from its events (after events moved between issues).
fn rebuild_counters(tx: &Db, dicts: &crate::codec::Dictionaries, id: i64) -> Result<()> {
    for sql in [
        "DELETE FROM issue_users WHERE issue_id = ?1",
        "DELETE FROM issue_hourly WHERE issue_id = ?1",
        "DELETE FROM issue_minutely WHERE issue_id = ?1",
        "DELETE FROM issue_tags WHERE issue_id = ?1",
        "INSERT INTO issue_users (issue_id, user_key, last_seen)
           SELECT ?1, user_key, MAX(received) FROM events WHERE issue_id = ?1 AND user_key IS NOT NULL GROUP BY user_key",
        "INSERT INTO issue_minutely (issue_id, minute, count)
           SELECT ?1, CAST(FLOOR(received / 60) AS BIGINT), COUNT(*) FROM events
           WHERE issue_id = ?1 AND received >= (SELECT MAX(received) FROM events WHERE issue_id = ?1) - 86400 GROUP BY 2",
        "INSERT INTO issue_hourly (issue_id, hour, count)
           SELECT ?1, CAST(FLOOR(timestamp / 3600) AS BIGINT), COUNT(*)
           FROM events WHERE issue_id = ?1 GROUP BY 2",
        "UPDATE issues SET times_seen = (SELECT COUNT(*) FROM events WHERE issue_id = ?1),
           first_seen = (SELECT MIN(timestamp) FROM events WHERE issue_id = ?1),
           last_seen = (SELECT MAX(timestamp) FROM events WHERE issue_id = ?1)
         WHERE id = ?1",
    ] {
        tx.execute(sql, [id])?;
    }
    refresh_issue_totals(tx, id)?;
    let mut tags: HashMap<(String, String), (i64, f64, f64)> = HashMap::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT timestamp, payload FROM events WHERE issue_id = ?1")?;
        stmt.for_each([id], |r| {
            let ts: f64 = r.get(0)?;
            let blob: Vec<u8> = r.get(1)?;
            let payload = dicts.decompress_json(tx, &blob)?;
            for kv in event_tags(&payload) {
                let e = tags.entry(kv).or_insert((0, ts, ts));
                e.0 += 1;
                e.1 = e.1.min(ts);
                e.2 = e.2.max(ts);
            }
            Ok(())
        })?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for ((k, v), (n, first, last)) in tags {
        insert.execute(params![id, k, v, n, first, last])?;
    }
    Ok(())
}

/// The tag pairs an event was counted under at ingestion: its tags and the search keys.
fn event_tags(payload: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = payload
        .get("tags")
        .and_then(Value::as_array)
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get(0)?.as_str()?.to_owned(),
                        p.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    out.extend(search_keys(payload.get("user")));
    out
}

//! Accounts, projects and the queries behind the web API.

use crate::db::{Db, OptionalExtension, Params, Row};
use bugbane_core::ScrubSettings;
use bugbane_core::lifecycle::{Resolution, Status};
use rusqlite::params;
use serde_json::{Value, json};

use crate::codec::Dictionaries;
use crate::error::{Error, Result};
use crate::ingest::record_activity;
use crate::model::*;
use crate::store::{Store, count, now};

const PROJECT_COLS: &str =
    "p.id, p.org_id, o.slug, p.slug, p.name, p.platform, p.created, p.scrub_settings";

fn project_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    let scrub: String = r.get(7)?;
    Ok(Project {
        id: r.get(0)?,
        org_id: r.get(1)?,
        org_slug: r.get(2)?,
        slug: r.get(3)?,
        name: r.get(4)?,
        platform: r.get(5)?,
        created: r.get(6)?,
        scrub: serde_json::from_str(&scrub).unwrap_or_default(),
    })
}

const KEY_COLS: &str = "id, project_id, public_key, label, active, rate_limit_per_minute, created";

fn key_row(r: &Row<'_>) -> rusqlite::Result<ProjectKey> {
    Ok(ProjectKey {
        id: r.get(0)?,
        project_id: r.get(1)?,
        public_key: r.get(2)?,
        label: r.get(3)?,
        active: r.get(4)?,
        rate_limit_per_minute: r.get(5)?,
        created: r.get(6)?,
    })
}

const ISSUE_COLS: &str = "i.id, i.project_id, p.slug, o.slug, i.short_id, i.title, i.culprit, i.level, i.type, i.platform,
    i.metadata, i.status, i.substatus, i.resolution, i.ignore_condition, i.first_seen, i.last_seen, i.times_seen,
    i.user_count, i.first_release, i.last_release, i.resolved_at, i.assignee_id,
    (SELECT email FROM users WHERE id = i.assignee_id)";
const ISSUE_FROM: &str =
    "issues i JOIN projects p ON p.id = i.project_id JOIN organizations o ON o.id = p.org_id";

/// Issues matching a `WHERE` clause (and its ordering) over `issues i`.
pub(crate) fn issues_where(c: &Db, clause: &str, p: impl Params) -> Result<Vec<Issue>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {ISSUE_COLS} FROM {ISSUE_FROM} WHERE {clause}"
    ))?;
    let rows = stmt.query_map(p, issue_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn issue_row(r: &Row<'_>) -> rusqlite::Result<Issue> {
    let metadata: String = r.get(10)?;
    let status: String = r.get(11)?;
    let resolution: Option<String> = r.get(13)?;
    let ignore: Option<String> = r.get(14)?;
    Ok(Issue {
        id: r.get(0)?,
        project_id: r.get(1)?,
        project_slug: r.get(2)?,
        org_slug: r.get(3)?,
        short_id: r.get(4)?,
        title: r.get(5)?,
        culprit: r.get(6)?,
        level: r.get(7)?,
        ty: r.get(8)?,
        platform: r.get(9)?,
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
        status: Status::parse(&status).unwrap_or(Status::Unresolved),
        substatus: r.get(12)?,
        resolution: resolution.and_then(|s| serde_json::from_str(&s).ok()),
        ignore: ignore.and_then(|s| serde_json::from_str(&s).ok()),
        first_seen: r.get(15)?,
        last_seen: r.get(16)?,
        times_seen: r.get(17)?,
        user_count: r.get(18)?,
        first_release: r.get(19)?,
        last_release: r.get(20)?,
        resolved_at: r.get(21)?,
        assignee_id: r.get(22)?,
        assignee_email: r.get(23)?,
    })
}

fn insert_org(tx: &Db, slug: &str) -> Result<Organization> {
    let created = now();
    let id: i64 = tx.query_row(
        "INSERT INTO organizations (slug, name, created) VALUES (?1, ?1, ?2) RETURNING id",
        params![slug, created],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO teams (org_id, slug, name) VALUES (?1, ?2, ?2)",
        params![id, slug],
    )?;
    Ok(Organization {
        id,
        slug: slug.into(),
        name: slug.into(),
        created,
    })
}

fn insert_project(
    tx: &Db,
    org_slug: &str,
    slug: &str,
    platform: Option<&str>,
    public_key: &str,
    id: Option<i64>,
) -> Result<(Project, ProjectKey)> {
    let org: Option<(i64, Option<i64>)> = tx
        .query_row(
            "SELECT o.id, (SELECT MIN(t.id) FROM teams t WHERE t.org_id = o.id) FROM organizations o WHERE o.slug = ?1",
            [org_slug],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (org_id, team_id) = org.ok_or(Error::NotFound("organization"))?;
    let exists = count(
        tx,
        "SELECT COUNT(*) FROM projects WHERE org_id = ?1 AND slug = ?2",
        params![org_id, slug],
    )?;
    if exists > 0 {
        return Err(Error::Conflict(format!(
            "project {slug} already exists in {org_slug}"
        )));
    }
    let settings = serde_json::to_string(&ScrubSettings::default()).unwrap_or_else(|_| "{}".into());
    let pid: i64 = tx.query_row(
        "INSERT INTO projects (id, org_id, team_id, slug, name, platform, created, scrub_settings) VALUES (COALESCE(?1, (SELECT COALESCE(MAX(id), 0) + 1 FROM projects)), ?2, ?3, ?4, ?4, ?5, ?6, ?7) RETURNING id",
        params![id, org_id, team_id, slug, platform, now(), settings],
        |r| r.get(0),
    )?;
    let key_id: i64 = tx.query_row(
        "INSERT INTO project_keys (project_id, public_key, label, created) VALUES (?1, ?2, 'Default', ?3) RETURNING id",
        params![pid, public_key, now()],
        |r| r.get(0),
    )?;
    crate::alerts::insert_default_rule(tx, pid)?;
    let project = tx.query_row(
        &format!("SELECT {PROJECT_COLS} FROM projects p JOIN organizations o ON o.id = p.org_id WHERE p.id = ?1"),
        [pid],
        project_row,
    )?;
    let key = tx.query_row(
        &format!("SELECT {KEY_COLS} FROM project_keys WHERE id = ?1"),
        [key_id],
        key_row,
    )?;
    Ok((project, key))
}

fn insert_user(tx: &Db, email: &str, password_hash: &str, admin: bool) -> Result<User> {
    if count(tx, "SELECT COUNT(*) FROM users WHERE email = ?1", [email])? > 0 {
        return Err(Error::Conflict(format!("user {email} already exists")));
    }
    let created = now();
    let id: i64 = tx.query_row(
        "INSERT INTO users (email, password_hash, is_admin, created) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![email, password_hash, admin, created],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO org_members (org_id, user_id, role) SELECT id, ?1, ?2 FROM organizations",
        params![id, if admin { "owner" } else { "member" }],
    )?;
    Ok(User {
        id,
        email: email.into(),
        is_admin: admin,
        created,
    })
}

impl Store {
    /// Whether first-start setup has yet to run.
    pub async fn needs_bootstrap(&self) -> Result<bool> {
        self.read(|c| Ok(count(c, "SELECT COUNT(*) FROM organizations", params![])? == 0))
            .await
    }

    /// First start: organization, team and project `default`, the admin user and their
    /// API token, all in one transaction (so a crash leaves either all or nothing).
    pub async fn bootstrap(
        &self,
        admin_email: String,
        password_hash: String,
        token_hash: String,
        public_key: String,
    ) -> Result<Option<Bootstrap>> {
        self.write(move |tx| {
            if count(tx, "SELECT COUNT(*) FROM organizations", params![])? > 0 {
                return Ok(None);
            }
            let org = insert_org(tx, "default")?;
            let (project, key) = insert_project(tx, "default", "default", None, &public_key, None)?;
            let user = insert_user(tx, &admin_email, &password_hash, true)?;
            tx.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, created) VALUES (?1, 'bootstrap', ?2, ?3)",
                params![user.id, token_hash, now()],
            )?;
            Ok(Some(Bootstrap { org, project, key, user }))
        })
        .await
    }

    /// Creates an organization (with a team of the same slug).
    pub async fn create_org(&self, slug: String) -> Result<Organization> {
        self.write(move |tx| {
            if count(
                tx,
                "SELECT COUNT(*) FROM organizations WHERE slug = ?1",
                [&slug],
            )? > 0
            {
                return Err(Error::Conflict(format!(
                    "organization {slug} already exists"
                )));
            }
            insert_org(tx, &slug)
        })
        .await
    }

    /// Creates a project with its first key. `id` pins the project id (imports, fixtures).
    pub async fn create_project(
        &self,
        org_slug: String,
        slug: String,
        platform: Option<String>,
        public_key: String,
        id: Option<i64>,
    ) -> Result<(Project, ProjectKey)> {
        self.write(move |tx| {
            insert_project(tx, &org_slug, &slug, platform.as_deref(), &public_key, id)
        })
        .await
    }

    /// Enables or disables a key.
    pub async fn set_key_active(&self, public_key: String, active: bool) -> Result<()> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE project_keys SET active = ?2 WHERE public_key = ?1",
                params![public_key, active],
            )?;
            if n == 0 {
                Err(Error::NotFound("key"))
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Sets a key's events-per-minute limit (`None` = the server default).
    pub async fn set_key_rate_limit(
        &self,
        public_key: String,
        per_minute: Option<i64>,
    ) -> Result<()> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE project_keys SET rate_limit_per_minute = ?2 WHERE public_key = ?1",
                params![public_key, per_minute],
            )?;
            Ok(())
        })
        .await
    }

    /// Replaces a project's scrubbing settings.
    pub async fn set_scrub_settings(&self, project_id: i64, settings: ScrubSettings) -> Result<()> {
        let json = serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into());
        self.write(move |tx| {
            tx.execute(
                "UPDATE projects SET scrub_settings = ?2 WHERE id = ?1",
                params![project_id, json],
            )?;
            Ok(())
        })
        .await
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        email: String,
        password_hash: String,
        admin: bool,
    ) -> Result<User> {
        self.write(move |tx| insert_user(tx, &email, &password_hash, admin))
            .await
    }

    /// Stores a new API token (by hash) for the first admin, or for `user_id`.
    pub async fn create_token(
        &self,
        name: String,
        token_hash: String,
        user_id: Option<i64>,
    ) -> Result<i64> {
        self.write(move |tx| {
            let uid: Option<i64> = match user_id {
                Some(u) => Some(u),
                None => tx
                    .query_row("SELECT MIN(id) FROM users WHERE is_admin = 1", params![], |r| r.get(0))
                    .optional()?
                    .flatten(),
            };
            tx.query_row(
                "INSERT INTO api_tokens (user_id, name, token_hash, created) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                params![uid, name, token_hash, now()],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The owner of a valid token.
    pub async fn token_owner(&self, token_hash: String) -> Result<Option<TokenOwner>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT t.id, t.user_id, COALESCE(u.is_admin, 0) FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = ?1 AND t.revoked = 0",
            )?
            .query_row([token_hash], |r| Ok(TokenOwner { token_id: r.get(0)?, user_id: r.get(1)?, is_admin: r.get(2)? }))
            .optional()
        })
        .await
    }

    /// Looks a DSN public key up.
    pub async fn key_by_public(&self, public_key: String) -> Result<Option<ProjectKey>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM project_keys WHERE public_key = ?1"
            ))?
            .query_row([public_key], key_row)
            .optional()
        })
        .await
    }

    /// A project's keys.
    pub async fn project_keys(&self, project_id: i64) -> Result<Vec<ProjectKey>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM project_keys WHERE project_id = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([project_id], key_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Projects visible to a user (all of them for admins and user-less tokens), optionally
    /// within one organization.
    pub async fn projects(
        &self,
        org_slug: Option<String>,
        user_id: Option<i64>,
        admin: bool,
    ) -> Result<Vec<Project>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PROJECT_COLS} FROM projects p JOIN organizations o ON o.id = p.org_id
                 WHERE (o.slug = ?1 OR ?1 IS NULL)
                   AND (?3 OR EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = o.id AND m.user_id = ?2))
                 ORDER BY o.slug, p.slug"
            ))?;
            let rows = stmt.query_map(params![org_slug, user_id, admin], project_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// One project by id.
    pub async fn project(&self, id: i64) -> Result<Option<Project>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {PROJECT_COLS} FROM projects p JOIN organizations o ON o.id = p.org_id WHERE p.id = ?1"
            ))?
            .query_row([id], project_row)
            .optional()
        })
        .await
    }

    /// Whether a user may see an organization's data.
    pub async fn is_member(&self, org_id: i64, user_id: i64) -> Result<bool> {
        self.read(move |c| {
            Ok(count(
                c,
                "SELECT COUNT(*) FROM org_members WHERE org_id = ?1 AND user_id = ?2",
                params![org_id, user_id],
            )? > 0)
        })
        .await
    }

    /// Issues matching a search, and whether more follow.
    pub async fn issues(&self, q: IssueQuery) -> Result<(Vec<Issue>, bool)> {
        self.read(move |c| list_issues(c, &q)).await
    }

    /// One issue.
    pub async fn issue(&self, id: i64) -> Result<Option<Issue>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ISSUE_COLS} FROM {ISSUE_FROM} WHERE i.id = ?1"
            ))?
            .query_row([id], issue_row)
            .optional()
        })
        .await
    }

    /// Changes an issue's status, recording who did it.
    pub async fn update_issue(&self, id: i64, update: IssueUpdate) -> Result<()> {
        self.write(move |tx| {
            let Some(status) = update.status else { return Ok(()) };
            let exists = count(tx, "SELECT COUNT(*) FROM issues WHERE id = ?1", [id])?;
            if exists == 0 {
                return Err(Error::NotFound("issue"));
            }
            let (substatus, resolved_at, activity) = match status {
                Status::Resolved => (
                    "resolved",
                    Some(now()),
                    match &update.resolution {
                        Some(Resolution::InNextRelease { .. }) => "set_resolved_in_next_release",
                        Some(Resolution::InRelease { .. }) => "set_resolved_in_release",
                        _ => "set_resolved",
                    },
                ),
                Status::Ignored => (if update.ignore.is_some() { "until_condition_met" } else { "forever" }, None, "set_ignored"),
                Status::Unresolved => ("ongoing", None, "set_unresolved"),
            };
            let resolution = match (&status, &update.resolution) {
                (Status::Resolved, Some(r)) => Some(serde_json::to_string(r).unwrap_or_default()),
                _ => None,
            };
            let mut ignore = update.ignore.clone();
            if let Some(ig) = ignore.as_mut() {
                let (times, users): (i64, i64) =
                    tx.query_row("SELECT times_seen, user_count FROM issues WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                ig.base_count = times as u64;
                ig.base_users = users as u64;
            }
            let ignore_json = match status {
                Status::Ignored => ignore.as_ref().map(|i| serde_json::to_string(i).unwrap_or_default()),
                _ => None,
            };
            tx.execute(
                "UPDATE issues SET status = ?2, substatus = ?3, resolution = ?4, ignore_condition = ?5, resolved_at = ?6 WHERE id = ?1",
                params![id, status.as_str(), substatus, resolution, ignore_json, resolved_at],
            )?;
            let data = json!({"resolution": update.resolution, "ignore": ignore});
            record_activity(tx, id, activity, &data, update.user_id)?;
            Ok(())
        })
        .await
    }

    /// The latest release seen in a project (by first appearance), for "resolve in next release".
    pub async fn latest_release(&self, project_id: i64) -> Result<Option<String>> {
        self.read(move |c| {
            let rows: Vec<(String, f64)> = c
                .prepare_cached("SELECT version, first_seen FROM releases WHERE project_id = ?1")?
                .query_map([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows
                .iter()
                .max_by(|a, b| bugbane_core::lifecycle::compare_releases(&a.0, &b.0, a.1, b.1))
                .map(|r| r.0.clone()))
        })
        .await
    }

    /// Deletes an issue with its events, hashes and counters.
    pub async fn delete_issue(&self, id: i64) -> Result<()> {
        self.write(move |tx| {
            crate::ingest::lock_issue_project(tx, id)?;
            for sql in [
                "DELETE FROM events WHERE issue_id = ?1",
                "DELETE FROM grouphashes WHERE issue_id = ?1",
                "DELETE FROM issue_users WHERE issue_id = ?1",
                "DELETE FROM issue_hourly WHERE issue_id = ?1",
                "DELETE FROM issue_minutely WHERE issue_id = ?1",
                "DELETE FROM issue_tags WHERE issue_id = ?1",
                "DELETE FROM activity WHERE issue_id = ?1",
                "DELETE FROM alert_fired WHERE issue_id = ?1",
            ] {
                tx.execute(sql, [id])?;
            }
            if tx.execute("DELETE FROM issues WHERE id = ?1", [id])? == 0 {
                return Err(Error::NotFound("issue"));
            }
            Ok(())
        })
        .await
    }

    /// An issue's events, newest first.
    pub async fn issue_events(
        &self,
        issue_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>> {
        let dicts = self.dicts();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, project_id, event_id, issue_id, timestamp, received, primary_hash, payload FROM events
                 WHERE issue_id = ?1 ORDER BY timestamp DESC, id DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![issue_id, limit, offset], raw_event_row)?;
            rows.map(|r| r.map_err(Error::from).and_then(|r| finish_event(&dicts, c, r))).collect()
        })
        .await
    }

    /// The newest or oldest event of an issue.
    pub async fn issue_event_edge(
        &self,
        issue_id: i64,
        latest: bool,
    ) -> Result<Option<EventRecord>> {
        let order = if latest { "DESC" } else { "ASC" };
        let dicts = self.dicts();
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT id, project_id, event_id, issue_id, timestamp, received, primary_hash, payload FROM events
                     WHERE issue_id = ?1 ORDER BY timestamp {order}, id {order} LIMIT 1"
                ))?
                .query_row([issue_id], raw_event_row)
                .optional()?;
            row.map(|r| finish_event(&dicts, c, r)).transpose()
        })
        .await
    }

    /// One event by its id within a project.
    pub async fn event(&self, project_id: i64, event_id: String) -> Result<Option<EventRecord>> {
        let dicts = self.dicts();
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT id, project_id, event_id, issue_id, timestamp, received, primary_hash, payload FROM events
                     WHERE project_id = ?1 AND event_id = ?2",
                )?
                .query_row(params![project_id, event_id], raw_event_row)
                .optional()?;
            row.map(|r| finish_event(&dicts, c, r)).transpose()
        })
        .await
    }

    /// Tag facets of an issue: every key with its top values (search-only keys excluded).
    pub async fn issue_tags(&self, issue_id: i64, top: i64) -> Result<Vec<TagFacet>> {
        self.read(move |c| {
            let keys: Vec<(String, i64, i64)> = c
                .prepare_cached(
                    "SELECT key, SUM(count), COUNT(*) FROM issue_tags WHERE issue_id = ?1 AND key NOT LIKE 'user.%'
                     GROUP BY key ORDER BY SUM(count) DESC, key",
                )?
                .query_map([issue_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            keys.into_iter()
                .map(|(key, total, distinct)| {
                    let top = tag_values(c, issue_id, &key, top)?;
                    Ok(TagFacet { key, total, distinct, top })
                })
                .collect()
        })
        .await
    }

    /// Values of one tag key on an issue, most frequent first.
    pub async fn issue_tag_values(
        &self,
        issue_id: i64,
        key: String,
        limit: i64,
    ) -> Result<Vec<TagValue>> {
        self.read(move |c| tag_values(c, issue_id, &key, limit))
            .await
    }

    /// Hashes attached to an issue.
    pub async fn issue_hashes(&self, issue_id: i64) -> Result<Vec<GroupHash>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT hash, config, events FROM grouphashes WHERE issue_id = ?1 ORDER BY hash",
            )?;
            let rows = stmt.query_map([issue_id], |r| {
                Ok(GroupHash {
                    hash: r.get(0)?,
                    config: r.get(1)?,
                    events: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// An issue's activity log, oldest first.
    pub async fn issue_activity(&self, issue_id: i64) -> Result<Vec<Activity>> {
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT id, type, data, user_id, created FROM activity WHERE issue_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map([issue_id], |r| {
                let data: String = r.get(2)?;
                Ok(Activity {
                    id: r.get(0)?,
                    ty: r.get(1)?,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                    user_id: r.get(3)?,
                    created: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Hourly event counts of an issue since `since_hour` (hours since the epoch).
    pub async fn issue_hourly(&self, issue_id: i64, since_hour: i64) -> Result<Vec<(i64, i64)>> {
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT hour, count FROM issue_hourly WHERE issue_id = ?1 AND hour >= ?2 ORDER BY hour")?;
            let rows = stmt.query_map(params![issue_id, since_hour], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Row counts per stored kind, in one project or all.
    pub async fn counts(&self, project_id: Option<i64>) -> Result<Counts> {
        // SQLite's spool is a file of its own, where rows already saved may linger a moment.
        let spool = if self.is_shared() {
            None
        } else {
            let done = self.spool_done();
            Some(
                self.read_spool(move |c| {
                    count(
                        c,
                        "SELECT COUNT(*) FROM spool WHERE id > ?2 AND (project_id = ?1 OR ?1 IS NULL)",
                        params![project_id, done],
                    )
                })
                .await?,
            )
        };
        self.read(move |c| {
            let n = |t: &str| {
                count(
                    c,
                    &format!("SELECT COUNT(*) FROM {t} WHERE project_id = ?1 OR ?1 IS NULL"),
                    [project_id],
                )
            };
            Ok(Counts {
                spool: match spool {
                    Some(n) => n,
                    None => n("spool")?,
                },
                events: n("events")?,
                issues: n("issues")?,
                transactions: n("transactions")?,
                spans: n("spans")?,
                sessions: n("sessions")?,
                session_aggregates: n("session_aggregates")?,
                check_ins: n("check_ins")?,
                feedback: n("feedback")?,
                attachments: n("attachments")?,
                logs: n("logs")?,
                client_reports: n("client_reports")?,
                raw_items: n("raw_items")?,
                dictionaries: count(c, "SELECT COUNT(*) FROM dictionaries", params![])?,
            })
        })
        .await
    }

    /// Attachments of an event: `(id, filename, content type, size)`.
    pub async fn event_attachments(
        &self,
        project_id: i64,
        event_id: String,
    ) -> Result<Vec<(i64, String, Option<String>, i64)>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, filename, content_type, size FROM attachments WHERE project_id = ?1 AND event_id = ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![project_id, event_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// An attachment's bytes.
    pub async fn attachment_data(&self, project_id: i64, id: i64) -> Result<Option<Vec<u8>>> {
        let dicts = self.dicts();
        self.read(move |c| {
            let blob: Option<Vec<u8>> = c
                .prepare_cached("SELECT data FROM attachments WHERE project_id = ?1 AND id = ?2")?
                .query_row(params![project_id, id], |r| r.get(0))
                .optional()?;
            blob.map(|b| dicts.decompress(c, &b)).transpose()
        })
        .await
    }

    /// Partitions of a time-partitioned table by day (PostgreSQL; none on SQLite), for
    /// operators and tests.
    pub async fn partition_days(&self, table: &'static str) -> Result<Vec<i64>> {
        self.read(move |c| {
            if c.dialect() != crate::db::Dialect::Postgres {
                return Ok(Vec::new());
            }
            Ok(crate::postgres::partitions(c, table)?
                .into_iter()
                .map(|(d, _)| d)
                .collect())
        })
        .await
    }

    /// Deletes data received before `cutoff` (UNIX seconds). Issues left without events go
    /// too; the others keep exact event counts, hourly counts and first-seen times.
    /// (Distinct-user and tag-value counts keep covering the issue's whole life.)
    pub async fn sweep_retention(&self, cutoff: f64) -> Result<usize> {
        self.write(move |tx| {
            let partitioned = tx.dialect() == crate::db::Dialect::Postgres;
            if partitioned {
                crate::postgres::ensure_partitions(tx, now())?;
            }
            tx.execute("DROP TABLE IF EXISTS doomed", params![])?;
            tx.execute(
                "CREATE TEMP TABLE doomed AS SELECT id, issue_id, primary_hash, CAST(FLOOR(timestamp / 3600) AS BIGINT) AS hour FROM events WHERE received < ?1",
                [cutoff],
            )?;
            tx.execute(
                "UPDATE issue_hourly SET count = count - (SELECT COUNT(*) FROM doomed d WHERE d.issue_id = issue_hourly.issue_id AND d.hour = issue_hourly.hour)
                 WHERE (issue_id, hour) IN (SELECT issue_id, hour FROM doomed)",
                params![],
            )?;
            tx.execute("DELETE FROM issue_hourly WHERE count <= 0", params![])?;
            tx.execute(
                "UPDATE grouphashes SET events = events - (SELECT COUNT(*) FROM doomed d WHERE d.issue_id = grouphashes.issue_id AND d.primary_hash = grouphashes.hash)
                 WHERE (issue_id, hash) IN (SELECT issue_id, primary_hash FROM doomed)",
                params![],
            )?;
            tx.execute(
                "UPDATE issues SET times_seen = times_seen - (SELECT COUNT(*) FROM doomed d WHERE d.issue_id = issues.id)
                 WHERE id IN (SELECT issue_id FROM doomed)",
                params![],
            )?;
            // On PostgreSQL whole days go at once (counters were adjusted above); the rest
            // (the newest day, rows in the default partition) row by row.
            let events = count(tx, "SELECT COUNT(*) FROM doomed", params![])? as usize;
            if partitioned {
                for (table, _) in crate::postgres::PARTITIONED {
                    crate::postgres::drop_expired_partitions(tx, table, cutoff)?;
                }
            }
            tx.execute("DELETE FROM events WHERE id IN (SELECT id FROM doomed)", params![])?;
            tx.execute(
                "UPDATE issues SET first_seen = (SELECT MIN(timestamp) FROM events e WHERE e.issue_id = issues.id)
                 WHERE id IN (SELECT issue_id FROM doomed)
                   AND EXISTS (SELECT 1 FROM events e WHERE e.issue_id = issues.id)",
                params![],
            )?;
            // Issues whose last event is gone go with everything hanging off them.
            let dead = "SELECT id FROM issues WHERE times_seen <= 0 OR (id IN (SELECT issue_id FROM doomed)
                AND NOT EXISTS (SELECT 1 FROM events e WHERE e.issue_id = issues.id))";
            for table in ["grouphashes", "issue_users", "issue_hourly", "issue_minutely", "issue_tags", "activity", "alert_fired"] {
                tx.execute(&format!("DELETE FROM {table} WHERE issue_id IN ({dead})"), params![])?;
            }
            tx.execute(&format!("DELETE FROM issues WHERE id IN ({dead})"), params![])?;
            tx.execute("DROP TABLE doomed", params![])?;
            for (table, col) in [
                ("transactions", "finish"),
                ("spans", "finish"),
                ("sessions", "timestamp"),
                ("session_aggregates", "started"),
                ("check_ins", "timestamp"),
                ("feedback", "timestamp"),
                ("attachments", "received"),
                ("logs", "timestamp"),
                ("client_reports", "received"),
                ("raw_items", "received"),
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE {col} < ?1"), [cutoff])?;
            }
            tx.execute("DELETE FROM notifications WHERE created < ?1 AND status != 'pending'", [cutoff])?;
            let oldest_minute = (now() / 60.0).floor() as i64 - i64::from(bugbane_core::alerts::MAX_WINDOW_MINUTES);
            tx.execute("DELETE FROM issue_minutely WHERE minute < ?1", [oldest_minute])?;
            Ok(events)
        })
        .await
    }
}

type RawEvent = (i64, i64, String, i64, f64, f64, String, Vec<u8>);

fn raw_event_row(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn finish_event(dicts: &Dictionaries, c: &Db, raw: RawEvent) -> Result<EventRecord> {
    let (id, project_id, event_id, issue_id, timestamp, received, primary_hash, payload) = raw;
    Ok(EventRecord {
        id,
        project_id,
        event_id,
        issue_id,
        timestamp,
        received,
        primary_hash,
        payload: dicts.decompress_json(c, &payload)?,
    })
}

fn tag_values(c: &Db, issue_id: i64, key: &str, limit: i64) -> Result<Vec<TagValue>> {
    let mut stmt = c.prepare_cached(
        "SELECT value, count, first_seen, last_seen FROM issue_tags WHERE issue_id = ?1 AND key = ?2
         ORDER BY count DESC, value LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![issue_id, key, limit], |r| {
        Ok(TagValue {
            value: r.get(0)?,
            count: r.get(1)?,
            first_seen: r.get(2)?,
            last_seen: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn list_issues(c: &Db, q: &IssueQuery) -> Result<(Vec<Issue>, bool)> {
    let mut sql = format!("SELECT {ISSUE_COLS} FROM {ISSUE_FROM} WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let arg = |v: rusqlite::types::Value, args: &mut Vec<rusqlite::types::Value>| {
        args.push(v);
        format!("?{}", args.len())
    };
    use rusqlite::types::Value as V;
    if !q.project_ids.is_empty() {
        let list: Vec<String> = q
            .project_ids
            .iter()
            .map(|id| arg(V::Integer(*id), &mut args))
            .collect();
        sql.push_str(&format!(" AND i.project_id IN ({})", list.join(", ")));
    } else {
        sql.push_str(" AND 0");
    }
    if let Some(since) = q.since {
        let p = arg(V::Real(since), &mut args);
        sql.push_str(&format!(" AND i.last_seen >= {p}"));
    }
    if let Some(env) = &q.environment {
        let p = arg(V::Text(env.clone()), &mut args);
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = 'environment' AND t.value = {p})"
        ));
    }
    for term in &q.search.terms {
        let not = if term.negated { "NOT " } else { "" };
        let cond = match term.key.as_str() {
            "is" => {
                let status = match term.value.as_str() {
                    "unresolved" | "resolved" | "ignored" => term.value.clone(),
                    "muted" | "archived" => "ignored".into(),
                    _ => continue,
                };
                let p = arg(V::Text(status), &mut args);
                format!("i.status = {p}")
            }
            "level" => {
                let p = arg(V::Text(term.value.clone()), &mut args);
                format!("i.level = {p}")
            }
            key => {
                let k = arg(V::Text(key.to_owned()), &mut args);
                let v = arg(V::Text(term.value.clone()), &mut args);
                format!(
                    "EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = {k} AND t.value = {v})"
                )
            }
        };
        sql.push_str(&format!(" AND {not}({cond})"));
    }
    for word in &q.search.text {
        let p = arg(V::Text(like_pattern(word)), &mut args);
        let like = c.dialect().ilike();
        sql.push_str(&format!(
            " AND (i.title {like} {p} ESCAPE '\\' OR i.culprit {like} {p} ESCAPE '\\')"
        ));
    }
    let order = match q.sort {
        IssueSort::Date => "i.last_seen DESC",
        IssueSort::New => "i.first_seen DESC",
        IssueSort::Freq => "i.times_seen DESC",
        IssueSort::User => "i.user_count DESC",
    };
    let limit = q.limit.clamp(1, 100);
    sql.push_str(&format!(
        " ORDER BY {order}, i.id DESC LIMIT {} OFFSET {}",
        limit + 1,
        q.offset.max(0)
    ));
    let mut stmt = c.prepare(&sql)?;
    let mut rows: Vec<Issue> = stmt
        .query_map(&args, issue_row)?
        .collect::<rusqlite::Result<_>>()?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

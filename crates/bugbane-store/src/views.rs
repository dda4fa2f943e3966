//! Reads behind the feedback, logs, release-health and cron-monitor views, and the
//! client-report totals.

use bugbane_core::crons::Reported;
use bugbane_core::health::{AggregateFacts, SessionFacts};
use rusqlite::params;

use crate::db::Row;
use serde_json::Value;

use crate::error::Result;
use crate::model::{FeedbackRow, Issue, LogQuery, LogRow, MonitorRow, ReleaseRow};
use crate::store::Store;

const FEEDBACK_SELECT: &str = "SELECT f.id, f.kind, f.event_id, f.associated_event_id,
    (SELECT e.issue_id FROM events e WHERE e.project_id = f.project_id AND e.event_id = f.associated_event_id),
    f.name, f.email, f.message, f.url, f.timestamp FROM feedback f";

fn feedback_row(r: &Row<'_>) -> rusqlite::Result<FeedbackRow> {
    Ok(FeedbackRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        event_id: r.get(2)?,
        associated_event_id: r.get(3)?,
        issue_id: r.get(4)?,
        name: r.get(5)?,
        email: r.get(6)?,
        message: r.get(7)?,
        url: r.get(8)?,
        timestamp: r.get(9)?,
    })
}

fn log_row(r: &Row<'_>) -> rusqlite::Result<LogRow> {
    let attributes: String = r.get(7)?;
    Ok(LogRow {
        id: r.get(0)?,
        project_id: r.get(1)?,
        timestamp: r.get(2)?,
        trace_id: r.get(3)?,
        span_id: r.get(4)?,
        level: r.get(5)?,
        body: r.get(6)?,
        attributes: serde_json::from_str(&attributes).unwrap_or(Value::Null),
        release: r.get(8)?,
        environment: r.get(9)?,
    })
}

const LOG_COLS: &str =
    "id, project_id, timestamp, trace_id, span_id, level, body, attributes, release, environment";

impl Store {
    /// A project's feedback, newest first.
    pub async fn project_feedback(
        &self,
        project_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<FeedbackRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{FEEDBACK_SELECT} WHERE f.project_id = ?1 ORDER BY f.timestamp DESC, f.id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = stmt.query_map(params![project_id, limit, offset], feedback_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Feedback about the events of one issue, newest first.
    pub async fn issue_feedback(&self, issue_id: i64) -> Result<Vec<FeedbackRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{FEEDBACK_SELECT} JOIN events e2 ON e2.project_id = f.project_id AND e2.event_id = f.associated_event_id
                 WHERE e2.issue_id = ?1 ORDER BY f.timestamp DESC LIMIT 100"
            ))?;
            let rows = stmt.query_map([issue_id], feedback_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Structured logs matching a search, newest first.
    pub async fn logs(&self, q: LogQuery) -> Result<Vec<LogRow>> {
        self.read(move |c| {
            let mut sql =
                format!("SELECT {LOG_COLS} FROM logs WHERE project_id = ?1 AND timestamp >= ?2");
            let mut args: Vec<rusqlite::types::Value> = vec![q.project_id.into(), q.since.into()];
            let arg = |v: rusqlite::types::Value, args: &mut Vec<rusqlite::types::Value>| {
                args.push(v);
                format!("?{}", args.len())
            };
            if let Some(level) = &q.level {
                let p = arg(level.clone().into(), &mut args);
                sql.push_str(&format!(" AND level = {p}"));
            }
            if let Some(trace) = &q.trace_id {
                let p = arg(trace.clone().into(), &mut args);
                sql.push_str(&format!(" AND trace_id = {p}"));
            }
            for word in &q.text {
                let p = arg(crate::queries::like_pattern(word).into(), &mut args);
                let like = c.dialect().ilike();
                sql.push_str(&format!(" AND body {like} {p} ESCAPE '\\'"));
            }
            for (k, v) in &q.attributes {
                // Attributes are `{"key": {"type": …, "value": …}}` (or plain values).
                let p = arg(k.replace('"', "").into(), &mut args);
                let val = arg(v.clone().into(), &mut args);
                let typed = c.dialect().json_text("attributes", &p, Some("value"));
                let plain = c.dialect().json_text("attributes", &p, None);
                sql.push_str(&format!(" AND ({typed} = {val} OR {plain} = {val})"));
            }
            let lim = arg(q.limit.into(), &mut args);
            sql.push_str(&format!(" ORDER BY timestamp DESC, id DESC LIMIT {lim}"));
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(&args, log_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Logs of a trace, in time order, across projects.
    pub async fn trace_logs(&self, trace_id: String) -> Result<Vec<LogRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {LOG_COLS} FROM logs WHERE trace_id = ?1 ORDER BY timestamp, id LIMIT 1000"
            ))?;
            let rows = stmt.query_map([trace_id], log_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Events SDKs dropped since `since`, by reason and category.
    pub async fn client_report_totals(
        &self,
        project_id: i64,
        since: f64,
    ) -> Result<Vec<(String, String, i64)>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT reason, category, SUM(quantity) FROM client_reports WHERE project_id = ?1 AND received >= ?2
                 GROUP BY reason, category ORDER BY 3 DESC",
            )?;
            let rows = stmt.query_map(params![project_id, since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Sessions (their latest state) and session aggregates started since `since`,
    /// optionally of one release.
    pub async fn session_facts(
        &self,
        project_id: i64,
        since: f64,
        release: Option<String>,
    ) -> Result<(Vec<SessionFacts>, Vec<AggregateFacts>)> {
        self.read(move |c| {
            let sessions = c
                .prepare_cached(
                    "SELECT release, status, errors, did FROM sessions WHERE project_id = ?1 AND started >= ?2
                     AND (release = ?3 OR ?3 IS NULL)",
                )?
                .query_map(params![project_id, since, release], |r| {
                    Ok(SessionFacts { release: r.get(0)?, status: r.get(1)?, errors: r.get(2)?, did: r.get(3)? })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let aggregates = c
                .prepare_cached(
                    "SELECT release, SUM(exited), SUM(errored), SUM(abnormal), SUM(crashed) FROM session_aggregates
                     WHERE project_id = ?1 AND started >= ?2 AND (release = ?3 OR ?3 IS NULL) GROUP BY release",
                )?
                .query_map(params![project_id, since, release], |r| {
                    Ok(AggregateFacts {
                        release: r.get(0)?,
                        exited: r.get(1)?,
                        errored: r.get(2)?,
                        abnormal: r.get(3)?,
                        crashed: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((sessions, aggregates))
        })
        .await
    }

    /// A release's sessions per UTC day since `since`: (day start, sessions, crashed),
    /// oldest first, single sessions and aggregates together.
    pub async fn release_days(
        &self,
        project_id: i64,
        version: String,
        since: f64,
    ) -> Result<Vec<(f64, i64, i64)>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT day, SUM(n), SUM(crashed) FROM (
                   SELECT CAST(FLOOR(started / 86400) AS BIGINT) AS day, 1 AS n,
                     CASE WHEN status = 'crashed' THEN 1 ELSE 0 END AS crashed
                     FROM sessions WHERE project_id = ?1 AND started >= ?2 AND release = ?3
                   UNION ALL
                   SELECT CAST(FLOOR(started / 86400) AS BIGINT), exited + errored + abnormal + crashed, crashed
                     FROM session_aggregates WHERE project_id = ?1 AND started >= ?2 AND release = ?3) AS days
                 GROUP BY day ORDER BY day",
            )?;
            let rows = stmt.query_map(params![project_id, since, version], |r| {
                Ok((r.get::<_, i64>(0)? as f64 * 86400.0, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// A project's releases, newest first.
    pub async fn releases(&self, project_id: i64) -> Result<Vec<ReleaseRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT version, first_seen, last_seen FROM releases WHERE project_id = ?1 ORDER BY first_seen DESC LIMIT 500",
            )?;
            let rows = stmt.query_map([project_id], |r| {
                Ok(ReleaseRow { version: r.get(0)?, first_seen: r.get(1)?, last_seen: r.get(2)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Issues first seen in a release, and issues that regressed in it.
    pub async fn release_issues(
        &self,
        project_id: i64,
        version: String,
    ) -> Result<(Vec<Issue>, Vec<Issue>)> {
        self.read(move |c| {
            let new = crate::queries::issues_where(
                c,
                "i.project_id = ?1 AND i.first_release = ?2 ORDER BY i.times_seen DESC LIMIT 100",
                params![project_id, version],
            )?;
            let version_of = c.dialect().json_text("a.data", "'version'", None);
            let regressed = crate::queries::issues_where(
                c,
                &format!("i.project_id = ?1 AND i.id IN (SELECT a.issue_id FROM activity a WHERE a.type = 'set_regression'
                   AND {version_of} = ?2) ORDER BY i.last_seen DESC LIMIT 100"),
                params![project_id, version],
            )?;
            Ok((new, regressed))
        })
        .await
    }

    /// A project's cron monitors.
    pub async fn monitors(&self, project_id: i64) -> Result<Vec<MonitorRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT slug, config, last_check_in, last_status FROM monitors WHERE project_id = ?1 ORDER BY slug",
            )?;
            let rows = stmt.query_map([project_id], |r| {
                let config: Option<String> = r.get(1)?;
                Ok(MonitorRow {
                    slug: r.get(0)?,
                    config: config.and_then(|c| serde_json::from_str(&c).ok()),
                    last_check_in: r.get(2)?,
                    last_status: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// A monitor's runs as its check-ins reported them since `since`: check-ins sharing
    /// an id are one run (its first time, its last status).
    pub async fn monitor_runs(
        &self,
        project_id: i64,
        slug: String,
        since: f64,
    ) -> Result<Vec<Reported>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT check_in_id, MIN(timestamp), (SELECT status FROM check_ins c2 WHERE c2.project_id = c.project_id
                   AND c2.monitor_slug = c.monitor_slug AND c2.check_in_id = c.check_in_id ORDER BY c2.id DESC LIMIT 1),
                   MAX(duration)
                 FROM check_ins c WHERE project_id = ?1 AND monitor_slug = ?2 AND timestamp >= ?3 AND check_in_id != ''
                 GROUP BY project_id, monitor_slug, check_in_id
                 UNION ALL
                 SELECT '', timestamp, status, duration FROM check_ins
                 WHERE project_id = ?1 AND monitor_slug = ?2 AND timestamp >= ?3 AND check_in_id = ''
                 ORDER BY 2",
            )?;
            let rows = stmt.query_map(params![project_id, slug, since], |r| {
                Ok(Reported { check_in_id: r.get(0)?, started: r.get(1)?, status: r.get(2)?, duration: r.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}

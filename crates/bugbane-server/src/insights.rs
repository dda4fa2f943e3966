//! The rest of what SDKs send, through the API: user feedback, structured logs, release
//! health, cron monitors and the events SDKs dropped. The dashboard renders the same
//! values from the functions here.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use bugbane_core::crons::{self, MonitorConfig};
use bugbane_core::health;
use bugbane_core::time_fmt::format_rfc3339;
use bugbane_store::{FeedbackRow, Issue, LogQuery, LogRow, Project};
use serde_json::{Value, json};

use crate::api::Caller;
use crate::error::ApiError;
use crate::performance::{param, stats_period};
use crate::{App, now};

type AppState = State<Arc<App>>;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/api/0/projects/{org}/{project}/user-feedback/",
            get(feedback),
        )
        .route("/api/0/issues/{id}/user-reports/", get(issue_feedback))
        .route("/api/0/projects/{org}/{project}/logs/", get(logs))
        .route("/api/0/projects/{org}/{project}/releases/", get(releases))
        .route(
            "/api/0/projects/{org}/{project}/releases/{version}/",
            get(release),
        )
        .route("/api/0/projects/{org}/{project}/monitors/", get(monitors))
        .route(
            "/api/0/projects/{org}/{project}/monitors/{slug}/checkins/",
            get(monitor_runs),
        )
        .route(
            "/api/0/projects/{org}/{project}/client-reports/",
            get(client_reports),
        )
}

/// Feedback in the shape of Sentry's user reports.
pub(crate) fn feedback_json(f: &FeedbackRow) -> Value {
    json!({
        "id": f.id.to_string(),
        "kind": f.kind,
        "eventID": f.associated_event_id.as_ref().or(f.event_id.as_ref()),
        "issue": f.issue_id.map(|i| json!({"id": i.to_string()})),
        "name": f.name,
        "email": f.email,
        "comments": f.message,
        "url": f.url,
        "dateCreated": format_rfc3339(f.timestamp),
        "ts": f.timestamp,
    })
}

async fn feedback(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let rows = app.store.project_feedback(p.id, 0, 100).await?;
    Ok(Json(Value::Array(rows.iter().map(feedback_json).collect())))
}

async fn issue_feedback(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let rows = app.store.issue_feedback(issue.id).await?;
    Ok(Json(Value::Array(rows.iter().map(feedback_json).collect())))
}

/// Reads a log search: `level:error trace:<id> key:value` terms and free text.
pub(crate) fn log_query(project_id: i64, query: &str, period: f64) -> LogQuery {
    let parsed = bugbane_core::search::parse(query);
    let mut q = LogQuery {
        project_id,
        since: now() - period,
        text: parsed.text,
        limit: 200,
        ..Default::default()
    };
    for t in parsed.terms {
        match t.key.as_str() {
            "level" | "severity" => q.level = Some(t.value),
            "trace" | "trace_id" | "trace.id" => q.trace_id = Some(t.value.to_ascii_lowercase()),
            _ => q.attributes.push((t.key, t.value)),
        }
    }
    q
}

/// An attribute's display value (`{"type", "value"}` objects or plain values).
fn attribute_pairs(attrs: &Value) -> Vec<Value> {
    attrs
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v.get("value").unwrap_or(v);
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            json!([k, text])
        })
        .collect()
}

pub(crate) fn log_json(l: &LogRow) -> Value {
    json!({
        "id": l.id.to_string(),
        "timestamp": format_rfc3339(l.timestamp),
        "ts": l.timestamp,
        "level": l.level,
        "message": l.body,
        "traceId": l.trace_id,
        "spanId": l.span_id,
        "release": l.release,
        "environment": l.environment,
        "attributes": attribute_pairs(&l.attributes),
    })
}

async fn logs(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let period = stats_period(raw.as_deref(), "24h")?;
    let q = log_query(
        p.id,
        &param(raw.as_deref(), "query").unwrap_or_default(),
        period,
    );
    let rows = app.store.logs(q).await?;
    Ok(Json(Value::Array(rows.iter().map(log_json).collect())))
}

fn health_json(h: &health::ReleaseHealth) -> Value {
    json!({
        "sessions": h.sessions, "sessionsCrashed": h.crashed, "sessionsErrored": h.errored,
        "sessionsAbnormal": h.abnormal, "sessionsHealthy": h.healthy, "totalUsers": h.users,
        "usersCrashed": h.crashed_users,
        "crashFreeSessions": h.crash_free_sessions.map(|r| r * 100.0),
        "crashFreeUsers": h.crash_free_users.map(|r| r * 100.0),
        "adoption": h.adoption * 100.0,
    })
}

/// Releases with their health over a period, newest first.
pub(crate) async fn release_list(
    app: &App,
    p: &Project,
    period: f64,
) -> Result<Vec<Value>, ApiError> {
    let (sessions, aggregates) = app.store.session_facts(p.id, now() - period, None).await?;
    let health = health::release_health(&sessions, &aggregates);
    let mut versions = app.store.releases(p.id).await?;
    // Releases known only from sessions are releases too.
    for h in &health {
        if !versions.iter().any(|v| v.version == h.release) {
            versions.push(bugbane_store::ReleaseRow {
                version: h.release.clone(),
                first_seen: 0.0,
                last_seen: 0.0,
            });
        }
    }
    Ok(versions
        .iter()
        .map(|v| {
            let h = health.iter().find(|h| h.release == v.version);
            json!({
                "version": v.version,
                "dateCreated": (v.first_seen > 0.0).then(|| format_rfc3339(v.first_seen)),
                "firstSeen": v.first_seen,
                "lastEvent": (v.last_seen > 0.0).then(|| format_rfc3339(v.last_seen)),
                "healthData": h.map(health_json),
            })
        })
        .collect())
}

async fn releases(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let period = stats_period(raw.as_deref(), "30d")?;
    Ok(Json(Value::Array(release_list(&app, &p, period).await?)))
}

fn issue_brief(i: &Issue) -> Value {
    json!({"id": i.id.to_string(), "shortId": format!("{}-{}", i.project_slug.to_uppercase(), i.short_id),
           "title": i.title, "culprit": i.culprit, "level": i.level, "count": i.times_seen.to_string(),
           "status": i.status.as_str(), "lastSeen": format_rfc3339(i.last_seen)})
}

/// One release: its health over a period, new issues and regressions.
pub(crate) async fn release_detail(
    app: &App,
    p: &Project,
    version: &str,
    period: f64,
) -> Result<Value, ApiError> {
    let (sessions, aggregates) = app
        .store
        .session_facts(p.id, now() - period, Some(version.to_owned()))
        .await?;
    let h = health::release_health(&sessions, &aggregates)
        .into_iter()
        .next();
    let (new, regressed) = app.store.release_issues(p.id, version.to_owned()).await?;
    let days: Vec<Value> = app
        .store
        .release_days(p.id, version.to_owned(), now() - period)
        .await?
        .into_iter()
        .map(|(day, sessions, crashed)| {
            json!({"day": format_rfc3339(day).get(..10), "ts": day, "sessions": sessions, "crashed": crashed,
                   "crashFreeSessions": (sessions > 0).then(|| (1.0 - crashed as f64 / sessions as f64) * 100.0)})
        })
        .collect();
    let known = app
        .store
        .releases(p.id)
        .await?
        .into_iter()
        .find(|r| r.version == version);
    if known.is_none() && h.is_none() {
        return Err(ApiError::NotFound("release not found".into()));
    }
    Ok(json!({
        "version": version,
        "dateCreated": known.as_ref().map(|k| format_rfc3339(k.first_seen)),
        "lastEvent": known.as_ref().map(|k| format_rfc3339(k.last_seen)),
        "healthData": h.as_ref().map(health_json),
        "newGroups": new.len(),
        "healthByDay": days,
        "newIssues": new.iter().map(issue_brief).collect::<Vec<_>>(),
        "regressions": regressed.iter().map(issue_brief).collect::<Vec<_>>(),
    }))
}

async fn release(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, version)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let period = stats_period(raw.as_deref(), "30d")?;
    Ok(Json(release_detail(&app, &p, &version, period).await?))
}

/// How far back monitor timelines look.
const MONITOR_WINDOW: f64 = 7.0 * 86400.0;

/// A monitor with its runs, newest first.
pub(crate) async fn monitor_view(app: &App, p: &Project, slug: &str) -> Result<Value, ApiError> {
    let m = app
        .store
        .monitors(p.id)
        .await?
        .into_iter()
        .find(|m| m.slug == slug)
        .ok_or_else(|| ApiError::NotFound("monitor not found".into()))?;
    let config = m.config.as_ref().and_then(MonitorConfig::parse);
    let reported = app
        .store
        .monitor_runs(p.id, slug.to_owned(), now() - MONITOR_WINDOW)
        .await?;
    let runs = crons::timeline(config.as_ref(), &reported, now());
    let status = match runs.first().map(|r| r.outcome) {
        None => "pending",
        Some("ok") => "ok",
        Some("in_progress") => "in_progress",
        Some(_) => "error",
    };
    Ok(json!({
        "slug": m.slug,
        "status": status,
        "schedule": config.as_ref().map(|c| c.description.clone()),
        "checkinMargin": config.as_ref().map(|c| c.margin_minutes),
        "maxRuntime": config.as_ref().map(|c| c.max_runtime_minutes),
        "lastCheckIn": m.last_check_in.map(format_rfc3339),
        "runs": runs.iter().map(|r| json!({
            "expected": r.expected.map(format_rfc3339), "started": r.started.map(format_rfc3339),
            "expectedTs": r.expected, "startedTs": r.started,
            "status": r.outcome, "duration": r.duration, "checkInId": r.check_in_id,
        })).collect::<Vec<_>>(),
    }))
}

async fn monitors(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let mut out = Vec::new();
    for m in app.store.monitors(p.id).await? {
        let mut v = monitor_view(&app, &p, &m.slug).await?;
        if let Some(o) = v.as_object_mut() {
            o.remove("runs");
        }
        out.push(v);
    }
    Ok(Json(Value::Array(out)))
}

async fn monitor_runs(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, monitor)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    Ok(Json(
        monitor_view(&app, &p, &monitor).await?["runs"].clone(),
    ))
}

async fn client_reports(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let period = stats_period(raw.as_deref(), "30d")?;
    let rows = app.store.client_report_totals(p.id, now() - period).await?;
    Ok(Json(Value::Array(
        rows.iter()
            .map(|(reason, category, quantity)| json!({"reason": reason, "category": category, "quantity": quantity}))
            .collect(),
    )))
}

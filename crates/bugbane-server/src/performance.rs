//! Performance through the API: transaction summaries, one transaction's figures with its
//! duration histogram and slowest runs, Web Vitals per page, and a trace with its errors.
//! Shared with the dashboard, which renders the same values.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use bugbane_core::perf::{self, TransactionStats};
use bugbane_store::Project;
use serde_json::{Value, json};

use crate::access::{Access, parse_period};
use crate::api::Caller;
use crate::error::ApiError;
use crate::{App, now};

type AppState = State<Arc<App>>;

/// Apdex threshold (Sentry's default), in milliseconds.
pub(crate) const APDEX_T_MS: f64 = 300.0;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/0/projects/{org}/{project}/transactions/", get(list))
        .route(
            "/api/0/projects/{org}/{project}/transaction-summary/",
            get(summary),
        )
        .route("/api/0/projects/{org}/{project}/web-vitals/", get(vitals))
        .route(
            "/api/0/organizations/{org}/events-trace/{trace_id}/",
            get(trace),
        )
}

/// `statsPeriod` from a query string, in seconds, or `default`.
pub(crate) fn stats_period(raw: Option<&str>, default: &str) -> Result<f64, ApiError> {
    let p = param(raw, "statsPeriod").filter(|p| !p.is_empty());
    period_secs(p.as_deref().unwrap_or(default))
}

/// A period like `24h`, in seconds.
pub(crate) fn period_secs(p: &str) -> Result<f64, ApiError> {
    parse_period(p)
        .filter(|s| *s > 0.0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid statsPeriod {p:?}")))
}

/// One value of a query string.
pub(crate) fn param(raw: Option<&str>, name: &str) -> Option<String> {
    raw.map(bugbane_protocol::auth::parse_query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Sorts summaries by a column name (`-` prefix or not: descending is the default).
pub(crate) fn sort_stats(stats: &mut [TransactionStats], by: &str) {
    let key = |s: &TransactionStats| -> f64 {
        match by {
            "p50" => s.p50,
            "p75" => s.p75,
            "p95" => s.p95,
            "p99" => s.p99,
            "failure_rate" => s.failure_rate,
            "apdex" => s.apdex,
            "throughput" => s.throughput,
            _ => s.count as f64,
        }
    };
    stats.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
}

/// Transaction summaries of a project over a period.
pub(crate) async fn transaction_stats(
    app: &App,
    p: &Project,
    period: f64,
) -> Result<Vec<TransactionStats>, ApiError> {
    let runs = app.store.segment_runs(p.id, now() - period, None).await?;
    Ok(perf::summarize(runs, APDEX_T_MS, period / 60.0))
}

async fn list(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let period = stats_period(raw.as_deref(), "24h")?;
    let mut stats = transaction_stats(&app, &p, period).await?;
    sort_stats(
        &mut stats,
        param(raw.as_deref(), "sort").as_deref().unwrap_or("count"),
    );
    Ok(Json(json!(stats)))
}

/// One transaction: figures, histogram and slowest runs.
pub(crate) async fn transaction_detail(
    app: &App,
    p: &Project,
    name: &str,
    period: f64,
) -> Result<Value, ApiError> {
    let since = now() - period;
    let runs = app
        .store
        .segment_runs(p.id, since, Some(name.to_owned()))
        .await?;
    let durations: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.durations_ms.iter().copied())
        .collect();
    let stats = perf::summarize(runs, APDEX_T_MS, period / 60.0)
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound("no such transaction in this period".into()))?;
    let histogram: Vec<Value> = perf::histogram(&durations, 20)
        .into_iter()
        .map(|(lo, hi, count)| json!({"from": lo, "to": hi, "count": count}))
        .collect();
    let slowest: Vec<Value> = app
        .store
        .slowest_segments(p.id, name.to_owned(), since, 20)
        .await?
        .into_iter()
        .map(|s| {
            json!({"traceId": s.trace_id, "spanId": s.span_id, "start": s.start, "duration": s.duration_ms,
                   "status": s.status, "release": s.release, "environment": s.environment})
        })
        .collect();
    Ok(json!({"stats": stats, "histogram": histogram, "slowest": slowest}))
}

async fn summary(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let name = param(raw.as_deref(), "transaction")
        .ok_or_else(|| ApiError::BadRequest("transaction is required".into()))?;
    let period = stats_period(raw.as_deref(), "24h")?;
    Ok(Json(transaction_detail(&app, &p, &name, period).await?))
}

async fn vitals(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let period = stats_period(raw.as_deref(), "24h")?;
    let loads = app.store.page_loads(p.id, now() - period).await?;
    Ok(Json(json!(perf::web_vitals(&loads))))
}

/// A trace: its spans in waterfall order with depth and offsets, and its errors, limited
/// to the projects the caller may see.
pub(crate) async fn trace_view(
    app: &App,
    access: &Access,
    trace_id: &str,
) -> Result<Value, ApiError> {
    let trace_id = trace_id.to_ascii_lowercase();
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("trace not found".into()));
    }
    let visible: std::collections::HashMap<i64, Project> = access
        .projects(app, None)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let spans: Vec<_> = app
        .store
        .trace_spans(trace_id.clone())
        .await?
        .into_iter()
        .filter(|s| visible.contains_key(&s.project_id))
        .collect();
    let errors: Vec<_> = app
        .store
        .trace_errors(trace_id.clone())
        .await?
        .into_iter()
        .filter(|e| visible.contains_key(&e.project_id))
        .collect();
    let logs: Vec<_> = app
        .store
        .trace_logs(trace_id.clone())
        .await?
        .into_iter()
        .filter(|l| visible.contains_key(&l.project_id))
        .collect();
    if spans.is_empty() && errors.is_empty() && logs.is_empty() {
        return Err(ApiError::NotFound("trace not found".into()));
    }
    // The trace spans everything in it: spans, errors and logs.
    let (start, end) = spans
        .iter()
        .map(|s| (s.start, s.end))
        .chain(errors.iter().map(|e| (e.timestamp, e.timestamp)))
        .chain(logs.iter().map(|l| (l.timestamp, l.timestamp)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (s, e)| {
            (a.min(s), b.max(e))
        });
    let keys: Vec<(&str, Option<&str>, f64)> = spans
        .iter()
        .map(|s| (s.span_id.as_str(), s.parent_span_id.as_deref(), s.start))
        .collect();
    let project = |id: i64| visible.get(&id).map(|p| p.slug.clone());
    let ordered: Vec<Value> = perf::waterfall(&keys)
        .into_iter()
        .map(|(i, depth)| {
            let s = &spans[i];
            json!({
                "spanId": s.span_id, "parentSpanId": s.parent_span_id, "name": s.name, "op": s.op,
                "status": s.status, "isSegment": s.is_segment, "project": project(s.project_id), "depth": depth,
                "offsetMs": (s.start - start) * 1000.0, "durationMs": (s.end - s.start) * 1000.0,
                "failed": perf::is_failure(s.status.as_deref()),
            })
        })
        .collect();
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({"eventId": e.event_id, "issueId": e.issue_id.to_string(), "title": e.title, "level": e.level,
                   "project": project(e.project_id), "offsetMs": (e.timestamp - start) * 1000.0})
        })
        .collect();
    Ok(json!({
        "traceId": trace_id,
        "start": start,
        "durationMs": ((end - start) * 1000.0).max(0.0),
        "spans": ordered,
        "errors": errors,
        "logs": logs.iter().map(crate::insights::log_json).collect::<Vec<_>>(),
    }))
}

async fn trace(
    State(app): AppState,
    caller: Caller,
    Path((_org, trace_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(trace_view(&app, &caller, &trace_id).await?))
}

//! Performance pages: a project's transactions and Web Vitals, one transaction's figures,
//! and the trace waterfall (linked both ways with the errors of the trace).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use minijinja::context;
use serde_json::{Value, json};

use super::auth::Viewer;
use super::form::{encode, query_param};
use super::pages::{project_value, viewer_value};
use super::render::{WebError, page};
use crate::App;
use crate::performance::{
    period_secs, sort_stats, trace_view, transaction_detail, transaction_stats,
};

type AppState = State<Arc<App>>;

const PERIODS: &[(&str, &str)] = &[
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("14d", "Last 14 days"),
    ("30d", "Last 30 days"),
];

fn periods(current: &str) -> Vec<Value> {
    PERIODS
        .iter()
        .map(|(k, l)| json!({"key": k, "label": l, "active": *k == current}))
        .collect()
}

pub(crate) async fn overview(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let period = query_param(raw.as_deref(), "period").unwrap_or_else(|| "24h".into());
    let sort = query_param(raw.as_deref(), "sort").unwrap_or_else(|| "count".into());
    let secs = period_secs(&period)?;
    let mut stats = transaction_stats(&app, &project, secs).await?;
    sort_stats(&mut stats, &sort);
    let rows: Vec<Value> = stats
        .iter()
        .map(|s| {
            let mut v = json!(s);
            v["url"] = json!(format!(
                "/projects/{org}/{slug}/performance/summary?transaction={}&period={}",
                encode(&s.name),
                encode(&period)
            ));
            v
        })
        .collect();
    let loads = app
        .store
        .page_loads(project.id, crate::now() - secs)
        .await?;
    let vitals = bugbane_core::perf::web_vitals(&loads);
    let columns: Vec<Value> = [
        ("count", "Events"),
        ("throughput", "TPM"),
        ("failure_rate", "Failure rate"),
        ("p50", "p50"),
        ("p75", "p75"),
        ("p95", "p95"),
        ("p99", "p99"),
        ("apdex", "Apdex"),
    ]
    .iter()
    .map(|(k, l)| {
        json!({"key": k, "label": l, "active": *k == sort,
                         "url": format!("?period={}&sort={k}", encode(&period))})
    })
    .collect();
    Ok(page(
        "performance.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            transactions => rows,
            vitals,
            columns,
            periods => periods(&period),
            period,
            apdex_t => crate::performance::APDEX_T_MS,
        },
    ))
}

pub(crate) async fn summary(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let name = query_param(raw.as_deref(), "transaction")
        .ok_or_else(|| WebError::BadRequest("Which transaction? (?transaction=…)".into()))?;
    let period = query_param(raw.as_deref(), "period").unwrap_or_else(|| "24h".into());
    let detail = transaction_detail(&app, &project, &name, period_secs(&period)?).await?;
    let max = detail["histogram"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["count"].as_u64())
        .max()
        .unwrap_or(1)
        .max(1);
    let bars: Vec<Value> = detail["histogram"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, b)| {
            let c = b["count"].as_u64().unwrap_or(0);
            json!({"x": i * 20, "h": (c as f64 / max as f64 * 100.0), "y": 100.0 - c as f64 / max as f64 * 100.0,
                   "count": c, "from": b["from"], "to": b["to"]})
        })
        .collect();
    Ok(page(
        "performance_summary.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            name,
            period,
            periods => periods(&period),
            stats => detail["stats"].clone(),
            bars,
            slowest => detail["slowest"].clone(),
        },
    ))
}

pub(crate) async fn trace(
    State(app): AppState,
    viewer: Viewer,
    Path(trace_id): Path<String>,
) -> Result<Response, WebError> {
    let t = trace_view(&app, &viewer.access(), &trace_id).await?;
    let total = t["durationMs"].as_f64().unwrap_or(0.0).max(0.001);
    // Bars in a 0–1000 wide SVG, so the layout needs no inline styles.
    let spans: Vec<Value> = t["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let off = s["offsetMs"].as_f64().unwrap_or(0.0);
            let dur = s["durationMs"].as_f64().unwrap_or(0.0);
            let mut v = s.clone();
            v["x"] = json!(off / total * 1000.0);
            v["w"] = json!((dur / total * 1000.0).max(2.0));
            v["indent"] = json!(s["depth"].as_u64().unwrap_or(0).min(12));
            v
        })
        .collect();
    let errors: Vec<Value> = t["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut v = e.clone();
            v["x"] = json!(e["offsetMs"].as_f64().unwrap_or(0.0) / total * 1000.0);
            v
        })
        .collect();
    Ok(page(
        "trace.html",
        context! {
            viewer => viewer_value(&viewer),
            trace_id => t["traceId"].clone(),
            duration => t["durationMs"].clone(),
            start => t["start"].clone(),
            spans,
            errors,
            logs => t["logs"].clone(),
        },
    ))
}

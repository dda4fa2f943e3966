//! Pages for user feedback, structured logs, releases with their health, and cron
//! monitors with their timelines.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use minijinja::context;
use serde_json::json;

use super::auth::Viewer;
use super::form::{cursor, query_param};
use super::pages::{project_value, viewer_value};
use super::render::{WebError, page};
use crate::App;
use crate::insights::{
    feedback_json, log_json, log_query, monitor_view, release_detail, release_list,
};
use crate::performance::period_secs;

type AppState = State<Arc<App>>;

pub(crate) async fn feedback(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let offset = cursor(raw.as_deref());
    let mut rows = app.store.project_feedback(project.id, offset, 51).await?;
    let more = rows.len() > 50;
    rows.truncate(50);
    Ok(page(
        "feedback.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            feedback => rows.iter().map(feedback_json).collect::<Vec<_>>(),
            prev => (offset > 0).then(|| (offset - 50).max(0)),
            next => more.then_some(offset + 50),
        },
    ))
}

pub(crate) async fn logs(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let query = query_param(raw.as_deref(), "query").unwrap_or_default();
    let period = query_param(raw.as_deref(), "period").unwrap_or_else(|| "24h".into());
    let rows = app
        .store
        .logs(log_query(project.id, &query, period_secs(&period)?))
        .await?;
    Ok(page(
        "logs.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            logs => rows.iter().map(log_json).collect::<Vec<_>>(),
            query,
            period,
        },
    ))
}

pub(crate) async fn releases(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let period = query_param(raw.as_deref(), "period").unwrap_or_else(|| "30d".into());
    let list = release_list(&app, &project, period_secs(&period)?).await?;
    let dropped = app
        .store
        .client_report_totals(project.id, crate::now() - 30.0 * 86400.0)
        .await?;
    Ok(page(
        "releases.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            releases => list,
            period,
            dropped => dropped.iter().map(|(r, c, q)| json!({"reason": r, "category": c, "quantity": q})).collect::<Vec<_>>(),
        },
    ))
}

pub(crate) async fn release(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let version = query_param(raw.as_deref(), "version")
        .ok_or_else(|| WebError::BadRequest("Which release? (?version=…)".into()))?;
    let detail = release_detail(&app, &project, &version, 30.0 * 86400.0).await?;
    Ok(page(
        "release.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            release => detail,
        },
    ))
}

pub(crate) async fn crons(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let mut monitors = Vec::new();
    for m in app.store.monitors(project.id).await? {
        let mut v = monitor_view(&app, &project, &m.slug).await?;
        // The list shows the last few runs as a strip.
        if let Some(runs) = v["runs"].as_array_mut() {
            runs.truncate(30);
            runs.reverse();
        }
        monitors.push(v);
    }
    Ok(page(
        "crons.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            monitors,
        },
    ))
}

pub(crate) async fn monitor(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug, monitor)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let m = monitor_view(&app, &project, &monitor).await?;
    Ok(page(
        "monitor.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            monitor => m,
        },
    ))
}

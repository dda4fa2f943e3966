//! The reading pages: projects, the issue list, an issue with one of its events, the
//! issue's event list, and the raw downloads.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bugbane_core::lifecycle::{Resolution, Status};
use bugbane_store::{Issue, Project};
use minijinja::context;
use serde_json::{Value, json};

use super::auth::Viewer;
use super::form::{encode, query_pairs};
use super::render::{WebError, page};
use super::view::event_view;
use crate::access::IssueListing;
use crate::{App, now};

type AppState = State<Arc<App>>;

/// Issues per page of the list.
const PAGE: i64 = 25;

/// Hourly buckets ending with the current hour, filled from (hour, count) pairs.
fn hourly_buckets(rows: &[(i64, i64)], hours: i64) -> Vec<i64> {
    let end = (now() / 3600.0).floor() as i64;
    let mut out = vec![0; hours as usize];
    for (h, c) in rows {
        let i = h - (end - hours + 1);
        if (0..hours).contains(&i) {
            out[i as usize] += c;
        }
    }
    out
}

/// Daily buckets (of 24 hourly ones) ending today.
fn daily_buckets(rows: &[(i64, i64)], days: i64) -> Vec<i64> {
    hourly_buckets(rows, days * 24)
        .chunks(24)
        .map(|d| d.iter().sum())
        .collect()
}

fn short_id(i: &Issue) -> String {
    format!("{}-{}", i.project_slug.to_uppercase(), i.short_id)
}

/// What the status badge and the actions need to know about an issue's state.
fn status_text(i: &Issue) -> String {
    match (&i.status, &i.resolution, &i.ignore) {
        (Status::Resolved, Some(Resolution::InNextRelease { .. }), _) => {
            "resolved in the next release".into()
        }
        (Status::Resolved, Some(Resolution::InRelease { release }), _) => {
            format!("resolved in {release}")
        }
        (Status::Resolved, _, _) => "resolved".into(),
        (Status::Ignored, _, Some(ig)) => {
            let mut parts = Vec::new();
            if let Some(c) = ig.count {
                parts.push(format!("{c} more events"));
            }
            if let Some(u) = ig.user_count {
                parts.push(format!("{u} more users"));
            }
            if let Some(t) = ig.until {
                parts.push(format!(
                    "until {}",
                    bugbane_core::time_fmt::format_rfc3339(t)
                        .get(..16)
                        .unwrap_or_default()
                        .replace('T', " ")
                ));
            }
            format!("ignored ({})", parts.join(", "))
        }
        (Status::Ignored, _, None) => "ignored".into(),
        (Status::Unresolved, _, _) if i.substatus == "regressed" => "regressed".into(),
        (Status::Unresolved, _, _) => "unresolved".into(),
    }
}

fn issue_row(i: &Issue, spark: Vec<i64>) -> Value {
    json!({
        "id": i.id,
        "short_id": short_id(i),
        "title": i.title,
        "culprit": i.culprit,
        "level": i.level,
        "status": i.status.as_str(),
        "status_text": status_text(i),
        "substatus": i.substatus,
        "times_seen": i.times_seen,
        "user_count": i.user_count,
        "first_seen": i.first_seen,
        "last_seen": i.last_seen,
        "first_release": i.first_release,
        "last_release": i.last_release,
        "assignee": i.assignee_email,
        "spark": spark,
    })
}

/// A project as every page's header and navigation use it.
pub(crate) fn project_value(p: &Project) -> Value {
    json!({
        "id": p.id,
        "slug": p.slug,
        "name": p.name,
        "org": p.org_slug,
        "platform": p.platform,
        "url": format!("/projects/{}/{}/", p.org_slug, p.slug),
    })
}

/// The viewer for templates (their email, role and the CSRF token every form carries).
pub(crate) fn viewer_value(v: &Viewer) -> Value {
    json!({"email": v.user.email, "is_admin": v.user.is_admin, "csrf": v.csrf, "id": v.user.id})
}

pub(crate) async fn projects(State(app): AppState, viewer: Viewer) -> Result<Response, WebError> {
    let projects = viewer.access().projects(&app, None).await?;
    let end_hour = (now() / 3600.0).floor() as i64;
    let stats = app
        .store
        .project_stats(projects.iter().map(|p| p.id).collect(), end_hour - 23)
        .await?;
    let rows: Vec<Value> = projects
        .iter()
        .map(|p| {
            let s = stats.get(&p.id).cloned().unwrap_or_default();
            let spark = hourly_buckets(&s.hourly, 24);
            let mut v = project_value(p);
            v["unresolved"] = json!(s.unresolved);
            v["events_24h"] = json!(spark.iter().sum::<i64>());
            v["spark"] = json!(spark);
            v
        })
        .collect();
    Ok(page(
        "projects.html",
        context! { viewer => viewer_value(&viewer), projects => rows },
    ))
}

pub(crate) async fn issue_list(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let params: HashMap<String, String> = query_pairs(raw.as_deref()).into_iter().collect();
    let get = |k: &str| params.get(k).map(String::as_str);
    let query = get("query").unwrap_or("is:unresolved").to_owned();
    let sort = get("sort").unwrap_or("date").to_owned();
    let period = get("period").unwrap_or("").to_owned();
    let environment = get("environment").unwrap_or("").to_owned();
    let offset = super::form::cursor(raw.as_deref());
    let q = IssueListing {
        query: Some(&query),
        period: Some(&period),
        sort: Some(&sort),
        environment: Some(environment.clone()),
    }
    .query(vec![project.id], offset, PAGE)?;
    let (issues, more) = app.store.issues(q).await?;
    let end_hour = (now() / 3600.0).floor() as i64;
    let hourly = app
        .store
        .issues_hourly(issues.iter().map(|i| i.id).collect(), end_hour - 23)
        .await?;
    let rows: Vec<Value> = issues
        .iter()
        .map(|i| {
            issue_row(
                i,
                hourly_buckets(hourly.get(&i.id).map_or(&[][..], |v| v), 24),
            )
        })
        .collect();
    let environments = app.store.environments(project.id).await?;
    // Links keep the search and change one thing.
    let link = |changes: &[(&str, String)]| {
        let mut p: Vec<(String, String)> = vec![
            ("query".into(), query.clone()),
            ("sort".into(), sort.clone()),
            ("period".into(), period.clone()),
            ("environment".into(), environment.clone()),
        ];
        for (k, v) in changes {
            p.retain(|(pk, _)| pk != k);
            p.push(((*k).into(), v.clone()));
        }
        let q: Vec<String> = p
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("?{}", q.join("&"))
    };
    let sorts: Vec<Value> = [
        ("date", "Last seen"),
        ("new", "First seen"),
        ("freq", "Events"),
        ("user", "Users"),
    ]
    .iter()
    .map(|(k, label)| json!({"key": k, "label": label, "url": link(&[("sort", (*k).into())]), "active": sort == *k}))
    .collect();
    let prev = (offset > 0).then(|| link(&[("cursor", (offset - PAGE).max(0).to_string())]));
    let next = more.then(|| link(&[("cursor", (offset + PAGE).to_string())]));
    Ok(page(
        "issues.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            issues => rows,
            query, sort, period, environment, environments, sorts,
            prev, next,
            first => offset + 1,
            last => offset + issues.len() as i64,
            has_events => app.store.issue_count(project.id).await? > 0,
            dsn => dsn_of(&app, &project).await?,
        },
    ))
}

/// The project's first active DSN, for empty states and setup.
pub(crate) async fn dsn_of(app: &App, p: &Project) -> Result<Option<String>, WebError> {
    Ok(app
        .store
        .project_keys(p.id)
        .await?
        .iter()
        .find(|k| k.active)
        .map(|k| crate::dsn_for(&app.config.server.public_url(), &k.public_key, p.id)))
}

/// An issue the viewer may see, with its project.
async fn issue_with_project(
    app: &App,
    viewer: &Viewer,
    id: &str,
) -> Result<(Issue, Project), WebError> {
    let issue = viewer.access().issue(app, id).await?;
    let project = app
        .store
        .project(issue.project_id)
        .await?
        .ok_or_else(|| WebError::NotFound("project not found".into()))?;
    Ok((issue, project))
}

pub(crate) async fn issue(
    State(app): AppState,
    viewer: Viewer,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (issue, project) = issue_with_project(&app, &viewer, &id).await?;
    let wanted = super::form::query_param(raw.as_deref(), "event");
    let event = match wanted.as_deref() {
        Some("oldest") => app.store.issue_event_edge(issue.id, false).await?,
        Some(e) if e != "latest" => {
            let id = bugbane_protocol::EventId::parse(e)
                .ok_or_else(|| WebError::NotFound("event not found".into()))?;
            let ev = app.store.event(issue.project_id, id.to_string()).await?;
            Some(
                ev.filter(|ev| ev.issue_id == issue.id)
                    .ok_or_else(|| WebError::NotFound("event not found".into()))?,
            )
        }
        _ => app.store.issue_event_edge(issue.id, true).await?,
    };
    let end_hour = (now() / 3600.0).floor() as i64;
    let hourly = app
        .store
        .issue_hourly(issue.id, end_hour - 30 * 24 + 1)
        .await?;
    let tags = app.store.issue_tags(issue.id, 5).await?;
    let tag_values: Vec<Value> = tags
        .iter()
        .map(|t| {
            json!({
                "key": t.key,
                "total": t.total,
                "distinct": t.distinct,
                "top": t.top.iter().map(|v| json!({
                    "value": v.value,
                    "count": v.count,
                    "pct": if t.total > 0 { (v.count * 100 + t.total / 2) / t.total } else { 0 },
                    "search": format!("/projects/{}/{}/?query={}", issue.org_slug, issue.project_slug,
                        encode(&format!("{}:{}", t.key, quote_search(&v.value)))),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let users = app.store.users().await?;
    let names: HashMap<i64, String> = users.iter().map(|u| (u.id, u.email.clone())).collect();
    let activity: Vec<Value> = app
        .store
        .issue_activity(issue.id)
        .await?
        .iter()
        .rev()
        .map(|a| {
            json!({
                "type": a.ty,
                "data": a.data,
                "user": a.user_id.and_then(|u| names.get(&u)),
                "created": a.created,
            })
        })
        .collect();
    let hashes = app.store.issue_hashes(issue.id).await?;
    let hash_rows: Vec<Value> = hashes
        .iter()
        .map(|h| json!({"hash": h.hash, "config": h.config, "events": h.events}))
        .collect();
    let (event_ctx, grouping, neighbours, attachments) = match &event {
        Some(e) => {
            let g = bugbane_core::grouping::group_event(&e.payload);
            let n = app
                .store
                .event_neighbours(issue.id, e.timestamp, e.id)
                .await?;
            let att = app
                .store
                .event_attachments(e.project_id, e.event_id.clone())
                .await?;
            let mut v = event_view(&e.payload);
            v["id"] = json!(e.event_id);
            v["received"] = json!(e.received);
            v["primary_hash"] = json!(e.primary_hash);
            (
                v,
                serde_json::to_value(&g).unwrap_or(Value::Null),
                json!({"older": n.0, "newer": n.1}),
                att.into_iter()
                    .map(|(id, name, ty, size)| json!({"id": id, "name": name, "type": ty, "size": size}))
                    .collect::<Vec<_>>(),
            )
        }
        None => (Value::Null, Value::Null, Value::Null, Vec::new()),
    };
    let feedback: Vec<Value> = app
        .store
        .issue_feedback(issue.id)
        .await?
        .iter()
        .map(crate::insights::feedback_json)
        .collect();
    let mut row = issue_row(&issue, hourly_buckets(&hourly, 24));
    row["daily"] = json!(daily_buckets(&hourly, 30));
    row["assignee_id"] = json!(issue.assignee_id);
    row["metadata"] = issue.metadata.clone();
    Ok(page(
        "issue.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            issue => row,
            event => event_ctx,
            grouping,
            neighbours,
            attachments,
            tags => tag_values,
            feedback,
            activity,
            hashes => hash_rows,
            users => users.iter().map(|u| json!({"id": u.id, "email": u.email})).collect::<Vec<_>>(),
        },
    ))
}

/// Quotes a tag value for the search box when it has spaces.
fn quote_search(v: &str) -> String {
    if v.contains(' ') || v.contains('"') {
        format!("\"{}\"", v.replace('"', ""))
    } else {
        v.to_owned()
    }
}

pub(crate) async fn issue_events(
    State(app): AppState,
    viewer: Viewer,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (issue, project) = issue_with_project(&app, &viewer, &id).await?;
    let offset = super::form::cursor(raw.as_deref());
    let mut events = app.store.issue_events(issue.id, offset, 51).await?;
    let more = events.len() > 50;
    events.truncate(50);
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            let v = event_view(&e.payload);
            json!({
                "id": e.event_id,
                "timestamp": e.timestamp,
                "message": v["message"].as_str().map(str::to_owned).or_else(|| {
                    v["exceptions"][0]["value"].as_str().map(str::to_owned)
                }),
                "release": v["release"],
                "environment": v["environment"],
                "user": v["user"].as_array().and_then(|u| u.first()).map(|p| p[1].clone()),
            })
        })
        .collect();
    Ok(page(
        "events.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            issue => issue_row(&issue, Vec::new()),
            events => rows,
            prev => (offset > 0).then(|| (offset - 50).max(0)),
            next => more.then_some(offset + 50),
        },
    ))
}

/// The stored event as JSON, as a download.
pub(crate) async fn event_json_download(
    State(app): AppState,
    viewer: Viewer,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let issue = viewer.access().issue(&app, &id).await?;
    let eid = bugbane_protocol::EventId::parse(&event_id)
        .ok_or_else(|| WebError::NotFound("event not found".into()))?;
    let e = app
        .store
        .event(issue.project_id, eid.to_string())
        .await?
        .filter(|e| e.issue_id == issue.id)
        .ok_or_else(|| WebError::NotFound("event not found".into()))?;
    let body = serde_json::to_vec_pretty(&e.payload).unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"event-{}.json\"", e.event_id),
            ),
        ],
        body,
    )
        .into_response())
}

/// An attachment, always as a download (never rendered on Bugbane's origin).
pub(crate) async fn attachment_download(
    State(app): AppState,
    viewer: Viewer,
    Path((id, event_id, attachment)): Path<(String, String, i64)>,
) -> Result<Response, WebError> {
    let issue = viewer.access().issue(&app, &id).await?;
    let eid = bugbane_protocol::EventId::parse(&event_id)
        .ok_or_else(|| WebError::NotFound("event not found".into()))?;
    let listed = app
        .store
        .event_attachments(issue.project_id, eid.to_string())
        .await?;
    let (_, name, _, _) = listed
        .into_iter()
        .find(|a| a.0 == attachment)
        .ok_or_else(|| WebError::NotFound("attachment not found".into()))?;
    let data = app
        .store
        .attachment_data(issue.project_id, attachment)
        .await?
        .ok_or_else(|| WebError::NotFound("attachment not found".into()))?;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        data,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_end_with_the_current_hour() {
        let end = (now() / 3600.0).floor() as i64;
        let b = hourly_buckets(&[(end, 3), (end - 1, 2), (end - 30, 9)], 24);
        assert_eq!(b.len(), 24);
        assert_eq!(b[23], 3);
        assert_eq!(b[22], 2);
        assert_eq!(b.iter().sum::<i64>(), 5);
        assert_eq!(
            daily_buckets(&[(end, 3), (end - 30, 9)], 30)
                .iter()
                .sum::<i64>(),
            12
        );
    }
}

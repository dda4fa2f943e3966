//! Sentry's web API (a subset), under `/api/0/`, with the same paths, field names and
//! shapes as Sentry's, so existing API clients work. Authenticated with
//! `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bugbane_core::lifecycle::{Resolution, Status};
use bugbane_core::time_fmt::format_rfc3339;
use bugbane_store::{EventRecord, Issue, Project};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::access::{Access, IssueListing, StatusDetails, status_change};
use crate::error::ApiError;
use crate::{App, now};

type AppState = State<Arc<App>>;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/0/projects/", get(list_projects))
        .route(
            "/api/0/organizations/{org}/projects/",
            get(list_org_projects),
        )
        .route(
            "/api/0/projects/{org}/{project}/",
            get(show_project).put(update_project),
        )
        .route("/api/0/projects/{org}/{project}/keys/", get(list_keys))
        .route(
            "/api/0/projects/{org}/{project}/keys/{key}/",
            axum::routing::put(update_key),
        )
        .route(
            "/api/0/projects/{org}/{project}/issues/",
            get(list_project_issues),
        )
        .route("/api/0/organizations/{org}/issues/", get(list_org_issues))
        .route(
            "/api/0/projects/{org}/{project}/events/{event_id}/",
            get(show_event),
        )
        .route(
            "/api/0/projects/{org}/{project}/events/{event_id}/grouping-info/",
            get(grouping_info),
        )
        .route(
            "/api/0/issues/{id}/",
            get(show_issue).put(update_issue).delete(delete_issue),
        )
        .route(
            "/api/0/organizations/{org}/issues/{id}/",
            get(show_org_issue)
                .put(update_org_issue)
                .delete(delete_org_issue),
        )
        .route("/api/0/issues/{id}/events/", get(issue_events))
        .route("/api/0/issues/{id}/events/latest/", get(latest_event))
        .route("/api/0/issues/{id}/events/oldest/", get(oldest_event))
        .route("/api/0/issues/{id}/tags/", get(issue_tags))
        .route("/api/0/issues/{id}/tags/{key}/values/", get(tag_values))
        .route("/api/0/issues/{id}/hashes/", get(issue_hashes))
        .route("/api/0/issues/{id}/activity/", get(issue_activity))
}

/// The authenticated caller.
pub(crate) struct Caller(Access);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("authentication credentials were not provided".into())
            })?;
        let owner = app
            .store
            .token_owner(bugbane_core::credentials::hash_token(token))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid token".into()))?;
        Ok(Caller(Access {
            user_id: owner.user_id,
            is_admin: owner.is_admin,
        }))
    }
}

impl std::ops::Deref for Caller {
    type Target = Access;

    fn deref(&self) -> &Access {
        &self.0
    }
}

fn project_json(app: &App, p: &Project) -> Value {
    json!({
        "id": p.id.to_string(),
        "slug": p.slug,
        "name": p.name,
        "platform": p.platform,
        "dateCreated": format_rfc3339(p.created),
        "isMember": true,
        "hasAccess": true,
        "status": "active",
        "organization": {"id": p.org_id.to_string(), "slug": p.org_slug, "name": p.org_slug},
        "options": {"sentry:scrub_data": p.scrub.scrub_data, "sentry:scrub_defaults": p.scrub.scrub_defaults,
                    "sentry:sensitive_fields": p.scrub.sensitive_fields, "sentry:safe_fields": p.scrub.safe_fields,
                    "sentry:scrub_ip_address": p.scrub.scrub_ip_addresses},
        "links": {"issues": format!("{}/api/0/projects/{}/{}/issues/", app.config.server.public_url(), p.org_slug, p.slug)},
    })
}

async fn list_projects(State(app): AppState, caller: Caller) -> Result<Json<Value>, ApiError> {
    let projects = caller.projects(&app, None).await?;
    Ok(Json(Value::Array(
        projects.iter().map(|p| project_json(&app, p)).collect(),
    )))
}

async fn list_org_projects(
    State(app): AppState,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let projects = caller.projects(&app, Some(org)).await?;
    Ok(Json(Value::Array(
        projects.iter().map(|p| project_json(&app, p)).collect(),
    )))
}

async fn show_project(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    Ok(Json(project_json(&app, &p)))
}

/// Sentry's project settings for data scrubbing (the fields its project API takes).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ProjectPut {
    data_scrubber: Option<bool>,
    data_scrubber_defaults: Option<bool>,
    #[serde(rename = "scrubIPAddresses")]
    scrub_ip_addresses: Option<bool>,
    sensitive_fields: Option<Vec<String>>,
    safe_fields: Option<Vec<String>>,
}

async fn update_project(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let put: ProjectPut = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let mut scrub = p.scrub.clone();
    if let Some(v) = put.data_scrubber {
        scrub.scrub_data = v;
    }
    if let Some(v) = put.data_scrubber_defaults {
        scrub.scrub_defaults = v;
    }
    if let Some(v) = put.scrub_ip_addresses {
        scrub.scrub_ip_addresses = v;
    }
    if let Some(v) = put.sensitive_fields {
        scrub.sensitive_fields = v;
    }
    if let Some(v) = put.safe_fields {
        scrub.safe_fields = v;
    }
    app.store.set_scrub_settings(p.id, scrub).await?;
    let updated = app
        .store
        .project(p.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("project not found".into()))?;
    Ok(Json(project_json(&app, &updated)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KeyPut {
    is_active: Option<bool>,
    /// `{"window": seconds, "count": n}`, or null for the server default.
    rate_limit: Option<Option<RateLimitPut>>,
}

#[derive(Deserialize)]
struct RateLimitPut {
    window: i64,
    count: i64,
}

async fn update_key(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, key)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let keys = app.store.project_keys(p.id).await?;
    let k = keys
        .iter()
        .find(|k| k.public_key == key)
        .ok_or_else(|| ApiError::NotFound("key not found".into()))?;
    let put: KeyPut = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    if let Some(active) = put.is_active {
        app.store
            .set_key_active(k.public_key.clone(), active)
            .await?;
    }
    if let Some(limit) = put.rate_limit {
        // Limits are enforced per minute; other windows are scaled to it.
        let per_minute = match limit {
            Some(l) if l.window > 0 && l.count >= 0 => {
                Some((l.count * 60 + l.window - 1) / l.window)
            }
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "rateLimit needs a positive window and a count".into(),
                ));
            }
            None => None,
        };
        app.store
            .set_key_rate_limit(k.public_key.clone(), per_minute)
            .await?;
    }
    app.keys.invalidate(&k.public_key);
    let updated = app
        .store
        .key_by_public(k.public_key.clone())
        .await?
        .ok_or_else(|| ApiError::NotFound("key not found".into()))?;
    Ok(Json(json!({
        "id": updated.public_key,
        "public": updated.public_key,
        "isActive": updated.active,
        "rateLimit": updated.rate_limit_per_minute.map(|l| json!({"window": 60, "count": l})),
    })))
}

/// A DSN for a key, built on the public URL.
pub fn dsn_for(public_url: &str, public_key: &str, project_id: i64) -> String {
    let (scheme, rest) = public_url.split_once("://").unwrap_or(("http", public_url));
    format!("{scheme}://{public_key}@{rest}/{project_id}")
}

async fn list_keys(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let base = app.config.server.public_url();
    let keys = app.store.project_keys(p.id).await?;
    Ok(Json(Value::Array(
        keys.iter()
            .map(|k| {
                let dsn = dsn_for(&base, &k.public_key, p.id);
                json!({
                    "id": k.public_key,
                    "name": k.label,
                    "label": k.label,
                    "public": k.public_key,
                    "secret": null,
                    "projectId": p.id,
                    "isActive": k.active,
                    "dateCreated": format_rfc3339(k.created),
                    "rateLimit": k.rate_limit_per_minute.map(|l| json!({"window": 60, "count": l})),
                    "dsn": {
                        "public": dsn,
                        "secret": dsn,
                        "store": format!("{base}/api/{}/store/", p.id),
                        "security": format!("{base}/api/{}/security/?sentry_key={}", p.id, k.public_key),
                        "minidump": format!("{base}/api/{}/minidump/?sentry_key={}", p.id, k.public_key),
                        "cdn": null,
                    },
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IssueListParams {
    query: Option<String>,
    stats_period: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    environment: Option<String>,
}

/// Sentry cursors are `value:offset:is_prev`; offsets are what page here.
fn parse_cursor(c: Option<&str>) -> i64 {
    c.and_then(|c| c.split(':').nth(1))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
        .max(0)
}

fn link_header(uri: &Uri, public_url: &str, offset: i64, limit: i64, more: bool) -> HeaderValue {
    let query: Vec<(String, String)> = uri
        .query()
        .map(bugbane_protocol::auth::parse_query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "cursor")
        .collect();
    let base = format!("{public_url}{}", uri.path());
    let url = |cursor: &str| {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        q.push(format!("cursor={}", enc(cursor)));
        format!("{base}?{}", q.join("&"))
    };
    let prev = format!("0:{}:1", (offset - limit).max(0));
    let next = format!("0:{}:0", offset + limit);
    let v = format!(
        "<{}>; rel=\"previous\"; results=\"{}\"; cursor=\"{prev}\", <{}>; rel=\"next\"; results=\"{more}\"; cursor=\"{next}\"",
        url(&prev),
        offset > 0,
        url(&next)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn issue_list(
    app: &App,
    project_ids: Vec<i64>,
    params: IssueListParams,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(25).clamp(1, 100);
    let offset = parse_cursor(params.cursor.as_deref());
    let q = IssueListing {
        query: params.query.as_deref(),
        period: params.stats_period.as_deref(),
        sort: params.sort.as_deref(),
        environment: params.environment,
    }
    .query(project_ids, offset, limit)?;
    let (issues, more) = app.store.issues(q).await?;
    let mut out = Vec::with_capacity(issues.len());
    for i in &issues {
        out.push(issue_json(app, i, false).await?);
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "link",
        link_header(uri, &app.config.server.public_url(), offset, limit, more),
    );
    Ok((headers, Json(Value::Array(out))).into_response())
}

async fn list_project_issues(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    Query(params): Query<IssueListParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    issue_list(&app, vec![p.id], params, &uri).await
}

async fn list_org_issues(
    State(app): AppState,
    caller: Caller,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
    Query(params): Query<IssueListParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let all = caller.projects(&app, Some(org)).await?;
    // `project=<id>` (repeatable) narrows to some projects, as in Sentry.
    let wanted: Vec<i64> = raw
        .as_deref()
        .map(bugbane_protocol::auth::parse_query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k == "project")
        .filter_map(|(_, v)| v.parse().ok())
        .filter(|v: &i64| *v > 0)
        .collect();
    let ids = all
        .iter()
        .map(|p| p.id)
        .filter(|id| wanted.is_empty() || wanted.contains(id))
        .collect();
    issue_list(&app, ids, params, &uri).await
}

fn status_details(i: &Issue) -> Value {
    let mut d = Map::new();
    match (&i.status, &i.resolution) {
        (Status::Resolved, Some(Resolution::InNextRelease { .. })) => {
            d.insert("inNextRelease".into(), json!(true));
        }
        (Status::Resolved, Some(Resolution::InRelease { release })) => {
            d.insert("inRelease".into(), json!(release));
        }
        _ => {}
    }
    if let (Status::Ignored, Some(ig)) = (&i.status, &i.ignore) {
        if let Some(c) = ig.count {
            d.insert("ignoreCount".into(), json!(c));
        }
        if let Some(u) = ig.until {
            d.insert("ignoreUntil".into(), json!(format_rfc3339(u)));
        }
        if let Some(u) = ig.user_count {
            d.insert("ignoreUserCount".into(), json!(u));
        }
    }
    Value::Object(d)
}

async fn issue_json(app: &App, i: &Issue, detail: bool) -> Result<Value, ApiError> {
    let base = app.config.server.public_url();
    let now_hour = (now() / 3600.0).floor() as i64;
    let hourly = app.store.issue_hourly(i.id, now_hour - 23).await?;
    let stats_24h: Vec<Value> = (now_hour - 23..=now_hour)
        .map(|h| {
            json!([
                h * 3600,
                hourly
                    .iter()
                    .find(|(hh, _)| *hh == h)
                    .map(|(_, c)| *c)
                    .unwrap_or(0)
            ])
        })
        .collect();
    let mut v = json!({
        "id": i.id.to_string(),
        "shortId": format!("{}-{}", i.project_slug.to_uppercase(), i.short_id),
        "title": i.title,
        "culprit": i.culprit,
        "permalink": format!("{base}/organizations/{}/issues/{}/", i.org_slug, i.id),
        "logger": null,
        "level": i.level,
        "status": i.status.as_str(),
        "statusDetails": status_details(i),
        "substatus": i.substatus,
        "isPublic": false,
        "platform": i.platform,
        "project": {"id": i.project_id.to_string(), "name": i.project_slug, "slug": i.project_slug},
        "type": i.ty,
        "issueType": "error",
        "issueCategory": "error",
        "metadata": i.metadata,
        "numComments": 0,
        "assignedTo": null,
        "isBookmarked": false,
        "isSubscribed": false,
        "hasSeen": false,
        "annotations": [],
        "count": i.times_seen.to_string(),
        "userCount": i.user_count,
        "firstSeen": format_rfc3339(i.first_seen),
        "lastSeen": format_rfc3339(i.last_seen),
        "stats": {"24h": stats_24h},
    });
    if detail {
        v["firstRelease"] = i
            .first_release
            .as_ref()
            .map(|r| json!({"version": r}))
            .unwrap_or(Value::Null);
        v["lastRelease"] = i
            .last_release
            .as_ref()
            .map(|r| json!({"version": r}))
            .unwrap_or(Value::Null);
        let tags = app.store.issue_tags(i.id, 0).await?;
        v["tags"] = Value::Array(
            tags.iter()
                .map(|t| json!({"key": t.key, "name": t.key, "totalValues": t.total, "uniqueValues": t.distinct}))
                .collect(),
        );
        let month_start = now_hour - 30 * 24 + 1;
        let monthly = app.store.issue_hourly(i.id, month_start).await?;
        let days: Vec<Value> = (0..30)
            .map(|d| {
                let start = month_start + d * 24;
                let c: i64 = monthly
                    .iter()
                    .filter(|(h, _)| *h >= start && *h < start + 24)
                    .map(|(_, c)| c)
                    .sum();
                json!([start * 3600, c])
            })
            .collect();
        v["stats"]["30d"] = Value::Array(days);
    }
    Ok(v)
}

async fn show_issue(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    Ok(Json(issue_json(&app, &issue, true).await?))
}

async fn show_org_issue(
    state: AppState,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show_issue(state, caller, Path(id)).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IssuePut {
    status: Option<String>,
    #[serde(default)]
    status_details: StatusDetails,
}

async fn update_issue(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let put: IssuePut = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let Some(raw_status) = put.status.as_deref() else {
        return Ok(Json(json!({})));
    };
    let update = status_change(
        &app,
        &issue,
        raw_status,
        &put.status_details,
        caller.user_id,
    )
    .await?;
    app.store.update_issue(issue.id, update).await?;
    let updated = app
        .store
        .issue(issue.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("issue not found".into()))?;
    Ok(Json(
        json!({"status": updated.status.as_str(), "statusDetails": status_details(&updated), "substatus": updated.substatus}),
    ))
}

async fn update_org_issue(
    state: AppState,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    update_issue(state, caller, Path(id), body).await
}

async fn delete_issue(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    app.store.delete_issue(issue.id).await?;
    Ok(axum::http::StatusCode::ACCEPTED.into_response())
}

async fn delete_org_issue(
    state: AppState,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    delete_issue(state, caller, Path(id)).await
}

/// Turns a stored event into Sentry's API shape (`entries`, key/value tags, camelCase frames).
fn event_json(e: &EventRecord) -> Value {
    let p = &e.payload;
    let mut entries = Vec::new();
    if let Some(exc) = p
        .get("exception")
        .and_then(|x| x.get("values"))
        .and_then(Value::as_array)
    {
        let mut has_system = false;
        let values: Vec<Value> = exc
            .iter()
            .map(|x| {
                let mut x = x.clone();
                if let Some(st) = x.get_mut("stacktrace") {
                    has_system |= stacktrace_api(st);
                }
                x
            })
            .collect();
        entries.push(json!({"type": "exception", "data": {"values": values, "hasSystemFrames": has_system, "excOmitted": null}}));
    }
    if let Some(st) = p.get("stacktrace") {
        let mut st = st.clone();
        stacktrace_api(&mut st);
        entries.push(json!({"type": "stacktrace", "data": st}));
    }
    if let Some(threads) = p
        .get("threads")
        .and_then(|t| t.get("values"))
        .and_then(Value::as_array)
    {
        let values: Vec<Value> = threads
            .iter()
            .map(|t| {
                let mut t = t.clone();
                if let Some(st) = t.get_mut("stacktrace") {
                    stacktrace_api(st);
                }
                t
            })
            .collect();
        entries.push(json!({"type": "threads", "data": {"values": values}}));
    }
    if let Some(m) = p.get("logentry") {
        entries.push(json!({"type": "message", "data": {"formatted": m.get("formatted"), "message": m.get("message"), "params": m.get("params")}}));
    }
    if let Some(crumbs) = p
        .get("breadcrumbs")
        .and_then(|b| b.get("values"))
        .and_then(Value::as_array)
    {
        let values: Vec<Value> = crumbs
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(ts) = c.get("timestamp").and_then(Value::as_f64) {
                    c["timestamp"] = json!(format_rfc3339(ts));
                }
                for k in ["category", "message", "data", "event_id"] {
                    if c.get(k).is_none() {
                        c[k] = Value::Null;
                    }
                }
                c
            })
            .collect();
        entries.push(json!({"type": "breadcrumbs", "data": {"values": values}}));
    }
    if let Some(r) = p.get("request") {
        let mut r = r.clone();
        if let Some(q) = r.as_object_mut().and_then(|o| o.remove("query_string")) {
            r["query"] = q;
        }
        entries.push(json!({"type": "request", "data": r}));
    }
    if let Some(csp) = p.get("csp") {
        entries.push(json!({"type": "csp", "data": csp}));
    }
    let tags: Vec<Value> = p
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|kv| Some(json!({"key": kv.get(0)?, "value": kv.get(1)?})))
                .collect()
        })
        .unwrap_or_default();
    let message = p
        .get("logentry")
        .and_then(|l| l.get("formatted"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            p.get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
    json!({
        "id": e.event_id,
        "eventID": e.event_id,
        "groupID": e.issue_id.to_string(),
        "projectID": e.project_id.to_string(),
        "title": p.get("title"),
        "culprit": p.get("culprit"),
        "message": message,
        "platform": p.get("platform"),
        "type": p.get("type"),
        "level": p.get("level"),
        "logger": p.get("logger"),
        "dateCreated": format_rfc3339(e.timestamp),
        "dateReceived": format_rfc3339(e.received),
        "tags": tags,
        "user": p.get("user"),
        "contexts": p.get("contexts").cloned().unwrap_or_else(|| json!({})),
        "sdk": p.get("sdk"),
        "entries": entries,
        "metadata": p.get("metadata"),
        "release": p.get("release").map(|r| json!({"version": r})),
        "dist": p.get("dist"),
        "environment": p.get("environment"),
        "fingerprints": [e.primary_hash],
        "errors": p.get("errors").cloned().unwrap_or_else(|| json!([])),
        "extra": p.get("extra"),
        "modules": p.get("modules"),
        "_meta": p.get("_meta"),
    })
}

/// Renames frame fields to the API's camelCase and turns context lines into
/// `[[lineno, line], …]`. Returns whether any frame is not in-app.
fn stacktrace_api(st: &mut Value) -> bool {
    let mut has_system = false;
    let Some(frames) = st.get_mut("frames").and_then(Value::as_array_mut) else {
        return false;
    };
    for f in frames.iter_mut() {
        let Some(o) = f.as_object_mut() else { continue };
        let mut out = Map::new();
        let lineno = o.get("lineno").and_then(Value::as_i64);
        let mut context = Vec::new();
        if let Some(l) = lineno {
            let pre: Vec<Value> = o
                .get("pre_context")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, line) in pre.iter().enumerate() {
                context.push(json!([l - (pre.len() - i) as i64, line]));
            }
            if let Some(c) = o.get("context_line") {
                context.push(json!([l, c]));
            }
            for (i, line) in o
                .get("post_context")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                context.push(json!([l + 1 + i as i64, line]));
            }
        }
        let in_app = o.get("in_app").and_then(Value::as_bool).unwrap_or(false);
        has_system |= !in_app;
        for (from, to) in [
            ("filename", "filename"),
            ("abs_path", "absPath"),
            ("module", "module"),
            ("package", "package"),
            ("platform", "platform"),
            ("instruction_addr", "instructionAddr"),
            ("symbol_addr", "symbolAddr"),
            ("function", "function"),
            ("raw_function", "rawFunction"),
            ("symbol", "symbol"),
            ("lineno", "lineNo"),
            ("colno", "colNo"),
            ("vars", "vars"),
            ("data", "data"),
            ("trust", "trust"),
        ] {
            out.insert(to.into(), o.get(from).cloned().unwrap_or(Value::Null));
        }
        out.insert("inApp".into(), json!(in_app));
        out.insert("context".into(), Value::Array(context));
        out.insert("errors".into(), Value::Null);
        *f = Value::Object(out);
    }
    has_system
}

#[derive(Deserialize, Default)]
struct PageParams {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn issue_events(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let limit = params.limit.unwrap_or(50).clamp(1, 100);
    let offset = parse_cursor(params.cursor.as_deref());
    let mut events = app.store.issue_events(issue.id, offset, limit + 1).await?;
    let more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let mut headers = HeaderMap::new();
    headers.insert(
        "link",
        link_header(&uri, &app.config.server.public_url(), offset, limit, more),
    );
    Ok((
        headers,
        Json(Value::Array(events.iter().map(event_json).collect())),
    )
        .into_response())
}

async fn edge_event(
    app: &App,
    caller: &Caller,
    id: &str,
    latest: bool,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(app, id).await?;
    let e = app
        .store
        .issue_event_edge(issue.id, latest)
        .await?
        .ok_or_else(|| ApiError::NotFound("event not found".into()))?;
    Ok(Json(event_json(&e)))
}

async fn latest_event(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    edge_event(&app, &caller, &id, true).await
}

async fn oldest_event(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    edge_event(&app, &caller, &id, false).await
}

async fn show_event(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, event_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let id = bugbane_protocol::EventId::parse(&event_id)
        .ok_or_else(|| ApiError::NotFound("event not found".into()))?;
    let e = app
        .store
        .event(p.id, id.to_string())
        .await?
        .ok_or_else(|| ApiError::NotFound("event not found".into()))?;
    Ok(Json(event_json(&e)))
}

async fn grouping_info(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, event_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let id = bugbane_protocol::EventId::parse(&event_id)
        .ok_or_else(|| ApiError::NotFound("event not found".into()))?;
    let e = app
        .store
        .event(p.id, id.to_string())
        .await?
        .ok_or_else(|| ApiError::NotFound("event not found".into()))?;
    // Grouping is a pure function of the stored (normalised, scrubbed) event, so it is
    // recomputed here rather than stored with every event.
    let g = bugbane_core::grouping::group_event(&e.payload);
    let mut v = serde_json::to_value(&g).unwrap_or(Value::Null);
    v["primaryHash"] = json!(e.primary_hash);
    Ok(Json(v))
}

/// One tag value in Sentry's shape.
fn tag_value_json(key: &str, v: &bugbane_store::TagValue) -> Value {
    json!({"key": key, "name": v.value, "value": v.value, "count": v.count,
           "firstSeen": format_rfc3339(v.first_seen), "lastSeen": format_rfc3339(v.last_seen)})
}

async fn issue_tags(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let tags = app.store.issue_tags(issue.id, 9).await?;
    Ok(Json(Value::Array(
        tags.iter()
            .map(|t| {
                json!({
                    "key": t.key,
                    "name": t.key,
                    "totalValues": t.total,
                    "uniqueValues": t.distinct,
                    "topValues": t.top.iter().map(|v| tag_value_json(&t.key, v)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )))
}

async fn tag_values(
    State(app): AppState,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let values = app
        .store
        .issue_tag_values(issue.id, key.clone(), 1000)
        .await?;
    Ok(Json(Value::Array(
        values.iter().map(|v| tag_value_json(&key, v)).collect(),
    )))
}

async fn issue_hashes(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let hashes = app.store.issue_hashes(issue.id).await?;
    Ok(Json(Value::Array(
        hashes
            .iter()
            .map(|h| json!({"id": h.hash, "groupingConfig": h.config, "mergedBySeer": false}))
            .collect(),
    )))
}

async fn issue_activity(
    State(app): AppState,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let issue = caller.issue(&app, &id).await?;
    let activity = app.store.issue_activity(issue.id).await?;
    Ok(Json(Value::Array(
        activity
            .iter()
            .map(|a| json!({"id": a.id.to_string(), "type": a.ty, "data": a.data, "user": a.user_id, "dateCreated": format_rfc3339(a.created)}))
            .collect(),
    )))
}

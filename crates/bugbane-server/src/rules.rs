//! Alert rules through the API, at Sentry's paths (`/projects/{org}/{project}/rules/`),
//! plus a rule's delivery log and a test send. A rule is written as
//! `{"name", "triggers", "filters", "actions", "frequency"}`; Sentry's `conditions` are
//! accepted in place of `triggers` so existing definitions carry over.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bugbane_core::alerts::{Action, Filters, RuleSpec, Trigger, trigger_from_sentry};
use bugbane_core::time_fmt::format_rfc3339;
use bugbane_store::{AlertRule, Notification};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::api::Caller;
use crate::error::ApiError;

type AppState = State<Arc<App>>;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/api/0/projects/{org}/{project}/rules/",
            get(list).post(create),
        )
        .route(
            "/api/0/projects/{org}/{project}/rules/{id}/",
            get(show).put(update).delete(remove),
        )
        .route(
            "/api/0/projects/{org}/{project}/rules/{id}/test/",
            post(test),
        )
        .route(
            "/api/0/projects/{org}/{project}/rules/{id}/deliveries/",
            get(deliveries),
        )
}

/// A rule as the API shows it (webhook secrets are never shown).
pub(crate) fn rule_json(r: &AlertRule) -> Value {
    let actions: Vec<Value> = r
        .spec
        .actions
        .iter()
        .map(|a| json!({"type": a.channel.as_str(), "target": a.target, "hasSecret": a.secret.is_some()}))
        .collect();
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "status": if r.enabled { "active" } else { "disabled" },
        "triggers": r.spec.triggers,
        "filters": r.spec.filters,
        "actions": actions,
        "frequency": r.spec.rate_limit_minutes,
        "dateCreated": format_rfc3339(r.created),
    })
}

fn delivery_json(n: &Notification) -> Value {
    json!({
        "id": n.id.to_string(),
        "type": n.channel.as_str(),
        "target": n.target,
        "status": n.status,
        "attempts": n.attempts,
        "lastError": n.last_error,
        "reason": n.message.get("reason"),
        "issue": n.issue_id.map(|i| i.to_string()),
        "dateCreated": format_rfc3339(n.created),
        "dateSent": n.sent.map(format_rfc3339),
    })
}

#[derive(Deserialize)]
struct SentryCondition {
    id: String,
    value: Option<u64>,
    interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    name: Option<String>,
    triggers: Option<Vec<Trigger>>,
    conditions: Option<Vec<SentryCondition>>,
    filters: Option<Filters>,
    actions: Option<Vec<Action>>,
    frequency: Option<u32>,
    status: Option<String>,
}

impl RuleBody {
    /// The rule this body describes, on top of `base` (for updates).
    fn into_rule(self, base: Option<&AlertRule>) -> Result<(String, RuleSpec, bool), ApiError> {
        let bad = |m: String| ApiError::BadRequest(m);
        let triggers = match (self.triggers, self.conditions) {
            (Some(t), _) => t,
            (None, Some(c)) => c
                .iter()
                .map(|c| trigger_from_sentry(&c.id, c.value, c.interval.as_deref()))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            (None, None) => base.map(|b| b.spec.triggers.clone()).unwrap_or_default(),
        };
        let actions = self
            .actions
            .or_else(|| base.map(|b| b.spec.actions.clone()))
            .unwrap_or_default();
        let mut spec = RuleSpec {
            triggers,
            filters: self
                .filters
                .or_else(|| base.map(|b| b.spec.filters.clone()))
                .unwrap_or_default(),
            actions,
            rate_limit_minutes: self
                .frequency
                .or(base.map(|b| b.spec.rate_limit_minutes))
                .unwrap_or(30),
        };
        if let Some(b) = base {
            spec.keep_secrets_from(&b.spec);
        }
        spec.validate().map_err(bad)?;
        let name = self
            .name
            .or_else(|| base.map(|b| b.name.clone()))
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| bad("a rule needs a name".into()))?;
        let enabled = match self.status.as_deref() {
            None => base.is_none_or(|b| b.enabled),
            Some("active") => true,
            Some("disabled") => false,
            Some(other) => return Err(bad(format!("invalid status {other:?}"))),
        };
        Ok((name, spec, enabled))
    }
}

fn parse_body(body: &[u8]) -> Result<RuleBody, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}

async fn rule(app: &App, project_id: i64, id: &str) -> Result<AlertRule, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::NotFound("rule not found".into()))?;
    app.store
        .alert_rule(project_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("rule not found".into()))
}

async fn list(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let rules = app.store.alert_rules(p.id).await?;
    Ok(Json(Value::Array(rules.iter().map(rule_json).collect())))
}

async fn create(
    State(app): AppState,
    caller: Caller,
    Path((org, slug)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let (name, spec, enabled) = parse_body(&body)?.into_rule(None)?;
    let mut r = app
        .store
        .create_alert_rule(p.id, name.clone(), spec.clone())
        .await?;
    if !enabled {
        app.store
            .update_alert_rule(p.id, r.id, name, spec, false)
            .await?;
        r.enabled = false;
    }
    Ok((axum::http::StatusCode::CREATED, Json(rule_json(&r))))
}

async fn show(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    Ok(Json(rule_json(&rule(&app, p.id, &id).await?)))
}

async fn update(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let existing = rule(&app, p.id, &id).await?;
    let (name, spec, enabled) = parse_body(&body)?.into_rule(Some(&existing))?;
    app.store
        .update_alert_rule(p.id, existing.id, name, spec, enabled)
        .await?;
    Ok(Json(rule_json(&rule(&app, p.id, &id).await?)))
}

async fn remove(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let r = rule(&app, p.id, &id).await?;
    app.store.delete_alert_rule(p.id, r.id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn test(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let r = rule(&app, p.id, &id).await?;
    let queued = app.store.enqueue_test_notification(p.id, r.id).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(json!({"queued": queued})),
    ))
}

async fn deliveries(
    State(app): AppState,
    caller: Caller,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.project(&app, &org, &slug).await?;
    let r = rule(&app, p.id, &id).await?;
    let log = app.store.deliveries(p.id, r.id, 100).await?;
    Ok(Json(Value::Array(log.iter().map(delivery_json).collect())))
}

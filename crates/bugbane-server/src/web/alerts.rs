//! A project's alert rules in the dashboard: list with each rule's recent deliveries,
//! create, edit, enable or disable, delete, and send a test notification.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use bugbane_core::alerts::{Action, Channel, Filters, RuleSpec, Trigger};
use bugbane_core::time_fmt::format_rfc3339;
use minijinja::context;
use serde_json::{Value, json};

use super::auth::Viewer;
use super::form::{Form, encode, query_param};
use super::pages::{project_value, viewer_value};
use super::render::{WebError, page};
use crate::App;

type AppState = State<Arc<App>>;

/// A rule as its edit form shows it.
fn rule_form(spec: &RuleSpec) -> Value {
    let mut v = json!({
        "new_issue": false, "regression": false, "unignored": false,
        "monitor_missed": false, "monitor_failed": false,
        "frequency": false, "frequency_count": 100, "frequency_minutes": 60,
        "users": false, "users_count": 10, "users_minutes": 60,
        "level": spec.filters.level, "environment": spec.filters.environment,
        "release": spec.filters.release, "message": spec.filters.message,
        "tags": spec.filters.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n"),
        "actions": spec.actions.iter().map(|a| format!("{} {}", a.channel.as_str(), a.target)).collect::<Vec<_>>().join("\n"),
        "rate_limit": spec.rate_limit_minutes,
    });
    for t in &spec.triggers {
        match t {
            Trigger::NewIssue => v["new_issue"] = json!(true),
            Trigger::Regression => v["regression"] = json!(true),
            Trigger::Unignored => v["unignored"] = json!(true),
            Trigger::MonitorMissed => v["monitor_missed"] = json!(true),
            Trigger::MonitorFailed => v["monitor_failed"] = json!(true),
            Trigger::Frequency { count, minutes } => {
                v["frequency"] = json!(true);
                v["frequency_count"] = json!(count);
                v["frequency_minutes"] = json!(minutes);
            }
            Trigger::Users { count, minutes } => {
                v["users"] = json!(true);
                v["users_count"] = json!(count);
                v["users_minutes"] = json!(minutes);
            }
        }
    }
    v
}

/// Reads the rule form: triggers as checkboxes, filters, one action per line
/// (`<email|slack|discord|teams|webhook> <target> [secret]`).
fn spec_from_form(form: &Form) -> Result<RuleSpec, WebError> {
    let bad = |m: String| WebError::BadRequest(m);
    let mut triggers = Vec::new();
    for (field, t) in [
        ("new_issue", Trigger::NewIssue),
        ("regression", Trigger::Regression),
        ("unignored", Trigger::Unignored),
        ("monitor_missed", Trigger::MonitorMissed),
        ("monitor_failed", Trigger::MonitorFailed),
    ] {
        if form.get(field).is_some() {
            triggers.push(t);
        }
    }
    if form.get("frequency").is_some() {
        triggers.push(Trigger::Frequency {
            count: form.number("frequency_count").unwrap_or(100),
            minutes: form.number("frequency_minutes").unwrap_or(60),
        });
    }
    if form.get("users").is_some() {
        triggers.push(Trigger::Users {
            count: form.number("users_count").unwrap_or(10),
            minutes: form.number("users_minutes").unwrap_or(60),
        });
    }
    let text = |k: &str| {
        form.get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut tags = Vec::new();
    for line in form.get("tags").unwrap_or_default().lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("tag filter {line:?} is not key=value")))?;
        tags.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut actions = Vec::new();
    for line in form
        .get("actions")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
    {
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let channel = parts.next().and_then(Channel::parse).ok_or_else(|| {
            bad(format!(
                "action {line:?} does not start with email, slack, discord, teams or webhook"
            ))
        })?;
        let rest = parts.next().unwrap_or_default().trim().to_owned();
        let secret = parts
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        // Email targets may be a comma-separated list with spaces after the commas.
        let target = if channel == Channel::Email {
            line.split_once(char::is_whitespace)
                .map(|(_, t)| t.trim().to_owned())
                .unwrap_or(rest)
        } else {
            rest
        };
        actions.push(Action {
            channel,
            target,
            secret: if channel == Channel::Webhook {
                secret
            } else {
                None
            },
        });
    }
    let spec = RuleSpec {
        triggers,
        filters: Filters {
            level: text("level"),
            environment: text("environment"),
            release: text("release"),
            tags,
            message: text("message"),
        },
        actions,
        rate_limit_minutes: form.number("rate_limit").unwrap_or(30),
    };
    spec.validate().map_err(bad)?;
    Ok(spec)
}

pub(crate) async fn rules_page(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let mut rules = Vec::new();
    for r in app.store.alert_rules(project.id).await? {
        let log: Vec<Value> = app
            .store
            .deliveries(project.id, r.id, 10)
            .await?
            .iter()
            .map(|n| {
                json!({"channel": n.channel.as_str(), "target": n.target, "status": n.status,
                       "attempts": n.attempts, "error": n.last_error, "created": n.created, "sent": n.sent,
                       "reason": n.message.get("reason"), "issue": n.issue_id,
                       "when": format_rfc3339(n.created)})
            })
            .collect();
        let mut form = rule_form(&r.spec);
        form["name"] = json!(r.name);
        rules.push(json!({
            "id": r.id, "name": r.name, "enabled": r.enabled,
            "summary": summary(&r.spec),
            "form": form,
            "deliveries": log,
        }));
    }
    Ok(page(
        "alerts.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            rules,
            blank => rule_form(&RuleSpec { triggers: vec![Trigger::NewIssue], ..RuleSpec::default_for_new_project() }),
            smtp => app.config.alerts.smtp_host.is_some(),
            saved => query_param(raw.as_deref(), "saved"),
        },
    ))
}

/// One line saying what a rule does.
fn summary(spec: &RuleSpec) -> String {
    let triggers: Vec<String> = spec
        .triggers
        .iter()
        .map(|t| match t {
            Trigger::NewIssue => "a new issue".to_owned(),
            Trigger::Regression => "a regression".to_owned(),
            Trigger::Unignored => "an ignored issue coming back".to_owned(),
            Trigger::MonitorMissed => "a missed cron run".to_owned(),
            Trigger::MonitorFailed => "a failed or timed-out cron run".to_owned(),
            Trigger::Frequency { count, minutes } => {
                format!("more than {count} events in {minutes} min")
            }
            Trigger::Users { count, minutes } => {
                format!("more than {count} users in {minutes} min")
            }
        })
        .collect();
    let actions: Vec<String> = spec
        .actions
        .iter()
        .map(|a| format!("{} {}", a.channel.as_str(), a.target))
        .collect();
    format!(
        "On {}, send to {} (at most once per issue every {} min)",
        triggers.join(" or "),
        actions.join(", "),
        spec.rate_limit_minutes
    )
}

pub(crate) async fn update_rules(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    let project = viewer.access().project(&app, &org, &slug).await?;
    let rule_id = form.number::<i64>("rule");
    let existing = match rule_id {
        Some(id) => Some(
            app.store
                .alert_rule(project.id, id)
                .await?
                .ok_or_else(|| WebError::NotFound("rule not found".into()))?,
        ),
        None => None,
    };
    let name = || {
        form.get("name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| WebError::BadRequest("A rule needs a name.".into()))
    };
    let op = form.get("op").unwrap_or_default();
    match (op, existing) {
        ("create", _) => {
            app.store
                .create_alert_rule(project.id, name()?, spec_from_form(&form)?)
                .await?;
        }
        ("save", Some(r)) => {
            let mut spec = spec_from_form(&form)?;
            spec.keep_secrets_from(&r.spec);
            app.store
                .update_alert_rule(project.id, r.id, name()?, spec, r.enabled)
                .await?;
        }
        ("enable" | "disable", Some(r)) => {
            app.store
                .update_alert_rule(project.id, r.id, r.name, r.spec, op == "enable")
                .await?;
        }
        ("delete", Some(r)) => app.store.delete_alert_rule(project.id, r.id).await?,
        ("test", Some(r)) => {
            app.store
                .enqueue_test_notification(project.id, r.id)
                .await?;
        }
        _ => return Err(WebError::BadRequest(format!("unknown change {op:?}"))),
    }
    Ok(Redirect::to(&format!(
        "/projects/{org}/{slug}/alerts/?saved={}",
        encode(op)
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_round_trips_a_rule() {
        let spec = RuleSpec {
            triggers: vec![
                Trigger::Regression,
                Trigger::Frequency {
                    count: 5,
                    minutes: 10,
                },
            ],
            filters: Filters {
                level: Some("error".into()),
                tags: vec![("region".into(), "eu".into())],
                ..Default::default()
            },
            actions: vec![
                Action {
                    channel: Channel::Email,
                    target: "a@x.example, b@x.example".into(),
                    secret: None,
                },
                Action {
                    channel: Channel::Webhook,
                    target: "https://h.example/x".into(),
                    secret: None,
                },
            ],
            rate_limit_minutes: 15,
        };
        let f = rule_form(&spec);
        let mut fields: Vec<(String, String)> = Vec::new();
        for k in ["regression", "frequency"] {
            fields.push((k.into(), "on".into()));
        }
        for k in [
            "frequency_count",
            "frequency_minutes",
            "level",
            "tags",
            "actions",
            "rate_limit",
        ] {
            let v = &f[k];
            fields.push((
                k.into(),
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            ));
        }
        let back = spec_from_form(&Form::from_pairs(fields)).expect("valid");
        assert_eq!(back, spec);
    }
}

//! Projects (create, setup instructions, settings and keys) and accounts (password, API
//! tokens, users).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use bugbane_core::ScrubSettings;
use bugbane_core::credentials::hash_token;
use minijinja::context;
use serde_json::json;

use super::auth::Viewer;
use super::form::{Form, encode, query_param};
use super::pages::{dsn_of, project_value, viewer_value};
use super::render::{WebError, page};
use crate::App;
use crate::secrets::{hash_password, new_public_key, new_token};

type AppState = State<Arc<App>>;

/// Platforms offered when creating a project, with their setup snippets' names.
const PLATFORMS: &[(&str, &str)] = &[
    ("python", "Python"),
    ("node", "Node.js"),
    ("javascript", "Browser JavaScript"),
    ("rust", "Rust"),
    ("java", "Java"),
    ("php", "PHP"),
    ("go", "Go"),
    ("dotnet", ".NET"),
    ("ruby", "Ruby"),
    ("flutter", "Flutter"),
];

fn platforms() -> Vec<serde_json::Value> {
    PLATFORMS
        .iter()
        .map(|(k, n)| json!({"key": k, "name": n}))
        .collect()
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 50
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !s.starts_with('-')
}

pub(crate) async fn new_project_page(
    State(app): AppState,
    viewer: Viewer,
) -> Result<Response, WebError> {
    viewer.require_admin()?;
    let orgs: Vec<String> = viewer
        .access()
        .projects(&app, None)
        .await?
        .into_iter()
        .map(|p| p.org_slug)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(page(
        "project_new.html",
        context! { viewer => viewer_value(&viewer), platforms => platforms(), orgs },
    ))
}

pub(crate) async fn create_project(
    State(app): AppState,
    viewer: Viewer,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    viewer.require_admin()?;
    let slug = form.get("slug").unwrap_or_default().trim().to_lowercase();
    if !valid_slug(&slug) {
        return Err(WebError::BadRequest(
            "A project name is lowercase letters, digits, - and _ (up to 50).".into(),
        ));
    }
    let org = form.get("org").unwrap_or("default").to_owned();
    let platform = form
        .get("platform")
        .filter(|p| PLATFORMS.iter().any(|(k, _)| k == p))
        .map(str::to_owned);
    let (p, _) = app
        .store
        .create_project(org, slug, platform, new_public_key(), None)
        .await?;
    Ok(Redirect::to(&format!("/projects/{}/{}/setup/", p.org_slug, p.slug)).into_response())
}

pub(crate) async fn setup(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let project = viewer.access().project(&app, &org, &slug).await?;
    let chosen = query_param(raw.as_deref(), "platform")
        .or(project.platform.clone())
        .unwrap_or_else(|| "python".into());
    Ok(page(
        "project_setup.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            dsn => dsn_of(&app, &project).await?,
            platforms => platforms(),
            chosen,
        },
    ))
}

pub(crate) async fn project_settings(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    viewer.require_admin()?;
    let project = viewer.access().project(&app, &org, &slug).await?;
    let base = app.config.server.public_url();
    let keys: Vec<serde_json::Value> = app
        .store
        .project_keys(project.id)
        .await?
        .iter()
        .map(|k| {
            json!({"public_key": k.public_key, "label": k.label, "active": k.active,
                   "rate": k.rate_limit_per_minute, "created": k.created,
                   "dsn": crate::dsn_for(&base, &k.public_key, project.id)})
        })
        .collect();
    Ok(page(
        "project_settings.html",
        context! {
            viewer => viewer_value(&viewer),
            project => project_value(&project),
            scrub => json!({
                "scrub_data": project.scrub.scrub_data,
                "scrub_defaults": project.scrub.scrub_defaults,
                "scrub_ip_addresses": project.scrub.scrub_ip_addresses,
                "sensitive_fields": project.scrub.sensitive_fields.join("\n"),
                "safe_fields": project.scrub.safe_fields.join("\n"),
            }),
            keys,
            retention_days => app.config.retention.days,
            default_rate => app.config.ingest.rate_limit_per_minute,
            saved => query_param(raw.as_deref(), "saved"),
        },
    ))
}

fn lines(v: Option<&str>) -> Vec<String> {
    v.unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn update_project(
    State(app): AppState,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    viewer.require_admin()?;
    let project = viewer.access().project(&app, &org, &slug).await?;
    let key_of_project = async |key: &str| -> Result<String, WebError> {
        app.store
            .project_keys(project.id)
            .await?
            .into_iter()
            .find(|k| k.public_key == key)
            .map(|k| k.public_key)
            .ok_or_else(|| WebError::NotFound("key not found".into()))
    };
    let op = form.get("op").unwrap_or_default();
    match op {
        "rename" => {
            let name = form.get("name").unwrap_or_default().trim();
            if name.is_empty() || name.len() > 100 {
                return Err(WebError::BadRequest(
                    "A project name is 1 to 100 characters.".into(),
                ));
            }
            app.store
                .rename_project(project.id, name.to_owned())
                .await?;
        }
        "scrub" => {
            let settings = ScrubSettings {
                scrub_data: form.get("scrub_data").is_some(),
                scrub_defaults: form.get("scrub_defaults").is_some(),
                scrub_ip_addresses: form.get("scrub_ip_addresses").is_some(),
                sensitive_fields: lines(form.get("sensitive_fields")),
                safe_fields: lines(form.get("safe_fields")),
            };
            app.store.set_scrub_settings(project.id, settings).await?;
        }
        "key_create" => {
            let label = form.get("label").unwrap_or("Default").trim();
            app.store
                .create_key(project.id, label.to_owned(), new_public_key())
                .await?;
        }
        "key_enable" | "key_disable" => {
            let key = key_of_project(form.get("key").unwrap_or_default()).await?;
            app.store
                .set_key_active(key.clone(), op == "key_enable")
                .await?;
            app.keys.invalidate(&key);
        }
        "key_rotate" => {
            // A new key first, then the old one off: there is never a moment without one.
            let key = key_of_project(form.get("key").unwrap_or_default()).await?;
            app.store
                .create_key(project.id, "Rotated".into(), new_public_key())
                .await?;
            app.store.set_key_active(key.clone(), false).await?;
            app.keys.invalidate(&key);
        }
        "key_rate" => {
            let key = key_of_project(form.get("key").unwrap_or_default()).await?;
            let rate = form.number::<i64>("rate").filter(|r| *r > 0);
            app.store.set_key_rate_limit(key.clone(), rate).await?;
            app.keys.invalidate(&key);
        }
        other => return Err(WebError::BadRequest(format!("unknown change {other:?}"))),
    }
    Ok(Redirect::to(&format!(
        "/projects/{org}/{slug}/settings/?saved={}",
        encode(op)
    ))
    .into_response())
}

pub(crate) async fn account(
    State(app): AppState,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let tokens = app.store.user_tokens(viewer.user.id).await?;
    let users = if viewer.user.is_admin {
        app.store.users().await?
    } else {
        Vec::new()
    };
    Ok(page(
        "account.html",
        context! {
            viewer => viewer_value(&viewer),
            tokens => tokens.iter().map(|t| json!({"id": t.id, "name": t.name, "created": t.created})).collect::<Vec<_>>(),
            users => users.iter().map(|u| json!({"id": u.id, "email": u.email, "is_admin": u.is_admin, "created": u.created})).collect::<Vec<_>>(),
            saved => query_param(raw.as_deref(), "saved"),
        },
    ))
}

pub(crate) async fn update_account(
    State(app): AppState,
    viewer: Viewer,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    match form.get("op").unwrap_or_default() {
        "password" => {
            let current = form.get("current").unwrap_or_default().to_owned();
            let new = form.get("new").unwrap_or_default().to_owned();
            if new.chars().count() < 10 {
                return Err(WebError::BadRequest(
                    "A new password needs at least 10 characters.".into(),
                ));
            }
            let found = app
                .store
                .user_credentials(viewer.user.email.clone())
                .await?;
            let ok = tokio::task::spawn_blocking(move || {
                found.is_some_and(|(_, h)| bugbane_core::credentials::verify_password(&current, &h))
            })
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
            if !ok {
                return Err(WebError::Forbidden("The current password is wrong.".into()));
            }
            let hash = hash_password(&new).map_err(|e| WebError::Internal(e.to_string()))?;
            app.store
                .set_password(viewer.user.id, hash, viewer.session_hash().to_owned())
                .await?;
        }
        "token_create" => {
            let name = form.get("name").unwrap_or("dashboard").trim();
            let token = new_token();
            app.store
                .create_token(name.to_owned(), hash_token(&token), Some(viewer.user.id))
                .await?;
            // Shown once, on this response only.
            let tokens = app.store.user_tokens(viewer.user.id).await?;
            return Ok(page(
                "account.html",
                context! {
                    viewer => viewer_value(&viewer),
                    tokens => tokens.iter().map(|t| json!({"id": t.id, "name": t.name, "created": t.created})).collect::<Vec<_>>(),
                    new_token => token,
                    users => Vec::<serde_json::Value>::new(),
                },
            ));
        }
        "token_revoke" => {
            let id = form.number::<i64>("token").unwrap_or(0);
            app.store.revoke_token(viewer.user.id, id).await?;
        }
        "user_create" => {
            viewer.require_admin()?;
            let email = form.get("email").unwrap_or_default().trim().to_owned();
            let password = form.get("password").unwrap_or_default().to_owned();
            if !email.contains('@') || password.chars().count() < 10 {
                return Err(WebError::BadRequest(
                    "A user needs an email address and a password of at least 10 characters."
                        .into(),
                ));
            }
            let hash = hash_password(&password).map_err(|e| WebError::Internal(e.to_string()))?;
            app.store
                .create_user(email, hash, form.get("role") == Some("admin"))
                .await?;
        }
        other => return Err(WebError::BadRequest(format!("unknown change {other:?}"))),
    }
    Ok(Redirect::to(&format!(
        "/settings/?saved={}",
        encode(form.get("op").unwrap_or_default())
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert!(valid_slug("backend-api"));
        assert!(!valid_slug("Back End"));
        assert!(!valid_slug("-x"));
        assert!(!valid_slug(""));
        assert!(!valid_slug("a/b"));
    }
}

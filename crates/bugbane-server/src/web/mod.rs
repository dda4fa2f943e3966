//! The dashboard: server-rendered HTML pages for signing in, reading and triaging issues,
//! and managing projects and accounts. Templates and static files are compiled into the
//! binary, so a running Bugbane needs nothing beside it and no CDN.
//!
//! Every page needs a signed-in session; every form carries the session's CSRF token;
//! every value from events goes through the template engine's HTML escaping.

mod alerts;
mod auth;
mod form;
mod insights;
mod pages;
mod performance;
mod render;
mod settings;
mod triage;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::App;

pub(crate) use auth::LoginLimiter;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(pages::projects))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/static/{file}", get(render::static_file))
        .route(
            "/projects/new",
            get(settings::new_project_page).post(settings::create_project),
        )
        .route(
            "/projects/{org}/{project}/",
            get(pages::issue_list).post(triage::bulk),
        )
        .route("/projects/{org}/{project}/setup/", get(settings::setup))
        .route(
            "/projects/{org}/{project}/alerts/",
            get(alerts::rules_page).post(alerts::update_rules),
        )
        .route(
            "/projects/{org}/{project}/settings/",
            get(settings::project_settings).post(settings::update_project),
        )
        .route(
            "/projects/{org}/{project}/performance/",
            get(performance::overview),
        )
        .route(
            "/projects/{org}/{project}/performance/summary",
            get(performance::summary),
        )
        .route("/traces/{trace_id}/", get(performance::trace))
        .route(
            "/projects/{org}/{project}/feedback/",
            get(insights::feedback),
        )
        .route("/projects/{org}/{project}/logs/", get(insights::logs))
        .route(
            "/projects/{org}/{project}/releases/",
            get(insights::releases),
        )
        .route(
            "/projects/{org}/{project}/releases/show",
            get(insights::release),
        )
        .route("/projects/{org}/{project}/crons/", get(insights::crons))
        .route(
            "/projects/{org}/{project}/crons/{monitor}/",
            get(insights::monitor),
        )
        .route("/issues/{id}/", get(pages::issue).post(triage::act))
        .route("/issues/{id}/events/", get(pages::issue_events))
        .route(
            "/issues/{id}/events/{event_id}/json",
            get(pages::event_json_download),
        )
        .route(
            "/issues/{id}/events/{event_id}/attachments/{attachment}",
            get(pages::attachment_download),
        )
        .route(
            "/settings/",
            get(settings::account).post(settings::update_account),
        )
        .layer(axum::middleware::map_response(render::security_headers))
}

//! The forms that change issues: one issue's actions and bulk actions from the list.
//! Status changes go through the same code as the API's.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use bugbane_store::Issue;

use super::auth::Viewer;
use super::form::Form;
use super::render::WebError;
use crate::App;
use crate::access::{StatusDetails, status_change};

/// Applies a status action (`resolve`, `resolve_next`, `unresolve`, `ignore`) to an issue.
async fn set_status(
    app: &App,
    viewer: &Viewer,
    issue: &Issue,
    action: &str,
    form: &Form,
) -> Result<(), WebError> {
    let mut details = StatusDetails::default();
    let status = match action {
        "resolve" => "resolved",
        "resolve_next" => "resolvedInNextRelease",
        "unresolve" => "unresolved",
        "ignore" => {
            details.ignore_count = form.number("ignore_count").filter(|n| *n > 0);
            details.ignore_user_count = form.number("ignore_user_count").filter(|n| *n > 0);
            details.ignore_duration = form.number("ignore_minutes").filter(|n: &f64| *n > 0.0);
            "ignored"
        }
        other => return Err(WebError::BadRequest(format!("unknown action {other:?}"))),
    };
    let update = status_change(app, issue, status, &details, Some(viewer.user.id)).await?;
    app.store.update_issue(issue.id, update).await?;
    Ok(())
}

/// One issue's actions.
pub(crate) async fn act(
    State(app): State<Arc<App>>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    let issue = viewer.access().issue(&app, &id).await?;
    let back = format!("/issues/{}/", issue.id);
    match form.get("action").unwrap_or_default() {
        "delete" => {
            app.store.delete_issue(issue.id).await?;
            return Ok(Redirect::to(&format!(
                "/projects/{}/{}/",
                issue.org_slug, issue.project_slug
            ))
            .into_response());
        }
        "assign" => {
            let to = form.number::<i64>("assignee").filter(|u| *u > 0);
            app.store
                .assign_issue(issue.id, to, Some(viewer.user.id))
                .await?;
        }
        "comment" => {
            let text = form.get("text").unwrap_or_default().trim();
            if text.is_empty() {
                return Err(WebError::BadRequest("A comment needs some text.".into()));
            }
            app.store
                .comment_issue(issue.id, text.to_owned(), viewer.user.id)
                .await?;
        }
        "unmerge" => {
            let hash = form.get("hash").unwrap_or_default().to_owned();
            let new_id = app
                .store
                .unmerge_hash(issue.id, hash, Some(viewer.user.id))
                .await?;
            return Ok(Redirect::to(&format!("/issues/{new_id}/")).into_response());
        }
        action => set_status(&app, &viewer, &issue, action, &form).await?,
    }
    Ok(Redirect::to(&back).into_response())
}

/// Bulk actions on issues selected in a project's list.
pub(crate) async fn bulk(
    State(app): State<Arc<App>>,
    viewer: Viewer,
    Path((org, slug)): Path<(String, String)>,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    let project = viewer.access().project(&app, &org, &slug).await?;
    let mut issues = Vec::new();
    for id in form.all("id") {
        let issue = viewer.access().issue(&app, id).await?;
        if issue.project_id != project.id {
            return Err(WebError::NotFound("issue not found".into()));
        }
        issues.push(issue);
    }
    if issues.is_empty() {
        return Err(WebError::BadRequest("Select at least one issue.".into()));
    }
    let back = form
        .get("back")
        .filter(|b| b.starts_with('?'))
        .map(|b| format!("/projects/{org}/{slug}/{b}"))
        .unwrap_or_else(|| format!("/projects/{org}/{slug}/"));
    match form.get("action").unwrap_or_default() {
        "merge" => {
            let parent = app
                .store
                .merge_issues(issues.iter().map(|i| i.id).collect(), Some(viewer.user.id))
                .await?;
            return Ok(Redirect::to(&format!("/issues/{parent}/")).into_response());
        }
        "delete" => {
            for i in &issues {
                app.store.delete_issue(i.id).await?;
            }
        }
        action => {
            for i in &issues {
                set_status(&app, &viewer, i, action, &form).await?;
            }
        }
    }
    Ok(Redirect::to(&back).into_response())
}

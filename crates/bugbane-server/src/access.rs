//! Who may see what, shared by the API (token callers) and the dashboard (signed-in
//! users): admins see everything; other users see the projects of the organizations they
//! belong to. Anything out of reach answers "not found", so ids cannot be probed.

use bugbane_core::lifecycle::{IgnoreCondition, Resolution, Status};
use bugbane_core::time_fmt::parse_timestamp_str;
use bugbane_store::{Issue, IssueQuery, IssueSort, IssueUpdate, Project};
use serde::Deserialize;

use crate::error::ApiError;
use crate::{App, now};

/// The identity a request acts as.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access {
    /// `None` for tokens not tied to a user.
    pub user_id: Option<i64>,
    pub is_admin: bool,
}

impl Access {
    /// Checks the caller may read and change a project's data.
    pub async fn check_project(&self, app: &App, project: &Project) -> Result<(), ApiError> {
        if self.is_admin {
            return Ok(());
        }
        match self.user_id {
            Some(u) if app.store.is_member(project.org_id, u).await? => Ok(()),
            _ => Err(ApiError::NotFound("project not found".into())),
        }
    }

    /// Projects in reach, optionally within one organization.
    pub async fn projects(&self, app: &App, org: Option<String>) -> Result<Vec<Project>, ApiError> {
        Ok(app.store.projects(org, self.user_id, self.is_admin).await?)
    }

    /// One project in reach, by organization and project slug.
    pub async fn project(&self, app: &App, org: &str, slug: &str) -> Result<Project, ApiError> {
        self.projects(app, Some(org.to_owned()))
            .await?
            .into_iter()
            .find(|p| p.slug == slug)
            .ok_or_else(|| ApiError::NotFound("project not found".into()))
    }

    /// One issue in reach, by id as it appears in a path.
    pub async fn issue(&self, app: &App, id: &str) -> Result<Issue, ApiError> {
        let not_found = || ApiError::NotFound("issue not found".into());
        let id: i64 = id.parse().map_err(|_| not_found())?;
        let issue = app.store.issue(id).await?.ok_or_else(not_found)?;
        let project = app
            .store
            .project(issue.project_id)
            .await?
            .ok_or_else(not_found)?;
        self.check_project(app, &project)
            .await
            .map_err(|_| not_found())?;
        Ok(issue)
    }
}

/// How a status change is qualified: Sentry's `statusDetails`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusDetails {
    pub in_next_release: Option<bool>,
    pub in_release: Option<String>,
    pub ignore_count: Option<u64>,
    /// Minutes.
    pub ignore_duration: Option<f64>,
    pub ignore_until: Option<String>,
    pub ignore_user_count: Option<u64>,
}

/// Turns a requested status (Sentry's names, including `resolvedInNextRelease`) and its
/// details into the change the store applies; the API and the dashboard both go through it.
pub(crate) async fn status_change(
    app: &App,
    issue: &Issue,
    raw_status: &str,
    d: &StatusDetails,
    user_id: Option<i64>,
) -> Result<IssueUpdate, ApiError> {
    let status = Status::parse(raw_status)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid status {raw_status:?}")))?;
    let mut update = IssueUpdate {
        status: Some(status),
        user_id,
        ..Default::default()
    };
    match status {
        Status::Resolved => {
            update.resolution = Some(
                if raw_status == "resolvedInNextRelease" || d.in_next_release == Some(true) {
                    Resolution::InNextRelease {
                        current: app.store.latest_release(issue.project_id).await?,
                    }
                } else if let Some(r) = &d.in_release {
                    let release = if r == "latest" {
                        app.store
                            .latest_release(issue.project_id)
                            .await?
                            .unwrap_or_default()
                    } else {
                        r.clone()
                    };
                    Resolution::InRelease { release }
                } else {
                    Resolution::Now
                },
            );
        }
        Status::Ignored => {
            let until =
                match (&d.ignore_until, d.ignore_duration) {
                    (Some(u), _) => Some(parse_timestamp_str(u).ok_or_else(|| {
                        ApiError::BadRequest(format!("invalid ignoreUntil {u:?}"))
                    })?),
                    (None, Some(minutes)) => Some(now() + minutes * 60.0),
                    _ => None,
                };
            if until.is_some() || d.ignore_count.is_some() || d.ignore_user_count.is_some() {
                update.ignore = Some(IgnoreCondition {
                    until,
                    count: d.ignore_count,
                    user_count: d.ignore_user_count,
                    ..Default::default()
                });
            }
        }
        Status::Unresolved => {}
    }
    Ok(update)
}

/// An issue search as people and API clients phrase it.
pub(crate) struct IssueListing<'a> {
    /// Search syntax; absent means Sentry's default, `is:unresolved`.
    pub query: Option<&'a str>,
    /// `24h`, `14d`…: only issues seen within it.
    pub period: Option<&'a str>,
    /// `date`, `new`, `freq` or `user`.
    pub sort: Option<&'a str>,
    pub environment: Option<String>,
}

impl IssueListing<'_> {
    /// The store query for one page of results.
    pub fn query(
        self,
        project_ids: Vec<i64>,
        offset: i64,
        limit: i64,
    ) -> Result<IssueQuery, ApiError> {
        let period = match self.period {
            None | Some("") => None,
            Some(p) => Some(
                parse_period(p)
                    .ok_or_else(|| ApiError::BadRequest(format!("invalid statsPeriod {p:?}")))?,
            ),
        };
        let sort = match self.sort {
            None | Some("") | Some("date") => IssueSort::Date,
            Some("new") => IssueSort::New,
            Some("freq") => IssueSort::Freq,
            Some("user") => IssueSort::User,
            Some(other) => return Err(ApiError::BadRequest(format!("invalid sort {other:?}"))),
        };
        Ok(IssueQuery {
            project_ids,
            search: bugbane_core::search::parse(self.query.unwrap_or("is:unresolved")),
            environment: self.environment.filter(|e| !e.is_empty()),
            since: period.map(|p| now() - p),
            sort,
            offset,
            limit,
        })
    }
}

/// Parses `24h`, `14d`, `30m`, `2w`.
pub(crate) fn parse_period(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: f64 = num.parse().ok()?;
    Some(
        n * match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            _ => return None,
        },
    )
}

//! Plain data the store hands out and takes in.

use bugbane_core::ScrubSettings;
use bugbane_core::alerts::{Channel, RuleSpec};
use bugbane_core::lifecycle::{IgnoreCondition, Resolution, Status};
use serde_json::Value;

/// An organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub created: f64,
}

/// A project and the organization it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: i64,
    pub org_id: i64,
    pub org_slug: String,
    pub slug: String,
    pub name: String,
    pub platform: Option<String>,
    pub created: f64,
    pub scrub: ScrubSettings,
}

/// A client key (DSN) of a project.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectKey {
    pub id: i64,
    pub project_id: i64,
    pub public_key: String,
    pub label: String,
    pub active: bool,
    pub rate_limit_per_minute: Option<i64>,
    pub created: f64,
}

/// A user account.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    pub created: f64,
}

/// Who an API token acts for.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenOwner {
    pub token_id: i64,
    pub user_id: Option<i64>,
    pub is_admin: bool,
}

/// What first start creates, for printing.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub org: Organization,
    pub project: Project,
    pub key: ProjectKey,
    pub user: User,
}

/// An issue with its counters.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    pub id: i64,
    pub project_id: i64,
    pub project_slug: String,
    pub org_slug: String,
    pub short_id: i64,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub ty: String,
    pub platform: String,
    pub metadata: Value,
    pub status: Status,
    pub substatus: String,
    pub resolution: Option<Resolution>,
    pub ignore: Option<IgnoreCondition>,
    pub first_seen: f64,
    pub last_seen: f64,
    pub times_seen: i64,
    pub user_count: i64,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
    pub resolved_at: Option<f64>,
    pub assignee_id: Option<i64>,
    pub assignee_email: Option<String>,
}

/// Sort orders of the issue list (Sentry's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IssueSort {
    /// Last seen.
    #[default]
    Date,
    /// First seen.
    New,
    /// Times seen.
    Freq,
    /// Users affected.
    User,
}

/// A search over issues.
#[derive(Clone, Debug, Default)]
pub struct IssueQuery {
    pub project_ids: Vec<i64>,
    pub search: bugbane_core::search::Query,
    pub environment: Option<String>,
    /// Only issues seen since this time.
    pub since: Option<f64>,
    pub sort: IssueSort,
    pub offset: i64,
    pub limit: i64,
}

/// A change to an issue from the API or dashboard.
#[derive(Clone, Debug, Default)]
pub struct IssueUpdate {
    pub status: Option<Status>,
    pub resolution: Option<Resolution>,
    pub ignore: Option<IgnoreCondition>,
    pub user_id: Option<i64>,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub project_id: i64,
    pub event_id: String,
    pub issue_id: i64,
    pub timestamp: f64,
    pub received: f64,
    pub primary_hash: String,
    pub payload: Value,
}

/// Top values of one tag key on an issue.
#[derive(Clone, Debug, PartialEq)]
pub struct TagFacet {
    pub key: String,
    pub total: i64,
    pub distinct: i64,
    pub top: Vec<TagValue>,
}

/// One tag value's counts on an issue.
#[derive(Clone, Debug, PartialEq)]
pub struct TagValue {
    pub value: String,
    pub count: i64,
    pub first_seen: f64,
    pub last_seen: f64,
}

/// A grouping hash attached to an issue.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupHash {
    pub hash: String,
    pub config: String,
    /// Events whose primary hash this is, counted as they are saved (counting the issue's
    /// stored events took time in proportion to them on every view of the issue page).
    pub events: i64,
}

/// An entry of an issue's activity log.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub id: i64,
    pub ty: String,
    pub data: Value,
    pub user_id: Option<i64>,
    pub created: f64,
}

/// Row counts per stored kind, for tests and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub spool: i64,
    pub events: i64,
    pub issues: i64,
    pub transactions: i64,
    pub spans: i64,
    pub sessions: i64,
    pub session_aggregates: i64,
    pub check_ins: i64,
    pub feedback: i64,
    pub attachments: i64,
    pub logs: i64,
    pub client_reports: i64,
    pub raw_items: i64,
    /// Compression dictionaries (not per project).
    pub dictionaries: i64,
}

/// A signed-in dashboard session.
#[derive(Clone, Debug, PartialEq)]
pub struct WebSession {
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf: String,
}

/// An API token as listed to its owner (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub created: f64,
}

/// A project's figures for the project list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectStats {
    pub unresolved: i64,
    /// (hour, events) pairs.
    pub hourly: Vec<(i64, i64)>,
}

/// An alert rule of a project.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRule {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub spec: RuleSpec,
    pub enabled: bool,
    pub created: f64,
}

/// A queued or delivered notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub id: i64,
    pub rule_id: Option<i64>,
    pub project_id: i64,
    pub issue_id: Option<i64>,
    pub channel: Channel,
    pub target: String,
    pub secret: Option<String>,
    /// What to say: reason, rule, issue, project, event (JSON).
    pub message: Value,
    /// `pending`, `sent`, `failed` or `skipped`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created: f64,
    pub sent: Option<f64>,
}

/// How a delivery attempt went.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    Sent,
    /// Failed; try again at `at` (UNIX seconds).
    Retry {
        error: String,
        at: f64,
    },
    /// Failed for good (attempts exhausted, or a permanent refusal).
    Failed(String),
    /// Nothing to send to (for example, no SMTP server configured).
    Skipped(String),
}

/// One run of a transaction, for its slowest-samples list.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentSample {
    pub trace_id: String,
    pub span_id: String,
    pub start: f64,
    pub duration_ms: f64,
    pub status: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
}

/// A span of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSpan {
    pub project_id: i64,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub segment_id: Option<String>,
    pub name: String,
    pub op: Option<String>,
    pub status: Option<String>,
    pub start: f64,
    pub end: f64,
    pub is_segment: bool,
}

/// An error event that belongs to a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceError {
    pub project_id: i64,
    pub event_id: String,
    pub issue_id: i64,
    pub title: String,
    pub level: String,
    pub timestamp: f64,
}

/// User feedback or a user report.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackRow {
    pub id: i64,
    /// `feedback` (the current item) or `user_report` (the legacy one).
    pub kind: String,
    pub event_id: Option<String>,
    pub associated_event_id: Option<String>,
    /// The issue of the associated event, when it is stored.
    pub issue_id: Option<i64>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub message: String,
    pub url: Option<String>,
    pub timestamp: f64,
}

/// A search over structured logs.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub project_id: i64,
    pub since: f64,
    pub level: Option<String>,
    pub trace_id: Option<String>,
    /// Words the body must contain.
    pub text: Vec<String>,
    /// Attributes that must have these values.
    pub attributes: Vec<(String, String)>,
    pub limit: i64,
}

/// One structured log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub id: i64,
    pub project_id: i64,
    pub timestamp: f64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub level: String,
    pub body: String,
    pub attributes: Value,
    pub release: Option<String>,
    pub environment: Option<String>,
}

/// A release seen in a project.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseRow {
    pub version: String,
    pub first_seen: f64,
    pub last_seen: f64,
}

/// A cron monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorRow {
    pub slug: String,
    pub config: Option<Value>,
    pub last_check_in: Option<f64>,
    pub last_status: Option<String>,
}

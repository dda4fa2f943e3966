//! The processing pipeline for one event item: parse → normalise → scrub → group →
//! derive title, culprit and tags. Also the lighter pipeline for transactions, which are
//! normalised and scrubbed but not grouped.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::grouping::group_hashes;
use crate::normalize::{NormalizeContext, normalize_event};
use crate::scrub::{ScrubSettings, scrub_event};
use crate::title::display;
use crate::value::get_str;

/// Everything processing needs besides the payload.
#[derive(Clone, Debug)]
pub struct ProcessContext {
    pub normalize: NormalizeContext,
    pub scrub: ScrubSettings,
    /// Session updates older than this (seconds) are dropped, as Relay does (5 days).
    pub max_session_age: f64,
}

impl Default for ProcessContext {
    fn default() -> Self {
        ProcessContext {
            normalize: NormalizeContext::default(),
            scrub: ScrubSettings::default(),
            max_session_age: 5.0 * 86400.0,
        }
    }
}

/// Why an event item could not be processed at all.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProcessError {
    #[error("event payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("event payload is not a JSON object")]
    NotAnObject,
}

/// A processed error or message event, ready to be stored and attached to an issue.
#[derive(Clone, Debug)]
pub struct ProcessedEvent {
    pub event_id: String,
    pub timestamp: f64,
    pub received: f64,
    /// `error`, `default`, `csp`…
    pub ty: String,
    pub level: String,
    pub platform: String,
    pub title: String,
    pub culprit: String,
    pub metadata: Value,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub tags: Vec<(String, String)>,
    /// `sentry:user` identity, for counting affected users.
    pub user_key: Option<String>,
    pub trace_id: Option<String>,
    /// Grouping hashes, preferred first (see [`crate::grouping::group_hashes`]).
    pub hashes: Vec<String>,
    /// The normalised, scrubbed event as stored and served by the API.
    pub payload: Map<String, Value>,
}

fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, ProcessError> {
    // The whole payload's UTF-8 is checked in one pass: parsing from bytes, serde_json
    // would check each string on its own, at several times the cost per byte.
    let text =
        std::str::from_utf8(payload).map_err(|e| ProcessError::InvalidJson(e.to_string()))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ProcessError::NotAnObject),
        Err(e) => Err(ProcessError::InvalidJson(e.to_string())),
    }
}

/// Processes an `event` item (or an event built from a security report or minidump).
pub fn process_event(payload: &[u8], ctx: &ProcessContext) -> Result<ProcessedEvent, ProcessError> {
    let mut event = parse_object(payload)?;
    normalize_event(&mut event, &ctx.normalize);
    scrub_event(&mut event, &ctx.scrub);
    let view = Value::Object(event);
    let hashes = group_hashes(&view);
    let shown = display(&view);
    let tags = crate::tags::derive_tags(&view);
    let user_key = crate::tags::user_key(&view);
    let Value::Object(mut event) = view else {
        return Err(ProcessError::NotAnObject);
    };
    event.insert("title".into(), Value::from(shown.title.clone()));
    event.insert("culprit".into(), Value::from(shown.culprit.clone()));
    event.insert("metadata".into(), shown.metadata.clone());
    event.insert(
        "tags".into(),
        Value::Array(
            tags.iter()
                .map(|(k, v)| serde_json::json!([k, v]))
                .collect(),
        ),
    );
    let view = Value::Object(event);
    let s = |path: &[&str]| get_str(&view, path).map(str::to_owned);
    let processed = ProcessedEvent {
        event_id: s(&["event_id"]).unwrap_or_default(),
        timestamp: view
            .get("timestamp")
            .and_then(Value::as_f64)
            .unwrap_or(ctx.normalize.received),
        received: ctx.normalize.received,
        ty: s(&["type"]).unwrap_or_else(|| "default".into()),
        level: s(&["level"]).unwrap_or_else(|| "error".into()),
        platform: s(&["platform"]).unwrap_or_else(|| "other".into()),
        title: shown.title,
        culprit: shown.culprit,
        metadata: shown.metadata,
        release: s(&["release"]),
        environment: s(&["environment"]),
        tags,
        user_key,
        trace_id: s(&["contexts", "trace", "trace_id"]),
        hashes,
        payload: match view {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    Ok(processed)
}

/// A processed transaction: normalised and scrubbed, with the fields performance views
/// index by.
#[derive(Clone, Debug)]
pub struct ProcessedTransaction {
    pub event_id: String,
    pub name: String,
    pub op: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub status: Option<String>,
    pub start: f64,
    pub end: f64,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub payload: Map<String, Value>,
}

/// Processes a `transaction` item.
pub fn process_transaction(
    payload: &[u8],
    ctx: &ProcessContext,
) -> Result<ProcessedTransaction, ProcessError> {
    let mut event = parse_object(payload)?;
    event.insert("type".into(), Value::from("transaction"));
    normalize_event(&mut event, &ctx.normalize);
    scrub_event(&mut event, &ctx.scrub);
    let view = Value::Object(event);
    let s = |path: &[&str]| get_str(&view, path).map(str::to_owned);
    let end = view
        .get("timestamp")
        .and_then(Value::as_f64)
        .unwrap_or(ctx.normalize.received);
    Ok(ProcessedTransaction {
        event_id: s(&["event_id"]).unwrap_or_default(),
        name: s(&["transaction"]).unwrap_or_else(|| "<unlabeled transaction>".into()),
        op: s(&["contexts", "trace", "op"]),
        trace_id: s(&["contexts", "trace", "trace_id"]),
        span_id: s(&["contexts", "trace", "span_id"]),
        status: s(&["contexts", "trace", "status"]),
        start: view
            .get("start_timestamp")
            .and_then(Value::as_f64)
            .unwrap_or(end),
        end,
        release: s(&["release"]),
        environment: s(&["environment"]),
        payload: match view {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    })
}

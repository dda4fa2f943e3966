//! Turning every item of an envelope into structured records: events are processed into
//! issues' material, the other item types into rows for the performance, release-health,
//! cron, feedback, log and attachment views. Nothing a stock SDK sends is discarded; types
//! without a structured form are kept raw (size-bounded).

use bugbane_protocol::{Envelope, ItemType};
use serde_json::{Map, Value};

use crate::process::{
    ProcessContext, ProcessedEvent, ProcessedTransaction, process_event, process_transaction,
};
use crate::time_fmt::parse_timestamp;
use crate::value::{get_str, scalar_string, truncate};

/// One structured record from an envelope item.
#[derive(Clone, Debug)]
pub enum Record {
    Event(Box<ProcessedEvent>),
    Transaction(Box<ProcessedTransaction>),
    Spans(Vec<Span>),
    Session(SessionUpdate),
    SessionAggregates(Vec<SessionAggregate>),
    CheckIn(CheckIn),
    Feedback(Feedback),
    Attachment(Attachment),
    Logs(Vec<LogEntry>),
    ClientReport(Vec<Discarded>),
    Raw {
        ty: String,
        content_type: Option<String>,
        payload: Vec<u8>,
        truncated: bool,
    },
}

/// A span, from a transaction's `spans` or from span-first `span` items.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// The transaction (segment) this span belongs to.
    pub segment_id: Option<String>,
    pub name: String,
    pub op: Option<String>,
    pub status: Option<String>,
    pub start: f64,
    pub end: f64,
    pub is_segment: bool,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub data: Value,
    /// A page load's Web Vitals (`lcp`, `inp`, `cls`, `fcp`, `ttfb`), on segments only.
    pub vitals: Option<Value>,
}

/// One session update (release health).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionUpdate {
    pub sid: String,
    pub did: Option<String>,
    pub seq: i64,
    pub init: bool,
    pub started: f64,
    pub timestamp: f64,
    pub duration: Option<f64>,
    pub status: String,
    pub errors: i64,
    pub release: String,
    pub environment: Option<String>,
}

/// Pre-aggregated request-mode sessions for one minute.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionAggregate {
    pub started: f64,
    pub release: String,
    pub environment: Option<String>,
    pub exited: i64,
    pub errored: i64,
    pub abnormal: i64,
    pub crashed: i64,
}

/// A cron check-in.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckIn {
    pub check_in_id: String,
    pub monitor_slug: String,
    pub status: String,
    pub duration: Option<f64>,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub timestamp: f64,
    pub monitor_config: Option<Value>,
    pub trace_id: Option<String>,
}

/// User feedback: the new `feedback` item or a legacy `user_report`.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback {
    pub kind: &'static str,
    pub event_id: Option<String>,
    /// The error event the feedback is about.
    pub associated_event_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub message: String,
    pub url: Option<String>,
    pub timestamp: f64,
    pub payload: Value,
}

/// An attachment, linked to the envelope's event id.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub event_id: Option<String>,
    pub filename: String,
    pub content_type: Option<String>,
    pub attachment_type: String,
    pub data: Vec<u8>,
}

/// A structured log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub timestamp: f64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub level: String,
    pub body: String,
    pub attributes: Value,
    pub release: Option<String>,
    pub environment: Option<String>,
}

/// Events an SDK dropped before sending, from a client report.
#[derive(Clone, Debug, PartialEq)]
pub struct Discarded {
    pub reason: String,
    pub category: String,
    pub quantity: i64,
}

/// What processing an envelope produced, and what it had to drop (with reasons).
#[derive(Clone, Debug, Default)]
pub struct EnvelopeRecords {
    pub records: Vec<Record>,
    pub dropped: Vec<String>,
}

/// Processes every item of an envelope. `max_raw` bounds what is kept of unstructured items.
pub fn process_envelope(
    env: &Envelope<'_>,
    ctx: &ProcessContext,
    max_raw: usize,
) -> EnvelopeRecords {
    let mut out = EnvelopeRecords::default();
    let envelope_event_id = env.header.event_id().map(|e| e.to_string());
    let received = ctx.normalize.received;
    for item in &env.items {
        let json = || serde_json::from_slice::<Value>(item.payload).ok();
        let result: Result<Vec<Record>, String> = match &item.ty {
            ItemType::Event | ItemType::Security => process_event(item.payload, ctx)
                .map(|e| vec![Record::Event(Box::new(e))])
                .map_err(|e| e.to_string()),
            ItemType::Transaction => process_transaction(item.payload, ctx)
                .map(|t| {
                    let spans = transaction_spans(&t);
                    let mut v = vec![Record::Transaction(Box::new(t))];
                    if !spans.is_empty() {
                        v.push(Record::Spans(spans));
                    }
                    v
                })
                .map_err(|e| e.to_string()),
            ItemType::Span => json()
                .map(|v| vec![Record::Spans(span_items(&v))])
                .ok_or_else(|| "invalid span JSON".into()),
            ItemType::Session => json()
                .and_then(|v| session_update(&v, received, ctx.max_session_age))
                .map(|s| vec![Record::Session(s)])
                .ok_or_else(|| "invalid session".into()),
            ItemType::Sessions => json()
                .map(|v| vec![Record::SessionAggregates(session_aggregates(&v))])
                .ok_or_else(|| "invalid sessions".into()),
            ItemType::CheckIn => json()
                .and_then(|v| check_in(&v, received))
                .map(|c| vec![Record::CheckIn(c)])
                .ok_or_else(|| "invalid check-in".into()),
            ItemType::Feedback => json()
                .map(|v| {
                    vec![Record::Feedback(feedback(
                        &v,
                        received,
                        envelope_event_id.as_deref(),
                    ))]
                })
                .ok_or_else(|| "invalid feedback JSON".into()),
            ItemType::UserReport => json()
                .map(|v| vec![Record::Feedback(user_report(&v, received))])
                .ok_or_else(|| "invalid user report JSON".into()),
            ItemType::Attachment => Ok(vec![Record::Attachment(Attachment {
                event_id: envelope_event_id.clone(),
                filename: item
                    .header
                    .filename
                    .clone()
                    .unwrap_or_else(|| "attachment".into()),
                content_type: item.header.content_type.clone(),
                attachment_type: item
                    .header
                    .attachment_type
                    .clone()
                    .unwrap_or_else(|| "event.attachment".into()),
                data: item.payload.to_vec(),
            })]),
            ItemType::Log => json()
                .map(|v| vec![Record::Logs(log_items(&v))])
                .ok_or_else(|| "invalid log JSON".into()),
            ItemType::ClientReport => json()
                .map(|v| vec![Record::ClientReport(client_report(&v))])
                .ok_or_else(|| "invalid client report".into()),
            other => {
                let truncated = item.payload.len() > max_raw;
                Ok(vec![Record::Raw {
                    ty: other.as_str().to_owned(),
                    content_type: item.header.content_type.clone(),
                    payload: item.payload[..item.payload.len().min(max_raw)].to_vec(),
                    truncated,
                }])
            }
        };
        match result {
            Ok(r) => out.records.extend(r),
            Err(reason) => out.dropped.push(format!("{}: {reason}", item.ty.as_str())),
        }
    }
    out
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    get_str(v, path).map(str::to_owned)
}

fn attr(attrs: &Value, name: &str) -> Option<String> {
    let a = attrs.get(name)?;
    scalar_string(a.get("value").unwrap_or(a))
}

fn transaction_spans(t: &ProcessedTransaction) -> Vec<Span> {
    let Some(trace_id) = t.trace_id.clone() else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    if let Some(span_id) = &t.span_id {
        let trace = t.payload.get("contexts").and_then(|c| c.get("trace"));
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            parent_span_id: trace.and_then(|c| s(c, &["parent_span_id"])),
            segment_id: Some(span_id.clone()),
            name: t.name.clone(),
            op: t.op.clone(),
            status: t.status.clone(),
            start: t.start,
            end: t.end,
            is_segment: true,
            release: t.release.clone(),
            environment: t.environment.clone(),
            data: trace
                .and_then(|c| c.get("data"))
                .cloned()
                .unwrap_or(Value::Null),
            vitals: vitals(|name| {
                t.payload
                    .get("measurements")?
                    .get(name)?
                    .get("value")?
                    .as_f64()
            }),
        });
    }
    for sp in t
        .payload
        .get("spans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(span_id) = s(sp, &["span_id"]) else {
            continue;
        };
        let start = sp
            .get("start_timestamp")
            .and_then(parse_timestamp)
            .unwrap_or(t.start);
        spans.push(Span {
            trace_id: s(sp, &["trace_id"]).unwrap_or_else(|| trace_id.clone()),
            span_id,
            parent_span_id: s(sp, &["parent_span_id"]),
            segment_id: t.span_id.clone(),
            name: s(sp, &["description"]).unwrap_or_default(),
            op: s(sp, &["op"]),
            status: s(sp, &["status"]),
            start,
            end: sp
                .get("timestamp")
                .and_then(parse_timestamp)
                .unwrap_or(start),
            is_segment: false,
            release: t.release.clone(),
            environment: t.environment.clone(),
            data: sp.get("data").cloned().unwrap_or(Value::Null),
            vitals: None,
        });
    }
    spans
}

/// The Web Vitals a page load reported, by name, from wherever this SDK puts them.
fn vitals(get: impl Fn(&str) -> Option<f64>) -> Option<Value> {
    let mut out = serde_json::Map::new();
    for name in ["lcp", "inp", "cls", "fcp", "ttfb"] {
        if let Some(v) = get(name).filter(|v| v.is_finite()) {
            out.insert(name.into(), Value::from(v));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Span v2 containers (`{"items": [...]}`) or a single legacy span object.
fn span_items(v: &Value) -> Vec<Span> {
    let list: Vec<&Value> = match v.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![v],
    };
    list.into_iter()
        .filter_map(|sp| {
            let attrs = sp.get("attributes").cloned().unwrap_or(Value::Null);
            let start = sp.get("start_timestamp").and_then(parse_timestamp)?;
            let is_segment = sp
                .get("is_segment")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let vitals = if is_segment {
                vitals(|name| {
                    attr(&attrs, &format!("browser.web_vital.{name}.value"))?
                        .parse()
                        .ok()
                })
            } else {
                None
            };
            Some(Span {
                trace_id: s(sp, &["trace_id"])?,
                span_id: s(sp, &["span_id"])?,
                parent_span_id: s(sp, &["parent_span_id"]),
                segment_id: attr(&attrs, "sentry.segment.id"),
                name: s(sp, &["name"])
                    .or_else(|| s(sp, &["description"]))
                    .unwrap_or_default(),
                op: attr(&attrs, "sentry.op").or_else(|| s(sp, &["op"])),
                status: s(sp, &["status"]),
                start,
                end: sp
                    .get("end_timestamp")
                    .or_else(|| sp.get("timestamp"))
                    .and_then(parse_timestamp)
                    .unwrap_or(start),
                is_segment,
                release: attr(&attrs, "sentry.release"),
                environment: attr(&attrs, "sentry.environment"),
                data: attrs,
                vitals,
            })
        })
        .collect()
}

fn session_update(v: &Value, received: f64, max_age: f64) -> Option<SessionUpdate> {
    let sid = s(v, &["sid"])?;
    let release = s(v, &["attrs", "release"])?;
    let started = v.get("started").and_then(parse_timestamp)?;
    let timestamp = v
        .get("timestamp")
        .and_then(parse_timestamp)
        .unwrap_or(received)
        .max(started);
    // Relay drops updates that are too old or more than a minute in the future.
    if timestamp < received - max_age || timestamp > received + 60.0 {
        return None;
    }
    let did = s(v, &["did"]).filter(|d| d != "00000000-0000-0000-0000-000000000000");
    Some(SessionUpdate {
        sid,
        did,
        seq: v.get("seq").and_then(Value::as_i64).unwrap_or(0),
        init: v.get("init").and_then(Value::as_bool).unwrap_or(false),
        started,
        timestamp,
        duration: v.get("duration").and_then(Value::as_f64),
        status: s(v, &["status"]).unwrap_or_else(|| "ok".into()),
        errors: v.get("errors").and_then(Value::as_i64).unwrap_or(0),
        release,
        environment: s(v, &["attrs", "environment"]),
    })
}

fn session_aggregates(v: &Value) -> Vec<SessionAggregate> {
    let Some(release) = s(v, &["attrs", "release"]) else {
        return Vec::new();
    };
    let environment = s(v, &["attrs", "environment"]);
    v.get("aggregates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let started = a.get("started").and_then(parse_timestamp)?;
            let n = |k: &str| a.get(k).and_then(Value::as_i64).unwrap_or(0);
            Some(SessionAggregate {
                started: (started / 60.0).floor() * 60.0,
                release: release.clone(),
                environment: environment.clone(),
                exited: n("exited"),
                errored: n("errored"),
                abnormal: n("abnormal"),
                crashed: n("crashed"),
            })
        })
        .collect()
}

fn check_in(v: &Value, received: f64) -> Option<CheckIn> {
    let slug = s(v, &["monitor_slug"])?;
    let status = match get_str(v, &["status"]) {
        Some(st @ ("in_progress" | "ok" | "error")) => st.to_owned(),
        _ => "unknown".to_owned(),
    };
    Some(CheckIn {
        check_in_id: s(v, &["check_in_id"])
            .and_then(|c| bugbane_protocol::EventId::parse(&c))
            .map(|e| e.to_string())
            .unwrap_or_default(),
        monitor_slug: slug.chars().take(50).collect(),
        status,
        duration: v.get("duration").and_then(Value::as_f64),
        release: s(v, &["release"]),
        environment: s(v, &["environment"]),
        timestamp: received,
        monitor_config: v.get("monitor_config").filter(|c| c.is_object()).cloned(),
        trace_id: s(v, &["contexts", "trace", "trace_id"]),
    })
}

fn feedback(v: &Value, received: f64, envelope_event_id: Option<&str>) -> Feedback {
    let f = v
        .get("contexts")
        .and_then(|c| c.get("feedback"))
        .cloned()
        .unwrap_or(Value::Null);
    Feedback {
        kind: "feedback",
        event_id: s(v, &["event_id"]).or_else(|| envelope_event_id.map(str::to_owned)),
        associated_event_id: s(&f, &["associated_event_id"])
            .and_then(|e| bugbane_protocol::EventId::parse(&e))
            .map(|e| e.to_string()),
        name: s(&f, &["name"]),
        email: s(&f, &["contact_email"]),
        message: truncate(&s(&f, &["message"]).unwrap_or_default(), 4096),
        url: s(&f, &["url"]),
        timestamp: v
            .get("timestamp")
            .and_then(parse_timestamp)
            .unwrap_or(received),
        payload: v.clone(),
    }
}

fn user_report(v: &Value, received: f64) -> Feedback {
    Feedback {
        kind: "user_report",
        event_id: None,
        associated_event_id: s(v, &["event_id"])
            .and_then(|e| bugbane_protocol::EventId::parse(&e))
            .map(|e| e.to_string()),
        name: s(v, &["name"]),
        email: s(v, &["email"]),
        message: truncate(&s(v, &["comments"]).unwrap_or_default(), 4096),
        url: None,
        timestamp: received,
        payload: v.clone(),
    }
}

fn log_items(v: &Value) -> Vec<LogEntry> {
    v.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| {
            let attrs = l
                .get("attributes")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            LogEntry {
                timestamp: l.get("timestamp").and_then(parse_timestamp).unwrap_or(0.0),
                trace_id: s(l, &["trace_id"]),
                span_id: s(l, &["span_id"]),
                level: s(l, &["level"]).unwrap_or_else(|| "info".into()),
                body: s(l, &["body"]).unwrap_or_default(),
                release: attr(&attrs, "sentry.release"),
                environment: attr(&attrs, "sentry.environment"),
                attributes: attrs,
            }
        })
        .collect()
}

fn client_report(v: &Value) -> Vec<Discarded> {
    [
        "discarded_events",
        "rate_limited_events",
        "filtered_events",
        "filtered_sampling_events",
    ]
    .iter()
    .flat_map(|k| v.get(*k).and_then(Value::as_array).into_iter().flatten())
    .filter_map(|d| {
        Some(Discarded {
            reason: s(d, &["reason"]).unwrap_or_else(|| "unknown".into()),
            category: s(d, &["category"])?,
            quantity: d.get("quantity").and_then(Value::as_i64).unwrap_or(0),
        })
    })
    .collect()
}

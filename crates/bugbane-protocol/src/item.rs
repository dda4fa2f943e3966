//! Envelope item types and the data categories rate limits are expressed in.

/// Every item type current SDKs send, plus `Unknown` for types newer than this server:
/// unknown types are kept (raw), never a reason to reject an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ItemType {
    Event,
    Transaction,
    Security,
    Attachment,
    FormData,
    Session,
    Sessions,
    ClientReport,
    UserReport,
    Feedback,
    CheckIn,
    Log,
    Span,
    OtelSpan,
    TraceMetric,
    Statsd,
    MetricBuckets,
    Profile,
    ProfileChunk,
    ReplayEvent,
    ReplayRecording,
    ReplayVideo,
    Unknown(String),
}

impl ItemType {
    /// Parses the item header's `type` field.
    pub fn parse(s: &str) -> Self {
        match s {
            "event" => Self::Event,
            "transaction" => Self::Transaction,
            "security" | "raw_security" => Self::Security,
            "attachment" => Self::Attachment,
            "form_data" => Self::FormData,
            "session" => Self::Session,
            "sessions" => Self::Sessions,
            "client_report" => Self::ClientReport,
            "user_report" => Self::UserReport,
            "feedback" => Self::Feedback,
            "check_in" => Self::CheckIn,
            "log" => Self::Log,
            "span" => Self::Span,
            "otel_span" | "otel_traces_data" => Self::OtelSpan,
            "trace_metric" => Self::TraceMetric,
            "statsd" => Self::Statsd,
            "metric_buckets" => Self::MetricBuckets,
            "profile" => Self::Profile,
            "profile_chunk" => Self::ProfileChunk,
            "replay_event" => Self::ReplayEvent,
            "replay_recording" => Self::ReplayRecording,
            "replay_video" => Self::ReplayVideo,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The wire name of this type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Event => "event",
            Self::Transaction => "transaction",
            Self::Security => "security",
            Self::Attachment => "attachment",
            Self::FormData => "form_data",
            Self::Session => "session",
            Self::Sessions => "sessions",
            Self::ClientReport => "client_report",
            Self::UserReport => "user_report",
            Self::Feedback => "feedback",
            Self::CheckIn => "check_in",
            Self::Log => "log",
            Self::Span => "span",
            Self::OtelSpan => "otel_span",
            Self::TraceMetric => "trace_metric",
            Self::Statsd => "statsd",
            Self::MetricBuckets => "metric_buckets",
            Self::Profile => "profile",
            Self::ProfileChunk => "profile_chunk",
            Self::ReplayEvent => "replay_event",
            Self::ReplayRecording => "replay_recording",
            Self::ReplayVideo => "replay_video",
            Self::Unknown(s) => s,
        }
    }

    /// Items that carry an event of their own; an envelope may hold at most one.
    pub fn is_event_like(&self) -> bool {
        matches!(
            self,
            Self::Event
                | Self::Transaction
                | Self::Security
                | Self::FormData
                | Self::Feedback
                | Self::ReplayEvent
        )
    }

    /// Items whose payload must be a JSON document.
    pub fn is_json(&self) -> bool {
        matches!(
            self,
            Self::Event
                | Self::Transaction
                | Self::Session
                | Self::Sessions
                | Self::ClientReport
                | Self::UserReport
                | Self::Feedback
                | Self::CheckIn
                | Self::Log
                | Self::Span
                | Self::TraceMetric
                | Self::ReplayEvent
        )
    }

    /// The rate-limit category this item counts against, if any.
    pub fn category(&self) -> Option<DataCategory> {
        Some(match self {
            Self::Event | Self::FormData => DataCategory::Error,
            Self::Transaction => DataCategory::Transaction,
            Self::Security => DataCategory::Security,
            Self::Attachment => DataCategory::Attachment,
            Self::Session | Self::Sessions => DataCategory::Session,
            Self::UserReport | Self::Feedback => DataCategory::Feedback,
            Self::CheckIn => DataCategory::Monitor,
            Self::Log => DataCategory::LogItem,
            Self::Span | Self::OtelSpan => DataCategory::Span,
            Self::TraceMetric => DataCategory::TraceMetric,
            Self::Profile | Self::ProfileChunk => DataCategory::Profile,
            Self::ReplayEvent | Self::ReplayRecording | Self::ReplayVideo => DataCategory::Replay,
            Self::ClientReport | Self::Statsd | Self::MetricBuckets | Self::Unknown(_) => {
                return None;
            }
        })
    }
}

/// Data categories as named in `X-Sentry-Rate-Limits` (the subset items map to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataCategory {
    Default,
    Error,
    Transaction,
    Security,
    Attachment,
    Session,
    Feedback,
    Monitor,
    LogItem,
    Span,
    TraceMetric,
    Profile,
    Replay,
}

impl DataCategory {
    /// The name SDKs parse.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Error => "error",
            Self::Transaction => "transaction",
            Self::Security => "security",
            Self::Attachment => "attachment",
            Self::Session => "session",
            Self::Feedback => "feedback",
            Self::Monitor => "monitor",
            Self::LogItem => "log_item",
            Self::Span => "span",
            Self::TraceMetric => "trace_metric",
            Self::Profile => "profile",
            Self::Replay => "replay",
        }
    }
}

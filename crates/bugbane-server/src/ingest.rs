//! The ingestion endpoints SDKs post to.
//!
//! A handler authenticates against the in-memory key cache, decodes and validates the
//! body (framing, JSON, sizes, item counts), checks rate limits and the backlog, hands the
//! envelope to the store's group-commit spool and answers only once that commit is on
//! disk. It never processes: the processor does that from the spool. Every endpoint that
//! is not an envelope (store, security, minidump, cron) builds an envelope, so there is one
//! path to disk.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, Multipart, Path, RawQuery, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use bugbane_protocol::{
    Auth, AuthInput, Dsn, Envelope, EnvelopeBuilder, EnvelopeHeader, EventId, ItemType,
    decode_body, decode_store_body,
};
use bugbane_store::{ProjectKey, SpoolEntry};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::{App, now};

type AppState = State<Arc<App>>;

pub(crate) fn routes() -> Router<Arc<App>> {
    let mut r = Router::new();
    for (path, handler) in [
        ("/api/{project_id}/envelope", any(envelope)),
        ("/api/{project_id}/store", any(store)),
        ("/api/{project_id}/security", any(security)),
        ("/api/{project_id}/csp-report", any(security)),
        ("/api/{project_id}/minidump", any(minidump)),
    ] {
        // SDKs always send the trailing slash; tolerate its absence too.
        r = r
            .route(&format!("{path}/"), handler.clone())
            .route(path, handler);
    }
    r.route("/api/{project_id}/cron/{slug}/{key}/", any(cron))
        .route("/api/{project_id}/cron/{slug}/", any(cron_no_key))
        .layer(axum::middleware::map_response(cors_headers))
        .route(
            "/api/{project_id}/events/{event_id}/attachments/",
            post(not_an_envelope_attachments),
        )
}

/// Relay's CORS: any origin may post; SDKs must be able to read the rate-limit headers.
async fn cors_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-sentry-error, x-sentry-rate-limits, retry-after"),
    );
    res
}

const ALLOWED_HEADERS: &str = "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, \
    authentication, authorization, content-encoding, transfer-encoding";

/// Answers a CORS preflight, reflecting whatever headers the browser asks for (apps add
/// their own transport headers).
fn preflight(headers: &HeaderMap) -> Response {
    let requested = headers
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .map(|r| format!("{ALLOWED_HEADERS}, {r}"))
        .unwrap_or_else(|| ALLOWED_HEADERS.to_owned());
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Ok(v) = HeaderValue::from_str(&requested) {
        h.insert("access-control-allow-headers", v);
    }
    h.insert("access-control-max-age", HeaderValue::from_static("3600"));
    res
}

/// Request metadata every endpoint needs.
struct Meta {
    project_id: i64,
    client_ip: Option<String>,
    auth: Option<Auth>,
    received: f64,
}

fn parse_project_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid project id {raw:?}")))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn meta(
    app: &App,
    project_id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: SocketAddr,
) -> Result<Meta, ApiError> {
    let auth = Auth::from_request(AuthInput {
        x_sentry_auth: header_str(headers, "x-sentry-auth"),
        authorization: header_str(headers, "authorization"),
        query,
    })
    .map_err(|e| match e {
        bugbane_protocol::AuthError::UnsupportedVersion(_) => ApiError::BadRequest(e.to_string()),
        _ => ApiError::Unauthorized(e.to_string()),
    })?;
    let forwarded = app
        .config
        .server
        .trust_forwarded_for
        .then(|| header_str(headers, "x-forwarded-for"))
        .flatten()
        .and_then(|f| f.split(',').next())
        .map(|s| s.trim().to_owned());
    Ok(Meta {
        project_id: parse_project_id(project_id)?,
        client_ip: forwarded.or_else(|| Some(peer.ip().to_string())),
        auth,
        received: now(),
    })
}

/// Reads the whole body within the configured request limit.
async fn read_body(app: &App, body: Body) -> Result<Bytes, ApiError> {
    let limit = app.config.ingest.max_request_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("request body exceeds {limit} bytes")))
}

fn decode(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let limit = app.config.ingest.max_envelope_bytes;
    decode_body(header_str(headers, "content-encoding"), body, limit)
        .map(|c| c.into_owned())
        .map_err(|e| match e {
            bugbane_protocol::DecodeError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            _ => ApiError::BadRequest(e.to_string()),
        })
}

/// Resolves the request's key and checks it may send to the project in the URL.
async fn authorize(app: &App, meta: &Meta, auth: Option<&Auth>) -> Result<ProjectKey, ApiError> {
    let auth =
        auth.ok_or_else(|| ApiError::Unauthorized("missing authorization information".into()))?;
    let key = app
        .keys
        .get(&app.store, &auth.public_key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown public key".into()))?;
    if !key.active {
        return Err(ApiError::Forbidden("the public key is disabled".into()));
    }
    if key.project_id != meta.project_id {
        return Err(ApiError::BadRequest(
            "the project id in the URL does not match the key's project".into(),
        ));
    }
    Ok(key)
}

/// Checks the backlog, disk space and the key's rate limit before anything is written.
fn admit(app: &App, key: &ProjectKey, meta: &Meta) -> Result<(), ApiError> {
    admit_any(app)?;
    let limit = key
        .rate_limit_per_minute
        .map(|l| l.max(0) as u64)
        .unwrap_or(app.config.ingest.rate_limit_per_minute);
    app.limiter
        .check(key.id, limit, meta.received)
        .map_err(|retry_after| ApiError::RateLimited {
            detail: "rate limit exceeded for this key".into(),
            retry_after,
            scope: "key",
            reason: "key_quota",
        })
}

/// What refuses every envelope for now, whoever sends it. Checked before a body is
/// decoded too, so that refusing a storm costs little more than reading its requests and
/// leaves the cores to the backlog.
fn admit_any(app: &App) -> Result<(), ApiError> {
    if app.low_disk.load(Ordering::Relaxed) {
        return Err(ApiError::Unavailable {
            detail: "the server is low on disk space and refuses new data".into(),
            retry_after: 60,
        });
    }
    if app.backlog() >= app.config.ingest.max_backlog {
        return Err(ApiError::RateLimited {
            detail: "ingestion backlog is full, retry later".into(),
            retry_after: 5,
            scope: "organization",
            reason: "backlog",
        });
    }
    Ok(())
}

/// Validates an envelope's items: per-type sizes and counts, and JSON where JSON is due.
fn validate(app: &App, env: &Envelope<'_>) -> Result<(), ApiError> {
    let cfg = &app.config.ingest;
    let mut event_like = 0;
    let mut attachments = 0;
    let mut sessions = 0;
    for item in &env.items {
        let (limit, what) = match item.ty {
            ItemType::Event
            | ItemType::Transaction
            | ItemType::Security
            | ItemType::Feedback
            | ItemType::ReplayEvent
            | ItemType::UserReport => (cfg.max_event_bytes, "event"),
            ItemType::Attachment => (cfg.max_attachment_bytes, "attachment"),
            _ => (cfg.max_item_bytes, "item"),
        };
        if item.payload.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "envelope exceeded size limits for type '{}' ({} > {limit} bytes for an {what})",
                item.ty.as_str(),
                item.payload.len()
            )));
        }
        if item.ty.is_event_like() {
            event_like += 1;
        }
        match item.ty {
            ItemType::Attachment => attachments += 1,
            ItemType::Session => sessions += 1,
            _ => {}
        }
        if item.ty.is_json() {
            // Skipping strings does not check their UTF-8, so check it first: anything
            // acknowledged must be processable.
            std::str::from_utf8(item.payload).map_err(|e| {
                ApiError::BadRequest(format!(
                    "invalid JSON in {} item: not UTF-8 ({e})",
                    item.ty.as_str()
                ))
            })?;
            serde_json::from_slice::<serde::de::IgnoredAny>(item.payload).map_err(|e| {
                ApiError::BadRequest(format!("invalid JSON in {} item: {e}", item.ty.as_str()))
            })?;
        }
    }
    if event_like > 1 {
        return Err(ApiError::TooLarge(
            "envelope contains more than one event-like item".into(),
        ));
    }
    if attachments > cfg.max_attachments {
        return Err(ApiError::TooLarge(format!(
            "envelope has more than {} attachments",
            cfg.max_attachments
        )));
    }
    if sessions > cfg.max_sessions {
        return Err(ApiError::TooLarge(format!(
            "envelope has more than {} session updates",
            cfg.max_sessions
        )));
    }
    Ok(())
}

fn random_event_id() -> EventId {
    let mut b = [0u8; 16];
    // A clock-and-counter id is unique enough when the OS RNG is unavailable.
    if getrandom::getrandom(&mut b).is_err() {
        b[..8].copy_from_slice(&now().to_bits().to_le_bytes());
    }
    EventId::from_bytes(b)
}

/// Validates, admits and spools an envelope body; returns the response id. `original` is
/// the body as sent with its compression, kept in the spool instead of the decoded body
/// when the envelope needs no rewriting (re-compressing would cost more CPU than anything
/// else on this path).
async fn accept(
    app: &App,
    meta: Meta,
    body: Vec<u8>,
    original: Option<(String, Bytes)>,
) -> Result<Option<EventId>, ApiError> {
    let env = Envelope::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // The envelope header's DSN authenticates only when nothing else did; when both are
    // present they must agree.
    let header_dsn =
        match env.header.dsn.as_deref() {
            Some(d) => Some(d.parse::<Dsn>().map_err(|e| {
                ApiError::BadRequest(format!("invalid dsn in envelope header: {e}"))
            })?),
            None => None,
        };
    let auth = match (&meta.auth, &header_dsn) {
        (Some(a), Some(d))
            if a.public_key != d.public_key || d.project_id as i64 != meta.project_id =>
        {
            return Err(ApiError::BadRequest(
                "the envelope's dsn does not match the request's authentication".into(),
            ));
        }
        (Some(a), _) => Some(a.clone()),
        (None, Some(d)) => Some(Auth {
            public_key: d.public_key.clone(),
            version: None,
            client: None,
        }),
        (None, None) => None,
    };
    let key = authorize(app, &meta, auth.as_ref()).await?;
    validate(app, &env)?;
    admit(app, &key, &meta)?;

    let has_event = env.items.iter().any(|i| i.ty.is_event_like());
    let mut event_id = env.header.event_id();
    let rewrite = has_event && event_id.is_none();
    let body = if rewrite {
        // Give the envelope an id now, so a crash and reprocessing cannot create twice.
        let payload_id = env
            .items
            .iter()
            .find(|i| i.ty.is_event_like())
            .and_then(|i| serde_json::from_slice::<Value>(i.payload).ok())
            .and_then(|v| {
                v.get("event_id")
                    .and_then(Value::as_str)
                    .and_then(EventId::parse)
            });
        let id = payload_id.unwrap_or_else(random_event_id);
        event_id = Some(id);
        let mut header = env.header.clone();
        header.event_id = Some(id.to_string());
        let rest = body
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| &body[i..])
            .unwrap_or(&[]);
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.extend_from_slice(rest);
        out
    } else {
        body
    };
    let (encoding, body) = match original {
        Some((encoding, raw)) if !rewrite => (Some(encoding), raw.to_vec()),
        _ => (None, body),
    };
    let entry = SpoolEntry {
        project_id: meta.project_id,
        received: meta.received,
        client_ip: meta.client_ip,
        sdk_client: auth.and_then(|a| a.client),
        encoding,
        body,
    };
    app.store.spool(entry).await?;
    Ok(event_id)
}

fn id_response(id: Option<EventId>) -> Response {
    match id {
        Some(id) => Json(json!({ "id": id.to_string() })).into_response(),
        None => Json(json!({})).into_response(),
    }
}

/// A body-carrying ingest request, as every such endpoint first sees it.
struct IngestRequest {
    project_id: String,
    peer: SocketAddr,
    query: Option<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
}

impl FromRequest<Arc<App>> for IngestRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<App>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let Path(project_id) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(IngestRequest {
            project_id,
            peer,
            query: parts.uri.query().map(str::to_owned),
            method: parts.method,
            headers: parts.headers,
            body,
        })
    }
}

/// What `IngestRequest::receive` yields: a preflight answer, or a decoded POST.
enum Received {
    Preflight(Response),
    Post {
        meta: Meta,
        headers: HeaderMap,
        raw: Bytes,
        decoded: Vec<u8>,
    },
}

impl IngestRequest {
    /// Answers a CORS preflight, or authenticates the request's metadata and reads and
    /// decodes its body (both bounded).
    async fn receive(self, app: &App, endpoint: &str) -> Result<Received, ApiError> {
        if self.method == Method::OPTIONS {
            return Ok(Received::Preflight(preflight(&self.headers)));
        }
        if self.method != Method::POST {
            return Err(ApiError::BadRequest(format!(
                "the {endpoint} endpoint takes POST"
            )));
        }
        let meta = meta(
            app,
            &self.project_id,
            &self.headers,
            self.query.as_deref(),
            self.peer,
        )?;
        let raw = read_body(app, self.body).await?;
        admit_any(app)?;
        let decoded = decode(app, &self.headers, &raw)?;
        Ok(Received::Post {
            meta,
            headers: self.headers,
            raw,
            decoded,
        })
    }
}

async fn envelope(State(app): AppState, req: IngestRequest) -> Result<Response, ApiError> {
    let (meta, headers, raw, decoded) = match req.receive(&app, "envelope").await? {
        Received::Preflight(res) => return Ok(res),
        Received::Post {
            meta,
            headers,
            raw,
            decoded,
        } => (meta, headers, raw, decoded),
    };
    let original = header_str(&headers, "content-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| matches!(e.as_str(), "gzip" | "x-gzip" | "deflate" | "br" | "zstd"))
        .map(|e| (e, raw));
    Ok(id_response(accept(&app, meta, decoded, original).await?))
}

/// Wraps one event JSON into an envelope.
fn event_envelope(
    event: &Value,
    extra_items: Vec<(&str, Map<String, Value>, Vec<u8>)>,
) -> (EventId, Vec<u8>) {
    let id = event
        .get("event_id")
        .and_then(Value::as_str)
        .and_then(EventId::parse)
        .unwrap_or_else(random_event_id);
    let header = EnvelopeHeader {
        event_id: Some(id.to_string()),
        ..Default::default()
    };
    let mut b = EnvelopeBuilder::new(&header).item(
        "event",
        Map::new(),
        &serde_json::to_vec(event).unwrap_or_default(),
    );
    for (ty, h, payload) in extra_items {
        b = b.item(ty, h, &payload);
    }
    (id, b.finish())
}

/// The legacy store endpoint: one event JSON (or base64+zlib JSON, or an envelope).
async fn store(State(app): AppState, req: IngestRequest) -> Result<Response, ApiError> {
    let (meta, headers, decoded) = match req.receive(&app, "store").await? {
        Received::Preflight(res) => return Ok(res),
        Received::Post {
            meta,
            headers,
            decoded,
            ..
        } => (meta, headers, decoded),
    };
    if header_str(&headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-sentry-envelope"))
    {
        return Ok(id_response(accept(&app, meta, decoded, None).await?));
    }
    if decoded.len() > app.config.ingest.max_event_bytes {
        return Err(ApiError::TooLarge(format!(
            "event exceeds {} bytes",
            app.config.ingest.max_event_bytes
        )));
    }
    let json = decode_store_body(&decoded, app.config.ingest.max_event_bytes).ok_or_else(|| {
        ApiError::BadRequest("store body is neither JSON nor base64-encoded zlib JSON".into())
    })?;
    let event: Value = serde_json::from_slice(&json)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON in event: {e}")))?;
    if !event.is_object() {
        return Err(ApiError::BadRequest(
            "the event must be a JSON object".into(),
        ));
    }
    let (_, body) = event_envelope(&event, Vec::new());
    Ok(id_response(accept(&app, meta, body, None).await?))
}

/// Browser security reports (CSP `report-uri` and Reporting API forms) become events.
async fn security(
    State(app): AppState,
    Path(project_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if method == Method::OPTIONS {
        return Ok(preflight(&headers));
    }
    let ct = header_str(&headers, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let accepted = [
        "application/csp-report",
        "application/json",
        "application/expect-ct-report",
        "application/reports+json",
        "application/expect-staple-report",
    ];
    if !accepted.iter().any(|a| ct.starts_with(a)) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "unsupported content type {ct:?} for a security report"
        )));
    }
    let meta = meta(&app, &project_id, &headers, query.as_deref(), peer)?;
    let raw = read_body(&app, body).await?;
    let decoded = decode(&app, &headers, &raw)?;
    let report: Value = serde_json::from_slice(&decoded)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON in report: {e}")))?;
    let params: Vec<(String, String)> = query
        .as_deref()
        .map(bugbane_protocol::auth::parse_query)
        .unwrap_or_default();
    let param = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };
    let reports: Vec<Value> = match report {
        Value::Array(list) => list
            .into_iter()
            .filter_map(|r| r.get("body").cloned())
            .collect(),
        Value::Object(mut m) => vec![m.remove("csp-report").unwrap_or(Value::Object(m))],
        _ => Vec::new(),
    };
    let Some(csp) = reports.into_iter().next() else {
        return Err(ApiError::BadRequest("no report in body".into()));
    };
    let field = |a: &str, b: &str| {
        csp.get(a)
            .or_else(|| csp.get(b))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let directive = field("effective-directive", "effectiveDirective")
        .or_else(|| field("violated-directive", "violatedDirective"))
        .map(|d| d.split_whitespace().next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let blocked = field("blocked-uri", "blockedURL").unwrap_or_else(|| "self".into());
    let blocked_host = blocked
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or(&blocked)
        .to_owned();
    let document = field("document-uri", "documentURL");
    let mut event = json!({
        "type": "csp",
        "platform": "javascript",
        "level": "error",
        "logentry": {"formatted": format!("Blocked '{directive}' from '{blocked_host}'")},
        "csp": {"effective_directive": directive, "blocked_uri": blocked_host, "document_uri": document, "raw": csp},
        "request": {"url": document, "headers": [["User-Agent", header_str(&headers, "user-agent").unwrap_or("")]]},
        "tags": [["effective-directive", directive], ["blocked-uri", blocked_host]],
    });
    if let Some(r) = param("sentry_release") {
        event["release"] = Value::from(r);
    }
    if let Some(e) = param("sentry_environment") {
        event["environment"] = Value::from(e);
    }
    let (_, body) = event_envelope(&event, Vec::new());
    accept(&app, meta, body, None).await?;
    Ok(StatusCode::OK.into_response())
}

/// Native crash reports: the minidump is kept as an attachment of a fatal event (it is
/// not symbolicated yet).
async fn minidump(
    State(app): AppState,
    Path(project_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    if request.method() == Method::OPTIONS {
        return Ok(preflight(&headers));
    }
    let meta = meta(&app, &project_id, &headers, query.as_deref(), peer)?;
    let is_multipart =
        header_str(&headers, "content-type").is_some_and(|c| c.starts_with("multipart/form-data"));
    let mut dump: Option<Vec<u8>> = None;
    let mut event = json!({});
    let mut others: Vec<(String, Option<String>, Vec<u8>)> = Vec::new();
    if is_multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let file = field.file_name().map(str::to_owned);
            let ct = field.content_type().map(str::to_owned);
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::BadRequest(e.to_string()))?
                .to_vec();
            match name.as_str() {
                "upload_file_minidump" => dump = Some(data),
                "sentry" => {
                    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&data) {
                        event = Value::Object(m);
                    }
                }
                _ if file.is_some() => others.push((file.unwrap_or(name), ct, data)),
                _ => {}
            }
        }
    } else {
        let raw = read_body(&app, request.into_body()).await?;
        dump = Some(raw.to_vec());
    }
    let dump = dump.ok_or_else(|| {
        ApiError::BadRequest("missing minidump (field upload_file_minidump)".into())
    })?;
    if !(dump.starts_with(b"MDMP") || dump.starts_with(b"PMDM")) {
        return Err(ApiError::BadRequest(
            "the upload is not a minidump (no MDMP signature)".into(),
        ));
    }
    let Value::Object(ev) = &mut event else {
        return Err(ApiError::BadRequest("invalid sentry field".into()));
    };
    ev.entry("level").or_insert(json!("fatal"));
    ev.entry("platform").or_insert(json!("native"));
    ev.entry("exception").or_insert(json!({"values": [{
        "type": "Minidump",
        "value": "Native crash (minidump not symbolicated)",
        "mechanism": {"type": "minidump", "handled": false, "synthetic": true}
    }]}));
    let mut items: Vec<(&str, Map<String, Value>, Vec<u8>)> = Vec::new();
    let mut h = Map::new();
    h.insert("filename".into(), json!("upload_file_minidump"));
    h.insert("attachment_type".into(), json!("event.minidump"));
    items.push(("attachment", h, dump));
    for (name, ct, data) in others {
        let mut h = Map::new();
        h.insert("filename".into(), json!(name));
        if let Some(ct) = ct {
            h.insert("content_type".into(), json!(ct));
        }
        items.push(("attachment", h, data));
    }
    let (id, body) = event_envelope(&event, items);
    accept(&app, meta, body, None).await?;
    Ok(id.hyphenated().into_response())
}

/// HTTP cron check-ins (`curl …/cron/<slug>/<key>/?status=ok`).
async fn cron(
    State(app): AppState,
    Path((project_id, slug, key)): Path<(String, String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut m = meta(&app, &project_id, &headers, query.as_deref(), peer)?;
    if m.auth.is_none() {
        let public_key = bugbane_protocol::auth::parse_public_key(&key).ok_or_else(|| {
            ApiError::Unauthorized("bad sentry_key: expected 32 hex digits".into())
        })?;
        m.auth = Some(Auth {
            public_key,
            version: None,
            client: None,
        });
    }
    cron_check_in(&app, m, &slug, query.as_deref()).await
}

async fn cron_no_key(
    State(app): AppState,
    Path((project_id, slug)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let m = meta(&app, &project_id, &headers, query.as_deref(), peer)?;
    cron_check_in(&app, m, &slug, query.as_deref()).await
}

async fn cron_check_in(
    app: &App,
    m: Meta,
    slug: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let params: Vec<(String, String)> = query
        .map(bugbane_protocol::auth::parse_query)
        .unwrap_or_default();
    let param = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };
    let mut check_in = json!({
        "check_in_id": param("check_in_id").unwrap_or_else(|| random_event_id().to_string()),
        "monitor_slug": slug,
        "status": param("status").unwrap_or_else(|| "ok".into()),
    });
    if let Some(d) = param("duration").and_then(|d| d.parse::<f64>().ok()) {
        check_in["duration"] = json!(d / 1000.0);
    }
    if let Some(e) = param("environment") {
        check_in["environment"] = json!(e);
    }
    let body = EnvelopeBuilder::new(&EnvelopeHeader::default())
        .item(
            "check_in",
            Map::new(),
            &serde_json::to_vec(&check_in).unwrap_or_default(),
        )
        .finish();
    accept(app, m, body, None).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Attachments sent after their event: accepted as a standalone envelope attachment.
async fn not_an_envelope_attachments(
    State(app): AppState,
    Path((project_id, event_id)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let meta = meta(&app, &project_id, &headers, query.as_deref(), peer)?;
    let id =
        EventId::parse(&event_id).ok_or_else(|| ApiError::BadRequest("invalid event id".into()))?;
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let header = EnvelopeHeader {
        event_id: Some(id.to_string()),
        ..Default::default()
    };
    let mut b = EnvelopeBuilder::new(&header);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
    {
        let name = field
            .file_name()
            .or(field.name())
            .unwrap_or("attachment")
            .to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut h = Map::new();
        h.insert("filename".into(), json!(name));
        b = b.item("attachment", h, &data);
    }
    accept(&app, meta, b.finish(), None).await?;
    Ok((StatusCode::CREATED, header::HeaderMap::new()).into_response())
}

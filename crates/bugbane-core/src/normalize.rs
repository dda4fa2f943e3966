//! Event normalisation, after Relay's: every field is brought to one canonical shape
//! (timestamps as float seconds, tags as pairs, `values` wrappers, logentry, levels,
//! platforms…), invalid data is dropped and recorded in `errors`, and unknown fields are
//! kept untouched.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use serde_json::{Map, Value, json};

use crate::time_fmt::parse_timestamp;
use crate::useragent::contexts_from_user_agent;
use crate::value::{get_str, object_entry, scalar_string, set, shorten};

/// What normalisation needs to know about the request an event came with.
#[derive(Clone, Debug, Default)]
pub struct NormalizeContext {
    /// Receive time, UNIX seconds.
    pub received: f64,
    /// The envelope's `sent_at`, UNIX seconds, for clock-drift correction.
    pub sent_at: Option<f64>,
    /// The SDK's address (already resolved from the connection or a trusted proxy).
    pub client_ip: Option<String>,
    /// `sentry_client` from the auth, used when the event has no `sdk`.
    pub sdk_client: Option<String>,
    /// The event id to use when the payload has none (the envelope header's, or a new one).
    pub fallback_event_id: String,
}

/// Platforms Sentry accepts; anything else becomes `other`.
const VALID_PLATFORMS: &[&str] = &[
    "as3",
    "c",
    "cfml",
    "cocoa",
    "csharp",
    "elixir",
    "go",
    "groovy",
    "haskell",
    "java",
    "javascript",
    "native",
    "node",
    "objc",
    "other",
    "perl",
    "php",
    "python",
    "ruby",
];

/// Tag keys that are reserved for top-level fields.
const RESERVED_TAGS: &[&str] = &["release", "dist", "user", "filename", "function"];

const MAX_FRAMES: usize = 250;
const THIRTY_DAYS: f64 = 30.0 * 86400.0;

/// Normalises `event` in place. Returns nothing: problems are recorded in `event.errors`.
pub fn normalize_event(event: &mut Map<String, Value>, ctx: &NormalizeContext) {
    let mut errors: Vec<Value> = match event.remove("errors") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut err = |ty: &str, name: &str, value: Option<&Value>| {
        let mut e = json!({"type": ty, "name": name});
        if let Some(v) = value {
            e["value"] = v.clone();
        }
        errors.push(e);
    };

    // Identity and time.
    let id = event
        .get("event_id")
        .and_then(Value::as_str)
        .and_then(bugbane_protocol::EventId::parse)
        .map(|e| e.to_string())
        .unwrap_or_else(|| ctx.fallback_event_id.clone());
    set(event, "event_id", Value::from(id));

    let drift = ctx
        .sent_at
        .map(|s| ctx.received - s)
        .filter(|d| d.abs() >= 55.0 * 60.0)
        .unwrap_or(0.0);
    for key in ["timestamp", "start_timestamp"] {
        let parsed = event.get(key).map(|v| (parse_timestamp(v), v.clone()));
        let ts = match parsed {
            None if key == "timestamp" => ctx.received,
            None => continue,
            Some((Some(t), _)) => t + drift,
            Some((None, raw)) => {
                err("invalid_data", key, Some(&raw));
                ctx.received
            }
        };
        let ts = if ts > ctx.received + 60.0 {
            err("future_timestamp", key, None);
            ctx.received
        } else if ts < ctx.received - THIRTY_DAYS {
            err("past_timestamp", key, None);
            ctx.received
        } else {
            ts
        };
        set(event, key, json!(ts));
    }
    set(event, "received", json!(ctx.received));

    let is_transaction = event.get("type").and_then(Value::as_str) == Some("transaction");

    // Level.
    let level = match event.get("level") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let l = normalize_level(v);
            if l.is_none() {
                err("invalid_data", "level", Some(v));
            }
            l
        }
    };
    let default_level = if is_transaction { "info" } else { "error" };
    set(event, "level", Value::from(level.unwrap_or(default_level)));

    // Platform.
    let platform = event
        .get("platform")
        .and_then(Value::as_str)
        .filter(|p| VALID_PLATFORMS.contains(p))
        .unwrap_or("other")
        .to_owned();
    set(event, "platform", Value::from(platform.clone()));

    // Short string fields.
    for (key, max) in [
        ("logger", 64),
        ("transaction", 200),
        ("server_name", 256),
        ("dist", 64),
        ("culprit", 200),
    ] {
        match event.get_mut(key) {
            Some(Value::String(s)) => shorten(s, max),
            Some(Value::Null) | None => {}
            Some(other) => {
                let o = other.clone();
                err("invalid_data", key, Some(&o));
                event.remove(key);
            }
        }
    }
    if let Some(rel) = event.get("release").cloned() {
        match scalar_string(&rel).map(|s| s.trim().to_owned()) {
            Some(r) if valid_release(&r) => {
                set(event, "release", Value::from(r));
            }
            _ => {
                if !rel.is_null() {
                    err("invalid_data", "release", Some(&rel));
                }
                event.remove("release");
            }
        }
    }

    // Tags: object or pairs → ordered, validated pairs. `environment` moves to the top level.
    let mut tags = take_tags(event.remove("tags"), &mut err);
    if let Some(pos) = tags.iter().position(|(k, _)| k == "environment") {
        let (_, env) = tags.remove(pos);
        event.entry("environment").or_insert(Value::from(env));
    }
    for key in ["server_name", "site"] {
        if let Some(v) = event.get(key).and_then(Value::as_str)
            && !tags.iter().any(|(k, _)| k == key)
        {
            tags.push((key.to_owned(), v.to_owned()));
        }
    }
    event.insert(
        "tags".into(),
        Value::Array(tags.into_iter().map(|(k, v)| json!([k, v])).collect()),
    );
    if let Some(env) = event.get("environment").cloned() {
        match env.as_str().map(str::trim) {
            Some(e)
                if !e.is_empty() && e.chars().count() <= 64 && !e.contains(['/', '\n', '\r']) =>
            {
                set(event, "environment", Value::from(e.to_owned()));
            }
            _ => {
                if !env.is_null() {
                    err("invalid_data", "environment", Some(&env));
                }
                event.remove("environment");
            }
        }
    }

    // message → logentry.
    normalize_logentry(event);

    // `values` wrappers.
    for key in ["exception", "threads", "breadcrumbs"] {
        if let Some(v) = event.remove(key)
            && let Some(values) = values_of(v)
        {
            // Built by hand: `json!` would serialise the whole list into a copy.
            let mut wrapper = Map::new();
            wrapper.insert("values".into(), Value::Array(values));
            set(event, key, Value::Object(wrapper));
        }
    }

    normalize_exceptions(event, &platform, &mut err);
    normalize_breadcrumbs(event, ctx, drift);
    normalize_request(event);
    normalize_user(event, ctx, &platform);
    normalize_contexts(event, is_transaction);

    // Type inference: only `transaction` and `feedback` are trusted from the client.
    let ty = match event.get("type").and_then(Value::as_str) {
        Some(t @ ("transaction" | "feedback" | "csp" | "hpkp" | "expectct" | "expectstaple")) => {
            t.to_owned()
        }
        _ if has_exception(event) => "error".to_owned(),
        _ => "default".to_owned(),
    };
    set(event, "type", Value::from(ty));

    if !event.get("sdk").is_some_and(Value::is_object)
        && let Some((name, version)) = ctx.sdk_client.as_deref().and_then(|c| c.split_once('/'))
    {
        set(event, "sdk", json!({"name": name, "version": version}));
    }

    if !errors.is_empty() {
        set(event, "errors", Value::Array(errors));
    }
}

/// Maps every level spelling SDKs use onto Sentry's five levels.
pub fn normalize_level(v: &Value) -> Option<&'static str> {
    match v {
        Value::String(s) => [
            ("fatal", "fatal"),
            ("critical", "fatal"),
            ("error", "error"),
            ("warning", "warning"),
            ("warn", "warning"),
            ("info", "info"),
            ("log", "info"),
            ("debug", "debug"),
            ("trace", "debug"),
        ]
        .into_iter()
        .find(|(spelling, _)| s.eq_ignore_ascii_case(spelling))
        .map(|(_, level)| level),
        Value::Number(n) => match n.as_u64()? {
            50 => Some("fatal"),
            40 => Some("error"),
            30 => Some("warning"),
            20 => Some("info"),
            10 => Some("debug"),
            _ => None,
        },
        _ => None,
    }
}

fn valid_release(r: &str) -> bool {
    !r.is_empty()
        && r.chars().count() <= 200
        && !matches!(r, "." | ".." | " " | "latest")
        && !r.contains(['\n', '\t', '/', '\\'])
}

/// `{"values": [...]}`, a bare array or a single object → the list; `{}` → absent.
fn values_of(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => Some(a),
        Value::Object(mut m) => match m.remove("values") {
            Some(Value::Array(a)) => Some(a),
            Some(_) => None,
            None if m.is_empty() => None,
            None => Some(vec![Value::Object(m)]),
        },
        _ => None,
    }
}

fn take_tags(
    raw: Option<Value>,
    err: &mut impl FnMut(&str, &str, Option<&Value>),
) -> Vec<(String, String)> {
    let pairs: Vec<(Value, Value)> = match raw {
        Some(Value::Object(m)) => m.into_iter().map(|(k, v)| (Value::from(k), v)).collect(),
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|p| match p {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let v = kv.pop()?;
                    let k = kv.pop()?;
                    Some((k, v))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let (Some(k), Some(v)) = (scalar_string(&k), scalar_string(&v)) else {
            err("invalid_data", "tags", None);
            continue;
        };
        let key: String = k.trim().replace(' ', "-");
        let key_ok = !key.is_empty()
            && key.len() <= 200
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        let v = v.trim().to_owned();
        if !key_ok || v.is_empty() || v.chars().count() > 200 || v.contains('\n') {
            err("invalid_data", &format!("tags.{key}"), None);
            continue;
        }
        if RESERVED_TAGS.contains(&key.as_str()) || out.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.push((key, v));
    }
    out
}

fn normalize_logentry(event: &mut Map<String, Value>) {
    let mut entry = match event.remove("logentry") {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => {
            let mut m = Map::new();
            m.insert("formatted".into(), Value::from(s));
            m
        }
        _ => Map::new(),
    };
    match event.remove("message") {
        Some(Value::String(s)) if !s.is_empty() => {
            entry.entry("formatted").or_insert(Value::from(s));
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                entry.entry(k).or_insert(v);
            }
        }
        _ => {}
    }
    if entry.is_empty() {
        return;
    }
    if !entry.get("formatted").is_some_and(Value::is_string)
        && let Some(msg) = entry.get("message").and_then(Value::as_str)
    {
        let params = entry.get("params").cloned().unwrap_or(Value::Null);
        let formatted = format_params(msg, &params);
        set(&mut entry, "formatted", Value::from(formatted));
    }
    if let Some(Value::String(f)) = entry.get_mut("formatted") {
        shorten(f, 8192);
    }
    set(event, "logentry", Value::Object(entry));
}

/// Formats `%s`-style or `{0}`/`{}`-style placeholders with the given parameters.
fn format_params(msg: &str, params: &Value) -> String {
    let list: Vec<String> = match params {
        Value::Array(a) => a
            .iter()
            .map(|v| scalar_string(v).unwrap_or_else(|| v.to_string()))
            .collect(),
        _ => return msg.to_owned(),
    };
    let mut out = String::new();
    let mut it = list.iter();
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('%') => {
                    chars.next();
                    out.push('%');
                }
                Some(&f) if f.is_ascii_alphabetic() => {
                    chars.next();
                    out.push_str(it.next().map(String::as_str).unwrap_or(""));
                }
                _ => out.push('%'),
            }
        } else if c == '{' {
            let mut idx = String::new();
            let mut closed = false;
            let mut look = chars.clone();
            for d in look.by_ref() {
                if d == '}' {
                    closed = true;
                    break;
                }
                if !d.is_ascii_digit() {
                    break;
                }
                idx.push(d);
            }
            if closed {
                chars = look;
                let v = if idx.is_empty() {
                    it.next()
                } else {
                    idx.parse::<usize>().ok().and_then(|i| list.get(i))
                };
                out.push_str(v.map(String::as_str).unwrap_or(""));
            } else {
                out.push('{');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn has_exception(event: &Map<String, Value>) -> bool {
    event
        .get("exception")
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn normalize_exceptions(
    event: &mut Map<String, Value>,
    platform: &str,
    err: &mut impl FnMut(&str, &str, Option<&Value>),
) {
    // A top-level stacktrace belongs to a single exception that has none.
    let top = event.remove("stacktrace");
    let Some(Value::Object(exc)) = event.get_mut("exception") else {
        if let Some(st) = top {
            let mut st = st;
            normalize_stacktrace(&mut st, platform);
            set(event, "stacktrace", st);
        }
        return;
    };
    let Some(Value::Array(values)) = exc.get_mut("values") else {
        return;
    };
    values.retain_mut(|e| {
        let Value::Object(m) = e else { return false };
        let ty = m
            .get("type")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let val = m
            .get("value")
            .and_then(|v| scalar_string(v).or_else(|| (!v.is_null()).then(|| v.to_string())));
        match (&ty, &val) {
            (None, None) => {
                err("invalid_data", "exception", None);
                return false;
            }
            (None, Some(v)) => {
                // "TypeError: x is undefined" without a type: split it like Relay.
                if let Some((t, rest)) = v.split_once(':')
                    && !t.is_empty()
                    && t.chars().all(|c| c.is_alphanumeric() || c == '_')
                {
                    set(m, "type", Value::from(t));
                    set(m, "value", Value::from(rest.trim_start()));
                } else {
                    set(m, "value", Value::from(v.as_str()));
                }
            }
            (_, Some(v)) => {
                set(m, "value", Value::from(v.as_str()));
            }
            _ => {}
        }
        if let Some(Value::Object(mech)) = m.get_mut("mechanism") {
            mech.entry("type").or_insert(Value::from("generic"));
        }
        true
    });
    if values.len() == 1
        && let Some(st) = top
        && values[0].get("stacktrace").is_none_or(Value::is_null)
        && let Some(first) = values[0].as_object_mut()
    {
        set(first, "stacktrace", st);
    }
    for e in values.iter_mut() {
        if let Some(st) = e.get_mut("stacktrace") {
            normalize_stacktrace(st, platform);
        }
    }
    if values.is_empty() {
        event.remove("exception");
    }
}

/// Caps frames, derives filenames, turns array `vars` into objects and applies the
/// built-in in-app rules.
pub(crate) fn normalize_stacktrace(st: &mut Value, platform: &str) {
    let Some(Value::Array(frames)) = st.get_mut("frames") else {
        return;
    };
    frames.retain(Value::is_object);
    if frames.len() > MAX_FRAMES {
        let cut = frames.len() - MAX_FRAMES;
        frames.drain(..cut);
    }
    for f in frames.iter_mut() {
        let Some(frame) = f.as_object_mut() else {
            continue;
        };
        if !frame.get("filename").is_some_and(Value::is_string)
            && let Some(abs) = frame.get("abs_path").and_then(Value::as_str)
        {
            let path = match abs.split_once("://") {
                Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or(rest),
                None => abs,
            };
            let path = path.to_owned();
            set(frame, "filename", Value::from(path));
        }
        if let Some(Value::Array(vars)) = frame.get("vars") {
            let obj: Map<String, Value> = vars
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect();
            set(frame, "vars", Value::Object(obj));
        }
        apply_in_app_rules(frame, platform);
    }
}

/// Path parts of package directories and CDN hosts: code under them is not in-app. One
/// search for all of them per frame, instead of one per part.
static THIRD_PARTY_PARTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::new([
        "/node_modules/",
        "/site-packages/",
        "/dist-packages/",
        "/vendor/",
        "/go/pkg/mod/",
        "/.pub-cache/",
        "/.cargo/registry/",
        "/cargo/registry/",
        "/rustc/",
        "unpkg.com",
        "cdnjs.cloudflare.com",
        "cdn.jsdelivr.net",
        "esm.run",
    ])
    .unwrap_or_else(|e| panic!("third-party paths: {e}"))
});

/// Sentry's built-in enhancement rules, reduced to the ones that matter for the common
/// platforms: third-party and runtime code is not in-app, whatever the SDK said.
fn apply_in_app_rules(frame: &mut Map<String, Value>, platform: &str) {
    let path = frame
        .get("abs_path")
        .or_else(|| frame.get("filename"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let module = frame
        .get("module")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let function = frame
        .get("function")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let fplatform = frame
        .get("platform")
        .and_then(Value::as_str)
        .unwrap_or(platform);
    let third_party = THIRD_PARTY_PARTS.is_match(path)
        || path.starts_with("node:")
        || ["/usr/lib/", "/lib/", "/usr/local/lib/"]
            .iter()
            .any(|p| path.starts_with(p));
    let rust_std = fplatform == "native"
        && [
            "std::", "core::", "alloc::", "__rust_", "<std::", "<core::", "<alloc::",
        ]
        .iter()
        .any(|p| function.starts_with(p) || module.starts_with(p));
    let java_framework = fplatform == "java"
        && [
            "java.",
            "javax.",
            "sun.",
            "jdk.",
            "com.sun.",
            "org.springframework.",
            "org.apache.",
            "kotlin.",
            "kotlinx.",
            "scala.",
            "io.sentry.",
        ]
        .iter()
        .any(|p| module.starts_with(p));
    if third_party || rust_std || java_framework {
        if frame.get("in_app") == Some(&Value::Bool(true))
            && let Some(data) = frame
                .entry("data")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
        {
            set(data, "orig_in_app", Value::from(1));
        }
        set(frame, "in_app", Value::Bool(false));
    }
}

fn normalize_breadcrumbs(event: &mut Map<String, Value>, ctx: &NormalizeContext, drift: f64) {
    let Some(Value::Array(crumbs)) = event
        .get_mut("breadcrumbs")
        .and_then(|b| b.get_mut("values"))
    else {
        return;
    };
    crumbs.retain(Value::is_object);
    for c in crumbs.iter_mut() {
        let Some(m) = c.as_object_mut() else { continue };
        let ts = m
            .get("timestamp")
            .and_then(parse_timestamp)
            .map(|t| t + drift)
            .unwrap_or(ctx.received);
        // Most SDKs send what is stored already; rewriting it would only allocate.
        if !m
            .get("timestamp")
            .is_some_and(|t| t.is_f64() && t.as_f64() == Some(ts))
        {
            set(m, "timestamp", json!(ts));
        }
        if !m.get("type").is_some_and(Value::is_string) {
            set(m, "type", Value::from("default"));
        }
        let level = m.get("level").and_then(normalize_level).unwrap_or("info");
        if m.get("level").and_then(Value::as_str) != Some(level) {
            set(m, "level", Value::from(level));
        }
    }
}

/// Brings `request` into Sentry's API shape: headers, cookies and query as pair lists; the
/// `Cookie` header moved into `cookies`.
fn normalize_request(event: &mut Map<String, Value>) {
    let Some(Value::Object(req)) = event.get_mut("request") else {
        return;
    };
    let mut headers = pairs_of(req.remove("headers"));
    if let Some(pos) = headers
        .iter()
        .position(|(k, _)| k.eq_ignore_ascii_case("cookie"))
    {
        let (_, cookie) = headers.remove(pos);
        if req.get("cookies").is_none_or(Value::is_null)
            && let Value::String(s) = cookie
        {
            set(req, "cookies", Value::String(s));
        }
    }
    if !headers.is_empty() {
        set(req, "headers", pairs_value(headers));
    }
    if let Some(c) = req.remove("cookies") {
        let cookies = match c {
            Value::String(s) => s
                .split(';')
                .filter_map(|p| {
                    let (k, v) = p.trim().split_once('=')?;
                    Some((k.trim().to_owned(), Value::from(v.trim())))
                })
                .collect(),
            other => pairs_of(Some(other)),
        };
        if !cookies.is_empty() {
            set(req, "cookies", pairs_value(cookies));
        }
    }
    // As Relay does: a query and fragment in the URL move to their own fields, where the
    // query's values are scrubbed by key like any other pairs.
    if let Some(url) = req.get("url").and_then(Value::as_str).map(str::to_owned) {
        let (rest, fragment) = url
            .split_once('#')
            .map(|(u, f)| (u.to_owned(), Some(f.to_owned())))
            .unwrap_or((url, None));
        if let Some((base, query)) = rest.split_once('?') {
            if req
                .get("query_string")
                .is_none_or(|q| q.is_null() || q.as_str() == Some(""))
            {
                set(req, "query_string", Value::from(query));
            }
            set(req, "url", Value::from(base));
        } else {
            set(req, "url", Value::from(rest));
        }
        if let Some(f) = fragment
            && !req.contains_key("fragment")
        {
            set(req, "fragment", Value::from(f));
        }
    }
    if let Some(q) = req.remove("query_string") {
        let query = match q {
            Value::String(s) => {
                let s = s.strip_prefix('?').unwrap_or(&s);
                bugbane_protocol::auth::parse_query(s)
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect()
            }
            other => pairs_of(Some(other)),
        };
        set(req, "query_string", pairs_value(query));
    }
    if let Some(Value::String(m)) = req.get("method") {
        let up = m.to_ascii_uppercase();
        set(req, "method", Value::from(up));
    }
}

fn pairs_of(v: Option<Value>) -> Vec<(String, Value)> {
    match v {
        Some(Value::Object(m)) => m.into_iter().collect(),
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|p| match p {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let v = kv.pop()?;
                    let k = scalar_string(&kv.pop()?)?;
                    Some((k, v))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn pairs_value(pairs: Vec<(String, Value)>) -> Value {
    Value::Array(pairs.into_iter().map(|(k, v)| json!([k, v])).collect())
}

fn normalize_user(event: &mut Map<String, Value>, ctx: &NormalizeContext, platform: &str) {
    let remote_addr = event
        .get("request")
        .and_then(|r| r.get("env"))
        .and_then(|e| e.get("REMOTE_ADDR"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let auto_platform = matches!(platform, "javascript" | "cocoa" | "objc");
    let user_present = event.get("user").is_some_and(Value::is_object);
    if !user_present && !auto_platform && remote_addr.is_none() {
        return;
    }
    let user = object_entry(event, "user");
    let ip = user
        .get("ip_address")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let resolved = match ip.as_deref() {
        Some("{{auto}}") => ctx.client_ip.clone(),
        Some(other) => Some(other.to_owned()),
        None => remote_addr.or_else(|| {
            if auto_platform {
                ctx.client_ip.clone()
            } else {
                None
            }
        }),
    };
    match resolved {
        Some(ip) => {
            set(user, "ip_address", Value::from(ip));
        }
        None => {
            user.remove("ip_address");
        }
    }
    if user.is_empty() {
        event.remove("user");
    }
}

fn normalize_contexts(event: &mut Map<String, Value>, is_transaction: bool) {
    let ua = event
        .get("request")
        .and_then(|r| r.get("headers"))
        .and_then(Value::as_array)
        .and_then(|h| {
            h.iter().find_map(|p| {
                let k = p.get(0)?.as_str()?;
                k.eq_ignore_ascii_case("user-agent")
                    .then(|| p.get(1)?.as_str())
                    .flatten()
            })
        })
        .map(str::to_owned);
    let contexts = object_entry(event, "contexts");
    contexts.retain(|_, v| v.is_object());
    for (name, ctx) in contexts.iter_mut() {
        if let Some(m) = ctx.as_object_mut() {
            m.entry("type")
                .or_insert_with(|| Value::from(name.as_str()));
        }
    }
    if let Some(ua) = ua {
        for (name, ctx) in contexts_from_user_agent(&ua) {
            contexts.entry(name).or_insert(ctx);
        }
    }
    if is_transaction {
        let trace = object_entry(contexts, "trace");
        trace.entry("status").or_insert(Value::from("unknown"));
    }
    if contexts.is_empty() {
        event.remove("contexts");
    }
}

/// The message a message event carries: formatted logentry, else the template.
pub fn event_message(event: &Value) -> Option<&str> {
    get_str(event, &["logentry", "formatted"]).or_else(|| get_str(event, &["logentry", "message"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_app_after_rules(abs_path: &str) -> Option<bool> {
        let mut frame = json!({"abs_path": abs_path, "function": "f", "in_app": true});
        let m = frame.as_object_mut()?;
        apply_in_app_rules(m, "python");
        m.get("in_app").and_then(Value::as_bool)
    }

    #[test]
    fn package_and_cdn_code_is_not_in_app() {
        for path in [
            "/srv/app/node_modules/lib/index.js",
            "/usr/src/venv/lib/python3.12/site-packages/django/core.py",
            "/usr/lib/python3/dist-packages/yaml/main.py",
            "/app/vendor/laravel/framework/src/x.php",
            "/root/go/pkg/mod/github.com/x/y.go",
            "/home/u/.pub-cache/hosted/pkg/lib.dart",
            "/home/u/.cargo/registry/src/tokio/lib.rs",
            "/rustc/abc123/library/core/src/panic.rs",
            "https://unpkg.com/react@18/index.js",
            "https://cdnjs.cloudflare.com/ajax/libs/x.js",
            "https://cdn.jsdelivr.net/npm/x.js",
            "https://esm.run/x",
            "node:internal/process",
            "/usr/local/lib/python3.12/json/decoder.py",
        ] {
            assert_eq!(in_app_after_rules(path), Some(false), "{path}");
        }
        for path in [
            "/srv/app/handlers/checkout.py",
            "https://example.com/assets/app.js",
        ] {
            assert_eq!(in_app_after_rules(path), Some(true), "{path}");
        }
    }
}

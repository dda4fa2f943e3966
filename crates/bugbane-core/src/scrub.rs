//! Server-side scrubbing of secrets and personal data, after Relay's default data
//! scrubber: values under sensitive keys become `[Filtered]`, secrets inside strings (card
//! numbers, bearer tokens, PEM keys, URL passwords, home-directory user names, US SSNs) are
//! masked, well-known session and CSRF cookies are filtered, and IP addresses are removed
//! on request. Every change is recorded in `_meta` so the dashboard can say what was
//! removed.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A project's scrubbing settings (Sentry's `DataScrubbingConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScrubSettings {
    /// Master switch.
    pub scrub_data: bool,
    /// Apply the built-in rules (needs `scrub_data`).
    pub scrub_defaults: bool,
    /// Remove the client IP fields and replace IPs in strings with `[ip]`.
    #[serde(rename = "scrubIPAddresses")]
    pub scrub_ip_addresses: bool,
    /// Extra key names to filter (case-insensitive substring).
    pub sensitive_fields: Vec<String>,
    /// Keys never scrubbed.
    pub safe_fields: Vec<String>,
}

impl Default for ScrubSettings {
    fn default() -> Self {
        ScrubSettings {
            scrub_data: true,
            scrub_defaults: true,
            scrub_ip_addresses: false,
            sensitive_fields: Vec::new(),
            safe_fields: Vec::new(),
        }
    }
}

const FILTERED: &str = "[Filtered]";

const PASSWORD_KEYS: &[&str] = &[
    "password",
    "secret",
    "passwd",
    "api_key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "token",
    "otp",
    "two-factor",
    "two_factor",
];

/// Every key is tested against every password word: one pass over the key, whatever the
/// number of words.
static PASSWORD_KEY_MATCHER: LazyLock<AhoCorasick> =
    LazyLock::new(|| case_insensitive(PASSWORD_KEYS));

/// Keys that every event repeats by the hundred (in frames and breadcrumbs) and that hold
/// none of the password words: skipping the matcher for them saves a quarter of its calls.
const FREQUENT_KEYS: &[&str] = &[
    "filename",
    "abs_path",
    "function",
    "module",
    "lineno",
    "colno",
    "in_app",
    "context_line",
    "pre_context",
    "post_context",
    "vars",
    "platform",
    "package",
    "instruction_addr",
    "timestamp",
    "category",
    "message",
    "level",
    "type",
    "data",
];

fn case_insensitive(words: &[&str]) -> AhoCorasick {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(words)
        .unwrap_or_else(|e| panic!("word matcher: {e}"))
}

const SENSITIVE_COOKIES: &[&str] = &[
    "sentrysid",
    "sudo",
    "su",
    "session",
    "__session",
    "sessionid",
    "user_session",
    "symfony",
    "phpsessid",
    "fasthttpsessionid",
    "mysession",
    "irissessionid",
    "_vercel_jwt",
    "csrf",
    "xsrf",
    "_xsrf",
    "_csrf",
    "csrf-token",
    "csrf_token",
    "xsrf-token",
    "xsrf_token",
    "fastcsrf",
    "_iris_csrf",
    "connect.sid",
];

/// In-string rules: (rule id, pattern, which capture group to replace; 0 = whole match).
static STRING_RULES: LazyLock<Vec<(&'static str, Regex, usize)>> = LazyLock::new(|| {
    let rules: [(&str, &str, usize); 6] = [
        (
            "@bearer:filter",
            r"(?i)\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}",
            0,
        ),
        (
            "@creditcard:filter",
            r"\b(?:3[47][0-9]|4[0-9]{3}|5[1-5][0-9]{2}|65[0-9]{2}|6011)(?:[-\s]?[0-9]){12}\b",
            0,
        ),
        (
            "@pemkey:filter",
            r"(?s)-----BEGIN[A-Z ]*(?:PRIVATE|PUBLIC) KEY-----(.+?)-----END[A-Z ]*(?:PRIVATE|PUBLIC) KEY-----",
            1,
        ),
        (
            "@urlauth:legacy",
            r"\b(?:[a-z0-9]+:)?//[a-zA-Z0-9%_.\-]+:([a-zA-Z0-9%_.\-]+)@",
            1,
        ),
        (
            "@userpath:filter",
            r"(?i)(?:\b[a-zA-Z]:[\\/]Users[\\/]|/home/|/Users/|Documents and Settings[\\/]|[\\/]profiles[\\/])([^/\\\s]+)",
            1,
        ),
        ("@usssn:filter", r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", 0),
    ];
    rules
        .into_iter()
        .map(|(id, re, g)| {
            (
                id,
                Regex::new(re).unwrap_or_else(|e| panic!("{id}: {e}")),
                g,
            )
        })
        .collect()
});

/// A cheap prefilter: most strings match none of the rules.
static STRING_PREFILTER: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(STRING_RULES.iter().map(|(_, r, _)| r.as_str()))
        .unwrap_or_else(|e| panic!("prefilter: {e}"))
});

static IP_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\b|\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b|\b(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?")
        .unwrap_or_else(|e| panic!("ip: {e}"))
});

/// Containers whose entries are `[key, value]` pairs; the pair's key names the value.
const PAIR_CONTAINERS: &[&str] = &["tags", "headers", "cookies", "query_string", "data", "env"];

struct Scrubber<'a> {
    settings: &'a ScrubSettings,
    sensitive: Vec<String>,
    safe: Vec<String>,
    meta: Vec<(Vec<String>, &'static str, usize)>,
}

/// Scrubs an event in place and merges remarks into its `_meta`.
pub fn scrub_event(event: &mut Map<String, Value>, settings: &ScrubSettings) {
    if !settings.scrub_data {
        return;
    }
    let mut s = Scrubber {
        settings,
        sensitive: settings
            .sensitive_fields
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| f.to_lowercase())
            .collect(),
        safe: settings
            .safe_fields
            .iter()
            .map(|f| f.to_lowercase())
            .collect(),
        meta: Vec::new(),
    };
    if settings.scrub_ip_addresses {
        for path in [
            &["user", "ip_address"][..],
            &["request", "env", "REMOTE_ADDR"],
            &["sdk", "client_ip"],
        ] {
            if remove_path(event, path) {
                s.meta.push((
                    path.iter().map(|p| p.to_string()).collect(),
                    "@ip:remove",
                    0,
                ));
            }
        }
    }
    for (k, v) in event.iter_mut() {
        if k == "_meta" || k == "debug_meta" {
            continue;
        }
        let mut path = vec![Seg::Key(k.as_str())];
        s.walk(v, &mut path);
    }
    if !s.meta.is_empty() {
        let meta = crate::value::object_entry(event, "_meta");
        for (path, rule, len) in s.meta {
            let mut node = &mut *meta;
            for seg in &path {
                node = crate::value::object_entry(node, seg);
            }
            let mut remark = json!({"rem": [[rule, "s"]]});
            if len > 0 {
                remark["len"] = Value::from(len);
            }
            node.insert(String::new(), remark);
        }
    }
}

fn remove_path(event: &mut Map<String, Value>, path: &[&str]) -> bool {
    let (last, parents) = match path.split_last() {
        Some(x) => x,
        None => return false,
    };
    let mut cur = event;
    for p in parents {
        match cur.get_mut(*p) {
            Some(Value::Object(m)) => cur = m,
            _ => return false,
        }
    }
    cur.remove(*last).is_some()
}

impl Scrubber<'_> {
    /// Walks the tree. The path borrows keys from the tree itself, so walking allocates
    /// nothing unless something is scrubbed.
    fn walk<'a>(&mut self, v: &'a mut Value, path: &mut Vec<Seg<'a>>) {
        let key = path.last().map(Seg::as_key).unwrap_or("");
        if self.is_ignored(path, key) {
            return;
        }
        if self.key_is_sensitive(key) && !is_empty_value(v) {
            let len = v.as_str().map(|s| s.chars().count()).unwrap_or(0);
            if v.as_str() != Some(FILTERED) {
                *v = Value::from(FILTERED);
                self.meta.push((owned(path), "@password:filter", len));
            }
            return;
        }
        if self.settings.scrub_defaults
            && is_cookie_path(path)
            && SENSITIVE_COOKIES
                .iter()
                .any(|c| c.eq_ignore_ascii_case(key))
        {
            if v.as_str() != Some(FILTERED) {
                *v = Value::from(FILTERED);
                self.meta.push((owned(path), "@anything:filter", 0));
            }
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    path.push(Seg::Key(k.as_str()));
                    self.walk(child, path);
                    path.pop();
                }
            }
            Value::Array(a) => {
                let pairs = path
                    .last()
                    .is_some_and(|k| PAIR_CONTAINERS.contains(&k.as_key()));
                for (i, child) in a.iter_mut().enumerate() {
                    let is_pair = pairs
                        && matches!(&*child, Value::Array(kv) if kv.len() == 2 && kv[0].is_string());
                    if !is_pair {
                        path.push(Seg::Index(i));
                        self.walk(child, path);
                        path.pop();
                    } else if let Value::Array(kv) = child {
                        let (head, tail) = kv.split_at_mut(1);
                        path.push(Seg::Key(head[0].as_str().unwrap_or_default()));
                        self.walk(&mut tail[0], path);
                        path.pop();
                    }
                }
            }
            Value::String(s) => {
                if let Some(new) = self.scrub_string(s) {
                    let len = s.chars().count();
                    *s = new.0;
                    self.meta.push((owned(path), new.1, len));
                }
            }
            _ => {}
        }
    }

    fn is_ignored(&self, path: &[Seg<'_>], key: &str) -> bool {
        if self.safe.iter().any(|f| f.eq_ignore_ascii_case(key)) {
            return true;
        }
        let at = |i: usize, name: &str| path.get(i).is_some_and(|p| p.as_key() == name);
        (matches!(key, "filename" | "abs_path") && path.iter().any(|p| p.as_key() == "frames"))
            || (path.len() == 2 && at(0, "logentry") && key == "formatted")
            || (path.len() == 4 && at(0, "exception") && at(1, "values") && key == "value")
            || (key.eq_ignore_ascii_case("user-agent")
                && path.iter().any(|p| p.as_key() == "headers"))
    }

    fn key_is_sensitive(&self, key: &str) -> bool {
        if key.is_empty() {
            return false;
        }
        (self.settings.scrub_defaults
            && !FREQUENT_KEYS.contains(&key)
            && PASSWORD_KEY_MATCHER.is_match(key))
            || self.sensitive.iter().any(|s| contains_ci(key, s))
    }

    fn scrub_string(&self, s: &str) -> Option<(String, &'static str)> {
        let mut out: Option<(String, &'static str)> = None;
        if self.settings.scrub_defaults && may_hold_secret(s) {
            let hits = STRING_PREFILTER.matches(s);
            if hits.matched_any() {
                let mut cur = s.to_owned();
                let mut rule = "";
                for (i, (id, re, group)) in STRING_RULES.iter().enumerate() {
                    if !hits.matched(i) {
                        continue;
                    }
                    cur = replace_group(re, &cur, *group, FILTERED);
                    rule = id;
                }
                if cur != s {
                    out = Some((cur, rule));
                }
            }
        }
        if self.settings.scrub_ip_addresses {
            let base = out.as_ref().map(|(s, _)| s.as_str()).unwrap_or(s);
            if IP_RE.is_match(base) {
                let replaced = IP_RE.replace_all(base, "[ip]").into_owned();
                out = Some((replaced, "@ip:replace"));
            }
        }
        out
    }
}

fn replace_group(re: &Regex, s: &str, group: usize, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(group) else { continue };
        out.push_str(&s[last..m.start()]);
        out.push_str(with);
        last = m.end();
    }
    out.push_str(&s[last..]);
    out
}

fn is_cookie_path(path: &[Seg<'_>]) -> bool {
    path.len() >= 2 && path[path.len() - 2].as_key() == "cookies"
}

/// One step of the path to a value.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Seg<'a> {
    fn as_key(&self) -> &'a str {
        match self {
            Seg::Key(k) => k,
            Seg::Index(_) => "",
        }
    }
}

fn owned(path: &[Seg<'_>]) -> Vec<String> {
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => (*k).to_owned(),
            Seg::Index(i) => i.to_string(),
        })
        .collect()
}

/// ASCII case-insensitive substring test; `needle` is lower case.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.len() <= h.len()
        && h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// Cheap necessary conditions for any in-string rule: most strings (code, messages,
/// names) fail them all and skip the regular expressions. One pass over the string counts
/// its digits and notes which bytes each rule cannot match without; only the rules whose
/// bytes are there look further (with SIMD searches) at the words around them. (A
/// separate SIMD search per rule cost more: most strings are short.)
fn may_hold_secret(s: &str) -> bool {
    if s.len() < 7 {
        return false;
    }
    let b = s.as_bytes();
    let (mut digits, mut seen) = (0usize, 0u8);
    for &c in b {
        let class = BYTE_CLASSES[usize::from(c)];
        digits += usize::from(class & DIGIT);
        seen |= class;
    }
    // Card numbers and US SSNs: at least nine digits.
    digits >= 9
        // Passwords in URLs: `//user:password@`.
        || (seen & AT != 0 && DOUBLE_SLASH.find(b).is_some())
        // PEM keys (the rule is case-sensitive).
        || (seen & DASH != 0 && PEM_BEGIN.find(b).is_some())
        || (seen & B != 0
            && memchr::memchr2_iter(b'b', b'B', b).any(|i| starts_with_ci(&b[i..], b"bearer")))
        // Home directories: every form has a slash next to its word.
        || (seen & SLASH != 0
            && memchr::memchr2_iter(b'/', b'\\', b).any(|i| {
                let after = &b[i + 1..];
                starts_with_ci(after, b"users")
                    || starts_with_ci(after, b"home/")
                    || starts_with_ci(after, b"profiles")
                    || i
                        .checked_sub(DOCUMENTS.len())
                        .is_some_and(|at| b[at..i].eq_ignore_ascii_case(DOCUMENTS))
            }))
}

/// Byte classes for `may_hold_secret`'s pass (`DIGIT` is 1, so it counts as it is).
const DIGIT: u8 = 1;
const AT: u8 = 2;
const DASH: u8 = 4;
const B: u8 = 8;
const SLASH: u8 = 16;
static BYTE_CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t[b'@' as usize] = AT;
    t[b'-' as usize] = DASH;
    t[b'b' as usize] = B;
    t[b'B' as usize] = B;
    t[b'/' as usize] = SLASH;
    t[b'\\' as usize] = SLASH;
    t
};

const DOCUMENTS: &[u8] = b"documents and settings";

/// Searchers built once: `memmem::find` would build one per call.
static DOUBLE_SLASH: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"//"));
static PEM_BEGIN: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"-----BEGIN"));

/// ASCII case-insensitive prefix test; `prefix` is lower case.
fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_keys_hold_no_password_word() {
        for key in FREQUENT_KEYS {
            assert!(!PASSWORD_KEY_MATCHER.is_match(key), "{key}");
        }
    }

    fn scrub(v: Value, s: &ScrubSettings) -> Value {
        let Value::Object(mut m) = v else {
            panic!("object")
        };
        scrub_event(&mut m, s);
        Value::Object(m)
    }

    #[test]
    fn defaults() {
        let ev = json!({
            "request": {
                "headers": [["Authorization", "Bearer abcdefghijk"], ["User-Agent", "curl/8 token"], ["X-Trace", "Bearer abcdefghijk123"]],
                "cookies": [["sessionid", "s3cr3t"], ["theme", "dark"]],
                "data": {"password": "hunter2", "card": "4111 1111 1111 1111", "note": "call me"},
                "url": "https://bob:pa55word@example.com/x"
            },
            "extra": {"db_password": "x", "path": "/home/alice/app.py", "ssn": "123-45-6789", "author": "kim"},
            "exception": {"values": [{"value": "password is wrong for 4111111111111111",
                "stacktrace": {"frames": [{"abs_path": "/home/alice/app.py", "vars": {"api_key": "k", "n": 1}}]}}]},
            "tags": [["session_token", "abc"], ["plain", "ok"]],
            "logentry": {"formatted": "password: hunter2"}
        });
        let out = scrub(ev, &ScrubSettings::default());
        let req = &out["request"];
        assert_eq!(req["headers"][0][1], FILTERED);
        assert_eq!(req["headers"][1][1], "curl/8 token");
        assert_eq!(req["headers"][2][1], FILTERED);
        assert_eq!(req["cookies"][0][1], FILTERED);
        assert_eq!(req["cookies"][1][1], "dark");
        assert_eq!(req["data"]["password"], FILTERED);
        assert_eq!(req["data"]["card"], FILTERED);
        assert_eq!(req["data"]["note"], "call me");
        assert_eq!(req["url"], "https://bob:[Filtered]@example.com/x");
        assert_eq!(out["extra"]["db_password"], FILTERED);
        assert_eq!(out["extra"]["path"], "/home/[Filtered]/app.py");
        assert_eq!(out["extra"]["ssn"], FILTERED);
        assert_eq!(
            out["extra"]["author"], FILTERED,
            "substring semantics, as in Sentry"
        );
        let exc = &out["exception"]["values"][0];
        assert_eq!(
            exc["value"], "password is wrong for 4111111111111111",
            "exception values are never scrubbed"
        );
        assert_eq!(
            exc["stacktrace"]["frames"][0]["abs_path"],
            "/home/alice/app.py"
        );
        assert_eq!(exc["stacktrace"]["frames"][0]["vars"]["api_key"], FILTERED);
        assert_eq!(exc["stacktrace"]["frames"][0]["vars"]["n"], 1);
        assert_eq!(out["tags"][0][1], FILTERED);
        assert_eq!(out["tags"][1][1], "ok");
        assert_eq!(out["logentry"]["formatted"], "password: hunter2");
        assert!(out["_meta"]["request"]["data"]["password"][""]["rem"].is_array());
    }

    #[test]
    fn every_form_of_an_in_string_secret_is_masked() {
        let secrets = [
            "auth: BEARER abcdefghijk",
            "auth: bearer abcdefghijk",
            "card 5105-1051-0510-5100 used",
            "-----BEGIN RSA PRIVATE KEY-----abc-----END RSA PRIVATE KEY-----",
            "see redis://cache:hunter2@10.0.0.1/0",
            r"C:\Users\alice\app.py",
            "c:/users/alice/app.py",
            "/HOME/alice/app.py",
            "/Users/alice/app.py",
            r"C:\Documents and Settings\alice\app.py",
            r"C:\Windows\Profiles\alice\app.py",
            "ssn 078-05-1120 on file",
        ];
        for secret in secrets {
            let out = scrub(
                json!({"extra": {"note": secret}}),
                &ScrubSettings::default(),
            );
            let note = out["extra"]["note"].as_str().unwrap_or_default();
            assert!(note.contains(FILTERED), "{secret} -> {note}");
        }
        for plain in [
            "let ratio = a / b; // users count",
            "Bearing north",
            "/var/lib/app",
        ] {
            let out = scrub(json!({"extra": {"note": plain}}), &ScrubSettings::default());
            assert_eq!(out["extra"]["note"], plain);
        }
    }

    #[test]
    fn settings() {
        let ev = json!({"user": {"ip_address": "10.1.2.3"}, "extra": {"myfield": "x", "password": "p", "msg": "from 10.1.2.3"}});
        let s = ScrubSettings {
            scrub_ip_addresses: true,
            sensitive_fields: vec!["MyField".into()],
            safe_fields: vec!["password".into()],
            ..Default::default()
        };
        let out = scrub(ev.clone(), &s);
        assert!(out["user"].get("ip_address").is_none());
        assert_eq!(out["extra"]["myfield"], FILTERED);
        assert_eq!(out["extra"]["password"], "p");
        assert_eq!(out["extra"]["msg"], "from [ip]");
        let off = scrub(
            ev.clone(),
            &ScrubSettings {
                scrub_data: false,
                ..Default::default()
            },
        );
        assert_eq!(off, ev);
    }
}

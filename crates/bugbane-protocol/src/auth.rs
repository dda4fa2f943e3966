//! Where an SDK's credentials come from.
//!
//! Exactly one of `X-Sentry-Auth`, `Authorization` (Sentry or Basic scheme) and the
//! `sentry_*` query parameters may be present; more than one is an error, as in Relay.
//! The envelope header's `dsn` is a fallback the caller applies when none is present
//! (see [`crate::Envelope::header`]).

use base64::Engine as _;
use thiserror::Error;

/// Credentials an SDK presented with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The DSN's public key, 32 lowercase hex digits.
    pub public_key: String,
    /// Major protocol version, when the client sent one.
    pub version: Option<u16>,
    /// `sentry_client`, e.g. `sentry.python/2.75.0`.
    pub client: Option<String>,
}

/// The raw request parts credentials can come from.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthInput<'a> {
    pub x_sentry_auth: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub query: Option<&'a str>,
}

/// Why a request's credentials were refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing authorization information")]
    Missing,
    #[error("multiple authorization payloads detected")]
    Multiple,
    #[error("bad sentry_key: expected 32 hex digits")]
    BadKey,
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(String),
    #[error("malformed authorization header")]
    Malformed,
}

/// The highest protocol version this server speaks.
const MAX_VERSION: u16 = 7;

impl Auth {
    /// Finds and validates the credentials in a request. `Ok(None)` means none were sent,
    /// so the caller may fall back to the envelope header's DSN.
    pub fn from_request(input: AuthInput<'_>) -> Result<Option<Auth>, AuthError> {
        let mut found: Vec<Vec<(String, String)>> = Vec::new();
        if let Some(h) = input.x_sentry_auth {
            found.push(parse_sentry_header(h));
        }
        if let Some(h) = input.authorization {
            let h = h.trim();
            if let Some(b64) = strip_prefix_ci(h, "basic ") {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| AuthError::Malformed)?;
                let raw = String::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
                let key = raw.split(':').next().unwrap_or_default().to_owned();
                found.push(vec![("key".to_owned(), key)]);
            } else if strip_prefix_ci(h, "sentry ").is_some() || h.contains("sentry_key") {
                found.push(parse_sentry_header(h));
            }
        }
        if let Some(q) = input.query {
            let pairs: Vec<(String, String)> = parse_query(q)
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix("sentry_").map(|k| (k.to_owned(), v)))
                .collect();
            if pairs.iter().any(|(k, _)| k == "key") {
                found.push(pairs);
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Self::from_pairs(found.remove(0)).map(Some),
            _ => Err(AuthError::Multiple),
        }
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Result<Auth, AuthError> {
        let mut key = None;
        let mut version = None;
        let mut client = None;
        for (k, v) in pairs {
            match k.as_str() {
                "key" => key = Some(v),
                "version" => {
                    let major = v.split('.').next().unwrap_or_default();
                    let n: u16 = major
                        .parse()
                        .map_err(|_| AuthError::UnsupportedVersion(v.clone()))?;
                    if n > MAX_VERSION {
                        return Err(AuthError::UnsupportedVersion(v));
                    }
                    version = Some(n);
                }
                "client" => client = Some(v),
                _ => {}
            }
        }
        let key = key.ok_or(AuthError::Missing)?;
        Ok(Auth {
            public_key: parse_public_key(&key).ok_or(AuthError::BadKey)?,
            version,
            client,
        })
    }
}

/// Validates a public key (32 hex digits) and returns it lowercased.
pub fn parse_public_key(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Parses `Sentry sentry_key=…, sentry_version=7` into `(key, value)` pairs with the
/// `sentry_` prefix removed.
fn parse_sentry_header(h: &str) -> Vec<(String, String)> {
    let h = h.trim();
    let body = strip_prefix_ci(h, "sentry ").unwrap_or(h);
    body.split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            let k = k.trim();
            let k = k.strip_prefix("sentry_").unwrap_or(k);
            Some((k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// Decodes an `application/x-www-form-urlencoded` query string.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn check(input: AuthInput<'_>) -> Result<Option<Auth>, AuthError> {
        Auth::from_request(input)
    }

    #[test]
    fn header_query_and_basic_forms() {
        let h = format!(
            "Sentry sentry_key={KEY}, sentry_version=7, sentry_client=sentry.python/2.75.0"
        );
        let a = check(AuthInput {
            x_sentry_auth: Some(&h),
            ..Default::default()
        })
        .expect("valid")
        .expect("present");
        assert_eq!(a.public_key, KEY);
        assert_eq!(a.client.as_deref(), Some("sentry.python/2.75.0"));

        let q = format!(
            "sentry_version=7&sentry_key={KEY}&sentry_client=sentry.javascript.node%2F11.12.0"
        );
        let a = check(AuthInput {
            query: Some(&q),
            ..Default::default()
        })
        .expect("valid")
        .expect("present");
        assert_eq!(a.client.as_deref(), Some("sentry.javascript.node/11.12.0"));

        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:"))
        );
        let a = check(AuthInput {
            authorization: Some(&basic),
            ..Default::default()
        })
        .expect("valid")
        .expect("present");
        assert_eq!(a.public_key, KEY);
    }

    #[test]
    fn conflicts_and_bad_values() {
        let h = format!("Sentry sentry_key={KEY}");
        let q = format!("sentry_key={KEY}");
        assert_eq!(
            check(AuthInput {
                x_sentry_auth: Some(&h),
                query: Some(&q),
                ..Default::default()
            }),
            Err(AuthError::Multiple)
        );
        assert_eq!(check(AuthInput::default()), Ok(None));
        assert_eq!(
            check(AuthInput {
                x_sentry_auth: Some("Sentry sentry_key=nothex"),
                ..Default::default()
            }),
            Err(AuthError::BadKey)
        );
        let v8 = format!("Sentry sentry_key={KEY}, sentry_version=8");
        assert!(matches!(
            check(AuthInput {
                x_sentry_auth: Some(&v8),
                ..Default::default()
            }),
            Err(AuthError::UnsupportedVersion(_))
        ));
        let v71 = format!("Sentry sentry_key={KEY}, sentry_version=7.1");
        assert!(
            check(AuthInput {
                x_sentry_auth: Some(&v71),
                ..Default::default()
            })
            .is_ok()
        );
        // A query without sentry_key is not an auth payload (e.g. unrelated parameters).
        assert_eq!(
            check(AuthInput {
                query: Some("foo=bar"),
                ..Default::default()
            }),
            Ok(None)
        );
    }
}

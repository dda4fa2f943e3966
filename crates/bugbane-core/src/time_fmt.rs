//! Timestamps: SDKs send float seconds, RFC 3339 strings or naive ISO strings; Bugbane
//! keeps float seconds and renders RFC 3339 in the API.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses any timestamp form SDKs send into UNIX seconds.
pub fn parse_timestamp(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite() && *f >= 0.0),
        Value::String(s) => parse_timestamp_str(s),
        _ => None,
    }
}

/// Parses an RFC 3339 or naive (UTC) ISO timestamp string, or a numeric string.
pub fn parse_timestamp_str(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(f) = s.parse::<f64>() {
        return Some(f).filter(|f| f.is_finite() && *f >= 0.0);
    }
    // A naive timestamp (no offset) is UTC: give it a `Z` and parse it as RFC 3339.
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        OffsetDateTime::parse(&format!("{}Z", s.replacen(' ', "T", 1)), &Rfc3339).ok()
    })?;
    Some(dt.unix_timestamp_nanos() as f64 / 1e9)
}

/// Renders UNIX seconds as RFC 3339 with microseconds, e.g. `2026-11-26T00:38:26.931601Z`.
pub fn format_rfc3339(secs: f64) -> String {
    let nanos = (secs * 1e6).round() as i128 * 1000;
    let dt = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let micros = dt.microsecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_sdk_forms() {
        let a = parse_timestamp(&Value::from(1764117506.931601)).expect("float");
        let b = parse_timestamp(&Value::from("2025-11-26T00:38:26.931601Z")).expect("rfc3339");
        let c = parse_timestamp(&Value::from("2025-11-26T00:38:26.931601")).expect("naive");
        let d = parse_timestamp(&Value::from("2025-11-26T01:38:26.931601+01:00")).expect("offset");
        assert!((a - b).abs() < 1e-3, "{a} {b}");
        assert!((b - c).abs() < 1e-6);
        assert!((b - d).abs() < 1e-6);
        assert_eq!(format_rfc3339(b), "2025-11-26T00:38:26.931601Z");
        assert!(parse_timestamp(&Value::from("yesterday")).is_none());
    }
}

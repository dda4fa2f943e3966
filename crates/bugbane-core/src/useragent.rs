//! User-Agent parsing into Sentry's `browser`, `os` and `device` contexts.

use serde_json::{Map, Value, json};

/// Contexts derived from a User-Agent string, keyed by context name.
pub(crate) fn contexts_from_user_agent(ua: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(r) = woothee::parser::Parser::new().parse(ua) else {
        return out;
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    if known(r.name) {
        let mut b = json!({"type": "browser", "name": r.name});
        if known(r.version) {
            b["version"] = Value::from(r.version.to_string());
        }
        out.insert("browser".into(), b);
    }
    if known(r.os) {
        let mut o = json!({"type": "os", "name": r.os});
        if known(&r.os_version) {
            o["version"] = Value::from(r.os_version.to_string());
        }
        out.insert("os".into(), o);
    }
    if known(r.category) {
        let family = match r.category {
            "pc" => "Desktop",
            "smartphone" => "Mobile",
            "mobilephone" => "Feature Phone",
            "appliance" => "Appliance",
            "crawler" => "Spider",
            other => other,
        };
        out.insert("device".into(), json!({"type": "device", "family": family}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrome_on_linux() {
        let c = contexts_from_user_agent(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
        );
        assert_eq!(c["browser"]["name"], "Chrome");
        assert_eq!(c["browser"]["version"], "156.0.0.0");
        assert_eq!(c["os"]["name"], "Linux");
        assert_eq!(c["device"]["family"], "Desktop");
        assert!(contexts_from_user_agent("").is_empty());
    }
}

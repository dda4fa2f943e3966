//! Standard tags Sentry derives from an event, and the user identity used to count
//! affected users.

use serde_json::Value;

use crate::value::get_str;

/// The `sentry:user` identity: `id:…`, `username:…`, `email:…` or `ip:…`, in that order.
pub fn user_key(ev: &Value) -> Option<String> {
    let user = ev.get("user")?;
    [
        ("id", "id"),
        ("username", "username"),
        ("email", "email"),
        ("ip_address", "ip"),
    ]
    .iter()
    .find_map(|(field, prefix)| {
        let v = user.get(*field)?;
        let s = v
            .as_str()
            .map(str::to_owned)
            .or_else(|| v.as_i64().map(|n| n.to_string()))?;
        (!s.is_empty()).then(|| format!("{prefix}:{s}"))
    })
}

/// The event's own tags followed by derived ones it did not set itself.
pub fn derive_tags(ev: &Value) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = ev
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((
                        p.get(0)?.as_str()?.to_owned(),
                        p.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty())
            && !tags.iter().any(|(tk, _)| tk == k)
        {
            tags.push((k.to_owned(), crate::value::truncate(&v, 200)));
        }
    };
    let s = |path: &[&str]| get_str(ev, path).map(str::to_owned);
    let name_version = |ctx: &str| {
        let name = get_str(ev, &["contexts", ctx, "name"])?;
        Some(match get_str(ev, &["contexts", ctx, "version"]) {
            Some(v) => format!("{name} {}", v.trim()),
            None => name.to_owned(),
        })
    };
    add("level", s(&["level"]));
    add("environment", s(&["environment"]));
    add("release", s(&["release"]));
    add("dist", s(&["dist"]));
    add("transaction", s(&["transaction"]));
    add("logger", s(&["logger"]));
    add(
        "url",
        s(&["request", "url"]).map(|u| u.split(['?', '#']).next().unwrap_or(&u).to_owned()),
    );
    add("browser", name_version("browser"));
    add("browser.name", s(&["contexts", "browser", "name"]));
    add("os", name_version("os"));
    add("os.name", s(&["contexts", "os", "name"]));
    add("runtime", name_version("runtime"));
    add("runtime.name", s(&["contexts", "runtime", "name"]));
    add(
        "device",
        s(&["contexts", "device", "model"]).or_else(|| s(&["contexts", "device", "family"])),
    );
    add("user", user_key(ev));
    add("trace", s(&["contexts", "trace", "trace_id"]));
    let mechanism = ev
        .get("exception")
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array)
        .and_then(|a| a.last())
        .and_then(|e| e.get("mechanism"));
    if let Some(m) = mechanism {
        add(
            "mechanism",
            m.get("type").and_then(Value::as_str).map(str::to_owned),
        );
        if let Some(h) = m.get("handled").and_then(Value::as_bool) {
            add("handled", Some(if h { "yes" } else { "no" }.to_owned()));
        }
    }
    tags
}

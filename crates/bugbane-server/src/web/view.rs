//! Shapes a stored (normalised) event into what the event view shows: exceptions with
//! their frames newest first, breadcrumbs, request, user, contexts, tags. Every leaf
//! becomes a display string here, so templates only lay things out.

use bugbane_core::time_fmt::parse_timestamp;
use serde_json::{Map, Value, json};

/// A JSON leaf or subtree as one line of text.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An object's or pair list's entries as `[key, text]` pairs.
fn pairs(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| json!([k, show(v)]))
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|p| Some(json!([show(p.get(0)?), show(p.get(1)?)])))
            .collect(),
        _ => Vec::new(),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn frame_view(f: &Value) -> Value {
    let lineno = f.get("lineno").and_then(Value::as_i64);
    let mut lines = Vec::new();
    if let (Some(line), Some(no)) = (str_of(f, "context_line"), lineno) {
        let pre = f
            .get("pre_context")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let start = no - pre.len() as i64;
        for (i, l) in pre.iter().enumerate() {
            lines.push(json!({"no": start + i as i64, "line": show(l), "current": false}));
        }
        lines.push(json!({"no": no, "line": line, "current": true}));
        if let Some(post) = f.get("post_context").and_then(Value::as_array) {
            for (i, l) in post.iter().enumerate() {
                lines.push(json!({"no": no + 1 + i as i64, "line": show(l), "current": false}));
            }
        }
    }
    let file = str_of(f, "filename")
        .or_else(|| str_of(f, "abs_path"))
        .or_else(|| str_of(f, "module"))
        .or_else(|| str_of(f, "package"))
        .unwrap_or("?");
    json!({
        "file": file,
        "function": str_of(f, "function").unwrap_or("?"),
        "module": str_of(f, "module"),
        "package": str_of(f, "package"),
        "lineno": lineno,
        "colno": f.get("colno").and_then(Value::as_i64),
        "in_app": f.get("in_app").and_then(Value::as_bool).unwrap_or(false),
        "lines": lines,
        "vars": pairs(f.get("vars")),
    })
}

fn stack_view(ty: &str, value: &str, extra: Map<String, Value>, st: Option<&Value>) -> Value {
    let mut frames: Vec<Value> = st
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
        .map(|fs| fs.iter().map(frame_view).collect())
        .unwrap_or_default();
    // Stored oldest call first; people read the crashing frame first.
    frames.reverse();
    let app_frames = frames.iter().filter(|f| f["in_app"] == true).count();
    let mut v = json!({
        "type": ty,
        "value": value,
        "frames": frames,
        "app_frames": app_frames,
        "system_frames": frames.len() - app_frames,
    });
    if let Value::Object(m) = &mut v {
        m.extend(extra);
    }
    v
}

fn exceptions(ev: &Value) -> Vec<Value> {
    let values = ev
        .pointer("/exception/values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = values
        .iter()
        .map(|e| {
            let mut extra = Map::new();
            if let Some(m) = e.get("mechanism") {
                extra.insert(
                    "mechanism".into(),
                    json!({"type": str_of(m, "type"), "handled": m.get("handled").and_then(Value::as_bool)}),
                );
            }
            extra.insert("module".into(), json!(str_of(e, "module")));
            stack_view(
                str_of(e, "type").unwrap_or("Error"),
                str_of(e, "value").unwrap_or_default(),
                extra,
                e.get("stacktrace"),
            )
        })
        .collect();
    // The outermost exception (last in the chain) is what was raised; show it first.
    out.reverse();
    if out.is_empty() {
        // Messages captured with a stack (attach_stacktrace) carry it on a thread.
        for t in ev
            .pointer("/threads/values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if t.get("stacktrace").is_some() {
                let name = str_of(t, "name")
                    .map(str::to_owned)
                    .unwrap_or_else(|| t.get("id").map(show).unwrap_or_default());
                out.push(stack_view(
                    &format!("Thread {name}"),
                    "",
                    Map::new(),
                    t.get("stacktrace"),
                ));
            }
        }
    }
    out
}

fn breadcrumbs(ev: &Value) -> Vec<Value> {
    ev.pointer("/breadcrumbs/values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| {
            let time = b
                .get("timestamp")
                .and_then(parse_timestamp)
                .map(|t| {
                    let s = bugbane_core::time_fmt::format_rfc3339(t);
                    s.get(11..23).map(str::to_owned).unwrap_or(s)
                })
                .unwrap_or_default();
            json!({
                "time": time,
                "category": str_of(b, "category").unwrap_or_default(),
                "type": str_of(b, "type").unwrap_or("default"),
                "level": str_of(b, "level").unwrap_or("info"),
                "message": str_of(b, "message").unwrap_or_default(),
                "data": pairs(b.get("data")),
            })
        })
        .collect()
}

fn request(ev: &Value) -> Option<Value> {
    let r = ev.get("request")?;
    let query = match r.get("query_string") {
        Some(Value::String(s)) => form_urlencoded::parse(s.as_bytes())
            .map(|(k, v)| json!([k, v]))
            .collect(),
        other => pairs(other),
    };
    let data = match r.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(serde_json::to_string_pretty(v).unwrap_or_default()),
    };
    Some(json!({
        "method": str_of(r, "method"),
        "url": str_of(r, "url"),
        "query": query,
        "headers": pairs(r.get("headers")),
        "cookies": pairs(r.get("cookies")),
        "env": pairs(r.get("env")),
        "data": data,
    }))
}

fn contexts(ev: &Value) -> Vec<Value> {
    ev.get("contexts")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, c)| {
            let values: Vec<Value> = pairs(Some(c))
                .into_iter()
                .filter(|p| p[0] != "type")
                .collect();
            json!({"name": name, "values": values})
        })
        .collect()
}

/// The message line of an event, if it has one.
fn message(ev: &Value) -> Option<String> {
    ev.pointer("/logentry/formatted")
        .or_else(|| ev.pointer("/logentry/message"))
        .or_else(|| ev.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The event view of a stored event.
pub(crate) fn event_view(ev: &Value) -> Value {
    json!({
        "event_id": str_of(ev, "event_id"),
        "level": str_of(ev, "level").unwrap_or("error"),
        "platform": str_of(ev, "platform"),
        "timestamp": ev.get("timestamp").and_then(parse_timestamp),
        "release": str_of(ev, "release"),
        "environment": str_of(ev, "environment"),
        "transaction": str_of(ev, "transaction"),
        "message": message(ev),
        "exceptions": exceptions(ev),
        "breadcrumbs": breadcrumbs(ev),
        "request": request(ev),
        "user": pairs(ev.get("user")),
        "contexts": contexts(ev),
        "tags": pairs(ev.get("tags")),
        "extra": pairs(ev.get("extra")),
        "sdk": ev.get("sdk").map(|s| json!({"name": str_of(s, "name"), "version": str_of(s, "version")})),
        "trace_id": ev.pointer("/contexts/trace/trace_id").and_then(Value::as_str),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_newest_first_with_numbered_context() {
        let ev = json!({"exception": {"values": [
            {"type": "KeyError", "value": "inner"},
            {"type": "ValueError", "value": "outer", "stacktrace": {"frames": [
                {"filename": "lib.py", "function": "lib", "in_app": false},
                {"filename": "app.py", "function": "handler", "lineno": 10, "in_app": true,
                 "pre_context": ["a", "b"], "context_line": "boom()", "post_context": ["c"],
                 "vars": {"x": 1, "s": "y"}}
            ]}}
        ]}});
        let v = event_view(&ev);
        let ex = &v["exceptions"][0];
        assert_eq!(ex["type"], "ValueError");
        assert_eq!(ex["frames"][0]["function"], "handler");
        assert_eq!(ex["frames"][0]["lines"][0]["no"], 8);
        assert_eq!(ex["frames"][0]["lines"][2]["current"], true);
        assert_eq!(ex["frames"][0]["vars"], json!([["s", "y"], ["x", "1"]]));
        assert_eq!(ex["app_frames"], 1);
        assert_eq!(v["exceptions"][1]["type"], "KeyError");
    }

    #[test]
    fn query_strings_become_pairs() {
        let ev = json!({"request": {"url": "http://x/", "query_string": "a=1&b=two"}});
        assert_eq!(
            event_view(&ev)["request"]["query"],
            json!([["a", "1"], ["b", "two"]])
        );
    }
}

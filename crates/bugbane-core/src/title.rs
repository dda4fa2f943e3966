//! Titles, culprits and issue metadata, as Sentry displays them.

use serde_json::{Value, json};

use crate::value::{get_str, truncate};

/// What the issue list shows for an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Display {
    pub title: String,
    pub culprit: String,
    /// Sentry's `metadata`: `type`, `value`, `filename`, `function`, or `title`.
    pub metadata: Value,
}

/// Derives title, culprit and metadata from a normalised event.
pub fn display(ev: &Value) -> Display {
    let primary = ev
        .get("exception")
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array)
        .and_then(|a| a.last());
    let top_frame = primary
        .and_then(|p| p.get("stacktrace"))
        .and_then(top_in_app_frame);
    let (title, mut metadata) = if let Some(p) = primary {
        let ty = get_str(p, &["type"]);
        let value = get_str(p, &["value"]).map(first_line);
        let title = match (ty, &value) {
            (Some(t), Some(v)) => format!("{t}: {v}"),
            (Some(t), None) => t.to_owned(),
            (None, Some(v)) => v.clone(),
            (None, None) => "<unlabeled event>".to_owned(),
        };
        (
            title,
            json!({"type": ty.unwrap_or("Error"), "value": value.unwrap_or_default()}),
        )
    } else if get_str(ev, &["type"]) == Some("csp") {
        let directive = get_str(ev, &["csp", "effective_directive"]).unwrap_or("unknown");
        let blocked = get_str(ev, &["csp", "blocked_uri"]).unwrap_or("unknown");
        let t = format!("Blocked '{directive}' from '{blocked}'");
        (
            t.clone(),
            json!({"directive": directive, "uri": blocked, "message": t}),
        )
    } else if let Some(m) = crate::normalize::event_message(ev) {
        let t = first_line(m);
        (t.clone(), json!({"title": t}))
    } else if let Some(t) =
        get_str(ev, &["transaction"]).filter(|_| get_str(ev, &["type"]) == Some("transaction"))
    {
        (t.to_owned(), json!({"title": t}))
    } else {
        (
            "<unlabeled event>".to_owned(),
            json!({"title": "<unlabeled event>"}),
        )
    };
    if let Some(f) = top_frame {
        if let Some(file) = get_str(f, &["filename"]).or_else(|| get_str(f, &["abs_path"])) {
            metadata["filename"] = Value::from(file);
        }
        if let Some(func) = get_str(f, &["function"]) {
            metadata["function"] = Value::from(func);
        }
    }
    let culprit = get_str(ev, &["culprit"])
        .map(str::to_owned)
        .or_else(|| get_str(ev, &["transaction"]).map(str::to_owned))
        .or_else(|| top_frame.map(frame_culprit))
        .unwrap_or_default();
    Display {
        title: truncate(&title, 200),
        culprit: truncate(&culprit, 200),
        metadata,
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The frame an error happened in: the newest in-app frame, else the newest frame.
fn top_in_app_frame(st: &Value) -> Option<&Value> {
    let frames = st.get("frames")?.as_array()?;
    frames
        .iter()
        .rev()
        .find(|f| f.get("in_app") == Some(&Value::Bool(true)))
        .or_else(|| frames.last())
}

fn frame_culprit(f: &Value) -> String {
    let location = get_str(f, &["module"])
        .or_else(|| get_str(f, &["filename"]))
        .or_else(|| get_str(f, &["abs_path"]));
    match (location, get_str(f, &["function"])) {
        (Some(l), Some(func)) => format!("{l} in {func}"),
        (Some(l), None) => l.to_owned(),
        (None, Some(func)) => func.to_owned(),
        (None, None) => String::new(),
    }
}

//! Small helpers for reading loosely typed JSON the way SDKs send it.

use serde_json::{Map, Value};

/// Reads `v[path[0]][path[1]]…` through objects.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.as_object()?.get(*k)?;
    }
    Some(cur)
}

/// Reads a non-empty string at a path.
pub(crate) fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Stringifies a scalar the way Sentry does for tags (`True`/`False` for booleans).
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        _ => None,
    }
}

/// Sets `key` to `value`, reusing the key already there instead of allocating another.
pub(crate) fn set(obj: &mut Map<String, Value>, key: &str, value: Value) {
    match obj.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            obj.insert(key.to_owned(), value);
        }
    }
}

/// The object at `key`, created if missing or not an object.
pub(crate) fn object_entry<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    let slot = obj
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("slot was just made an object"),
    }
}

/// Cuts a string to `max` characters, ending it with `...` as Relay's trimming does.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut out = s.to_owned();
    shorten(&mut out, max);
    out
}

/// [`truncate`] in place: a string within `max` is left as it is, without a copy.
pub(crate) fn shorten(s: &mut String, max: usize) {
    if s.chars().count() <= max {
        return;
    }
    let cut = s
        .char_indices()
        .nth(max.saturating_sub(3))
        .map_or(s.len(), |(at, _)| at);
    s.truncate(cut);
    s.push_str("...");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_end_in_dots_within_the_limit_in_characters() {
        assert_eq!(truncate("short", 5), "short");
        assert_eq!(truncate("abcdefgh", 6), "abc...");
        // Characters, not bytes: a cut never splits one.
        assert_eq!(truncate("ééééééé", 5), "éé...");
        assert_eq!(truncate("abcd", 2), "...");
        let mut s = String::from("within");
        let at = s.as_ptr();
        shorten(&mut s, 6);
        assert_eq!((s.as_str(), s.as_ptr()), ("within", at));
    }
}

//! Message normalisation for grouping (Sentry's `parameterization.py`): variable parts of
//! a message (numbers, ids, addresses, dates…) are replaced by `<name>` placeholders so
//! that "Order 1234 failed" and "Order 5678 failed" group together.
//!
//! One combined regex is scanned left to right; at each position the first alternative
//! that matches wins, as in Sentry. Sentry's lookarounds are expressed here as explicit
//! checks on the matched text (the `regex` crate has no lookaround).

use std::sync::LazyLock;

use regex::Regex;

/// Placeholder kinds in Sentry's order of precedence.
const KINDS: &[(&str, &str)] = &[
    (
        "email",
        r"[a-zA-Z0-9._%+\-]+@[a-zA-Z0-9\-]+(?:\.[a-zA-Z0-9\-]+)*\.[a-zA-Z]{2,}",
    ),
    ("url", r"\b(?:wss?|https?|ftp)://[^\s/$.?#][^\s]*"),
    (
        "hostname",
        r"\b(?:[a-zA-Z0-9\-]{1,63}\.)+(?i:com|net|org|io|dev|app|de|uk|fr|nl|ru|cn|jp|br|it|es|pl|ca|au|in|eu|ch|se|no|dk|fi|be|at|cz|us|info|biz|co|me|tv|cloud|local|internal|svc|cluster)\b",
    ),
    (
        "ip",
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b|\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b|\b(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?|::1\b",
    ),
    (
        "traceparent",
        r"\b00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]\b|\b1-[0-9a-f]{8}-[0-9a-f]{24}\b",
    ),
    (
        "uuid",
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    ),
    ("sha1", r"\b[0-9a-fA-F]{40}\b"),
    ("md5", r"\b[0-9a-fA-F]{32}\b"),
    (
        "date",
        r"(?x)
        \b[0-9]{4}-[0-9]{2}-[0-9]{2}[T\x20][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?
        | \b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\x20[0-9]{1,2}\x20(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\x20[0-9]{4}\x20[0-9]{2}:[0-9]{2}:[0-9]{2}\x20(?:GMT|UTC|[+-][0-9]{4})
        | \b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\x20(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\x20[0-9]{2}\x20[0-9]{4}\x20[0-9]{2}:[0-9]{2}:[0-9]{2}\x20GMT[+-][0-9]{4}(?:\x20\([^)]+\))?
        | \b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\x20+[0-9]{1,2}\x20[0-9]{2}:[0-9]{2}:[0-9]{2}
        | datetime\.datetime\([^)]*\)
        | \b[0-9]{4}-[0-9]{2}-[0-9]{2}\b
        | \b[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:\x20?[AaPp][Mm])?\b",
    ),
    ("duration", r"\b[0-9]+ms\b|\b[0-9]+(?:\.[0-9]+)?s\b"),
    ("swift_txn_id", r"\btx[0-9a-f]{21}-[0-9a-f]{10}"),
    (
        "hex",
        r"\b0[xX][0-9a-fA-F]+\b|\b(?:[0-9a-f]{8,128}|[0-9A-F]{8,128})\b",
    ),
    ("git_sha", r"\b[0-9a-f]{7}\b"),
    ("float", r"-?\b[0-9]+\.[0-9]+\b"),
    ("int", r"-?\b[0-9]{1,7}\b"),
    ("quoted_str", r#"='[^']*'|="[^"]*""#),
    ("bool", r"=(?:True|true|False|false)\b"),
];

static COMBINED: LazyLock<Regex> = LazyLock::new(|| {
    let alternation: Vec<String> = KINDS
        .iter()
        .map(|(name, re)| format!("(?P<{name}>{re})"))
        .collect();
    Regex::new(&alternation.join("|")).unwrap_or_else(|e| panic!("parameterisation regex: {e}"))
});

/// Normalises a message or exception value for grouping: keeps the first two non-empty
/// lines (adding `...` if more were cut), then replaces variable parts by placeholders.
pub fn normalize_message(msg: &str) -> String {
    let mut lines = msg
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    let mut kept: Vec<&str> = lines.by_ref().take(2).collect();
    let cut = lines.next().is_some();
    if kept.is_empty() {
        kept.push("");
    }
    let mut text = kept.join("\n");
    if cut {
        text.push_str("...");
    }
    parameterize(&text)
}

/// Replaces variable parts of `text` with `<kind>` placeholders.
pub fn parameterize(text: &str) -> String {
    // Fast path: text without digits, `@`, `:`, `=` or `.` has nothing to replace.
    if !text
        .bytes()
        .any(|b| b.is_ascii_digit() || matches!(b, b'@' | b':' | b'=' | b'.'))
    {
        return text.to_owned();
    }
    let re = &*COMBINED;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in re.captures_iter(text) {
        let Some(whole) = caps.get(0) else { continue };
        let Some(kind) = KINDS
            .iter()
            .map(|(n, _)| *n)
            .find(|n| caps.name(n).is_some())
        else {
            continue;
        };
        let m = whole.as_str();
        let accepted = match kind {
            // Sentry requires a digit in bare hex runs, and a digit and a letter in a git sha.
            "hex" if !m.starts_with("0x") && !m.starts_with("0X") => {
                m.bytes().any(|b| b.is_ascii_digit())
            }
            "git_sha" => {
                m.bytes().any(|b| b.is_ascii_digit()) && m.bytes().any(|b| b.is_ascii_alphabetic())
            }
            // `-` is part of an int only when not glued to a preceding word character.
            "int" | "float" if m.starts_with('-') => !text[..whole.start()]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_'),
            _ => true,
        };
        if !accepted {
            continue;
        }
        out.push_str(&text[last..whole.start()]);
        match kind {
            "quoted_str" => out.push_str("=<quoted_str>"),
            "bool" => out.push_str("=<bool>"),
            _ => {
                out.push('<');
                out.push_str(kind);
                out.push('>');
            }
        }
        last = whole.end();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (
                "Order 1234 for bob@example.com failed after 350ms (id=7f9c2ba4-1e0d-4a55-9d0e-3b2c1a0f9e88)",
                "Order <int> for <email> failed after <duration> (id=<uuid>)",
            ),
            ("connect to 10.0.0.12 refused", "connect to <ip> refused"),
            (
                "GET https://api.example.com/v1/users/17 failed",
                "GET <url> failed",
            ),
            (
                "host db-7.internal.example.com down",
                "host <hostname> down",
            ),
            ("object at 0x7f3a2b1c deleted", "object at <hex> deleted"),
            (
                "digest d41d8cd98f00b204e9800998ecf8427e bad",
                "digest <md5> bad",
            ),
            (
                "at 2025-03-01T12:00:00Z and 2025-03-02",
                "at <date> and <date>",
            ),
            ("took 1.5s at 12:30:01", "took <duration> at <date>"),
            ("ratio 0.75", "ratio <float>"),
            ("commit abc1234 broke it", "commit <git_sha> broke it"),
            ("user=\"bob\" admin=True", "user=<quoted_str> admin=<bool>"),
            ("plain words only", "plain words only"),
            ("deadbeefcafe is a word", "deadbeefcafe is a word"),
            ("line1\n\nline2\nline3", "line1\nline2..."),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_message(input), want, "input: {input:?}");
        }
    }
}

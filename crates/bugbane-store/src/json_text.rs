//! JSON text of stored payloads, written straight from the tree.
//!
//! Payloads are mostly string bytes (source lines, paths, messages). serde_json's writer
//! looks each byte up in its escape table and reaches every node through serde's generic
//! serializer; that was a tenth of the work of processing an event. Here a string is
//! scanned eight bytes at a time for the three kinds of byte that JSON escapes, and runs
//! without them are copied whole. The text is serde_json's compact text, byte for byte.

use serde_json::{Map, Value};

/// A JSON tree that can be written as text.
pub(crate) trait JsonText {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl JsonText for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_value(out, self);
    }
}

impl JsonText for Map<String, Value> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_map(out, self);
    }
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers are few; serde_json's own formatting keeps them exactly as it writes them.
        // Writing into a Vec cannot fail.
        Value::Number(n) => serde_json::to_writer(&mut *out, n).unwrap_or_default(),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(m) => write_map(out, m),
    }
}

fn write_map(out: &mut Vec<u8>, m: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

const ONES: u64 = u64::from_ne_bytes([1; 8]);
const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether any of eight bytes is a control character, `"` or `\`. (`x - n·ONES & !x &
/// HIGH_BITS` is non-zero exactly when some byte of `x` is below `n`, for `n` ≤ 128.)
fn needs_escape(x: u64) -> bool {
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH_BITS;
    (below(x, 0x20)
        | below(x ^ (ONES * u64::from(b'"')), 1)
        | below(x ^ (ONES * u64::from(b'\\')), 1))
        != 0
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    while let Some(at) = first_escape(rest) {
        out.extend_from_slice(&rest[..at]);
        let c = rest[at];
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            _ => 0,
        };
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            let hex = [HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]];
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex[0], hex[1]]);
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Where the first byte that needs escaping is; most strings have none.
fn first_escape(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b[i..].first_chunk::<8>() {
        if needs_escape(u64::from_ne_bytes(*chunk)) {
            break;
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c < 0x20 || c == b'"' || c == b'\\')
        .map(|at| i + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.write_json(&mut out);
        out
    }

    #[test]
    fn every_byte_at_every_offset_is_written_as_serde_json_writes_it() {
        let mut chars: Vec<char> = (0u8..0x80).map(char::from).collect();
        chars.extend(['é', '€', '😀', '\u{2028}', '\u{7f}']);
        for c in chars {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrst".into();
                s.insert(at, c);
                let v = Value::from(s);
                assert_eq!(
                    text(&v),
                    serde_json::to_vec(&v).unwrap_or_default(),
                    "{c:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn trees_are_written_as_serde_json_writes_them() {
        let v = json!({
            "": [null, true, false, 0, -1, u64::MAX, i64::MIN, 0.1, -0.0, 1e300, 2.5e-8, 1.0],
            "nested \"key\"\n": {"a": {"b": [[], {}, [""], "\u{1}\u{1f}\"\\/"]}},
            "frames": [{"context_line": "\tif x:\r\n", "vars": {"s": "'quoted'"}}],
        });
        assert_eq!(text(&v), serde_json::to_vec(&v).unwrap_or_default());
        let Value::Object(m) = &v else {
            panic!("object")
        };
        let mut out = Vec::new();
        m.write_json(&mut out);
        assert_eq!(out, serde_json::to_vec(m).unwrap_or_default());
    }
}

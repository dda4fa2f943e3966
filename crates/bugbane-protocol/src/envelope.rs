//! The envelope: Sentry's newline-delimited container of typed items.
//!
//! ```text
//! {"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2025-03-01T12:00:00.123Z"}\n
//! {"type":"attachment","length":12,"filename":"note.txt"}\n
//! hello world!\n
//! {"type":"event"}\n
//! {"message":"hello"}
//! ```
//!
//! The first line is the envelope header (one JSON object). Each item is a header line
//! followed by its payload: exactly `length` bytes when the header has `length` (then a
//! `\n` or the end of the body), otherwise everything up to the next `\n`. Whitespace
//! before an item header is skipped and the final newline is optional, because SDKs differ
//! on both. Unknown header fields are kept, never rejected.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::ids::EventId;
use crate::item::ItemType;

/// Why bytes are not a valid envelope.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("empty envelope body")]
    Empty,
    #[error("invalid envelope header: {0}")]
    Header(String),
    #[error("invalid item header at byte {offset}: {reason}")]
    ItemHeader { offset: usize, reason: String },
    #[error("item payload of {expected} bytes is truncated at byte {offset}")]
    Truncated { offset: usize, expected: u64 },
    #[error("missing newline after item payload at byte {0}")]
    MissingNewline(usize),
}

/// The envelope header; the fields the server reads are typed, the rest kept in `other`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct EnvelopeHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl EnvelopeHeader {
    /// The header's event id, if it holds a valid one.
    pub fn event_id(&self) -> Option<EventId> {
        self.event_id.as_deref().and_then(EventId::parse)
    }
}

/// One item header.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ItemHeader {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// An item borrowing its payload from the envelope body.
#[derive(Clone, Debug)]
pub struct Item<'a> {
    pub header: ItemHeader,
    pub ty: ItemType,
    pub payload: &'a [u8],
}

/// A parsed envelope borrowing from the decoded request body.
#[derive(Clone, Debug)]
pub struct Envelope<'a> {
    pub header: EnvelopeHeader,
    pub items: Vec<Item<'a>>,
}

impl<'a> Envelope<'a> {
    /// Parses an envelope with the framing rules in the module documentation.
    pub fn parse(body: &'a [u8]) -> Result<Self, EnvelopeError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(EnvelopeError::Empty);
        }
        let (line, mut pos) = next_line(body, 0);
        let header: EnvelopeHeader =
            serde_json::from_slice(line).map_err(|e| EnvelopeError::Header(e.to_string()))?;
        let mut items = Vec::new();
        let len = body.len();
        loop {
            while pos < len && body[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos >= len {
                break;
            }
            let offset = pos;
            let (line, next) = next_line(body, pos);
            let ih: ItemHeader =
                serde_json::from_slice(line).map_err(|e| EnvelopeError::ItemHeader {
                    offset,
                    reason: e.to_string(),
                })?;
            pos = next;
            let payload = match ih.length {
                Some(n) => {
                    let end = usize::try_from(n)
                        .ok()
                        .and_then(|n| pos.checked_add(n))
                        .filter(|&end| end <= len)
                        .ok_or(EnvelopeError::Truncated {
                            offset: pos,
                            expected: n,
                        })?;
                    let p = &body[pos..end];
                    pos = end;
                    if pos < len {
                        if body[pos] != b'\n' {
                            return Err(EnvelopeError::MissingNewline(pos));
                        }
                        pos += 1;
                    }
                    p
                }
                None => {
                    let (p, next) = next_line(body, pos);
                    pos = next;
                    p
                }
            };
            items.push(Item {
                ty: ItemType::parse(&ih.ty),
                header: ih,
                payload,
            });
        }
        Ok(Envelope { header, items })
    }
}

/// Returns the bytes up to the next `\n` (or the end) and the position after it.
fn next_line(body: &[u8], pos: usize) -> (&[u8], usize) {
    match body[pos..].iter().position(|&b| b == b'\n') {
        Some(i) => (&body[pos..pos + i], pos + i + 1),
        None => (&body[pos..], body.len()),
    }
}

/// Writes envelopes, always with explicit item lengths.
#[derive(Debug)]
pub struct EnvelopeBuilder {
    buf: Vec<u8>,
}

impl EnvelopeBuilder {
    /// Starts an envelope with the given header.
    pub fn new(header: &EnvelopeHeader) -> Self {
        let mut buf = serde_json::to_vec(header).unwrap_or_else(|_| b"{}".to_vec());
        buf.push(b'\n');
        EnvelopeBuilder { buf }
    }

    /// Appends an item; `extra` carries further header fields (filename, content type…).
    pub fn item(mut self, ty: &str, extra: Map<String, Value>, payload: &[u8]) -> Self {
        let mut h = extra;
        h.insert("type".into(), Value::from(ty));
        h.insert("length".into(), Value::from(payload.len()));
        if let Ok(line) = serde_json::to_vec(&h) {
            self.buf.extend_from_slice(&line);
        }
        self.buf.push(b'\n');
        self.buf.extend_from_slice(payload);
        self.buf.push(b'\n');
        self
    }

    /// The encoded envelope.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_newline_framing() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"x\":1}\n{\"type\":\"attachment\",\"length\":12,\"filename\":\"a.txt\"}\nhello\nworld\n\n{\"type\":\"event\"}\n{\"message\":\"hi\"}";
        let env = Envelope::parse(body).expect("parse");
        assert_eq!(
            env.header.event_id().map(|e| e.to_string()).as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(env.header.other.get("x"), Some(&Value::from(1)));
        assert_eq!(env.items.len(), 2);
        assert_eq!(env.items[0].payload, b"hello\nworld\n");
        assert_eq!(env.items[1].ty, ItemType::Event);
        assert_eq!(env.items[1].payload, b"{\"message\":\"hi\"}");
    }

    #[test]
    fn header_only_and_zero_length() {
        assert_eq!(Envelope::parse(b"{}").expect("parse").items.len(), 0);
        let env = Envelope::parse(b"{}\n{\"type\":\"attachment\",\"length\":0}\n").expect("parse");
        assert_eq!(env.items[0].payload, b"");
    }

    #[test]
    fn malformed_envelopes() {
        assert_eq!(Envelope::parse(b"").unwrap_err(), EnvelopeError::Empty);
        assert!(matches!(
            Envelope::parse(b"not json\n").unwrap_err(),
            EnvelopeError::Header(_)
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":\"event\",\"length\":50}\n{}").unwrap_err(),
            EnvelopeError::Truncated { .. }
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}}\n").unwrap_err(),
            EnvelopeError::MissingNewline(_)
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"length\":2}\n{}").unwrap_err(),
            EnvelopeError::ItemHeader { .. }
        ));
    }

    #[test]
    fn builder_output_parses() {
        let body = EnvelopeBuilder::new(&EnvelopeHeader::default())
            .item("event", Map::new(), b"{\"a\":\n1}")
            .finish();
        let env = Envelope::parse(&body).expect("parse");
        assert_eq!(env.items[0].payload, b"{\"a\":\n1}");
    }
}

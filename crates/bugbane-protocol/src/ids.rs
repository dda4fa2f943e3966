//! Identifiers in the forms SDKs send them.

use std::fmt;

/// A 128-bit event id, always rendered as 32 lowercase hex digits.
///
/// SDKs send either the simple form (`9b7a…`) or the hyphenated UUID form (sentry-rust's
/// envelope header); both parse to the same id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 16]);

impl EventId {
    /// Parses a simple or hyphenated UUID, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        for c in s.trim().bytes() {
            if c == b'-' {
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    if n == 16 {
                        return None;
                    }
                    out[n] = (h << 4) | v;
                    n += 1;
                }
            }
        }
        (n == 16 && hi.is_none()).then_some(EventId(out))
    }

    /// Builds an id from 16 random bytes supplied by the caller (this crate does no I/O).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(bytes)
    }

    /// The nil id, which SDKs use to mean "no id".
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// The id as 8-4-4-4-12 hyphenated hex (what the minidump endpoint answers with).
    pub fn hyphenated(&self) -> String {
        let s = self.to_string();
        format!(
            "{}-{}-{}-{}-{}",
            &s[..8],
            &s[8..12],
            &s[12..16],
            &s[16..20],
            &s[20..]
        )
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::EventId;

    #[test]
    fn simple_and_hyphenated_forms_are_one_id() {
        let a = EventId::parse("454119e213194785a2d02614842b6f7b").expect("simple");
        let b = EventId::parse("454119E2-1319-4785-A2D0-2614842B6F7B").expect("hyphenated");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "454119e213194785a2d02614842b6f7b");
        assert_eq!(a.hyphenated(), "454119e2-1319-4785-a2d0-2614842b6f7b");
        assert!(EventId::parse("454119e2131947").is_none());
        assert!(EventId::parse("zz4119e213194785a2d02614842b6f7b").is_none());
        assert!(EventId::parse("454119e213194785a2d02614842b6f7b00").is_none());
    }
}

//! The Sentry wire protocol as SDKs speak it: DSNs, the four places credentials come
//! from, the envelope framing, item types and their data categories, and request-body
//! decoding with size caps.
//!
//! This crate knows bytes and JSON only. It does no I/O, takes no async runtime and knows
//! nothing of HTTP frameworks, storage or grouping: callers hand it header values, query
//! strings and bodies, and get typed values or a precise error back.

pub mod auth;
pub mod decode;
pub mod dsn;
pub mod envelope;
pub mod ids;
mod inflate;
pub mod item;

pub use auth::{Auth, AuthError, AuthInput};
pub use decode::{DecodeError, decode_body, decode_store_body};
pub use dsn::{Dsn, DsnError};
pub use envelope::{Envelope, EnvelopeBuilder, EnvelopeError, EnvelopeHeader, Item, ItemHeader};
pub use ids::EventId;
pub use item::{DataCategory, ItemType};

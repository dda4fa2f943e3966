//! All persistence: the durable ingest spool, issues and events with their counters,
//! the structured rows of every other item type, and accounts.
//!
//! This is the only crate that knows SQL. Callers see plain structs and async methods on
//! [`Store`]; which engine sits behind it is invisible to them. The embedded engine is
//! SQLite in WAL mode with one writer thread: every write goes through it, and envelope
//! spooling is group-committed (many envelopes, one transaction, one fsync), which is
//! what makes "acknowledged means on disk" cheap.

mod alerts;
mod codec;
mod copy;
mod dashboard;
mod db;
mod error;
mod ingest;
mod json_text;
mod model;
mod performance;
mod postgres;
mod queries;
mod sqlite;
mod store;
mod views;

pub use copy::TableCopy;
pub use error::Error;
pub use ingest::{ProcessedEnvelope, SaveSummary, SavedEvent, SpoolEntry, SpoolRow};
pub use model::*;
pub use store::{Store, StoreOptions};

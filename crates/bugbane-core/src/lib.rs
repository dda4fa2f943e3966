//! Event processing, the domain heart of Bugbane: normalisation, server-side scrubbing,
//! grouping, enrichment, titles and culprits, the issue lifecycle and the issue search
//! syntax.
//!
//! Everything here is a pure function over plain data: no I/O, no clock, no randomness,
//! no async runtime. Callers supply the receive time, client address and random ids, so
//! every behaviour is testable with literal inputs. Bad SDK data is never an error here
//! unless nothing usable is left; it is repaired or dropped and noted in the event's
//! `errors` list, as Sentry does.

pub mod alerts;
pub mod credentials;
pub mod crons;
pub mod grouping;
pub mod health;
pub mod items;
pub mod lifecycle;
pub mod normalize;
pub mod parameterize;
pub mod perf;
pub mod process;
pub mod scrub;
pub mod search;
pub mod tags;
pub mod time_fmt;
pub mod title;
mod useragent;
mod value;

pub use grouping::{GROUPING_CONFIG, Grouping, GroupingVariant};
pub use process::{ProcessContext, ProcessError, ProcessedEvent, process_event};
pub use scrub::ScrubSettings;

//! Storage errors, one variant per step that can fail.

use thiserror::Error;

/// What went wrong in the store.
#[derive(Debug, Error)]
pub enum Error {
    #[error("cannot open database at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("migration {version} failed: {source}")]
    Migrate {
        version: u32,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the ingest spool is full")]
    SpoolFull,
    #[error("the store is shut down")]
    Closed,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

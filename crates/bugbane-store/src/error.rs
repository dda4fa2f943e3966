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
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] postgres::Error),
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

impl Error {
    /// A PostgreSQL failure that a retry of the whole transaction resolves: a deadlock, a
    /// serialization failure, or a unique key another process inserted first.
    pub(crate) fn is_retryable(&self) -> bool {
        use postgres::error::SqlState;
        match self {
            Error::Postgres(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::UNIQUE_VIOLATION
            ),
            _ => false,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

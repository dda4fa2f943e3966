//! The embedded engine: SQLite in the data directory, in WAL mode.

use std::path::Path;
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::db::Db;
use crate::error::{Error, Result};

/// Embedded migrations, applied in order at start. Each runs once, recorded in
/// `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/sqlite/0002_dashboard.sql"),
    include_str!("../migrations/sqlite/0003_alerts.sql"),
    include_str!("../migrations/sqlite/0004_performance.sql"),
    include_str!("../migrations/sqlite/0005_views.sql"),
    include_str!("../migrations/sqlite/0006_monitor_alerts.sql"),
    include_str!("../migrations/sqlite/0007_leases.sql"),
];

pub(crate) fn open_conn(path: &Path, read_only: bool, fsync: bool) -> Result<Db> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|source| Error::Open {
        path: path.display().to_string(),
        source,
    })?;
    // Other processes (CLI commands, a second server during a restart) may hold the write
    // lock briefly; wait rather than fail.
    conn.busy_timeout(Duration::from_secs(10))?;
    if !read_only {
        // Space freed by processed spool rows goes back to the file system in increments
        // (takes effect when the database is created).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        // WAL lets readers run while the writer commits.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: every commit is fsynced, so an acknowledged envelope survives power loss.
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        // Spooled envelopes hold data before scrubbing; zero their bytes when they are
        // deleted instead of leaving them in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
    }
    // Page cache in KiB: the writer's is large (it touches the hot indexes of every
    // save); each of up to eight readers keeps a small one, or together they would hold
    // most of the process's memory under load.
    conn.pragma_update(None, "cache_size", if read_only { -2_000 } else { -16_000 })?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(128);
    add_functions(&conn)?;
    Ok(Db::sqlite(conn))
}

/// PostgreSQL's `GREATEST` and `LEAST` (NULLs ignored) and `FLOOR`, so queries need not
/// differ.
fn add_functions(conn: &Connection) -> Result<()> {
    conn.create_scalar_function(
        "floor",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f.floor()),
                _ => Value::Null,
            })
        },
    )?;
    for (name, pick_greater) in [("greatest", true), ("least", false)] {
        conn.create_scalar_function(
            name,
            -1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            move |ctx| {
                let mut best: Option<Value> = None;
                for i in 0..ctx.len() {
                    let v: Value = ctx.get_raw(i).into();
                    if matches!(v, Value::Null) {
                        continue;
                    }
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let greater = compare(&v, &b) == std::cmp::Ordering::Greater;
                            if greater == pick_greater { v } else { b }
                        }
                    });
                }
                Ok(best.unwrap_or(Value::Null))
            },
        )?;
    }
    Ok(())
}

/// Orders two SQLite values of the same kind (numbers compare across integer and real).
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    let num = |v: &Value| match ValueRef::from(v) {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => match (a, b) {
            (Value::Text(x), Value::Text(y)) => x.cmp(y),
            (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        },
    }
}

pub(crate) fn migrate(db: &mut Db) -> Result<()> {
    let Some(conn) = db.as_sqlite() else {
        return Ok(());
    };
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as u32 + 1;
        let failed = |source: rusqlite::Error| Error::Migrate {
            version,
            source: source.into(),
        };
        conn.execute_batch("BEGIN").map_err(failed)?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", version));
        match applied {
            Ok(()) => conn.execute_batch("COMMIT").map_err(failed)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(failed(e));
            }
        }
    }
    Ok(())
}

/// Returns free pages to the file system, then checkpoints the WAL and truncates it.
pub(crate) fn checkpoint(db: &Db) {
    let Some(conn) = db.as_sqlite() else {
        return;
    };
    // A bounded step, so a large backlog's worth of freed spool pages never stalls writes.
    if let Err(e) = conn.execute_batch("PRAGMA incremental_vacuum(4096)") {
        tracing::warn!(error = %e, "incremental vacuum failed");
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

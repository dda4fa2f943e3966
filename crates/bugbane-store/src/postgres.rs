//! PostgreSQL: one database shared by any number of Bugbane processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::db::Db;
use crate::error::{Error, Result};

/// Embedded migrations, applied in order; each is recorded in `bugbane_migrations`.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/postgres/0001_initial.sql")];

/// The advisory lock that keeps processes starting together from migrating twice.
const MIGRATION_LOCK: i64 = 0x6275_6762_616e_6501;

pub(crate) fn migrate(db: &mut Db) -> Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS bugbane_migrations (version BIGINT PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)",
    )?;
    db.query_row("SELECT pg_advisory_lock(?1)", [MIGRATION_LOCK], |_| Ok(()))?;
    let result = apply(db);
    db.query_row(
        "SELECT pg_advisory_unlock(?1)",
        [MIGRATION_LOCK],
        |_| Ok(()),
    )?;
    result
}

fn apply(db: &mut Db) -> Result<()> {
    let current: i64 = db.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM bugbane_migrations",
        rusqlite::params![],
        |r| r.get(0),
    )?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = db.transaction()?;
        tx.execute_batch(sql).map_err(|e| Error::Migrate {
            version: version as u32,
            source: e.into(),
        })?;
        tx.execute(
            "INSERT INTO bugbane_migrations (version, applied) VALUES (?1, ?2)",
            rusqlite::params![version, crate::store::now()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Keeps `backlog` at the shared spool's size: every process spools into it and any
/// process may drain it, so no process's own tally would be right.
pub(crate) fn watch_backlog(db: Db, backlog: Arc<AtomicI64>) {
    loop {
        match crate::store::count(&db, "SELECT COUNT(*) FROM spool", rusqlite::params![]) {
            Ok(n) => backlog.store(n, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "counting the spool failed"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

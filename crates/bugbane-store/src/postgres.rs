//! PostgreSQL: one database shared by any number of Bugbane processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::db::Db;
use crate::error::{Error, Result};

/// Embedded migrations, applied in order; each is recorded in `bugbane_migrations`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_initial.sql"),
    include_str!("../migrations/postgres/0002_partitions.sql"),
    include_str!("../migrations/postgres/0003_spool_progress.sql"),
    include_str!("../migrations/postgres/0004_hash_events.sql"),
];

/// The tables partitioned by day, with their partition column (see migration 0002).
pub(crate) const PARTITIONED: &[(&str, &str)] = &[
    ("events", "received"),
    ("transactions", "finish"),
    ("spans", "finish"),
    ("logs", "timestamp"),
];

/// Days of partitions created ahead of today.
const DAYS_AHEAD: i64 = 3;

/// Creates the daily partitions from yesterday to a few days ahead, where missing. A day
/// whose rows already sit in the default partition (a client clock far ahead) keeps them
/// there. Safe to run concurrently from several processes.
pub(crate) fn ensure_partitions(db: &Db, now: f64) -> Result<()> {
    let today = (now / 86400.0).floor() as i64;
    for (table, _) in PARTITIONED {
        for day in today - 1..=today + DAYS_AHEAD {
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {table}_d{day} PARTITION OF {table} FOR VALUES FROM ({}) TO ({})",
                day * 86400,
                (day + 1) * 86400
            );
            // A savepoint, so a refusal does not abort the surrounding transaction.
            db.execute_batch("SAVEPOINT partition")?;
            match db.execute_batch(&create) {
                Ok(()) => db.execute_batch("RELEASE SAVEPOINT partition")?,
                Err(e) => {
                    tracing::debug!(error = %e, table, day, "partition not created");
                    db.execute_batch("ROLLBACK TO SAVEPOINT partition")?;
                }
            }
        }
    }
    Ok(())
}

/// A table's daily partitions, by day.
pub(crate) fn partitions(db: &Db, table: &str) -> Result<Vec<(i64, String)>> {
    let mut stmt = db.prepare_cached(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ?1",
    )?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let prefix = format!("{table}_d");
    let mut days: Vec<(i64, String)> = names
        .into_iter()
        .filter_map(|n| Some((n.strip_prefix(&prefix)?.parse().ok()?, n)))
        .collect();
    days.sort();
    Ok(days)
}

/// Drops `table`'s partitions that hold only rows older than `cutoff`.
pub(crate) fn drop_expired_partitions(db: &Db, table: &str, cutoff: f64) -> Result<usize> {
    let mut dropped = 0;
    for (day, name) in partitions(db, table)? {
        if ((day + 1) * 86400) as f64 <= cutoff {
            db.execute_batch(&format!("DROP TABLE {name}"))?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

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

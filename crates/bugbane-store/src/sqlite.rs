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
    include_str!("../migrations/sqlite/0008_spool_file.sql"),
    include_str!("../migrations/sqlite/0009_hash_events.sql"),
];

pub(crate) fn open_conn(path: &Path, read_only: bool, fsync: bool) -> Result<Db> {
    open_with_pages(path, read_only, fsync, None)
}

/// What SQLite may hold in the whole process before it reuses cached pages.
const HEAP_LIMIT: i64 = 16 << 20;

/// `page_size` takes effect only when the file is created.
fn open_with_pages(
    path: &Path,
    read_only: bool,
    fsync: bool,
    page_size: Option<u32>,
) -> Result<Db> {
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
        if let Some(size) = page_size {
            conn.pragma_update(None, "page_size", size)?;
        }
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
    // Page cache in KiB: the writer's is larger (it touches the hot indexes of every
    // save; 8 MB saved as fast as 16 MB did, with 15-24 MB less resident under load);
    // each of up to eight readers keeps a small one, or together they would hold most of
    // the process's memory under load.
    conn.pragma_update(None, "cache_size", if read_only { -2_000 } else { -8_000 })?;
    // This SQLite is built with memory management: every connection's pages come from one
    // pool, as many pages as all open connections' cache sizes added up, whatever a page's
    // size. The spool's writer, appending 8 KB pages it never reads again, filled the room
    // the others left (17-28 MB). Past this limit SQLite reuses the least recently used
    // page instead of allocating another.
    conn.pragma_update(None, "soft_heap_limit", HEAP_LIMIT)?;
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

/// The spool's database file, next to the main one. Acknowledging an envelope commits it
/// there, so that commit never waits for the main database's writer, which may be busy
/// saving a processed batch.
pub(crate) fn spool_path(main: &Path) -> std::path::PathBuf {
    main.with_file_name("spool.sqlite3")
}

/// The spool file's one table, as the main database's (migration 0001 and 0007) was.
/// AUTOINCREMENT: ids are never reused, because processing reads the spool by increasing
/// id and the main database remembers the last one it saved.
const SPOOL_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    received REAL NOT NULL,
    client_ip TEXT,
    sdk_client TEXT,
    encoding TEXT,
    body BLOB NOT NULL,
    lease_holder TEXT,
    lease_until REAL
)";

/// The spool file's page size. A typical spooled body (about 2.2 KB gzip) does not fit
/// twice in a 4 KB page, so each row took a page of its own and each commit wrote a page
/// per envelope; an 8 KB page holds three. Closed-loop benchmark: about 6 % more events
/// end to end than with 4 KB; 16 and 32 KB pages gained no clear more, and raised the
/// peak resident memory under overload by 20-40 MB.
const SPOOL_PAGE: u32 = 8192;

pub(crate) fn open_spool(path: &Path, read_only: bool, fsync: bool) -> Result<Db> {
    let db = open_with_pages(path, read_only, fsync, Some(SPOOL_PAGE))?;
    if !read_only {
        db.execute_batch(SPOOL_SCHEMA)?;
    }
    // Rows are appended at one end and deleted from the other: a small cache holds both.
    db.execute_batch("PRAGMA cache_size = -2000")?;
    Ok(db)
}

/// Brings the spool file in line with the main database at start, and returns the id of
/// the last spooled envelope already saved: rows a crash left behind after their save are
/// deleted, ids continue after that one even in a new spool file, and envelopes an older
/// version spooled in the main database move over (keeping their ids, so a move that was
/// interrupted is simply done again).
pub(crate) fn settle_spool(main: &Db, spool: &mut Db, spool_file: &Path) -> Result<i64> {
    let legacy = crate::store::count(main, "SELECT COUNT(*) FROM spool", rusqlite::params![])?;
    if legacy > 0 {
        main.execute(
            "ATTACH DATABASE ?1 AS spool_file",
            [spool_file.display().to_string()],
        )?;
        let moved = main.execute_batch(
            "INSERT OR IGNORE INTO spool_file.spool (id, project_id, received, client_ip, sdk_client, encoding, body)
               SELECT id, project_id, received, client_ip, sdk_client, encoding, body FROM main.spool;
             DELETE FROM main.spool;",
        );
        let detached = main.execute_batch("DETACH DATABASE spool_file");
        moved.and(detached)?;
    }
    let done: i64 = main.query_row(
        "SELECT last_id FROM spool_progress WHERE id = 1",
        rusqlite::params![],
        |r| r.get(0),
    )?;
    let tx = spool.transaction()?;
    tx.execute("DELETE FROM spool WHERE id <= ?1", [done])?;
    tx.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'spool', ?1
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'spool')",
        [done],
    )?;
    tx.execute(
        "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'spool' AND seq < ?1",
        [done],
    )?;
    tx.commit()?;
    Ok(done)
}

/// How much free space a checkpoint returns to the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shrink {
    /// None: the free pages are about to be reused.
    Nothing,
    /// A bounded step, so that many freed pages never stall writes.
    Step,
    /// Every free page.
    All,
}

/// Returns free pages to the file system as `shrink` says, then checkpoints the WAL and
/// truncates it.
pub(crate) fn checkpoint(db: &Db, shrink: Shrink) {
    let Some(conn) = db.as_sqlite() else {
        return;
    };
    let vacuum = match shrink {
        Shrink::Nothing => None,
        Shrink::Step => Some("PRAGMA incremental_vacuum(4096)"),
        Shrink::All => Some("PRAGMA incremental_vacuum"),
    };
    // The pragma frees one page per step: it must be stepped to the end.
    let vacuumed = vacuum.map_or(Ok(()), |sql| {
        conn.prepare(sql).and_then(|mut stmt| {
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        })
    });
    if let Err(e) = vacuumed {
        tracing::warn!(error = %e, "incremental vacuum failed");
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(spool: &Db) -> Vec<i64> {
        spool
            .prepare("SELECT id FROM spool ORDER BY id")
            .and_then(|mut s| {
                Ok(s.query_map(rusqlite::params![], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?)
            })
            .expect("ids")
    }

    fn insert(db: &Db, id: Option<i64>) {
        db.execute(
            "INSERT INTO spool (id, project_id, received, body) VALUES (?1, 1, 0, x'00')",
            [id],
        )
        .expect("insert");
    }

    /// An older data directory's spooled envelopes move to the spool's file with their ids;
    /// rows a crash left after their save are dropped; new ids follow the saved ones even
    /// when the spool's file is new.
    #[test]
    fn the_spool_file_is_settled_against_the_main_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let main_path = dir.path().join("bugbane.sqlite3");
        let mut main = open_conn(&main_path, false, false).expect("main");
        migrate(&mut main).expect("migrate");
        for id in [3, 4, 9] {
            insert(&main, Some(id));
        }
        main.execute("UPDATE spool_progress SET last_id = 3", rusqlite::params![])
            .expect("progress");
        let mut spool = open_spool(&spool_path(&main_path), false, false).expect("spool");
        assert_eq!(
            settle_spool(&main, &mut spool, &spool_path(&main_path)).expect("settle"),
            3
        );
        assert_eq!(ids(&spool), vec![4, 9]);
        assert_eq!(
            crate::store::count(&main, "SELECT COUNT(*) FROM spool", rusqlite::params![])
                .expect("count"),
            0
        );
        insert(&spool, None);
        assert_eq!(ids(&spool), vec![4, 9, 10]);

        // A lost spool file: numbering resumes after the last saved envelope.
        drop(spool);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("spool.sqlite3{suffix}")));
        }
        main.execute(
            "UPDATE spool_progress SET last_id = 10",
            rusqlite::params![],
        )
        .expect("progress");
        let mut spool = open_spool(&spool_path(&main_path), false, false).expect("spool");
        assert_eq!(
            settle_spool(&main, &mut spool, &spool_path(&main_path)).expect("settle"),
            10
        );
        insert(&spool, None);
        assert_eq!(ids(&spool), vec![11]);
    }

    /// The page size only takes effect if set before the file is first written (which
    /// choosing WAL or the vacuum mode already does).
    #[test]
    fn a_new_spool_file_has_its_own_page_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let main_path = dir.path().join("bugbane.sqlite3");
        let main = open_conn(&main_path, false, false).expect("main");
        let spool = open_spool(&spool_path(&main_path), false, false).expect("spool");
        insert(&spool, None);
        let pragma = |db: &Db, name: &str| -> i64 {
            db.query_row(&format!("PRAGMA {name}"), rusqlite::params![], |r| r.get(0))
                .expect("pragma")
        };
        assert_eq!(pragma(&spool, "page_size"), i64::from(SPOOL_PAGE));
        assert_eq!(pragma(&spool, "auto_vacuum"), 2, "incremental");
        assert_eq!(pragma(&main, "page_size"), 4096);
        drop(spool);
        let spool = open_spool(&spool_path(&main_path), false, false).expect("reopened");
        assert_eq!(pragma(&spool, "page_size"), i64::from(SPOOL_PAGE));
        assert_eq!(ids(&spool), vec![1]);
    }

    /// A spool with a backlog keeps the pages its processed envelopes freed, and the next
    /// envelopes reuse them; once drained, they all go back to the file system.
    #[test]
    fn freed_spool_pages_are_reused_under_a_backlog_and_returned_once_drained() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = spool_path(&dir.path().join("bugbane.sqlite3"));
        let spool = open_spool(&path, false, false).expect("spool");
        let spool_rows = |from: i64, to: i64| {
            spool
                .execute(
                    "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
                     INSERT INTO spool (id, project_id, received, body)
                     SELECT i, 1, 0, randomblob(2200) FROM n",
                    [from, to],
                )
                .expect("spool rows");
        };
        let size = || {
            checkpoint(&spool, Shrink::Nothing);
            std::fs::metadata(&path).expect("spool file").len()
        };
        spool_rows(1, 3000);
        let full = size();
        assert!(full > 3000 * 2200, "{full} bytes");
        spool
            .execute("DELETE FROM spool WHERE id <= 2000", rusqlite::params![])
            .expect("processed");
        assert_eq!(size(), full, "a backlog keeps its free pages");
        spool_rows(3001, 5000);
        assert!(size() <= full + full / 10, "free pages are reused");
        spool
            .execute("DELETE FROM spool", rusqlite::params![])
            .expect("drained");
        checkpoint(&spool, Shrink::All);
        let drained = std::fs::metadata(&path).expect("spool file").len();
        assert!(drained <= 64 * 1024, "{drained} bytes once drained");
    }
}

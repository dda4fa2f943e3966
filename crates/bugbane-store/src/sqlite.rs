//! The embedded engine: SQLite in the data directory.
//!
//! One writer thread owns the only write connection. Spool requests that arrive while a
//! commit is in progress queue up and are committed together in the next transaction
//! (group commit); other writes run as jobs between spool batches. Reads use a small pool
//! of read-only connections on the blocking thread pool, so API queries never wait for
//! the writer (WAL readers see the last committed state).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::ingest::{SpoolEntry, commit_spool_batch};

/// Embedded migrations, applied in order at start. Each runs once, recorded in
/// `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/sqlite/0002_dashboard.sql"),
    include_str!("../migrations/sqlite/0003_alerts.sql"),
    include_str!("../migrations/sqlite/0004_performance.sql"),
    include_str!("../migrations/sqlite/0005_views.sql"),
    include_str!("../migrations/sqlite/0006_monitor_alerts.sql"),
];

/// Most envelopes one group commit writes.
const MAX_SPOOL_BATCH: usize = 4096;

/// Tuning for the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Envelopes waiting for the writer before new ones are refused.
    pub spool_queue: usize,
    /// `synchronous=FULL` (fsync on every commit) when true; `NORMAL` survives process
    /// crashes but not power loss.
    pub fsync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            spool_queue: 8192,
            fsync: true,
        }
    }
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Msg {
    Spool(SpoolEntry, oneshot::Sender<Result<i64>>),
    Job(Job),
}

/// How often an idle writer folds the WAL back into the database and truncates it, so
/// the WAL neither grows without bound nor keeps old (unscrubbed spool) pages around.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// Returns free pages to the file system, then checkpoints the WAL and truncates it.
fn checkpoint(conn: &Connection) {
    // A bounded step, so a large backlog's worth of freed spool pages never stalls writes.
    if let Err(e) = conn.execute_batch("PRAGMA incremental_vacuum(4096)") {
        tracing::warn!(error = %e, "incremental vacuum failed");
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dicts: Arc<crate::codec::Dictionaries>,
    path: PathBuf,
    tx: mpsc::Sender<Msg>,
    readers: Mutex<Vec<Connection>>,
    spooled: Arc<Notify>,
    /// Envelopes committed to the spool and not yet processed. Counted where the commits
    /// happen, so a client that hangs up mid-request cannot skew it.
    backlog: Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn open_conn(path: &Path, read_only: bool, fsync: bool) -> Result<Connection> {
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
    conn.pragma_update(None, "cache_size", -16_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as u32 + 1;
        let tx = conn
            .transaction()
            .map_err(|source| Error::Migrate { version, source })?;
        tx.execute_batch(sql)
            .map_err(|source| Error::Migrate { version, source })?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|source| Error::Migrate { version, source })?;
        tx.commit()
            .map_err(|source| Error::Migrate { version, source })?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating and migrating if needed) the database in `data_dir`, and starts the
    /// writer thread.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join("bugbane.sqlite3");
        let mut conn = open_conn(&path, false, options.fsync)?;
        migrate(&mut conn)?;
        let dicts = Arc::new(crate::codec::Dictionaries::default());
        dicts.load(&conn)?;
        let (tx, rx) = mpsc::channel(options.spool_queue.max(1));
        let spooled = Arc::new(Notify::new());
        let notify = spooled.clone();
        let pending: i64 = conn.query_row("SELECT COUNT(*) FROM spool", [], |r| r.get(0))?;
        let backlog = Arc::new(std::sync::atomic::AtomicI64::new(pending));
        let writer_backlog = backlog.clone();
        std::thread::Builder::new()
            .name("bugbane-writer".into())
            .spawn(move || writer_loop(conn, rx, notify, writer_backlog))
            .map_err(|source| Error::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                dicts,
                path,
                tx,
                readers: Mutex::new(Vec::new()),
                spooled,
                backlog,
            }),
        })
    }

    /// This database's compression dictionaries.
    pub(crate) fn dicts(&self) -> Arc<crate::codec::Dictionaries> {
        self.inner.dicts.clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a consistent copy of the database into `dir` (created if needed; it must not
    /// already hold one) while writers go on; returns the copy's size. The copy is
    /// compacted and is a complete data directory.
    pub async fn backup(&self, dir: &Path) -> Result<u64> {
        let dir = dir.to_owned();
        std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let target = dir.join("bugbane.sqlite3");
        if target.exists() {
            return Err(Error::Conflict(format!(
                "{} already exists",
                target.display()
            )));
        }
        let path = target.display().to_string();
        self.read(move |c| {
            c.execute("VACUUM INTO ?1", [&path])?;
            Ok(())
        })
        .await?;
        Ok(std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0))
    }

    /// Envelopes acknowledged and not yet processed.
    pub fn backlog(&self) -> i64 {
        self.inner
            .backlog
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts processed envelopes out of the backlog.
    pub(crate) fn processed_out(&self, n: i64) {
        self.inner
            .backlog
            .fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Wakes when a spool batch was committed, so processing need not poll.
    pub fn spooled(&self) -> Arc<Notify> {
        self.inner.spooled.clone()
    }

    /// Spools an envelope and resolves once its batch is committed to disk. Refuses at once
    /// with [`Error::SpoolFull`] when the writer's queue is full.
    pub async fn spool(&self, entry: SpoolEntry) -> Result<i64> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .try_send(Msg::Spool(entry, reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::SpoolFull,
                mpsc::error::TrySendError::Closed(_) => Error::Closed,
            })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Folds the WAL into the database and truncates it. The writer does this by itself
    /// after bursts; an idle server calls it now and then so the WAL does not linger.
    pub async fn checkpoint(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            checkpoint(conn);
            let _ = reply.send(());
        });
        self.inner
            .tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Finishes pending writes (they are queued before this) and checkpoints the WAL;
    /// call before the process exits.
    pub async fn close(&self) -> Result<()> {
        self.checkpoint().await
    }

    /// Runs `f` in a write transaction on the writer thread.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let result = conn.transaction().map_err(Error::from).and_then(|tx| {
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            });
            let _ = reply.send(result);
        });
        self.inner
            .tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs `f` on a read-only connection from the pool, on the blocking thread pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&inner.path, true, false)?,
            };
            let out = f(&conn);
            if let Ok(mut p) = inner.readers.lock()
                && p.len() < 8
            {
                p.push(conn);
            }
            out
        })
        .await
        .map_err(|_| Error::Closed)?
    }
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    spooled: Arc<Notify>,
    backlog: Arc<std::sync::atomic::AtomicI64>,
) {
    let mut spools: Vec<(SpoolEntry, oneshot::Sender<Result<i64>>)> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut last_checkpoint = std::time::Instant::now();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Spool(e, r) => spools.push((e, r)),
                Msg::Job(j) => jobs.push(j),
            }
            if spools.len() < MAX_SPOOL_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !spools.is_empty() {
            let batch = std::mem::take(&mut spools);
            let (entries, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match commit_spool_batch(&mut conn, &entries) {
                Ok(ids) => {
                    // Counted before anyone hears back, so a client that saw its 200 never
                    // sees a backlog without its envelope.
                    backlog.fetch_add(entries.len() as i64, std::sync::atomic::Ordering::Relaxed);
                    for (reply, id) in replies.into_iter().zip(ids) {
                        let _ = reply.send(Ok(id));
                    }
                    spooled.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %e, envelopes = entries.len(), "spool commit failed");
                    for reply in replies {
                        let _ =
                            reply.send(Err(Error::Conflict(format!("spool commit failed: {e}"))));
                    }
                }
            }
        }
        for job in jobs.drain(..) {
            job(&mut conn);
        }
        if rx.is_empty() && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            checkpoint(&conn);
            last_checkpoint = std::time::Instant::now();
        }
    }
    checkpoint(&conn);
}

/// A time as people read it in notifications: `2026-11-26 06:45:00 UTC`.
pub(crate) fn format_time(secs: f64) -> String {
    let s = bugbane_core::time_fmt::format_rfc3339(secs);
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(t)) => format!("{d} {t} UTC"),
        _ => s,
    }
}

/// Current time in UNIX seconds (the store stamps rows it creates itself).
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs a `COUNT(*)`.
pub(crate) fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<i64> {
    Ok(conn.query_row(sql, p, |r| r.get(0))?)
}

//! The handle every caller uses, over either engine.
//!
//! Two writer threads per process. The spool writer owns the spool's connection: spool
//! requests that arrive while a commit is in progress queue up and are committed together
//! in the next transaction (group commit). The jobs writer owns the other write
//! connection and runs every other write, saves of processed batches included, so an
//! acknowledgement never waits behind a save. On SQLite the spool is a database file of
//! its own for this (one file has one writer at a time). Reads use small pools of
//! connections on the blocking thread pool, so API queries never wait for a writer. With
//! PostgreSQL, several processes may do all this over one database; what must happen once
//! across them is claimed with row leases (see `leases` and the spool claim).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use rusqlite::params;

use crate::db::{Db, Params};
use crate::error::{Error, Result};
use crate::ingest::{SpoolEntry, commit_spool_batch};
use crate::sqlite::Shrink;

/// Most envelopes one group commit writes.
const MAX_SPOOL_BATCH: usize = 4096;

/// Tuning for the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Envelopes waiting for the writer before new ones are refused.
    pub spool_queue: usize,
    /// SQLite: `synchronous=FULL` (fsync on every commit) when true; `NORMAL` survives
    /// process crashes but not power loss. (PostgreSQL follows its own settings.)
    pub fsync: bool,
    /// `postgres://` URL of a PostgreSQL database to use instead of the embedded SQLite.
    pub database_url: Option<String>,
    /// PostgreSQL: how long a process holds spooled envelopes it claimed before another
    /// may take them over (so it bounds how late a dead process's claim is processed).
    pub spool_lease_secs: f64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            spool_queue: 8192,
            fsync: true,
            database_url: None,
            spool_lease_secs: 30.0,
        }
    }
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

enum Msg {
    Spool(SpoolEntry, oneshot::Sender<Result<i64>>),
    Job(Job),
}

/// How often an idle writer does its engine's housekeeping (SQLite: folds the WAL back
/// into the database and truncates it, so it neither grows without bound nor keeps old
/// unscrubbed spool pages around).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// Where the data lives.
#[derive(Clone, Debug)]
enum Engine {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Engine {
    fn connect(&self, read_only: bool, fsync: bool) -> Result<Db> {
        match self {
            Engine::Sqlite(path) => crate::sqlite::open_conn(path, read_only, fsync),
            Engine::Postgres(url) => Db::connect_pg(url),
        }
    }

    /// A connection to where the spool lives: its own file on SQLite.
    fn connect_spool(&self, read_only: bool, fsync: bool) -> Result<Db> {
        match self {
            Engine::Sqlite(path) => {
                crate::sqlite::open_spool(&crate::sqlite::spool_path(path), read_only, fsync)
            }
            Engine::Postgres(url) => Db::connect_pg(url),
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dicts: Arc<crate::codec::Dictionaries>,
    engine: Engine,
    /// The spool writer.
    tx: mpsc::Sender<Msg>,
    /// The jobs writer.
    jobs: mpsc::Sender<Msg>,
    readers: Mutex<Vec<Db>>,
    /// SQLite: read connections to the spool's file.
    spool_readers: Mutex<Vec<Db>>,
    /// SQLite: the last spooled envelope whose processing is saved (as recorded in
    /// `spool_progress`); the spool's rows up to it are deleted or about to be.
    spool_done: std::sync::atomic::AtomicI64,
    /// This process's name in leases it takes.
    node: String,
    spool_lease_secs: f64,
    spooled: Arc<Notify>,
    /// Envelopes committed to the spool and not yet processed. Counted where the commits
    /// happen, so a client that hangs up mid-request cannot skew it.
    backlog: Arc<std::sync::atomic::AtomicI64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A PostgreSQL connection says goodbye by blocking on its own runtime, which must
        // not happen on an async worker thread (where the last handle may be dropped).
        let mut readers = self
            .readers
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        readers.extend(
            self.spool_readers
                .get_mut()
                .map(std::mem::take)
                .unwrap_or_default(),
        );
        if !readers.is_empty() {
            std::thread::spawn(move || drop(readers));
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match &self.inner.engine {
            Engine::Sqlite(path) => path.display().to_string(),
            Engine::Postgres(_) => "postgresql".to_owned(),
        };
        f.debug_struct("Store").field("engine", &engine).finish()
    }
}

impl Store {
    /// Opens (creating and migrating if needed) the database — PostgreSQL when
    /// `options.database_url` is set, else SQLite in `data_dir` — and starts the writer
    /// thread.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store> {
        if options.database_url.is_none() {
            return Store::open_on_this_thread(data_dir, options);
        }
        // The synchronous PostgreSQL client drives its own small runtime, which must not
        // start on a thread that is already running async tasks.
        std::thread::scope(|scope| {
            scope
                .spawn(|| Store::open_on_this_thread(data_dir, options))
                .join()
                .unwrap_or(Err(Error::Closed))
        })
    }

    fn open_on_this_thread(data_dir: &Path, options: StoreOptions) -> Result<Store> {
        let engine = match &options.database_url {
            Some(url) => Engine::Postgres(url.clone()),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                })?;
                Engine::Sqlite(data_dir.join("bugbane.sqlite3"))
            }
        };
        let mut conn = engine.connect(false, options.fsync)?;
        let (spool_conn, spool_done) = match &engine {
            Engine::Sqlite(path) => {
                crate::sqlite::migrate(&mut conn)?;
                let mut spool = engine.connect_spool(false, options.fsync)?;
                let file = crate::sqlite::spool_path(path);
                let done = crate::sqlite::settle_spool(&conn, &mut spool, &file)?;
                (spool, done)
            }
            Engine::Postgres(_) => {
                crate::postgres::migrate(&mut conn)?;
                let tx = conn.transaction()?;
                crate::postgres::ensure_partitions(&tx, now())?;
                tx.commit()?;
                (engine.connect(false, options.fsync)?, 0)
            }
        };
        let dicts = Arc::new(crate::codec::Dictionaries::default());
        dicts.load(&conn)?;
        let (tx, rx) = mpsc::channel(options.spool_queue.max(1));
        let spooled = Arc::new(Notify::new());
        let notify = spooled.clone();
        let pending = count(&spool_conn, "SELECT COUNT(*) FROM spool", params![])?;
        let backlog = Arc::new(std::sync::atomic::AtomicI64::new(pending));
        let writer_backlog = backlog.clone();
        let thread_failed = |source| Error::DataDir {
            path: data_dir.display().to_string(),
            source,
        };
        std::thread::Builder::new()
            .name("bugbane-writer".into())
            .spawn(move || writer_loop(spool_conn, rx, notify, writer_backlog, true))
            .map_err(thread_failed)?;
        let (jobs, jobs_rx) = mpsc::channel(options.spool_queue.max(1));
        let (jobs_notify, jobs_backlog) = (Arc::new(Notify::new()), backlog.clone());
        std::thread::Builder::new()
            .name("bugbane-jobs".into())
            .spawn(move || writer_loop(conn, jobs_rx, jobs_notify, jobs_backlog, false))
            .map_err(thread_failed)?;
        if let Engine::Postgres(_) = &engine {
            // Other processes spool and process too: the backlog is the shared table's.
            let conn = engine.connect(true, false)?;
            let shared = backlog.clone();
            std::thread::Builder::new()
                .name("bugbane-backlog".into())
                .spawn(move || crate::postgres::watch_backlog(conn, shared))
                .map_err(thread_failed)?;
        }
        Ok(Store {
            inner: Arc::new(Inner {
                dicts,
                engine,
                tx,
                jobs,
                readers: Mutex::new(Vec::new()),
                spool_readers: Mutex::new(Vec::new()),
                spool_done: std::sync::atomic::AtomicI64::new(spool_done),
                node: node_name(),
                spool_lease_secs: options.spool_lease_secs,
                spooled,
                backlog,
            }),
        })
    }

    /// A new connection of its own to this store's database.
    pub(crate) fn connect_new(&self, read_only: bool) -> Result<Db> {
        self.inner.engine.connect(read_only, true)
    }

    /// A new connection of its own to where the spool lives.
    pub(crate) fn connect_spool_new(&self, read_only: bool) -> Result<Db> {
        self.inner.engine.connect_spool(read_only, true)
    }

    /// SQLite: the last spooled envelope whose processing is saved.
    pub(crate) fn spool_done(&self) -> i64 {
        self.inner
            .spool_done
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// SQLite: a save covering the spool up to `last` committed; its rows are deleted from
    /// the spool's file next, by the spool writer between group commits. (Should that be
    /// missed, the next save's deletion or the next start covers them.)
    pub(crate) fn spool_saved_up_to(&self, last: i64) {
        self.inner
            .spool_done
            .fetch_max(last, std::sync::atomic::Ordering::AcqRel);
        let job: Job = Box::new(move |conn: &mut Db| {
            if let Err(e) = conn.execute("DELETE FROM spool WHERE id <= ?1", [last]) {
                tracing::warn!(error = %e, "deleting processed envelopes from the spool failed");
            }
        });
        let _ = self.inner.tx.try_send(Msg::Job(job));
    }

    /// This process's name in the leases it holds.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Takes or renews the lease on job `name` for `secs` unless another process holds an
    /// unexpired one; true when this process holds it now.
    pub async fn try_lease(&self, name: &'static str, secs: f64) -> Result<bool> {
        let holder = self.inner.node.clone();
        self.write(move |tx| {
            let t = now();
            let n = tx.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until < ?4 OR leases.holder = excluded.holder",
                params![name, holder, t + secs, t],
            )?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) fn spool_lease_secs(&self) -> f64 {
        self.inner.spool_lease_secs
    }

    /// Whether the data lives in PostgreSQL (shared by several processes) rather than in
    /// this process's SQLite file.
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.engine, Engine::Postgres(_))
    }

    /// This database's compression dictionaries.
    pub(crate) fn dicts(&self) -> Arc<crate::codec::Dictionaries> {
        self.inner.dicts.clone()
    }

    /// Writes a consistent copy of the SQLite database into `dir` (created if needed; it
    /// must not already hold one) while writers go on; returns the copy's size. The copy
    /// is compacted and is a complete data directory. (PostgreSQL is backed up with its
    /// own tools.)
    pub async fn backup(&self, dir: &Path) -> Result<u64> {
        if self.is_shared() {
            return Err(Error::Conflict(
                "this installation uses PostgreSQL: back it up with pg_dump".into(),
            ));
        }
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
        // The spool after the database: each envelope acknowledged before the backup began
        // is in one copy or the other (and one in both is skipped, being marked saved).
        let spool = crate::sqlite::spool_path(&target);
        let spool_path = spool.display().to_string();
        self.read_spool(move |c| {
            c.execute("VACUUM INTO ?1", [&spool_path])?;
            Ok(())
        })
        .await?;
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(size(&target) + size(&spool))
    }

    /// Envelopes acknowledged and not yet processed.
    pub fn backlog(&self) -> i64 {
        self.inner
            .backlog
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts processed envelopes out of the backlog. (On PostgreSQL the backlog is the
    /// shared spool's count, refreshed by its own thread: a local subtraction could count
    /// a batch out twice.)
    pub(crate) fn processed_out(&self, n: i64) {
        if !self.is_shared() {
            self.inner
                .backlog
                .fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Envelopes acknowledged and not yet processed, exactly: [`Store::backlog`] on SQLite;
    /// a count of the shared spool on PostgreSQL, where `backlog` may lag by a moment.
    pub async fn pending(&self) -> Result<i64> {
        if !self.is_shared() {
            return Ok(self.backlog());
        }
        self.read(|c| count(c, "SELECT COUNT(*) FROM spool", params![]))
            .await
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
        for spool in [true, false] {
            let (reply, rx) = oneshot::channel();
            let inner = self.inner.clone();
            let job: Job = Box::new(move |conn: &mut Db| {
                let backlog = inner.backlog.load(std::sync::atomic::Ordering::Relaxed);
                crate::sqlite::checkpoint(conn, shrink(spool, backlog));
                let _ = reply.send(());
            });
            let writer = if spool {
                &self.inner.tx
            } else {
                &self.inner.jobs
            };
            writer
                .send(Msg::Job(job))
                .await
                .map_err(|_| Error::Closed)?;
            rx.await.map_err(|_| Error::Closed)?;
        }
        Ok(())
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
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.on_writer(move |conn| in_transaction(conn, f)).await
    }

    /// Like [`Store::write`], but runs `f` again from the start when PostgreSQL aborted the
    /// transaction because another process wrote the same rows (a deadlock, or a unique
    /// key inserted first), so concurrent writers never lose or duplicate an update.
    pub(crate) async fn write_retrying<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Db) -> Result<T> + Send + 'static,
    {
        self.on_writer(move |conn| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match in_transaction(conn, &mut f) {
                    Err(e) if e.is_retryable() && attempt < 8 => {
                        tracing::debug!(error = %e, attempt, "retrying a contended transaction");
                        std::thread::sleep(Duration::from_millis(5 * attempt));
                    }
                    other => break other,
                }
            }
        })
        .await
    }

    /// Runs `job` on the writer thread's connection and returns what it returned.
    async fn on_writer<T, J>(&self, job: J) -> Result<T>
    where
        T: Send + 'static,
        J: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Db| {
            let _ = reply.send(job(conn));
        });
        self.inner
            .jobs
            .send(Msg::Job(job))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs `f` on a read-only connection from the pool, on the blocking thread pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.read_in(false, f).await
    }

    /// Like [`Store::read`], on where the spool lives.
    pub(crate) async fn read_spool<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.read_in(true, f).await
    }

    async fn read_in<T, F>(&self, spool: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pool = if spool {
                &inner.spool_readers
            } else {
                &inner.readers
            };
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None if spool => inner.engine.connect_spool(true, false)?,
                None => inner.engine.connect(true, false)?,
            };
            let out = f(&conn);
            if let Ok(mut p) = pool.lock()
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

/// A writer thread. `spool`: this one owns the spool's connection, whose free pages are all
/// returned to the file system whenever the spool is drained.
fn writer_loop(
    mut conn: Db,
    mut rx: mpsc::Receiver<Msg>,
    spooled: Arc<Notify>,
    backlog: Arc<std::sync::atomic::AtomicI64>,
    spool: bool,
) {
    let mut spools: Vec<(SpoolEntry, oneshot::Sender<Result<i64>>)> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut last_checkpoint = std::time::Instant::now();
    // The spool had a backlog since it was last shrunk: shrink it as soon as it drains.
    let mut to_shrink = false;
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
        let backlog = backlog.load(std::sync::atomic::Ordering::Relaxed);
        let shrink = shrink(spool, backlog);
        to_shrink |= spool && shrink == Shrink::Nothing;
        let drained_now = to_shrink && shrink == Shrink::All;
        if rx.is_empty() && (drained_now || last_checkpoint.elapsed() >= CHECKPOINT_EVERY) {
            crate::sqlite::checkpoint(&conn, shrink);
            to_shrink &= shrink != Shrink::All;
            last_checkpoint = std::time::Instant::now();
        }
    }
    crate::sqlite::checkpoint(&conn, Shrink::Step);
}

/// A spool this close to drained is shrunk whole: few of its pages still hold envelopes,
/// so returning every free page moves few of them.
const SPOOL_SHRINK_BELOW: i64 = 1024;

/// What a checkpoint returns to the file system. The spool is shrunk only once (nearly)
/// drained: with a backlog its free pages are reused by the next envelopes, and returning
/// them meant moving live pages to the front, up to 4,096 every 10 s, each held dirty in
/// the page cache until the commit (peak resident memory over 60 s overloads: 107-108 MB
/// with those steps, 88-95 MB without).
fn shrink(spool: bool, backlog: i64) -> Shrink {
    match (spool, backlog <= SPOOL_SHRINK_BELOW) {
        (false, _) => Shrink::Step,
        (true, true) => Shrink::All,
        (true, false) => Shrink::Nothing,
    }
}

/// Runs `f` in a transaction on `conn`, committing what it did unless it failed.
fn in_transaction<T>(conn: &mut Db, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    let tx = conn.transaction()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// A name for this process that no other process sharing the database has.
fn node_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:x}", std::process::id())
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
pub(crate) fn count(conn: &Db, sql: &str, p: impl Params) -> Result<i64> {
    conn.query_row(sql, p, |r| r.get(0))
}

//! The background processor: reads acknowledged envelopes from the spool, processes them
//! (on its own threads, one per core, since it is pure CPU) and saves the results, which
//! marks them processed in the same transaction (see `Store::save_processed`). After a
//! crash it simply resumes from the spool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use bugbane_core::ProcessContext;
use bugbane_core::items::{EnvelopeRecords, process_envelope};
use bugbane_core::normalize::NormalizeContext;
use bugbane_core::scrub::ScrubSettings;
use bugbane_protocol::Envelope;
use bugbane_store::{ProcessedEnvelope, SpoolRow, Store};

use crate::App;

/// Envelopes processed and saved per transaction.
const BATCH: i64 = 256;
/// How long a project's scrubbing settings are trusted before being re-read.
const SETTINGS_TTL: Duration = Duration::from_secs(5);

pub(crate) async fn run(app: Arc<App>) {
    let wake = app.store.spooled();
    // Other processes sharing the database spool too, without waking this one.
    let idle_poll = if app.store.is_shared() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let mut settings: HashMap<i64, (ScrubSettings, Instant)> = HashMap::new();
    let mut workers = Workers::start();
    // A batch is saved (on the store's writer) while the next one is processed: the two
    // overlap instead of leaving the processing threads idle during every save.
    let mut saving: Option<tokio::task::JoinHandle<bool>> = None;
    // The last spooled id handed to processing; 0 after a failure, to start over from what
    // is unsaved.
    let mut claimed = 0i64;
    // The next batch, read while the current one is processed, so the processing threads
    // never wait for the spool read.
    let mut prefetched: Option<
        tokio::task::JoinHandle<Result<Vec<SpoolRow>, bugbane_store::Error>>,
    > = None;
    loop {
        let read = match prefetched.take() {
            Some(next) => next.await.unwrap_or_else(|e| {
                Err(bugbane_store::Error::Conflict(format!(
                    "reading the spool stopped: {e}"
                )))
            }),
            None => app.store.claim_spool(claimed, BATCH).await,
        };
        let rows = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading the spool failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if rows.is_empty() {
            if let Some(s) = saving.take() {
                if !s.await.unwrap_or(false) {
                    claimed = 0;
                }
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(idle_poll) => {}
            }
            continue;
        }
        for row in &rows {
            let fresh = settings
                .get(&row.project_id)
                .is_some_and(|(_, at)| at.elapsed() < SETTINGS_TTL);
            if !fresh {
                let s = match app.store.project(row.project_id).await {
                    Ok(Some(p)) => p.scrub,
                    _ => ScrubSettings::default(),
                };
                settings.insert(row.project_id, (s, Instant::now()));
            }
        }
        let batch_ctx = Arc::new(BatchContext {
            store: app.store.clone(),
            settings: settings.iter().map(|(k, (s, _))| (*k, s.clone())).collect(),
            max_raw: app.config.ingest.max_raw_item_bytes,
            max_session_age: f64::from(app.config.ingest.max_session_age_days) * 86400.0,
        });
        let last = rows.last().map(|r| r.id).unwrap_or(claimed);
        let n = rows.len();
        let store = app.store.clone();
        prefetched = Some(tokio::spawn(
            async move { store.claim_spool(last, BATCH).await },
        ));
        let processed = workers.process(rows, batch_ctx).await;
        // Batches are saved in spool order, one after the other.
        let previous_saved = match saving.take() {
            Some(s) => s.await.unwrap_or(false),
            None => true,
        };
        let Some(batch) = processed.filter(|_| previous_saved) else {
            if previous_saved {
                // A worker died mid-chunk; nothing of this batch was saved, so it is read again.
                tracing::error!(
                    envelopes = n,
                    "a processing thread stopped; retrying the batch"
                );
            }
            claimed = 0;
            // Read again from what is unsaved, not after this batch.
            prefetched = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        claimed = last;
        saving = Some(tokio::spawn(save(app.store.clone(), batch)));
    }
}

/// Saves one processed batch; false when it failed (then nothing of it was saved, it stays
/// in the spool and is processed again).
async fn save(store: Store, batch: Vec<ProcessedEnvelope>) -> bool {
    let started = Instant::now();
    let n = batch.len();
    match store.save_processed(batch).await {
        Ok(summary) => {
            tracing::debug!(
                envelopes = n,
                events = summary.events.len(),
                duplicates = summary.duplicates,
                duration_ms = started.elapsed().as_millis() as u64,
                "processed a spool batch"
            );
            true
        }
        Err(e) => {
            tracing::error!(error = %e, envelopes = n, "saving a processed batch failed");
            false
        }
    }
}

/// What every row of a batch is processed with.
struct BatchContext {
    store: Store,
    settings: HashMap<i64, ScrubSettings>,
    max_raw: usize,
    max_session_age: f64,
}

/// A few rows for whichever processing thread is free, and where their results go.
struct Chunk {
    rows: Vec<SpoolRow>,
    ctx: Arc<BatchContext>,
    reply: oneshot::Sender<Vec<ProcessedEnvelope>>,
}

/// Rows per chunk: small, so that the threads share a batch evenly (rows differ in size and
/// the cores in what else they run) and none sits idle while another finishes a long share.
const CHUNK: usize = 8;

/// One long-lived processing thread per core (processing is pure CPU and rows are
/// independent), all taking chunks from one queue. Threads started per batch cost their
/// start-up each time, and each one that exits leaves its allocator pages to be reclaimed
/// later: memory grew under load.
struct Workers {
    queue: std::sync::mpsc::Sender<Chunk>,
    chunks: Arc<Mutex<std::sync::mpsc::Receiver<Chunk>>>,
    threads: Vec<Option<std::thread::JoinHandle<()>>>,
}

impl Workers {
    fn start() -> Workers {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let (queue, chunks) = std::sync::mpsc::channel();
        let chunks = Arc::new(Mutex::new(chunks));
        Workers {
            threads: (0..n).map(|i| spawn_worker(i, chunks.clone())).collect(),
            queue,
            chunks,
        }
    }

    /// Processes `rows` across the threads; results keep the rows' order. `None` when a
    /// thread stopped before answering (a bug outside the per-row guard).
    async fn process(
        &mut self,
        rows: Vec<SpoolRow>,
        ctx: Arc<BatchContext>,
    ) -> Option<Vec<ProcessedEnvelope>> {
        // A thread that stopped is replaced before more work is queued for it.
        for (i, t) in self.threads.iter_mut().enumerate() {
            if t.as_ref().is_none_or(|h| h.is_finished()) {
                *t = spawn_worker(i, self.chunks.clone());
            }
        }
        if self.threads.iter().all(Option::is_none) {
            return None;
        }
        let mut rows = rows.into_iter().peekable();
        let mut replies = Vec::new();
        while rows.peek().is_some() {
            let (reply, rx) = oneshot::channel();
            let chunk = Chunk {
                rows: rows.by_ref().take(CHUNK).collect(),
                ctx: ctx.clone(),
                reply,
            };
            // The queue's receiver lives as long as `self`: sending cannot fail.
            self.queue.send(chunk).ok()?;
            replies.push(rx);
        }
        let mut out = Vec::new();
        for rx in replies {
            out.extend(rx.await.ok()?);
        }
        Some(out)
    }
}

fn spawn_worker(
    i: usize,
    chunks: Arc<Mutex<std::sync::mpsc::Receiver<Chunk>>>,
) -> Option<std::thread::JoinHandle<()>> {
    let started = std::thread::Builder::new()
        .name(format!("bugbane-process-{i}"))
        .spawn(move || {
            yield_to_ingest();
            loop {
                // The lock is held only while waiting for the next chunk; a thread that
                // panicked while holding it left nothing half-done in the queue.
                let next = chunks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .recv();
                let Ok(chunk) = next else { return };
                let out = chunk
                    .rows
                    .into_iter()
                    .map(|r| process_row(&chunk.ctx, r))
                    .collect();
                let _ = chunk.reply.send(out);
            }
        });
    match started {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!(error = %e, "could not start a processing thread");
            None
        }
    }
}

/// Lowers this processing thread's scheduling priority. Processing can wait; a client
/// waiting for its envelope to be acknowledged should not, so when the cores are busy the
/// request handlers and the writer run first. Processing still gets every idle cycle.
fn yield_to_ingest() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), PROCESSING_NICE) {
        tracing::debug!(error = %e, "could not lower the processing thread's priority");
    }
}

/// The niceness of processing threads (0 is normal, 19 the lowest).
const PROCESSING_NICE: i32 = 10;

/// Processes one spooled envelope. A panic in processing (a bug) must neither stop the
/// processor nor lose the envelope: it is kept raw as an `unprocessable_envelope` record.
fn process_row(ctx: &BatchContext, row: SpoolRow) -> ProcessedEnvelope {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process_row_inner(ctx, &row)
    })) {
        Ok(p) => p,
        Err(_) => {
            tracing::error!(
                spool.id = row.id,
                project.id = row.project_id,
                "processing an envelope panicked; keeping it raw"
            );
            let records = EnvelopeRecords {
                records: vec![bugbane_core::items::Record::Raw {
                    ty: "unprocessable_envelope".into(),
                    content_type: Some("application/x-sentry-envelope".into()),
                    payload: row.body,
                    truncated: false,
                }],
                dropped: Vec::new(),
            };
            ProcessedEnvelope::new(&ctx.store, row.id, row.project_id, row.received, records)
        }
    }
}

fn process_row_inner(batch: &BatchContext, row: &SpoolRow) -> ProcessedEnvelope {
    let decoded = bugbane_protocol::decode_body(row.encoding.as_deref(), &row.body, usize::MAX);
    let body: &[u8] = match &decoded {
        Ok(b) => b,
        Err(_) => &[],
    };
    let records = match Envelope::parse(body) {
        Ok(env) => {
            let ctx = ProcessContext {
                normalize: NormalizeContext {
                    received: row.received,
                    sent_at: env
                        .header
                        .sent_at
                        .as_deref()
                        .and_then(bugbane_core::time_fmt::parse_timestamp_str),
                    client_ip: row.client_ip.clone(),
                    sdk_client: row.sdk_client.clone(),
                    fallback_event_id: env
                        .header
                        .event_id()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| format!("{:032x}", row.id)),
                },
                scrub: batch
                    .settings
                    .get(&row.project_id)
                    .cloned()
                    .unwrap_or_default(),
                max_session_age: batch.max_session_age,
            };
            process_envelope(&env, &ctx, batch.max_raw)
        }
        Err(e) => {
            // Validated at ingest, so this means the spool row itself is damaged.
            tracing::error!(spool.id = row.id, error = %e, "dropping an unparseable spooled envelope");
            EnvelopeRecords::default()
        }
    };
    for reason in &records.dropped {
        tracing::warn!(project.id = row.project_id, reason = %reason, "dropped an envelope item");
    }
    ProcessedEnvelope::new(&batch.store, row.id, row.project_id, row.received, records)
}

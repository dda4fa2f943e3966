//! The background processor: reads acknowledged envelopes from the spool, processes them
//! (on its own threads, one per core, since it is pure CPU) and saves the results, which
//! marks them processed in the same transaction (see `Store::save_processed`). After a
//! crash it simply resumes from the spool.

use std::collections::HashMap;
use std::sync::Arc;
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
    loop {
        let rows = match app.store.claim_spool(claimed, BATCH).await {
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

/// Rows for one processing thread, and where its results go.
struct Chunk {
    rows: Vec<SpoolRow>,
    ctx: Arc<BatchContext>,
    reply: oneshot::Sender<Vec<ProcessedEnvelope>>,
}

/// One long-lived processing thread per core (processing is pure CPU and rows are
/// independent). Threads started per batch cost their start-up each time, and each one
/// that exits leaves its allocator pages to be reclaimed later: memory grew under load.
struct Workers {
    threads: Vec<std::sync::mpsc::Sender<Chunk>>,
}

impl Workers {
    fn start() -> Workers {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        Workers {
            threads: (0..n).map(spawn_worker).collect(),
        }
    }

    /// Processes `rows` across the threads; results keep the rows' order. `None` when a
    /// thread stopped before answering (a bug outside the per-row guard).
    async fn process(
        &mut self,
        rows: Vec<SpoolRow>,
        ctx: Arc<BatchContext>,
    ) -> Option<Vec<ProcessedEnvelope>> {
        let threads = if rows.len() < 8 {
            1
        } else {
            self.threads.len()
        };
        let size = rows.len().div_ceil(threads).max(1);
        let mut rows = rows.into_iter().peekable();
        let mut replies = Vec::with_capacity(threads);
        let mut i = 0;
        while rows.peek().is_some() {
            let (reply, rx) = oneshot::channel();
            let chunk = Chunk {
                rows: rows.by_ref().take(size).collect(),
                ctx: ctx.clone(),
                reply,
            };
            if let Err(std::sync::mpsc::SendError(chunk)) = self.threads[i].send(chunk) {
                // The thread is gone: replace it.
                self.threads[i] = spawn_worker(i);
                self.threads[i].send(chunk).ok()?;
            }
            replies.push(rx);
            i += 1;
        }
        let mut out = Vec::new();
        for rx in replies {
            out.extend(rx.await.ok()?);
        }
        Some(out)
    }
}

fn spawn_worker(i: usize) -> std::sync::mpsc::Sender<Chunk> {
    let (tx, rx) = std::sync::mpsc::channel::<Chunk>();
    let started = std::thread::Builder::new()
        .name(format!("bugbane-process-{i}"))
        .spawn(move || {
            yield_to_ingest();
            while let Ok(chunk) = rx.recv() {
                let out = chunk
                    .rows
                    .into_iter()
                    .map(|r| process_row(&chunk.ctx, r))
                    .collect();
                let _ = chunk.reply.send(out);
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "could not start a processing thread");
    }
    tx
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

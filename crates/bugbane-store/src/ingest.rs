//! The ingest path: spooling acknowledged envelopes, and saving what processing made of
//! them (issues, events, counters and every other record) in one transaction per batch.

use std::collections::HashMap;

use crate::db::{Db, OptionalExtension, Row};
use bugbane_core::ProcessedEvent;
use bugbane_core::items::{EnvelopeRecords, Record};
use bugbane_core::lifecycle::{self, IssueState, Status, Transition};
use rusqlite::params;
use serde_json::{Value, json};

use crate::codec::compress;
use crate::error::{Error, Result};
use crate::store::{Store, now};

/// An envelope as accepted by the ingest endpoint.
///
/// `body` is kept as the SDK sent it, with its `Content-Encoding` in `encoding`: the
/// SDK's own compression is reused instead of compressing again on the hot path.
#[derive(Clone, Debug)]
pub struct SpoolEntry {
    pub project_id: i64,
    pub received: f64,
    pub client_ip: Option<String>,
    pub sdk_client: Option<String>,
    pub encoding: Option<String>,
    pub body: Vec<u8>,
}

/// A spooled envelope read back for processing (`body` still in its `encoding`).
#[derive(Clone, Debug)]
pub struct SpoolRow {
    pub id: i64,
    pub project_id: i64,
    pub received: f64,
    pub client_ip: Option<String>,
    pub sdk_client: Option<String>,
    pub encoding: Option<String>,
    pub body: Vec<u8>,
}

/// What processing made of one spooled envelope, with its large parts already encoded.
#[derive(Debug)]
pub struct ProcessedEnvelope {
    pub spool_id: i64,
    pub project_id: i64,
    pub received: f64,
    records: EnvelopeRecords,
    /// Per record: its compressed payload, encoded by [`ProcessedEnvelope::new`].
    blobs: Vec<Blobs>,
}

/// The encoded heavy parts of one record.
#[derive(Debug, Default)]
struct Blobs {
    payload: Vec<u8>,
    search_keys: Vec<(String, String)>,
}

impl ProcessedEnvelope {
    /// Encodes and compresses the records' payloads now, on the caller's thread, so the
    /// single writer thread only writes (and never frees large JSON trees either).
    pub fn new(
        store: &Store,
        spool_id: i64,
        project_id: i64,
        received: f64,
        mut records: EnvelopeRecords,
    ) -> Self {
        let dicts = store.dicts();
        let blobs = records
            .records
            .iter_mut()
            .map(|r| match r {
                Record::Event(ev) => {
                    let b = Blobs {
                        payload: dicts.compress_json(&ev.payload),
                        search_keys: search_keys(ev.payload.get("user")),
                    };
                    ev.payload = serde_json::Map::new();
                    b
                }
                Record::Transaction(t) => {
                    let b = Blobs {
                        payload: dicts.compress_json(&t.payload),
                        ..Default::default()
                    };
                    t.payload = serde_json::Map::new();
                    b
                }
                Record::Feedback(f) => {
                    let b = Blobs {
                        payload: dicts.compress_json(&f.payload),
                        ..Default::default()
                    };
                    f.payload = Value::Null;
                    b
                }
                Record::Attachment(a) => Blobs {
                    payload: compress(&std::mem::take(&mut a.data)),
                    ..Default::default()
                },
                Record::Raw { payload, .. } => Blobs {
                    payload: compress(&std::mem::take(payload)),
                    ..Default::default()
                },
                _ => Blobs::default(),
            })
            .collect();
        ProcessedEnvelope {
            spool_id,
            project_id,
            received,
            records,
            blobs,
        }
    }
}

/// The fate of one saved event.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedEvent {
    pub event_id: String,
    pub issue_id: i64,
    pub new_issue: bool,
    pub regressed: bool,
    /// An ignored issue's condition was met by this event.
    pub unignored: bool,
}

/// What a batch save did.
#[derive(Clone, Debug, Default)]
pub struct SaveSummary {
    pub events: Vec<SavedEvent>,
    pub records: usize,
    pub duplicates: usize,
}

pub(crate) fn commit_spool_batch(conn: &mut Db, entries: &[SpoolEntry]) -> Result<Vec<i64>> {
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(entries.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO spool (project_id, received, client_ip, sdk_client, encoding, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?;
        for e in entries {
            ids.push(stmt.query_row(
                params![
                    e.project_id,
                    e.received,
                    e.client_ip,
                    e.sdk_client,
                    e.encoding,
                    e.body
                ],
                |r| r.get(0),
            )?);
        }
    }
    tx.commit()?;
    Ok(ids)
}

impl Store {
    /// The next spooled envelopes to process, oldest first, after `after`: the last id this
    /// process has claimed and not given up on (0 to start over from what is unsaved). On
    /// SQLite this process is the only processor and reads past it. On PostgreSQL the rows
    /// are leased to this process (see [`crate::StoreOptions`]), skipping rows other processes
    /// hold and its own rows up to `after` (still being processed or saved); a lease that
    /// lapses (its holder died) lets any process take the rows over.
    pub async fn claim_spool(&self, after: i64, limit: i64) -> Result<Vec<SpoolRow>> {
        const COLS: &str = "id, project_id, received, client_ip, sdk_client, encoding, body";
        let row = |r: &Row<'_>| {
            Ok(SpoolRow {
                id: r.get(0)?,
                project_id: r.get(1)?,
                received: r.get(2)?,
                client_ip: r.get(3)?,
                sdk_client: r.get(4)?,
                encoding: r.get(5)?,
                body: r.get(6)?,
            })
        };
        if !self.is_shared() {
            let after = after.max(self.spool_done());
            return self
                .read_spool(move |c| {
                    let mut stmt = c.prepare_cached(&format!(
                        "SELECT {COLS} FROM spool WHERE id > ?1 ORDER BY id LIMIT ?2"
                    ))?;
                    let rows = stmt.query_map(params![after, limit], row)?;
                    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
                })
                .await;
        }
        let holder = self.node().to_owned();
        let lease = self.spool_lease_secs();
        let mut rows = self
            .write(move |tx| {
                let t = now();
                let mut stmt = tx.prepare_cached(&format!(
                    "UPDATE spool SET lease_holder = ?1, lease_until = ?2 WHERE id IN (
                       SELECT id FROM spool
                       WHERE lease_until IS NULL OR lease_until < ?3 OR (lease_holder = ?1 AND id > ?5)
                       ORDER BY id LIMIT ?4 FOR UPDATE SKIP LOCKED)
                     RETURNING {COLS}"
                ))?;
                let rows = stmt.query_map(params![holder, t + lease, t, limit, after], row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Saves a batch of processed envelopes and removes them from the spool, atomically:
    /// after a crash either all of the batch is saved and gone from the spool, or none. (On
    /// SQLite, where the spool is another file, the save records the last envelope it covers
    /// and the spool's rows up to it are deleted after it commits; until then they are
    /// skipped.) The batch must follow the spool's order, after every batch saved before.
    pub async fn save_processed(&self, batch: Vec<ProcessedEnvelope>) -> Result<SaveSummary> {
        let dicts = self.dicts();
        let writer_dicts = dicts.clone();
        let envelopes = batch.len() as i64;
        let shared = self.is_shared();
        let last_spooled = batch.iter().map(|e| e.spool_id).max();
        let holder = self.node().to_owned();
        let (summary, stored_dict) = self
            .write_retrying(move |tx| {
                if shared {
                    lock_projects(tx, &batch)?;
                }
                // A payload compressed with a new dictionary commits together with it.
                let stored_dict = writer_dicts.persist(tx)?;
                let mut summary = SaveSummary::default();
                let mut state = BatchState::default();
                for env in &batch {
                    save_envelope(tx, env, &mut summary, &mut state)?;
                    if !shared {
                        continue;
                    }
                    let deleted = tx
                        .prepare_cached("DELETE FROM spool WHERE id = ?1 AND (lease_holder IS NULL OR lease_holder = ?2)")?
                        .execute(params![env.spool_id, holder])?;
                    if deleted == 0 {
                        // Our lease lapsed and another process took the envelope over:
                        // saving it too would count it twice.
                        return Err(Error::Conflict(format!(
                            "spooled envelope {} was taken over by another process",
                            env.spool_id
                        )));
                    }
                }
                if let (false, Some(last)) = (shared, last_spooled) {
                    tx.execute(
                        "UPDATE spool_progress SET last_id = ?1 WHERE id = 1 AND last_id < ?1",
                        [last],
                    )?;
                }
                state.flush(tx)?;
                Ok((summary, stored_dict))
            })
            .await?;
        if stored_dict {
            dicts.persisted();
        }
        if let (false, Some(last)) = (shared, last_spooled) {
            self.spool_saved_up_to(last);
        }
        self.processed_out(envelopes);
        Ok(summary)
    }
}

/// Serialises saves per project across processes (PostgreSQL): two processes must not
/// both create the issue for one new hash, nor fire one alert twice. Processing, the
/// expensive part, still runs everywhere at once; locks are taken in project order, so
/// they cannot deadlock.
fn lock_projects(tx: &Db, batch: &[ProcessedEnvelope]) -> Result<()> {
    let mut projects: Vec<i64> = batch.iter().map(|e| e.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    for p in projects {
        tx.query_row(
            "SELECT pg_advisory_xact_lock(?1)",
            [SAVE_LOCK_SPACE + p],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// Takes the save lock of the project owning `issue_id` (PostgreSQL; SQLite has one
/// writer anyway), for changes that move events or hashes between issues: a save in
/// another process must see them whole, before or after.
pub(crate) fn lock_issue_project(tx: &Db, issue_id: i64) -> Result<()> {
    if tx.dialect() == crate::db::Dialect::Postgres {
        tx.query_row(
            "SELECT pg_advisory_xact_lock(?1 + project_id) FROM issues WHERE id = ?2",
            params![SAVE_LOCK_SPACE, issue_id],
            |_| Ok(()),
        )
        .optional()?;
    }
    Ok(())
}

/// Advisory lock keys of project saves (kept apart from other advisory locks).
const SAVE_LOCK_SPACE: i64 = 0x6275_6700_0000_0000;

/// What a batch save carries from one event to the next: the projects' alert rules, and
/// the counters nothing reads before the batch commits, summed so that each distinct
/// (issue, hour) and (issue, tag value) is written once per batch rather than per event.
/// Its maps hash with foldhash, randomly seeded per map, not SipHash (7 % of the saving
/// thread's time).
#[derive(Default)]
struct BatchState<'a> {
    rules: crate::alerts::RuleCache,
    /// Grouping hashes known to be stored, with their issue: a batch's events mostly
    /// belong to a few issues, whose hashes need neither a lookup nor an insert again.
    hashes: foldhash::HashMap<(i64, &'a str), i64>,
    /// Releases stored by this batch, with the earliest and latest times seen since, and
    /// environments stored by it: the first event of each writes it (processing of later
    /// events may read it), the others only widen the times, written once at the end.
    releases: foldhash::HashMap<(i64, &'a str), (f64, f64)>,
    environments: foldhash::HashSet<(i64, &'a str)>,
    hourly: foldhash::HashMap<(i64, i64), i64>,
    tags: foldhash::HashMap<(i64, &'a str, &'a str), (i64, f64, f64)>,
    /// Events per project and primary grouping hash.
    hash_events: foldhash::HashMap<(i64, &'a str), i64>,
    /// Issues that events of this batch joined.
    issues: foldhash::HashMap<i64, IssueTally<'a>>,
}

/// What a batch's events changed of one issue, written once when the batch ends (or before
/// an alert reads the issue): an issue row and its four indexes rewritten per event were
/// the costliest part of a save.
#[derive(Default)]
struct IssueTally<'a> {
    /// Known to be unresolved: nothing in the batch can change that, so later events need
    /// not read its status again.
    unresolved: bool,
    seen: i64,
    users: i64,
    /// Earliest and latest event times.
    span: Option<(f64, f64)>,
    /// The latest event joining the issue (not creating it), whose title, culprit, level
    /// and metadata the issue takes, and the latest release among them.
    latest: Option<&'a ProcessedEvent>,
    release: Option<&'a str>,
    /// Events by arrival minute.
    minutes: Vec<(i64, i64)>,
}

impl<'a> IssueTally<'a> {
    fn add(&mut self, ev: &'a ProcessedEvent, joined: bool, new_user: bool) {
        let t = ev.timestamp;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        self.users += i64::from(new_user);
        if joined {
            self.seen += 1;
            self.latest = Some(ev);
            self.release = ev.release.as_deref().or(self.release);
        }
        let minute = (ev.received / 60.0).floor() as i64;
        match self.minutes.iter_mut().find(|(m, _)| *m == minute) {
            Some((_, n)) => *n += 1,
            None => self.minutes.push((minute, 1)),
        }
    }

    /// Writes what is held back and starts over (keeping what is known of the status).
    fn write(&mut self, tx: &Db, issue_id: i64) -> Result<()> {
        if self.seen > 0 || self.users > 0 {
            let latest = self.latest;
            tx.prepare_cached(
                "UPDATE issues SET times_seen = times_seen + ?2, user_count = user_count + ?3,
                   first_seen = LEAST(first_seen, ?4), last_seen = GREATEST(last_seen, ?5),
                   title = COALESCE(?6, title), culprit = COALESCE(?7, culprit), level = COALESCE(?8, level),
                   metadata = COALESCE(?9, metadata), last_release = COALESCE(?10, last_release)
                 WHERE id = ?1",
            )?
            .execute(params![
                issue_id,
                self.seen,
                self.users,
                self.span.map(|s| s.0),
                self.span.map(|s| s.1),
                latest.map(|e| &e.title),
                latest.map(|e| &e.culprit),
                latest.map(|e| &e.level),
                latest.map(|e| e.metadata.to_string()),
                self.release
            ])?;
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO issue_minutely (issue_id, minute, count) VALUES (?1, ?2, ?3) ON CONFLICT (issue_id, minute) DO UPDATE SET count = issue_minutely.count + excluded.count",
        )?;
        for &(minute, n) in &self.minutes {
            stmt.execute(params![issue_id, minute, n])?;
        }
        *self = IssueTally {
            unresolved: self.unresolved,
            ..IssueTally::default()
        };
        Ok(())
    }
}

impl BatchState<'_> {
    fn flush(self, tx: &Db) -> Result<()> {
        let mut issues: Vec<_> = self.issues.into_iter().collect();
        issues.sort_unstable_by_key(|(id, _)| *id);
        for (id, mut tally) in issues {
            tally.write(tx, id)?;
        }
        for ((pid, version), (first, last)) in self.releases {
            upsert_release(tx, pid, version, first, last)?;
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO issue_hourly (issue_id, hour, count) VALUES (?1, ?2, ?3) ON CONFLICT (issue_id, hour) DO UPDATE SET count = issue_hourly.count + excluded.count",
        )?;
        for ((issue, hour), n) in self.hourly {
            stmt.execute(params![issue, hour, n])?;
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (issue_id, key, value) DO UPDATE SET count = issue_tags.count + excluded.count, first_seen = LEAST(issue_tags.first_seen, excluded.first_seen),
               last_seen = GREATEST(issue_tags.last_seen, excluded.last_seen)",
        )?;
        for ((issue, k, v), (n, first, last)) in self.tags {
            stmt.execute(params![issue, k, v, n, first, last])?;
        }
        let mut hashes: Vec<_> = self.hash_events.into_iter().collect();
        hashes.sort_unstable();
        let mut stmt = tx.prepare_cached(
            "UPDATE grouphashes SET events = events + ?3 WHERE project_id = ?1 AND hash = ?2",
        )?;
        for ((pid, hash), n) in hashes {
            stmt.execute(params![pid, hash, n])?;
        }
        Ok(())
    }
}

fn save_envelope<'a>(
    tx: &Db,
    env: &'a ProcessedEnvelope,
    summary: &mut SaveSummary,
    state: &mut BatchState<'a>,
) -> Result<()> {
    let pid = env.project_id;
    for (record, blobs) in env.records.records.iter().zip(&env.blobs) {
        summary.records += 1;
        match record {
            Record::Event(ev) => match save_event(tx, pid, ev, blobs, state)? {
                Some(saved) => {
                    let issue = saved.issue_id;
                    let BatchState { rules, issues, .. } = &mut *state;
                    let mut settle = || match issues.get_mut(&issue) {
                        Some(tally) => tally.write(tx, issue),
                        None => Ok(()),
                    };
                    crate::alerts::evaluate(tx, rules, pid, ev, &saved, &mut settle)?;
                    summary.events.push(saved);
                }
                None => summary.duplicates += 1,
            },
            Record::Transaction(t) => {
                tx.prepare_cached(
                    "INSERT INTO transactions (project_id, event_id, trace_id, span_id, name, op, status, start, finish, release, environment, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    pid, t.event_id, t.trace_id, t.span_id, t.name, t.op, t.status, t.start, t.end, t.release,
                    t.environment, blobs.payload
                ])?;
                note_release(
                    tx,
                    state,
                    pid,
                    t.release.as_deref(),
                    t.environment.as_deref(),
                    t.end,
                )?;
            }
            Record::Spans(spans) => {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, segment_id, name, op, status, start, finish, is_segment, release, environment, data, vitals)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )?;
                for s in spans {
                    stmt.execute(params![
                        pid,
                        s.trace_id,
                        s.span_id,
                        s.parent_span_id,
                        s.segment_id,
                        s.name,
                        s.op,
                        s.status,
                        s.start,
                        s.end,
                        s.is_segment,
                        s.release,
                        s.environment,
                        s.data.to_string(),
                        s.vitals.as_ref().map(Value::to_string)
                    ])?;
                }
            }
            Record::Session(s) => {
                // Updates for one session replace earlier state; the highest `seq` wins.
                tx.prepare_cached(
                    "INSERT INTO sessions (project_id, sid, did, release, environment, status, errors, init, started, timestamp, duration, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (project_id, sid) DO UPDATE SET
                       did = COALESCE(excluded.did, sessions.did), status = excluded.status, errors = GREATEST(sessions.errors, excluded.errors),
                       init = GREATEST(sessions.init, excluded.init), timestamp = excluded.timestamp,
                       duration = COALESCE(excluded.duration, sessions.duration), seq = excluded.seq
                     WHERE excluded.seq >= sessions.seq",
                )?
                .execute(params![
                    pid, s.sid, s.did, s.release, s.environment, s.status, s.errors, s.init, s.started, s.timestamp,
                    s.duration, s.seq
                ])?;
                note_release(
                    tx,
                    state,
                    pid,
                    Some(&s.release),
                    s.environment.as_deref(),
                    s.timestamp,
                )?;
            }
            Record::SessionAggregates(aggs) => {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO session_aggregates (project_id, release, environment, started, exited, errored, abnormal, crashed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (project_id, release, environment, started) DO UPDATE SET exited = session_aggregates.exited + excluded.exited, errored = session_aggregates.errored + excluded.errored,
                       abnormal = session_aggregates.abnormal + excluded.abnormal, crashed = session_aggregates.crashed + excluded.crashed",
                )?;
                for a in aggs {
                    stmt.execute(params![
                        pid,
                        a.release,
                        a.environment.clone().unwrap_or_default(),
                        a.started,
                        a.exited,
                        a.errored,
                        a.abnormal,
                        a.crashed
                    ])?;
                    note_release(
                        tx,
                        state,
                        pid,
                        Some(&a.release),
                        a.environment.as_deref(),
                        a.started,
                    )?;
                }
            }
            Record::CheckIn(c) => {
                tx.prepare_cached(
                    "INSERT INTO check_ins (project_id, check_in_id, monitor_slug, status, duration, release, environment, timestamp, trace_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    pid, c.check_in_id, c.monitor_slug, c.status, c.duration, c.release, c.environment, c.timestamp,
                    c.trace_id
                ])?;
                tx.prepare_cached(
                    "INSERT INTO monitors (project_id, slug, config, last_check_in, last_status) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (project_id, slug) DO UPDATE SET config = COALESCE(excluded.config, monitors.config),
                       last_check_in = excluded.last_check_in, last_status = excluded.last_status",
                )?
                .execute(params![
                    pid,
                    c.monitor_slug,
                    c.monitor_config.as_ref().map(Value::to_string),
                    c.timestamp,
                    c.status
                ])?;
            }
            Record::Feedback(f) => {
                tx.prepare_cached(
                    "INSERT INTO feedback (project_id, kind, event_id, associated_event_id, name, email, message, url, timestamp, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    pid, f.kind, f.event_id, f.associated_event_id, f.name, f.email, f.message, f.url, f.timestamp,
                    blobs.payload
                ])?;
            }
            Record::Attachment(a) => {
                tx.prepare_cached(
                    "INSERT INTO attachments (project_id, event_id, filename, content_type, attachment_type, size, data, received)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    pid,
                    a.event_id,
                    a.filename,
                    a.content_type,
                    a.attachment_type,
                    decompressed_len(&blobs.payload),
                    blobs.payload,
                    env.received
                ])?;
            }
            Record::Logs(logs) => {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO logs (project_id, timestamp, trace_id, span_id, level, body, attributes, release, environment)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for l in logs {
                    stmt.execute(params![
                        pid,
                        l.timestamp,
                        l.trace_id,
                        l.span_id,
                        l.level,
                        l.body,
                        l.attributes.to_string(),
                        l.release,
                        l.environment
                    ])?;
                }
            }
            Record::ClientReport(items) => {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO client_reports (project_id, reason, category, quantity, received) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for d in items {
                    stmt.execute(params![pid, d.reason, d.category, d.quantity, env.received])?;
                }
            }
            Record::Raw {
                ty,
                content_type,
                truncated,
                ..
            } => {
                tx.prepare_cached(
                    "INSERT INTO raw_items (project_id, type, event_id, content_type, truncated, received, payload)
                     VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![pid, ty, content_type, truncated, env.received, blobs.payload])?;
            }
        }
    }
    Ok(())
}

fn note_release<'a>(
    tx: &Db,
    state: &mut BatchState<'a>,
    pid: i64,
    release: Option<&'a str>,
    env: Option<&'a str>,
    ts: f64,
) -> Result<()> {
    if let Some(r) = release {
        match state.releases.get_mut(&(pid, r)) {
            Some((first, last)) => {
                *first = first.min(ts);
                *last = last.max(ts);
            }
            None => {
                upsert_release(tx, pid, r, ts, ts)?;
                state.releases.insert((pid, r), (ts, ts));
            }
        }
    }
    if let Some(e) = env
        && state.environments.insert((pid, e))
    {
        tx.prepare_cached(
            "INSERT INTO environments (project_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![pid, e])?;
    }
    Ok(())
}

fn upsert_release(tx: &Db, pid: i64, version: &str, first: f64, last: f64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO releases (project_id, version, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, version) DO UPDATE SET first_seen = LEAST(releases.first_seen, excluded.first_seen), last_seen = GREATEST(releases.last_seen, excluded.last_seen)",
    )?
    .execute(params![pid, version, first, last])?;
    Ok(())
}

/// Search-only keys recorded alongside an event's tags, so `user.email:` and friends can
/// be filtered without scanning events.
pub(crate) fn search_keys(user: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(user) = user {
        for (field, key) in [
            ("id", "user.id"),
            ("email", "user.email"),
            ("username", "user.username"),
            ("ip_address", "user.ip"),
        ] {
            if let Some(v) = user.get(field).and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            }) {
                out.push((key.to_owned(), v));
            }
        }
    }
    out
}

/// The original size of a compressed blob (recorded in its frame header).
fn decompressed_len(blob: &[u8]) -> i64 {
    zstd::zstd_safe::get_frame_content_size(blob)
        .ok()
        .flatten()
        .unwrap_or(0) as i64
}

fn save_event<'a>(
    tx: &Db,
    pid: i64,
    ev: &'a ProcessedEvent,
    blobs: &'a Blobs,
    state: &mut BatchState<'a>,
) -> Result<Option<SavedEvent>> {
    // SDKs retry; an event id already stored is a duplicate, not a second occurrence.
    let exists: Option<i64> = tx
        .prepare_cached("SELECT id FROM events WHERE project_id = ?1 AND event_id = ?2")?
        .query_row(params![pid, ev.event_id], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Ok(None);
    }
    // The first hash, in order, that some issue owns decides the issue.
    let mut issue_id: Option<i64> = None;
    for h in &ev.hashes {
        if let Some(&id) = state.hashes.get(&(pid, h.as_str())) {
            issue_id = Some(id);
            break;
        }
        let stored = tx
            .prepare_cached("SELECT issue_id FROM grouphashes WHERE project_id = ?1 AND hash = ?2")?
            .query_row(params![pid, h], |r| r.get::<_, i64>(0))
            .optional()?;
        if let Some(id) = stored {
            state.hashes.insert((pid, h.as_str()), id);
            issue_id = Some(id);
            break;
        }
    }
    let new_issue = issue_id.is_none();
    let issue_id = match issue_id {
        Some(id) => id,
        None => create_issue(tx, pid, ev)?,
    };
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO grouphashes (project_id, hash, issue_id, config) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?;
        for h in &ev.hashes {
            if state.hashes.contains_key(&(pid, h.as_str())) {
                continue;
            }
            if stmt.execute(params![pid, h, issue_id, bugbane_core::GROUPING_CONFIG])? == 1 {
                state.hashes.insert((pid, h.as_str()), issue_id);
            }
        }
    }
    let primary_hash = ev.hashes.first().map_or("", String::as_str);
    tx.prepare_cached(
        "INSERT INTO events (project_id, event_id, issue_id, timestamp, received, level, release, environment, user_key, trace_id, primary_hash, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        pid,
        ev.event_id,
        issue_id,
        ev.timestamp,
        ev.received,
        ev.level,
        ev.release,
        ev.environment,
        ev.user_key,
        ev.trace_id,
        primary_hash,
        blobs.payload
    ])?;

    // Counters.
    let new_user = match &ev.user_key {
        Some(u) => {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO issue_users (issue_id, user_key, last_seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![issue_id, u, ev.received])?
                > 0;
            if !inserted {
                tx.prepare_cached(
                    "UPDATE issue_users SET last_seen = GREATEST(last_seen, ?3) WHERE issue_id = ?1 AND user_key = ?2",
                )?
                .execute(params![issue_id, u, ev.received])?;
            }
            inserted
        }
        None => false,
    };
    // By arrival minute (for frequency alerts: a client's clock cannot skew them), and the
    // issue's own counters: held back until the batch ends.
    let tally = state.issues.entry(issue_id).or_default();
    tally.add(ev, !new_issue, new_user);
    // Issues are created unresolved.
    tally.unresolved |= new_issue;
    let hour = (ev.timestamp / 3600.0).floor() as i64;
    *state.hourly.entry((issue_id, hour)).or_default() += 1;
    *state.hash_events.entry((pid, primary_hash)).or_default() += 1;
    for (k, v) in ev.tags.iter().chain(blobs.search_keys.iter()) {
        let e = state
            .tags
            .entry((issue_id, k.as_str(), v.as_str()))
            .or_insert((0, ev.timestamp, ev.timestamp));
        e.0 += 1;
        e.1 = e.1.min(ev.timestamp);
        e.2 = e.2.max(ev.timestamp);
    }
    note_release(
        tx,
        state,
        pid,
        ev.release.as_deref(),
        ev.environment.as_deref(),
        ev.timestamp,
    )?;
    let transition = if new_issue {
        Transition::None
    } else {
        apply_lifecycle(tx, pid, issue_id, ev, state)?
    };
    Ok(Some(SavedEvent {
        event_id: ev.event_id.clone(),
        issue_id,
        new_issue,
        regressed: transition == Transition::Regressed,
        unignored: transition == Transition::Unignored,
    }))
}

fn create_issue(tx: &Db, pid: i64, ev: &ProcessedEvent) -> Result<i64> {
    let short_id: i64 = tx
        .prepare_cached("UPDATE projects SET next_short_id = next_short_id + 1 WHERE id = ?1 RETURNING next_short_id - 1")?
        .query_row([pid], |r| r.get(0))?;
    let id: i64 = tx
        .prepare_cached(
        "INSERT INTO issues (project_id, short_id, title, culprit, level, type, platform, metadata, status, substatus,
           first_seen, last_seen, times_seen, user_count, first_release, last_release)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'unresolved', 'new', ?9, ?9, 1, 0, ?10, ?10) RETURNING id",
    )?
    .query_row(params![
        pid,
        short_id,
        ev.title,
        ev.culprit,
        ev.level,
        ev.ty,
        ev.platform,
        ev.metadata.to_string(),
        ev.timestamp,
        ev.release
    ], |r| r.get(0))?;
    record_activity(tx, id, "first_seen", &json!({"release": ev.release}), None)?;
    Ok(id)
}

pub(crate) fn record_activity(
    tx: &Db,
    issue_id: i64,
    ty: &str,
    data: &Value,
    user: Option<i64>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (issue_id, type, data, user_id, created) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        issue_id,
        ty,
        data.to_string(),
        user,
        crate::store::now()
    ])?;
    Ok(())
}

/// Applies the issue lifecycle to an event joining an existing issue; returns what changed.
fn apply_lifecycle(
    tx: &Db,
    pid: i64,
    issue_id: i64,
    ev: &ProcessedEvent,
    state: &mut BatchState<'_>,
) -> Result<Transition> {
    let tally = state.issues.entry(issue_id).or_default();
    if tally.unresolved {
        return Ok(Transition::None);
    }
    let (status, resolution, ignore, times_seen, users): (String, Option<String>, Option<String>, i64, i64) = tx
        .prepare_cached("SELECT status, resolution, ignore_condition, times_seen, user_count FROM issues WHERE id = ?1")?
        .query_row([issue_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    // The stored counts lack what the batch holds back.
    let (times_seen, users) = (times_seen + tally.seen, users + tally.users);
    let status = Status::parse(&status).unwrap_or(Status::Unresolved);
    if status == Status::Unresolved {
        tally.unresolved = true;
        return Ok(Transition::None);
    }
    let state = IssueState {
        status,
        resolution: resolution.and_then(|r| serde_json::from_str(&r).ok()),
        ignore: ignore.and_then(|r| serde_json::from_str(&r).ok()),
    };
    let mut first_seen: HashMap<String, f64> = HashMap::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT version, first_seen FROM releases WHERE project_id = ?1")?;
        let rows = stmt.query_map([pid], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?;
        for row in rows {
            let (v, t) = row?;
            first_seen.insert(v, t);
        }
    }
    let cmp = |a: &str, b: &str| {
        lifecycle::compare_releases(
            a,
            b,
            *first_seen.get(a).unwrap_or(&f64::MAX),
            *first_seen.get(b).unwrap_or(&f64::MAX),
        )
    };
    let transition = lifecycle::on_event(
        &state,
        ev.release.as_deref(),
        ev.received,
        times_seen as u64,
        users as u64,
        &cmp,
    );
    if transition != Transition::None {
        tally.unresolved = true;
    }
    match transition {
        Transition::None => {}
        Transition::Regressed => {
            tx.prepare_cached(
                "UPDATE issues SET status = 'unresolved', substatus = 'regressed', resolution = NULL, resolved_at = NULL WHERE id = ?1",
            )?
            .execute([issue_id])?;
            record_activity(
                tx,
                issue_id,
                "set_regression",
                &json!({"version": ev.release, "event_id": ev.event_id}),
                None,
            )?;
        }
        Transition::Unignored => {
            tx.prepare_cached(
                "UPDATE issues SET status = 'unresolved', substatus = 'ongoing', ignore_condition = NULL WHERE id = ?1",
            )?
            .execute([issue_id])?;
            record_activity(
                tx,
                issue_id,
                "set_unresolved",
                &json!({"reason": "ignore condition met"}),
                None,
            )?;
        }
    }
    Ok(transition)
}

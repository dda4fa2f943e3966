//! Payload compression.
//!
//! Events of one application share most of their text (keys, frame paths, source lines,
//! breadcrumb messages), but each is compressed alone, where zstd cannot see that. So
//! after the first [`SAMPLES`] events a dictionary is trained from them; later payloads
//! are compressed with it, which makes them several times smaller and faster to
//! compress. Samples are capped in bytes, not only in number, so that training (which
//! needs the samples and about as much again) stays a small, short peak in memory. A
//! frame records the id of the dictionary it needs; dictionaries are stored
//! in the database, written in the same transaction as the first events that use one.
//! Compression contexts are kept per thread: creating one per call cost more than
//! compressing a typical event.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::db::{Db, OptionalExtension};
use serde_json::Value;
use zstd::zstd_safe::{CParameter, DictAttachPref};

use crate::error::{Error, Result};
use crate::json_text::JsonText;

const LEVEL: i32 = 3;
/// Payloads collected before a dictionary is trained, at most...
const SAMPLES: usize = 2000;
/// ...and at most this many bytes of them: about a hundred times the dictionary's size,
/// as zstd advises.
const SAMPLE_BYTES: usize = 100 * DICT_BYTES;
/// Dictionary size: large enough for many stack traces' worth of shared text.
const DICT_BYTES: usize = 112 * 1024;
/// The largest JSON buffer a thread keeps between payloads.
const JSON_BUFFER_KEPT: usize = 256 * 1024;

/// The dictionary new payloads are compressed with.
struct Current {
    id: u32,
    data: Arc<Vec<u8>>,
    persisted: bool,
}

/// One database's dictionaries: the current one, samples towards the first one, and every
/// one loaded for decompression.
#[derive(Default)]
pub(crate) struct Dictionaries {
    current: RwLock<Option<Current>>,
    samples: Mutex<Samples>,
    decoders: RwLock<HashMap<u32, Arc<Vec<u8>>>>,
}

/// Payloads towards the first dictionary, end to end, as zstd's trainer takes them.
#[derive(Default)]
struct Samples {
    data: Vec<u8>,
    sizes: Vec<usize>,
    /// Set once the samples went to training: later payloads are not collected.
    taken: bool,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(u32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// The JSON text being compressed, reused: grown once instead of doubling from empty
    /// (with a copy at each step) for every payload.
    static JSON: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compresses without a dictionary (spooled envelopes, attachments, raw items).
pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    compress_with(bytes, None)
}

fn compress_with(bytes: &[u8], dict: Option<(u32, &[u8])>) -> Vec<u8> {
    let want = dict.map(|(id, _)| id).unwrap_or(0);
    COMPRESSOR
        .with(|c| {
            let mut slot = c.borrow_mut();
            if slot.as_ref().is_none_or(|(id, _)| *id != want) {
                let made = match dict {
                    // Payloads over a few KiB would get a copy of the dictionary's
                    // match tables per call (over a third of compression time); attached,
                    // the tables are read where they are.
                    Some((id, d)) => zstd::bulk::Compressor::with_dictionary(LEVEL, d)
                        .and_then(|mut c| {
                            c.set_parameter(CParameter::ForceAttachDict(
                                DictAttachPref::ForceAttach,
                            ))?;
                            Ok(c)
                        })
                        .ok()
                        .map(|c| (id, c)),
                    None => zstd::bulk::Compressor::new(LEVEL).ok().map(|c| (0, c)),
                };
                *slot = made;
            }
            slot.as_mut().and_then(|(_, c)| c.compress(bytes).ok())
        })
        .unwrap_or_else(|| zstd::bulk::compress(bytes, LEVEL).unwrap_or_else(|_| bytes.to_vec()))
}

impl Dictionaries {
    /// Compresses an event-like payload, with the trained dictionary once there is one.
    pub(crate) fn compress_json(&self, v: &impl JsonText) -> Vec<u8> {
        JSON.with_borrow_mut(|raw| {
            raw.clear();
            v.write_json(raw);
            let current = self
                .current
                .read()
                .ok()
                .and_then(|c| c.as_ref().map(|c| (c.id, c.data.clone())));
            let compressed = match current {
                Some((id, data)) => compress_with(raw, Some((id, &data))),
                None => {
                    self.collect_sample(raw);
                    compress(raw)
                }
            };
            // A rare huge payload does not stay resident on every thread.
            if raw.capacity() > JSON_BUFFER_KEPT {
                *raw = Vec::new();
            }
            compressed
        })
    }

    fn collect_sample(&self, raw: &[u8]) {
        let Ok(mut buf) = self.samples.lock() else {
            return;
        };
        if buf.taken {
            return;
        }
        if buf.data.capacity() == 0 {
            buf.data.reserve_exact(SAMPLE_BYTES);
        }
        let room = SAMPLE_BYTES.saturating_sub(buf.data.len());
        let sample = &raw[..raw.len().min(room)];
        buf.data.extend_from_slice(sample);
        buf.sizes.push(sample.len());
        if buf.sizes.len() < SAMPLES && buf.data.len() < SAMPLE_BYTES {
            return;
        }
        let Samples { data, sizes, .. } = std::mem::take(&mut *buf);
        buf.taken = true;
        drop(buf);
        match zstd::dict::from_continuous(&data, &sizes, DICT_BYTES) {
            Ok(dict) => {
                let id = zstd::zstd_safe::get_dict_id(&dict)
                    .map(|n| n.get())
                    .unwrap_or(0);
                if id != 0
                    && let Ok(mut c) = self.current.write()
                    && c.is_none()
                {
                    tracing::info!(
                        dict.id = id,
                        size_bytes = dict.len(),
                        "trained a compression dictionary"
                    );
                    self.remember_decoder(id, Arc::new(dict.clone()));
                    *c = Some(Current {
                        id,
                        data: Arc::new(dict),
                        persisted: false,
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "training a compression dictionary failed");
                // Collect afresh and try again.
                if let Ok(mut buf) = self.samples.lock() {
                    buf.taken = false;
                }
            }
        }
    }

    fn remember_decoder(&self, id: u32, data: Arc<Vec<u8>>) {
        if let Ok(mut d) = self.decoders.write() {
            d.insert(id, data);
        }
    }

    /// Called in every transaction that saves compressed payloads: stores the current
    /// dictionary if it is not stored yet, so no committed payload refers to a lost one.
    pub(crate) fn persist(&self, tx: &Db) -> Result<bool> {
        let pending = self.current.read().ok().and_then(|c| {
            c.as_ref()
                .filter(|c| !c.persisted)
                .map(|c| (c.id, c.data.clone()))
        });
        let Some((id, data)) = pending else {
            return Ok(false);
        };
        tx.execute(
            "INSERT INTO dictionaries (dict_id, created, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            rusqlite::params![i64::from(id), crate::store::now(), data.as_slice()],
        )?;
        Ok(true)
    }

    /// Marks the current dictionary as stored, after the transaction that stored it committed.
    pub(crate) fn persisted(&self) {
        if let Ok(mut c) = self.current.write()
            && let Some(cur) = c.as_mut()
        {
            cur.persisted = true;
        }
    }

    /// Loads the newest stored dictionary at start, so compression carries on with it.
    pub(crate) fn load(&self, conn: &Db) -> Result<()> {
        let row: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT dict_id, data FROM dictionaries ORDER BY created DESC LIMIT 1",
                rusqlite::params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, data)) = row {
            let data = Arc::new(data);
            self.remember_decoder(id as u32, data.clone());
            if let Ok(mut c) = self.current.write() {
                *c = Some(Current {
                    id: id as u32,
                    data,
                    persisted: true,
                });
            }
        }
        Ok(())
    }

    fn decoder_dict(&self, conn: Option<&Db>, id: u32) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.decoders.read().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(d);
        }
        let conn = conn
            .ok_or_else(|| Error::Corrupt(format!("compression dictionary {id} is not loaded")))?;
        let data: Vec<u8> = conn
            .query_row(
                "SELECT data FROM dictionaries WHERE dict_id = ?1",
                [i64::from(id)],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| Error::Corrupt(format!("compression dictionary {id} is missing")))?;
        let data = Arc::new(data);
        self.remember_decoder(id, data.clone());
        Ok(data)
    }

    /// Decompresses a blob, loading its dictionary through `conn` when needed.
    pub(crate) fn decompress_in(&self, conn: Option<&Db>, bytes: &[u8]) -> Result<Vec<u8>> {
        let dict_id = zstd::zstd_safe::get_dict_id_from_frame(bytes)
            .map(|n| n.get())
            .unwrap_or(0);
        let size = zstd::zstd_safe::get_frame_content_size(bytes)
            .ok()
            .flatten()
            .filter(|n| *n <= 1 << 30);
        let dict = if dict_id != 0 {
            Some(self.decoder_dict(conn, dict_id)?)
        } else {
            None
        };
        match (size, dict) {
            (Some(n), dict) => DECOMPRESSOR.with(|d| {
                let mut slot = d.borrow_mut();
                let dec = match &dict {
                    Some(data) => zstd::bulk::Decompressor::with_dictionary(data).ok(),
                    None => slot.take().or_else(|| zstd::bulk::Decompressor::new().ok()),
                };
                let Some(mut dec) = dec else {
                    return Err(Error::Corrupt("no zstd decompressor".into()));
                };
                let out = dec
                    .decompress(bytes, n as usize)
                    .map_err(|e| Error::Corrupt(e.to_string()));
                if dict.is_none() {
                    *slot = Some(dec);
                }
                out
            }),
            (None, None) => {
                zstd::stream::decode_all(bytes).map_err(|e| Error::Corrupt(e.to_string()))
            }
            (None, Some(data)) => {
                let mut out = Vec::new();
                let mut dec = zstd::stream::read::Decoder::with_dictionary(bytes, &data)
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                std::io::Read::read_to_end(&mut dec, &mut out)
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                Ok(out)
            }
        }
    }

    pub(crate) fn decompress(&self, conn: &Db, bytes: &[u8]) -> Result<Vec<u8>> {
        self.decompress_in(Some(conn), bytes)
    }

    pub(crate) fn decompress_json(&self, conn: &Db, bytes: &[u8]) -> Result<Value> {
        let raw = self.decompress_in(Some(conn), bytes)?;
        serde_json::from_slice(&raw).map_err(|e| Error::Corrupt(e.to_string()))
    }
}

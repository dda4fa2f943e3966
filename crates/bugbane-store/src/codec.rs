//! Payload compression. Event payloads are JSON with much repetition (frame paths,
//! context lines, breadcrumbs), so zstd at a low level shrinks them several times while
//! costing little CPU. Compression contexts are kept per thread: creating one per call
//! (and zeroing its tables) cost more than compressing a typical event.

use std::cell::RefCell;

use serde_json::Value;

use crate::error::{Error, Result};

const LEVEL: i32 = 3;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    COMPRESSOR
        .with(|c| {
            let mut slot = c.borrow_mut();
            if slot.is_none() {
                *slot = zstd::bulk::Compressor::new(LEVEL).ok();
            }
            slot.as_mut().and_then(|c| c.compress(bytes).ok())
        })
        .unwrap_or_else(|| zstd::bulk::compress(bytes, LEVEL).unwrap_or_else(|_| bytes.to_vec()))
}

pub(crate) fn decompress(bytes: &[u8]) -> Result<Vec<u8>> {
    // Frames written by `compress` record their size, so the output is allocated once.
    let size = zstd::zstd_safe::get_frame_content_size(bytes)
        .ok()
        .flatten();
    match size {
        Some(n) if n <= 1 << 30 => DECOMPRESSOR.with(|d| {
            let mut slot = d.borrow_mut();
            if slot.is_none() {
                *slot = zstd::bulk::Decompressor::new().ok();
            }
            match slot.as_mut() {
                Some(d) => d
                    .decompress(bytes, n as usize)
                    .map_err(|e| Error::Corrupt(e.to_string())),
                None => zstd::stream::decode_all(bytes).map_err(|e| Error::Corrupt(e.to_string())),
            }
        }),
        _ => zstd::stream::decode_all(bytes).map_err(|e| Error::Corrupt(e.to_string())),
    }
}

pub(crate) fn compress_json(v: &impl serde::Serialize) -> Vec<u8> {
    compress(&serde_json::to_vec(v).unwrap_or_default())
}

pub(crate) fn decompress_json(bytes: &[u8]) -> Result<Value> {
    let raw = decompress(bytes)?;
    serde_json::from_slice(&raw).map_err(|e| Error::Corrupt(e.to_string()))
}

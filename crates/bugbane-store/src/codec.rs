//! Payload compression. Event payloads are JSON with much repetition (frame paths,
//! context lines, breadcrumbs), so zstd at a low level shrinks them several times while
//! costing little CPU on the writer's hot path.

use serde_json::Value;

use crate::error::{Error, Result};

const LEVEL: i32 = 3;

pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, LEVEL).unwrap_or_else(|_| bytes.to_vec())
}

pub(crate) fn decompress(bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::stream::decode_all(bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(crate) fn compress_json(v: &impl serde::Serialize) -> Vec<u8> {
    compress(&serde_json::to_vec(v).unwrap_or_default())
}

pub(crate) fn decompress_json(bytes: &[u8]) -> Result<Value> {
    let raw = decompress(bytes)?;
    serde_json::from_slice(&raw).map_err(|e| Error::Corrupt(e.to_string()))
}

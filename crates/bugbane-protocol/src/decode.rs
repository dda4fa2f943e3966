//! Request body decoding (`Content-Encoding`) with a cap on the decoded size, so a small
//! compressed body cannot expand into gigabytes (a decompression bomb).

use std::borrow::Cow;
use std::io::Read;

use thiserror::Error;

/// Why a body could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported content encoding {0:?}")]
    Unsupported(String),
    #[error("body could not be decompressed ({0})")]
    Corrupt(&'static str),
    #[error("decompressed body exceeds {0} bytes")]
    TooLarge(usize),
}

/// Decodes `body` according to a `Content-Encoding` header value, refusing to produce more
/// than `limit` bytes. Identity bodies over the limit are refused too.
pub fn decode_body<'a>(
    encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let enc = encoding
        .and_then(|e| e.split(',').next())
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match enc.as_str() {
        // An empty header (sentry-ruby 5) and "utf-8" (an old sentry-java) mean identity.
        "" | "identity" | "utf-8" => {
            if body.len() > limit {
                Err(DecodeError::TooLarge(limit))
            } else {
                Ok(Cow::Borrowed(body))
            }
        }
        // The `bufread` decoders read the slice in place, without copying it through a buffer.
        "gzip" | "x-gzip" => read_capped(
            flate2::bufread::MultiGzDecoder::new(body),
            gzip_size_hint(body).min(limit),
            limit,
            "gzip",
        ),
        "deflate" => read_capped(flate2::bufread::ZlibDecoder::new(body), 0, limit, "deflate"),
        "br" => read_capped(
            brotli_decompressor::Decompressor::new(body, 4096),
            0,
            limit,
            "br",
        ),
        "zstd" => {
            let dec =
                zstd::stream::read::Decoder::new(body).map_err(|_| DecodeError::Corrupt("zstd"))?;
            read_capped(dec, 0, limit, "zstd")
        }
        other => Err(DecodeError::Unsupported(other.to_owned())),
    }
}

/// Decodes a legacy store body: JSON as is, or (very old SDKs) base64 of zlib-deflated
/// JSON. `None` when it is neither.
pub fn decode_store_body(body: &[u8], limit: usize) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let trimmed = body.trim_ascii_start();
    if trimmed.starts_with(b"{") {
        return Some(body.to_vec());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body.trim_ascii())
        .ok()?;
    let inflated = read_capped(
        flate2::bufread::ZlibDecoder::new(&raw[..]),
        0,
        limit,
        "deflate",
    )
    .ok()?;
    inflated
        .trim_ascii_start()
        .starts_with(b"{")
        .then(|| inflated.into_owned())
}

/// The decoded size a gzip body announces (its last member's trailer), bounded by what
/// deflate can expand the body to, so a forged trailer cannot reserve more than a real
/// bomb would produce. Only a capacity hint: the decoded length is still checked.
fn gzip_size_hint(body: &[u8]) -> usize {
    const MAX_DEFLATE_RATIO: usize = 1032;
    let announced = body
        .last_chunk::<4>()
        .map_or(0, |t| u32::from_le_bytes(*t) as usize);
    announced.min(body.len().saturating_mul(MAX_DEFLATE_RATIO))
}

/// Reads all of `reader`, refusing more than `limit` bytes. `capacity` is the size to
/// reserve up front (0 when unknown), which saves growing the buffer step by step.
fn read_capped<'a, R: Read>(
    reader: R,
    capacity: usize,
    limit: usize,
    name: &'static str,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    // One more byte than the content, so reading to the end finds it without growing.
    let mut out = Vec::with_capacity(capacity.saturating_add(1));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Corrupt(name))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"{\"event_id\":\"x\"}\n".repeat(10);
        assert_eq!(
            decode_body(Some("gzip"), &gzip(&data), 1 << 20)
                .expect("gzip")
                .as_ref(),
            &data[..]
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).expect("write");
        assert_eq!(
            decode_body(Some("deflate"), &z.finish().expect("zlib"), 1 << 20)
                .expect("deflate")
                .as_ref(),
            &data[..]
        );
        let zs = zstd::bulk::compress(&data, 3).expect("zstd");
        assert_eq!(
            decode_body(Some("zstd"), &zs, 1 << 20)
                .expect("zstd")
                .as_ref(),
            &data[..]
        );
        assert_eq!(
            decode_body(Some(""), &data, 1 << 20)
                .expect("identity")
                .as_ref(),
            &data[..]
        );
        assert_eq!(
            decode_body(Some("UTF-8"), &data, 1 << 20)
                .expect("utf-8")
                .as_ref(),
            &data[..]
        );
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            decode_body(Some("gzip"), &bomb, 1 << 20),
            Err(DecodeError::TooLarge(1 << 20))
        );
        assert_eq!(
            decode_body(Some("gzip"), b"not gzip", 1 << 20),
            Err(DecodeError::Corrupt("gzip"))
        );
        assert!(matches!(
            decode_body(Some("lzma"), b"x", 10),
            Err(DecodeError::Unsupported(_))
        ));
    }
}

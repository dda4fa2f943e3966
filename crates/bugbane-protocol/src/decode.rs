//! Request body decoding (`Content-Encoding`) with a cap on the decoded size, so a small
//! compressed body cannot expand into gigabytes (a decompression bomb).

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Read;

use thiserror::Error;

use crate::inflate::{Inflater, MemberError};

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
        "gzip" | "x-gzip" => gunzip(body, gzip_size_hint(body), limit).map(Cow::Owned),
        // The `bufread` decoders read the slice in place, without copying it through a buffer.
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

thread_local! {
    /// One decompressor per thread, allocated once instead of once per body.
    static INFLATER: RefCell<Option<Inflater>> = RefCell::new(Inflater::new());
}

/// Inflates a gzip body of one or more members (RFC 1952), each checked against its
/// trailer's CRC-32 and size, refusing more than `limit` bytes of output.
///
/// The output starts at `capacity` (the announced size) plus a little, enough for a body
/// of one member or of a short member before a long one; a member that does not fit is
/// inflated again into twice the room, up to one byte more than `limit`.
fn gunzip(body: &[u8], capacity: usize, limit: usize) -> Result<Vec<u8>, DecodeError> {
    const CORRUPT: DecodeError = DecodeError::Corrupt("gzip");
    // One more byte than allowed, so that output over the limit is seen.
    let ceiling = limit.saturating_add(1);
    let mut out = vec![0u8; ceiling.min(capacity.saturating_add(4096))];
    let mut len = 0;
    let mut rest = body;
    INFLATER.with_borrow_mut(|inflater| {
        let inflater = inflater.as_mut().ok_or(CORRUPT)?;
        loop {
            match inflater.member(rest, &mut out[len..]) {
                Ok((read, written)) => {
                    rest = &rest[read..];
                    len += written;
                    if len > limit {
                        return Err(DecodeError::TooLarge(limit));
                    }
                    if rest.is_empty() {
                        out.truncate(len);
                        return Ok(out);
                    }
                }
                Err(MemberError::NoRoom) if out.len() < ceiling => {
                    let grown = ceiling.min(out.len().saturating_mul(2).max(len + 4096));
                    out.resize(grown, 0);
                }
                Err(MemberError::NoRoom) => return Err(DecodeError::TooLarge(limit)),
                Err(MemberError::Corrupt) => return Err(CORRUPT),
            }
        }
    })
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
    fn gzip_members_and_header_fields_are_read() {
        let data = b"{\"event_id\":\"x\"}\n".repeat(500);
        let mut e = flate2::GzBuilder::new()
            .filename("event.json")
            .comment("sent by an SDK")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        e.write_all(&data[..3000]).expect("write");
        let mut body = e.finish().expect("finish");
        body.extend_from_slice(&gzip(&data[3000..]));
        // Twice on one thread: the inflate state is reused.
        for _ in 0..2 {
            assert_eq!(
                decode_body(Some("gzip"), &body, 1 << 20)
                    .expect("gzip")
                    .as_ref(),
                &data[..]
            );
        }
    }

    #[test]
    fn a_long_member_before_a_short_one_is_read_whole() {
        // The size announced at the end is the short member's: the output must grow.
        let data = b"{\"event_id\":\"x\"}\n".repeat(5000);
        let mut body = gzip(&data[..data.len() - 10]);
        body.extend_from_slice(&gzip(&data[data.len() - 10..]));
        assert_eq!(
            decode_body(Some("gzip"), &body, 1 << 20)
                .expect("gzip")
                .as_ref(),
            &data[..]
        );
        // Exactly the limit decodes; one byte less refuses.
        let n = data.len();
        assert!(decode_body(Some("gzip"), &body, n).is_ok());
        assert_eq!(
            decode_body(Some("gzip"), &body, n - 1),
            Err(DecodeError::TooLarge(n - 1))
        );
    }

    #[test]
    fn damaged_gzip_is_refused() {
        let good = gzip(&b"{\"event_id\":\"x\"}\n".repeat(100));
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage!!!");
        for body in [
            &good[..good.len() - 4],
            &good[..good.len() / 2],
            &good[..5],
            &bad_crc[..],
            &trailing[..],
        ] {
            assert_eq!(
                decode_body(Some("gzip"), body, 1 << 20),
                Err(DecodeError::Corrupt("gzip"))
            );
        }
        // A good body after a damaged one decodes: nothing of the failure is kept.
        assert!(decode_body(Some("gzip"), &good, 1 << 20).is_ok());
    }

    #[test]
    fn every_damaged_byte_and_cut_is_refused_or_harmless() {
        let data = b"{\"event_id\":\"x\",\"message\":\"hello\"}\n".repeat(40);
        let mut body = gzip(&data[..700]);
        let first_member = body.len();
        body.extend_from_slice(&gzip(&data[700..]));
        for at in 0..body.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = body.clone();
                bad[at] ^= flip;
                // Header fields such as the time stamp may change without harm; anything
                // decoded is the original, never a different or partial body.
                if let Ok(d) = decode_body(Some("gzip"), &bad, 1 << 20) {
                    assert_eq!(d.as_ref(), &data[..], "byte {at} ^ {flip:#x}");
                }
            }
            // Cut between members, the body is a shorter valid one.
            let cut = decode_body(Some("gzip"), &body[..at], 1 << 20);
            if at == first_member {
                assert_eq!(cut.as_deref(), Ok(&data[..700]));
            } else {
                assert!(cut.is_err(), "cut at {at}");
            }
        }
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

//! permessage-deflate (RFC 7692): the offer/response negotiation, and the
//! compression of one message at a time with no state kept per connection.
//!
//! The server always answers with `server_no_context_takeover` and
//! `client_no_context_takeover` (both allowed in a response whatever the
//! offer said, §7.1.1.1 / §7.1.1.2): every message is compressed and inflated
//! on its own, so one compressor and one decompressor per thread serve every
//! connection, an idle connection holds no zlib state at all, and a broadcast
//! message compresses to the same bytes for every recipient (compressed once,
//! shared). The price is a lower ratio for runs of small similar messages,
//! which the threshold leaves uncompressed anyway.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::CloseError;

/// The extension token (§7).
const NAME: &str = "permessage-deflate";

/// The empty stored block a sync flush ends with, stripped from every
/// compressed message and put back before inflating (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The `Sec-WebSocket-Extensions` response that accepts an offer.
pub(crate) const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Whether one `permessage-deflate` offer can be accepted (§7.1: known
/// parameters, each at most once, valid values). An offer limiting our
/// window (`server_max_window_bits` under 15) is declined: the deflate
/// backend always uses a 32 KiB window.
fn acceptable(params: &str) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        let bits = |v: Option<&str>| {
            v.and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b))
        };
        let ok = match name {
            "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
            "server_max_window_bits" => bits(value) == Some(15),
            "client_max_window_bits" => value.is_none() || bits(value).is_some(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Picks the first acceptable `permessage-deflate` offer among the values of
/// the request's `Sec-WebSocket-Extensions` headers (§5.1); `true` when the
/// response should carry [`RESPONSE`].
pub(crate) fn negotiate<'a>(offers: impl IntoIterator<Item = &'a str>) -> bool {
    offers.into_iter().flat_map(|h| h.split(',')).any(|offer| {
        let (name, params) = offer.split_once(';').unwrap_or((offer, ""));
        name.trim().eq_ignore_ascii_case(NAME) && acceptable(params)
    })
}

thread_local! {
    /// The thread's compressor and the level it was made for.
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Compresses one message (raw deflate, sync flush, the `00 00 ff ff` tail
/// removed), with a fresh context: the same input always gives the same
/// bytes. `None` if zlib reports an error (the message then goes uncompressed).
pub(crate) fn compress(data: &[u8], level: u32) -> Option<Bytes> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, Compress::new(Compression::new(level), false)));
        }
        let (_, z) = slot.as_mut()?;
        z.reset();
        // Deflate output is at most a few bytes per 16 KiB block larger than
        // its input; grow when that is not enough.
        let mut out: Vec<u8> = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = z.total_in();
            let status = z.compress_vec(input, &mut out, FlushCompress::Sync).ok()?;
            let used = usize::try_from(z.total_in() - before).ok()?;
            input = input.get(used..).unwrap_or_default();
            // Done once all input is taken and the flush left room to spare
            // (zlib's rule for a complete sync flush).
            if input.is_empty() && out.len() < out.capacity() && status != Status::BufError {
                break;
            }
        }
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        Some(Bytes::from(out))
    })
}

/// Inflates one message compressed with no context takeover, refusing an
/// output over `max` bytes (1009, a decompression bomb) and data that does
/// not inflate (1007).
pub(crate) fn inflate(data: &[u8], max: usize) -> Result<Bytes, CloseError> {
    INFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z = slot.get_or_insert_with(|| Decompress::new(false));
        z.reset(false);
        // Never more room than `max + 1` bytes: one byte over is the proof
        // that the message is too big.
        let limit = max.saturating_add(1);
        let mut out: Vec<u8> = Vec::with_capacity(data.len().saturating_mul(3).max(64).min(limit));
        for mut input in [data, &TAIL[..]] {
            loop {
                if out.len() == out.capacity() {
                    if out.len() >= limit {
                        return Err(CloseError::TooBig);
                    }
                    out.reserve_exact(out.len().max(1024).min(limit - out.len()));
                }
                let (before_in, before_out) = (z.total_in(), z.total_out());
                let status = z
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| CloseError::InvalidData)?;
                if out.len() > max {
                    return Err(CloseError::TooBig);
                }
                let used = usize::try_from(z.total_in() - before_in)
                    .map_err(|_| CloseError::InvalidData)?;
                let made = z.total_out() - before_out;
                input = input.get(used..).unwrap_or_default();
                if status == Status::StreamEnd {
                    // A final block inside a message: what it held is the
                    // message (a fresh context is used for the next anyway).
                    return Ok(Bytes::from(out));
                }
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
                if used == 0 && made == 0 && out.len() < out.capacity() {
                    return Err(CloseError::InvalidData);
                }
            }
        }
        Ok(Bytes::from(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_accepts_the_usual_offers_and_declines_bad_ones() {
        // Chromium's and Node ws's default offer.
        assert!(negotiate(["permessage-deflate; client_max_window_bits"]));
        assert!(negotiate(["permessage-deflate"]));
        assert!(negotiate([
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=10"
        ]));
        assert!(negotiate([
            "x-webkit-deflate-frame",
            "permessage-deflate; client_max_window_bits=\"12\""
        ]));
        // A first offer we cannot take, then one we can (§5.1: in order).
        assert!(negotiate([
            "permessage-deflate; server_max_window_bits=10, permessage-deflate"
        ]));
        for bad in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown",
            "deflate-frame",
            "",
        ] {
            assert!(!negotiate([bad]), "{bad}");
        }
        assert!(!negotiate([]));
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        for n in [0usize, 1, 100, 1024, 70_000, 300_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 7 + (i / 1000) % 5) as u8).collect();
            let a = compress(&data, 6).unwrap();
            let b = compress(&data, 6).unwrap();
            assert_eq!(a, b, "same bytes for the same message ({n})");
            assert!(!a.ends_with(&TAIL));
            assert_eq!(inflate(&a, n.max(1)).unwrap(), data);
        }
        // Another level on the same thread gets its own compressor.
        let text = b"level level level level level level level level".repeat(50);
        let fast = compress(&text, 1).unwrap();
        let stored = compress(&text, 0).unwrap();
        assert!(stored.len() > text.len(), "level 0 stores");
        assert!(fast.len() < text.len() / 4);
        assert_eq!(inflate(&stored, text.len()).unwrap(), text);
        // Incompressible data too.
        let noise: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let c = compress(&noise, 6).unwrap();
        assert_eq!(inflate(&c, noise.len()).unwrap(), noise);
    }

    #[test]
    fn a_decompression_bomb_stops_at_max() {
        let zeros = vec![0u8; 2_000_000];
        let c = compress(&zeros, 9).unwrap();
        assert!(c.len() < 10_000);
        assert_eq!(inflate(&c, 1_000_000), Err(CloseError::TooBig));
        assert_eq!(inflate(&c, 2_000_000).map(|b| b.len()), Ok(2_000_000));
        assert_eq!(inflate(&c, 1_999_999), Err(CloseError::TooBig));
    }

    #[test]
    fn garbage_does_not_inflate() {
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff], 100),
            Err(CloseError::InvalidData)
        );
    }

    #[test]
    fn node_ws_compressed_hello() {
        // "Hello" as RFC 7692 §7.2.3.1 gives it.
        let c = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(&inflate(&c, 100).unwrap()[..], b"Hello");
        // §7.2.3.3: no compression (a stored block).
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(&inflate(&stored, 100).unwrap()[..], b"Hello");
    }
}

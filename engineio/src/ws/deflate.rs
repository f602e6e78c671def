//! permessage-deflate (RFC 7692): the offer/response negotiation, the
//! compression of one message at a time with no state kept per connection,
//! and the opt-in per-connection contexts (context takeover).
//!
//! By default the server answers with `server_no_context_takeover` and
//! `client_no_context_takeover` (both allowed in a response whatever the
//! offer said, §7.1.1.1 / §7.1.1.2): every message is compressed and inflated
//! on its own, so a few compressors and one decompressor per thread serve
//! every connection, an idle connection holds no zlib state at all, and a
//! broadcast message compresses to the same bytes for every recipient with
//! the same window (compressed once, shared). The price is a lower ratio for
//! runs of small similar messages.
//!
//! # Context takeover (opt-in, bounded)
//! With [`PerMessageDeflate::context_takeover`] set to `max`, up to `max`
//! connections at once ([`TakeoverSlots`]) leave out the
//! `*_no_context_takeover` the client did not ask for: such a connection
//! keeps its own compressor ([`compress_with`]) and/or inflater
//! ([`inflate_with`]), made on its first compressed message and dropped with
//! the connection (its slot then frees). Its broadcast frames are compressed
//! for it alone (its compressor's history is its own). Past `max`, new
//! connections get no-context-takeover as by default.
//!
//! # Window bits
//! `server_max_window_bits` (§7.1.2.1) limits the LZ77 window our
//! compressor uses: the smaller of the client's value and ours
//! ([`PerMessageDeflate::server_max_window_bits`]). zlib (and zlib-rs) cannot
//! make raw deflate with a 256-byte window (8 bits): as Node's zlib does for
//! `ws` (which answers the 8 it was asked for), a window of 8 is answered as
//! 8 and compressed with 9 bits, which is safe for a 256-byte inflater: zlib's
//! deflate never refers further back than its window minus 262 bytes
//! (`MAX_DIST`), 250 bytes with 9 bits. `client_max_window_bits` (§7.1.2.2)
//! is answered only when the client offered it (with its value or ours,
//! whichever is smaller); our inflater always has a 15-bit window, which
//! reads what any smaller window made.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::CloseError;
use crate::config::PerMessageDeflate;

/// The extension token (§7).
const NAME: &str = "permessage-deflate";

/// The empty stored block a sync flush ends with, stripped from every
/// compressed message and put back before inflating (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The largest LZ77 window, in bits (32 KiB), and the smallest a peer may
/// ask for (§7.1.2.1: 8 to 15).
pub(crate) const MAX_WINDOW_BITS: u8 = 15;
/// See [`MAX_WINDOW_BITS`].
pub(crate) const MIN_WINDOW_BITS: u8 = 8;

/// How many compressors (one per level and window size) a thread keeps; the
/// least recently used one is dropped to make room for another.
const COMPRESSORS_PER_THREAD: usize = 4;

/// The window our compressor uses for a negotiated `server_max_window_bits`:
/// 8 is compressed with 9 bits (see the module docs).
pub(crate) fn compress_window(bits: u8) -> u8 {
    bits.clamp(MIN_WINDOW_BITS + 1, MAX_WINDOW_BITS)
}

/// One `permessage-deflate` offer's parameters (§7.1), valid and each at
/// most once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` (`Some(None)`: without a value).
    client_max_window_bits: Option<Option<u8>>,
}

/// A window size parameter's value: 8 to 15, as a token or a quoted string
/// (§7.1: `1*DIGIT` with no leading zero).
fn window_bits(value: &str) -> Option<u8> {
    let v = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>()
        .ok()
        .filter(|b| (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(b))
}

/// Parses one offer's parameters; `None` when the offer must be declined
/// (§7.1: an unknown parameter, one given twice, or an invalid value).
fn parse_offer(params: &str) -> Option<Offer> {
    let mut offer = Offer::default();
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p, None),
        };
        match (name, value) {
            ("server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?);
            }
            ("client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                });
            }
            _ => return None,
        }
    }
    Some(offer)
}

/// What one connection negotiated (§7.1), and the response that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// Server-to-client context takeover: no `server_no_context_takeover`
    /// in the response; this connection's messages go through its own
    /// compressor.
    pub(crate) server_takeover: bool,
    /// Client-to-server context takeover: no `client_no_context_takeover`
    /// in the response; this connection's messages go through its own
    /// inflater.
    pub(crate) client_takeover: bool,
    /// The largest window our compressor may use (8–15), answered as
    /// `server_max_window_bits` when [`answer_server_bits`](Self::answer_server_bits).
    pub(crate) server_max_window_bits: u8,
    /// Whether the response carries `server_max_window_bits`.
    answer_server_bits: bool,
    /// The `client_max_window_bits` answered, if any (only when offered).
    pub(crate) client_max_window_bits: Option<u8>,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` response: exactly the negotiated
    /// parameters.
    pub(crate) fn response(&self) -> String {
        let mut r = NAME.to_owned();
        if !self.server_takeover {
            r.push_str("; server_no_context_takeover");
        }
        if !self.client_takeover {
            r.push_str("; client_no_context_takeover");
        }
        if self.answer_server_bits {
            r.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if let Some(bits) = self.client_max_window_bits {
            r.push_str(&format!("; client_max_window_bits={bits}"));
        }
        r
    }
}

/// The parameters answering one acceptable offer, given our configuration
/// and whether this connection may keep zlib state (`takeover`: it holds a
/// [`TakeoverSlot`]).
fn accept(offer: &Offer, config: &PerMessageDeflate, takeover: bool) -> Negotiated {
    let ours = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    let server = offer
        .server_max_window_bits
        .map_or(ours, |asked| asked.min(ours));
    let client_limit = config
        .client_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // §7.1.2.2: only when offered; with the offer's value (or a smaller
    // one), and without one only if ours limits anything.
    let client = match offer.client_max_window_bits {
        None => None,
        Some(Some(asked)) => Some(asked.min(client_limit)),
        Some(None) => Some(client_limit).filter(|b| *b < MAX_WINDOW_BITS),
    };
    Negotiated {
        server_takeover: takeover && !offer.server_no_context_takeover,
        client_takeover: takeover && !offer.client_no_context_takeover,
        server_max_window_bits: server,
        answer_server_bits: offer.server_max_window_bits.is_some() || server < MAX_WINDOW_BITS,
        client_max_window_bits: client,
    }
}

/// Picks the first acceptable `permessage-deflate` offer among the values of
/// the request's `Sec-WebSocket-Extensions` headers (§5.1: in the client's
/// order of preference; an offer that cannot be accepted is skipped) and
/// what answers it; `None`: the connection is uncompressed. `takeover`: the
/// connection may keep per-connection zlib state (see the module docs).
pub(crate) fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &PerMessageDeflate,
    takeover: bool,
) -> Option<Negotiated> {
    offers
        .into_iter()
        .flat_map(|h| h.split(','))
        .find_map(|offer| {
            let (name, params) = offer.split_once(';').unwrap_or((offer, ""));
            if !name.trim().eq_ignore_ascii_case(NAME) {
                return None;
            }
            parse_offer(params).map(|o| accept(&o, config, takeover))
        })
}

/// The bound on connections holding per-connection zlib state
/// ([`PerMessageDeflate::context_takeover`]), shared by a server's
/// connections.
#[derive(Debug)]
pub(crate) struct TakeoverSlots {
    used: AtomicUsize,
    max: usize,
}

impl TakeoverSlots {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(TakeoverSlots {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot, if fewer than `max` are held.
    pub(crate) fn take(self: &Arc<Self>) -> Option<TakeoverSlot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| TakeoverSlot(self.clone()))
    }

    /// Slots held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// The right of one connection to keep zlib state; freed when dropped
/// (with the connection).
#[derive(Debug)]
pub(crate) struct TakeoverSlot(Arc<TakeoverSlots>);

impl Drop for TakeoverSlot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Compresses one message with a connection's own compressor (context
/// takeover: the history of its earlier messages is kept), made on first
/// use with `level` and a window of `window_bits`. On a zlib error the
/// compressor is dropped (the next message starts a fresh one, which never
/// refers to what the client did not get) and `None` is returned (sent
/// uncompressed).
pub(crate) fn compress_with(
    own: &mut Option<Compress>,
    data: &[u8],
    level: u32,
    window_bits: u8,
) -> Option<Bytes> {
    let z = own.get_or_insert_with(|| {
        Compress::new_with_window_bits(
            Compression::new(level.min(9)),
            false,
            compress_window(window_bits),
        )
    });
    let out = deflate_sync(z, data);
    if out.is_none() {
        *own = None;
    }
    out
}

/// Inflates one message with a connection's own inflater (context
/// takeover), made on first use with a window of `window_bits` (the
/// `client_max_window_bits` answered, else 15; 8 is read with 9). A message
/// that ends the deflate stream (a final block) drops the inflater: the next
/// message starts a fresh one, as Node's `ws` does.
pub(crate) fn inflate_with(
    own: &mut Option<Decompress>,
    data: &[u8],
    max: usize,
    window_bits: u8,
) -> Result<Bytes, CloseError> {
    let z = own.get_or_insert_with(|| {
        Decompress::new_with_window_bits(false, compress_window(window_bits))
    });
    let (out, ended) = inflate_sync(z, data, max)?;
    if ended {
        *own = None;
    }
    Ok(out)
}

thread_local! {
    /// The thread's compressors, each with the level and window it was made
    /// for, most recently used first (at most [`COMPRESSORS_PER_THREAD`]).
    static DEFLATE: RefCell<Vec<(u32, u8, Compress)>> = const { RefCell::new(Vec::new()) };
    /// The thread's decompressor (a 15-bit window reads any smaller one).
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Compresses one message (raw deflate, sync flush, the `00 00 ff ff` tail
/// removed) with a window of `window_bits` (see [`compress_window`]) and a
/// fresh context: the same input always gives the same bytes. `None` if
/// zlib reports an error (the message then goes uncompressed).
pub(crate) fn compress(data: &[u8], level: u32, window_bits: u8) -> Option<Bytes> {
    let bits = compress_window(window_bits);
    let level = level.min(9);
    DEFLATE.with(|cell| {
        let mut cache = cell.borrow_mut();
        let at = cache.iter().position(|(l, b, _)| *l == level && *b == bits);
        let entry = match at {
            Some(i) => cache.remove(i),
            None => {
                cache.truncate(COMPRESSORS_PER_THREAD - 1);
                let z = Compress::new_with_window_bits(Compression::new(level), false, bits);
                (level, bits, z)
            }
        };
        cache.insert(0, entry);
        let (_, _, z) = cache.first_mut()?;
        z.reset();
        deflate_sync(z, data)
    })
}

/// Runs `data` through `z` with a sync flush and strips the tail.
pub(crate) fn deflate_sync(z: &mut Compress, data: &[u8]) -> Option<Bytes> {
    // Deflate output is at most a few bytes per 16 KiB block larger than its
    // input; grow when that is not enough.
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
}

/// Inflates one message compressed with no context takeover, refusing an
/// output over `max` bytes (1009, a decompression bomb) and data that does
/// not inflate (1007).
pub(crate) fn inflate(data: &[u8], max: usize) -> Result<Bytes, CloseError> {
    INFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z = slot.get_or_insert_with(|| Decompress::new(false));
        z.reset(false);
        inflate_sync(z, data, max).map(|(out, _)| out)
    })
}

/// Runs one message (its tail put back) through `z`, bounded by `max`;
/// `true` with it when the message ended the deflate stream (a final block).
pub(crate) fn inflate_sync(
    z: &mut Decompress,
    data: &[u8],
    max: usize,
) -> Result<(Bytes, bool), CloseError> {
    // Never more room than `max + 1` bytes: one byte over is the proof that
    // the message is too big.
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
            let used =
                usize::try_from(z.total_in() - before_in).map_err(|_| CloseError::InvalidData)?;
            let made = z.total_out() - before_out;
            input = input.get(used..).unwrap_or_default();
            if status == Status::StreamEnd {
                // A final block inside a message: what it held is the
                // message; the next one starts a fresh context.
                return Ok((Bytes::from(out), true));
            }
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && made == 0 && out.len() < out.capacity() {
                return Err(CloseError::InvalidData);
            }
        }
    }
    Ok((Bytes::from(out), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(server: u8, client: u8) -> PerMessageDeflate {
        PerMessageDeflate::default()
            .server_max_window_bits(server)
            .client_max_window_bits(client)
    }

    const NO_TAKEOVER: &str =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn negotiation_table() {
        let default = PerMessageDeflate::default();
        // (offers, our config, the response or None for declined)
        let table: Vec<(Vec<&str>, PerMessageDeflate, Option<String>)> = vec![
            // Chromium's and Node ws's default offer.
            (
                vec!["permessage-deflate; client_max_window_bits"],
                default,
                Some(NO_TAKEOVER.into()),
            ),
            (
                vec!["permessage-deflate"],
                default,
                Some(NO_TAKEOVER.into()),
            ),
            (
                vec!["Permessage-Deflate"],
                default,
                Some(NO_TAKEOVER.into()),
            ),
            (
                vec![
                    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=10",
                ],
                default,
                Some(format!(
                    "{NO_TAKEOVER}; server_max_window_bits=15; client_max_window_bits=10"
                )),
            ),
            (
                vec![
                    "x-webkit-deflate-frame",
                    "permessage-deflate; client_max_window_bits=\"12\"",
                ],
                default,
                Some(format!("{NO_TAKEOVER}; client_max_window_bits=12")),
            ),
            // Window bits asked by the client: ours follows.
            (
                vec!["permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"],
                default,
                Some(format!(
                    "{NO_TAKEOVER}; server_max_window_bits=10; client_max_window_bits=10"
                )),
            ),
            (
                vec!["permessage-deflate; server_max_window_bits=8"],
                default,
                Some(format!("{NO_TAKEOVER}; server_max_window_bits=8")),
            ),
            // Our own limits: the smaller wins; client_max_window_bits only if offered.
            (
                vec!["permessage-deflate; client_max_window_bits"],
                cfg(11, 9),
                Some(format!(
                    "{NO_TAKEOVER}; server_max_window_bits=11; client_max_window_bits=9"
                )),
            ),
            (
                vec!["permessage-deflate; server_max_window_bits=9; client_max_window_bits=12"],
                cfg(11, 10),
                Some(format!(
                    "{NO_TAKEOVER}; server_max_window_bits=9; client_max_window_bits=10"
                )),
            ),
            (
                vec!["permessage-deflate"],
                cfg(12, 9),
                Some(format!("{NO_TAKEOVER}; server_max_window_bits=12")),
            ),
            // A first offer we cannot take, then one we can (§5.1: in order).
            (
                vec![
                    "permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=12",
                ],
                default,
                Some(format!("{NO_TAKEOVER}; server_max_window_bits=12")),
            ),
            (
                vec![
                    "permessage-deflate; unknown",
                    "permessage-deflate; client_max_window_bits=9",
                ],
                default,
                Some(format!("{NO_TAKEOVER}; client_max_window_bits=9")),
            ),
        ];
        for (offers, config, want) in table {
            let got = negotiate(offers.iter().copied(), &config, false).map(|n| n.response());
            assert_eq!(got, want, "{offers:?} with {config:?}");
        }
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_max_window_bits=\"9",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; unknown",
            "permessage-deflate; =",
            "deflate-frame",
            "",
        ] {
            assert_eq!(negotiate([bad], &default, false), None, "{bad}");
        }
        assert_eq!(negotiate([], &default, false), None);
    }

    #[test]
    fn takeover_negotiation_leaves_out_what_the_client_did_not_ask() {
        let d = PerMessageDeflate::default().context_takeover(10);
        let table = [
            (
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate",
            ),
            ("permessage-deflate", "permessage-deflate"),
            (
                "permessage-deflate; server_no_context_takeover",
                "permessage-deflate; server_no_context_takeover",
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
                "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                NO_TAKEOVER,
            ),
        ];
        for (offer, want) in table {
            assert_eq!(
                negotiate([offer], &d, true)
                    .map(|n| n.response())
                    .as_deref(),
                Some(want),
                "{offer}"
            );
        }
        let n = negotiate(["permessage-deflate; server_no_context_takeover"], &d, true).unwrap();
        assert!(!n.server_takeover && n.client_takeover);
        // Without a slot: no takeover whatever was offered.
        let n = negotiate(["permessage-deflate"], &d, false).unwrap();
        assert!(!n.server_takeover && !n.client_takeover);
        assert_eq!(n.response(), NO_TAKEOVER);
    }

    #[test]
    fn takeover_slots_are_bounded_and_freed_on_drop() {
        let slots = TakeoverSlots::new(2);
        let a = slots.take().unwrap();
        let b = slots.take().unwrap();
        assert!(slots.take().is_none());
        assert_eq!(slots.used(), 2);
        drop(a);
        let c = slots.take().unwrap();
        assert!(slots.take().is_none());
        drop((b, c));
        assert_eq!(slots.used(), 0);
        assert!(TakeoverSlots::new(0).take().is_none());
    }

    /// 2 KiB JSON messages that differ in a few fields.
    fn similar_json(i: usize) -> Vec<u8> {
        let mut m = format!("{{\"id\":{i},\"user\":\"user-{}\",\"items\":[", i % 17);
        let mut k = 0;
        while m.len() < 2000 {
            m.push_str(&format!(
                "{{\"sku\":\"SKU-{:05}\",\"qty\":{},\"price\":{}.{:02}}},",
                (k * 7 + i) % 1000,
                k % 5 + 1,
                10 + k,
                (i + k) % 100
            ));
            k += 1;
        }
        m.push_str("{}]}");
        m.into_bytes()
    }

    #[test]
    fn context_takeover_round_trips_a_run_and_compresses_it_better() {
        for bits in [9u8, 12, 15] {
            let (mut tx, mut rx) = (None, None);
            let (mut with, mut without) = (0usize, 0usize);
            for i in 0..200 {
                let m = similar_json(i);
                let c = compress_with(&mut tx, &m, 6, bits).unwrap();
                with += c.len();
                without += compress(&m, 6, bits).unwrap().len();
                assert_eq!(
                    inflate_with(&mut rx, &c, 10_000, bits).unwrap(),
                    m,
                    "message {i}"
                );
                if i == 1 {
                    // The second message refers to the first: a fresh inflater cannot read it.
                    assert_eq!(inflate(&c, 10_000), Err(CloseError::InvalidData));
                }
            }
            // A window wider than a message finds the previous ones.
            if bits >= 12 {
                assert!(
                    with * 4 < without * 3,
                    "{bits} bits: {with} with takeover, {without} without"
                );
            }
        }
    }

    #[test]
    fn a_final_block_ends_the_inflaters_context() {
        // A message that ends the deflate stream (BFINAL): "Hello" as one
        // final fixed block; the inflater is dropped and the next message
        // starts afresh.
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let mut fin = Vec::with_capacity(64);
        z.compress_vec(b"Hello", &mut fin, FlushCompress::Finish)
            .unwrap();
        let mut rx = None;
        assert_eq!(&inflate_with(&mut rx, &fin, 100, 15).unwrap()[..], b"Hello");
        assert!(rx.is_none());
        let again = compress(b"again", 6, 15).unwrap();
        assert_eq!(
            &inflate_with(&mut rx, &again, 100, 15).unwrap()[..],
            b"again"
        );
        assert!(rx.is_some());
    }

    #[test]
    fn the_negotiated_window_is_what_the_compressor_uses() {
        let n = negotiate(
            ["permessage-deflate; server_max_window_bits=8"],
            &PerMessageDeflate::default(),
            false,
        )
        .unwrap();
        assert_eq!(n.server_max_window_bits, 8);
        assert_eq!(compress_window(n.server_max_window_bits), 9);
        assert_eq!(compress_window(12), 12);
        assert_eq!(compress_window(200), 15);
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        for n in [0usize, 1, 100, 1024, 70_000, 300_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 7 + (i / 1000) % 5) as u8).collect();
            let a = compress(&data, 6, 15).unwrap();
            let b = compress(&data, 6, 15).unwrap();
            assert_eq!(a, b, "same bytes for the same message ({n})");
            assert!(!a.ends_with(&TAIL));
            assert_eq!(inflate(&a, n.max(1)).unwrap(), data);
        }
        // Another level on the same thread gets its own compressor.
        let text = b"level level level level level level level level".repeat(50);
        let fast = compress(&text, 1, 15).unwrap();
        let stored = compress(&text, 0, 15).unwrap();
        assert!(stored.len() > text.len(), "level 0 stores");
        assert!(fast.len() < text.len() / 4);
        assert_eq!(inflate(&stored, text.len()).unwrap(), text);
        // Incompressible data too.
        let noise: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let c = compress(&noise, 6, 15).unwrap();
        assert_eq!(inflate(&c, noise.len()).unwrap(), noise);
    }

    #[test]
    fn a_small_window_finds_only_near_repeats() {
        // A 4 KiB block of noise, then the same block again: a 15-bit window
        // sees the repeat, a 10-bit (1 KiB) one cannot.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let block: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let data = [&block[..], &block[..]].concat();
        let wide = compress(&data, 6, 15).unwrap();
        let narrow = compress(&data, 6, 10).unwrap();
        assert!(wide.len() < 4096 + 200, "{}", wide.len());
        assert!(narrow.len() > 8000, "{}", narrow.len());
        // A 10-bit inflater reads what the 10-bit compressor made.
        let mut z = Decompress::new_with_window_bits(false, 10);
        assert_eq!(inflate_sync(&mut z, &narrow, data.len()).unwrap().0, data);
        // With 8 bits asked (compressed with 9), nothing refers 300 bytes
        // back: zlib's 9-bit deflate reaches 250 bytes at most, within what
        // a 256-byte inflater holds; with 10 bits the repeats are found.
        let short = block.get(..300).unwrap().repeat(8);
        let eight = compress(&short, 6, 8).unwrap();
        let ten = compress(&short, 6, 10).unwrap();
        assert!(eight.len() > 2000, "{}", eight.len());
        assert!(ten.len() < 600, "{}", ten.len());
        assert_eq!(inflate(&eight, short.len()).unwrap(), short);
    }

    #[test]
    fn the_thread_keeps_a_bounded_set_of_compressors() {
        for bits in 8..=15 {
            for level in [1, 6] {
                let c = compress(b"bounded bounded bounded bounded", level, bits).unwrap();
                assert_eq!(
                    &inflate(&c, 100).unwrap()[..],
                    b"bounded bounded bounded bounded"
                );
            }
        }
        DEFLATE.with(|c| assert_eq!(c.borrow().len(), COMPRESSORS_PER_THREAD));
    }

    #[test]
    fn a_decompression_bomb_stops_at_max() {
        let zeros = vec![0u8; 2_000_000];
        let c = compress(&zeros, 9, 15).unwrap();
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With context takeover, a run of messages through one compressor
        /// inflates message by message through one inflater of the same
        /// window, and each stays within `max`.
        #[test]
        fn takeover_runs_round_trip_across_window_bits(
            bits in 8u8..=15,
            level in 0u32..=9,
            messages in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000),
                1..12,
            ),
        ) {
            let (mut tx, mut rx) = (None, None);
            for m in &messages {
                let c = compress_with(&mut tx, m, level, bits).unwrap();
                prop_assert_eq!(&inflate_with(&mut rx, &c, 3000, bits).unwrap()[..], &m[..]);
            }
        }

        /// Whatever the window (8 to 15) and level, a message compressed
        /// with it inflates to itself with the thread's inflater and with
        /// an inflater of just that window.
        #[test]
        fn compress_inflate_across_window_bits(
            bits in 8u8..=15,
            level in 0u32..=9,
            words in proptest::collection::vec(0usize..40, 0..3000),
            noise in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut data: Vec<u8> = Vec::new();
            for (i, w) in words.iter().enumerate() {
                data.extend_from_slice(format!("w{w} ").as_bytes());
                if i % 500 == 0 {
                    data.extend_from_slice(&noise);
                }
            }
            let c = compress(&data, level, bits).unwrap();
            prop_assert_eq!(&inflate(&c, data.len().max(1)).unwrap()[..], &data[..]);
            let mut z = Decompress::new_with_window_bits(false, compress_window(bits));
            prop_assert_eq!(&inflate_sync(&mut z, &c, data.len().max(1)).unwrap().0[..], &data[..]);
        }
    }
}

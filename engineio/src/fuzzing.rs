//! Fuzzing support, not part of the API (hidden from the docs; may change at any time).
//!
//! Each `check_*` function is the property check of one target in `fuzz/fuzz_targets/`; the
//! stable replay test `tests/fuzz_corpus.rs` runs the same function over the committed corpus.
//! A check panics when a property is violated: that is how the fuzzer learns of it.
//!
//! [`SessionHarness`] drives the private session state machine with raw bytes, decoded by the
//! crate's own codecs, the way the transports in `transport/` do, and checks its invariants
//! after every step. [`run_session_script`] interprets arbitrary bytes as a script of such steps.

// Panicking on a violated property is the purpose of this module.
#![allow(clippy::panic)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::packet::{Message, Packet};
use crate::payload::{Payload, SEPARATOR, encode_payload};
use crate::proto::{CloseReason, Conn, Protocol, Session, Timings, Transport, WsOutput};

// ----- WebSocket frames --------------------------------------------------------------------

/// A client frame (FIN and opcode in `first`, masked with `mask`), as a client sends it.
fn masked_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        out.push(0x80 | 126);
        out.extend_from_slice(&n16.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let mut body = payload.to_vec();
    crate::ws::frame::apply_mask(&mut body, mask);
    out.extend_from_slice(&body);
    out
}

/// Everything a decoder yields for `input` fed in chunks of `chunk` bytes, up to and
/// including its first error.
fn decode_frames(
    input: &[u8],
    chunk: usize,
    max: usize,
    deflate: bool,
) -> Vec<Result<crate::ws::frame::Incoming, crate::ws::frame::CloseError>> {
    let mut d = crate::ws::frame::Decoder::new(max, deflate);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

/// Target `ws_frame`: byte 0 configures (bit 0: permessage-deflate negotiated; bits 1-2:
/// `max_payload` 64 B / 1 KiB / 64 KiB / 1 MB; bits 3-7: the chunk size the bytes arrive in,
/// and, with context takeover, the client's window: 8 + that value mod 8), the rest is what a
/// client sends.
///
/// Properties: no panic; the same messages and the same error whatever the chunking; no data
/// message over `max_payload` (control frames are bounded by 125 bytes, not by
/// `max_payload`); a compressed message inflates to at most `max_payload` or is refused with
/// 1007 / 1009, on its own (no context takeover) and, in order, through one inflater that
/// keeps its context (context takeover); every message, sent again as one masked frame,
/// decodes to itself.
pub fn check_ws_frame(data: &[u8]) {
    use crate::ws::frame::{CloseError, Incoming, MAX_CONTROL};
    let Some((&config, input)) = data.split_first() else {
        return;
    };
    let deflate = config & 1 != 0;
    let max = [64, 1024, 64 * 1024, 1_000_000]
        .get(usize::from((config >> 1) & 3))
        .copied()
        .unwrap_or(64);
    let chunk = usize::from(config >> 3) + 1;
    let window_bits = 8 + (config >> 3) % 8;
    let whole = decode_frames(input, input.len(), max, deflate);
    let chunked = decode_frames(input, chunk, max, deflate);
    // Chunking can only cut the list short at the end (a frame not yet complete).
    if whole != chunked {
        panic!("chunks of {chunk} changed the result:\n{whole:?}\n{chunked:?}");
    }
    // The same messages through one inflater with context takeover, until it refuses one
    // (the connection would then close).
    let mut context: Option<flate2::Decompress> = None;
    let mut refused = false;
    for m in whole.iter().flatten() {
        if let Incoming::Compressed { data, .. } = m {
            if refused {
                continue;
            }
            match crate::ws::deflate::inflate_with(&mut context, data, max, window_bits) {
                Ok(b) => assert!(b.len() <= max, "inflated over max_payload (takeover)"),
                Err(CloseError::InvalidData | CloseError::TooBig) => refused = true,
                Err(e) => panic!("unexpected inflate error {e:?} (takeover)"),
            }
        }
    }
    for m in whole.into_iter().flatten() {
        let (first, payload): (u8, Bytes) = match &m {
            Incoming::Text(t) => (0x81, Bytes::copy_from_slice(t.as_bytes())),
            Incoming::Binary(b) => (0x82, b.clone()),
            Incoming::Compressed { text, data } => {
                assert!(data.len() <= max, "compressed message over max_payload");
                match crate::ws::deflate::inflate(data, max) {
                    Ok(b) => assert!(b.len() <= max, "inflated over max_payload"),
                    Err(CloseError::InvalidData | CloseError::TooBig) => {}
                    Err(e) => panic!("unexpected inflate error {e:?}"),
                }
                (if *text { 0xC1 } else { 0xC2 }, data.clone())
            }
            Incoming::Ping(p) => (0x89, p.clone()),
            Incoming::Pong(p) => (0x8A, p.clone()),
            Incoming::Close(_) => continue,
        };
        if first & 0x08 == 0 {
            assert!(payload.len() <= max, "message over max_payload");
        } else {
            assert!(payload.len() <= MAX_CONTROL, "control frame over 125 bytes");
        }
        let again = decode_frames(
            &masked_frame(first, &payload, [1, 2, 3, 4]),
            1 << 20,
            max,
            deflate,
        );
        assert_eq!(again, vec![Ok(m)], "a message sent again decodes to itself");
    }
}

// ----- codecs ------------------------------------------------------------------------------

/// Target `engineio_packet`: `data` as a text packet, a polling item and a binary frame.
///
/// Properties: whatever decodes re-encodes (polling form and WebSocket form) to something that
/// decodes to the same packet; both text encoders agree; `encoded_len_hint` is an upper bound;
/// a decoded message is never larger than its input.
pub fn check_packet(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    if let Ok(p) = Packet::decode_text(input.clone()) {
        assert!(
            !matches!(p, Packet::Message(Message::Binary(_))),
            "text decoded as binary: {p:?}"
        );
        assert!(body_len(&p) < data.len(), "{p:?} larger than {data:?}");
        let text = encode(&p);
        assert_eq!(
            text,
            Bytes::from(p.to_text_frame()),
            "encode_text and the WebSocket form differ for {p:?}"
        );
        assert_eq!(Packet::decode_text(text), Ok(p.clone()), "text round trip");
        assert_polling_round_trip(&p);
        assert_ws_round_trip(&p);
    }
    if let Ok(p) = Packet::decode_polling_item(input.clone()) {
        assert!(body_len(&p) <= data.len(), "{p:?} larger than {data:?}");
        assert_polling_round_trip(&p);
        assert_ws_round_trip(&p);
    }
    let p = Packet::decode_binary(input.clone());
    assert_eq!(p, Packet::Message(Message::Binary(input)));
    assert_polling_round_trip(&p);
    assert_ws_round_trip(&p);
}

/// Target `engineio_payload`: `data` as a polling POST body.
///
/// Properties: decoding stops at the first error and ends; without an error there is one item
/// per separator plus one; no item is larger than the body; the decoded prefix re-encodes with
/// [`encode_payload`] to a body that decodes to the same packets.
pub fn check_payload(data: &[u8]) {
    let mut payload = Payload::new(Bytes::copy_from_slice(data));
    let mut packets = Vec::new();
    let mut failed = false;
    while let Some(item) = payload.next() {
        match item {
            Ok(p) => {
                assert!(body_len(&p) <= data.len(), "{p:?} larger than the body");
                packets.push(p);
            }
            Err(_) => {
                failed = true;
                assert!(payload.next().is_none(), "decoding went on after an error");
                break;
            }
        }
    }
    let separators = data.iter().filter(|&&b| b == SEPARATOR).count();
    if !failed {
        assert_eq!(packets.len(), separators + 1, "items of {data:?}");
    }
    assert!(packets.len() <= separators + 1);
    if packets.is_empty() {
        return;
    }
    let body = encode_payload(&packets);
    let back: Result<Vec<Packet>, _> = Payload::new(body.clone()).collect();
    assert_eq!(back, Ok(packets), "payload round trip via {body:?}");
}

/// Target `engineio_payload_v3`: `data` as an Engine.IO v3 POST body, in both framings
/// (text `<length>:<packet>`, and the XHR2 binary framing).
///
/// Properties: decoding stops at the first error and ends; no item is larger than the body;
/// what decoded re-encodes with [`encode_payload_v3`](crate::encode_payload_v3) (text with
/// `b64`, and the binary framing without it) to a body that decodes to the same packets.
pub fn check_payload_v3(data: &[u8]) {
    use crate::payload_v3::{PayloadV3, PayloadV3Format, encode_payload_v3};
    for format in [PayloadV3Format::Text, PayloadV3Format::Binary] {
        let mut payload = PayloadV3::new(Bytes::copy_from_slice(data), format);
        let mut packets = Vec::new();
        while let Some(item) = payload.next() {
            match item {
                Ok(p) => {
                    assert!(body_len(&p) <= data.len(), "{p:?} larger than the body");
                    packets.push(p);
                }
                Err(_) => {
                    assert!(payload.next().is_none(), "decoding went on after an error");
                    break;
                }
            }
        }
        assert!(packets.len() <= data.len(), "more packets than bytes");
        if packets.is_empty() {
            continue;
        }
        for b64 in [true, false] {
            let (body, out) = encode_payload_v3(&packets, b64);
            let back: Result<Vec<Packet>, _> = PayloadV3::new(body.clone(), out).collect();
            assert_eq!(back.as_ref(), Ok(&packets), "v3 round trip via {body:?}");
        }
    }
}

/// The size of what a packet carries.
fn body_len(p: &Packet) -> usize {
    match p {
        Packet::Open(s) => s.len(),
        Packet::Message(m) => m.len(),
        _ => 0,
    }
}

/// `encode_text`, checking `encoded_len_hint`.
fn encode(p: &Packet) -> Bytes {
    let mut buf = BytesMut::new();
    p.encode_text(&mut buf);
    assert!(
        buf.len() <= p.encoded_len_hint(),
        "encoded_len_hint {} < {} for {p:?}",
        p.encoded_len_hint(),
        buf.len()
    );
    buf.freeze()
}

fn assert_polling_round_trip(p: &Packet) {
    let wire = encode(p);
    assert_eq!(
        Packet::decode_polling_item(wire.clone()).as_ref(),
        Ok(p),
        "polling round trip via {wire:?}"
    );
}

/// The frame a WebSocket writer sends for `p`, decoded as the reader does.
fn ws_round_trip(p: &Packet) -> Packet {
    match p {
        Packet::Message(Message::Binary(b)) => Packet::decode_binary(b.clone()),
        other => {
            let frame = other.to_text_frame();
            match Packet::decode_text(Bytes::from(frame.clone())) {
                Ok(back) => back,
                Err(e) => panic!("WebSocket frame {frame:?} of {other:?} does not decode: {e}"),
            }
        }
    }
}

fn assert_ws_round_trip(p: &Packet) {
    assert_eq!(&ws_round_trip(p), p, "WebSocket round trip");
}

/// The v3 WebSocket forms of `p` (a binary frame with its type byte, or `b4<base64>` text for
/// a `b64` client; text frames as in v4), decoded as the v3 reader does.
fn assert_ws_round_trip_v3(p: &Packet) {
    use crate::payload_v3::{
        base64_text_v3, binary_frame_v3, decode_binary_packet_v3, decode_packet_v3,
    };
    let back = match p {
        Packet::Message(Message::Binary(b)) => {
            let text = Bytes::from(base64_text_v3(b));
            assert_eq!(decode_packet_v3(text).as_ref(), Ok(p), "v3 b4 frame");
            decode_binary_packet_v3(binary_frame_v3(b))
        }
        other => decode_packet_v3(Bytes::from(other.to_text_frame())),
    };
    assert_eq!(back.as_ref(), Ok(p), "v3 WebSocket round trip");
}

// ----- the session state machine ---------------------------------------------------------

/// The timings of the official test suites (PROTOCOL.md §3), short so that scripts reach every
/// timer: ping interval 300 ms, ping timeout 200 ms, upgrade timeout 1000 ms, close wait 5000 ms.
pub const PING_INTERVAL_MS: u64 = 300;
/// See [`PING_INTERVAL_MS`].
pub const PING_TIMEOUT_MS: u64 = 200;
/// See [`PING_INTERVAL_MS`].
pub const UPGRADE_TIMEOUT_MS: u64 = 1000;
/// See [`PING_INTERVAL_MS`].
pub const CLOSE_WAIT_MS: u64 = 5000;
/// See [`PING_INTERVAL_MS`].
pub const SLOW_CLIENT_TIMEOUT_MS: u64 = 2000;

/// A WebSocket connection of the session, as its transport task sees it.
#[derive(Debug, Clone, Copy)]
struct WsConn {
    id: u64,
    /// Its reader and writer still run (the peer has not closed it, nor the session told it to).
    alive: bool,
}

/// Drives one private `Session` (the sans-IO state machine) as the transports do, from raw
/// bytes, with a simulated clock, and checks after every step:
///
/// - the outbound queue never costs more than its byte budget (`max_buffered_bytes`), its own
///   count of bytes matches the messages it holds, and what a GET or WebSocket writer takes out
///   is exactly what was queued, in order;
/// - once closed, the session stays closed, reports its close exactly once, queues nothing and
///   hands out nothing but `6` / `1`, and has no timer left;
/// - every output encodes to wire bytes that decode back to it (what a client reads);
/// - a GET answer is never empty, a WebSocket batch never empty, a timer never due after it fired.
///
/// Steps that the HTTP layer refuses before reaching the session (a polling request for a
/// session on WebSocket) are refused here too; nothing else of the protocol is repeated.
#[derive(Debug)]
pub struct SessionHarness {
    session: Session,
    /// Engine.IO v3 (`allow_eio3`): its own wire forms, and the client pings.
    v3: bool,
    now: Instant,
    bound: usize,
    /// The application messages queued and not yet taken out, in order (the model).
    queued: VecDeque<Message>,
    conns: Vec<WsConn>,
    /// A POST is being read (between `post_begin` and its end).
    post_open: bool,
    close_reported: bool,
    was_closed: bool,
}

impl SessionHarness {
    /// A new session on WebSocket (`websocket`) or polling, with an outbound budget of
    /// `messages` (at least 1) messages of 8 bytes (`max_buffered_bytes`), half of it as the
    /// high-water mark. A polling session's handshake GET has been answered.
    pub fn new(websocket: bool, messages: usize) -> Self {
        Self::with_protocol(websocket, messages, false)
    }

    /// As [`new`](Self::new), for an Engine.IO v3 session when `v3`: payloads, frames and the
    /// outputs' round trips then use the v3 forms (`payload_v3.rs`), and the client pings.
    pub fn with_protocol(websocket: bool, messages: usize, v3: bool) -> Self {
        let now = Instant::now();
        let bound = messages.max(1) * (8 + crate::proto::MESSAGE_OVERHEAD);
        let timings = Timings {
            ping_interval: Duration::from_millis(PING_INTERVAL_MS),
            ping_timeout: Duration::from_millis(PING_TIMEOUT_MS),
            upgrade_timeout: Duration::from_millis(UPGRADE_TIMEOUT_MS),
            close_wait: Duration::from_millis(CLOSE_WAIT_MS),
            high_water_mark: (bound / 2).max(1),
            max_buffered_bytes: bound,
            slow_client_timeout: Duration::from_millis(SLOW_CLIENT_TIMEOUT_MS),
        };
        let transport = if websocket {
            Transport::WebSocket
        } else {
            Transport::Polling
        };
        let upgrades = if websocket { "[]" } else { r#"["websocket"]"# };
        let open = Packet::Open(
            format!(
                r#"{{"sid":"AAAAAAAAAAAAAAAAAAAA","upgrades":{upgrades},"pingInterval":{PING_INTERVAL_MS},"pingTimeout":{PING_TIMEOUT_MS},"maxPayload":1000000}}"#
            )
            .into(),
        );
        let protocol = if v3 { Protocol::V3 } else { Protocol::V4 };
        let session = Session::with_protocol(now, transport, protocol, open.clone(), timings);
        let conns = session
            .initial_ws_conn()
            .map(|id| WsConn { id, alive: true })
            .into_iter()
            .collect();
        let mut h = SessionHarness {
            session,
            v3,
            now,
            bound,
            queued: VecDeque::new(),
            conns,
            post_open: false,
            close_reported: false,
            was_closed: false,
        };
        if !websocket {
            // The handshake GET (service.rs): begun and answered at once with the open packet.
            assert!(h.get_begin(), "handshake GET refused");
            assert_eq!(h.get_take(), Some(vec![open]), "handshake answer");
        }
        h.after();
        h
    }

    /// Application messages queued and not yet written.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// The outbound budget in bytes (`max_buffered_bytes`).
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Advances the simulated clock by `ms`, firing each timer at its own deadline in turn,
    /// as the timer task does.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now + Duration::from_millis(ms);
        // Each firing moves the deadline past `now` or ends a timer; a few dozen are plenty.
        for _ in 0..64 {
            match self.session.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.session.handle_timeout(self.now);
                    if let Some(next) = self.session.poll_timeout() {
                        assert!(next > self.now, "timer still due right after firing");
                    }
                    self.after();
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers keep firing without the clock moving");
    }

    // ----- long-polling --------------------------------------------------------------

    /// A GET arrives. Returns whether it is pending (not refused).
    pub fn get_begin(&mut self) -> bool {
        if self.session.transport() != Transport::Polling {
            return false; // service.rs: 400 "Bad request", the session is not touched
        }
        let closed = self.session.is_closed();
        let ok = self.session.begin_get().is_ok();
        assert!(!(closed && ok), "GET accepted by a closed session");
        self.after();
        ok
    }

    /// What the pending GET answers now, if anything (that ends the GET).
    pub fn get_take(&mut self) -> Option<Vec<Packet>> {
        let closed = self.session.is_closed();
        let out = self.session.take_get(self.now);
        if let Some(packets) = &out {
            assert!(!packets.is_empty(), "empty GET answer");
            self.took(packets, closed);
            // What the client reads: the payload decodes back to the packets.
            if self.v3 {
                for b64 in [false, true] {
                    let (body, format) = crate::payload_v3::encode_payload_v3(packets, b64);
                    let back: Result<Vec<Packet>, _> =
                        crate::payload_v3::PayloadV3::new(body.clone(), format).collect();
                    assert_eq!(back.as_ref(), Ok(packets), "v3 GET body {body:?}");
                }
            } else {
                let body = encode_payload(packets);
                let back: Result<Vec<Packet>, _> = Payload::new(body.clone()).collect();
                assert_eq!(back.as_ref(), Ok(packets), "GET body {body:?}");
            }
        }
        self.after();
        out
    }

    /// The pending GET went away (client gone).
    pub fn get_end(&mut self) {
        self.session.end_get();
        self.after();
    }

    /// A POST arrives. Returns whether it was accepted (its body may then be read).
    pub fn post_begin(&mut self) -> bool {
        if self.session.transport() != Transport::Polling {
            return false;
        }
        let ok = self.session.begin_post().is_ok();
        self.post_open |= ok;
        self.after();
        ok
    }

    /// The body of the accepted POST, decoded item by item as `transport/polling.rs` does;
    /// then the POST ends. Returns the messages for the application. Nothing happens if no
    /// POST is open. A v3 body that starts with the byte 0 or 1 is read in the XHR2 binary
    /// framing (what its content type would say; no text payload starts so), others as text.
    pub fn post_body(&mut self, body: &[u8]) -> Vec<Message> {
        let mut msgs = Vec::new();
        if !std::mem::take(&mut self.post_open) {
            return msgs;
        }
        let bytes = Bytes::copy_from_slice(body);
        let items: Box<dyn Iterator<Item = Result<Packet, crate::DecodeError>>> = if self.v3 {
            use crate::payload_v3::{PayloadV3, PayloadV3Format};
            let format = match body.first() {
                Some(0 | 1) => PayloadV3Format::Binary,
                _ => PayloadV3Format::Text,
            };
            Box::new(PayloadV3::new(bytes, format))
        } else {
            Box::new(Payload::new(bytes))
        };
        for item in items {
            match item {
                Ok(packet) => {
                    if let Some(m) = self.session.handle_packet(self.now, Conn::Polling, packet) {
                        assert!(m.len() <= body.len(), "message larger than its body");
                        msgs.push(m);
                    }
                }
                Err(_) => {
                    self.session.handle_decode_error(Conn::Polling);
                    assert!(
                        self.session.is_closed() || self.session.transport() != Transport::Polling,
                        "a bad polling payload left the polling session open"
                    );
                    break;
                }
            }
            self.after();
        }
        self.session.end_post();
        self.after();
        msgs
    }

    /// The open POST failed (body over `max_payload`, read error, binary content type): the
    /// polling glue closes the session.
    pub fn post_fail(&mut self) {
        if !std::mem::take(&mut self.post_open) {
            return;
        }
        self.session.close_now(CloseReason::TransportError);
        self.session.end_post();
        self.after();
    }

    // ----- WebSocket -------------------------------------------------------------------

    /// A WebSocket upgrade for this session. Returns its index for the `ws_*` methods, or
    /// `None` if the session refused it (the socket is then closed at once).
    pub fn ws_open(&mut self) -> Option<usize> {
        let id = self.session.start_probe(self.now);
        self.after();
        let id = id?;
        assert!(
            self.conns.iter().all(|c| c.id != id),
            "connection number reused"
        );
        self.conns.push(WsConn { id, alive: true });
        Some(self.conns.len() - 1)
    }

    /// How many WebSockets were opened (indices `0..ws_count()`).
    pub fn ws_count(&self) -> usize {
        self.conns.len()
    }

    fn live_conn(&self, index: usize) -> Option<u64> {
        self.conns.get(index).filter(|c| c.alive).map(|c| c.id)
    }

    fn end_conn(&mut self, index: usize) {
        if let Some(c) = self.conns.get_mut(index) {
            c.alive = false;
        }
    }

    /// A text frame on WebSocket `index`. Returns the message for the application, if any.
    /// Frames on a connection that has ended are dropped (its reader is gone).
    pub fn ws_text(&mut self, index: usize, frame: &[u8]) -> Option<Message> {
        let id = self.live_conn(index)?;
        let conn = Conn::Ws(id);
        let Ok(text) = std::str::from_utf8(frame) else {
            // tungstenite refuses a text frame that is not UTF-8: a read error.
            self.session
                .handle_transport_end(conn, CloseReason::TransportError);
            self.end_conn(index);
            self.after();
            return None;
        };
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let decoded = if self.v3 {
            crate::payload_v3::decode_packet_v3(bytes)
        } else {
            Packet::decode_text(bytes)
        };
        let msg = match decoded {
            Ok(p) => self.session.handle_packet(self.now, conn, p),
            Err(_) => {
                self.session.handle_decode_error(conn);
                None
            }
        };
        if let Some(m) = &msg {
            assert!(m.len() < frame.len(), "message larger than its frame");
        }
        self.after();
        msg
    }

    /// A binary frame on WebSocket `index`. Returns the message for the application, if any.
    pub fn ws_binary(&mut self, index: usize, frame: &[u8]) -> Option<Message> {
        let id = self.live_conn(index)?;
        let bytes = Bytes::copy_from_slice(frame);
        let msg = if self.v3 {
            match crate::payload_v3::decode_binary_packet_v3(bytes) {
                Ok(p) => self.session.handle_packet(self.now, Conn::Ws(id), p),
                Err(_) => {
                    self.session.handle_decode_error(Conn::Ws(id));
                    None
                }
            }
        } else {
            let p = Packet::decode_binary(bytes);
            self.session.handle_packet(self.now, Conn::Ws(id), p)
        };
        self.after();
        msg
    }

    /// The writer of WebSocket `index` asks what to write. Returns the packets written; a
    /// `Close` answer ends the connection.
    pub fn ws_take(&mut self, index: usize) -> Vec<Packet> {
        let Some(id) = self.live_conn(index) else {
            return Vec::new();
        };
        let closed = self.session.is_closed();
        let packets = match self.session.take_ws(self.now, id) {
            WsOutput::Idle => Vec::new(),
            WsOutput::Packets(p) => {
                assert!(
                    !p.is_empty(),
                    "empty WebSocket batch (the writer would spin)"
                );
                p
            }
            WsOutput::Close(p) => {
                self.end_conn(index);
                p
            }
        };
        self.took(&packets, closed);
        for p in &packets {
            if self.v3 {
                assert_ws_round_trip_v3(p);
            } else {
                assert_ws_round_trip(p);
            }
        }
        self.after();
        packets
    }

    /// The peer closed WebSocket `index` (close frame or EOF).
    pub fn ws_peer_close(&mut self, index: usize) {
        self.ws_end(index, CloseReason::TransportClose);
    }

    /// WebSocket `index` failed (read or write error, message over `max_payload`).
    pub fn ws_error(&mut self, index: usize) {
        self.ws_end(index, CloseReason::TransportError);
    }

    fn ws_end(&mut self, index: usize, reason: CloseReason) {
        let Some(id) = self.live_conn(index) else {
            return;
        };
        self.session.handle_transport_end(Conn::Ws(id), reason);
        self.end_conn(index);
        self.after();
    }

    // ----- the application -------------------------------------------------------------

    /// `Socket::send_all`. Returns whether the messages were queued.
    pub fn send(&mut self, msgs: Vec<Message>) -> bool {
        let open = self.session.is_open();
        let sent = self.session.send(msgs.clone().into_iter());
        if let Ok(s) = sent {
            if s.crossed {
                // What the glue does after a send that crossed the high-water mark.
                self.session.arm_stall(self.now);
            }
        }
        let ok = sent.is_ok();
        assert!(open || !ok, "send accepted by a session that is not open");
        if ok {
            self.queued.extend(msgs);
        }
        self.after();
        ok
    }

    /// `Socket::send_volatile`. Returns whether the messages were queued.
    pub fn send_volatile(&mut self, msgs: Vec<Message>) -> bool {
        let open = self.session.is_open();
        let ok = self.session.send_volatile(msgs.clone().into_iter());
        assert!(
            open || !ok,
            "volatile send accepted by a session that is not open"
        );
        if ok {
            self.queued.extend(msgs);
        }
        self.after();
        ok
    }

    /// `Socket::close`: queued messages still go out, then the close.
    pub fn close(&mut self) {
        self.session
            .close_gracefully(self.now, CloseReason::ForcedClose);
        self.after();
    }

    // ----- checks ----------------------------------------------------------------------

    /// Packets a writer took out: the queued application messages, exactly and in order.
    fn took(&mut self, packets: &[Packet], closed_before: bool) {
        let msgs: Vec<&Message> = packets
            .iter()
            .filter_map(|p| match p {
                Packet::Message(m) => Some(m),
                _ => None,
            })
            .collect();
        if closed_before {
            assert!(
                packets
                    .iter()
                    .all(|p| matches!(p, Packet::Noop | Packet::Close)),
                "closed session handed out {packets:?}"
            );
        }
        if msgs.is_empty() {
            return;
        }
        assert!(
            msgs.len() <= self.bound,
            "{} messages taken at once, bound {}",
            msgs.len(),
            self.bound
        );
        let expected: Vec<&Message> = self.queued.iter().collect();
        assert_eq!(msgs, expected, "taken messages differ from those queued");
        self.queued.clear();
    }

    /// The invariants that hold between any two steps.
    fn after(&mut self) {
        let closed = self.session.is_closed();
        if let Some(reason) = self.session.take_close_event() {
            assert!(closed, "close event {reason:?} while not closed");
            assert!(!self.close_reported, "close reported twice");
            self.close_reported = true;
        }
        assert!(!self.was_closed || closed, "a closed session reopened");
        if closed {
            assert!(self.close_reported, "closed without a close event");
            assert!(self.session.close_reason().is_some());
            assert!(!self.session.is_open());
            assert_eq!(self.session.poll_timeout(), None, "timer left after close");
            // Closing drops what was queued.
            self.queued.clear();
            self.was_closed = true;
        } else {
            assert!(
                self.session.poll_timeout().is_some(),
                "open session without a timer"
            );
        }
        let cost = self
            .queued
            .iter()
            .map(crate::proto::message_cost)
            .sum::<usize>();
        assert!(
            cost <= self.bound,
            "{cost} bytes queued, bound {}",
            self.bound
        );
        assert_eq!(cost, self.session.queued_bytes(), "queue's byte count");
    }
}

// ----- scripts ---------------------------------------------------------------------------

/// Script operations, one byte each (taken modulo 16), some followed by arguments.
/// `fuzz/README.md` documents the format for writing seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Op {
    /// A GET arrives.
    GetBegin = 0,
    /// The pending GET takes what there is.
    GetTake = 1,
    /// The pending GET's client goes away.
    GetEnd = 2,
    /// A POST arrives (its body comes with `PostBody`).
    PostBegin = 3,
    /// `len`, `len` bytes: the open POST's body; the POST ends.
    PostBody = 4,
    /// A WebSocket upgrade (a probe on a polling session).
    WsOpen = 5,
    /// `conn`, `len`, `len` bytes: a text frame on WebSocket number `conn % count`.
    WsText = 6,
    /// `conn`, `len`, `len` bytes: a binary frame.
    WsBinary = 7,
    /// `conn`: that WebSocket's writer takes what there is.
    WsTake = 8,
    /// `conn`: the peer closes that WebSocket.
    WsClose = 9,
    /// `conn`: that WebSocket fails.
    WsError = 10,
    /// `n`: the application sends `n & 31` messages at once (binary if `n & 0x80`).
    Send = 11,
    /// `n`: the same, volatile.
    SendVolatile = 12,
    /// The application closes the session.
    Close = 13,
    /// `t`: the clock moves `t × 8` ms.
    Tick = 14,
    /// The open POST fails (too large, read error).
    PostFail = 15,
}

impl Op {
    /// The operation for a script byte (taken modulo 16).
    pub fn from_byte(b: u8) -> Op {
        match b % 16 {
            0 => Op::GetBegin,
            1 => Op::GetTake,
            2 => Op::GetEnd,
            3 => Op::PostBegin,
            4 => Op::PostBody,
            5 => Op::WsOpen,
            6 => Op::WsText,
            7 => Op::WsBinary,
            8 => Op::WsTake,
            9 => Op::WsClose,
            10 => Op::WsError,
            11 => Op::Send,
            12 => Op::SendVolatile,
            13 => Op::Close,
            14 => Op::Tick,
            _ => Op::PostFail,
        }
    }
}

/// Reads script bytes; past the end every read is 0 / empty.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn arg(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.arg()).min(self.0.len());
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        head
    }
}

/// Target `session` (the Engine.IO part): runs `script` on a [`SessionHarness`], handing each
/// message for the application to `app` (which may act on the harness, e.g. close it).
///
/// Format: byte 0 configures the session: bit 0 set = opened on WebSocket (else polling),
/// bits 1–3 = the outbound budget in 8-byte messages, minus 1 (see [`SessionHarness::new`]),
/// bit 4 set = an Engine.IO v3 session ([`SessionHarness::with_protocol`]). Then a sequence of
/// [`Op`]s and their arguments.
pub fn run_session_script(script: &[u8], mut app: impl FnMut(&mut SessionHarness, Message)) {
    let mut r = Reader(script);
    let config = r.arg();
    let mut h = SessionHarness::with_protocol(
        config & 1 == 1,
        1 + usize::from((config >> 1) & 7),
        config & 16 != 0,
    );
    let mut counter = 0u32;
    while let Some(op) = r.byte() {
        let mut msgs = Vec::new();
        match Op::from_byte(op) {
            Op::GetBegin => {
                h.get_begin();
            }
            Op::GetTake => {
                h.get_take();
            }
            Op::GetEnd => h.get_end(),
            Op::PostBegin => {
                h.post_begin();
            }
            Op::PostBody => msgs = h.post_body(r.bytes()),
            Op::WsOpen => {
                h.ws_open();
            }
            Op::WsText | Op::WsBinary | Op::WsTake | Op::WsClose | Op::WsError => {
                let sel = usize::from(r.arg());
                let index = sel % h.ws_count().max(1);
                match Op::from_byte(op) {
                    Op::WsText => msgs.extend(h.ws_text(index, r.bytes())),
                    Op::WsBinary => msgs.extend(h.ws_binary(index, r.bytes())),
                    Op::WsTake => {
                        h.ws_take(index);
                    }
                    Op::WsClose => h.ws_peer_close(index),
                    _ => h.ws_error(index),
                }
            }
            Op::Send | Op::SendVolatile => {
                let n = r.arg();
                let batch: Vec<Message> = (0..n & 31)
                    .map(|_| {
                        counter += 1;
                        if n & 0x80 != 0 {
                            Message::Binary(Bytes::copy_from_slice(&counter.to_be_bytes()))
                        } else {
                            Message::from(format!("m{counter}"))
                        }
                    })
                    .collect();
                if Op::from_byte(op) == Op::Send {
                    h.send(batch);
                } else {
                    h.send_volatile(batch);
                }
            }
            Op::Close => h.close(),
            Op::Tick => h.advance(u64::from(r.arg()) * 8),
            Op::PostFail => h.post_fail(),
        }
        for m in msgs {
            app(&mut h, m);
        }
    }
}

/// [`run_session_script`] with an application that ignores what it receives.
pub fn check_session(script: &[u8]) {
    run_session_script(script, |_, _| {});
}

/// Runs `check` on every file of the committed corpus `fuzz/corpus/<target>/`
/// (found from `manifest_dir`, a crate directory of this workspace), in name
/// order: the stable replay of a fuzz target that the crates' tests share.
///
/// # Panics
/// If the corpus is missing or has fewer than 8 seeds, or if `check` panics
/// (the failing file is printed first). Test support only.
#[allow(clippy::panic)]
pub fn replay_corpus(manifest_dir: &str, target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(manifest_dir)
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<std::path::PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    assert!(paths.len() >= 8, "{}: too few seeds", dir.display());
    for path in paths {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Printed only when the test fails: names the input that broke the check.
        eprintln!("{target}: {}", path.display());
        check(&data);
    }
}

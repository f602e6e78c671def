//! Fuzzing support, not part of the API (hidden from the docs; may change at any time).
//!
//! Each `check_*` function is the property check of one target in `fuzz/fuzz_targets/`; the
//! stable replay test `tests/fuzz_corpus.rs` runs the same function over the committed corpus.
//! A check panics when a property is violated: that is how the fuzzer learns of it.

// Panicking on a violated property is the purpose of this module.
#![allow(clippy::panic)]

use bytes::Bytes;
use engineio::Message;
use engineio::fuzzing::{SessionHarness, run_session_script};

use crate::packet::{
    BinaryPacket, Decoder, Incoming, Limits, Packet, ParseError, decode, decode_msgpack,
};

/// The limits the server uses by default, and tight ones that fuzz inputs reach easily.
fn limit_sets() -> [Limits; 2] {
    [
        Limits::default(),
        Limits {
            max_attachments: 2,
            max_nsp_len: 8,
            max_json_depth: 4,
        },
    ]
}

/// Target `socketio_packet`: `data` (UTF-8, without the Engine.IO `4`) as one Socket.IO packet,
/// under the default limits and under tight ones.
///
/// Properties: decode → encode → decode gives the same packet and the same text; the
/// attachment count and the namespace length are within the limits.
pub fn check_packet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for limits in limit_sets() {
        if let Ok(p) = decode(text, &limits) {
            check_decoded(&p, &limits);
        }
    }
}

/// The properties of a packet that `decode` accepted under `limits`.
fn check_decoded(p: &Packet, limits: &Limits) {
    assert!(
        p.attachments <= limits.max_attachments,
        "{} attachments, limit {}",
        p.attachments,
        limits.max_attachments
    );
    assert!(
        p.kind.is_binary() || p.attachments == 0,
        "attachments on {:?}",
        p.kind
    );
    assert!(
        p.nsp.len() <= limits.max_nsp_len,
        "namespace of {} bytes, limit {}",
        p.nsp.len(),
        limits.max_nsp_len
    );
    assert!(p.nsp.starts_with('/'), "namespace {:?}", p.nsp);
    let encoded = p.encode();
    match decode(&encoded, limits) {
        Ok(back) => {
            assert_eq!(&back, p, "round trip via {encoded:?}");
            assert_eq!(back.encode(), encoded, "encoding not stable");
        }
        Err(e) => panic!("{p:?} encodes to {encoded:?}, which does not decode: {e}"),
    }
}

/// Target `socketio_msgpack`: `data` as one msgpack-parser packet (a whole binary Engine.IO
/// message), under the default limits and under tight ones.
///
/// Properties: what decodes has its namespace within the limit, a binary type exactly when it
/// carries binary values, and `packet.attachments` equal to their count; it re-encodes; the
/// re-encoding decodes to the same kind, namespace, id and binary values; from then on encoding
/// is stable (the first round may turn integral floats into integers, as notepack does).
pub fn check_msgpack_packet(data: &[u8]) {
    for limits in limit_sets() {
        let Ok(first) = decode_msgpack(data, &limits) else {
            continue;
        };
        check_msgpack_decoded(&first, &limits);
        let once = match first.encode_msgpack() {
            Ok(b) => b,
            Err(e) => panic!("{first:?} does not encode: {e}"),
        };
        let second = match decode_msgpack(&once, &limits) {
            Ok(p) => p,
            Err(e) => panic!("{first:?} encodes to {once:x?}, which does not decode: {e}"),
        };
        check_msgpack_decoded(&second, &limits);
        assert_eq!(second.packet.kind, first.packet.kind, "kind changed");
        assert_eq!(second.packet.nsp, first.packet.nsp, "namespace changed");
        assert_eq!(second.packet.id, first.packet.id, "id changed");
        assert_eq!(
            second.attachments, first.attachments,
            "binary values changed"
        );
        assert_eq!(
            second.packet.data.is_some(),
            first.packet.data.is_some(),
            "data appeared or vanished"
        );
        let twice = match second.encode_msgpack() {
            Ok(b) => b,
            Err(e) => panic!("{second:?} does not encode: {e}"),
        };
        assert_eq!(twice, once, "encoding not stable for {second:?}");
        match decode_msgpack(&twice, &limits) {
            Ok(third) => assert_eq!(third, second, "round trip via {twice:x?}"),
            Err(e) => panic!("{twice:x?} does not decode: {e}"),
        }
    }
}

/// The properties of a packet that `decode_msgpack` accepted under `limits`.
fn check_msgpack_decoded(bp: &BinaryPacket, limits: &Limits) {
    let p = &bp.packet;
    assert!(
        p.nsp.len() <= limits.max_nsp_len,
        "namespace of {} bytes, limit {}",
        p.nsp.len(),
        limits.max_nsp_len
    );
    if p.kind.is_binary() {
        assert!(!bp.attachments.is_empty(), "{:?} without binary", p.kind);
        assert_eq!(p.attachments, bp.attachments.len(), "declared vs carried");
    } else {
        assert_eq!(p.attachments, 0, "attachments declared on {:?}", p.kind);
    }
    if let Some(data) = &p.data {
        assert!(
            !crate::msgpack::is_undefined(data),
            "undefined kept as data"
        );
    }
}

/// A [`Decoder`] that checks its properties on every message: a complete packet carries
/// exactly its declared attachments, the ones fed, in order; no more than `max_attachments`
/// messages are ever buffered; an error leaves nothing buffered.
#[derive(Debug)]
pub struct CheckedDecoder {
    decoder: Decoder,
    limits: Limits,
    /// The attachments fed since the header that is waiting for them.
    buffered: Vec<Bytes>,
}

impl CheckedDecoder {
    /// A decoder with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            decoder: Decoder::new(limits),
            limits,
            buffered: Vec::new(),
        }
    }

    /// Feeds one Engine.IO message body, as `client.rs` does, and checks the outcome.
    pub fn feed(&mut self, message: Incoming<'_>) -> Result<Option<BinaryPacket>, ParseError> {
        let binary = match &message {
            Incoming::Binary(b) => Some(b.clone()),
            _ => None,
        };
        let result = self.decoder.feed(message);
        match &result {
            Err(_) => {
                assert!(
                    !self.decoder.is_waiting(),
                    "decoder still waits after an error"
                );
                self.buffered.clear();
            }
            Ok(None) => {
                assert!(self.decoder.is_waiting(), "Ok(None) without waiting");
                if let Some(b) = binary {
                    self.buffered.push(b);
                } else {
                    self.buffered.clear();
                }
                assert!(
                    self.buffered.len() < self.limits.max_attachments,
                    "{} attachments buffered, limit {}",
                    self.buffered.len(),
                    self.limits.max_attachments
                );
            }
            Ok(Some(bp)) => {
                assert!(!self.decoder.is_waiting(), "complete packet while waiting");
                check_decoded(&bp.packet, &self.limits);
                assert_eq!(
                    bp.attachments.len(),
                    bp.packet.attachments,
                    "attachments received vs declared"
                );
                let mut fed = std::mem::take(&mut self.buffered);
                fed.extend(binary);
                assert_eq!(bp.attachments, fed, "attachments differ from those fed");
            }
        }
        result
    }
}

/// Splits `data` into messages: items separated by `0x1e`; an item starting with `b` is a
/// binary message (the raw bytes after the `b`), any other a text message (lossy UTF-8).
fn messages(data: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    data.split(|&b| b == engineio::SEPARATOR)
        .map(|item| match item.split_first() {
            Some((b'b', rest)) => (true, rest),
            _ => (false, item),
        })
}

/// Target `socketio_binary`: `data` as a sequence of messages (see `fuzz/README.md`: items
/// separated by `0x1e`, `b<raw bytes>` for a binary message) fed to a [`CheckedDecoder`],
/// under the default limits and under tight ones.
pub fn check_binary(data: &[u8]) {
    for limits in limit_sets() {
        let mut decoder = CheckedDecoder::new(limits);
        for (binary, item) in messages(data) {
            let _ = if binary {
                decoder.feed(Incoming::Binary(Bytes::copy_from_slice(item)))
            } else {
                decoder.feed(Incoming::Text(&String::from_utf8_lossy(item)))
            };
        }
    }
}

/// Target `session`: runs `script` (see [`engineio::fuzzing::run_session_script`]) with the
/// Socket.IO decoder above the Engine.IO session: every message the session hands to the
/// application goes to a [`CheckedDecoder`]; a decode error closes the session, as the
/// server does (PROTOCOL.md §2.6).
pub fn check_session(script: &[u8]) {
    let mut decoder = CheckedDecoder::new(Limits::default());
    run_session_script(script, |h: &mut SessionHarness, msg| {
        let result = match &msg {
            Message::Text(t) => decoder.feed(Incoming::Text(t.as_str())),
            Message::Binary(b) => decoder.feed(Incoming::Binary(b.clone())),
        };
        if result.is_err() {
            h.close();
        }
    });
}

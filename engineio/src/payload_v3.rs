//! Engine.IO v3 packet forms and polling payloads (served only with
//! [`EngineConfig::allow_eio3`](crate::EngineConfig::allow_eio3)).
//!
//! Wire facts, from the reference server's v3 parser
//! (`packages/engine.io/lib/parser-v3/index.ts`, the `engine.io-parser` 2.x
//! code that engine.io 6 keeps for `allowEIO3`) and its polling transport
//! (`packages/engine.io/lib/transports/polling.ts`):
//!
//! - **Text payload**: every packet is `<length>:<packet>`, concatenated, no
//!   separator. The length is the packet's JavaScript `string.length`: UTF-16
//!   code units, so `€` counts 1 and an emoji outside the BMP counts 2
//!   (`decodePayload` takes `data.substr(i + 1, n)` and checks
//!   `length == msg.length`). An empty packet (`0:`) is skipped; an empty body,
//!   a prefix that is not a number, or a length the data does not match is a
//!   parse error for the whole payload.
//! - **Binary packets in text**: `b<type><base64>`, e.g. `b4AQID` is a binary
//!   message 01 02 03 (`decodeBase64Packet`). A client that sent `b64=1` in its
//!   handshake gets every binary packet this way.
//! - **Binary (XHR2) payload** (`decodePayloadAsBinary` / `encodePayloadAsBinary`,
//!   `Content-Type: application/octet-stream`): per packet, one byte `0`
//!   (string) or `1` (binary), the length as one byte per decimal digit
//!   (values 0–9), a `0xFF` terminator, then the data. String data are the
//!   packet's UTF-8 bytes and the length counts bytes; binary data start with
//!   the packet type as a raw byte (`0x04` for a message). The reference sends
//!   this form whenever a response holds a binary packet and the client did not
//!   ask for `b64`.
//! - **WebSocket**: text frames as in v4 (plus `b4<base64>`); binary frames
//!   carry the leading type byte `0x04` (`encodePacket` with binary data).
//!
//! Only binary *messages* exist on our side: a binary packet of another type
//! (which no client sends) is refused with [`DecodeError::UnsupportedBinary`].
//!
//! # Bounds
//! A length prefix has at most [`MAX_LENGTH_DIGITS`] digits (the reference
//! gives up after 310 characters); a declared length is checked against the
//! bytes that are left before anything is sliced, so a length that lies is a
//! [`DecodeError::BadLength`], never a large allocation. The body itself is
//! bounded by `max_payload`. Decoding is lazy, as for v4 ([`Payload`](crate::Payload)).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Message, Packet};

/// The most decimal digits a v3 length prefix may have (lengths up to
/// 9 999 999 999, far over any `max_payload`); a longer prefix is a
/// [`DecodeError::BadLength`] before it is read further.
pub const MAX_LENGTH_DIGITS: usize = 10;

/// The `Content-Type` of a v3 binary (XHR2) payload.
pub const BINARY_CONTENT_TYPE: &str = "application/octet-stream";

/// The type byte of a binary message in v3 (`0x04`, the `message` type as a
/// raw byte rather than a digit).
const MESSAGE_TYPE_BYTE: u8 = 4;

/// The framing of a v3 polling payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadV3Format {
    /// `<length>:<packet>` items, lengths in UTF-16 code units, binary as
    /// `b4<base64>` (`Content-Type: text/plain; charset=UTF-8`).
    Text,
    /// The XHR2 binary framing (`Content-Type: application/octet-stream`).
    Binary,
}

/// Lazily decodes the packets of a v3 polling payload, in order, without
/// collecting them; each item shares the body's buffer. Decoding stops at the
/// first error (the session is then closed).
///
/// ```
/// use engineio::{Message, Packet, PayloadV3};
/// let body = bytes::Bytes::from_static("2:4€6:b4AQID".as_bytes());
/// let packets: Vec<_> = PayloadV3::text(body).collect::<Result<_, _>>().unwrap();
/// assert_eq!(packets, vec![
///     Packet::Message(Message::from("€")),
///     Packet::Message(Message::from(vec![1u8, 2, 3])),
/// ]);
/// ```
#[derive(Debug, Clone)]
pub struct PayloadV3 {
    rest: Option<Bytes>,
    format: PayloadV3Format,
    /// Text payloads only: the body is empty or not UTF-8 (reported as the
    /// first item).
    invalid: Option<DecodeError>,
}

impl PayloadV3 {
    /// A decoder over a text body (`<length>:<packet>` items).
    ///
    /// An empty body is a [`DecodeError::Empty`], as the reference's
    /// "parser error" for `''`.
    pub fn text(body: Bytes) -> Self {
        // Validated once here, so that the per-item walk over code points
        // below can trust every lead byte.
        let invalid = if body.is_empty() {
            Some(DecodeError::Empty)
        } else if std::str::from_utf8(&body).is_err() {
            Some(DecodeError::InvalidUtf8)
        } else {
            None
        };
        PayloadV3 {
            rest: Some(body),
            format: PayloadV3Format::Text,
            invalid,
        }
    }

    /// A decoder over a binary (XHR2) body. An empty body holds no packet (the
    /// reference's loop over it does not run).
    pub fn binary(body: Bytes) -> Self {
        PayloadV3 {
            rest: Some(body),
            format: PayloadV3Format::Binary,
            invalid: None,
        }
    }

    /// A decoder for a body in `format`.
    pub fn new(body: Bytes, format: PayloadV3Format) -> Self {
        match format {
            PayloadV3Format::Text => Self::text(body),
            PayloadV3Format::Binary => Self::binary(body),
        }
    }
}

impl Iterator for PayloadV3 {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.as_mut()?;
        let item = match self.format {
            PayloadV3Format::Text if self.invalid.is_some() => {
                Err(self.invalid.take().unwrap_or(DecodeError::Empty))
            }
            PayloadV3Format::Text => next_text(rest),
            PayloadV3Format::Binary => next_binary(rest),
        };
        match item {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => {
                self.rest = None;
                None
            }
            Err(e) => {
                self.rest = None;
                Some(Err(e))
            }
        }
    }
}

/// How many UTF-16 code units the UTF-8 sequence led by `b` encodes.
fn utf16_units(lead: u8) -> usize {
    if lead >= 0xF0 { 2 } else { 1 }
}

/// The byte length of the UTF-8 sequence led by `b` (the text is valid UTF-8).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// UTF-16 code units of valid UTF-8 bytes (JavaScript's `string.length`).
fn utf16_len(text: &[u8]) -> usize {
    text.iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .map(|&b| utf16_units(b))
        .sum()
}

/// Parses a decimal length from digit values (0–9 each).
fn parse_digits(digits: impl Iterator<Item = u8>) -> Result<usize, DecodeError> {
    let mut n = 0usize;
    let mut count = 0usize;
    for d in digits {
        if d > 9 {
            return Err(DecodeError::BadLength);
        }
        count += 1;
        if count > MAX_LENGTH_DIGITS {
            return Err(DecodeError::BadLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d)))
            .ok_or(DecodeError::BadLength)?;
    }
    if count == 0 {
        return Err(DecodeError::BadLength);
    }
    Ok(n)
}

/// The next packet of a text payload; `Ok(None)` at the end.
fn next_text(rest: &mut Bytes) -> Result<Option<Packet>, DecodeError> {
    if rest.is_empty() {
        return Ok(None);
    }
    loop {
        // The length prefix: at most MAX_LENGTH_DIGITS digits, then `:`.
        let colon = rest
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|&b| b == b':')
            .ok_or(DecodeError::BadLength)?;
        let prefix = rest.get(..colon).ok_or(DecodeError::BadLength)?;
        let units = parse_digits(prefix.iter().map(|b| b.wrapping_sub(b'0')))?;
        let data = rest.slice(colon + 1..);
        // Walk `units` UTF-16 code units of the data (valid UTF-8, checked
        // up front); running out, or ending inside a surrogate pair, is a
        // length that lies.
        let mut at = 0usize;
        let mut seen = 0usize;
        while seen < units {
            let lead = *data.get(at).ok_or(DecodeError::BadLength)?;
            seen += utf16_units(lead);
            at += utf8_len(lead);
        }
        if seen != units || at > data.len() {
            return Err(DecodeError::BadLength);
        }
        let item = data.slice(..at);
        *rest = data.slice(at..);
        if !item.is_empty() {
            return decode_packet_v3(item).map(Some);
        }
        // `0:` is an empty packet, skipped as the reference does.
        if rest.is_empty() {
            return Ok(None);
        }
    }
}

/// The next packet of a binary (XHR2) payload; `Ok(None)` at the end.
fn next_binary(rest: &mut Bytes) -> Result<Option<Packet>, DecodeError> {
    let Some(&kind) = rest.first() else {
        return Ok(None);
    };
    if kind > 1 {
        return Err(DecodeError::UnsupportedBinary(kind));
    }
    let end = rest
        .iter()
        .skip(1)
        .take(MAX_LENGTH_DIGITS + 1)
        .position(|&b| b == 0xFF)
        .ok_or(DecodeError::BadLength)?;
    let digits = rest.get(1..1 + end).ok_or(DecodeError::BadLength)?;
    let len = parse_digits(digits.iter().copied())?;
    let start = 2 + end;
    let stop = start.checked_add(len).ok_or(DecodeError::BadLength)?;
    if stop > rest.len() {
        return Err(DecodeError::BadLength);
    }
    let data = rest.slice(start..stop);
    *rest = rest.slice(stop..);
    if kind == 0 {
        if std::str::from_utf8(&data).is_err() {
            return Err(DecodeError::InvalidUtf8);
        }
        decode_packet_v3(data).map(Some)
    } else {
        decode_binary_packet_v3(data).map(Some)
    }
}

/// Decodes one v3 packet in text form (a text WebSocket frame, or one item of
/// a payload): `b<type><base64>` is a binary packet, anything else a text
/// packet as in v4.
///
/// ```
/// use engineio::{Message, Packet, decode_packet_v3};
/// let p = decode_packet_v3(bytes::Bytes::from_static(b"b4AQID")).unwrap();
/// assert_eq!(p, Packet::Message(Message::from(vec![1u8, 2, 3])));
/// ```
///
/// # Errors
/// As [`Packet::decode_text`], plus [`DecodeError::InvalidBase64`] and
/// [`DecodeError::UnsupportedBinary`] for the `b` form.
pub fn decode_packet_v3(item: Bytes) -> Result<Packet, DecodeError> {
    match item.first() {
        Some(b'b') => match item.get(1) {
            Some(b'4') => {
                let decoded = BASE64
                    .decode(item.get(2..).unwrap_or_default())
                    .map_err(|_| DecodeError::InvalidBase64)?;
                Ok(Packet::Message(Message::Binary(Bytes::from(decoded))))
            }
            Some(&other) => Err(DecodeError::UnsupportedBinary(other)),
            None => Err(DecodeError::Empty),
        },
        _ => Packet::decode_text(item),
    }
}

/// Decodes a v3 binary packet (a binary WebSocket frame, or a binary item of
/// an XHR2 payload): the type byte `0x04`, then the message data.
///
/// # Errors
/// [`DecodeError::Empty`] without a type byte,
/// [`DecodeError::UnsupportedBinary`] for a type other than a message.
pub fn decode_binary_packet_v3(data: Bytes) -> Result<Packet, DecodeError> {
    match data.first() {
        Some(&MESSAGE_TYPE_BYTE) => Ok(Packet::Message(Message::Binary(data.slice(1..)))),
        Some(&other) => Err(DecodeError::UnsupportedBinary(other)),
        None => Err(DecodeError::Empty),
    }
}

/// The v3 binary form of binary message data: `0x04` then the data (a
/// binary WebSocket frame).
pub(crate) fn binary_frame_v3(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 1);
    buf.put_u8(MESSAGE_TYPE_BYTE);
    buf.put_slice(data);
    buf.freeze()
}

/// The v3 text form of binary message data, `b4<base64>` (a text WebSocket
/// frame for a `b64` client).
pub(crate) fn base64_text_v3(data: &[u8]) -> tokio_tungstenite::tungstenite::Utf8Bytes {
    let mut s = String::with_capacity(2 + data.len().div_ceil(3) * 4);
    s.push_str("b4");
    BASE64.encode_string(data, &mut s);
    tokio_tungstenite::tungstenite::Utf8Bytes::from(s)
}

/// Appends the v3 text form of a packet: binary messages as `b4<base64>`,
/// everything else as in v4.
fn encode_text_item(p: &Packet, buf: &mut BytesMut) {
    match p {
        Packet::Message(Message::Binary(b)) => {
            buf.put_u8(b'b');
            buf.put_u8(b'4');
            buf.put_slice(BASE64.encode(b).as_bytes());
        }
        other => other.encode_text(buf),
    }
}

fn put_digits(n: usize, buf: &mut BytesMut) {
    for d in n.to_string().bytes() {
        buf.put_u8(d - b'0');
    }
}

/// Encodes packets as one v3 polling payload: the XHR2 binary framing when a
/// packet is binary and the client can take binary (it did not send `b64=1`),
/// the text framing otherwise (`encodePayload(packets, supportsBinary)` in
/// the reference).
///
/// ```
/// use engineio::{Message, Packet, PayloadV3Format, encode_payload_v3};
/// let packets = [Packet::Message(Message::from("€")), Packet::Message(Message::from(vec![1u8]))];
/// let (body, format) = encode_payload_v3(&packets, true);
/// assert_eq!(format, PayloadV3Format::Text);
/// assert_eq!(&body[..], "2:4€6:b4AQ==".as_bytes());
/// let (body, format) = encode_payload_v3(&packets, false);
/// assert_eq!(format, PayloadV3Format::Binary);
/// assert_eq!(&body[..], b"\x00\x04\xff4\xe2\x82\xac\x01\x02\xff\x04\x01");
/// ```
pub fn encode_payload_v3(packets: &[Packet], b64: bool) -> (Bytes, PayloadV3Format) {
    let has_binary = packets
        .iter()
        .any(|p| matches!(p, Packet::Message(Message::Binary(_))));
    let mut buf = BytesMut::new();
    if has_binary && !b64 {
        for p in packets {
            match p {
                Packet::Message(Message::Binary(b)) => {
                    buf.put_u8(1);
                    put_digits(b.len() + 1, &mut buf);
                    buf.put_u8(0xFF);
                    buf.put_u8(MESSAGE_TYPE_BYTE);
                    buf.put_slice(b);
                }
                other => {
                    let mut item = BytesMut::with_capacity(other.encoded_len_hint());
                    other.encode_text(&mut item);
                    buf.put_u8(0);
                    put_digits(item.len(), &mut buf);
                    buf.put_u8(0xFF);
                    buf.put_slice(&item);
                }
            }
        }
        return (buf.freeze(), PayloadV3Format::Binary);
    }
    for p in packets {
        let mut item = BytesMut::with_capacity(p.encoded_len_hint() + 1);
        encode_text_item(p, &mut item);
        buf.put_slice(utf16_len(&item).to_string().as_bytes());
        buf.put_u8(b':');
        buf.put_slice(&item);
    }
    (buf.freeze(), PayloadV3Format::Text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;
    use proptest::prelude::*;

    fn text(b: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        PayloadV3::text(Bytes::copy_from_slice(b)).collect()
    }

    fn binary(b: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        PayloadV3::binary(Bytes::copy_from_slice(b)).collect()
    }

    fn msg(s: &str) -> Packet {
        Packet::Message(Message::from(s))
    }

    #[test]
    fn text_lengths_count_utf16_units() {
        assert_eq!(text("2:4€".as_bytes()).unwrap(), vec![msg("€")]);
        // U+1F600 is two UTF-16 units (four UTF-8 bytes).
        assert_eq!(text("3:4😀".as_bytes()).unwrap(), vec![msg("😀")]);
        assert_eq!(
            text(b"1:26:4hello1:3").unwrap(),
            vec![
                Packet::Ping { probe: false },
                msg("hello"),
                Packet::Pong { probe: false }
            ]
        );
        assert_eq!(encode_payload_v3(&[msg("😀")], true).0, "3:4😀".as_bytes());
    }

    #[test]
    fn lengths_that_lie_are_errors() {
        // Too short: the rest does not parse as a length.
        assert_eq!(text(b"2:4hello"), Err(DecodeError::BadLength));
        // Too long: the data runs out.
        assert_eq!(text(b"9:4hi"), Err(DecodeError::BadLength));
        // Ends in the middle of a surrogate pair.
        assert_eq!(text("2:4😀".as_bytes()), Err(DecodeError::BadLength));
        assert_eq!(text(b"a:4hi"), Err(DecodeError::BadLength));
        assert_eq!(text(b":4hi"), Err(DecodeError::BadLength));
        assert_eq!(text(b"4hi"), Err(DecodeError::BadLength));
        assert_eq!(text(b"99999999999999999999:4"), Err(DecodeError::BadLength));
        assert_eq!(text(b"9999999999:4"), Err(DecodeError::BadLength));
        assert_eq!(text(b"2:4\xff"), Err(DecodeError::InvalidUtf8));
        assert_eq!(text(b"1:x"), Err(DecodeError::UnknownType(b'x')));
        assert_eq!(text(b"2:b1"), Err(DecodeError::UnsupportedBinary(b'1')));
        assert_eq!(text(b"3:b4!"), Err(DecodeError::InvalidBase64));
        assert_eq!(text(b""), Err(DecodeError::Empty));
    }

    #[test]
    fn empty_packets_are_skipped_and_errors_stop_decoding() {
        assert_eq!(text(b"0:0:1:6").unwrap(), vec![Packet::Noop]);
        let mut it = PayloadV3::text(Bytes::from_static(b"1:6x:1:6"));
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn xhr2_binary_payloads() {
        // What the v2 client sends for `socket.emit("bin", Buffer)`: the
        // header as a string item, the attachment as a binary item.
        let body = b"\x00\x03\xff451\x01\x04\xff\x04\x01\x02\x03";
        assert_eq!(
            binary(body).unwrap(),
            vec![msg("51"), Packet::Message(Message::from(vec![1u8, 2, 3]))]
        );
        let (enc, format) = encode_payload_v3(&binary(body).unwrap(), false);
        assert_eq!(format, PayloadV3Format::Binary);
        assert_eq!(&enc[..], body);
        assert_eq!(binary(b""), Ok(vec![]));
        assert_eq!(
            binary(b"\x02\x01\xff4"),
            Err(DecodeError::UnsupportedBinary(2))
        );
        assert_eq!(binary(b"\x00\x09\xff4"), Err(DecodeError::BadLength));
        assert_eq!(binary(b"\x00\x0a\xff4"), Err(DecodeError::BadLength));
        assert_eq!(binary(b"\x00\xff4"), Err(DecodeError::BadLength));
        assert_eq!(binary(b"\x00\x01"), Err(DecodeError::BadLength));
        assert_eq!(
            binary(b"\x00\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\xff4"),
            Err(DecodeError::BadLength)
        );
        assert_eq!(binary(b"\x00\x01\xff\xc3"), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            binary(b"\x01\x01\xff\x02"),
            Err(DecodeError::UnsupportedBinary(2))
        );
        assert_eq!(binary(b"\x01\x00\xff"), Err(DecodeError::Empty));
    }

    #[test]
    fn websocket_forms() {
        assert_eq!(&binary_frame_v3(&[1, 2])[..], &[4, 1, 2]);
        assert_eq!(
            decode_binary_packet_v3(Bytes::from_static(&[4, 9])).unwrap(),
            Packet::Message(Message::from(vec![9u8]))
        );
        assert_eq!(
            decode_binary_packet_v3(Bytes::from_static(&[9])),
            Err(DecodeError::UnsupportedBinary(9))
        );
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        prop_oneof![
            any::<String>().prop_map(|s| Packet::Message(Message::from(s))),
            proptest::collection::vec(any::<u8>(), 0..32)
                .prop_map(|v| Packet::Message(Message::from(v))),
            Just(Packet::Ping { probe: false }),
            Just(Packet::Pong { probe: true }),
            Just(Packet::Noop),
            Just(Packet::Close),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(packets in proptest::collection::vec(arb_packet(), 1..8), b64 in any::<bool>()) {
            let (body, format) = encode_payload_v3(&packets, b64);
            let back: Vec<Packet> = PayloadV3::new(body, format).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(back, packets);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = text(&data);
            let _ = binary(&data);
        }
    }
}

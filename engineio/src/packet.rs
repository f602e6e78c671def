//! Engine.IO v4 packets: the seven packet types, text and binary messages, and
//! their encoding as WebSocket frames and as polling payload items.
//!
//! Wire format (engine.io-protocol v4):
//! - a text packet is one ASCII type digit followed by optional UTF-8 data: `4hello`, `2`, `3probe`;
//! - a binary packet is always a message: a raw WebSocket binary frame, or `b` + standard
//!   base64 inside a polling payload (see [`crate::payload`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::DecodeError;

/// Immutable, cheaply clonable UTF-8 text backed by [`Bytes`].
///
/// Cloning shares the buffer, so one encoded broadcast can be queued for many
/// sessions without copying.
///
/// ```
/// use engineio::Str;
/// let s = Str::from("héllo");
/// assert_eq!(s.as_str(), "héllo");
/// assert_eq!(Str::try_from(bytes::Bytes::from_static(&[0xff])).is_err(), true);
/// ```
///
/// A text made with [`Str::message_frame`] also holds its WebSocket frame
/// (`4` + text), so sending it to many sessions copies nothing per session.
#[derive(Clone, Default)]
pub struct Str {
    buf: Utf8Bytes,
    /// 1 when `buf` starts with the message type digit `4` that is not part
    /// of the text, 0 otherwise.
    skip: u8,
    /// For a [`message_frame`](Str::message_frame) (a broadcast): its frame
    /// compressed for permessage-deflate, with the (level, window bits) it
    /// was compressed with, made by the first connection that needs it and
    /// shared by the others that can read it.
    deflated: Option<Arc<OnceLock<Deflated>>>,
}

/// A compressed broadcast frame: the zlib level and window bits it was
/// made with, and its bytes (`None`: compression failed, sent plain).
type Deflated = (u32, u8, Option<Bytes>);

impl Str {
    /// Wraps a static string without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Str {
            buf: Utf8Bytes::from_static(s),
            skip: 0,
            deflated: None,
        }
    }

    /// A text that carries its Engine.IO message frame (`4` + `text`), built
    /// once here: for a text sent to many sessions (a broadcast).
    ///
    /// ```
    /// let s = engineio::Str::message_frame("hello");
    /// assert_eq!(s.as_str(), "hello");
    /// assert_eq!(s, engineio::Str::from("hello"));
    /// ```
    pub fn message_frame(text: &str) -> Self {
        let mut framed = String::with_capacity(text.len() + 1);
        framed.push('4');
        framed.push_str(text);
        Str {
            buf: Utf8Bytes::from(framed),
            skip: 1,
            deflated: Some(Arc::default()),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.buf
            .as_str()
            .get(usize::from(self.skip)..)
            .unwrap_or_default()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len() - usize::from(self.skip)
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The underlying bytes (shared, not copied).
    pub fn into_bytes(self) -> Bytes {
        let skip = usize::from(self.skip);
        let b: Bytes = self.buf.into();
        if skip == 0 { b } else { b.slice(skip..) }
    }

    pub(crate) fn from_utf8_bytes(b: Utf8Bytes) -> Self {
        Str {
            buf: b,
            skip: 0,
            deflated: None,
        }
    }

    /// The message frame (`4` + text) compressed by `compress` at `level`
    /// with a window of `window_bits` (`None`: sent uncompressed); for a
    /// [`message_frame`](Self::message_frame) computed once and shared by
    /// every session it is sent to with the same level and a window at least
    /// as large (a compressor with no context takeover gives every recipient
    /// the same bytes, and a smaller window's bytes read with a larger one).
    pub(crate) fn deflated_frame(
        &self,
        level: u32,
        window_bits: u8,
        compress: impl FnOnce(&[u8]) -> Option<Bytes>,
    ) -> Option<Bytes> {
        let Some(cell) = &self.deflated else {
            return compress(self.message_frame_bytes().as_bytes());
        };
        let mut compress = Some(compress);
        let (l, b, shared) = cell.get_or_init(|| {
            let c = compress
                .take()
                .and_then(|f| f(self.message_frame_bytes().as_bytes()));
            (level, window_bits, c)
        });
        if *l == level && *b <= window_bits {
            return shared.clone();
        }
        compress.and_then(|f| f(self.message_frame_bytes().as_bytes()))
    }

    /// The WebSocket frame of this text as a message (`4` + text), shared
    /// when the text was made with [`message_frame`](Self::message_frame).
    pub(crate) fn message_frame_bytes(&self) -> Utf8Bytes {
        if self.skip == 1 {
            return self.buf.clone();
        }
        let mut framed = String::with_capacity(self.len() + 1);
        framed.push('4');
        framed.push_str(self.as_str());
        Utf8Bytes::from(framed)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::ops::Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str::from_utf8_bytes(Utf8Bytes::from(s))
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::from_utf8_bytes(Utf8Bytes::from(s))
    }
}

impl TryFrom<Bytes> for Str {
    type Error = DecodeError;
    fn try_from(b: Bytes) -> Result<Self, DecodeError> {
        Utf8Bytes::try_from(b)
            .map(Str::from_utf8_bytes)
            .map_err(|_| DecodeError::InvalidUtf8)
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An application message: what [`Packet::Message`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (`4<text>` on the wire).
    Text(Str),
    /// A binary message (a binary WebSocket frame, or `b<base64>` in polling).
    Binary(Bytes),
}

impl Message {
    /// Size of the message body in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(Str::from(s))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(Str::from(s))
    }
}

impl From<Str> for Message {
    fn from(s: Str) -> Self {
        Message::Text(s)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(Bytes::from(b))
    }
}

/// The type digit of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketType {
    /// `0`: handshake, server → client.
    Open,
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat ping (server → client; `2probe` from the client during an upgrade).
    Ping,
    /// `3`: heartbeat pong (client → server; `3probe` from the server during an upgrade).
    Pong,
    /// `4`: application message.
    Message,
    /// `5`: finishes a transport upgrade.
    Upgrade,
    /// `6`: no-op, releases a pending poll.
    Noop,
}

impl PacketType {
    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    fn digit(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }
}

/// One Engine.IO packet.
///
/// ```
/// use engineio::{Message, Packet};
/// let p = Packet::decode_text(bytes::Bytes::from_static(b"4hello")).unwrap();
/// assert_eq!(p, Packet::Message(Message::from("hello")));
/// let mut buf = bytes::BytesMut::new();
/// p.encode_text(&mut buf);
/// assert_eq!(&buf[..], b"4hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Packet {
    /// Handshake; the data is the JSON handshake object.
    Open(Str),
    /// Close the session.
    Close,
    /// Ping; `probe` is true for `2probe`.
    Ping {
        /// Whether the data was `probe`.
        probe: bool,
    },
    /// Pong; `probe` is true for `3probe`.
    Pong {
        /// Whether the data was `probe`.
        probe: bool,
    },
    /// Application message.
    Message(Message),
    /// Upgrade complete.
    Upgrade,
    /// No-op.
    Noop,
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping { .. } => PacketType::Ping,
            Packet::Pong { .. } => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Decodes a text packet (a WebSocket text frame or one polling item that
    /// does not start with `b`). Message data is shared with `data`, not copied.
    ///
    /// Rules: the packet must not be empty; the first byte must be a type digit
    /// `0`..=`6`; the rest must be UTF-8. Data after `1`, `5` and `6` is ignored
    /// (as the reference server does); ping/pong data other than `probe` is ignored.
    pub fn decode_text(data: Bytes) -> Result<Packet, DecodeError> {
        let first = *data.first().ok_or(DecodeError::Empty)?;
        let kind = PacketType::from_byte(first)?;
        let rest = data.slice(1..);
        Ok(match kind {
            PacketType::Open => Packet::Open(Str::try_from(rest)?),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping {
                probe: &rest[..] == b"probe",
            },
            PacketType::Pong => Packet::Pong {
                probe: &rest[..] == b"probe",
            },
            PacketType::Message => Packet::Message(Message::Text(Str::try_from(rest)?)),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// Decodes a binary WebSocket frame: always a binary message, no type byte.
    pub fn decode_binary(data: Bytes) -> Packet {
        Packet::Message(Message::Binary(data))
    }

    /// Decodes one item of a polling payload: `b<base64>` is a binary message,
    /// anything else a text packet.
    pub fn decode_polling_item(item: Bytes) -> Result<Packet, DecodeError> {
        match item.first() {
            Some(b'b') => {
                let decoded = BASE64
                    .decode(item.get(1..).unwrap_or_default())
                    .map_err(|_| DecodeError::InvalidBase64)?;
                Ok(Packet::Message(Message::Binary(Bytes::from(decoded))))
            }
            _ => Packet::decode_text(item),
        }
    }

    /// Appends the text encoding (`<digit><data>`). A binary message is written
    /// in its polling form `b<base64>`, the only text form it has.
    pub fn encode_text(&self, buf: &mut BytesMut) {
        match self {
            Packet::Message(Message::Binary(b)) => encode_base64(b, buf),
            other => {
                buf.put_u8(other.packet_type().digit());
                match other {
                    Packet::Open(s) | Packet::Message(Message::Text(s)) => {
                        buf.put_slice(s.as_bytes())
                    }
                    Packet::Ping { probe: true } | Packet::Pong { probe: true } => {
                        buf.put_slice(b"probe")
                    }
                    _ => {}
                }
            }
        }
    }

    /// Upper bound of the bytes [`encode_text`](Self::encode_text) writes.
    pub fn encoded_len_hint(&self) -> usize {
        match self {
            Packet::Open(s) | Packet::Message(Message::Text(s)) => 1 + s.len(),
            Packet::Message(Message::Binary(b)) => 1 + b.len().div_ceil(3) * 4,
            _ => 6,
        }
    }

    /// The WebSocket text form of a non-binary packet, as a string that shares
    /// nothing with `self` only where a prefix must be added.
    pub(crate) fn to_text_frame(&self) -> Utf8Bytes {
        match self {
            Packet::Ping { probe: false } => Utf8Bytes::from_static("2"),
            Packet::Pong { probe: true } => Utf8Bytes::from_static("3probe"),
            Packet::Noop => Utf8Bytes::from_static("6"),
            Packet::Close => Utf8Bytes::from_static("1"),
            Packet::Message(Message::Text(t)) => t.message_frame_bytes(),
            _ => {
                let mut s = String::with_capacity(self.encoded_len_hint());
                s.push(char::from(self.packet_type().digit()));
                match self {
                    Packet::Open(t) | Packet::Message(Message::Text(t)) => s.push_str(t),
                    Packet::Ping { probe: true } | Packet::Pong { probe: true } => {
                        s.push_str("probe")
                    }
                    _ => {}
                }
                Utf8Bytes::from(s)
            }
        }
    }
}

fn encode_base64(data: &[u8], buf: &mut BytesMut) {
    buf.put_u8(b'b');
    let start = buf.len();
    let needed = data.len().div_ceil(3) * 4;
    buf.resize(start + needed, 0);
    // `needed` is exactly the padded base64 length, so this cannot fail.
    let written = BASE64
        .encode_slice(data, buf.get_mut(start..).unwrap_or_default())
        .unwrap_or(0);
    buf.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(p: &Packet) -> Vec<u8> {
        let mut b = BytesMut::new();
        p.encode_text(&mut b);
        b.to_vec()
    }

    #[test]
    fn decodes_every_type() {
        let cases: &[(&[u8], Packet)] = &[
            (b"0{}", Packet::Open(Str::from("{}"))),
            (b"1", Packet::Close),
            (b"2", Packet::Ping { probe: false }),
            (b"2probe", Packet::Ping { probe: true }),
            (b"3", Packet::Pong { probe: false }),
            (b"3probe", Packet::Pong { probe: true }),
            (b"4hello", Packet::Message(Message::from("hello"))),
            (b"4", Packet::Message(Message::from(""))),
            (b"5", Packet::Upgrade),
            (b"6", Packet::Noop),
        ];
        for (wire, want) in cases {
            let got = Packet::decode_text(Bytes::from_static(wire)).unwrap();
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(wire));
            assert_eq!(enc(&got), wire.to_vec());
            assert_eq!(
                got.to_text_frame().as_str().as_bytes(),
                *wire,
                "ws form of {got:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Packet::decode_text(Bytes::new()), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"abc")),
            Err(DecodeError::UnknownType(b'a'))
        );
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"7")),
            Err(DecodeError::UnknownType(b'7'))
        );
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"4\xff\xfe")),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            Packet::decode_polling_item(Bytes::from_static(b"b!!!")),
            Err(DecodeError::InvalidBase64)
        );
    }

    #[test]
    fn binary_in_polling_is_base64() {
        let p = Packet::decode_polling_item(Bytes::from_static(b"bAQIDBA==")).unwrap();
        assert_eq!(
            p,
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
        assert_eq!(enc(&p), b"bAQIDBA==".to_vec());
        assert_eq!(
            Packet::decode_polling_item(Bytes::from_static(b"b")).unwrap(),
            Packet::Message(Message::Binary(Bytes::new()))
        );
    }

    #[test]
    fn message_data_is_not_copied() {
        let wire = Bytes::from(b"4some message body".to_vec());
        let base = wire.as_ptr();
        let Packet::Message(Message::Text(t)) = Packet::decode_text(wire).unwrap() else {
            panic!("not a text message")
        };
        assert_eq!(t.as_ptr(), base.wrapping_add(1));
    }

    #[test]
    fn a_broadcast_frame_is_compressed_once_for_all_its_clones() {
        let calls = std::cell::Cell::new(0);
        let compress = |b: &[u8]| {
            calls.set(calls.get() + 1);
            Some(Bytes::copy_from_slice(b).slice(1..))
        };
        let s = Str::message_frame("shared");
        let copies: Vec<Str> = (0..5).map(|_| s.clone()).collect();
        let first = copies[0].deflated_frame(6, 12, compress).unwrap();
        assert_eq!(
            &first[..],
            b"shared",
            "the frame (`4` + text) is what is compressed"
        );
        for (c, bits) in copies.iter().zip([12, 12, 13, 15, 15]) {
            let again = c.deflated_frame(6, bits, compress).unwrap();
            assert_eq!(again.as_ptr(), first.as_ptr(), "one compressed buffer");
        }
        assert_eq!(calls.get(), 1);
        // A smaller window, or another level, cannot read or reuse it.
        s.deflated_frame(6, 11, compress);
        s.deflated_frame(5, 15, compress);
        assert_eq!(calls.get(), 3);
        // A text that is not a broadcast frame is compressed on each send.
        let direct = Str::from("direct");
        direct.deflated_frame(6, 15, compress);
        direct.deflated_frame(6, 15, compress);
        assert_eq!(calls.get(), 5);
    }

    #[test]
    fn message_frame_is_shared_not_rebuilt() {
        let s = Str::message_frame("héllo");
        assert_eq!(s.as_str(), "héllo");
        assert_eq!(s.len(), 6);
        assert_eq!(s, Str::from("héllo"));
        let p = Packet::Message(Message::Text(s.clone()));
        let a = p.to_text_frame();
        let b = p.to_text_frame();
        assert_eq!(a.as_str(), "4héllo");
        assert_eq!(a.as_ptr(), b.as_ptr(), "one buffer for every session");
        let mut buf = BytesMut::new();
        p.encode_text(&mut buf);
        assert_eq!(&buf[..], "4héllo".as_bytes());
        assert_eq!(&s.into_bytes()[..], "héllo".as_bytes());
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        prop_oneof![
            ".*".prop_map(|s: String| Packet::Open(Str::from(s))),
            Just(Packet::Close),
            any::<bool>().prop_map(|probe| Packet::Ping { probe }),
            any::<bool>().prop_map(|probe| Packet::Pong { probe }),
            ".*".prop_map(|s: String| Packet::Message(Message::from(s))),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|v| Packet::Message(Message::from(v))),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
        ]
    }

    proptest! {
        #[test]
        fn polling_round_trip(p in arb_packet()) {
            let wire = Bytes::from(enc(&p));
            prop_assert_eq!(Packet::decode_polling_item(wire).unwrap(), p);
        }

        #[test]
        fn ws_round_trip(p in arb_packet()) {
            let back = match &p {
                Packet::Message(Message::Binary(b)) => Packet::decode_binary(b.clone()),
                other => Packet::decode_text(other.to_text_frame().into()).unwrap(),
            };
            prop_assert_eq!(back, p);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Packet::decode_polling_item(Bytes::from(data.clone()));
            let _ = Packet::decode_text(Bytes::from(data));
        }
    }
}

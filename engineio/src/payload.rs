//! Polling payloads: packets joined by the record separator `\x1e` (no length
//! prefixes in v4), binary messages as `b<base64>` items.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::Packet;

/// The record separator between packets of a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Lazily decodes the packets of a polling payload, in order, without
/// collecting them: memory stays O(1) in the number of packets, whatever the
/// body holds. Each item shares the body's buffer.
///
/// An empty body is one empty packet, hence a [`DecodeError::Empty`]; decoding
/// stops at the first error (the session is then closed).
///
/// ```
/// use engineio::{Packet, Payload};
/// let body = bytes::Bytes::from_static(b"4hello\x1e2\x1ebAQIDBA==");
/// let packets: Vec<_> = Payload::new(body).collect::<Result<_, _>>().unwrap();
/// assert_eq!(packets.len(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct Payload {
    rest: Option<Bytes>,
}

impl Payload {
    /// A decoder over one POST body.
    pub fn new(body: Bytes) -> Self {
        Payload { rest: Some(body) }
    }
}

impl Iterator for Payload {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rest = self.rest.take()?;
        let item = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(i) => {
                let item = rest.split_to(i);
                // Drop the separator itself; what follows is the next item.
                let _ = rest.split_to(1);
                self.rest = Some(rest);
                item
            }
            None => rest,
        };
        let decoded = Packet::decode_polling_item(item);
        if decoded.is_err() {
            self.rest = None;
        }
        Some(decoded)
    }
}

/// Encodes packets as one polling payload.
///
/// ```
/// use engineio::{Message, Packet, encode_payload};
/// let body = encode_payload(&[Packet::Message(Message::from("a")), Packet::Ping { probe: false }]);
/// assert_eq!(&body[..], b"4a\x1e2");
/// ```
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> Bytes {
    let mut buf = BytesMut::new();
    for (i, p) in packets.into_iter().enumerate() {
        if i > 0 {
            buf.put_u8(SEPARATOR);
        }
        buf.reserve(p.encoded_len_hint());
        p.encode_text(&mut buf);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Message;
    use proptest::prelude::*;

    fn decode(b: &'static [u8]) -> Result<Vec<Packet>, DecodeError> {
        Payload::new(Bytes::from_static(b)).collect()
    }

    #[test]
    fn splits_on_separator() {
        let got = decode(b"4test1\x1e4test2\x1e4test3").unwrap();
        assert_eq!(
            got,
            vec![
                Packet::Message(Message::from("test1")),
                Packet::Message(Message::from("test2")),
                Packet::Message(Message::from("test3")),
            ]
        );
        assert_eq!(&encode_payload(&got)[..], b"4test1\x1e4test2\x1e4test3");
    }

    #[test]
    fn errors_stop_decoding() {
        assert_eq!(decode(b""), Err(DecodeError::Empty));
        assert_eq!(decode(b"4a\x1e"), Err(DecodeError::Empty));
        let mut it = Payload::new(Bytes::from_static(b"4a\x1eabc\x1e4b"));
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn many_tiny_packets_stream() {
        let mut body = BytesMut::new();
        for i in 0..100_000 {
            if i > 0 {
                body.put_u8(SEPARATOR);
            }
            body.put_u8(b'6');
        }
        assert_eq!(Payload::new(body.freeze()).count(), 100_000);
    }

    proptest! {
        #[test]
        fn round_trip(msgs in proptest::collection::vec(
            prop_oneof![
                "[^\u{1e}]*".prop_map(|s: String| Packet::Message(Message::from(s))),
                proptest::collection::vec(any::<u8>(), 0..32).prop_map(|v| Packet::Message(Message::from(v))),
                Just(Packet::Ping { probe: false }),
                Just(Packet::Noop),
                Just(Packet::Close),
            ], 1..8)) {
            let body = encode_payload(&msgs);
            let back: Vec<Packet> = Payload::new(body).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(back, msgs);
        }
    }
}

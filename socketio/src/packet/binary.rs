//! Binary packets: a text header followed by its attachments as separate Engine.IO binary
//! messages (PROTOCOL.md §2.2, "Binary").

use bytes::Bytes;
use serde_json::Value;

use super::{Limits, Packet, ParseError, decode};

/// A packet together with its attachments, in order (`attachments[i]` is placeholder `num: i`).
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryPacket {
    /// The header packet; its `data` keeps the placeholders.
    pub packet: Packet,
    /// The attachments; empty for non-binary packets.
    pub attachments: Vec<Bytes>,
}

impl BinaryPacket {
    /// An event, sent as BINARY_EVENT when `attachments` is not empty and as EVENT otherwise
    /// (§2.2: "The server encodes EVENT/ACK as 5/6 automatically when the data holds binary").
    /// `data` is `[name, ...args]` with placeholders, as made by [`to_value`](super::to_value).
    pub fn event(
        nsp: impl Into<String>,
        data: Value,
        attachments: Vec<Bytes>,
        id: Option<u64>,
    ) -> Self {
        let packet = if attachments.is_empty() {
            Packet::event(nsp, data, id)
        } else {
            Packet::binary_event(nsp, data, id, attachments.len())
        };
        Self {
            packet,
            attachments,
        }
    }

    /// An ack for id `id`, sent as BINARY_ACK when `attachments` is not empty and as ACK
    /// otherwise.
    pub fn ack(nsp: impl Into<String>, data: Value, attachments: Vec<Bytes>, id: u64) -> Self {
        let packet = if attachments.is_empty() {
            Packet::ack(nsp, data, id)
        } else {
            Packet::binary_ack(nsp, data, id, attachments.len())
        };
        Self {
            packet,
            attachments,
        }
    }

    /// The text header; send it first, then each of `self.attachments` as a binary message.
    pub fn encode(&self) -> String {
        self.packet.encode()
    }
}

/// One Engine.IO message body, as handed to [`Decoder::feed`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Incoming<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(Bytes),
}

/// Reassembles binary packets from the Engine.IO messages of one connection.
///
/// A BINARY_EVENT / BINARY_ACK header that declares `n > 0` attachments is held until the next
/// `n` binary messages arrive. At most [`Limits::max_attachments`] messages are buffered, so the
/// worst case is that many times the Engine.IO `maxPayload`. After an error the decoder has
/// dropped any partial packet and starts afresh, though the reference server closes the
/// connection on any error (§2.6).
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    pending: Option<BinaryPacket>,
}

impl Decoder {
    /// A decoder that applies `limits` to every packet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: None,
        }
    }

    /// Whether a binary header is waiting for more attachments.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Feeds one message; see [`Decoder::feed_text`] and [`Decoder::feed_binary`].
    pub fn feed(&mut self, message: Incoming<'_>) -> Result<Option<BinaryPacket>, ParseError> {
        match message {
            Incoming::Text(text) => self.feed_text(text),
            Incoming::Binary(data) => self.feed_binary(data),
        }
    }

    /// Feeds a text message. `Ok(Some(_))` is a complete packet, `Ok(None)` means a binary
    /// header now waits for its attachments.
    pub fn feed_text(&mut self, text: &str) -> Result<Option<BinaryPacket>, ParseError> {
        // §2.2: "A text packet arriving while attachments are still expected is an error".
        if self.pending.take().is_some() {
            return Err(ParseError::UnexpectedText);
        }
        let packet = decode(text, &self.limits)?;
        let attachments = Vec::with_capacity(packet.attachments);
        let complete = BinaryPacket {
            packet,
            attachments,
        };
        // A non-binary packet, or a binary one declaring 0 attachments, is complete at once.
        if complete.packet.kind.is_binary() && complete.packet.attachments > 0 {
            self.pending = Some(complete);
            Ok(None)
        } else {
            Ok(Some(complete))
        }
    }

    /// Feeds a binary message. `Ok(Some(_))` when it was the last attachment expected.
    pub fn feed_binary(&mut self, data: Bytes) -> Result<Option<BinaryPacket>, ParseError> {
        // §2.2: "a binary frame arriving when none are expected" is an error.
        let Some(pending) = self.pending.as_mut() else {
            return Err(ParseError::UnexpectedBinary);
        };
        pending.attachments.push(data);
        if pending.attachments.len() < pending.packet.attachments {
            return Ok(None);
        }
        Ok(self.pending.take())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::packet::PacketType;

    fn decoder() -> Decoder {
        Decoder::new(Limits::default())
    }

    #[test]
    fn text_packet_completes_at_once() {
        let mut d = decoder();
        let p = d.feed_text(r#"2["foo"]"#).unwrap().unwrap();
        assert_eq!(p.packet.kind, PacketType::Event);
        assert!(p.attachments.is_empty());
        assert!(!d.is_waiting());
    }

    #[test]
    fn spec_example_one_attachment() {
        // §2.2: `451-["hello","a",{"_placeholder":true,"num":0}]` then frame <01 02>.
        let mut d = decoder();
        let header = r#"51-["hello","a",{"_placeholder":true,"num":0}]"#;
        assert_eq!(d.feed_text(header).unwrap(), None);
        assert!(d.is_waiting());
        let p = d
            .feed(Incoming::Binary(Bytes::from_static(&[1, 2])))
            .unwrap()
            .unwrap();
        assert_eq!(p.packet.kind, PacketType::BinaryEvent);
        assert_eq!(p.packet.attachments, 1);
        assert_eq!(p.attachments, vec![Bytes::from_static(&[1, 2])]);
        assert_eq!(p.packet.event_name(), Some("hello"));
        assert!(!d.is_waiting());
    }

    #[test]
    fn spec_example_two_attachments_on_admin() {
        let mut d = decoder();
        let header =
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(d.feed(Incoming::Text(header)).unwrap(), None);
        assert_eq!(d.feed_binary(Bytes::from_static(b"a")).unwrap(), None);
        let p = d.feed_binary(Bytes::from_static(b"b")).unwrap().unwrap();
        assert_eq!(p.packet.nsp, "/admin");
        assert_eq!(
            p.attachments,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }

    #[test]
    fn zero_attachments_completes_at_once() {
        let mut d = decoder();
        let p = d.feed_text(r#"50-["x"]"#).unwrap().unwrap();
        assert_eq!(p.packet.kind, PacketType::BinaryEvent);
        assert!(p.attachments.is_empty());
    }

    #[test]
    fn text_while_waiting_is_an_error_and_resets() {
        let mut d = decoder();
        d.feed_text(r#"51-["x",{"_placeholder":true,"num":0}]"#)
            .unwrap();
        assert_eq!(
            d.feed_text(r#"2["y"]"#).unwrap_err(),
            ParseError::UnexpectedText
        );
        assert!(!d.is_waiting());
        assert!(d.feed_text(r#"2["y"]"#).unwrap().is_some());
    }

    #[test]
    fn binary_when_not_waiting_is_an_error() {
        let mut d = decoder();
        assert_eq!(
            d.feed_binary(Bytes::from_static(&[1])).unwrap_err(),
            ParseError::UnexpectedBinary
        );
        d.feed_text(r#"50-["x"]"#).unwrap();
        assert_eq!(
            d.feed_binary(Bytes::from_static(&[1])).unwrap_err(),
            ParseError::UnexpectedBinary
        );
    }

    #[test]
    fn decode_errors_pass_through() {
        let mut d = decoder();
        assert_eq!(
            d.feed_text("abc").unwrap_err(),
            ParseError::UnknownType(b'a')
        );
    }

    #[test]
    fn builders_pick_binary_type_only_with_attachments() {
        let text = BinaryPacket::event("/", json!(["a"]), Vec::new(), None);
        assert_eq!(text.encode(), r#"2["a"]"#);
        let bin = BinaryPacket::event(
            "/admin",
            json!(["a", {"_placeholder": true, "num": 0}]),
            vec![Bytes::from_static(&[1])],
            Some(3),
        );
        assert_eq!(
            bin.encode(),
            r#"51-/admin,3["a",{"_placeholder":true,"num":0}]"#
        );
        let ack = BinaryPacket::ack(
            "/",
            json!([{"_placeholder": true, "num": 0}]),
            vec![Bytes::new()],
            15,
        );
        assert_eq!(ack.encode(), r#"61-15[{"_placeholder":true,"num":0}]"#);
        assert_eq!(
            BinaryPacket::ack("/", json!([]), Vec::new(), 1).encode(),
            "31[]"
        );
    }

    #[test]
    fn round_trip_through_decoder() {
        let sent = BinaryPacket::event(
            "/",
            json!(["message", {"_placeholder": true, "num": 0}, {"_placeholder": true, "num": 1}]),
            vec![
                Bytes::from_static(&[1, 2, 3]),
                Bytes::from_static(&[4, 5, 6]),
            ],
            None,
        );
        let mut d = decoder();
        assert_eq!(d.feed_text(&sent.encode()).unwrap(), None);
        assert_eq!(d.feed_binary(sent.attachments[0].clone()).unwrap(), None);
        let got = d.feed_binary(sent.attachments[1].clone()).unwrap().unwrap();
        assert_eq!(got, sent);
    }
}

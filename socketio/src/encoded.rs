//! Arguments of events and acks, and packets encoded once for any number of
//! recipients.

use bytes::Bytes;
use engineio::{Message, Str};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Parser;
use crate::error::Error;
use crate::packet::{BinaryPacket, Packet, from_value, to_value};

/// The arguments of an event or an ack, as received or to be sent: JSON
/// values in which binary parts are placeholders into `binary()`.
///
/// ```
/// use socketio::{Args, Binary};
/// let args = Args::many(&("hello", 42, Binary::from(vec![1u8, 2, 3]))).unwrap();
/// assert_eq!(args.len(), 3);
/// let (s, n, b): (String, u32, Binary) = args.parse().unwrap();
/// assert_eq!((s.as_str(), n, &b.0[..]), ("hello", 42, &[1u8, 2, 3][..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    pub(crate) values: Vec<Value>,
    pub(crate) bins: Vec<Bytes>,
}

impl Args {
    /// No arguments.
    pub fn none() -> Self {
        Args::default()
    }

    /// One argument (any `Serialize`; binary as `bytes::Bytes` or [`Binary`](crate::Binary),
    /// anywhere inside it; a `Vec<u8>` is a JSON array, as serde makes it).
    ///
    /// # Errors
    /// If `value` does not serialize.
    pub fn one<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let (v, bins) = to_value(value)?;
        Ok(Args {
            values: vec![v],
            bins,
        })
    }

    /// Several arguments from a tuple or sequence (`()` or `null` is none).
    ///
    /// # Errors
    /// If `values` does not serialize to an array.
    pub fn many<T: Serialize + ?Sized>(values: &T) -> Result<Self, Error> {
        let (v, bins) = to_value(values)?;
        let values = match v {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            _ => {
                return Err(Error::Json(serde::ser::Error::custom(
                    "Args::many needs a tuple or a sequence",
                )));
            }
        };
        Ok(Args { values, bins })
    }

    /// Raw arguments: JSON values whose binary parts are placeholders
    /// `{"_placeholder":true,"num":n}` into `binary` (e.g. parts of received
    /// [`Args`], re-emitted as they are).
    pub fn from_parts(values: Vec<Value>, binary: Vec<Bytes>) -> Self {
        Args {
            values,
            bins: binary,
        }
    }

    /// The same arguments after an event name: `[event, ...args]`, the shape
    /// of an event's data (and of a server-side event between nodes).
    pub fn with_event(mut self, event: &str) -> Self {
        self.values.insert(0, Value::String(event.to_owned()));
        self
    }

    /// Splits `[event, ...args]` into the event name (if the first value is a
    /// string) and the arguments after it.
    pub fn split_event(mut self) -> (Option<String>, Args) {
        match self.values.first() {
            Some(Value::String(_)) => match self.values.remove(0) {
                Value::String(e) => (Some(e), self),
                _ => (None, self),
            },
            _ => (None, self),
        }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The JSON values, binary parts as `{"_placeholder":true,"num":n}`.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The binary attachments, in placeholder order.
    pub fn binary(&self) -> &[Bytes] {
        &self.bins
    }

    /// All arguments as one value of type `T` (a tuple, a `Vec`, ...).
    ///
    /// # Errors
    /// If the arguments do not fit `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        from_value(Value::Array(self.values.clone()), &self.bins)
    }

    /// Argument `i` as a `T`.
    ///
    /// # Errors
    /// If there is no such argument or it does not fit `T`.
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        let v =
            self.values.get(i).cloned().ok_or_else(|| {
                <serde_json::Error as serde::de::Error>::custom("missing argument")
            })?;
        from_value(v, &self.bins)
    }
}

/// A packet encoded once, in the server's [`Parser`]: with the JSON parser its
/// text header (with its Engine.IO frame) and its binary attachments; with the
/// msgpack parser one binary message. Ready to be queued on any number of
/// sessions (the buffers are shared, not copied).
#[derive(Debug, Clone)]
pub struct EncodedPacket {
    /// JSON: the header, then each attachment. Msgpack: the one message.
    msgs: Vec<Message>,
    parser: Parser,
}

impl EncodedPacket {
    pub(crate) fn new(parser: Parser, packet: &BinaryPacket) -> Self {
        let msgs = match parser {
            Parser::Json => {
                let mut msgs = Vec::with_capacity(1 + packet.attachments.len());
                msgs.push(Message::Text(Str::message_frame(&packet.encode())));
                msgs.extend(packet.attachments.iter().cloned().map(Message::Binary));
                msgs
            }
            Parser::Msgpack => match packet.encode_msgpack() {
                Ok(bytes) => vec![Message::Binary(Bytes::from(bytes))],
                Err(e) => {
                    // Only raw `Args::from_parts` with a placeholder that names no
                    // attachment gets here.
                    tracing::warn!(error = %e, "packet not encodable as msgpack; not sent");
                    Vec::new()
                }
            },
        };
        EncodedPacket { msgs, parser }
    }

    /// A packet without attachments (CONNECT, CONNECT_ERROR, DISCONNECT).
    pub(crate) fn packet(parser: Parser, packet: Packet) -> Self {
        EncodedPacket::new(
            parser,
            &BinaryPacket {
                packet,
                attachments: Vec::new(),
            },
        )
    }

    #[cfg(test)]
    pub(crate) fn from_text(text: String) -> Self {
        EncodedPacket {
            msgs: vec![Message::Text(Str::from(text))],
            parser: Parser::Json,
        }
    }

    /// Encodes an EVENT (or BINARY_EVENT) `[event, ...args]`.
    pub(crate) fn event(
        parser: Parser,
        nsp: &str,
        event: &str,
        args: Args,
        id: Option<u64>,
    ) -> Self {
        let mut data = Vec::with_capacity(args.values.len() + 1);
        data.push(Value::String(event.to_owned()));
        data.extend(args.values);
        EncodedPacket::new(
            parser,
            &BinaryPacket::event(nsp, Value::Array(data), args.bins, id),
        )
    }

    /// Encodes an EVENT (or BINARY_EVENT) whose data `[event, ...args]` is given whole.
    pub(crate) fn event_data(parser: Parser, nsp: &str, data: Args, id: Option<u64>) -> Self {
        EncodedPacket::new(
            parser,
            &BinaryPacket::event(nsp, Value::Array(data.values), data.bins, id),
        )
    }

    /// Encodes an ACK (or BINARY_ACK).
    pub(crate) fn ack(parser: Parser, nsp: &str, args: Args, id: u64) -> Self {
        EncodedPacket::new(
            parser,
            &BinaryPacket::ack(nsp, Value::Array(args.values), args.bins, id),
        )
    }

    /// Encodes any packet (header and attachments) with `parser` (the server's,
    /// see [`LocalNamespace::parser`](crate::LocalNamespace::parser)), e.g. one a
    /// cluster adapter received from another node.
    pub fn from_binary_packet(packet: &BinaryPacket, parser: Parser) -> Self {
        EncodedPacket::new(parser, packet)
    }

    /// Decodes the packet back (header and attachments): what a cluster adapter
    /// publishes to other nodes. An `undefined` argument of a msgpack client
    /// stays the [`undefined`](crate::msgpack::undefined) marker.
    ///
    /// # Errors
    /// Never for packets built by this crate; a parse error otherwise.
    pub fn to_binary_packet(&self) -> Result<BinaryPacket, crate::ParseError> {
        let limits = crate::packet::Limits {
            max_attachments: usize::MAX,
            max_nsp_len: usize::MAX,
            ..crate::packet::Limits::default()
        };
        if self.parser == Parser::Msgpack {
            return match self.msgs.first() {
                Some(Message::Binary(b)) => crate::packet::decode_msgpack(b, &limits),
                _ => Err(crate::ParseError::Empty),
            };
        }
        let packet = crate::packet::decode(self.text(), &limits)?;
        let attachments = self
            .msgs
            .iter()
            .skip(1)
            .filter_map(|m| match m {
                Message::Binary(b) => Some(b.clone()),
                Message::Text(_) => None,
            })
            .collect();
        Ok(BinaryPacket {
            packet,
            attachments,
        })
    }

    /// The Engine.IO messages: the header, then each attachment (JSON); the
    /// one message (msgpack).
    pub(crate) fn messages(&self) -> &[Message] {
        &self.msgs
    }

    /// The parser it was encoded with.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// The text header (JSON parser); empty with the msgpack parser.
    pub fn text(&self) -> &str {
        match self.msgs.first() {
            Some(Message::Text(t)) => t.as_str(),
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_anywhere_become_attachments() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Upload {
            name: String,
            data: Bytes,
            parts: Vec<Bytes>,
        }
        let up = Upload {
            name: "f".into(),
            data: Bytes::from_static(&[1, 2]),
            parts: vec![Bytes::from_static(&[3]), Bytes::from_static(&[4, 5])],
        };
        let args = Args::many(&("x", &up)).unwrap();
        assert_eq!(args.binary().len(), 3);
        let text = EncodedPacket::event(Parser::Json, "/", "e", args.clone(), None)
            .text()
            .to_owned();
        assert!(
            text.starts_with(
                "53-[\"e\",\"x\",{\"name\":\"f\",\"data\":{\"_placeholder\":true,\"num\":0}"
            ),
            "{text}"
        );
        let (s, back): (String, Upload) = args.parse().unwrap();
        assert_eq!(s, "x");
        assert_eq!(back, up);
    }
}

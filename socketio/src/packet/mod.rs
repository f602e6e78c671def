//! The Socket.IO v5 packet codec (PROTOCOL.md §2.1–§2.2): pure and sans-IO.
//!
//! # Layout
//! - `mod.rs`: [`PacketType`], [`Packet`], [`Limits`], [`ParseError`], text [`decode`] and
//!   [`Packet::encode`].
//! - `binary.rs`: [`Decoder`], which joins a binary packet's header with the attachments that
//!   follow it as separate Engine.IO binary messages, and [`BinaryPacket`].
//! - `msgpack.rs`: the msgpack parser's packets ([`decode_msgpack`],
//!   [`BinaryPacket::encode_msgpack`]): one MessagePack map per packet, binary inline.
//! - `value.rs`: the serde bridge [`to_value`] / [`from_value`] that turns [`Binary`] values into
//!   `{"_placeholder":true,"num":i}` objects plus a list of attachments, and back.
//!
//! A Socket.IO packet here is the Engine.IO message *body*: the leading Engine.IO `4` (message)
//! is not part of it, so the wire frame `42["foo"]` is the Socket.IO packet `2["foo"]`.

mod binary;
mod msgpack;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod value_tests;

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

pub use binary::{BinaryPacket, Decoder, Incoming};
pub use msgpack::decode_msgpack;
pub use value::{Binary, from_value, to_value};

/// Event names a peer may not emit (socket.io-parser `RESERVED_EVENTS`).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The seven Socket.IO packet types (§2.1); the discriminant is the digit on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum PacketType {
    /// `0`: join a namespace (client → server) or accept the join (server → client).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event `[name, ...args]`, optionally with an ack id.
    Event = 2,
    /// `3`: the reply to an event that carried an ack id.
    Ack = 3,
    /// `4`: the server refused a namespace join.
    ConnectError = 4,
    /// `5`: an event whose arguments hold binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack whose arguments hold binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for an ASCII digit byte `b'0'..=b'6'`, or `None`.
    pub fn from_digit(byte: u8) -> Option<Self> {
        Some(match byte {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The digit written on the wire.
    pub fn as_char(self) -> char {
        char::from(b'0' + self as u8)
    }

    /// Whether attachments follow this packet (`BINARY_EVENT` and `BINARY_ACK`).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    /// The upper-case name used by the spec, e.g. `BINARY_EVENT`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::Event => "EVENT",
            Self::Ack => "ACK",
            Self::ConnectError => "CONNECT_ERROR",
            Self::BinaryEvent => "BINARY_EVENT",
            Self::BinaryAck => "BINARY_ACK",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded Socket.IO packet (the text part; attachments travel separately, see [`Decoder`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace; `"/"` when absent on the wire.
    pub nsp: String,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The JSON payload, with binary placeholders left in place.
    pub data: Option<Value>,
    /// The declared attachment count (binary types only; 0 otherwise).
    pub attachments: usize,
}

/// Bounds on what a peer may put in one packet.
///
/// # Defaults
/// | field            | default | why                                                         |
/// |------------------|---------|-------------------------------------------------------------|
/// | `max_attachments`| 10      | socket.io-parser's `maxAttachments`; each attachment is one Engine.IO message, so a packet buffers at most 10 × `maxPayload` bytes |
/// | `max_nsp_len`    | 256     | bytes; namespaces are URL paths, and the name is kept per socket |
/// | `max_json_depth` | 128     | nested `[`/`{`, checked in one pass before parsing; serde_json itself refuses 128 or more |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most attachments one binary packet may declare. Default 10.
    pub max_attachments: usize,
    /// The longest namespace, in bytes. Default 256.
    pub max_nsp_len: usize,
    /// The deepest JSON nesting of arrays and objects. Default 128. Whatever this is set to,
    /// serde_json refuses a nesting of 128 or more by itself, as [`ParseError::InvalidJson`].
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachments: 10,
            max_nsp_len: 256,
            max_json_depth: 128,
        }
    }
}

/// Why a packet was refused. Any of these closes the connection in the reference server (§2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The packet was empty.
    Empty,
    /// The first byte was not a packet type digit `0`–`6`.
    UnknownType(u8),
    /// A binary packet's attachment count was missing, not decimal, or not followed by `-`.
    BadAttachmentCount,
    /// A binary packet declared more attachments than [`Limits::max_attachments`].
    TooManyAttachments {
        /// The declared count.
        declared: usize,
        /// The limit.
        max: usize,
    },
    /// The namespace was longer than [`Limits::max_nsp_len`] bytes.
    NamespaceTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The namespace held a control character.
    InvalidNamespace,
    /// The ack id did not fit in a `u64`.
    AckIdOverflow,
    /// The payload was not valid JSON, or had trailing data after it.
    InvalidJson(String),
    /// The payload nested arrays and objects deeper than [`Limits::max_json_depth`].
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The payload did not have the shape this packet type requires.
    InvalidPayload {
        /// The packet type.
        kind: PacketType,
        /// What the type requires.
        expected: &'static str,
    },
    /// An event used one of the [`RESERVED_EVENTS`] names.
    ReservedEventName(String),
    /// A binary placeholder's `num` was not an integer below the declared attachment count.
    InvalidPlaceholder,
    /// A binary frame arrived while no attachment was expected.
    UnexpectedBinary,
    /// A text packet arrived while attachments were still expected.
    UnexpectedText,
    /// (msgpack parser) The message was not one valid MessagePack value.
    InvalidMsgpack(crate::msgpack::MsgpackError),
    /// (msgpack parser) A field of the packet map was missing or of the wrong type.
    InvalidField {
        /// The field (`packet` for the value itself).
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// (msgpack parser) A text message arrived; every packet is a binary message.
    TextWithMsgpack,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty packet"),
            Self::UnknownType(b) => write!(f, "unknown packet type '{}'", b.escape_ascii()),
            Self::BadAttachmentCount => f.write_str("illegal attachment count"),
            Self::TooManyAttachments { declared, max } => {
                write!(f, "too many attachments: {declared} (max {max})")
            }
            Self::NamespaceTooLong { max } => write!(f, "namespace longer than {max} bytes"),
            Self::InvalidNamespace => f.write_str("namespace contains a control character"),
            Self::AckIdOverflow => f.write_str("ack id does not fit in 64 bits"),
            Self::InvalidJson(e) => write!(f, "invalid JSON payload: {e}"),
            Self::TooDeep { max } => write!(f, "JSON payload nested deeper than {max}"),
            Self::InvalidPayload { kind, expected } => {
                write!(f, "invalid payload for {kind}: expected {expected}")
            }
            Self::ReservedEventName(name) => write!(f, "reserved event name {name:?}"),
            Self::InvalidPlaceholder => f.write_str("invalid binary placeholder"),
            Self::UnexpectedBinary => f.write_str("binary frame while no attachment was expected"),
            Self::UnexpectedText => f.write_str("text packet while attachments were expected"),
            Self::InvalidMsgpack(e) => write!(f, "invalid packet: {e}"),
            Self::InvalidField { field, expected } => {
                write!(f, "invalid packet: {field} must be {expected}")
            }
            Self::TextWithMsgpack => f.write_str("text message while the msgpack parser is in use"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Decodes one Socket.IO packet: `<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]` (§2.2).
///
/// Stricter than socket.io-parser in two places, both harmless for the official clients:
/// EVENT, ACK (and their binary forms) and CONNECT_ERROR must carry a payload, and an
/// attachment count must have at least one digit.
pub fn decode(input: &str, limits: &Limits) -> Result<Packet, ParseError> {
    // §2.2: the packet starts with its type, one digit 0–6.
    let (&first, _) = input.as_bytes().split_first().ok_or(ParseError::Empty)?;
    let kind = PacketType::from_digit(first).ok_or(ParseError::UnknownType(first))?;
    let mut rest = input.get(1..).ok_or(ParseError::UnknownType(first))?;

    // §2.2: "attachments: decimal count, only for types 5/6, followed by `-`". On other types
    // the digits read as an ack id and the `-` then fails as JSON, as in the reference.
    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = split_digits(rest);
        let after = after
            .strip_prefix('-')
            .ok_or(ParseError::BadAttachmentCount)?;
        if count.is_empty() {
            return Err(ParseError::BadAttachmentCount);
        }
        let declared = parse_decimal(count).ok_or(ParseError::BadAttachmentCount)?;
        let declared = usize::try_from(declared).map_err(|_| ParseError::BadAttachmentCount)?;
        // §2.2 decoder limits: "at most 10 attachments" (configurable).
        if declared > limits.max_attachments {
            return Err(ParseError::TooManyAttachments {
                declared,
                max: limits.max_attachments,
            });
        }
        attachments = declared;
        rest = after;
    }

    // §2.2: the nsp "starts with `/` right after the type (or the `-`) and ends at the first `,`
    // or end of string, so `0/custom` and `0/custom,` are the same".
    let mut nsp = String::from("/");
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        if end > limits.max_nsp_len {
            return Err(ParseError::NamespaceTooLong {
                max: limits.max_nsp_len,
            });
        }
        let (name, after) = rest
            .split_at_checked(end)
            .ok_or(ParseError::InvalidNamespace)?;
        if name.chars().any(char::is_control) {
            return Err(ParseError::InvalidNamespace);
        }
        name.clone_into(&mut nsp);
        rest = after.strip_prefix(',').unwrap_or(after);
    }

    // §2.2: "ackId: the run of decimal digits right after that".
    let (digits, after) = split_digits(rest);
    let id = if digits.is_empty() {
        None
    } else {
        rest = after;
        Some(parse_decimal(digits).ok_or(ParseError::AckIdOverflow)?)
    };

    // §2.2: whatever is left is the JSON payload; trailing junk after it is an error.
    let data = if rest.is_empty() {
        None
    } else {
        Some(parse_json(rest, limits)?)
    };

    // §2.2: "Payload JSON must fit the type".
    validate_payload(kind, data.as_ref())?;

    // §2.2 binary: each placeholder `{"_placeholder":true,"num":i}` names one of the declared
    // attachments.
    if let (true, Some(data)) = (kind.is_binary(), &data) {
        value::validate_placeholders(data, attachments)?;
    }

    Ok(Packet {
        kind,
        nsp,
        id,
        data,
        attachments,
    })
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    // The digits are ASCII, so `n` is a char boundary.
    s.split_at_checked(n).unwrap_or(("", s))
}

/// Parses ASCII digits as a `u64`; `None` on overflow.
fn parse_decimal(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
    })
}

/// Parses the payload after bounding its nesting depth, so a deep input is refused in one
/// linear pass before serde_json sees it.
fn parse_json(text: &str, limits: &Limits) -> Result<Value, ParseError> {
    check_depth(text, limits.max_json_depth)?;
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        // JavaScript strings may hold lone UTF-16 surrogates (`"\ud800"`), which
        // JSON.stringify writes as escapes and serde_json refuses. Like a
        // TextDecoder would, read each as U+FFFD instead of dropping the client.
        Err(e) => match replace_lone_surrogates(text) {
            Some(fixed) => serde_json::from_str(&fixed),
            None => Err(e),
        }
        .map_err(|e| ParseError::InvalidJson(e.to_string())),
    }
}

/// `text` with every `\uXXXX` escape of an unpaired surrogate replaced by
/// `\ufffd`; `None` if there is none.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i + 2..i + 6)?;
        if b.get(i..i + 2)? != b"\\u" {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'\\') {
            if let Some(unit) = escape_at(b, i) {
                let high = (0xD800..0xDC00).contains(&unit);
                let low = (0xDC00..0xE000).contains(&unit);
                let paired =
                    high && escape_at(b, i + 6).is_some_and(|n| (0xDC00..0xE000).contains(&n));
                if paired {
                    i += 12;
                    continue;
                }
                if high || low {
                    out.push_str(text.get(last..i)?);
                    out.push_str("\\ufffd");
                    changed = true;
                    i += 6;
                    last = i;
                    continue;
                }
                i += 6;
                continue;
            }
            // Any other escape: skip the escaped character.
            i += 2;
            continue;
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(text.get(last..)?);
    Some(out)
}

/// Refuses `[`/`{` nesting deeper than `max`, skipping brackets inside JSON strings.
fn check_depth(text: &str, max: usize) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(ParseError::TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The payload rules of §2.2, per type.
fn validate_payload(kind: PacketType, data: Option<&Value>) -> Result<(), ParseError> {
    let invalid = |expected| Err(ParseError::InvalidPayload { kind, expected });
    match kind {
        // "CONNECT = object (optional)".
        PacketType::Connect => match data {
            None | Some(Value::Object(_)) => Ok(()),
            Some(_) => invalid("an object or nothing"),
        },
        // "DISCONNECT = none".
        PacketType::Disconnect => match data {
            None => Ok(()),
            Some(_) => invalid("no payload"),
        },
        // "EVENT/BINARY_EVENT = non-empty array whose first item is a number or a string other
        // than the reserved ...".
        PacketType::Event | PacketType::BinaryEvent => {
            let expected = "a non-empty array starting with a string or number event name";
            let Some(Value::Array(items)) = data else {
                return invalid(expected);
            };
            match items.first() {
                Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
                    Err(ParseError::ReservedEventName(name.clone()))
                }
                Some(Value::String(_) | Value::Number(_)) => Ok(()),
                _ => invalid(expected),
            }
        }
        // "ACK/BINARY_ACK = array (may be empty)".
        PacketType::Ack | PacketType::BinaryAck => match data {
            Some(Value::Array(_)) => Ok(()),
            _ => invalid("an array"),
        },
        // "CONNECT_ERROR = object (or string in older versions)".
        PacketType::ConnectError => match data {
            Some(Value::Object(_) | Value::String(_)) => Ok(()),
            _ => invalid("an object or a string"),
        },
    }
}

impl Packet {
    /// A CONNECT packet: the client's `auth` object, or the server's `{"sid":..}` reply.
    pub fn connect(nsp: impl Into<String>, data: Option<Value>) -> Self {
        Self::new(PacketType::Connect, nsp, None, data, 0)
    }

    /// A DISCONNECT packet.
    pub fn disconnect(nsp: impl Into<String>) -> Self {
        Self::new(PacketType::Disconnect, nsp, None, None, 0)
    }

    /// An EVENT packet; `data` is the whole array `[name, ...args]`.
    pub fn event(nsp: impl Into<String>, data: Value, id: Option<u64>) -> Self {
        Self::new(PacketType::Event, nsp, id, Some(data), 0)
    }

    /// An ACK packet answering ack id `id`; `data` is the array of results.
    pub fn ack(nsp: impl Into<String>, data: Value, id: u64) -> Self {
        Self::new(PacketType::Ack, nsp, Some(id), Some(data), 0)
    }

    /// A BINARY_EVENT header whose `data` holds `attachments` placeholders.
    pub fn binary_event(
        nsp: impl Into<String>,
        data: Value,
        id: Option<u64>,
        attachments: usize,
    ) -> Self {
        Self::new(PacketType::BinaryEvent, nsp, id, Some(data), attachments)
    }

    /// A BINARY_ACK header whose `data` holds `attachments` placeholders.
    pub fn binary_ack(nsp: impl Into<String>, data: Value, id: u64, attachments: usize) -> Self {
        Self::new(
            PacketType::BinaryAck,
            nsp,
            Some(id),
            Some(data),
            attachments,
        )
    }

    /// A CONNECT_ERROR packet `{"message": message}`, plus `"data"` when given (§2.3).
    pub fn connect_error(
        nsp: impl Into<String>,
        message: impl Into<String>,
        data: Option<Value>,
    ) -> Self {
        let mut body = Map::new();
        body.insert("message".to_owned(), Value::String(message.into()));
        if let Some(data) = data {
            body.insert("data".to_owned(), data);
        }
        Self::new(
            PacketType::ConnectError,
            nsp,
            None,
            Some(Value::Object(body)),
            0,
        )
    }

    fn new(
        kind: PacketType,
        nsp: impl Into<String>,
        id: Option<u64>,
        data: Option<Value>,
        attachments: usize,
    ) -> Self {
        Self {
            kind,
            nsp: nsp.into(),
            id,
            data,
            attachments,
        }
    }

    /// Encodes the packet as text (without the Engine.IO `4` prefix).
    ///
    /// A namespace other than `/` is written with a trailing comma (`2/admin,12["x"]`); binary
    /// types carry their count (`51-/admin,3[...]`) and the caller sends the attachments after.
    /// The namespace must not contain `,` (the decoder would split it there).
    pub fn encode(&self) -> String {
        let mut buf = String::new();
        self.encode_to(&mut buf);
        buf
    }

    /// Appends the encoded packet to `buf` (see [`Packet::encode`]).
    pub fn encode_to(&self, buf: &mut String) {
        // Writing to a `String` cannot fail, so the `fmt::Result`s below are always `Ok`.
        buf.push(self.kind.as_char());
        if self.kind.is_binary() {
            let _ = write!(buf, "{}-", self.attachments);
        }
        if !self.nsp.is_empty() && self.nsp != "/" {
            buf.push_str(&self.nsp);
            buf.push(',');
        }
        if let Some(id) = self.id {
            let _ = write!(buf, "{id}");
        }
        if let Some(data) = &self.data {
            let _ = write!(buf, "{data}");
        }
    }

    /// The event name of an EVENT / BINARY_EVENT packet when it is a string.
    pub fn event_name(&self) -> Option<&str> {
        match self.event_head()? {
            Value::String(name) => Some(name),
            _ => None,
        }
    }

    /// The event name of an EVENT / BINARY_EVENT packet, with a number name (allowed by the
    /// protocol) written as its decimal text.
    pub fn event_name_owned(&self) -> Option<String> {
        match self.event_head()? {
            Value::String(name) => Some(name.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn event_head(&self) -> Option<&Value> {
        match (self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(items))) => {
                items.first()
            }
            _ => None,
        }
    }
}

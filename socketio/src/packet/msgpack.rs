//! The msgpack parser's packets: what `socket.io-msgpack-parser` 3.x (socketio/socket.io-msgpack-parser,
//! `index.js`) puts in an Engine.IO message.
//!
//! Wire facts (index.js, and notepack.io 2.2 that it encodes with):
//! - one Socket.IO packet is one binary Engine.IO message: `msgpack.encode(packet)` of the packet
//!   object `{type, nsp, data?, id?}`, binary values inside `data` written as MessagePack `bin`;
//!   there are no attachments and no placeholders, and no BINARY_EVENT / BINARY_ACK types;
//! - `Decoder.checkPacket`: `type` an integer from 0 (CONNECT) to 4 (CONNECT_ERROR), `nsp` a
//!   string, `data` `undefined` or an object for CONNECT, `undefined` for DISCONNECT, a string
//!   or an object for CONNECT_ERROR, an array otherwise; `id` `undefined` or an integer. Other
//!   keys are ignored (the 4.8 client adds `options: {compress}` to every EVENT);
//! - notepack writes `undefined` as the fixext `d4 00 00`: a CONNECT without auth sends it as
//!   `data` (read as no data, so auth `{}`), and an `undefined` argument is kept as the
//!   [`undefined`](crate::msgpack::undefined) marker so that it goes back as `undefined`.
//!
//! Stricter than the reference where the JSON path is too (harmless for the official clients):
//! an event's first item must be a string or number name and not a reserved one; the namespace
//! is bounded by [`Limits::max_nsp_len`] and holds no control character; nesting is bounded by
//! [`Limits::max_json_depth`] (plus one for the packet map itself).

use serde_json::Value;

use super::{BinaryPacket, Limits, Packet, PacketType, ParseError, validate_payload};
use crate::msgpack::{self, DecodeOptions, MsgpackError};

/// Decodes one msgpack-parser packet (a whole binary Engine.IO message).
///
/// An EVENT or ACK whose data holds binary values comes back as BINARY_EVENT / BINARY_ACK with
/// the binary values as placeholders into `attachments` (so the rest of the crate sees one
/// shape whichever parser); other types keep theirs, with any binary values still in
/// `attachments`.
///
/// # Errors
/// [`ParseError::InvalidMsgpack`] for input that is not one MessagePack value (truncated,
/// reserved marker, nested too deep, trailing bytes); [`ParseError::InvalidField`] for a value
/// that is not a packet map of the shape above; the payload errors of the JSON path.
pub fn decode_msgpack(input: &[u8], limits: &Limits) -> Result<BinaryPacket, ParseError> {
    let options = DecodeOptions {
        max_depth: limits.max_json_depth.saturating_add(1),
        keep_undefined: true,
    };
    let (value, attachments) =
        msgpack::decode_with(input, &options).map_err(ParseError::InvalidMsgpack)?;
    let Value::Object(mut map) = value else {
        return Err(ParseError::InvalidField {
            field: "packet",
            expected: "a map",
        });
    };
    let defined = |v: Option<Value>| v.filter(|v| !msgpack::is_undefined(v));

    // checkPacket: "isInteger(decoded.type) && type >= CONNECT && type <= CONNECT_ERROR".
    let kind = defined(map.remove("type"))
        .as_ref()
        .and_then(integer)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| *n <= 4)
        .and_then(|n| PacketType::from_digit(b'0' + n))
        .ok_or(ParseError::InvalidField {
            field: "type",
            expected: "an integer from 0 to 4",
        })?;

    // checkPacket: "isString(decoded.nsp)".
    let Some(Value::String(nsp)) = map.remove("nsp") else {
        return Err(ParseError::InvalidField {
            field: "nsp",
            expected: "a string",
        });
    };
    if nsp.len() > limits.max_nsp_len {
        return Err(ParseError::NamespaceTooLong {
            max: limits.max_nsp_len,
        });
    }
    if nsp.chars().any(char::is_control) {
        return Err(ParseError::InvalidNamespace);
    }

    // checkPacket: "decoded.id === undefined || isInteger(decoded.id)".
    let id = match defined(map.remove("id")) {
        None => None,
        Some(v) => Some(integer(&v).ok_or(ParseError::InvalidField {
            field: "id",
            expected: "a non-negative integer",
        })?),
    };

    let data = defined(map.remove("data"));
    // isDataValid, per type (plus the JSON path's event-name rules).
    validate_payload(kind, data.as_ref())?;

    let kind = match kind {
        PacketType::Event if !attachments.is_empty() => PacketType::BinaryEvent,
        PacketType::Ack if !attachments.is_empty() => PacketType::BinaryAck,
        other => other,
    };
    let count = if kind.is_binary() {
        attachments.len()
    } else {
        0
    };
    Ok(BinaryPacket {
        packet: Packet {
            kind,
            nsp,
            id,
            data,
            attachments: count,
        },
        attachments,
    })
}

/// A non-negative integer, also from an integral float (JavaScript's `Number.isInteger`).
fn integer(v: &Value) -> Option<u64> {
    let Value::Number(n) = v else { return None };
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        // Exact below 2^53; notepack itself writes integral numbers as integers.
        (f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
    })
}

impl BinaryPacket {
    /// Encodes the packet as the msgpack parser does: one MessagePack map
    /// `{type, data?, id?, nsp}` (the key order of the reference server's packets), binary
    /// values as `bin`, BINARY_EVENT / BINARY_ACK written as EVENT / ACK.
    ///
    /// ```
    /// use socketio::packet::{BinaryPacket, decode_msgpack, Limits};
    /// let p = BinaryPacket::event("/", serde_json::json!(["hi", 1]), Vec::new(), Some(7));
    /// let bytes = p.encode_msgpack().unwrap();
    /// assert_eq!(decode_msgpack(&bytes, &Limits::default()).unwrap(), p);
    /// ```
    ///
    /// # Errors
    /// A placeholder that names no attachment, or a length over 2^32 (neither for packets
    /// built by this crate).
    pub fn encode_msgpack(&self) -> Result<Vec<u8>, MsgpackError> {
        let mut out = Vec::with_capacity(32);
        self.encode_msgpack_into(&mut out)?;
        Ok(out)
    }

    /// [`BinaryPacket::encode_msgpack`], appending to `out`.
    ///
    /// # Errors
    /// As [`BinaryPacket::encode_msgpack`].
    pub fn encode_msgpack_into(&self, out: &mut Vec<u8>) -> Result<(), MsgpackError> {
        let p = &self.packet;
        let kind: u8 = match p.kind {
            PacketType::BinaryEvent => PacketType::Event as u8,
            PacketType::BinaryAck => PacketType::Ack as u8,
            other => other as u8,
        };
        let fields = 2 + u32::from(p.data.is_some()) + u32::from(p.id.is_some());
        // Writing into a Vec cannot fail.
        let _ = rmp::encode::write_map_len(out, fields);
        write_key(out, "type");
        let _ = rmp::encode::write_uint(out, u64::from(kind));
        if let Some(data) = &p.data {
            write_key(out, "data");
            msgpack::encode_into(out, data, &self.attachments)?;
        }
        if let Some(id) = p.id {
            write_key(out, "id");
            let _ = rmp::encode::write_uint(out, id);
        }
        write_key(out, "nsp");
        let _ = rmp::encode::write_str(out, &p.nsp);
        Ok(())
    }
}

fn write_key(out: &mut Vec<u8>, key: &'static str) {
    // Short ASCII keys: a fixstr.
    let _ = rmp::encode::write_str(out, key);
}

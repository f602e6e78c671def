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

    let mut data = defined(map.remove("data"));
    // isDataValid, per type (plus the JSON path's event-name rules).
    validate_payload(kind, data.as_ref())?;
    // Binary values in keys the parser ignores (`options`, unknown ones) are
    // not the packet's: only what `data` names is kept (found by fuzzing: such
    // a packet was a BINARY_EVENT with attachments nothing referred to).
    let attachments = match data.as_mut() {
        _ if attachments.is_empty() => attachments,
        Some(d) => msgpack::keep_referenced(d, &attachments),
        None => Vec::new(),
    };

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
    /// Encodes the packet as the msgpack parser does: one MessagePack map, binary values as
    /// `bin`, BINARY_EVENT / BINARY_ACK written as EVENT / ACK, with the keys in the order of
    /// the reference server's packet objects (socket.io `lib/socket.ts`, `lib/client.ts`), so
    /// the bytes are those Node writes: `{type, data, id?, nsp}` for an event,
    /// `{id, type, data, nsp}` for an ack, `{type, nsp, data}` for CONNECT_ERROR.
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
        let kind = match p.kind {
            PacketType::BinaryEvent => PacketType::Event,
            PacketType::BinaryAck => PacketType::Ack,
            other => other,
        };
        let fields = 2 + u32::from(p.data.is_some()) + u32::from(p.id.is_some());
        // Writing into a Vec cannot fail.
        let _ = rmp::encode::write_map_len(out, fields);
        let write_id = |out: &mut Vec<u8>| {
            if let Some(id) = p.id {
                write_key(out, "id");
                let _ = rmp::encode::write_uint(out, id);
            }
        };
        let write_data = |out: &mut Vec<u8>| match &p.data {
            Some(data) => {
                write_key(out, "data");
                msgpack::encode_into(out, data, &self.attachments)
            }
            None => Ok(()),
        };
        // socket.ts `ack()`: `{ id, type: ACK, data }`.
        if kind == PacketType::Ack {
            write_id(out);
        }
        write_key(out, "type");
        let _ = rmp::encode::write_uint(out, u64::from(kind as u8));
        if kind == PacketType::ConnectError {
            // client.ts `_doConnect`: `{ type: CONNECT_ERROR, nsp, data }`.
            write_key(out, "nsp");
            let _ = rmp::encode::write_str(out, &p.nsp);
            return write_data(out);
        }
        write_data(out)?;
        // socket.ts `emit()`: `{ type: EVENT, data }`, then `id`; `packet()` adds `nsp` last.
        if kind != PacketType::Ack {
            write_id(out);
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::msgpack::undefined;

    fn seed(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../fuzz/corpus/socketio_msgpack/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).unwrap()
    }

    fn dec(bytes: &[u8]) -> Result<BinaryPacket, ParseError> {
        decode_msgpack(bytes, &Limits::default())
    }

    #[test]
    fn client_packets_as_the_official_encoder_writes_them() {
        // CONNECT without auth: data is notepack's undefined (d4 00 00) → no data.
        let p = dec(&seed("connect-no-auth")).unwrap();
        assert_eq!(p.packet, Packet::connect("/", None));
        let p = dec(&seed("connect-auth")).unwrap();
        assert_eq!(p.packet.data.unwrap()["token"], "abc");
        // EVENT with `options` (ignored) and undefined arguments (kept).
        let p = dec(&seed("event-undefined")).unwrap();
        assert_eq!(p.packet.kind, PacketType::Event);
        assert_eq!(
            p.packet.data,
            Some(json!(["message", 1, undefined(), {"a": undefined(), "b": 2}]))
        );
        // Binary nested: BINARY_EVENT with its values as placeholders.
        let p = dec(&seed("event-binary-nested")).unwrap();
        assert_eq!(p.packet.kind, PacketType::BinaryEvent);
        assert_eq!(p.packet.attachments, 2);
        assert_eq!(p.attachments[0], Bytes::from_static(&[0, 1, 2, 255]));
        // ArrayBuffer / typed arrays: ext type 0 → binary.
        let p = dec(&seed("event-arraybuffer")).unwrap();
        assert_eq!(
            p.attachments,
            [
                Bytes::from_static(&[1, 2, 3]),
                Bytes::from_static(&[1, 0, 255, 255])
            ]
        );
        // notepack 2's Date (fixext 8 type 0) → ISO text.
        let p = dec(&seed("event-date")).unwrap();
        assert_eq!(
            p.packet.data,
            Some(json!(["when", "2023-11-14T22:13:20.123Z"]))
        );
        // An ack id and a custom namespace.
        let p = dec(&seed("event-with-ack")).unwrap();
        assert_eq!((p.packet.id, p.packet.nsp.as_str()), (Some(12), "/custom"));
        // A map spelled like a placeholder stays a map, next to a real binary value.
        let p = dec(&seed("event-placeholder-lookalike")).unwrap();
        assert_eq!(p.attachments.len(), 1);
        let back = dec(&p.encode_msgpack().unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn server_packets_are_byte_exact() {
        // {type: 2, data: ["a"], nsp: "/"}, as the reference server's packet object.
        let p = BinaryPacket::event("/", json!(["a"]), Vec::new(), None);
        assert_eq!(
            p.encode_msgpack().unwrap(),
            [
                0x83, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a', b't', b'a', 0x91, 0xa1,
                b'a', 0xa3, b'n', b's', b'p', 0xa1, b'/'
            ]
        );
        // BINARY_ACK is written as ACK (type 3), the binary inline, the id before nsp.
        let p = BinaryPacket::ack(
            "/x",
            json!([{"_placeholder": true, "num": 0}]),
            vec![Bytes::from_static(&[7])],
            5,
        );
        let bytes = p.encode_msgpack().unwrap();
        assert_eq!(&bytes[..4], [0x84, 0xa2, b'i', b'd']);
        assert!(bytes.windows(3).any(|w| w == [0xc4, 1, 7]));
        assert_eq!(dec(&bytes).unwrap(), p);
        // CONNECT_ERROR {message} on the refused namespace.
        let p = Packet::connect_error("/nope", "Invalid namespace", None);
        let bp = BinaryPacket {
            packet: p.clone(),
            attachments: Vec::new(),
        };
        assert_eq!(dec(&bp.encode_msgpack().unwrap()).unwrap().packet, p);
        assert_eq!(
            bp.encode_msgpack().unwrap(),
            seed("connect-error"),
            "as the reference server writes it"
        );
        let ack = BinaryPacket::ack(
            "/",
            json!(["answer", {"_placeholder": true, "num": 0}]),
            vec![Bytes::from_static(&[9, 8])],
            7,
        );
        assert_eq!(ack.encode_msgpack().unwrap(), seed("ack-binary"));
        let reply = BinaryPacket {
            packet: Packet::connect(
                "/",
                Some(json!({"sid": "abcdefghijklmnopqrst", "pid": undefined()})),
            ),
            attachments: Vec::new(),
        };
        assert_eq!(
            reply.encode_msgpack().unwrap(),
            seed("connect-reply-no-pid")
        );
    }

    #[test]
    fn wrong_shapes_are_typed_errors() {
        let bad = |v: serde_json::Value| dec(&crate::msgpack::encode(&v, &[]).unwrap());
        assert!(matches!(
            bad(json!([0])),
            Err(ParseError::InvalidField {
                field: "packet",
                ..
            })
        ));
        assert!(matches!(
            bad(json!({"nsp": "/"})),
            Err(ParseError::InvalidField { field: "type", .. })
        ));
        assert!(matches!(
            bad(json!({"type": 6, "nsp": "/", "data": []})),
            Err(ParseError::InvalidField { field: "type", .. })
        ));
        assert!(matches!(
            bad(json!({"type": 0})),
            Err(ParseError::InvalidField { field: "nsp", .. })
        ));
        assert!(matches!(
            bad(json!({"type": 2, "nsp": "/", "data": ["e"], "id": -3})),
            Err(ParseError::InvalidField { field: "id", .. })
        ));
        assert!(matches!(
            bad(json!({"type": 1, "nsp": "/", "data": 1})),
            Err(ParseError::InvalidPayload { .. })
        ));
        assert!(matches!(
            bad(json!({"type": 2, "nsp": "/", "data": ["connect"]})),
            Err(ParseError::ReservedEventName(_))
        ));
        assert!(matches!(
            dec(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(ParseError::InvalidMsgpack(MsgpackError::Truncated))
        ));
        // Integral floats are integers (Number.isInteger), as JavaScript sees them.
        let p = bad(json!({"type": 2.0, "nsp": "/", "data": ["e"], "id": 3.0})).unwrap();
        assert_eq!((p.packet.kind, p.packet.id), (PacketType::Event, Some(3)));
        // Nesting: the packet map plus max_json_depth levels.
        let limits = Limits {
            max_json_depth: 2,
            ..Limits::default()
        };
        let ok = crate::msgpack::encode(&json!({"type": 2, "nsp": "/", "data": ["e", [1]]}), &[])
            .unwrap();
        assert!(decode_msgpack(&ok, &limits).is_ok());
        let deep =
            crate::msgpack::encode(&json!({"type": 2, "nsp": "/", "data": ["e", [[1]]]}), &[])
                .unwrap();
        assert_eq!(
            decode_msgpack(&deep, &limits),
            Err(ParseError::InvalidMsgpack(MsgpackError::TooDeep))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_hold_the_fuzz_properties(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..96)) {
            crate::fuzzing::check_msgpack_packet(&bytes);
        }

        #[test]
        fn mutated_seeds_hold_the_fuzz_properties(
            which in 0usize..18,
            at in proptest::num::usize::ANY,
            byte in proptest::num::u8::ANY,
            cut in proptest::num::usize::ANY,
        ) {
            let dir = format!("{}/../fuzz/corpus/socketio_msgpack", env!("CARGO_MANIFEST_DIR"));
            let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            names.sort();
            let mut bytes = std::fs::read(&names[which % names.len()]).unwrap();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = byte;
                bytes.truncate(bytes.len() - cut % (bytes.len() / 4 + 1));
            }
            crate::fuzzing::check_msgpack_packet(&bytes);
        }
    }
}

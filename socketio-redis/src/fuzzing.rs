//! Checks run by the fuzz target `redis_frame` (`fuzz/`) and replayed on
//! stable over its corpus by `tests/fuzz_corpus.rs`. Not a stable API.
//! The same bytes go through the sharded adapter's envelope decoder and its
//! RESP reader.

#![allow(clippy::panic)]

use crate::{msgpack, wire};

/// One message as Redis would deliver it (broadcast frame, request or
/// response, JSON or MessagePack): every decoder returns, never panics; what
/// the MessagePack decoder accepts re-encodes, and encoding is idempotent
/// from then on (the first round maps integral floats to integers, as
/// notepack does).
pub fn check_frame(data: &[u8]) {
    check_sharded(data);
    let _ = wire::decode_broadcast(data);
    let _ = wire::decode_request(data);
    let _ = wire::decode_message(data);
    if let Ok((v, bins)) = msgpack::decode(data) {
        let once = match msgpack::encode(&v, &bins) {
            Ok(b) => b,
            // A map spelled like a placeholder (`{"_placeholder": true, "num": n}`)
            // is taken for one, as the Socket.IO parsers do; it may name no attachment.
            Err(msgpack::MsgpackError::BadPlaceholder(_)) => return,
            Err(e) => panic!("decoded value does not re-encode: {v}: {e}"),
        };
        let Ok((v2, bins2)) = msgpack::decode(&once) else {
            panic!("re-encoded value does not decode: {v}");
        };
        assert_eq!(bins2, bins, "attachments changed");
        let Ok(twice) = msgpack::encode(&v2, &bins2) else {
            panic!("second round does not encode: {v2}");
        };
        assert_eq!(once, twice, "encoding is not idempotent for {v}");
    }
}

/// One input for the Redis Streams adapter's decoders (`redis_stream`
/// target): byte 0 picks the form, the rest is the message.
/// - `0`: a pub/sub message (MessagePack `{uid, nsp, type, data}`);
/// - `1`: a session record (base64 MessagePack `{sid, pid, rooms, data}`);
/// - `2`: a stream entry, its fields `uid`, `nsp`, `type`, `data` separated
///   by `0x00`.
///
/// Every decoder returns, never panics; a broadcast that decodes goes through
/// a stream entry of ours and back unchanged; a session record that decodes
/// re-encodes to a record that decodes to the same session.
pub fn check_stream(data: &[u8]) {
    use crate::streams::wire::{self as sw, Message};
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let env = match form % 3 {
        0 => sw::decode_pubsub(rest).ok(),
        1 => {
            if let Ok(s) = sw::decode_session(rest) {
                if let Ok(text) = sw::encode_session(&s) {
                    let again = sw::decode_session(text.as_bytes())
                        .unwrap_or_else(|e| panic!("our record does not decode: {e}"));
                    assert_eq!(again, s, "session changed through a record");
                }
            }
            None
        }
        _ => {
            let mut parts = rest.splitn(4, |b| *b == 0);
            let names: [&[u8]; 4] = [b"uid", b"nsp", b"type", b"data"];
            let fields: Vec<(&[u8], &[u8])> = names.iter().copied().zip(parts.by_ref()).collect();
            sw::decode_entry(fields).ok().flatten()
        }
    };
    let Some(env) = env else { return };
    if let Message::Broadcast(b) = env.message {
        let mut opts = b.selection.to_opts();
        opts.flags.volatile = b.volatile;
        let data = sw::broadcast_data(&b.packet, &opts, b.request_id.as_deref());
        // Placeholders that name no attachment do not encode: nothing to compare.
        let Ok(fields) = sw::encode_entry(
            &env.uid,
            &env.nsp,
            sw::kind::BROADCAST,
            &data,
            &b.packet.attachments,
        ) else {
            return;
        };
        let again = sw::decode_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
            .unwrap_or_else(|e| panic!("our entry does not decode: {e}"))
            .unwrap_or_else(|| panic!("our entry has no nsp"));
        let Message::Broadcast(b2) = again.message else {
            panic!("our broadcast entry decodes as something else");
        };
        assert_eq!(b2.packet.data, b.packet.data, "packet data changed");
        assert_eq!(
            b2.packet.attachments, b.packet.attachments,
            "attachments changed"
        );
        assert_eq!(b2.request_id, b.request_id);
        assert_eq!(b2.volatile, b.volatile);
    }
}

/// The sharded adapter's decoders on the same bytes: the RESP reader and the
/// envelope decoder return, never panic, and never claim more bytes than
/// given; an envelope that decodes re-encodes, and from its first re-encoding
/// on, decoding and encoding again changes nothing.
fn check_sharded(data: &[u8]) {
    use crate::sharded::wire::Envelope;
    if let Ok(Some((_, used))) = crate::sharded::resp::parse(data, 1 << 20) {
        assert!(
            used <= data.len(),
            "resp parser used more than it was given"
        );
    }
    let Ok(e1) = Envelope::decode(data) else {
        return;
    };
    let b1 = match e1.encode() {
        Ok(b) => b,
        Err(wire::WireError::Msgpack(msgpack::MsgpackError::BadPlaceholder(_))) => return,
        Err(e) => panic!("decoded envelope does not re-encode: {e1:?}: {e}"),
    };
    let Ok(e2) = Envelope::decode(&b1) else {
        panic!("re-encoded envelope does not decode: {e1:?}");
    };
    let Ok(b2) = e2.encode() else {
        panic!("second round does not encode: {e2:?}");
    };
    let Ok(e3) = Envelope::decode(&b2) else {
        panic!("second round does not decode: {e2:?}");
    };
    assert_eq!(e3, e2, "envelope round trip is not stable");
}

//! Checks run by the fuzz target `redis_frame` (`fuzz/`) and replayed on
//! stable over its corpus by `tests/fuzz_corpus.rs`. Not a stable API.

#![allow(clippy::panic)]

use crate::{msgpack, wire};

/// One message as Redis would deliver it (broadcast frame, request or
/// response, JSON or MessagePack): every decoder returns, never panics; what
/// the MessagePack decoder accepts re-encodes, and encoding is idempotent
/// from then on (the first round maps integral floats to integers, as
/// notepack does).
pub fn check_frame(data: &[u8]) {
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

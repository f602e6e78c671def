//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same checks the
//! fuzz targets run, so that CI on stable catches regressions without libFuzzer.

#![allow(clippy::unwrap_used, clippy::panic)]

fn replay(target: &str, check: fn(&[u8])) {
    engineio::fuzzing::replay_corpus(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn socketio_packet() {
    replay("socketio_packet", socketio::fuzzing::check_packet);
}

#[test]
fn socketio_binary() {
    replay("socketio_binary", socketio::fuzzing::check_binary);
}

#[test]
fn socketio_msgpack() {
    replay("socketio_msgpack", socketio::fuzzing::check_msgpack_packet);
}

#[test]
fn session() {
    replay("session", socketio::fuzzing::check_session);
}

/// Found by the `socketio_packet` target (`fuzz/artifacts-found/socketio_packet-float-roundtrip`):
/// without serde_json's `float_roundtrip` feature (now enabled in the workspace),
/// `8.88888888888889e+58` (the shortest form, which JSON.stringify sends) decoded 1 ULP off,
/// as 8.888888888888891e+58.
#[test]
fn float_round_trip() {
    socketio::fuzzing::check_packet(b"3[8.88888888888889e+58]");
    socketio::fuzzing::check_packet(b"3[1.2222222222222221e+55]");
}

/// Found by the `socketio_msgpack` target
/// (`fuzz/artifacts-found/socketio_msgpack-binary-outside-data`): binary values in keys the
/// msgpack parser ignores made the packet a BINARY_EVENT with attachments that nothing in `data`
/// referred to (its re-encoding was a plain EVENT). Only what `data` names is kept now.
#[test]
fn msgpack_binary_outside_data_is_not_the_packets() {
    let input = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/artifacts-found/socketio_msgpack-binary-outside-data"),
    )
    .unwrap();
    socketio::fuzzing::check_msgpack_packet(&input);
    // The smallest form: an EVENT whose only binary value is under `options`.
    let mut map = serde_json::Map::new();
    map.insert("type".into(), 2.into());
    map.insert("nsp".into(), "/".into());
    map.insert("data".into(), serde_json::json!(["e", 1]));
    map.insert(
        "options".into(),
        serde_json::json!({"_placeholder": true, "num": 0}),
    );
    let bytes = socketio::msgpack::encode(
        &serde_json::Value::Object(map),
        &[bytes::Bytes::from_static(&[1, 2, 3])],
    )
    .unwrap();
    let p = socketio::packet::decode_msgpack(&bytes, &socketio::packet::Limits::default()).unwrap();
    assert_eq!(p.packet.kind, socketio::packet::PacketType::Event);
    assert!(p.attachments.is_empty());
    socketio::fuzzing::check_msgpack_packet(&bytes);
}

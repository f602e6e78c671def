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

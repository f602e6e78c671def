//! Replays the committed fuzz corpus (`fuzz/corpus/redis_frame/`) through the
//! check the fuzz target runs, so CI on stable catches regressions; checks the
//! codec against frames notepack.io itself wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn redis_frame() {
    engineio::fuzzing::replay_corpus(
        env!("CARGO_MANIFEST_DIR"),
        "redis_frame",
        socketio_redis::fuzzing::check_frame,
    );
}

fn seed(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../fuzz/corpus/redis_frame/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The seeds were written by notepack.io itself (`fuzz/make_redis_seeds.js`):
/// our encoder gives back the very same bytes.
#[test]
fn byte_exact_with_notepack() {
    for name in [
        "broadcast-all",
        "broadcast-room-binary",
        "broadcast-emitter",
        "request-broadcast-ack",
        "response-ack",
    ] {
        let bytes = seed(name);
        let (v, bins) = socketio_redis::msgpack::decode(&bytes).unwrap();
        assert_eq!(
            socketio_redis::msgpack::encode(&v, &bins).unwrap(),
            bytes,
            "{name}: {v}"
        );
    }
}

#[test]
fn node_frames_decode_as_node_means_them() {
    let f = socketio_redis::wire::decode_broadcast(&seed("broadcast-date")).unwrap();
    assert_eq!(
        f.packet.data,
        serde_json::json!(["d", "2023-11-14T22:13:20.123Z"])
    );
    let f = socketio_redis::wire::decode_broadcast(&seed("broadcast-room-binary")).unwrap();
    assert_eq!(f.packet.nsp, "/custom");
    assert_eq!(f.selection.rooms, ["r1"]);
    assert!(f.volatile);
    assert_eq!(
        f.packet.attachments,
        [bytes::Bytes::from_static(&[0, 1, 2, 255])]
    );
}

/// Found by the `redis_frame` target (`fuzz/artifacts-found/redis_frame-binary-in-key`):
/// binary inside a map key (turned into text) left an attachment that no placeholder
/// named, which was still handed on; the same for a value dropped by a repeated key.
#[test]
fn binary_in_a_map_key_is_dropped_with_it() {
    let bytes = std::fs::read(format!(
        "{}/../fuzz/artifacts-found/redis_frame-binary-in-key",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    socketio_redis::fuzzing::check_frame(&bytes);
}

/// Found by the `redis_frame` target (`fuzz/artifacts-found/redis_frame-nested-map-keys-slow`):
/// maps used as keys of maps, 35 deep, took 57 s to decode (each level's key was turned
/// into escaped JSON text, doubling at each level); now keys become JavaScript's
/// property names (`[object Object]`), in linear time.
#[test]
fn nested_map_keys_decode_fast() {
    let bytes = std::fs::read(format!(
        "{}/../fuzz/artifacts-found/redis_frame-nested-map-keys-slow",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        socketio_redis::fuzzing::check_frame(&bytes);
        let _ = tx.send(());
    });
    // Milliseconds now; minutes before the fix.
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("decoding took too long");
}

#[test]
fn redis_stream() {
    engineio::fuzzing::replay_corpus(
        env!("CARGO_MANIFEST_DIR"),
        "redis_stream",
        socketio_redis::fuzzing::check_stream,
    );
}

/// Found by the `redis_stream` target (`fuzz/artifacts-found/redis_stream-unreferenced-binary`):
/// a stream entry whose packet has its binary under a key other than `data` gave a packet with
/// an attachment no placeholder names; the check (a broadcast crosses our entry unchanged)
/// failed on it.
#[test]
fn redis_stream_unreferenced_binary() {
    let path = format!(
        "{}/../fuzz/artifacts-found/redis_stream-unreferenced-binary",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    socketio_redis::fuzzing::check_stream(&data);
}

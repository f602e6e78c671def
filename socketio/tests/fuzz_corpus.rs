//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same checks the
//! fuzz targets run, so that CI on stable catches regressions without libFuzzer.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>/`, sorted by name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{}: too few seeds", dir.display());
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    for (path, data) in corpus(target) {
        // Printed only when the test fails: names the input that broke the check.
        eprintln!("{target}: {}", path.display());
        check(&data);
    }
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

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
fn engineio_packet() {
    replay("engineio_packet", engineio::fuzzing::check_packet);
}

#[test]
fn engineio_payload() {
    replay("engineio_payload", engineio::fuzzing::check_payload);
}

#[test]
fn session_engine_only() {
    replay("session", engineio::fuzzing::check_session);
}

/// Found by the `session` target (`fuzz/artifacts-found/session-volatile-over-bound`): a
/// volatile batch larger than `max_buffered_packets` was queued whole when the transport was
/// ready, past the bound. Now it is dropped.
#[test]
fn volatile_batch_over_bound() {
    engineio::fuzzing::check_session(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/artifacts-found/session-volatile-over-bound"),
        )
        .unwrap(),
    );
    let mut h = engineio::fuzzing::SessionHarness::new(false, 8);
    assert!(h.get_begin());
    let batch = (0..9)
        .map(|i| engineio::Message::from(format!("m{i}")))
        .collect();
    assert!(!h.send_volatile(batch));
    assert_eq!(h.queued_len(), 0);
}

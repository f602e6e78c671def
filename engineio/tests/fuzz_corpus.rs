//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same checks the
//! fuzz targets run, so that CI on stable catches regressions without libFuzzer.

#![allow(clippy::unwrap_used, clippy::panic)]

fn replay(target: &str, check: fn(&[u8])) {
    engineio::fuzzing::replay_corpus(env!("CARGO_MANIFEST_DIR"), target, check);
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
fn engineio_payload_v3() {
    replay("engineio_payload_v3", engineio::fuzzing::check_payload_v3);
}

#[test]
fn ws_frame() {
    replay("ws_frame", engineio::fuzzing::check_ws_frame);
}

/// Found by `ws_frame`'s proptest twin once the target first ran
/// (`fuzz/artifacts-found/ws_frame-ping-over-max-payload`: `max_payload` 64, a ping with 100
/// bytes). The decoder accepts it, rightly (control frames are bounded by 125 bytes, not by
/// `max_payload`, as in Node's `ws`), but the check held every frame to `max_payload`.
#[test]
fn ping_over_max_payload_is_a_control_frame() {
    let input = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/artifacts-found/ws_frame-ping-over-max-payload"),
    )
    .unwrap();
    assert_eq!(input[0], 0x08, "max_payload 64, deflate off");
    assert_eq!(input[1..3], [0x89, 0x80 | 100], "a masked 100-byte ping");
    engineio::fuzzing::check_ws_frame(&input);
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

/// The harness drives a v3 session (script config bit 4) in the v3 forms: a client ping in a
/// length-prefixed body is answered with a pong, and without pings the session closes after
/// interval + timeout (300 + 200 ms); an XHR2 body (first byte 0 or 1) is read as such.
#[test]
fn v3_session_harness() {
    use engineio::{Message, Packet};
    let mut h = engineio::fuzzing::SessionHarness::with_protocol(false, 8, true);
    h.advance(300);
    assert!(h.post_begin());
    assert!(h.post_body(b"1:2").is_empty());
    assert!(h.get_begin());
    assert_eq!(h.get_take(), Some(vec![Packet::Pong { probe: false }]));
    assert!(h.post_begin());
    assert_eq!(
        h.post_body(b"\x00\x02\xff4a\x01\x02\xff\x04\x09"),
        vec![Message::from("a"), Message::from(vec![9u8])]
    );
    h.advance(499);
    assert!(!h.is_closed());
    h.advance(1);
    assert!(h.is_closed());
}

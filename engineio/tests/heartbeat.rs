//! Heartbeat: the server pings every `ping_interval`, the client must pong
//! within `ping_timeout`. Timings use 300 / 200 ms with generous margins:
//! deadlines are asserted as "not before ~400 ms" and "within 10 s".

mod support;

use std::time::{Duration, Instant};

use engineio::CloseReason;
use support::{Server, fast_heartbeat, ws_expect_closed, ws_recv_text, ws_send_text};

/// Interval + timeout is 500 ms; allow for scheduling noise on the low side.
const EARLIEST_TIMEOUT: Duration = Duration::from_millis(400);
/// The next ping cannot come sooner than the interval (minus the reply's trip).
const EARLIEST_PING: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_pong_keeps_the_session_alive() {
    let server = Server::start(fast_heartbeat()).await;
    let (sid, _) = server.polling_open().await;
    let mut last = Instant::now();
    for round in 0..3 {
        // The GET is held until the ping is due.
        assert_eq!(server.poll_text(&sid).await, "2", "round {round}");
        let waited = last.elapsed();
        assert!(waited >= EARLIEST_PING, "ping after {waited:?}");
        server.post_ok(&sid, b"3").await;
        last = Instant::now();
    }
    // Three rounds took > 3 × interval, far past interval + timeout.
    assert!(server.closed_now(&sid).is_none());
    server.post_ok(&sid, b"4alive").await;
    assert_eq!(server.poll_text(&sid).await, "4alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_without_pong_times_out() {
    let server = Server::start(fast_heartbeat()).await;
    let start = Instant::now();
    let (sid, _) = server.polling_open().await;
    assert_eq!(server.poll_text(&sid).await, "2");
    // Other traffic is not liveness.
    server.post_ok(&sid, b"4not-a-pong").await;
    let closed = server.wait_closed(&sid).await;
    assert_eq!(closed.reason, CloseReason::PingTimeout);
    let after = closed.at - start;
    assert!(after >= EARLIEST_TIMEOUT, "timed out after {after:?}");
    server
        .poll(&sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_client_that_never_polls_times_out() {
    let server = Server::start(fast_heartbeat()).await;
    let start = Instant::now();
    let (sid, _) = server.polling_open().await;
    let closed = server.wait_closed(&sid).await;
    assert_eq!(closed.reason, CloseReason::PingTimeout);
    assert!(closed.at - start >= EARLIEST_TIMEOUT);
    server
        .poll(&sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pong_keeps_the_session_alive() {
    let server = Server::start(fast_heartbeat()).await;
    let (mut ws, sid, _) = server.ws_open().await;
    let mut last = Instant::now();
    for round in 0..3 {
        assert_eq!(ws_recv_text(&mut ws).await, "2", "round {round}");
        let waited = last.elapsed();
        assert!(waited >= EARLIEST_PING, "ping after {waited:?}");
        ws_send_text(&mut ws, "3").await;
        last = Instant::now();
    }
    ws_send_text(&mut ws, "4alive").await;
    assert_eq!(support::ws_recv_text_skip_ping(&mut ws).await, "4alive");
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_without_pong_is_closed() {
    let server = Server::start(fast_heartbeat()).await;
    let start = Instant::now();
    let (mut ws, sid, _) = server.ws_open().await;
    assert_eq!(ws_recv_text(&mut ws).await, "2");
    ws_send_text(&mut ws, "4not-a-pong").await;
    ws_expect_closed(&mut ws).await;
    let closed = server.wait_closed(&sid).await;
    assert_eq!(closed.reason, CloseReason::PingTimeout);
    let after = closed.at - start;
    assert!(after >= EARLIEST_TIMEOUT, "timed out after {after:?}");
    assert!(server.engine.socket(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_session_keeps_its_heartbeat() {
    let server = Server::start(fast_heartbeat()).await;
    let (sid, _) = server.polling_open().await;
    // Pong the first ping over polling, then upgrade and pong over WebSocket.
    assert_eq!(server.poll_text(&sid).await, "2");
    server.post_ok(&sid, b"3").await;
    let mut ws = server.ws_upgrade(&sid).await;
    ws_send_text(&mut ws, "2probe").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3probe");
    ws_send_text(&mut ws, "5").await;
    for _ in 0..2 {
        assert_eq!(ws_recv_text(&mut ws).await, "2");
        ws_send_text(&mut ws, "3").await;
    }
    assert!(server.closed_now(&sid).is_none());
}

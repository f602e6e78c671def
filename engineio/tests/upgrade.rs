//! Upgrade from long-polling to WebSocket: probe, switch, refusals, timeout.

mod support;

use std::time::{Duration, Instant};

use engineio::{EngineConfig, Transport};
use support::{
    Server, assert_held, finish_request, start_request, ws_expect_closed, ws_recv_text,
    ws_send_text,
};

async fn server() -> Server {
    Server::start(EngineConfig::default()).await
}

/// Probes and completes an upgrade of `sid`; returns the WebSocket.
async fn upgrade(server: &Server, sid: &str) -> support::Ws {
    let mut ws = server.ws_upgrade(sid).await;
    ws_send_text(&mut ws, "2probe").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3probe");
    ws_send_text(&mut ws, "5").await;
    // `5` has no answer; an echo round trip shows that it was handled.
    ws_send_text(&mut ws, "4upgraded").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4upgraded");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_flow_releases_get_and_switches() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    let target = server.url(&format!("transport=polling&sid={sid}"));
    let mut pending = start_request(server.addr, "GET", &target).await;
    assert_held(&mut pending, Duration::from_millis(200)).await;

    let mut ws = server.ws_upgrade(&sid).await;
    // Still on polling while probing.
    assert_eq!(socket.transport(), Transport::Polling);
    ws_send_text(&mut ws, "2probe").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3probe");
    let res = finish_request(pending, "GET").await;
    assert_eq!((res.status, res.text().as_str()), (200, "6"));

    // Sent while the client switches: must come out on the WebSocket.
    socket.send_text("queued").unwrap();
    // A GET during the probe is released at once too.
    assert_eq!(server.poll_text(&sid).await, "6");

    ws_send_text(&mut ws, "5").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4queued");
    assert_eq!(socket.transport(), Transport::WebSocket);
    ws_send_text(&mut ws, "4hello").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4hello");
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_after_upgrade_is_refused_and_ws_still_echoes() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let mut ws = upgrade(&server, &sid).await;
    server.poll(&sid).await.assert_error(400, 3, "Bad request");
    ws_send_text(&mut ws, "4hello").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_websocket_is_closed_first_still_echoes() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let mut ws = upgrade(&server, &sid).await;
    let mut second = server.ws_upgrade(&sid).await;
    ws_expect_closed(&mut second).await;
    ws_send_text(&mut ws, "4hello").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4hello");
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_probe_while_probing_is_closed() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let mut probe = server.ws_upgrade(&sid).await;
    ws_send_text(&mut probe, "2probe").await;
    assert_eq!(ws_recv_text(&mut probe).await, "3probe");
    let mut second = server.ws_upgrade(&sid).await;
    ws_expect_closed(&mut second).await;
    // The first probe can still finish.
    ws_send_text(&mut probe, "5").await;
    ws_send_text(&mut probe, "4hello").await;
    assert_eq!(ws_recv_text(&mut probe).await, "4hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_packet_on_probe_aborts_the_upgrade() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    let mut probe = server.ws_upgrade(&sid).await;
    ws_send_text(&mut probe, "2probe").await;
    assert_eq!(ws_recv_text(&mut probe).await, "3probe");
    ws_send_text(&mut probe, "4early").await;
    ws_expect_closed(&mut probe).await;
    assert_eq!(socket.transport(), Transport::Polling);

    // Polling carries on; the probe's message was not delivered.
    server.post_ok(&sid, b"4polling").await;
    assert_eq!(server.poll_text(&sid).await, "4polling");
    // And a later upgrade succeeds.
    let mut ws = upgrade(&server, &sid).await;
    ws_send_text(&mut ws, "4hi").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_packet_on_probe_aborts_only_the_upgrade() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let mut probe = server.ws_upgrade(&sid).await;
    ws_send_text(&mut probe, "abc").await;
    ws_expect_closed(&mut probe).await;
    server.post_ok(&sid, b"4alive").await;
    assert_eq!(server.poll_text(&sid).await, "4alive");
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_timeout_closes_the_probe() {
    let server =
        Server::start(EngineConfig::default().upgrade_timeout(Duration::from_millis(300))).await;
    let (sid, _) = server.polling_open().await;
    let start = Instant::now();
    let mut probe = server.ws_upgrade(&sid).await;
    ws_send_text(&mut probe, "2probe").await;
    assert_eq!(ws_recv_text(&mut probe).await, "3probe");
    // No `5`: the server gives up on the probe.
    ws_expect_closed(&mut probe).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after {elapsed:?}"
    );
    // The session stays on polling and works.
    server.post_ok(&sid, b"4still-polling").await;
    assert_eq!(server.poll_text(&sid).await, "4still-polling");
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_disabled_refuses_the_websocket() {
    let server = Server::start(EngineConfig::default().allow_upgrades(false)).await;
    let (sid, _) = server.polling_open().await;
    let res = support::request(
        server.addr,
        "GET",
        &server.url(&format!("transport=websocket&sid={sid}")),
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    )
    .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.header("content-type"), Some("text/html"));
    assert_eq!(res.text(), "Bad request");
    server.post_ok(&sid, b"4ok").await;
    assert_eq!(server.poll_text(&sid).await, "4ok");
}

/// Regression (the probe-close race, written down at
/// `Session::close_gracefully`): the application closes the session while the
/// client probes. The official client, having got `3probe`, pauses its polling
/// and will not poll again; it finishes the upgrade with `5` and expects what
/// was queued, and the close, on the WebSocket. The probe used to be closed at
/// once by the graceful close: the client then never saw the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_close_during_the_probe_lets_the_client_finish_the_upgrade() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    let target = server.url(&format!("transport=polling&sid={sid}"));
    let pending = start_request(server.addr, "GET", &target).await;
    let mut ws = server.ws_upgrade(&sid).await;
    ws_send_text(&mut ws, "2probe").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3probe");
    // The client pauses: it takes the pending GET's answer and polls no more.
    let res = finish_request(pending, "GET").await;
    assert_eq!((res.status, res.text().as_str()), (200, "6"));
    // Now the application closes the session, with a last message queued.
    socket.send_text("bye").unwrap();
    socket.close();
    // The client finishes its upgrade: the message and the close come on
    // the WebSocket.
    ws_send_text(&mut ws, "5").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4bye");
    let frame = ws_expect_closed(&mut ws).await;
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        engineio::CloseReason::ForcedClose
    );
}

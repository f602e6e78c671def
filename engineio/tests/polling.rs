//! HTTP long-polling: payloads, held GETs, overlapping requests, bad input,
//! close from either side.

mod support;

use std::time::Duration;

use engineio::{CloseReason, EngineConfig, Message};
use support::{Server, assert_held, finish_request, start_request, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a held GET is watched before the test goes on. The server has no
/// observable "GET is pending" signal, so this window is also what lets it
/// register the GET before the next step.
const HOLD: Duration = Duration::from_millis(300);

async fn server() -> Server {
    Server::start(EngineConfig::default()).await
}

/// Starts a GET on `sid` and checks that the server holds it.
async fn held_get(server: &Server, sid: &str) -> tokio::net::TcpStream {
    let mut stream = start_request(
        server.addr,
        "GET",
        &server.url(&format!("transport=polling&sid={sid}")),
    )
    .await;
    assert_held(&mut stream, HOLD).await;
    stream
}

/// GETs until `n` packets have arrived; returns them in order. The echo
/// handler queues each message separately, so they may span several GETs.
async fn poll_packets(server: &Server, sid: &str, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let body = server.poll_text(sid).await;
        got.extend(body.split('\x1e').map(str::to_owned));
    }
    assert_eq!(got.len(), n, "{got:?}");
    got
}

/// Asserts the session is gone: GET and POST get code 1.
async fn assert_gone(server: &Server, sid: &str) {
    server
        .poll(sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server
        .post(sid, b"4x")
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_then_get_echoes_with_the_right_headers() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let res = server.post(&sid, b"4hello").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "ok");
    assert_eq!(res.header("content-type"), Some("text/html"));
    let res = server.poll(&sid).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "4hello");
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_payload_is_echoed_in_order() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    server.post_ok(&sid, b"4test1\x1e4test2\x1e4test3").await;
    assert_eq!(
        poll_packets(&server, &sid, 3).await,
        ["4test1", "4test2", "4test3"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_is_echoed_as_identical_base64() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    server.post_ok(&sid, b"4hello\x1ebAQIDBA==").await;
    assert_eq!(
        poll_packets(&server, &sid, 2).await.join("\x1e").as_bytes(),
        b"4hello\x1ebAQIDBA=="
    );
    // Text that merely looks like a binary item stays text.
    server.post_ok(&sid, b"4bAQIDBA==").await;
    assert_eq!(server.poll_text(&sid).await, "4bAQIDBA==");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_holds_until_data_then_flushes_everything_queued() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let socket = server.engine.socket(&sid).unwrap();

    // A held GET is released by the first send, with all of it.
    let pending = held_get(&server, &sid).await;
    socket
        .send_all(vec![
            Message::from("a"),
            Message::from(vec![1u8, 2, 3, 4]),
            Message::from("c"),
        ])
        .unwrap();
    let res = finish_request(pending, "GET").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"4a\x1ebAQIDBA==\x1e4c");

    // With no GET pending, separate sends queue up and go in one payload.
    for m in ["x", "y", "z"] {
        socket.send_text(m).unwrap();
    }
    assert_eq!(server.poll_text(&sid).await, "4x\x1e4y\x1e4z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_gets_close_the_session() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let target = server.url(&format!("transport=polling&sid={sid}"));
    let first = start_request(server.addr, "GET", &target).await;
    let second = start_request(server.addr, "GET", &target).await;
    let (a, b) = tokio::join!(finish_request(first, "GET"), finish_request(second, "GET"));
    // Whichever the server saw first is answered `1`; the other is refused.
    let (ok, refused) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!((ok.status, ok.text().as_str()), (200, "1"));
    refused.assert_error(400, 3, "Bad request");
    assert_gone(&server, &sid).await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportError
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_close_the_session() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let target = server.url(&format!("transport=polling&sid={sid}"));
    // A POST whose body is still arriving.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 100\r\n\r\n4par"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    // A second POST overlaps it once the server has begun reading the first;
    // until then it is just an ordinary POST (no sleeps: retry).
    within("the overlapping POST to be refused", async {
        loop {
            let res = server.post(&sid, b"4second").await;
            if res.status == 400 {
                // This POST is the overlapping one (code 3), or it was still
                // being read when the slow one's headers came, so that one was
                // refused and the session is already gone (code 1): either
                // way the overlap closed the session (checked below).
                let code3 = r#"{"code":3,"message":"Bad request"}"#;
                let code1 = r#"{"code":1,"message":"Session ID unknown"}"#;
                assert!(
                    [code3, code1].contains(&res.text().as_str()),
                    "{}",
                    res.text()
                );
                break;
            }
            assert_eq!(res.status, 200);
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportError
    );
    assert_gone(&server, &sid).await;
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_post_closes_the_session() {
    let server = server().await;
    let cases: [&[u8]; 5] = [
        b"abc",
        b"bnot*base64",
        b"",
        b"4ok\x1e\x1e4never",
        b"4\xff\xfe",
    ];
    for body in cases {
        let (sid, _) = server.polling_open().await;
        let res = server.post(&sid, body).await;
        res.assert_error(400, 3, "Bad request");
        assert_eq!(
            server.wait_closed(&sid).await.reason,
            CloseReason::ParseError,
            "{body:?}"
        );
        assert_gone(&server, &sid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_content_type_is_refused() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let res = support::request(
        server.addr,
        "POST",
        &server.url(&format!("transport=polling&sid={sid}")),
        &[("Content-Type", "application/octet-stream")],
        b"4hello",
    )
    .await;
    res.assert_error(400, 3, "Bad request");
    server.wait_closed(&sid).await;
    assert_gone(&server, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_releases_pending_get_with_noop() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let pending = held_get(&server, &sid).await;
    server.post_ok(&sid, b"1").await;
    let res = finish_request(pending, "GET").await;
    assert_eq!((res.status, res.text().as_str()), (200, "6"));
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportClose
    );
    assert_gone(&server, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_is_delivered_on_the_next_get() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    server.post_ok(&sid, b"4server-close").await;
    assert_eq!(server.poll_text(&sid).await, "1");
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::ForcedClose
    );
    assert_gone(&server, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_delivers_queued_messages_first() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    socket.send_text("last words").unwrap();
    socket.close();
    assert!(!socket.is_open());
    assert!(socket.send_text("too late").is_err());
    // The queue first, the close in a response of its own (a client handles a
    // close packet before the messages of the same payload).
    assert_eq!(server.poll_text(&sid).await, "4last words");
    assert_eq!(server.poll_text(&sid).await, "1");
    assert_gone(&server, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_on_an_upgraded_session_is_a_bad_request() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let mut ws = server.ws_upgrade(&sid).await;
    support::ws_send_text(&mut ws, "2probe").await;
    assert_eq!(support::ws_recv_text(&mut ws).await, "3probe");
    support::ws_send_text(&mut ws, "5").await;
    // `5` has no answer; an echo round trip shows it was handled.
    support::ws_send_text(&mut ws, "4ping-through").await;
    assert_eq!(support::ws_recv_text(&mut ws).await, "4ping-through");
    server.poll(&sid).await.assert_error(400, 3, "Bad request");
    server
        .post(&sid, b"4x")
        .await
        .assert_error(400, 3, "Bad request");
    // The session itself is unharmed.
    support::ws_send_text(&mut ws, "4still").await;
    assert_eq!(support::ws_recv_text(&mut ws).await, "4still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_get_does_not_block_the_next_one() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let mut pending = held_get(&server, &sid).await;
    // The client goes away mid-poll. Half-closing and waiting for the server
    // to drop the connection makes "the server noticed" observable.
    pending.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let read = within(
        "server to drop the abandoned GET",
        pending.read_to_end(&mut rest),
    )
    .await;
    assert!(
        read.is_err() || rest.is_empty(),
        "abandoned GET was answered: {rest:?}"
    );
    // A new GET is the session's only one.
    let next = held_get(&server, &sid).await;
    server.post_ok(&sid, b"4after").await;
    let res = finish_request(next, "GET").await;
    assert_eq!((res.status, res.text().as_str()), (200, "4after"));
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_get_by_reset_does_not_block_the_next_one() {
    let server = server().await;
    let (sid, _) = server.polling_open().await;
    let pending = held_get(&server, &sid).await;
    // A hard close (RST via SO_LINGER 0) instead of a FIN.
    #[allow(deprecated)] // `set_zero_linger` needs a newer tokio than the workspace minimum
    pending.set_linger(Some(Duration::ZERO)).unwrap();
    drop(pending);
    // No signal tells when the server has seen the reset; a POST round trip
    // goes first, then the GET must be accepted.
    server.post_ok(&sid, b"4after-reset").await;
    assert_eq!(server.poll_text(&sid).await, "4after-reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_without_get_gives_up_after_close_wait() {
    let server =
        Server::start(EngineConfig::default().polling_close_wait(Duration::from_millis(300))).await;
    let (sid, _) = server.polling_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    let start = std::time::Instant::now();
    socket.close();
    let closed = server.wait_closed(&sid).await;
    assert_eq!(closed.reason, CloseReason::ForcedClose);
    assert!(closed.at - start >= Duration::from_millis(250));
    assert_gone(&server, &sid).await;
}

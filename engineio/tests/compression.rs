//! HTTP compression of polling responses (Node's `httpCompression`): on by
//! default from 1 024 bytes, gzip or deflate as `Accept-Encoding` asks, off
//! when configured so, and never on WebSocket.

// Helpers outside `#[test]` fns are test code too.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;

use engineio::{EngineConfig, HttpCompression};
use support::{Server, request, ws_recv_text_skip_ping, ws_send_text};

/// Posts `msg` (echoed by the test server) and GETs it back with `accept`.
async fn echo_back(
    server: &Server,
    sid: &str,
    msg: &str,
    accept: Option<&str>,
) -> support::HttpResponse {
    server.post_ok(sid, format!("4{msg}").as_bytes()).await;
    let target = server.url(&format!("transport=polling&sid={sid}"));
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
    request(server.addr, "GET", &target, &headers, b"").await
}

fn gunzip(body: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn inflate(body: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::ZlibDecoder::new(body)
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_polling_payloads_follow_accept_encoding() {
    let server = Server::start(EngineConfig::default()).await;
    let (sid, _) = server.polling_open().await;
    let big = "x".repeat(5_000);

    let res = echo_back(&server, &sid, &big, Some("gzip, deflate, br")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert!(
        res.body.len() < 1_000,
        "compressed: {} bytes",
        res.body.len()
    );
    assert_eq!(gunzip(&res.body), format!("4{big}"));

    let res = echo_back(&server, &sid, &big, Some("deflate")).await;
    assert_eq!(res.header("content-encoding"), Some("deflate"));
    assert_eq!(inflate(&res.body), format!("4{big}"));

    // Not asked: plain.
    let res = echo_back(&server, &sid, &big, None).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{big}"));

    // Under the threshold: plain even when asked.
    let res = echo_back(&server, &sid, "small", Some("gzip")).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), "4small");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_can_be_turned_off_or_retuned() {
    let server = Server::start(EngineConfig::default().http_compression(None)).await;
    let (sid, _) = server.polling_open().await;
    let big = "y".repeat(5_000);
    let res = echo_back(&server, &sid, &big, Some("gzip")).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{big}"));

    let config =
        EngineConfig::default().http_compression(Some(HttpCompression::default().threshold(10)));
    let server = Server::start(config).await;
    let (sid, _) = server.polling_open().await;
    let res = echo_back(&server, &sid, "twelve bytes", Some("gzip")).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&res.body), "4twelve bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_are_never_compressed() {
    let server = Server::start(EngineConfig::default()).await;
    let (mut ws, _sid, _) = server.ws_open().await;
    let big = "z".repeat(5_000);
    ws_send_text(&mut ws, &format!("4{big}")).await;
    assert_eq!(ws_recv_text_skip_ping(&mut ws).await, format!("4{big}"));
}

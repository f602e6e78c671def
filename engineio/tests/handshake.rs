//! Handshake: the open packet, every refusal code, CORS, and the peer address.

// clippy.toml's allow-*-in-tests does not reach helper functions.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

use std::time::Duration;

use engineio::{Cors, EngineConfig, EngineIo};
use support::{Server, fast_heartbeat, finish_request, request, start_request};

const UNKNOWN_SID: &str = "AAAAAAAAAAAAAAAAAAAA";

/// Checks the open packet's JSON text: exactly these keys, in this order, with
/// the configured values (serde_json sorts parsed maps, so compare the text).
fn assert_open_packet(packet: &str, upgrades: &str) -> String {
    let json = packet.strip_prefix('0').unwrap();
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
    let sid = parsed["sid"].as_str().unwrap();
    assert_eq!(sid.len(), 20, "sid {sid}");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid {sid} is not URL-safe"
    );
    assert_eq!(
        json,
        format!(
            r#"{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":300,"pingTimeout":200,"maxPayload":123456}}"#
        )
    );
    sid.to_owned()
}

fn config() -> EngineConfig {
    fast_heartbeat().max_payload(123_456)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_open_packet() {
    let server = Server::start(config()).await;
    let res = support::get(server.addr, &server.url("transport=polling")).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let sid = assert_open_packet(&res.text(), r#"["websocket"]"#);
    // Two handshakes never share a sid.
    let (other, _) = server.polling_open().await;
    assert_ne!(other, sid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_open_packet() {
    let server = Server::start(config()).await;
    let mut ws = support::ws_connect(server.addr, &server.url("transport=websocket")).await;
    let open = support::ws_recv_text(&mut ws).await;
    assert_open_packet(&open, "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_without_upgrades_advertises_none() {
    let server = Server::start(config().allow_upgrades(false)).await;
    let (_, json) = server.polling_open().await;
    assert_eq!(json["upgrades"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_0_unknown_transport() {
    let server = Server::start(config()).await;
    for target in [
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=abc",
        "/engine.io/?EIO=4&transport=",
    ] {
        let res = support::get(server.addr, target).await;
        res.assert_error(400, 0, "Transport unknown");
    }
    // A transport switched off in the config is unknown too.
    let server = Server::start(config().allow_websocket(false)).await;
    let res = support::get(server.addr, "/engine.io/?EIO=4&transport=websocket").await;
    res.assert_error(400, 0, "Transport unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_1_unknown_sid() {
    let server = Server::start(config()).await;
    for sid in [UNKNOWN_SID, "abc"] {
        let res = server.poll(sid).await;
        res.assert_error(400, 1, "Session ID unknown");
        let res = server.post(sid, b"4hello").await;
        res.assert_error(400, 1, "Session ID unknown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_2_handshake_not_get() {
    let server = Server::start(config()).await;
    for method in ["POST", "PUT"] {
        let res = request(
            server.addr,
            method,
            &server.url("transport=polling"),
            &[],
            b"4hello",
        )
        .await;
        res.assert_error(400, 2, "Bad handshake method");
    }
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_3_websocket_transport_without_upgrade() {
    let server = Server::start(config()).await;
    let res = support::get(server.addr, &server.url("transport=websocket")).await;
    res.assert_error(400, 3, "Bad request");
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_4_allow_request_refuses() {
    let builder = EngineIo::builder(config()).allow_request(|req| {
        let ok = req.query("token") == Some("secret");
        async move { ok }
    });
    let server = Server::start_builder(builder).await;
    let res = support::get(server.addr, &server.url("transport=polling&token=nope")).await;
    res.assert_error(403, 4, "Forbidden");
    let res = support::get(server.addr, &server.url("transport=polling")).await;
    res.assert_error(403, 4, "Forbidden");
    // A refused WebSocket handshake gets the raw 400 with the message.
    let res = request(
        server.addr,
        "GET",
        &server.url("transport=websocket"),
        &upgrade_headers(),
        b"",
    )
    .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.header("content-type"), Some("text/html"));
    assert_eq!(res.text(), "Forbidden");
    assert_eq!(server.engine.session_count(), 0);
    let res = support::get(server.addr, &server.url("transport=polling&token=secret")).await;
    assert_eq!(res.status, 200);
    assert!(res.text().starts_with("0{"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_5_unsupported_protocol_version() {
    let server = Server::start(config()).await;
    for target in [
        "/engine.io/?transport=polling",
        "/engine.io/?EIO=3&transport=polling",
        "/engine.io/?EIO=abc&transport=polling",
        "/engine.io/?EIO=5&transport=polling",
    ] {
        let res = support::get(server.addr, target).await;
        res.assert_error(400, 5, "Unsupported protocol version");
    }
    assert_eq!(server.engine.session_count(), 0);
}

fn upgrade_headers() -> [(&'static str, &'static str); 4] {
    [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_websocket_upgrade_is_plain_html() {
    let server = Server::start(config()).await;
    let cases = [
        (
            server.url(&format!("transport=websocket&sid={UNKNOWN_SID}")),
            "Session ID unknown",
        ),
        (
            "/engine.io/?EIO=3&transport=websocket".to_owned(),
            "Unsupported protocol version",
        ),
        (
            "/engine.io/?EIO=4&transport=abc".to_owned(),
            "Transport unknown",
        ),
    ];
    for (target, message) in cases {
        let res = request(server.addr, "GET", &target, &upgrade_headers(), b"").await;
        assert_eq!(res.status, 400, "{target}");
        assert_eq!(res.header("content-type"), Some("text/html"));
        assert_eq!(res.header("connection"), Some("close"));
        assert_eq!(res.text(), message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_with_cors_any() {
    let server = Server::start(config().cors(Cors::any())).await;
    let res = request(
        server.addr,
        "OPTIONS",
        &server.url("transport=polling"),
        &[
            ("Origin", "https://example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type, x-custom"),
        ],
        b"",
    )
    .await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        res.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(res.header("vary"), Some("Access-Control-Request-Headers"));
    // Node also sends `Content-Length: 0`; hyper drops that header on a 204
    // (RFC 9110 §8.6 forbids it), so only the empty body is checked.
    assert!(res.body.is_empty());
    // The preflight comes before any protocol check.
    let res = request(
        server.addr,
        "OPTIONS",
        "/engine.io/?EIO=3&transport=nope",
        &[("Access-Control-Request-Method", "GET")],
        b"",
    )
    .await;
    assert_eq!(res.status, 204);
    // Every engine answer carries the origin header, refusals included.
    let res = support::get(server.addr, &server.url("transport=polling")).await;
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    let res = support::get(server.addr, "/engine.io/?EIO=4").await;
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_without_cors_is_a_bad_handshake() {
    let server = Server::start(config()).await;
    let res = request(
        server.addr,
        "OPTIONS",
        &server.url("transport=polling"),
        &[
            ("Origin", "https://example.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await;
    res.assert_error(400, 2, "Bad handshake method");
    assert!(
        res.headers
            .iter()
            .all(|(k, _)| !k.starts_with("access-control-")),
        "{:?}",
        res.headers
    );
    let res = support::get(server.addr, &server.url("transport=polling")).await;
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_origin_list_reflects_allowed_origin_only() {
    let cors = Cors::origins(["https://good.example"]).credentials(true);
    let server = Server::start(config().cors(cors)).await;
    let target = server.url("transport=polling");
    let res = request(
        server.addr,
        "GET",
        &target,
        &[("Origin", "https://good.example")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://good.example")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("vary"), Some("Origin"));

    let res = request(
        server.addr,
        "GET",
        &target,
        &[("Origin", "https://evil.example")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), None);
    assert_eq!(res.header("access-control-allow-credentials"), None);

    let res = support::get(server.addr, &target).await;
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_addr_is_visible_to_the_application() {
    let server = Server::start(config()).await;
    let stream = start_request(server.addr, "GET", &server.url("transport=polling")).await;
    let local = stream.local_addr().unwrap();
    let res = finish_request(stream, "GET").await;
    let json: serde_json::Value = serde_json::from_str(&res.text()[1..]).unwrap();
    let socket = server.engine.socket(json["sid"].as_str().unwrap()).unwrap();
    assert_eq!(socket.handshake().remote_addr, Some(local));
    assert_eq!(socket.handshake().query("EIO"), Some("4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_method_on_a_session_is_500_and_keeps_it() {
    let server = Server::start(config().ping_interval(Duration::from_secs(25))).await;
    let (sid, _) = server.polling_open().await;
    let res = request(
        server.addr,
        "PUT",
        &server.url(&format!("transport=polling&sid={sid}")),
        &[],
        b"4x",
    )
    .await;
    assert_eq!(res.status, 500);
    server.post_ok(&sid, b"4still-here").await;
    assert_eq!(server.poll_text(&sid).await, "4still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_is_matched_by_prefix() {
    let server = Server::start(config()).await;
    let res = support::get(server.addr, "/engine.io?EIO=4&transport=polling").await;
    assert_eq!(res.status, 200);
    assert!(res.text().starts_with("0{"));
    for target in [
        "/engine.iox/?EIO=4&transport=polling",
        "/",
        "/socket.io/?EIO=4&transport=polling",
    ] {
        let res = support::get(server.addr, target).await;
        assert_eq!(res.status, 404, "{target}");
    }
}

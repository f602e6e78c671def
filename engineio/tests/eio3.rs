//! Engine.IO v3 clients (`EngineConfig::allow_eio3`) against a real server:
//! the refusal while the switch is off, the v3 framings (text with UTF-16
//! lengths, XHR2 binary, `b64=1`, WebSocket binary with its type byte), the
//! client-driven heartbeat, an upgrade, and hostile v3 input: lengths that lie,
//! non-digit and huge lengths, bad XHR2 headers. Each hostile body gets 400
//! and closes its own session with a parse error; v3 and v4 clients connected
//! at the same time keep getting their echo; nothing panics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::Duration;

use engineio::{CloseReason, EngineConfig};
use support::{
    HttpResponse, Server, Ws, get, request, within, ws_connect, ws_expect_closed, ws_next,
    ws_recv_text, ws_send_binary, ws_send_text,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn v3(config: EngineConfig) -> EngineConfig {
    config.allow_eio3(true)
}

fn poll_target(sid: &str, extra: &str) -> String {
    format!("/engine.io/?EIO=3&transport=polling&sid={sid}{extra}")
}

/// Splits a v3 text payload into its packets, checking every UTF-16 length.
fn parse_text(body: &str) -> Vec<String> {
    let units: Vec<u16> = body.encode_utf16().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let colon = units[i..]
            .iter()
            .position(|&u| u == u16::from(b':'))
            .unwrap()
            + i;
        let n: usize = String::from_utf16(&units[i..colon])
            .unwrap()
            .parse()
            .unwrap();
        out.push(String::from_utf16(&units[colon + 1..colon + 1 + n]).unwrap());
        i = colon + 1 + n;
    }
    out
}

/// A v3 polling handshake (extra query appended); returns the sid.
async fn v3_open(server: &Server, extra: &str) -> String {
    let res = get(
        server.addr,
        &format!("/engine.io/?EIO=3&transport=polling{extra}"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let packets = parse_text(&res.text());
    assert_eq!(packets.len(), 1, "the open packet comes alone");
    let json: serde_json::Value =
        serde_json::from_str(packets[0].strip_prefix('0').unwrap()).unwrap();
    assert!(json["pingInterval"].is_u64() && json["maxPayload"].is_u64());
    assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
    json["sid"].as_str().unwrap().to_owned()
}

async fn v3_poll(server: &Server, sid: &str, extra: &str) -> HttpResponse {
    get(server.addr, &poll_target(sid, extra)).await
}

async fn v3_post(server: &Server, sid: &str, body: &[u8], binary: bool) -> HttpResponse {
    let content_type = if binary {
        "application/octet-stream"
    } else {
        "text/plain;charset=UTF-8"
    };
    request(
        server.addr,
        "POST",
        &poll_target(sid, ""),
        &[("Content-Type", content_type)],
        body,
    )
    .await
}

/// `<len>:<packet>` with the length in UTF-16 units.
fn item(packet: &str) -> String {
    format!("{}:{packet}", packet.encode_utf16().count())
}

#[tokio::test]
async fn v3_is_refused_with_code_5_while_the_switch_is_off() {
    let server = Server::start(support::fast_heartbeat()).await;
    for target in [
        "/engine.io/?EIO=3&transport=polling",
        "/engine.io/?transport=polling",
    ] {
        get(server.addr, target)
            .await
            .assert_error(400, 5, "Unsupported protocol version");
    }
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn v3_polling_text_payloads_with_utf16_lengths_and_the_client_heartbeat() {
    let server = Server::start(v3(support::fast_heartbeat())).await;
    let sid = v3_open(&server, "").await;
    let socket = server.engine.socket(&sid).unwrap();
    assert_eq!(socket.protocol(), engineio::Protocol::V3);
    let body = format!("{}{}{}", item("2"), item("4é€😀"), item("4x"));
    let res = v3_post(&server, &sid, body.as_bytes(), false).await;
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    let mut got = Vec::new();
    while got.len() < 3 {
        let res = v3_poll(&server, &sid, "").await;
        assert_eq!(res.status, 200);
        got.extend(parse_text(&res.text()));
    }
    assert_eq!(got, ["3", "4é€😀", "4x"]);
    // 5 UTF-16 units (`4`, `é`, `€`, and two for `😀`), 10 UTF-8 bytes.
    assert_eq!(item("4é€😀"), "5:4é€😀");
    // The server never pings; without pings it closes after 300 + 200 ms.
    let closed = server.wait_closed(&sid).await;
    assert_eq!(closed.reason, CloseReason::PingTimeout);
}

#[tokio::test]
async fn v3_binary_goes_as_xhr2_payloads_or_as_b4_with_b64() {
    let server = Server::start(v3(EngineConfig::default())).await;
    // A browser (no b64): XHR2 binary payloads both ways.
    let sid = v3_open(&server, "").await;
    let body = b"\x00\x06\xff4hello\x01\x04\xff\x04\x01\x02\xff";
    let res = v3_post(&server, &sid, body, true).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = v3_poll(&server, &sid, "").await;
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    assert_eq!(res.body, body);
    // A client that asked for b64=1 at the handshake: text only, `b4<base64>`.
    let sid = v3_open(&server, "&b64=1").await;
    let body = format!("{}{}", item("4hello"), item("b4AQL/"));
    v3_post(&server, &sid, body.as_bytes(), false).await;
    let res = v3_poll(&server, &sid, "&b64=1").await;
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(res.text(), body);
}

async fn v3_ws_session(server: &Server) -> (Ws, String) {
    let mut ws = ws_connect(server.addr, "/engine.io/?EIO=3&transport=websocket").await;
    let open = ws_recv_text(&mut ws).await;
    let json: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    (ws, json["sid"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn v3_websocket_binary_frames_carry_the_type_byte() {
    let server = Server::start(v3(support::fast_heartbeat())).await;
    let (mut ws, sid) = v3_ws_session(&server).await;
    ws_send_binary(&mut ws, &[4, 1, 2, 3]).await;
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::Binary(vec![4u8, 1, 2, 3].into()))
    );
    ws_send_text(&mut ws, "b4AQID").await;
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::Binary(vec![4u8, 1, 2, 3].into()))
    );
    // Client pings keep the session alive well past interval + timeout.
    for _ in 0..4 {
        ws_send_text(&mut ws, "2").await;
        assert_eq!(ws_recv_text(&mut ws).await, "3");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.closed_now(&sid).is_none());
    // A type byte other than a message's is a parse error.
    ws_send_binary(&mut ws, &[7, 1]).await;
    ws_expect_closed(&mut ws).await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::ParseError
    );
}

#[tokio::test]
async fn a_v3_websocket_with_b64_gets_binary_as_b4_text_frames() {
    let server = Server::start(v3(EngineConfig::default())).await;
    // Opened on the WebSocket with b64=1.
    let mut ws = ws_connect(server.addr, "/engine.io/?EIO=3&transport=websocket&b64=1").await;
    assert!(ws_recv_text(&mut ws).await.starts_with('0'));
    ws_send_binary(&mut ws, &[4, 1, 2]).await;
    assert_eq!(ws_recv_text(&mut ws).await, "b4AQI=");
    // Upgraded: the WebSocket's own query decides, not the handshake's (a
    // Node v2 client polls with b64=1 and upgrades without it).
    let sid = v3_open(&server, "&b64=1").await;
    let mut ws = ws_connect(
        server.addr,
        &format!("/engine.io/?EIO=3&transport=websocket&sid={sid}"),
    )
    .await;
    ws_send_text(&mut ws, "2probe").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3probe");
    ws_send_text(&mut ws, "5").await;
    ws_send_text(&mut ws, "b4AQI=").await;
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::Binary(vec![4u8, 1, 2].into()))
    );
}

#[tokio::test]
async fn v3_upgrade_releases_the_poll_with_a_noop() {
    let server = Server::start(v3(EngineConfig::default())).await;
    let sid = v3_open(&server, "").await;
    let pending = support::start_request(server.addr, "GET", &poll_target(&sid, "")).await;
    let mut ws = ws_connect(
        server.addr,
        &format!("/engine.io/?EIO=3&transport=websocket&sid={sid}"),
    )
    .await;
    ws_send_text(&mut ws, "2probe").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3probe");
    let released = support::finish_request(pending, "GET").await;
    assert_eq!(released.text(), "1:6");
    ws_send_text(&mut ws, "5").await;
    ws_send_text(&mut ws, "4after").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4after");
    ws_send_text(&mut ws, "2").await;
    assert_eq!(ws_recv_text(&mut ws).await, "3");
}

/// A well-behaved v3 polling client and a v4 WebSocket client.
struct Bystanders {
    v3: String,
    v4: Ws,
}

impl Bystanders {
    async fn connect(server: &Server) -> Bystanders {
        let v3 = v3_open(server, "").await;
        let (v4, _, _) = server.ws_open().await;
        Bystanders { v3, v4 }
    }

    async fn assert_served(&mut self, server: &Server, tag: &str) {
        let text = format!("4v3-{tag}");
        let body = format!("{}{}", item("2"), item(&text));
        let res = v3_post(server, &self.v3, body.as_bytes(), false).await;
        assert_eq!(res.status, 200, "bystander v3: {}", res.text());
        let mut got = Vec::new();
        while got.len() < 2 {
            let res = v3_poll(server, &self.v3, "").await;
            assert_eq!(res.status, 200);
            got.extend(parse_text(&res.text()));
        }
        assert_eq!(got, ["3".to_owned(), text]);
        let text = format!("4v4-{tag}");
        ws_send_text(&mut self.v4, &text).await;
        assert_eq!(support::ws_recv_text_skip_ping(&mut self.v4).await, text);
    }
}

#[tokio::test]
async fn hostile_v3_payloads_close_only_their_own_session() {
    let server = Server::start(v3(EngineConfig::default())).await;
    let mut others = Bystanders::connect(&server).await;
    let text: &[(&str, &[u8])] = &[
        ("a length longer than the data", b"9:4hi"),
        ("a length shorter than the packet", b"2:4hello"),
        ("a length inside a surrogate pair", "2:4😀".as_bytes()),
        ("a non-digit length", b"1a:4hi"),
        ("an empty length", b":4hi"),
        ("no length at all", b"4hello"),
        ("twenty digits", b"99999999999999999999:4"),
        ("a huge length within the digit bound", b"9999999999:4"),
        ("invalid UTF-8", b"2:4\xff"),
        ("bad base64", b"3:b4!"),
        ("a binary packet that is no message", b"2:b2"),
        ("an unknown packet type", b"1:9"),
    ];
    let binary: &[(&str, &[u8])] = &[
        ("an XHR2 length that lies", b"\x00\x05\xff4hi"),
        ("an XHR2 length byte over 9", b"\x00\x0a\xff4hi"),
        ("an XHR2 header without terminator", b"\x00\x01\x02"),
        ("an XHR2 header without digits", b"\x00\xff4"),
        (
            "an XHR2 length of twelve digits",
            b"\x00\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\xff4",
        ),
        ("an XHR2 item kind other than 0 and 1", b"\x02\x01\xff4"),
        (
            "an XHR2 binary item that is no message",
            b"\x01\x02\xff\x07\x00",
        ),
        ("an XHR2 binary item without type byte", b"\x01\x00\xff"),
        ("an XHR2 string that is not UTF-8", b"\x00\x02\xff4\xc3"),
    ];
    let cases = text
        .iter()
        .map(|(w, b)| (w, b, false))
        .chain(binary.iter().map(|(w, b)| (w, b, true)));
    for (i, (what, body, is_binary)) in cases.enumerate() {
        let sid = v3_open(&server, "").await;
        let res = v3_post(&server, &sid, body, is_binary).await;
        assert_eq!(res.status, 400, "{what}: {}", res.text());
        let closed = server.wait_closed(&sid).await;
        assert_eq!(closed.reason, CloseReason::ParseError, "{what}");
        v3_poll(&server, &sid, "")
            .await
            .assert_error(400, 1, "Session ID unknown");
        others.assert_served(&server, &i.to_string()).await;
    }
}

#[tokio::test]
async fn a_v4_session_still_refuses_binary_posts_with_the_switch_on() {
    let server = Server::start(v3(EngineConfig::default())).await;
    let (sid, _) = server.polling_open().await;
    let res = request(
        server.addr,
        "POST",
        &server.url(&format!("transport=polling&sid={sid}")),
        &[("Content-Type", "application/octet-stream")],
        b"\x00\x02\xff4a",
    )
    .await;
    res.assert_error(400, 3, "Bad request");
    within("v4 close", server.wait_closed(&sid)).await;
}

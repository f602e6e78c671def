//! WebSocket sessions opened directly (no polling first).

mod support;

use bytes::Bytes;
use engineio::{CloseReason, EngineConfig};
use futures_util::SinkExt;
use support::{
    Server, ws_expect_closed, ws_next, ws_recv_text, ws_send_binary, ws_send_raw_text, ws_send_text,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn server() -> Server {
    Server::start(EngineConfig::default().max_payload(1000)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_frame_then_text_and_binary_echo() {
    let server = server().await;
    let (mut ws, sid, json) = server.ws_open().await;
    assert_eq!(json["upgrades"], serde_json::json!([]));
    assert_eq!(json["maxPayload"], 1000);
    let socket = server.engine.socket(&sid).unwrap();
    assert_eq!(socket.transport(), engineio::Transport::WebSocket);

    ws_send_text(&mut ws, "4hello").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4hello");
    ws_send_text(&mut ws, "4héllo €").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4héllo €");
    ws_send_binary(&mut ws, &[1, 2, 3, 4]).await;
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(b)) => assert_eq!(&b[..], [1, 2, 3, 4]),
        other => panic!("expected a binary frame, got {other:?}"),
    }
    // Base64 binary in a text frame (a client with `forceBase64`) is binary.
    ws_send_text(&mut ws, "bAQIDBA==").await;
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(b)) => assert_eq!(&b[..], [1, 2, 3, 4]),
        other => panic!("expected a binary frame, got {other:?}"),
    }
    // An empty binary message is still a message.
    ws_send_binary(&mut ws, &[]).await;
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(b)) => assert!(b.is_empty()),
        other => panic!("expected a binary frame, got {other:?}"),
    }
    // Exactly max_payload bytes is accepted.
    let big = format!("4{}", "x".repeat(999));
    ws_send_text(&mut ws, &big).await;
    assert_eq!(ws_recv_text(&mut ws).await, big);
    assert!(server.closed_now(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_messages_use_the_right_frame_types() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    socket.send_text("t").unwrap();
    socket.send_binary(Bytes::from_static(b"\x00\xff")).unwrap();
    assert_eq!(ws_recv_text(&mut ws).await, "4t");
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(b)) => assert_eq!(&b[..], b"\x00\xff"),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_packet_closes() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws_send_text(&mut ws, "abc").await;
    ws_expect_closed(&mut ws).await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::ParseError
    );
    assert!(server.engine.socket(&sid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_text_frame_closes() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws_send_text(&mut ws, "").await;
    ws_expect_closed(&mut ws).await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::ParseError
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_frame_closes() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws_send_raw_text(&mut ws, b"4\xff\xfe").await;
    ws_expect_closed(&mut ws).await;
    // The WebSocket layer rejects the frame before any packet decoding.
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportError
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_packet_closes() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws_send_text(&mut ws, "1").await;
    ws_expect_closed(&mut ws).await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportClose
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_frame_closes() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    support::within("close", ws.close(None)).await.unwrap();
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportClose
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ping_is_a_protocol_error() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws_send_text(&mut ws, "2").await;
    ws_expect_closed(&mut ws).await;
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportError
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_delivers_queue_then_closes() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws_send_text(&mut ws, "4before").await;
    ws_send_text(&mut ws, "4server-close").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4before");
    let frame = ws_expect_closed(&mut ws).await;
    if let Some(frame) = frame {
        assert_eq!(frame.code, CloseCode::Normal);
    }
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::ForcedClose
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_max_payload_closes_with_1009() {
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    let too_big = format!("4{}", "x".repeat(1000));
    ws_send_text(&mut ws, &too_big).await;
    let frame = ws_expect_closed(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    assert_eq!(u16::from(frame.code), 1009);
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportError
    );

    // Same for a binary message.
    let (mut ws, _, _) = server.ws_open().await;
    ws.send(WsMessage::Binary(Bytes::from(vec![0u8; 1001])))
        .await
        .unwrap();
    let frame = ws_expect_closed(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
}

/// Every length encoding (7-bit, 16-bit, 64-bit) and a batch of many frames
/// arrive intact, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_every_length_class_arrive_intact() {
    // Room for the 2 000 messages below however slowly the writer drains them.
    let config = EngineConfig::default()
        .max_payload(1_000_000)
        .high_water_mark(64 << 20)
        .max_buffered_bytes(64 << 20);
    let server = Server::start(config).await;
    let (mut ws, sid, _) = server.ws_open().await;
    let socket = server.engine.socket(&sid).unwrap();
    let sizes = [
        0usize, 1, 124, 125, 126, 127, 65_534, 65_535, 65_536, 200_000,
    ];
    for (i, n) in sizes.iter().enumerate() {
        let text: String = std::iter::repeat_n(char::from(b'a' + i as u8), *n).collect();
        socket.send_text(text.as_str()).unwrap();
        socket.send_binary(Bytes::from(vec![i as u8; *n])).unwrap();
    }
    for (i, n) in sizes.iter().enumerate() {
        let t = ws_recv_text(&mut ws).await;
        assert_eq!(t.len(), n + 1, "text of {n}");
        assert!(t[1..].bytes().all(|b| b == b'a' + i as u8));
        match ws_next(&mut ws).await {
            Some(WsMessage::Binary(b)) => {
                assert_eq!(b.len(), *n, "binary of {n}");
                assert!(b.iter().all(|x| *x == i as u8));
            }
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
    // 2 000 small messages queued at once come out in order.
    for i in 0..2000 {
        socket.send_text(i.to_string().as_str()).unwrap();
    }
    for i in 0..2000 {
        assert_eq!(ws_recv_text(&mut ws).await, format!("4{i}"));
    }
}

/// A WebSocket-level ping gets its pong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_gets_a_pong() {
    use futures_util::StreamExt;
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws.send(WsMessage::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    let pong = support::within("pong", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Pong(p))) => return p,
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(&pong[..], b"are you there");
    // The session is unaffected.
    ws_send_text(&mut ws, "4still").await;
    assert_eq!(ws_recv_text(&mut ws).await, "4still");
    assert!(server.closed_now(&sid).is_none());
}

/// A client's close frame is answered with a close frame carrying its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_frame_is_echoed() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let server = server().await;
    let (mut ws, sid, _) = server.ws_open().await;
    ws.send(WsMessage::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let frame = ws_expect_closed(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(
        server.wait_closed(&sid).await.reason,
        CloseReason::TransportClose
    );
}

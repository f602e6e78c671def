//! Socket.IO v2 clients (Engine.IO v3, `allow_eio3`) speaking the Socket.IO v4
//! protocol over a raw WebSocket: `/` joined without a CONNECT (a plain `40`),
//! the namespace query as auth, engine-sid ids and the `<nsp>#<sid>` room,
//! refusals in the v3 shapes, the client-driven heartbeat; and a v4 client on
//! the same server unaffected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use socketio::{ConnectError, Socket};
use support::{Server, within};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Ws = WebSocketStream<TcpStream>;

fn v3_config() -> socketio::SocketIoConfig {
    support::config().engine(
        engineio::EngineConfig::default()
            .path("/socket.io/")
            .allow_eio3(true),
    )
}

async fn v3_client(server: &Server) -> (Ws, String) {
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let url = format!("ws://{}/socket.io/?EIO=3&transport=websocket", server.addr);
    let (mut ws, _) = within("v3 websocket", tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap();
    let open = recv(&mut ws).await;
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    (ws, open["sid"].as_str().unwrap().to_owned())
}

async fn recv(ws: &mut Ws) -> String {
    within("a text frame", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    })
    .await
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::text(text)).await.unwrap();
}

/// `[id, auth, sorted rooms, EIO revision]` of a socket.
fn describe(socket: &Socket) -> Value {
    let mut rooms = socket.rooms();
    rooms.sort();
    json!([
        socket.id().as_str(),
        socket.handshake().auth,
        rooms,
        socket.handshake().protocol.number()
    ])
}

async fn server() -> Server {
    Server::start(v3_config(), |io, _| {
        io.of("/custom").on_connection(|socket: Socket| async move {
            let _ = socket.emit("hello", &describe(&socket));
        });
        let mw = io.of("/mw");
        mw.use_middleware(|socket: Socket| async move {
            match socket.handshake().auth.get("with") {
                Some(Value::String(_)) => {
                    Err(ConnectError::new("Not authorized").with_data(json!({"code": 7})))
                }
                _ => Err(ConnectError::new("Not authorized")),
            }
        });
    })
    .await
}

#[tokio::test]
async fn a_v2_client_joins_root_implicitly_and_namespaces_with_its_query() {
    let server = server().await;
    let (mut ws, sid) = v3_client(&server).await;
    // `/` is joined by the handshake: a plain `40`, no sid, no CONNECT sent.
    assert_eq!(recv(&mut ws).await, "40");
    let root = within("the / socket", async {
        loop {
            if let Some(s) = server
                .io
                .of("/")
                .get_socket(&socketio::SocketId::parse(&sid).unwrap())
            {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        describe(&root),
        json!([sid, {}, [sid], 3]),
        "id = engine sid, auth {{}}"
    );
    // A custom namespace: its query is the auth, its reply a plain `40/custom,`.
    send(&mut ws, "40/custom?token=abc&n=1,").await;
    assert_eq!(recv(&mut ws).await, "40/custom,");
    let hello: Value =
        serde_json::from_str(recv(&mut ws).await.strip_prefix("42/custom,").unwrap()).unwrap();
    let mut rooms = vec![sid.clone(), format!("/custom#{sid}")];
    rooms.sort();
    assert_eq!(
        hello,
        json!(["hello", [sid, {"token": "abc", "n": "1"}, rooms, 3]])
    );
    // The room of the id the v2 client computes (`/custom#<sid>`) reaches it.
    server
        .io
        .of("/custom")
        .to(format!("/custom#{sid}"))
        .emit("direct", &1)
        .unwrap();
    assert_eq!(recv(&mut ws).await, r#"42/custom,["direct",1]"#);
    // Neither a socket's own room nor its `<nsp>#<sid>` one counts as a room.
    assert_eq!(server.io.stats().rooms, 0);
    // Refusals: ERROR with the error's data, or its message as a JSON string.
    send(&mut ws, "40/mw?with=data,").await;
    assert_eq!(recv(&mut ws).await, r#"44/mw,{"code":7}"#);
    send(&mut ws, "40/mw,").await;
    assert_eq!(recv(&mut ws).await, r#"44/mw,"Not authorized""#);
    send(&mut ws, "40/nope,").await;
    assert_eq!(
        recv(&mut ws).await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
    // The client pings; the server answers.
    send(&mut ws, "2").await;
    assert_eq!(recv(&mut ws).await, "3");
    // Leaving `/custom` works as for v4.
    send(&mut ws, "41/custom,").await;
    within("the /custom socket gone", async {
        while !server.io.of("/custom").sockets().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(server.io.of("/").sockets().len(), 1);
}

#[tokio::test]
async fn v4_clients_are_unaffected_by_the_switch() {
    let server = server().await;
    let (mut c, id) = server.joined("/").await;
    assert_ne!(id, c.sid, "a v4 socket id is not the engine sid");
    assert_eq!(
        server.socket("/", &id).handshake().protocol,
        engineio::Protocol::V4
    );
    c.send("40/mw,{}").await;
    c.expect(r#"44/mw,{"message":"Not authorized"}"#).await;
}

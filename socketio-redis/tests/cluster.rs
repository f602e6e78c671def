//! Two Rust nodes on a real `redis-server` (started by the test on a free
//! port): broadcasts, requests and server-side events cross; a Redis outage
//! degrades to local delivery and heals; a silent node makes requests time
//! out cleanly.
//!
//! Needs `redis-server` on the PATH (the README's test command installs it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use socketio::{Args, ServerAck, Socket, SocketIo, SocketIoConfig};
use socketio_redis::{RedisAdapter, RedisAdapterConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

// ----- redis-server --------------------------------------------------------

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: install Debian's redis-server (./test.sh does)");
        let redis = Redis { child, port };
        within("redis-server to accept connections", async {
            loop {
                if let Ok(client) = redis::Client::open(redis.url()) {
                    if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                        let pong: redis::RedisResult<String> =
                            redis::cmd("PING").query_async(&mut c).await;
                        if pong.is_ok() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        redis
    }

    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port).await
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ----- a node ----------------------------------------------------------------

struct Node {
    io: SocketIo,
    redis: RedisAdapter,
    addr: SocketAddr,
}

/// A node whose sockets join the rooms listed in their CONNECT auth `rooms`,
/// and whose server-side `whoami` handler answers with `name`.
async fn node(url: &str, name: &'static str, config: RedisAdapterConfig) -> Node {
    node_with(url, name, config, socketio::Parser::Json).await
}

/// [`node`] with a packet parser.
async fn node_with(
    url: &str,
    name: &'static str,
    config: RedisAdapterConfig,
    parser: socketio::Parser,
) -> Node {
    let redis = RedisAdapter::connect(url, config).await.unwrap();
    let io = SocketIo::builder(SocketIoConfig::default().parser(parser))
        .adapter(redis.factory())
        .build()
        .unwrap();
    io.on_connection(|socket: Socket| async move {
        if let Some(Value::Array(rooms)) = socket.handshake().auth.get("rooms") {
            for r in rooms.iter().filter_map(Value::as_str) {
                socket.join(r);
            }
        }
    });
    io.on_server_event("whoami", move |args: Args, ack: ServerAck| async move {
        let asked: Value = args.get(0).unwrap_or_default();
        let _ = ack.send(&json!({ "node": name, "asked": asked }));
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener, std::future::pending()).await });
    within("subscriptions", redis.ready()).await;
    Node { io, redis, addr }
}

// ----- a raw Socket.IO client over WebSocket ---------------------------------

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    id: String,
}

impl Client {
    async fn connect(node: &Node, auth: Value) -> Client {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", node.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let open = ws.next().await.unwrap().unwrap();
        assert!(open.to_text().unwrap().starts_with('0'));
        ws.send(WsMessage::text(format!("40{auth}"))).await.unwrap();
        let mut c = Client {
            ws,
            id: String::new(),
        };
        let ok = c.next_text().await;
        let v: Value = serde_json::from_str(ok.strip_prefix('0').unwrap()).unwrap();
        c.id = v["sid"].as_str().unwrap().to_owned();
        c
    }

    /// The next Socket.IO text packet (pings answered, `ask` events acked
    /// with `{"from": <id>}`).
    async fn next_text(&mut self) -> String {
        loop {
            let msg = within("a packet", self.ws.next()).await.unwrap().unwrap();
            let WsMessage::Text(t) = msg else { continue };
            let t = t.to_string();
            if t == "2" {
                self.ws.send(WsMessage::text("3")).await.unwrap();
                continue;
            }
            let Some(p) = t.strip_prefix('4') else {
                continue;
            };
            if let Some(rest) = p.strip_prefix('2') {
                // An event with an ack id: `42<id>["ask", ...]`.
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if !digits.is_empty() && rest[digits.len()..].starts_with("[\"ask\"") {
                    let ack = format!("43{digits}[{{\"from\":\"{}\"}}]", self.id);
                    self.ws.send(WsMessage::text(ack)).await.unwrap();
                    continue;
                }
            }
            return p.to_owned();
        }
    }

    /// Waits for event `name` and returns its arguments.
    async fn event(&mut self, name: &str) -> Vec<Value> {
        loop {
            let p = self.next_text().await;
            if let Some(json) = p.strip_prefix('2') {
                let v: Vec<Value> = serde_json::from_str(json).unwrap();
                if v[0] == name {
                    return v[1..].to_vec();
                }
            }
        }
    }

    /// Asserts that no event arrives for a while.
    async fn quiet(&mut self) {
        if let Ok(p) = tokio::time::timeout(QUIET, self.next_text()).await {
            panic!("unexpected packet {p}");
        }
    }
}

fn ids(list: &[socketio::RemoteSocket]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.id().to_string()).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_requests_and_server_events_cross_nodes() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", RedisAdapterConfig::default()).await;
    let b = node(&redis.url(), "B", RedisAdapterConfig::default()).await;
    assert_ne!(a.redis.uid(), b.redis.uid());
    let mut ca = Client::connect(&a, json!({"rooms": ["lobby"]})).await;
    let mut cb = Client::connect(&b, json!({"rooms": ["lobby", "r"]})).await;

    assert_eq!(a.io.of("/").server_count().await.unwrap(), 2);

    // Room broadcast from A reaches B's member only.
    a.io.to("r").emit("news", &1).unwrap();
    assert_eq!(cb.event("news").await, [json!(1)]);
    ca.quiet().await;

    // Whole namespace, except a room.
    b.io.except("r").emit("news", &2).unwrap();
    assert_eq!(ca.event("news").await, [json!(2)]);
    cb.quiet().await;

    // Binary crosses as binary (a BINARY_EVENT with one attachment).
    a.io.to("r")
        .emit("bin", &bytes::Bytes::from_static(&[1, 2, 3]))
        .unwrap();
    let header = cb.next_text().await;
    assert_eq!(header, "51-[\"bin\",{\"_placeholder\":true,\"num\":0}]");
    let att = within("attachment", cb.ws.next()).await.unwrap().unwrap();
    assert_eq!(att.into_data().as_ref(), &[1, 2, 3]);

    // local() stays on its node.
    a.io.local().emit("news", &3).unwrap();
    assert_eq!(ca.event("news").await, [json!(3)]);
    cb.quiet().await;

    // fetch_sockets is cluster-wide, with remote handshakes.
    let all = a.io.fetch_sockets().await.unwrap();
    assert_eq!(ids(&all), sorted(vec![ca.id.clone(), cb.id.clone()]));
    let remote = all.iter().find(|s| s.id().to_string() == cb.id).unwrap();
    assert!(remote.as_local().is_none());
    assert_eq!(remote.handshake()["auth"], json!({"rooms": ["lobby", "r"]}));
    assert_eq!(
        sorted(remote.rooms().to_vec()),
        sorted(vec![cb.id.clone(), "lobby".into(), "r".into()])
    );
    assert_eq!(
        ids(&a.io.local().fetch_sockets().await.unwrap()),
        [ca.id.clone()]
    );

    // sockets_join on another node, then that room works from anywhere.
    a.io.to(cb.id.as_str()).sockets_join("joined");
    within("remote join", async {
        while !b
            .io
            .of("/")
            .adapter()
            .rooms()
            .contains(&"joined".to_owned())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let rooms = a.io.of("/").all_rooms().await.unwrap();
    assert!(
        rooms.contains(&"joined".to_owned()) && rooms.contains(&ca.id),
        "{rooms:?}"
    );
    a.io.to("joined").emit("news", &4).unwrap();
    assert_eq!(cb.event("news").await, [json!(4)]);

    // A remote socket handle acts where the socket is.
    remote.emit("direct", &5).unwrap();
    assert_eq!(cb.event("direct").await, [json!(5)]);

    // Server-side events, with and without answers.
    let answers: Vec<Value> =
        a.io.of("/")
            .server_side_emit_with_ack("whoami", &"?")
            .await
            .unwrap();
    assert_eq!(answers, [json!({"node": "B", "asked": "?"})]);

    // Broadcast with acks aggregates both nodes' clients.
    let io = a.io.clone();
    let asking = tokio::spawn(async move {
        io.timeout(Duration::from_secs(5))
            .emit_args_with_ack("ask", Args::one(&0).unwrap())
            .await
    });
    // Both clients read (and answer the ask) for a while.
    let _ = tokio::time::timeout(QUIET, ca.next_text()).await;
    let _ = tokio::time::timeout(QUIET, cb.next_text()).await;
    let acks = within("the acks", asking).await.unwrap();
    assert!(acks.is_complete(), "{acks:?}");
    let mut from: Vec<String> = acks
        .all()
        .map(|a| {
            a.get::<Value>(0).unwrap()["from"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    from.sort();
    assert_eq!(from, sorted(vec![ca.id.clone(), cb.id.clone()]));

    // Remote disconnect: the client gets a DISCONNECT for its namespace.
    a.io.to(cb.id.as_str()).disconnect_sockets(false).await;
    loop {
        if cb.next_text().await == "1" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_degrades_to_local_then_heals() {
    let mut redis = Redis::start().await;
    let port = redis.port;
    let config = RedisAdapterConfig::default()
        .requests_timeout(Duration::from_millis(500))
        .max_reconnect_delay(Duration::from_millis(200));
    let a = node(&redis.url(), "A", config.clone()).await;
    let b = node(&redis.url(), "B", config).await;
    let mut ca = Client::connect(&a, json!({})).await;
    let mut cb = Client::connect(&b, json!({})).await;
    a.io.emit("news", &"up").unwrap();
    assert_eq!(cb.event("news").await, [json!("up")]);
    assert_eq!(ca.event("news").await, [json!("up")]);

    redis.kill();
    // Local delivery goes on; requests fail cleanly.
    a.io.emit("news", &"down").unwrap();
    assert_eq!(ca.event("news").await, [json!("down")]);
    let r = within("a failing request", a.io.fetch_sockets()).await;
    assert!(r.is_err(), "fetch_sockets with Redis down: {r:?}");

    // Redis comes back on the same port: both nodes reconnect by themselves.
    let _redis = Redis::start_on(port).await;
    within("the cluster to heal", async {
        loop {
            a.io.emit("news", &"healed").unwrap();
            if let Ok(args) =
                tokio::time::timeout(Duration::from_millis(200), cb.event("news")).await
            {
                if args == [json!("healed")] {
                    return;
                }
            }
        }
    })
    .await;
    within("server count", async {
        while a.io.of("/").server_count().await.ok() != Some(2) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_makes_requests_time_out() {
    let redis = Redis::start().await;
    let config = RedisAdapterConfig::default().requests_timeout(Duration::from_millis(300));
    let a = node(&redis.url(), "A", config).await;
    // A "node" that subscribes to the request channel but never answers.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut silent = client.get_async_pubsub().await.unwrap();
    silent.subscribe("socket.io-request#/#").await.unwrap();
    assert_eq!(a.io.of("/").server_count().await.unwrap(), 2);

    let started = std::time::Instant::now();
    let err = a.io.fetch_sockets().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout reached while waiting for fetchSockets response"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let err = a.io.of("/").all_rooms().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout reached while waiting for allRooms response"
    );
    let err =
        a.io.of("/")
            .server_side_emit_with_ack::<_, Value>("whoami", &1)
            .await
            .unwrap_err();
    assert_eq!(err, socketio::AckError::Timeout);
    // The node itself is fine.
    let mut c = Client::connect(&a, json!({})).await;
    a.io.emit("news", &1).unwrap();
    assert_eq!(c.event("news").await, [json!(1)]);
}

/// Requests Node 8.x nodes no longer send but a node still answers: SOCKETS (0)
/// and the legacy one-socket join / disconnect forms, published by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_sockets_and_legacy_requests() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", RedisAdapterConfig::default()).await;
    let mut c = Client::connect(&a, json!({"rooms": ["r"]})).await;

    let client = redis::Client::open(redis.url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe("socket.io-response#/#").await.unwrap();
    let mut publ = client.get_multiplexed_async_connection().await.unwrap();
    let mut responses = sub.into_on_message();
    let mut ask = async |body: Value| -> Value {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("socket.io-request#/#")
            .arg(body.to_string())
            .query_async(&mut publ)
            .await
            .unwrap();
        let msg = within("a response", responses.next()).await.unwrap();
        serde_json::from_slice(msg.get_payload_bytes()).unwrap()
    };

    let r = ask(json!({"uid": "other", "requestId": "R1", "type": 0, "rooms": ["r"]})).await;
    assert_eq!(r, json!({"requestId": "R1", "sockets": [c.id]}));

    let r =
        ask(json!({"uid": "other", "type": 2, "sid": c.id, "room": "x", "requestId": "R2"})).await;
    assert_eq!(r, json!({"requestId": "R2"}));
    assert!(a.io.of("/").adapter().rooms().contains(&"x".to_owned()));

    let r = ask(json!({"uid": "other", "type": 4, "sid": c.id, "close": false, "requestId": "R3"}))
        .await;
    assert_eq!(r, json!({"requestId": "R3"}));
    loop {
        if c.next_text().await == "1" {
            break;
        }
    }
}

/// A raw msgpack-parser client: CONNECT with auth, then binary packets.
async fn msgpack_client(node: &Node, auth: Value) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", node.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'));
    let connect = socketio::msgpack::encode(&json!({"type": 0, "nsp": "/", "data": auth}), &[]);
    ws.send(WsMessage::binary(connect.unwrap())).await.unwrap();
    let reply = msgpack_next(&mut ws).await;
    assert_eq!(reply.packet.kind, socketio::packet::PacketType::Connect);
    ws
}

async fn msgpack_next(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> socketio::packet::BinaryPacket {
    loop {
        match within("a packet", ws.next()).await.unwrap().unwrap() {
            WsMessage::Binary(b) => {
                return socketio::packet::decode_msgpack(&b, &Default::default()).unwrap();
            }
            WsMessage::Text(t) if t.as_str() == "2" => {
                ws.send(WsMessage::text("3")).await.unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_nodes_broadcast_binary_across_redis_and_to_json_nodes() {
    let redis = Redis::start().await;
    let mp = socketio::Parser::Msgpack;
    let a = node_with(&redis.url(), "A", RedisAdapterConfig::default(), mp).await;
    let b = node_with(&redis.url(), "B", RedisAdapterConfig::default(), mp).await;
    let c = node(&redis.url(), "C", RedisAdapterConfig::default()).await;
    let mut wb = msgpack_client(&b, json!({"rooms": ["r"]})).await;
    let mut cc = Client::connect(&c, json!({"rooms": ["r"]})).await;

    // From a msgpack node, with binary and undefined: a msgpack node's client gets one
    // binary message (bin inline, undefined kept); a JSON node's client a BINARY_EVENT.
    let args = Args::from_parts(
        vec![
            json!({"f": {"_placeholder": true, "num": 0}}),
            socketio::msgpack::undefined(),
        ],
        vec![bytes::Bytes::from_static(&[1, 2, 3])],
    );
    a.io.to("r").emit_args("bin", args).unwrap();
    let got = msgpack_next(&mut wb).await;
    assert_eq!(
        got.packet.data,
        Some(
            json!(["bin", {"f": {"_placeholder": true, "num": 0}}, socketio::msgpack::undefined()])
        )
    );
    assert_eq!(got.attachments, [bytes::Bytes::from_static(&[1, 2, 3])]);
    let header = cc.next_text().await;
    assert_eq!(
        header,
        "51-[\"bin\",{\"f\":{\"_placeholder\":true,\"num\":0}},null]"
    );
    let att = within("attachment", cc.ws.next()).await.unwrap().unwrap();
    assert_eq!(att.into_data().as_ref(), &[1, 2, 3]);

    // From the JSON node to the msgpack node's client.
    c.io.to("r").emit("news", &json!({"n": 1})).unwrap();
    let got = msgpack_next(&mut wb).await;
    assert_eq!(got.packet.data, Some(json!(["news", {"n": 1}])));
}

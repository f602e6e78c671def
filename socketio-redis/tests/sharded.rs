//! The sharded adapter between two Rust nodes on a real `redis-server`
//! (Redis 7 sharded pub/sub, started by the test on a free port): room
//! channels follow membership, `static` mode works without them, and a Redis
//! restart heals every subscription (the adapter's own RESP subscriber
//! reconnects and subscribes the namespace, response and room channels again).
//!
//! Needs `redis-server` ≥ 7 on the PATH (the README's test command installs it).

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
use socketio_redis::{ShardedAdapterConfig, ShardedRedisAdapter, SubscriptionMode};
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
    redis: ShardedRedisAdapter,
    addr: SocketAddr,
}

/// A node whose sockets join the rooms listed in their CONNECT auth `rooms`,
/// and whose server-side `whoami` handler answers with `name`.
async fn node(url: &str, name: &'static str, config: ShardedAdapterConfig) -> Node {
    node_with(url, name, config, socketio::Parser::Json).await
}

/// [`node`] with a packet parser.
async fn node_with(
    url: &str,
    name: &'static str,
    config: ShardedAdapterConfig,
    parser: socketio::Parser,
) -> Node {
    let redis = ShardedRedisAdapter::connect(url, config).await.unwrap();
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

async fn until_subscribed(node: &Node, channel: &str, on: bool) {
    within(&format!("{channel} subscribed = {on}"), async {
        while node.redis.is_subscribed(channel) != on {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_channels_follow_membership() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", ShardedAdapterConfig::default()).await;
    let b = node(&redis.url(), "B", ShardedAdapterConfig::default()).await;
    let mut cb = Client::connect(&b, json!({"rooms": ["red"]})).await;
    let mut ca = Client::connect(&a, json!({})).await;
    // B subscribes red's channel, not its socket's own id room; A neither.
    until_subscribed(&b, "socket.io#/#red#", true).await;
    assert!(!b.redis.is_subscribed(&format!("socket.io#/#{}#", cb.id)));
    assert!(!a.redis.is_subscribed("socket.io#/#red#"));
    // A broadcast to red from A travels on red's channel and reaches B's member only.
    a.io.to("red").emit("news", &"to red").unwrap();
    assert_eq!(cb.event("news").await, [json!("to red")]);
    ca.quiet().await;
    // A socket of B's joins and leaves a room: subscribed, then dropped.
    let sb =
        b.io.of("/")
            .get_socket(&socketio::SocketId::parse(&cb.id).unwrap())
            .unwrap();
    sb.join("blue");
    until_subscribed(&b, "socket.io#/#blue#", true).await;
    sb.leave("blue");
    until_subscribed(&b, "socket.io#/#blue#", false).await;
    // The namespace's count is Redis's SHARDNUMSUB.
    assert_eq!(a.io.of("/").server_count().await.unwrap(), 2);
    // Fetch and server-side emits with acks cross.
    let list = within("fetch", a.io.to("red").fetch_sockets())
        .await
        .unwrap();
    assert_eq!(
        list.iter().map(|s| s.id().to_string()).collect::<Vec<_>>(),
        [cb.id.clone()]
    );
    let answers: Vec<Value> = within("sse", a.io.of("/").server_side_emit_with_ack("whoami", &1))
        .await
        .unwrap();
    assert_eq!(answers, [json!({"node": "B", "asked": 1})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_mode_broadcasts_rooms_on_the_namespace_channel() {
    let redis = Redis::start().await;
    let config = ShardedAdapterConfig::default().subscription_mode(SubscriptionMode::Static);
    let a = node(&redis.url(), "A", config.clone()).await;
    let b = node(&redis.url(), "B", config).await;
    let mut cb = Client::connect(&b, json!({"rooms": ["red"]})).await;
    let mut cb2 = Client::connect(&b, json!({})).await;
    a.io.to("red").emit("news", &"static").unwrap();
    assert_eq!(cb.event("news").await, [json!("static")]);
    cb2.quiet().await;
    assert!(!b.redis.is_subscribed("socket.io#/#red#"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_heals_every_subscription() {
    let mut redis = Redis::start().await;
    let port = redis.port;
    let config = ShardedAdapterConfig::default()
        .requests_timeout(Duration::from_millis(500))
        .max_reconnect_delay(Duration::from_millis(200));
    let a = node(&redis.url(), "A", config.clone()).await;
    let b = node(&redis.url(), "B", config).await;
    let mut ca = Client::connect(&a, json!({})).await;
    let mut cb = Client::connect(&b, json!({"rooms": ["red"]})).await;
    until_subscribed(&b, "socket.io#/#red#", true).await;
    a.io.to("red").emit("news", &"up").unwrap();
    assert_eq!(cb.event("news").await, [json!("up")]);

    redis.kill();
    // Local delivery goes on; requests fail cleanly.
    a.io.emit("news", &"down").unwrap();
    assert_eq!(ca.event("news").await, [json!("down")]);
    let r = within("a failing request", a.io.fetch_sockets()).await;
    assert!(r.is_err(), "fetch_sockets with Redis down: {r:?}");

    // Redis comes back on the same port (empty): both nodes subscribe again,
    // the room channel included.
    let _redis = Redis::start_on(port).await;
    until_subscribed(&b, "socket.io#/#red#", true).await;
    within("the room channel to heal", async {
        loop {
            a.io.to("red").emit("news", &"healed").unwrap();
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
    // B's publishing connection comes back too (the first publish after the
    // outage may be the one that finds the connection gone).
    within("B's broadcasts to heal", async {
        loop {
            b.io.emit("news", &"from b").unwrap();
            if let Ok(args) =
                tokio::time::timeout(Duration::from_millis(200), ca.event("news")).await
            {
                if args == [json!("from b")] {
                    return;
                }
            }
        }
    })
    .await;
}

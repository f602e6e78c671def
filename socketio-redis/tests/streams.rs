//! The Redis Streams adapter on a real `redis-server` (started by the test on
//! a free port), Rust nodes only (the mixed Rust + Node cluster is
//! conformance/test/cluster-streams*.test.js): broadcasts and requests cross;
//! with connection state recovery, a connected socket's session record is in
//! Redis before its node can die and stays there while it is connected, and
//! another node restores it with every missed event exactly once, in order,
//! even while events keep coming; repeated recoveries advance the offset.
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
use socketio::{Args, RecoveryConfig, ServerAck, Socket, SocketIo, SocketIoConfig};
use socketio_redis::{RedisStreamsAdapter, RedisStreamsConfig};
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

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: install Debian's redis-server");
        let redis = Redis { child, port };
        within("redis-server", async {
            loop {
                if let Ok(mut c) = redis.conn().await {
                    let pong: redis::RedisResult<String> =
                        redis::cmd("PING").query_async(&mut c).await;
                    if pong.is_ok() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn conn(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Node {
    io: SocketIo,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

/// A node whose sockets join the rooms of their CONNECT auth `rooms` and take
/// its `data` as their data (not on recovery: the session has them).
async fn node(url: &str, name: &'static str, recovery: Option<RecoveryConfig>) -> Node {
    let config = RedisStreamsConfig::default().session_refresh_interval(Duration::from_millis(300));
    let redis = RedisStreamsAdapter::connect(url, config).await.unwrap();
    let mut sio = SocketIoConfig::default();
    if let Some(r) = recovery {
        sio = sio.connection_state_recovery(r);
    }
    let io = SocketIo::builder(sio)
        .adapter(redis.factory())
        .build()
        .unwrap();
    io.on_connection(|socket: Socket| async move {
        if socket.recovered() {
            return;
        }
        if let Some(Value::Array(rooms)) = socket.handshake().auth.get("rooms") {
            for r in rooms.iter().filter_map(Value::as_str) {
                socket.join(r);
            }
        }
        if let Some(data) = socket.handshake().auth.get("data") {
            socket.set_data(data).unwrap();
        }
    });
    io.on_server_event("whoami", move |_: Args, ack: ServerAck| async move {
        let _ = ack.send(&json!({ "node": name }));
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    let server = tokio::spawn(async move {
        let _ = io2.serve(listener, std::future::pending()).await;
    });
    within("stream reader and subscriptions", redis.ready()).await;
    Node { io, addr, server }
}

fn recovery() -> RecoveryConfig {
    RecoveryConfig::default().max_disconnection_duration(Duration::from_secs(2))
}

/// A raw Socket.IO v5 client over WebSocket.
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    id: String,
    pid: Option<String>,
    /// The last offset received (last string argument of an event).
    offset: Option<String>,
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
            pid: None,
            offset: None,
        };
        let ok = c.next_text().await;
        let v: Value = serde_json::from_str(ok.strip_prefix('0').unwrap()).unwrap();
        c.id = v["sid"].as_str().unwrap().to_owned();
        c.pid = v["pid"].as_str().map(str::to_owned);
        c
    }

    /// Connects to `node` with this client's pid and last offset (the
    /// official client's reconnection); the old connection is just dropped.
    async fn recover(self, node: &Node) -> Client {
        let auth = json!({"pid": self.pid, "offset": self.offset});
        let mut c = Client::connect(node, auth).await;
        c.offset = self.offset;
        c
    }

    /// As [`recover`](Self::recover), this connection left open (its death
    /// not yet noticed by the server).
    async fn recover_alongside(&self, node: &Node) -> Client {
        let auth = json!({"pid": self.pid, "offset": self.offset});
        let mut c = Client::connect(node, auth).await;
        c.offset = self.offset.clone();
        c
    }

    async fn next_text(&mut self) -> String {
        loop {
            let msg = within("a packet", self.ws.next()).await.unwrap().unwrap();
            let WsMessage::Text(t) = msg else { continue };
            let t = t.to_string();
            if t == "2" {
                self.ws.send(WsMessage::text("3")).await.unwrap();
                continue;
            }
            if let Some(p) = t.strip_prefix('4') {
                return p.to_owned();
            }
        }
    }

    /// The next `name` event's arguments, the offset (if any) taken off.
    async fn event(&mut self, name: &str) -> Vec<Value> {
        loop {
            let p = self.next_text().await;
            if let Some(json) = p.strip_prefix('2') {
                let mut v: Vec<Value> = serde_json::from_str(json).unwrap();
                if v[0] == name {
                    if self.pid.is_some() && v.len() > 2 {
                        if let Some(Value::String(off)) = v.pop() {
                            self.offset = Some(off);
                        }
                    }
                    return v[1..].to_vec();
                }
            }
        }
    }

    async fn quiet(&mut self) {
        if let Ok(p) = tokio::time::timeout(QUIET, self.next_text()).await {
            panic!("unexpected packet {p}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_requests_cross_rust_nodes() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", None).await;
    let b = node(&redis.url(), "B", None).await;
    let mut ca = Client::connect(&a, json!({"rooms": ["lobby"]})).await;
    let mut cb = Client::connect(&b, json!({"rooms": ["lobby", "r"]})).await;
    assert_eq!(a.io.of("/").server_count().await.unwrap(), 2);

    a.io.to("r").emit("news", &1).unwrap();
    assert_eq!(cb.event("news").await, [json!(1)]);
    ca.quiet().await;
    b.io.except("r").emit("news", &2).unwrap();
    assert_eq!(ca.event("news").await, [json!(2)]);
    cb.quiet().await;

    let mut ids: Vec<String> =
        a.io.fetch_sockets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.id().to_string())
            .collect();
    ids.sort();
    let mut want = vec![ca.id.clone(), cb.id.clone()];
    want.sort();
    assert_eq!(ids, want);

    let answers =
        a.io.of("/")
            .server_side_emit_with_ack::<_, Value>("whoami", &())
            .await
            .unwrap();
    assert_eq!(answers, [json!({"node": "B"})]);

    // socketsJoin through the stream, then the room works from A.
    a.io.to(cb.id.as_str()).sockets_join("joined");
    within("remote join", async {
        loop {
            if b.io.of("/").local().fetch_sockets().await.unwrap()[0]
                .rooms()
                .contains(&"joined".to_owned())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    a.io.to("joined").emit("news", &3).unwrap();
    assert_eq!(cb.event("news").await, [json!(3)]);
}

/// The record of a connected socket, as Redis holds it.
async fn record(redis: &Redis, pid: &str) -> Option<(String, i64)> {
    let mut c = redis.conn().await.unwrap();
    let key = format!("sio:session:{pid}");
    let v: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    v.map(|v| (v, ttl))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_session_is_restored_elsewhere_with_rooms_data_and_missed_events() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", Some(recovery())).await;
    let b = node(&redis.url(), "B", Some(recovery())).await;
    let mut c = Client::connect(&a, json!({"rooms": ["r"], "data": {"name": "x"}})).await;
    let pid = c.pid.clone().expect("a pid with recovery");
    b.io.to("r").emit("n", &0).unwrap();
    assert_eq!(c.event("n").await, [json!(0)]);
    let seen = c.offset.clone().expect("an offset");

    // Connected, and its record is already in Redis, rewritten before it expires:
    // after three times the maximum disconnection duration it is still there.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (rec, ttl) = record(&redis, &pid)
        .await
        .expect("a record while connected");
    assert!(ttl > 0, "ttl {ttl}");
    let session = socketio_redis::streams::wire::decode_session(rec.as_bytes()).unwrap();
    assert_eq!(session.sid.as_str(), c.id);
    assert!(session.rooms.contains(&"r".to_owned()));
    assert_eq!(session.data, json!({"name": "x"}));

    // Node A dies without a word (its server stopped, nothing persisted on
    // the way out); events go on meanwhile.
    a.server.abort();
    b.io.to("r").emit("n", &1).unwrap();
    b.io.to("other").emit("n", &99).unwrap();
    b.io.emit("n", &2).unwrap();
    let old_id = c.id.clone();
    let mut c = c.recover(&b).await;
    assert_eq!(c.id, old_id, "same id");
    assert_eq!(c.event("n").await, [json!(1)]);
    assert_eq!(c.event("n").await, [json!(2)]);
    c.quiet().await;
    assert_ne!(c.offset.as_deref(), Some(seen.as_str()), "offset advanced");
    // Rooms and data are back.
    b.io.to("r").emit("n", &3).unwrap();
    assert_eq!(c.event("n").await, [json!(3)]);
    let here = b.io.local().fetch_sockets().await.unwrap();
    assert_eq!(here[0].data::<Value>(), Some(json!({"name": "x"})));

    // A second recovery in a row with nothing missed replays nothing; a third
    // after one missed event gets exactly that one.
    let mut c = c.recover(&b).await;
    assert_eq!(c.id, old_id);
    c.quiet().await;
    let c2 = c;
    b.io.to("r").emit("n", &4).unwrap();
    let mut c = c2.recover(&b).await;
    assert_eq!(c.id, old_id);
    assert_eq!(c.event("n").await, [json!(4)]);
    c.quiet().await;
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_while_events_keep_coming_gets_each_once_in_order() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", Some(recovery())).await;
    let b = node(&redis.url(), "B", Some(recovery())).await;
    let c_node = node(&redis.url(), "C", Some(recovery())).await;
    let mut c = Client::connect(&a, json!({"rooms": ["r"]})).await;
    c_node.io.to("r").emit("n", &0).unwrap();
    assert_eq!(c.event("n").await, [json!(0)]);
    a.server.abort();
    // A steady flow from C while the client recovers on B.
    let io = c_node.io.clone();
    let flow = tokio::spawn(async move {
        for i in 1..=300u32 {
            io.to("r").emit("n", &i).unwrap();
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut c = c.recover(&b).await;
    flow.await.unwrap();
    for i in 1..=300u32 {
        assert_eq!(c.event("n").await, [json!(i)], "event {i}");
    }
    c.quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sessions_and_offsets_are_fresh_connections() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", Some(recovery())).await;
    let c = Client::connect(&a, json!({"pid": "nope", "offset": "1-0"})).await;
    assert_ne!(c.pid.as_deref(), Some("nope"));
    // A real pid with an offset that is not in the stream: no recovery either.
    let mut c1 = Client::connect(&a, json!({})).await;
    a.io.emit("n", &1).unwrap();
    c1.event("n").await;
    let id = c1.id.clone();
    c1.offset = Some("1-0".to_owned());
    let c2 = c1.recover(&a).await;
    assert_ne!(c2.id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_on_the_same_node_before_the_old_connection_is_noticed_keeps_the_new_socket() {
    let redis = Redis::start().await;
    let a = node(&redis.url(), "A", Some(recovery())).await;
    let mut old = Client::connect(&a, json!({"rooms": ["r"]})).await;
    a.io.to("r").emit("n", &0).unwrap();
    assert_eq!(old.event("n").await, [json!(0)]);
    // The client reconnects while its first connection is still open on the server.
    let mut new = old.recover_alongside(&a).await;
    assert_eq!(new.id, old.id);
    // The old socket went first (it received nothing more); the new one stays
    // the only one, in its rooms, once the old connection is gone too.
    drop(old);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let here = a.io.local().fetch_sockets().await.unwrap();
    assert_eq!(here.len(), 1);
    assert_eq!(here[0].id().to_string(), new.id);
    a.io.to("r").emit("n", &1).unwrap();
    assert_eq!(new.event("n").await, [json!(1)]);
    // Its record is still there (the old socket's leaving did not delete it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(record(&redis, new.pid.as_deref().unwrap()).await.is_some());
}

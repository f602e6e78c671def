//! Hostile clients against a real Socket.IO server, spoken as raw Engine.IO:
//! each offending connection is closed with the reference server's reason,
//! and another client connected at the same time keeps getting its echo.
//!
//! Covered in `disconnect.rs`, not repeated here (each with a bystander
//! echo): an unknown type digit (`4abc`), a non-array event payload, a
//! non-digit ack id, a binary frame when none is expected, one attachment
//! too many, a text packet while attachments are expected, 11 attachments,
//! and a client that stops answering pings
//! (`ping_timeout_disconnects_with_ping_timeout`, 200 / 200 ms). The
//! namespace cap itself is in `connect.rs`
//! (`namespaces_per_connection_are_bounded`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use socketio::{DisconnectReason, Socket, SocketIoConfig};
use support::{Client, Frame, Polling, Server, config, http, track, within};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// `/` echoes `echo` events and records disconnect reasons.
async fn server_with(cfg: SocketIoConfig) -> Server {
    Server::start(cfg, |io, left| {
        let left = left.clone();
        io.of("/").on_connection(move |s: Socket| {
            let left = left.clone();
            async move {
                track(&s, &left);
                s.on_args("echo", |s: Socket, args, _ack| async move {
                    s.emit_args("echo", args).unwrap();
                });
            }
        });
    })
    .await
}

async fn assert_echo(c: &mut Client, tag: &str) {
    c.send(&format!(r#"42["echo","{tag}"]"#)).await;
    c.expect(&format!(r#"42["echo","{tag}"]"#)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_only_their_connection() {
    let server = server_with(config()).await;
    let (mut other, _) = server.joined("/").await;
    let deep = format!(
        r#"42["echo",{}1{}]"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let long_nsp = format!("40/{},", "n".repeat(100 * 1024));
    let cases: [(&str, &str); 6] = [
        ("unterminated JSON", r#"42["a""#),
        ("JSON nested 10 000 levels", &deep),
        ("event name not a string", "42[{}]"),
        ("ack id beyond u64", r#"4299999999999999999999["echo"]"#),
        (
            "1 000 000 attachments declared",
            r#"451000000-["echo",{"_placeholder":true,"num":0}]"#,
        ),
        ("CONNECT to a 100 KB namespace", &long_nsp),
    ];
    for (what, bad) in cases {
        let (mut c, id) = server.joined("/").await;
        c.send(bad).await;
        c.expect_closed().await;
        let left = server.wait_left(&id).await;
        assert_eq!(left.reason, DisconnectReason::ParseError, "{what}");
        assert!(server.io.engine().socket(&c.sid).is_none(), "{what}");
        assert_echo(&mut other, what).await;
    }
    assert_eq!(server.io.of("/").sockets().len(), 1);
}

type RawWs = WebSocketStream<TcpStream>;

/// A raw WebSocket joined to `/` (no reader task); returns it and the socket id.
async fn raw_joined(addr: SocketAddr, socket: TcpSocket) -> (RawWs, String) {
    within("a raw client to join", async {
        let stream = socket.connect(addr).await.unwrap();
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        let open = ws.next().await.unwrap().unwrap();
        assert!(open.to_text().unwrap().starts_with("0{"), "{open:?}");
        ws.send(WsMessage::text("40")).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        let json = reply.to_text().unwrap().strip_prefix("40").unwrap();
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        (ws, json["sid"].as_str().unwrap().to_owned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_frame_is_a_transport_error() {
    let server = server_with(config()).await;
    let (mut other, _) = server.joined("/").await;
    let (mut ws, id) = raw_joined(server.addr, TcpSocket::new_v4().unwrap()).await;
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        Bytes::from_static(b"42[\"echo\",\"\xff\xfe\"]"),
        OpCode::Data(Data::Text),
        true,
    );
    within("send", ws.send(WsMessage::Frame(frame)))
        .await
        .unwrap();
    within("the close", async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    // The WebSocket layer refuses the frame before any packet decoding: the
    // reference (ws + engine.io) reports "transport error" here.
    assert_eq!(
        server.wait_left(&id).await.reason,
        DisconnectReason::TransportError
    );
    assert_echo(&mut other, "after-utf8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_base64_in_a_polling_post_is_a_parse_error() {
    let server = server_with(config()).await;
    let (mut other, _) = server.joined("/").await;
    let p = Polling::open(server.addr).await;
    p.post("40").await;
    let reply = p.get().await;
    let json: serde_json::Value = serde_json::from_str(reply.strip_prefix("40").unwrap()).unwrap();
    let id = json["sid"].as_str().unwrap().to_owned();

    let target = server.url(&format!("transport=polling&sid={}", p.sid));
    let (status, body) = http(server.addr, "POST", &target, "b!!!").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        server.wait_left(&id).await.reason,
        DisconnectReason::ParseError
    );
    assert_echo(&mut other, "after-base64").await;
    let (status, _) = http(server.addr, "GET", &target, "").await;
    assert_eq!(status, 400);
}

/// Sends `count` CONNECTs for `name(i)` in batches (so that neither side's
/// queue grows past a batch) and returns every reply in order.
async fn connect_many(c: &mut Client, count: usize, name: impl Fn(usize) -> String) -> Vec<String> {
    const BATCH: usize = 200;
    let mut replies = Vec::with_capacity(count);
    for start in (0..count).step_by(BATCH) {
        let end = (start + BATCH).min(count);
        for i in start..end {
            c.send(&format!("40{},", name(i))).await;
        }
        for _ in start..end {
            replies.push(c.recv().await);
        }
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_dynamic_connects_stay_under_the_namespace_cap() {
    const CONNECTS: usize = 10_000;
    #[derive(Default)]
    struct Counts {
        created: AtomicUsize,
        live: AtomicUsize,
        max_live: AtomicUsize,
    }
    let counts = Arc::new(Counts::default());
    let k = counts.clone();
    let server = Server::start(config(), move |io, left| {
        let left = left.clone();
        io.of("/").on_connection(move |s: Socket| {
            let left = left.clone();
            async move {
                track(&s, &left);
                s.on_args("echo", |s: Socket, args, _ack| async move {
                    s.emit_args("echo", args).unwrap();
                });
            }
        });
        let dynamic = io.dynamic(|name| name.starts_with("/d-"));
        let k1 = k.clone();
        // Runs once per CONNECT that got a (new) child namespace.
        dynamic.use_middleware(move |_s: Socket| {
            k1.created.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        });
        let k2 = k.clone();
        dynamic.on_connection(move |s: Socket| {
            let k2 = k2.clone();
            async move {
                let live = k2.live.fetch_add(1, Ordering::SeqCst) + 1;
                k2.max_live.fetch_max(live, Ordering::SeqCst);
                let k3 = k2.clone();
                s.on_disconnect(move |_s: Socket, _reason| {
                    k3.live.fetch_sub(1, Ordering::SeqCst);
                    async {}
                });
                s.on_args("echo", |s: Socket, args, _ack| async move {
                    s.emit_args("echo", args).unwrap();
                });
            }
        });
    })
    .await;
    let cap = server.io.config().max_namespaces_per_client;
    assert_eq!(cap, 64);
    let (mut other, _) = server.joined("/").await;
    let mut c = server.client().await;

    let replies = connect_many(&mut c, CONNECTS, |i| format!("/d-{i}")).await;
    for (i, reply) in replies.iter().enumerate() {
        let prefix = format!("40/d-{i},");
        if i < cap {
            assert!(
                reply.starts_with(&format!(r#"{prefix}{{"sid":"#)),
                "{reply}"
            );
        } else {
            assert_eq!(
                reply,
                &format!(r#"44/d-{i},{{"message":"Too many namespaces"}}"#)
            );
        }
    }
    assert_eq!(counts.created.load(Ordering::SeqCst), cap);
    assert_eq!(counts.live.load(Ordering::SeqCst), cap);
    assert_eq!(counts.max_live.load(Ordering::SeqCst), cap);
    assert_echo(&mut other, "after-connects").await;

    // The connection is still usable in the namespaces it holds.
    c.send(r#"42/d-7,["echo","x"]"#).await;
    c.expect(r#"42/d-7,["echo","x"]"#).await;
    c.close().await;
    within("the dynamic sockets to leave", async {
        while counts.live.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(counts.max_live.load(Ordering::SeqCst), cap);
    assert_echo(&mut other, "after-close").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unknown_connects_get_invalid_namespace() {
    const CONNECTS: usize = 10_000;
    let server = server_with(config()).await;
    let (mut other, _) = server.joined("/").await;
    let mut c = server.client().await;
    let replies = connect_many(&mut c, CONNECTS, |i| format!("/x-{i}")).await;
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(
            reply,
            &format!(r#"44/x-{i},{{"message":"Invalid namespace"}}"#)
        );
    }
    assert_echo(&mut other, "after-connects").await;
    // The connection stays usable.
    c.join("/").await;
    assert_echo(&mut c, "mine").await;
}

/// Which broadcast every receiver has reached (flow control and final check).
struct Progress {
    /// `reached[j]`: receivers that got tick `j`.
    reached: Vec<AtomicUsize>,
    receivers: usize,
    notify: Notify,
    errors: Mutex<Vec<String>>,
}

impl Progress {
    fn got(&self, j: usize) {
        if self.reached[j].fetch_add(1, Ordering::SeqCst) + 1 == self.receivers {
            self.notify.notify_waiters();
        }
    }

    fn fail(&self, e: String) {
        self.errors.lock().unwrap().push(e);
        self.notify.notify_waiters();
    }

    async fn wait_all(&self, j: usize) {
        within(&format!("every receiver to get tick {j}"), async {
            loop {
                let notified = self.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let errors = self.errors.lock().unwrap().clone();
                assert!(errors.is_empty(), "receiver errors: {errors:?}");
                if self.reached[j].load(Ordering::SeqCst) == self.receivers {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_cut_off_while_a_broadcast_reaches_1000_sockets() {
    // RLIMIT_NOFILE permitting (2 fds per client in this process).
    const RECEIVERS: usize = 1000;
    /// The hard limit of the outbound queue: 16 of the slow one's big messages.
    const BOUND: usize = 16 * (64 * 1024 + 100);
    /// Receivers may lag this many ticks before the loop waits for them, well
    /// under BOUND, so a busy machine cannot push a good client to its bound.
    const LAG: usize = 16;
    const MAX_ROUNDS: usize = 2000;
    const AFTER_CUT: usize = 10;
    let mut cfg = config();
    cfg.engine = cfg.engine.high_water_mark(BOUND).max_buffered_bytes(BOUND);
    let server = server_with(cfg).await;

    let progress = Arc::new(Progress {
        reached: (0..MAX_ROUNDS).map(|_| AtomicUsize::new(0)).collect(),
        receivers: RECEIVERS,
        notify: Notify::new(),
        errors: Mutex::new(Vec::new()),
    });
    let gate = Arc::new(Semaphore::new(100));
    let mut joining = Vec::with_capacity(RECEIVERS);
    for _ in 0..RECEIVERS {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let addr = server.addr;
        joining.push(tokio::spawn(async move {
            let mut c = Client::connect(addr, "", &[]).await;
            c.join("/").await;
            drop(permit);
            c
        }));
    }
    let mut readers = Vec::with_capacity(RECEIVERS);
    for j in joining {
        let mut c = j.await.unwrap();
        let progress = progress.clone();
        readers.push(tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                match c.recv_frame().await {
                    Some(Frame::Text(t)) if t == format!(r#"42["tick",{next}]"#) => {
                        progress.got(next);
                        next += 1;
                    }
                    other => return progress.fail(format!("after tick {next}: {other:?}")),
                }
            }
        }));
    }

    // The slow one: a tiny receive buffer, and it never reads after joining.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let (stuck, slow_id) = raw_joined(server.addr, socket).await;
    let slow = server.socket("/", &slow_id);
    assert_eq!(server.io.of("/").sockets().len(), RECEIVERS + 1);
    let big = "x".repeat(64 * 1024);

    let mut cut_at = None;
    let mut round = 0;
    while cut_at.is_none_or(|c| round < c + AFTER_CUT) {
        assert!(round < MAX_ROUNDS, "the slow reader was never cut off");
        if round >= LAG {
            progress.wait_all(round - LAG).await;
        }
        // The slow one also gets big messages of its own ...
        if cut_at.is_none() && slow.emit("big", &big).is_err() {
            cut_at = Some(round);
        }
        // ... and the broadcast, which never fails for the others.
        server.io.emit("tick", &round).unwrap();
        if cut_at.is_none() && !slow.connected() {
            cut_at = Some(round);
        }
        round += 1;
    }
    progress.wait_all(round - 1).await;
    assert_eq!(
        server.wait_left(&slow_id).await.reason,
        DisconnectReason::TransportError
    );
    let engine_socket = slow.engine_socket();
    assert_eq!(
        engine_socket.close_reason(),
        Some(engineio::CloseReason::QueueFull)
    );
    assert!(
        server
            .io
            .engine()
            .socket(&engine_socket.sid().to_string())
            .is_none()
    );
    // Its connection is dropped although it still does not read.
    within("the stuck websocket to be dropped", async {
        while server.io.engine().websocket_count() > RECEIVERS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(server.io.of("/").sockets().len(), RECEIVERS);
    for r in readers {
        r.abort();
    }
    drop(stuck);
    let (mut c, _) = server.joined("/").await;
    assert_echo(&mut c, "newcomer").await;
}

/// Issue #12: a handler's burst is not a slow client. 2 000 messages of 1 KB
/// emitted in one go to 51 WebSocket clients that read as fast as they can,
/// plus one that never reads: every reader gets all 2 000 in order (with the
/// old bound of 1 024 queued packets most were cut off within 0.1 s), and the
/// non-reader is cut off by the slow-client clock (or, if its socket buffers
/// took it all, by the heartbeat).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_2000_reaches_every_reader_and_only_the_non_reader_is_cut_off() {
    const READERS: usize = 51;
    const BURST: usize = 2000;
    const SLOW_CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
    let mut cfg = config();
    cfg.engine = cfg
        .engine
        .max_payload(100_000)
        .slow_client_timeout(SLOW_CLIENT_TIMEOUT)
        .ping_interval(Duration::from_secs(5))
        .ping_timeout(Duration::from_secs(5));
    let server = server_with(cfg).await;
    let payload = "p".repeat(1000);

    let mut readers = Vec::with_capacity(READERS);
    let mut ready = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        let (mut c, _) = server.joined("/").await;
        let payload = payload.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx);
        readers.push(tokio::spawn(async move {
            let _ = tx.send(());
            for i in 0..BURST {
                let expected = format!(r#"42["msg",[{i},"{payload}"]]"#);
                match c.recv_frame().await {
                    Some(Frame::Text(t)) if t == expected => {}
                    other => return Err(format!("message {i}: {other:?}")),
                }
            }
            Ok(c)
        }));
    }
    for r in ready {
        r.await.unwrap();
    }
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let (stuck, stuck_id) = raw_joined(server.addr, socket).await;
    let stuck_socket = server.socket("/", &stuck_id);

    let started = tokio::time::Instant::now();
    for i in 0..BURST {
        server.io.emit("msg", &(i, &payload)).unwrap();
    }
    let mut kept = Vec::with_capacity(READERS);
    for r in readers {
        let got = tokio::time::timeout(Duration::from_secs(120), r)
            .await
            .expect("the readers to get the burst")
            .unwrap();
        let mut c = got.unwrap_or_else(|e| panic!("a reader lost the burst: {e}"));
        assert_echo(&mut c, "still connected").await;
        kept.push(c);
    }
    // The non-reader: cut off within slow_client_timeout of the burst (plus
    // scheduling), or by the heartbeat if the kernel took the whole burst.
    let left = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(l) = server.left.items().into_iter().find(|l| l.id == stuck_id) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the non-reader to be cut off");
    assert!(
        matches!(
            left.reason,
            DisconnectReason::TransportError | DisconnectReason::PingTimeout
        ),
        "{:?}",
        left.reason
    );
    let reason = stuck_socket.engine_socket().close_reason();
    assert!(
        matches!(
            reason,
            Some(engineio::CloseReason::QueueFull | engineio::CloseReason::PingTimeout)
        ),
        "{reason:?}"
    );
    if reason == Some(engineio::CloseReason::QueueFull) {
        assert!(started.elapsed() >= SLOW_CLIENT_TIMEOUT);
    }
    assert_eq!(server.io.of("/").sockets().len(), READERS);
    drop(stuck);
}

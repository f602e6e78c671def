//! The Socket.IO application the conformance tests and benchmarks drive.
//!
//! Namespace `/`:
//! - on connect: emit `auth` with the CONNECT auth payload (`{}` if none);
//! - `message` (args…): emit `message-back` with the same args;
//! - `message-with-ack` (args…): ack with the same args;
//! - bench events: `echo` (ack with the same args), `join` (room; join, then ack),
//!   `bcast` (room, payload: emit `msg` with payload to every member of the
//!   room, sender included), `ping-all` (n, payload: n times emit `msg` with
//!   payload to all sockets of `/` through the broadcast path).
//!
//! Namespace `/custom`: emit `auth` with the CONNECT auth payload; the bench
//! events. Both `/` and `/custom` serve the cluster events of `cluster.rs`
//! (with `--redis`; `leave` and `fetch` always).
//!
//! Test events on `/` (used by conformance/test/socketio-*.test.js), each
//! acking its result:
//! - `leave` (room); `rooms` () → sorted rooms of the socket;
//! - `op` ({from?: "socket"|"io", broadcast?, to?: [..], except?: [..],
//!   volatile?, event, data}) → emits through the matching operator chain;
//! - `server-ack` (event, data, timeoutMs) → `socket.timeout(t).emit_with_ack`,
//!   acks `{ok: args}` or `{error}`;
//! - `server-ack-bin` (event, data, timeoutMs) → emits `data` with its binary
//!   parts and an ack; the client must answer with binary values only; acks
//!   `{ok: [..those values]}` (binary) or `{error}`;
//! - `bcast-ack` ({to?, event, data, timeoutMs}) → broadcast with acks, acks
//!   `{responses: [[id, args]...], missing: [ids]}` (sorted by id);
//! - `fetch` (room|null) → sorted socket ids; `sockets-join` / `sockets-leave`
//!   (room|null, target); `disconnect-sockets` (room|null, close);
//! - `disconnect-me` (close) → `socket.disconnect(close)` (no ack);
//! - `reasons` () → the disconnect reasons recorded so far, `[[id, reason]]`.
//!
//! Namespace `/mw`: middleware refuses unless `auth.token == "ok"`, with
//! message `Not authorized` and data `{"reason": "bad token"}`.
//! Dynamic namespaces `/dyn-<anything>`: emit `hello` with the namespace name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use socketio::{
    AckSender, Args, BroadcastOperator, ConnectError, Socket, SocketIo, SocketIoConfig,
};

type Reasons = Arc<Mutex<Vec<(String, String)>>>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Op {
    from: Option<String>,
    broadcast: bool,
    to: Vec<String>,
    except: Vec<String>,
    volatile: bool,
    event: String,
    data: Value,
    #[serde(rename = "timeoutMs")]
    timeout_ms: Option<u64>,
}

fn selection(io: &SocketIo, socket: &Socket, op: &Op) -> BroadcastOperator {
    let mut sel = match op.from.as_deref() {
        Some("socket") if op.broadcast => socket.broadcast(),
        Some("socket") => socket.broadcast().to(op.to.clone()),
        _ => io.of(socket.ns_name()).all().to(op.to.clone()),
    };
    if op.broadcast {
        sel = sel.to(op.to.clone());
    }
    sel = sel.except(op.except.clone());
    if op.volatile {
        sel = sel.volatile();
    }
    sel
}

fn room_selection(io: &SocketIo, socket: &Socket, room: Option<String>) -> BroadcastOperator {
    let all = io.of(socket.ns_name()).all();
    match room {
        Some(r) => all.to(r),
        None => all,
    }
}

/// `data` of the first argument, binary placeholders and attachments kept.
fn raw_data(args: &Args) -> Args {
    let data = args
        .values()
        .first()
        .and_then(|v| v.get("data"))
        .cloned()
        .unwrap_or(Value::Null);
    Args::from_parts(vec![data], args.binary().to_vec())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn test_events(io: &SocketIo, socket: &Socket, reasons: &Reasons) {
    socket.on(
        "rooms",
        |socket: Socket, _: Value, ack: AckSender| async move {
            let _ = ack.send(&sorted(socket.rooms()));
        },
    );
    let io1 = io.clone();
    socket.on_args("op", move |socket: Socket, args: Args, ack: AckSender| {
        let io = io1.clone();
        async move {
            let Ok(op) = args.get::<Op>(0) else { return };
            let _ = selection(&io, &socket, &op).emit_args(&op.event, raw_data(&args));
            let _ = ack.send_many(&());
        }
    });
    socket.on_args(
        "server-ack",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let event: String = args.get(0).unwrap_or_default();
            let data: Value = args.get(1).unwrap_or_default();
            let t: u64 = args.get(2).unwrap_or(1000);
            let r = socket
                .timeout(Duration::from_millis(t))
                .emit_with_ack::<_, Value>(&event, &data)
                .await;
            let _ = match r {
                Ok(v) => ack.send(&json!({ "ok": v })),
                Err(e) => {
                    // The shutdown test reads this: a pending ack resolves
                    // with an error when the server closes.
                    println!("server-ack {event}: {e}");
                    ack.send(&json!({ "error": e.to_string() }))
                }
            };
        },
    );
    socket.on_args(
        "server-ack-bin",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let event: String = args.get(0).unwrap_or_default();
            let data = args.values().get(1).cloned().unwrap_or(Value::Null);
            let t: u64 = args.get(2).unwrap_or(1000);
            let r = socket
                .timeout(Duration::from_millis(t))
                .emit_args_with_ack::<Vec<socketio::Binary>>(
                    &event,
                    Args::from_parts(vec![data], args.binary().to_vec()),
                )
                .await;
            let _ = match r {
                Ok(v) => ack.send(&std::collections::BTreeMap::from([("ok", v)])),
                Err(e) => ack.send(&json!({ "error": e.to_string() })),
            };
        },
    );
    let io2 = io.clone();
    socket.on_args(
        "bcast-ack",
        move |socket: Socket, args: Args, ack: AckSender| {
            let io = io2.clone();
            async move {
                let Ok(op) = args.get::<Op>(0) else { return };
                let sel = selection(&io, &socket, &op)
                    .timeout(Duration::from_millis(op.timeout_ms.unwrap_or(1000)));
                let r = sel.emit_args_with_ack(&op.event, raw_data(&args)).await;
                let mut responses: Vec<(String, Vec<Value>)> = r
                    .responses
                    .iter()
                    .map(|(id, a)| (id.to_string(), a.values().to_vec()))
                    .collect();
                responses.sort_by(|a, b| a.0.cmp(&b.0));
                let missing = sorted(r.missing.iter().map(|id| id.to_string()).collect());
                let _ = ack.send(&json!({ "responses": responses, "missing": missing }));
            }
        },
    );
    let io4 = io.clone();
    socket.on(
        "sockets-join",
        move |socket: Socket, (room, target): (Option<String>, String), ack: AckSender| {
            let io = io4.clone();
            async move {
                room_selection(&io, &socket, room).sockets_join(target);
                let _ = ack.send_many(&());
            }
        },
    );
    let io5 = io.clone();
    socket.on(
        "sockets-leave",
        move |socket: Socket, (room, target): (Option<String>, String), ack: AckSender| {
            let io = io5.clone();
            async move {
                room_selection(&io, &socket, room).sockets_leave(target);
                let _ = ack.send_many(&());
            }
        },
    );
    let io6 = io.clone();
    socket.on(
        "disconnect-sockets",
        move |socket: Socket, (room, close): (Option<String>, bool), ack: AckSender| {
            let io = io6.clone();
            async move {
                let _ = ack.send_many(&());
                room_selection(&io, &socket, room)
                    .disconnect_sockets(close)
                    .await;
            }
        },
    );
    // Never answers: a pending client ack, and a handler still running at
    // shutdown (which the graceful close cuts at its deadline).
    socket.on("hang", |_s: Socket, _: Value, _ack: AckSender| async {
        // The shutdown test waits for this line before it signals.
        println!("hang: handler started");
        std::future::pending::<()>().await
    });
    socket.on(
        "disconnect-me",
        |socket: Socket, close: bool, _ack| async move {
            socket.disconnect(close).await;
        },
    );
    let r1 = reasons.clone();
    socket.on("reasons", move |_s: Socket, _: Value, ack: AckSender| {
        let list = r1.lock().map(|l| l.clone()).unwrap_or_default();
        async move {
            let _ = ack.send(&list);
        }
    });
    let r2 = reasons.clone();
    socket.on_disconnect(move |socket, reason| {
        if let Ok(mut l) = r2.lock() {
            if l.len() < 10_000 {
                l.push((socket.id().to_string(), reason.to_string()));
            }
        }
        async {}
    });
}

fn emit_auth(socket: &Socket) {
    let auth = socket.handshake().auth.clone();
    let _ = socket.emit("auth", &auth);
}

/// The events served on both `/` and `/custom`: the bench events and the
/// cluster events (see `cluster.rs`).
fn base_events(io: &SocketIo, socket: &Socket, cluster: bool) {
    emit_auth(socket);
    crate::cluster::socket_events(io, socket, cluster);
    socket.on_args("echo", |_s, args: Args, ack: AckSender| async move {
        let _ = ack.send_args(args);
    });
    socket.on(
        "join",
        |socket: Socket, room: String, ack: AckSender| async move {
            socket.join(room);
            let _ = ack.send_many(&());
        },
    );
    socket.on_args("bcast", |socket: Socket, args: Args, _ack| async move {
        let _ = crate::cluster::select(&socket.namespace(), args.values().first())
            .emit_args("msg", crate::cluster::raw(&args, 1));
    });
    socket.on_args("ping-all", |socket: Socket, args: Args, _ack| async move {
        let n = args.get::<u64>(0).unwrap_or(0).min(100_000);
        let payload = crate::cluster::raw(&args, 1);
        let all = socket.namespace().all();
        for _ in 0..n {
            let _ = all.emit_args("msg", payload.clone());
        }
    });
}

/// Builds the Socket.IO app; `adapter` replaces the in-memory one (e.g. the
/// Redis adapter), `port` is what the `sse-ack` server-side handler answers.
pub(crate) fn socketio_app(
    config: SocketIoConfig,
    adapter: Option<socketio::AdapterFactory>,
    port: u16,
) -> Result<SocketIo, socketio::Error> {
    let cluster = adapter.is_some();
    let mut builder = SocketIo::builder(config);
    if let Some(f) = adapter {
        builder = builder.adapter(move |ns| f(ns));
    }
    let io = builder.build()?;
    let io2 = io.clone();
    let reasons: Reasons = Arc::default();
    io.on_connection(move |socket: Socket| {
        let io = io2.clone();
        let reasons = reasons.clone();
        async move {
            base_events(&io, &socket, cluster);
            test_events(&io, &socket, &reasons);
            socket.on_args("message", |socket: Socket, args: Args, _ack| async move {
                let _ = socket.emit_args("message-back", args);
            });
            socket.on_args(
                "message-with-ack",
                |_s, args: Args, ack: AckSender| async move {
                    let _ = ack.send_args(args);
                },
            );
        }
    });
    let io3 = io.clone();
    io.of("/custom").on_connection(move |socket: Socket| {
        let io = io3.clone();
        async move { base_events(&io, &socket, cluster) }
    });
    crate::cluster::server_events(&io.of("/"), port);
    crate::cluster::server_events(&io.of("/custom"), port);
    let mw = io.of("/mw");
    mw.use_middleware(|socket: Socket| async move {
        if socket.handshake().auth.get("token").and_then(Value::as_str) == Some("ok") {
            Ok(())
        } else {
            Err(ConnectError::new("Not authorized").with_data(json!({ "reason": "bad token" })))
        }
    });
    mw.on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", "mw");
    });
    io.dynamic(|name| name.starts_with("/dyn-"))
        .on_connection(|socket: Socket| async move {
            let _ = socket.emit("hello", socket.ns_name());
        });
    Ok(io)
}

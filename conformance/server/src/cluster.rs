//! Events for the cluster tests (conformance/test/cluster-*.test.js), served
//! on `/` and `/custom` with any adapter; with `--redis` they act
//! cluster-wide. A `room` argument is a string, an array of strings (union)
//! or `null` (the whole namespace); a failed operation acks `{error}`.
//!
//! | event (args) | does | ack |
//! |---|---|---|
//! | `leave` (room) | socket leaves room | `()` |
//! | `bcast-except` (room, except, payload) | `to(room).except(except).emit("msg", payload)` | none |
//! | `fetch` (room) | fetch sockets in room | sorted ids |
//! | `fetch-detail` (room) | the same | `[{id, rooms (sorted), auth}]` by id |
//! | `all-rooms` () | every room, cluster-wide | sorted names |
//! | `sjoin` / `sleave` (room, target) | sockets in room join / leave target | `()` |
//! | `kick` (room) | disconnect sockets in room, closing their connections | `()` |
//! | `sse` (payload) | server-side emit `sse`; other nodes emit `sse-got` (payload) to their own sockets | `()` |
//! | `sse-ack` (payload) | server-side emit with ack; other nodes answer `{port, payload}` | `{responses}` |
//! | `ask-all` (payload, timeoutMs) | `timeout(t).emit("ask", payload)` with acks to every socket | `{error, responses}` |
//! | `count` () | — | `{local, cluster, servers}` |

use std::time::Duration;

use crate::RedisAdapterKind;
use serde_json::{Value, json};
use socketio::{AckSender, Args, BroadcastOperator, Namespace, ServerAck, Socket, SocketIo};

/// A `room` argument: `None` for null (the whole namespace).
fn rooms_arg(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

pub(crate) fn select(ns: &Namespace, room: Option<&Value>) -> BroadcastOperator {
    match rooms_arg(room) {
        Some(r) => ns.to(r),
        None => ns.all(),
    }
}

/// Argument `i`, binary attachments kept.
pub(crate) fn raw(args: &Args, i: usize) -> Args {
    let v = args.values().get(i).cloned().unwrap_or(Value::Null);
    Args::from_parts(vec![v], args.binary().to_vec())
}

/// Shifts the binary placeholders of `v` by `offset`.
fn renumber(v: Value, offset: usize) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(|x| renumber(x, offset)).collect()),
        Value::Object(mut m) => {
            let is_placeholder = m.len() == 2 && m.get("_placeholder") == Some(&Value::Bool(true));
            match (is_placeholder, m.get("num").and_then(Value::as_u64)) {
                (true, Some(n)) => {
                    m.insert("num".to_owned(), Value::from(n + offset as u64));
                    Value::Object(m)
                }
                _ => Value::Object(
                    m.into_iter()
                        .map(|(k, x)| (k, renumber(x, offset)))
                        .collect(),
                ),
            }
        }
        other => other,
    }
}

fn error(e: impl std::fmt::Display) -> Value {
    json!({ "error": e.to_string() })
}

/// Server-side event handlers of a namespace (`sse`, `sse-ack`).
pub(crate) fn server_events(ns: &Namespace, port: u16) {
    let ns2 = ns.clone();
    ns.on_server_event("sse", move |args: Args, _ack: ServerAck| {
        let ns = ns2.clone();
        async move {
            let _ = ns.local().emit_args("sse-got", raw(&args, 0));
        }
    });
    ns.on_server_event("sse-ack", move |args: Args, ack: ServerAck| async move {
        let payload = args.values().first().cloned().unwrap_or(Value::Null);
        let _ = ack.send(&json!({ "port": port, "payload": payload }));
    });
}

/// The cluster events on one socket: `leave` and `fetch` always (the
/// single-node tests use them too), the others only when `cluster` (with
/// `--redis`), so that the benchmarks' sockets carry no more handlers than
/// the peers' do.
pub(crate) fn socket_events(io: &SocketIo, socket: &Socket, cluster: bool) {
    socket.on(
        "leave",
        |socket: Socket, room: String, ack: AckSender| async move {
            socket.leave(&room);
            let _ = ack.send_many(&());
        },
    );
    socket.on_args(
        "fetch",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let ns = socket.namespace();
            let _ = match select(&ns, args.values().first()).fetch_sockets().await {
                Ok(list) => {
                    let mut ids: Vec<String> = list.iter().map(|s| s.id().to_string()).collect();
                    ids.sort();
                    ack.send(&ids)
                }
                Err(e) => ack.send(&error(e)),
            };
        },
    );
    if !cluster {
        return;
    }
    socket.on_args(
        "bcast-except",
        |socket: Socket, args: Args, _ack| async move {
            let ns = socket.namespace();
            let mut sel = select(&ns, args.values().first());
            if let Some(except) = rooms_arg(args.values().get(1)) {
                sel = sel.except(except);
            }
            let _ = sel.emit_args("msg", raw(&args, 2));
        },
    );
    socket.on_args(
        "fetch-detail",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let ns = socket.namespace();
            let _ = match select(&ns, args.values().first()).fetch_sockets().await {
                Ok(list) => {
                    let mut out: Vec<(String, Value)> = list
                        .iter()
                        .map(|s| {
                            let mut rooms = s.rooms().to_vec();
                            rooms.sort();
                            let auth = s.handshake().get("auth").cloned().unwrap_or(json!({}));
                            let id = s.id().to_string();
                            (
                                id.clone(),
                                json!({ "id": id, "rooms": rooms, "auth": auth }),
                            )
                        })
                        .collect();
                    out.sort_by(|a, b| a.0.cmp(&b.0));
                    ack.send(&out.into_iter().map(|(_, v)| v).collect::<Vec<_>>())
                }
                Err(e) => ack.send(&error(e)),
            };
        },
    );
    socket.on_args(
        "all-rooms",
        |socket: Socket, _args: Args, ack: AckSender| async move {
            let _ = match socket.namespace().all_rooms().await {
                Ok(rooms) => ack.send(&rooms),
                Err(e) => ack.send(&error(e)),
            };
        },
    );
    for (event, join) in [("sjoin", true), ("sleave", false)] {
        socket.on_args(
            event,
            move |socket: Socket, args: Args, ack: AckSender| async move {
                let ns = socket.namespace();
                let sel = select(&ns, args.values().first());
                let target = rooms_arg(args.values().get(1)).unwrap_or_default();
                if join {
                    sel.sockets_join(target);
                } else {
                    sel.sockets_leave(target);
                }
                let _ = ack.send_many(&());
            },
        );
    }
    socket.on_args(
        "kick",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let ns = socket.namespace();
            let sel = select(&ns, args.values().first());
            let _ = ack.send_many(&());
            sel.disconnect_sockets(true).await;
        },
    );
    socket.on_args(
        "sse",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let payload = args.values().first().cloned().unwrap_or(Value::Null);
            let _ = match socket.namespace().server_side_emit("sse", &payload) {
                Ok(()) => ack.send_many(&()),
                Err(e) => ack.send(&error(e)),
            };
        },
    );
    socket.on_args(
        "sse-ack",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let payload = args.values().first().cloned().unwrap_or(Value::Null);
            let r = socket
                .namespace()
                .server_side_emit_with_ack::<_, Value>("sse-ack", &payload)
                .await;
            let _ = match r {
                Ok(responses) => ack.send(&json!({ "responses": responses })),
                Err(e) => ack.send(&error(e)),
            };
        },
    );
    socket.on_args(
        "ask-all",
        |socket: Socket, args: Args, ack: AckSender| async move {
            let t = args.get::<u64>(1).unwrap_or(3000);
            let r = socket
                .namespace()
                .timeout(Duration::from_millis(t))
                .emit_args_with_ack("ask", raw(&args, 0))
                .await;
            let error = if r.is_complete() {
                Value::Null
            } else {
                Value::String("operation has timed out".to_owned())
            };
            // First argument of each ack, binary parts renumbered into one list.
            let mut responses = Vec::new();
            let mut bins = Vec::new();
            for a in r.all() {
                let v = a.values().first().cloned().unwrap_or(Value::Null);
                responses.push(renumber(v, bins.len()));
                bins.extend(a.binary().iter().cloned());
            }
            let reply = json!({ "error": error, "responses": responses });
            let _ = ack.send_args(Args::from_parts(vec![reply], bins));
        },
    );
    let io2 = io.clone();
    socket.on_args(
        "count",
        move |socket: Socket, _args: Args, ack: AckSender| {
            let io = io2.clone();
            async move {
                let ns = socket.namespace();
                let local = io.engine().session_count();
                let cluster = ns.all().fetch_sockets().await.map(|l| l.len());
                let servers = ns.server_count().await;
                let _ = match (cluster, servers) {
                    (Ok(cluster), Ok(servers)) => ack.send(&json!({
                        "local": local, "cluster": cluster, "servers": servers
                    })),
                    (Err(e), _) | (_, Err(e)) => ack.send(&error(e)),
                };
            }
        },
    );
}

/// The Redis adapter `--redis-adapter` picks: `classic` (default) or
/// `sharded` (`SPUBLISH` / `SSUBSCRIBE`, as Node's `createShardedAdapter`);
/// with either, a `redis+cluster://h1:p1,h2:p2` URL reaches a Redis Cluster.
pub(crate) enum RedisChoice {
    Classic(socketio_redis::RedisAdapter),
    Sharded(socketio_redis::ShardedRedisAdapter),
    Streams(socketio_redis::RedisStreamsAdapter),
}

impl RedisChoice {
    pub(crate) async fn connect(url: &str, kind: RedisAdapterKind) -> Result<Self, String> {
        match kind {
            RedisAdapterKind::Classic => socketio_redis::RedisAdapter::connect(
                url,
                socketio_redis::RedisAdapterConfig::default(),
            )
            .await
            .map(RedisChoice::Classic)
            .map_err(|e| e.to_string()),
            RedisAdapterKind::Sharded => socketio_redis::ShardedRedisAdapter::connect(
                url,
                socketio_redis::ShardedAdapterConfig::default(),
            )
            .await
            .map(RedisChoice::Sharded)
            .map_err(|e| e.to_string()),
            RedisAdapterKind::Streams => socketio_redis::RedisStreamsAdapter::connect(
                url,
                socketio_redis::RedisStreamsConfig::default(),
            )
            .await
            .map(RedisChoice::Streams)
            .map_err(|e| e.to_string()),
        }
    }

    pub(crate) fn factory(&self) -> socketio::AdapterFactory {
        match self {
            RedisChoice::Classic(r) => std::sync::Arc::new(r.factory()),
            RedisChoice::Sharded(r) => std::sync::Arc::new(r.factory()),
            RedisChoice::Streams(r) => std::sync::Arc::new(r.factory()),
        }
    }

    pub(crate) async fn ready(&self) {
        match self {
            RedisChoice::Classic(r) => r.ready().await,
            RedisChoice::Sharded(r) => r.ready().await,
            RedisChoice::Streams(r) => r.ready().await,
        }
    }
}

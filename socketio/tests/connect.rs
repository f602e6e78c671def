//! Namespace connection: CONNECT replies, unknown namespaces, several
//! namespaces per connection, middlewares, the handshake, connect timeout and
//! dynamic namespaces (PROTOCOL.md §2.3).

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use socketio::{ConnectError, Socket};
use support::{Client, Log, QUIET, Server, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_main_namespace_replies_with_a_fresh_sid() {
    let server = Server::plain().await;
    let mut c = server.client().await;
    c.send("40").await;
    let reply = c.recv().await;
    let json: Value = serde_json::from_str(reply.strip_prefix("40").unwrap()).unwrap();
    let obj = json.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["sid"], "{reply}");
    let id = obj["sid"].as_str().unwrap();
    assert_eq!(id.len(), 20);
    assert_ne!(id, c.sid, "socket id differs from the engine sid");
    let socket = server.socket("/", id);
    assert!(socket.connected());
    assert_eq!(socket.engine_socket().sid().as_str(), c.sid);
    assert_eq!(socket.ns_name(), "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_custom_namespace() {
    let server = Server::start(config(), |io, _| {
        io.of("/custom").on_connection(|s: Socket| async move {
            let auth = s.handshake().auth.clone();
            s.emit("auth", &auth).unwrap();
        });
    })
    .await;
    let mut c = server.client().await;
    // `40/custom` without the comma names the same namespace.
    c.send("40/custom").await;
    let reply = c.recv().await;
    let json: Value = serde_json::from_str(reply.strip_prefix("40/custom,").unwrap()).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 1);
    c.expect(r#"42/custom,["auth",{}]"#).await;

    let mut c2 = server.client().await;
    c2.join_with("/custom", r#"{"token":"abc"}"#).await;
    c2.expect(r#"42/custom,["auth",{"token":"abc"}]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_is_refused_and_the_connection_stays() {
    let server = Server::plain().await;
    let mut c = server.client().await;
    c.send("40/random").await;
    c.expect(r#"44/random,{"message":"Invalid namespace"}"#)
        .await;
    c.send(r#"40/random,{"token":"x"}"#).await;
    c.expect(r#"44/random,{"message":"Invalid namespace"}"#)
        .await;
    // Still open: `/` can be joined afterwards.
    c.join("/").await;
    assert!(server.left.items().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_namespaces_share_one_connection() {
    let server = Server::start(config(), |io, _| {
        for name in ["/a", "/b"] {
            io.of(name).on_connection(|s: Socket| async move {
                s.on_args("echo", |s: Socket, args, _ack| async move {
                    s.emit_args("echo", args).unwrap();
                });
            });
        }
        io.of("/").on_connection(|s: Socket| async move {
            s.on_args("echo", |s: Socket, args, _ack| async move {
                s.emit_args("echo", args).unwrap();
            });
        });
    })
    .await;
    let mut c = server.client().await;
    let main = c.join("/").await;
    let a = c.join("/a").await;
    let b = c.join("/b").await;
    assert_ne!(main, a);
    assert_ne!(a, b);
    c.send(r#"42/b,["echo","to b"]"#).await;
    c.expect(r#"42/b,["echo","to b"]"#).await;
    c.send(r#"42/a,["echo",1]"#).await;
    c.expect(r#"42/a,["echo",1]"#).await;
    c.send(r#"42["echo",true]"#).await;
    c.expect(r#"42["echo",true]"#).await;
    // All three server sockets sit on the same engine session.
    for (nsp, id) in [("/", &main), ("/a", &a), ("/b", &b)] {
        assert_eq!(server.socket(nsp, id).engine_socket().sid().as_str(), c.sid);
    }
    // Leaving one leaves the others.
    c.send("41/a,").await;
    c.send(r#"42/b,["echo","still"]"#).await;
    c.expect(r#"42/b,["echo","still"]"#).await;
    assert!(server.io.of("/a").sockets().is_empty());
}

/// Expects `<prefix><json>` with the JSON equal to `want` (key order aside:
/// the reference server writes `message` first, serde_json sorts keys).
async fn expect_json(c: &mut Client, prefix: &str, want: Value) {
    let frame = c.recv().await;
    let json = frame
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix}..., got {frame}"));
    assert_eq!(
        serde_json::from_str::<Value>(json).unwrap(),
        want,
        "{frame}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_refuse_with_message_and_data_server_level_first() {
    let order: Log<String> = Log::new();
    let o = order.clone();
    let server = Server::start(config(), move |io, _| {
        let o1 = o.clone();
        io.use_middleware(move |s: Socket| {
            let o1 = o1.clone();
            async move {
                o1.push(format!("server {}", s.ns_name()));
                match s.handshake().auth.get("server").and_then(Value::as_bool) {
                    Some(false) => {
                        Err(ConnectError::new("Not authorized")
                            .with_data(json!({"level":"server"})))
                    }
                    _ => Ok(()),
                }
            }
        });
        let o2 = o.clone();
        io.of("/admin").use_middleware(move |s: Socket| {
            let o2 = o2.clone();
            async move {
                o2.push(format!("admin {}", s.ns_name()));
                match s.handshake().auth.get("token").and_then(Value::as_str) {
                    Some("secret") => Ok(()),
                    _ => Err(ConnectError::new("Not authorized").with_data(json!({"code":401}))),
                }
            }
        });
        let o3 = o.clone();
        io.of("/admin").use_middleware(move |_s: Socket| {
            let o3 = o3.clone();
            async move {
                o3.push("admin second".to_owned());
                Ok(())
            }
        });
        io.of("/plain")
            .use_middleware(|_s: Socket| async move { Err(ConnectError::new("no data")) });
    })
    .await;
    let mut c = server.client().await;

    // Refused by the server-level middleware: the namespace one never runs.
    c.send(r#"40{"server":false}"#).await;
    expect_json(
        &mut c,
        "44",
        json!({"message":"Not authorized","data":{"level":"server"}}),
    )
    .await;
    assert_eq!(order.items(), ["server /"]);

    // Namespace-level refusal, after the server-level one passed.
    c.send(r#"40/admin,{"token":"nope"}"#).await;
    expect_json(
        &mut c,
        "44/admin,",
        json!({"message":"Not authorized","data":{"code":401}}),
    )
    .await;
    assert_eq!(order.items(), ["server /", "server /admin", "admin /admin"]);

    // No data: no "data" key.
    c.send("40/plain,").await;
    c.expect(r#"44/plain,{"message":"no data"}"#).await;

    // Accepted: every middleware ran, in order.
    c.join_with("/admin", r#"{"token":"secret"}"#).await;
    let items = order.items();
    assert_eq!(
        items[items.len() - 3..],
        ["server /admin", "admin /admin", "admin second"]
    );
    // The connection survived every refusal.
    c.join("/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_socket_leaves_no_rooms_behind() {
    // A middleware may join rooms before refusing; the refusal must undo that.
    let server = Server::start(config(), |io, _| {
        io.of("/mw").use_middleware(|s: Socket| async move {
            s.join("mw-room");
            Err(ConnectError::new("Not authorized"))
        });
    })
    .await;
    let mut c = server.client().await;
    c.send("40/mw,").await;
    c.expect(r#"44/mw,{"message":"Not authorized"}"#).await;
    let rooms = server.io.of("/mw").adapter().rooms();
    assert!(
        rooms.is_empty(),
        "rooms left by a refused socket: {rooms:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_sees_the_handshake() {
    let seen: Log<Value> = Log::new();
    let s2 = seen.clone();
    let server = Server::start(config(), move |io, _| {
        io.use_middleware(move |s: Socket| {
            let seen = s2.clone();
            async move {
                let h = s.handshake();
                seen.push(json!({
                    "auth": h.auth,
                    "token": h.query("token"),
                    "eio": h.query("EIO"),
                    "header": h.headers.get("x-custom").map(|v| v.to_str().unwrap()),
                    "ip": h.address.map(|a| a.ip().to_string()),
                    "url": h.url,
                    "xdomain": h.xdomain,
                    "issued": h.issued > 0,
                    "connected": s.connected(),
                }));
                Ok(())
            }
        });
    })
    .await;
    let mut c = Client::connect(
        server.addr,
        "token=a%20b",
        &[("x-custom", "hello"), ("origin", "http://example.com")],
    )
    .await;
    c.join_with("/", r#"{"user":"ann","n":[1,2]}"#).await;
    let got = seen.wait_len(1).await.remove(0);
    assert_eq!(got["auth"], json!({"user":"ann","n":[1,2]}));
    assert_eq!(got["token"], "a b");
    assert_eq!(got["eio"], "4");
    assert_eq!(got["header"], "hello");
    assert_eq!(got["ip"], "127.0.0.1");
    assert!(
        got["url"]
            .as_str()
            .unwrap()
            .starts_with("/socket.io/?EIO=4")
    );
    assert_eq!(got["xdomain"], true);
    assert_eq!(got["issued"], true);
    assert_eq!(got["connected"], false);

    // No auth payload: `{}`.
    let mut c2 = server.client().await;
    c2.join("/").await;
    assert_eq!(seen.wait_len(2).await[1]["auth"], json!({}));
}

fn short_connect_timeout() -> socketio::SocketIoConfig {
    config().connect_timeout(Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_closes_a_connection_that_joins_nothing() {
    let server = Server::start(short_connect_timeout(), |io, _| {
        io.of("/mw")
            .use_middleware(|_s: Socket| async move { Err(ConnectError::new("no")) });
    })
    .await;
    let mut idle = server.client().await;
    // A refused CONNECT does not count as joining.
    let mut refused = server.client().await;
    refused.send("40/mw,").await;
    refused.expect(r#"44/mw,{"message":"no"}"#).await;
    let started = tokio::time::Instant::now();
    idle.expect_closed().await;
    refused.expect_closed().await;
    // Well before the 20 s ping timeout.
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_spares_a_connection_that_joined() {
    let server = Server::start(short_connect_timeout(), |io, _| {
        io.of("/").on_connection(|s: Socket| async move {
            s.on_args("echo", |s: Socket, args, _ack| async move {
                s.emit_args("echo", args).unwrap();
            });
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    // Past the deadline (it started before the join).
    c.assert_silent(Duration::from_millis(300)).await;
    c.send(r#"42["echo",1]"#).await;
    c.expect(r#"42["echo",1]"#).await;
    // Leaving every namespace does not re-arm the timer.
    c.send("41").await;
    c.assert_silent(Duration::from_millis(300)).await;
    c.join("/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_namespace_creates_children_and_drops_them_when_empty() {
    let server = Server::start(config(), |io, left| {
        let left = left.clone();
        let dynamic = io.dynamic(|name| name.starts_with("/room-"));
        dynamic.use_middleware(|s: Socket| async move {
            if s.ns_name() == "/room-locked" {
                Err(ConnectError::new("locked"))
            } else {
                Ok(())
            }
        });
        dynamic.on_connection(move |s: Socket| {
            let left = left.clone();
            async move {
                support::track(&s, &left);
                let name = s.ns_name().to_owned();
                s.emit("hello", &name).unwrap();
            }
        });
    })
    .await;
    let mut c = server.client().await;
    let id1 = c.join("/room-1").await;
    c.expect(r#"42/room-1,["hello","/room-1"]"#).await;
    let id2 = c.join("/room-2").await;
    c.expect(r#"42/room-2,["hello","/room-2"]"#).await;
    c.send("40/other,").await;
    c.expect(r#"44/other,{"message":"Invalid namespace"}"#)
        .await;
    c.send("40/room-locked,").await;
    c.expect(r#"44/room-locked,{"message":"locked"}"#).await;

    let child = server.socket("/room-1", &id1).namespace();
    assert_eq!(child.name(), "/room-1");
    assert_eq!(child.sockets().len(), 1);
    assert_eq!(server.socket("/room-2", &id2).ns_name(), "/room-2");

    // The last socket leaves: the child is dropped. A new CONNECT makes a
    // new child, which the old handle does not see.
    c.send("41/room-1,").await;
    server.wait_left(&id1).await;
    let id3 = c.join("/room-1").await;
    c.expect(r#"42/room-1,["hello","/room-1"]"#).await;
    let new_child = server.socket("/room-1", &id3).namespace();
    assert_eq!(new_child.sockets().len(), 1);
    assert!(
        child.sockets().is_empty(),
        "the emptied child was reused instead of dropped"
    );
    // Broadcasting on the stale handle reaches nobody.
    child.emit("stale", &1).unwrap();
    server.io.of("/room-1").emit("fresh", &2).unwrap();
    c.expect(r#"42/room-1,["fresh",2]"#).await;
    c.assert_silent(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_after_connect_wait_for_a_slow_middleware() {
    let server = Server::start(config(), |io, _| {
        io.use_middleware(|_s: Socket| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        });
        io.of("/").on_connection(|s: Socket| async move {
            s.on_args("echo", |s: Socket, args, _ack| async move {
                s.emit_args("echo", args).unwrap();
            });
        });
    })
    .await;
    let mut c = server.client().await;
    c.send("40").await;
    c.send(r#"42["echo",1]"#).await;
    assert!(c.recv().await.starts_with(r#"40{"sid":"#));
    c.expect(r#"42["echo",1]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_closed_during_middleware_connects_nothing() {
    let events: Log<&'static str> = Log::new();
    let e = events.clone();
    let server = Server::start(config(), move |io, _| {
        let e1 = e.clone();
        io.use_middleware(move |s: Socket| {
            let e1 = e1.clone();
            async move {
                s.join("from-mw");
                s.engine_socket().closed().await;
                e1.push("middleware done");
                Ok(())
            }
        });
        let e2 = e.clone();
        io.of("/").on_connection(move |_s: Socket| {
            let e2 = e2.clone();
            async move { e2.push("connected") }
        });
    })
    .await;
    let mut c = server.client().await;
    c.send("40").await;
    c.close().await;
    events.wait_len(1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(events.items(), ["middleware done"]);
    assert!(server.io.of("/").sockets().is_empty());
    assert!(server.io.of("/").adapter().rooms().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_per_connection_are_bounded() {
    let server = Server::start(config().max_namespaces_per_client(2), |io, _| {
        io.of("/a");
        io.of("/b");
    })
    .await;
    let mut c = server.client().await;
    c.join("/").await;
    c.join("/a").await;
    c.send("40/b,").await;
    c.expect(r#"44/b,{"message":"Too many namespaces"}"#).await;
    // Leaving one makes room.
    c.send("41/a,").await;
    c.join("/b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_child_is_kept_while_a_socket_is_in_its_middleware() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let waiting: Log<()> = Log::new();
    let (g, w) = (gate.clone(), waiting.clone());
    let server = Server::start(config(), move |io, left| {
        let left = left.clone();
        let dynamic = io.dynamic(|name| name.starts_with("/dyn-"));
        dynamic.use_middleware(move |s: Socket| {
            let (g, w) = (g.clone(), w.clone());
            async move {
                if s.handshake().auth.get("wait").is_some() {
                    w.push(());
                    g.notified().await;
                }
                Ok(())
            }
        });
        dynamic.on_connection(move |s: Socket| {
            let left = left.clone();
            async move { support::track(&s, &left) }
        });
    })
    .await;
    let mut a = server.client().await;
    let ida = a.join("/dyn-1").await;
    // B is held in the middleware of /dyn-1 ...
    let mut b = server.client().await;
    b.send(r#"40/dyn-1,{"wait":true}"#).await;
    waiting.wait_len(1).await;
    // ... while the child's last connected socket leaves.
    a.send("41/dyn-1,").await;
    server.wait_left(&ida).await;
    gate.notify_one();
    let reply = b.recv().await;
    assert!(reply.starts_with(r#"40/dyn-1,{"sid":"#), "{reply}");
    let mut c = server.client().await;
    c.join("/dyn-1").await;
    // B and C share one namespace: a broadcast there reaches both.
    assert_eq!(server.io.of("/dyn-1").sockets().len(), 2);
    server.io.of("/dyn-1").emit("all", &1).unwrap();
    b.expect(r#"42/dyn-1,["all",1]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_during_middleware_leaves_nothing_behind() {
    let first: Log<socketio::Namespace> = Log::new();
    let f = first.clone();
    let server = Server::start(config(), move |io, _| {
        let dynamic = io.dynamic(|name| name.starts_with("/dyn-"));
        dynamic.use_middleware(move |s: Socket| {
            let f = f.clone();
            async move {
                if s.handshake().auth.get("hold").is_some() {
                    s.join("from-mw");
                    f.push(s.namespace());
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        });
    })
    .await;
    let mut c = server.client().await;
    c.send(r#"40/dyn-x,{"hold":1}"#).await;
    let stale = first.wait_len(1).await.remove(0);
    // The connection is closed with the CONNECT still in its middleware.
    c.send("4abc").await;
    c.expect_closed().await;
    // The middleware's room is gone, and so is the child: a new CONNECT
    // gets a new one.
    assert!(stale.adapter().rooms().is_empty());
    let mut c2 = server.client().await;
    c2.join("/dyn-x").await;
    assert_eq!(server.io.of("/dyn-x").sockets().len(), 1);
    assert!(stale.sockets().is_empty(), "the abandoned child was reused");
}

//! Handler shapes chosen by the closure's signature, what happens when the
//! arguments do not fit, per-event middlewares (`socket.use` in Node), the
//! error listeners, and typed per-socket and app-wide state.

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use socketio::{AckSender, Args, EventError, EventRejection, Socket, SocketIo, SocketIoConfig};
use support::{Log, QUIET, Server, config};

fn shapes(io: &SocketIo, got: &Log<String>) {
    let got = got.clone();
    io.on_connection(move |s: Socket| {
        let got = got.clone();
        async move {
            let g = got.clone();
            s.on("bare", move |s: Socket| {
                let g = g.clone();
                async move {
                    g.push("bare".into());
                    let _ = s.emit("bare-done", &());
                }
            });
            let g = got.clone();
            s.on("typed", move |_s: Socket, (msg, n): (String, u32)| {
                let g = g.clone();
                async move { g.push(format!("typed {msg} {n}")) }
            });
            s.on(
                "typed-ack",
                |_s: Socket, (a, b): (i64, i64), ack: AckSender| async move {
                    ack.send(&(a + b)).unwrap();
                },
            );
            let g = got.clone();
            s.on("raw", move |_s: Socket, args: Args| {
                let g = g.clone();
                async move { g.push(format!("raw {}", args.len())) }
            });
            s.on(
                "raw-ack",
                |_s: Socket, args: Args, ack: AckSender| async move {
                    ack.send_args(args).unwrap();
                },
            );
            let g = got.clone();
            s.on_error(move |_s, e| {
                let kind = match e {
                    EventError::InvalidArgs { .. } => "invalid",
                    EventError::Rejected { .. } => "rejected",
                    _ => "other",
                };
                g.push(format!("error {kind} {}", e.event()));
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closure_signature_picks_the_shape() {
    let got = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| shapes(io, &g)).await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"42["bare",1,2,3]"#).await;
    c.expect(r#"42["bare-done",null]"#).await;
    c.send(r#"42["typed","hi",7]"#).await;
    c.send(r#"425["typed-ack",2,3]"#).await;
    c.expect("435[5]").await;
    c.send(r#"42["raw",1,{"a":2}]"#).await;
    c.send(r#"426["raw-ack","x",[1]]"#).await;
    c.expect(r#"436["x",[1]]"#).await;
    let items = got.wait_len(3).await;
    assert_eq!(items, ["bare", "typed hi 7", "raw 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_do_not_fit_reach_the_error_listener_and_answer_the_ack() {
    let got = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| shapes(io, &g)).await;
    let (mut c, _) = server.joined("/").await;
    // No ack asked: the listener hears it, the client gets nothing.
    c.send(r#"42["typed","hi","not a number"]"#).await;
    got.wait_for("invalid typed", |i| i == "error invalid typed")
        .await;
    // An ack asked: answered with {"error": ...}, the handler did not run.
    c.send(r#"429["typed-ack","x"]"#).await;
    let frame = c.recv().await;
    let (kind, _, id, data) = support::parse(&frame);
    assert_eq!((kind, id), ('3', Some(9)), "{frame}");
    let data = data.unwrap();
    let msg = data[0]["error"].as_str().unwrap();
    assert!(msg.starts_with("invalid arguments"), "{frame}");
    got.wait_for("invalid typed-ack", |i| i == "error invalid typed-ack")
        .await;
    // The connection is still fine.
    c.send(r#"427["typed-ack",1,1]"#).await;
    c.expect("437[2]").await;
    c.assert_silent(QUIET).await;
}

fn guarded(io: &SocketIo, got: &Log<String>) {
    let got = got.clone();
    io.on_connection(move |s: Socket| {
        let got = got.clone();
        async move {
            // First: count; second: refuse "secret", rewrite "shout".
            let count = Arc::new(AtomicUsize::new(0));
            let n = count.clone();
            s.use_middleware(move |_s: Socket, ev| {
                n.fetch_add(1, Ordering::Relaxed);
                async move { Ok(ev) }
            });
            s.use_middleware(|_s: Socket, mut ev| async move {
                if ev.name == "secret" {
                    return Err(EventRejection::new("unauthorized event"));
                }
                if ev.name == "shout" {
                    let text: String = ev.args.get(0).unwrap_or_default();
                    ev.args = Args::one(&text.to_uppercase()).unwrap();
                }
                Ok(ev)
            });
            let g = got.clone();
            s.on_any(move |_s, event, _args| g.push(format!("any {event}")));
            let g = got.clone();
            s.on("secret", move |_s: Socket| {
                let g = g.clone();
                // A refused event must not get here (checked at the end).
                async move { g.push("secret handled".into()) }
            });
            s.on(
                "shout",
                move |_s: Socket, text: String, ack: AckSender| async move {
                    ack.send(&text).unwrap();
                },
            );
            s.on("count", move |_s: Socket, (): (), ack: AckSender| {
                let n = count.load(Ordering::Relaxed);
                async move { ack.send(&n).unwrap() }
            });
            s.on_error(|s, e| {
                // The app tells the client (as Node apps do from "error").
                let _ = s.emit("refused", &(e.event(), e.message()));
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_event_middlewares_pass_rewrite_or_refuse() {
    let got = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| guarded(io, &g)).await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"421["shout","hey"]"#).await;
    c.expect(r#"431["HEY"]"#).await;
    // Refused without an ack: the error listener runs, nothing else.
    c.send(r#"42["secret",1]"#).await;
    c.expect(r#"42["refused",["secret","unauthorized event"]]"#)
        .await;
    // Refused with an ack: the listener runs and the ack gets the error.
    c.send(r#"422["secret"]"#).await;
    c.expect(r#"42["refused",["secret","unauthorized event"]]"#)
        .await;
    c.expect(r#"432[{"error":"unauthorized event"}]"#).await;
    c.send(r#"423["count"]"#).await;
    c.expect("433[4]").await;
    // As in Node, on_any sees every event as it arrived (before the
    // middlewares); the refused handler never ran.
    assert_eq!(
        got.items(),
        ["any shout", "any secret", "any secret", "any count"]
    );
}

#[derive(Clone, Debug, PartialEq)]
struct User {
    name: String,
}

/// Not `Clone`, not `Serialize`: only reachable by reference.
struct Visits(Vec<String>);

#[derive(Clone)]
struct AppName(Arc<str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_and_app_state_reach_handlers() {
    let io = SocketIo::builder(SocketIoConfig::default())
        .state(AppName("demo".into()))
        .build()
        .unwrap();
    io.on_connection(|s: Socket| async move {
        let name: Option<String> = s.handshake().query("name").map(str::to_owned);
        s.extensions().insert(User {
            name: name.unwrap_or_default(),
        });
        s.extensions().insert(Visits(Vec::new()));
        s.on(
            "visit",
            |s: Socket, page: String, ack: AckSender| async move {
                let n = s
                    .extensions()
                    .with_mut(|v: &mut Visits| {
                        v.0.push(page);
                        v.0.len()
                    })
                    .unwrap();
                let user = s.extensions().get::<User>().unwrap();
                let app = s.state::<AppName>().unwrap();
                ack.send(&json!({"user": user.name, "visits": n, "app": &*app.0}))
                    .unwrap();
            },
        );
    });
    assert!(io.state::<AppName>().is_some());
    assert!(io.state::<User>().is_none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = io.clone();
    let task = tokio::spawn(async move { served.serve(listener, std::future::pending()).await });
    let mut c = support::Client::connect(addr, "name=ann", &[]).await;
    c.join("/").await;
    c.send(r#"421["visit","/a"]"#).await;
    c.expect(r#"431[{"user":"ann","visits":1,"app":"demo"}]"#)
        .await;
    c.send(r#"422["visit","/b"]"#).await;
    c.expect(r#"432[{"user":"ann","visits":2,"app":"demo"}]"#)
        .await;
    task.abort();
}

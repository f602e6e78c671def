//! Events: typed and raw handlers, ordering, catch-all listeners, and a
//! handler that awaits an ack from its own client (PROTOCOL.md §2.4).

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use socketio::{AckError, AckSender, Args, Socket};
use support::{Log, QUIET, Server, config, parse, track};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_handlers_take_tuples_or_a_single_value() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Msg {
        text: String,
        n: u32,
    }
    let got: Log<String> = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, left| {
        let left = left.clone();
        io.on_connection(move |s: Socket| {
            let (g, left) = (g.clone(), left.clone());
            async move {
                track(&s, &left);
                let g1 = g.clone();
                s.on("pair", move |_s: Socket, (a, b): (String, u32), _ack| {
                    let g = g1.clone();
                    async move { g.push(format!("pair {a} {b}")) }
                });
                let g2 = g.clone();
                s.on("one", move |_s: Socket, text: String, _ack| {
                    let g = g2.clone();
                    async move { g.push(format!("one {text}")) }
                });
                let g3 = g.clone();
                s.on("struct", move |_s: Socket, m: Msg, _ack| {
                    let g = g3.clone();
                    async move { g.push(format!("struct {} {}", m.text, m.n)) }
                });
                let g4 = g.clone();
                s.on("opt", move |_s: Socket, a: Option<u8>, _ack| {
                    let g = g4.clone();
                    async move { g.push(format!("opt {a:?}")) }
                });
                let g5 = g.clone();
                s.on("none", move |_s: Socket, (): (), _ack| {
                    let g = g5.clone();
                    async move { g.push("none".to_owned()) }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"42["pair","a",7]"#).await;
    c.send(r#"42["one","solo"]"#).await;
    c.send(r#"42["struct",{"text":"t","n":3}]"#).await;
    // Arguments that do not fit are dropped (logged), the connection stays.
    c.send(r#"42["pair","a","not a number"]"#).await;
    c.send(r#"42["opt",1]"#).await;
    c.send(r#"42["opt"]"#).await;
    c.send(r#"42["none"]"#).await;
    // A numeric event name is allowed (§2.2) and handled as its text.
    c.send(r#"42[12,"x"]"#).await;
    // Events without a handler are ignored.
    c.send(r#"42["nobody",1]"#).await;
    c.send(r#"42["one","end"]"#).await;
    let items = got
        .wait_until("events", |i| i.last().is_some_and(|l| l == "one end"))
        .await;
    assert_eq!(
        items,
        [
            "pair a 7",
            "one solo",
            "struct t 3",
            "opt Some(1)",
            "opt None",
            "none",
            "one end"
        ]
    );
    assert!(server.left.items().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_handler_gets_args_and_numeric_event_names() {
    let got: Log<(Vec<Value>, usize)> = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let g = g.clone();
            async move {
                let g1 = g.clone();
                s.on_args("raw", move |_s: Socket, args: Args, _ack| {
                    let g = g1.clone();
                    async move { g.push((args.values().to_vec(), args.binary().len())) }
                });
                let g2 = g.clone();
                s.on_args("12", move |_s: Socket, args: Args, _ack| {
                    let g = g2.clone();
                    async move { g.push((args.values().to_vec(), 12)) }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"42["raw",1,"2",{"3":[true]},null]"#).await;
    c.send(r#"42["raw"]"#).await;
    c.send(r#"42[12,"x"]"#).await;
    let items = got.wait_len(3).await;
    assert_eq!(
        items[0],
        (
            vec![json!(1), json!("2"), json!({"3":[true]}), Value::Null],
            0
        )
    );
    assert_eq!(items[1], (vec![], 0));
    assert_eq!(items[2], (vec![json!("x")], 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_handled_in_arrival_order_even_when_handlers_await() {
    let got: Log<u32> = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let g = g.clone();
            async move {
                s.on("n", move |_s: Socket, n: u32, _ack| {
                    let g = g.clone();
                    async move {
                        // Earlier events sleep longer: a concurrent dispatch would reorder.
                        tokio::time::sleep(Duration::from_millis(u64::from(10 - n) * 3)).await;
                        g.push(n);
                    }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    for n in 0..10 {
        c.send(&format!(r#"42["n",{n}]"#)).await;
    }
    assert_eq!(got.wait_len(10).await, (0..10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_any_and_on_any_outgoing_see_every_event() {
    let seen: Log<String> = Log::new();
    let s2 = seen.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let seen = s2.clone();
            async move {
                let a = seen.clone();
                s.on_any(move |_s, event, args| a.push(format!("in {event} {:?}", args.values())));
                let b = seen.clone();
                s.on_any_outgoing(move |_s, event, args| {
                    b.push(format!("out {event} {:?}", args.values()))
                });
                let c = seen.clone();
                s.on("hi", move |s: Socket, n: u32, _ack| {
                    let c = c.clone();
                    async move {
                        c.push(format!("handler {n}"));
                        s.emit("reply", &(n + 1)).unwrap();
                    }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"42["hi",1]"#).await;
    c.expect(r#"42["reply",2]"#).await;
    // Incoming events without a handler still reach on_any.
    c.send(r#"42["unhandled","x"]"#).await;
    let items = seen.wait_len(4).await;
    assert_eq!(
        items,
        [
            "in hi [Number(1)]",
            "handler 1",
            "out reply [Number(2)]",
            "in unhandled [String(\"x\")]"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_can_await_an_ack_from_its_own_client() {
    let got: Log<Result<String, AckError>> = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let g = g.clone();
            async move {
                s.on("ask", move |s: Socket, q: String, ack: AckSender| {
                    let g = g.clone();
                    async move {
                        let answer = s.emit_with_ack::<_, String>("question", &q).await;
                        g.push(answer.clone());
                        ack.send(&answer.unwrap_or_default()).unwrap();
                    }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"425["ask","name?"]"#).await;
    let frame = c.recv().await;
    let (kind, nsp, id, data) = parse(&frame);
    assert_eq!((kind, nsp.as_str()), ('2', "/"), "{frame}");
    assert_eq!(data, Some(json!(["question", "name?"])));
    let id = id.expect("an ack id");
    c.send(&format!(r#"43{id}["bob"]"#)).await;
    c.expect(r#"435["bob"]"#).await;
    assert_eq!(got.items(), [Ok("bob".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_waiting_on_its_own_client_ack_sees_the_disconnect() {
    // A long ack timeout: the handler must be released by the disconnect.
    let got: Log<Result<String, AckError>> = Log::new();
    let g = got.clone();
    let cfg = config().ack_timeout(Duration::from_secs(60));
    let server = Server::start(cfg, move |io, left| {
        let left = left.clone();
        io.on_connection(move |s: Socket| {
            let (g, left) = (g.clone(), left.clone());
            async move {
                track(&s, &left);
                s.on("ask", move |s: Socket, (): (), _ack| {
                    let g = g.clone();
                    async move { g.push(s.emit_with_ack::<_, String>("question", &1).await) }
                });
            }
        });
    })
    .await;
    let (mut c, id) = server.joined("/").await;
    c.send(r#"42["ask"]"#).await;
    assert_eq!(parse(&c.recv().await).0, '2');
    c.close().await;
    assert_eq!(got.wait_len(1).await, [Err(AckError::Disconnected)]);
    server.wait_left(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_removes_a_handler() {
    let got: Log<u32> = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let g = g.clone();
            async move {
                s.on("x", move |s: Socket, n: u32, _ack| {
                    let g = g.clone();
                    async move {
                        g.push(n);
                        s.off("x");
                        s.emit("done", &n).unwrap();
                    }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"42["x",1]"#).await;
    c.expect(r#"42["done",1]"#).await;
    c.send(r#"42["x",2]"#).await;
    c.assert_silent(QUIET).await;
    assert_eq!(got.items(), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_when_the_queue_is_full_and_reading_pauses() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let got: Log<u32> = Log::new();
    let (g, gt) = (got.clone(), gate.clone());
    let server = Server::start(config().max_queued_events(4), move |io, _| {
        io.on_connection(move |s: Socket| {
            let (g, gt) = (g.clone(), gt.clone());
            async move {
                s.on("n", move |_s: Socket, n: u32, _ack| {
                    let (g, gt) = (g.clone(), gt.clone());
                    async move {
                        if n == 0 {
                            gt.notified().await;
                        }
                        g.push(n);
                    }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    for n in 0..30 {
        c.send(&format!(r#"42["n",{n}]"#)).await;
    }
    gate.notify_one();
    assert_eq!(got.wait_len(30).await, (0..30).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_long_polling() {
    let server = Server::start(config(), |io, _| {
        io.on_connection(|s: Socket| async move {
            s.on("n", |s: Socket, n: u32, ack: AckSender| async move {
                s.emit("back", &n).unwrap();
                ack.send(&(n * 10)).unwrap();
            });
        });
    })
    .await;
    let p = support::Polling::open(server.addr).await;
    // CONNECT and events in one payload are handled in order.
    p.post("40\x1e42[\"n\",1]\x1e427[\"n\",2]").await;
    let mut packets: Vec<String> = Vec::new();
    while packets.len() < 4 {
        packets.extend(p.get().await.split('\x1e').map(str::to_owned));
    }
    assert!(packets[0].starts_with(r#"40{"sid":"#), "{packets:?}");
    assert_eq!(
        packets[1..],
        [r#"42["back",1]"#, r#"42["back",2]"#, "437[20]"]
    );
}

//! Disconnects and their reasons (PROTOCOL.md §2.5, §2.6): client and server
//! namespace disconnects, closing the connection, transport close, parse
//! errors, ping timeout, `disconnecting` vs `disconnect`, shutdown.

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use socketio::{DisconnectReason, Socket, SocketIoConfig};
use support::{Client, Log, Server, config, track};

/// `/` echoes `echo` events and records reasons; `/admin` exists (tracked too).
async fn server_with(cfg: SocketIoConfig) -> Server {
    Server::start(cfg, |io, left| {
        for nsp in ["/", "/admin"] {
            let left = left.clone();
            io.of(nsp).on_connection(move |s: Socket| {
                let left = left.clone();
                async move {
                    track(&s, &left);
                    s.on_args("echo", |s: Socket, args, _ack| async move {
                        s.emit_args("echo", args).unwrap();
                    });
                    s.on("leave-me", |s: Socket, close: bool, _ack| async move {
                        s.disconnect(close).await;
                    });
                }
            });
        }
    })
    .await
}

async fn server() -> Server {
    server_with(config()).await
}

fn fast_pings(ping_timeout_ms: u64) -> SocketIoConfig {
    let mut cfg = config();
    cfg.engine = cfg
        .engine
        .ping_interval(Duration::from_millis(200))
        .ping_timeout(Duration::from_millis(ping_timeout_ms));
    cfg
}

async fn assert_echo(c: &mut Client) {
    c.send(r#"42["echo","ok"]"#).await;
    c.expect(r#"42["echo","ok"]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_namespace_disconnect_keeps_the_connection() {
    let server = server_with(fast_pings(2000)).await;
    let (mut c, id) = server.joined("/").await;
    let admin = c.join("/admin").await;
    c.send("41").await;
    let l = server.wait_left(&id).await;
    assert_eq!(l.reason, DisconnectReason::ClientNamespaceDisconnect);
    assert_eq!(l.nsp, "/");
    // No reply; the other namespace and the heartbeat carry on.
    c.wait_ping().await;
    c.wait_ping().await;
    c.send(r#"42/admin,["echo",1]"#).await;
    c.expect(r#"42/admin,["echo",1]"#).await;
    // Leaving the last namespace keeps the connection too.
    c.send("41/admin,").await;
    assert_eq!(
        server.wait_left(&admin).await.reason,
        DisconnectReason::ClientNamespaceDisconnect
    );
    c.wait_ping().await;
    c.wait_ping().await;
    // And `/` can be joined again, with a new id.
    let again = c.join("/").await;
    assert_ne!(again, id);
    assert_echo(&mut c).await;
    assert!(server.io.engine().socket(&c.sid).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_namespace_disconnect_sends_disconnect_packet() {
    let server = server().await;
    let (mut c, id) = server.joined("/").await;
    let admin = c.join("/admin").await;
    server.socket("/admin", &admin).disconnect(false).await;
    c.expect("41/admin,").await;
    assert_eq!(
        server.wait_left(&admin).await.reason,
        DisconnectReason::ServerNamespaceDisconnect
    );
    // From inside a handler, too.
    c.send(r#"42["leave-me",false]"#).await;
    c.expect("41").await;
    assert_eq!(
        server.wait_left(&id).await.reason,
        DisconnectReason::ServerNamespaceDisconnect
    );
    // The connection stays.
    c.join("/").await;
    assert_echo(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_disconnect_with_close_ends_the_connection() {
    let server = server().await;
    let (mut c, id) = server.joined("/").await;
    let admin = c.join("/admin").await;
    let (mut other, _) = server.joined("/").await;
    c.send(r#"42["leave-me",true]"#).await;
    // Every namespace gets its DISCONNECT, then the connection closes.
    let mut got = vec![c.recv().await, c.recv().await];
    got.sort();
    assert_eq!(got, ["41", "41/admin,"]);
    c.expect_closed().await;
    for id in [&id, &admin] {
        assert_eq!(
            server.wait_left(id).await.reason,
            DisconnectReason::ServerNamespaceDisconnect
        );
    }
    assert_echo(&mut other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_close_disconnects_every_namespace() {
    let server = server().await;
    let (mut c, id) = server.joined("/").await;
    let admin = c.join("/admin").await;
    c.close().await;
    for id in [&id, &admin] {
        assert_eq!(
            server.wait_left(id).await.reason,
            DisconnectReason::TransportClose
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tcp_connection_is_a_transport_close() {
    let server = server().await;
    let (c, id) = server.joined("/").await;
    drop(c);
    let reason = server.wait_left(&id).await.reason;
    assert!(
        matches!(
            reason,
            DisconnectReason::TransportClose | DisconnectReason::TransportError
        ),
        "{reason:?}"
    );
}

/// Joins `/` (and `/admin`), sends `bad`, and checks: the connection closes,
/// every socket on it left with `ParseError`, and another client still works.
async fn parse_error_case(what: &str, bad: &[Bad<'_>]) {
    let server = server().await;
    let (mut other, _) = server.joined("/").await;
    let (mut c, id) = server.joined("/").await;
    for b in bad {
        match b {
            Bad::Text(t) => c.send(t).await,
            Bad::Binary(d) => c.send_binary(d).await,
        }
    }
    c.expect_closed().await;
    let l = server.wait_left(&id).await;
    assert_eq!(l.reason, DisconnectReason::ParseError, "{what}");
    assert_echo(&mut other).await;
    assert!(server.io.engine().socket(&c.sid).is_none(), "{what}");
}

enum Bad<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_unknown_type() {
    parse_error_case("4abc", &[Bad::Text("4abc")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_event_payload_not_an_array() {
    parse_error_case("42{}", &[Bad::Text("42{}")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_non_digit_ack_id() {
    parse_error_case(
        "42abc",
        &[Bad::Text(
            r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#,
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_other_invalid_payloads() {
    for bad in [
        r#"40"x""#,
        "42[]",
        r#"42["disconnect"]"#,
        "43{}",
        "41{}",
        "47",
    ] {
        parse_error_case(bad, &[Bad::Text(bad)]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_without_id_is_ignored() {
    // The reference ignores an ACK that names no id; the connection stays.
    let server = server().await;
    let (mut c, _) = server.joined("/").await;
    c.send(r#"43["x"]"#).await;
    c.send("43[]").await;
    assert_echo(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_event_for_an_unjoined_namespace() {
    parse_error_case("unjoined", &[Bad::Text(r#"42/admin,["echo",1]"#)]).await;
    parse_error_case("unknown", &[Bad::Text(r#"42/nope,["echo",1]"#)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_event_for_a_namespace_left() {
    let server = server().await;
    let (mut c, id) = server.joined("/").await;
    let admin = c.join("/admin").await;
    c.send("41").await;
    c.send(r#"42["echo",1]"#).await;
    c.expect_closed().await;
    assert_eq!(
        server.wait_left(&id).await.reason,
        DisconnectReason::ClientNamespaceDisconnect
    );
    assert_eq!(
        server.wait_left(&admin).await.reason,
        DisconnectReason::ParseError
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_duplicate_connect() {
    parse_error_case("duplicate CONNECT", &[Bad::Text("40")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_connect_error_from_the_client() {
    parse_error_case("CONNECT_ERROR", &[Bad::Text(r#"44{"message":"x"}"#)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_unexpected_binary_frame() {
    parse_error_case("binary", &[Bad::Binary(&[1, 2, 3])]).await;
    // One attachment too many.
    parse_error_case(
        "extra attachment",
        &[
            Bad::Text(r#"451-["echo",{"_placeholder":true,"num":0}]"#),
            Bad::Binary(&[1]),
            Bad::Binary(&[2]),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_text_while_attachments_are_expected() {
    parse_error_case(
        "text mid-packet",
        &[
            Bad::Text(
                r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            ),
            Bad::Binary(&[1]),
            Bad::Text(r#"42["echo",1]"#),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_error_too_many_attachments() {
    let placeholders: Vec<String> = (0..11)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect();
    let header = format!(r#"4511-["echo",{}]"#, placeholders.join(","));
    parse_error_case("11 attachments", &[Bad::Text(&header)]).await;
    // A placeholder beyond the declared count.
    parse_error_case(
        "bad placeholder",
        &[Bad::Text(r#"451-["echo",{"_placeholder":true,"num":1}]"#)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_attachments_are_accepted() {
    let server = server().await;
    let (mut c, _) = server.joined("/").await;
    let placeholders: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect();
    let header = format!(r#"4510-["echo",{}]"#, placeholders.join(","));
    c.send(&header).await;
    for i in 0..10u8 {
        c.send_binary(&[i]).await;
    }
    c.expect(&header).await;
    for i in 0..10u8 {
        c.expect_binary(&[i]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_disconnects_with_ping_timeout() {
    let server = server_with(fast_pings(200)).await;
    let (mut other, _) = server.joined("/").await;
    let mut c = Client::connect_no_pong(server.addr).await;
    let id = c.join("/").await;
    let admin = c.join("/admin").await;
    c.expect_closed().await;
    for id in [&id, &admin] {
        assert_eq!(
            server.wait_left(id).await.reason,
            DisconnectReason::PingTimeout
        );
    }
    assert!(c.pings() >= 1);
    // The client that answers pings is unaffected.
    assert_echo(&mut other).await;
    assert!(
        server
            .left
            .items()
            .iter()
            .all(|l| l.id == id || l.id == admin)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_sees_rooms_disconnect_sees_them_cleared() {
    let seen: Log<(String, DisconnectReason, Vec<String>, bool)> = Log::new();
    let s2 = seen.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let seen = s2.clone();
            async move {
                s.join(["r1", "r2"]);
                let a = seen.clone();
                s.on_disconnecting(move |s: Socket, reason| {
                    let a = a.clone();
                    async move {
                        let mut rooms = s.rooms();
                        rooms.sort();
                        // Still reachable while disconnecting.
                        let reachable = !s
                            .namespace()
                            .to("r1")
                            .fetch_sockets()
                            .await
                            .unwrap()
                            .is_empty();
                        a.push(("disconnecting".to_owned(), reason, rooms, reachable));
                    }
                });
                let b = seen.clone();
                s.on_disconnect(move |s: Socket, reason| {
                    let b = b.clone();
                    async move {
                        let reachable = !s
                            .namespace()
                            .to("r1")
                            .fetch_sockets()
                            .await
                            .unwrap()
                            .is_empty();
                        b.push((
                            "disconnect".to_owned(),
                            reason,
                            s.rooms(),
                            reachable || s.connected(),
                        ));
                    }
                });
            }
        });
    })
    .await;
    let (c, id) = server.joined("/").await;
    c.close().await;
    let items = seen.wait_len(2).await;
    let mut rooms = vec![id.clone(), "r1".to_owned(), "r2".to_owned()];
    rooms.sort();
    assert_eq!(
        items,
        [
            (
                "disconnecting".to_owned(),
                DisconnectReason::TransportClose,
                rooms,
                true
            ),
            (
                "disconnect".to_owned(),
                DisconnectReason::TransportClose,
                vec![],
                false
            ),
        ]
    );
    assert!(server.io.of("/").adapter().rooms().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_with_server_shutdown() {
    let mut server = server().await;
    let (mut a, ida) = server.joined("/").await;
    let (mut b, idb) = server.joined("/").await;
    let admin = b.join("/admin").await;
    server.shutdown().await;
    a.expect_closed().await;
    b.expect_closed().await;
    for id in [&ida, &idb, &admin] {
        assert_eq!(
            server.wait_left(id).await.reason,
            DisconnectReason::ServerShutdown
        );
    }
    assert_eq!(server.io.engine().session_count(), 0);
}

/// `SocketIo::close` (issue #12): each client gets a DISCONNECT then the
/// close, the server's pending ack fails with `Disconnected`, the handlers see
/// `server shutting down`, and no task of the engine is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_says_goodbye_fails_pending_acks_and_leaves_no_task() {
    let acks: Log<String> = Log::new();
    let asked = acks.clone();
    let mut server = Server::start(config(), move |io, left| {
        let left = left.clone();
        io.on_connection(move |s: Socket| {
            let (left, asked) = (left.clone(), asked.clone());
            async move {
                track(&s, &left);
                s.on("ask", move |s: Socket, _: serde_json::Value, _ack| {
                    let asked = asked.clone();
                    async move {
                        let r = s
                            .emit_with_ack::<_, serde_json::Value>("question", &1)
                            .await;
                        asked.push(format!("{r:?}"));
                    }
                });
            }
        });
    })
    .await;
    let (mut a, ida) = server.joined("/").await;
    let (mut b, idb) = server.joined("/").await;
    a.send(r#"42["ask"]"#).await;
    assert!(a.recv().await.starts_with(r#"420["question""#));
    let closing = server.io.clone();
    let closed = tokio::spawn(async move { closing.close().await });
    a.expect("41").await;
    b.expect("41").await;
    a.expect_closed().await;
    b.expect_closed().await;
    support::within("close", closed).await.unwrap();
    assert_eq!(acks.wait_len(1).await, vec!["Err(Disconnected)".to_owned()]);
    for id in [&ida, &idb] {
        assert_eq!(
            server.wait_left(id).await.reason,
            DisconnectReason::ServerShutdown
        );
    }
    assert_eq!(server.io.engine().session_count(), 0);
    assert_eq!(server.io.engine().task_count(), 0);
    // New handshakes are refused once closing.
    let (status, _) = support::http(server.addr, "GET", &server.url("transport=polling"), "").await;
    assert_eq!(status, 503);
    server.shutdown().await;
}

/// A `disconnect` handler that never returns cannot hold the close past
/// `shutdown_timeout`: its task is aborted, and nothing is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_is_bounded_by_shutdown_timeout() {
    let cfg = config().engine(
        engineio::EngineConfig::default()
            .path("/socket.io/")
            .shutdown_timeout(Duration::from_millis(500)),
    );
    let mut server = Server::start(cfg, |io, _| {
        io.on_connection(|s: Socket| async move {
            s.on_disconnect(|_s, _r| std::future::pending::<()>());
        });
    })
    .await;
    let (mut a, _) = server.joined("/").await;
    let started = tokio::time::Instant::now();
    support::within("close", server.io.close()).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "waited for the handler: {took:?}"
    );
    assert!(took < Duration::from_millis(3000), "bounded: {took:?}");
    a.expect_closed().await;
    assert_eq!(server.io.engine().task_count(), 0);
    server.shutdown().await;
}

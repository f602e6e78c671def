//! `SocketIo::stats`: every count goes up while clients hold something and
//! back to zero once they left (the counts the soak test of
//! `conformance/soak/` asserts on).
//!
//! One test only: the pending-ack count is kept per process, so nothing else
//! in this binary may emit with acks at the same time.

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use serde_json::Value;
use socketio::{AckError, AckSender, RecoveryConfig, ServerStats, Socket, SocketIo};
use support::{Client, Server, WAIT, config, parse, within};

/// Polls `io.stats()` until `pred` holds (fails after [`WAIT`]).
async fn wait_stats(io: &SocketIo, what: &str, pred: impl Fn(&ServerStats) -> bool) -> ServerStats {
    let last = std::sync::Mutex::new(ServerStats::default());
    let r = tokio::time::timeout(WAIT, async {
        loop {
            let s = io.stats();
            if pred(&s) {
                return s;
            }
            *last.lock().unwrap() = s;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    match r {
        Ok(s) => s,
        Err(_) => panic!(
            "stats: {what} not reached in {WAIT:?}; last {:?}",
            last.lock().unwrap()
        ),
    }
}

/// CONNECT to `nsp` (recovery on: the reply carries a pid too); the socket id.
async fn connect(c: &mut Client, nsp: &str) -> String {
    let prefix = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    c.send(&prefix).await;
    let reply = c.recv().await;
    let json: Value = serde_json::from_str(reply.strip_prefix(&prefix).unwrap()).unwrap();
    assert!(json["pid"].is_string(), "recovery on: {reply}");
    json["sid"].as_str().unwrap().to_owned()
}

/// Sends event `join` (room) with ack id `id` and waits for the ack.
async fn join(c: &mut Client, room: &str, id: u64) {
    c.send(&format!("42{id}[\"join\",\"{room}\"]")).await;
    c.expect(&format!("43{id}[]")).await;
}

#[tokio::test]
async fn counts_go_up_and_back_to_zero() {
    let recovery = RecoveryConfig::default().max_disconnection_duration(Duration::from_secs(1));
    let server = Server::start(config().connection_state_recovery(recovery), |io, left| {
        let left = left.clone();
        io.on_connection(move |s: Socket| {
            let left = left.clone();
            async move {
                support::track(&s, &left);
                s.on(
                    "join",
                    |s: Socket, room: String, ack: AckSender| async move {
                        s.join(room);
                        ack.send_many(&()).unwrap();
                    },
                );
            }
        });
        io.of("/custom").on_connection(|_s: Socket| async {});
    })
    .await;
    let io = server.io.clone();

    let idle = io.stats();
    assert_eq!(
        (idle.sessions, idle.websockets, idle.sockets, idle.rooms),
        (0, 0, 0, 0)
    );
    assert_eq!(
        (
            idle.pending_acks,
            idle.recovery_sessions,
            idle.recovery_packets
        ),
        (0, 0, 0)
    );
    assert_eq!(idle.namespaces, 2, "/ and /custom");
    let json = serde_json::to_value(&idle).unwrap();
    for key in ["sessions", "websockets", "sockets", "rooms", "pendingAcks"] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert!(json.get("recoverySessions").is_some() && json.get("recoveryPackets").is_some());

    // Two connections; b joins / and /custom. Sockets are counted per namespace;
    // their id-rooms are not counted as rooms.
    let mut a = server.client().await;
    let id_a = connect(&mut a, "/").await;
    let mut b = server.client().await;
    let id_b = connect(&mut b, "/").await;
    connect(&mut b, "/custom").await;
    let s = wait_stats(&io, "2 sessions, 3 sockets", |s| {
        s.sessions == 2 && s.sockets == 3
    })
    .await;
    assert_eq!((s.websockets, s.rooms, s.pending_acks), (2, 0, 0), "{s:?}");

    join(&mut a, "r1", 1).await;
    join(&mut b, "r1", 1).await;
    join(&mut b, "r2", 2).await;
    assert_eq!(io.stats().rooms, 2, "r1 and r2");

    // A server→client ack pending, then answered.
    let sa = server.socket("/", &id_a);
    let asked =
        tokio::spawn(async move { sa.timeout(WAIT).emit_with_ack::<_, Value>("q", &1).await });
    let (kind, _, ack_id, _) = parse(&a.recv().await);
    assert_eq!(kind, '2');
    wait_stats(&io, "1 pending ack", |s| s.pending_acks == 1).await;
    a.send(&format!("43{}[\"yes\"]", ack_id.unwrap())).await;
    let answer = within("the ack", asked).await.unwrap().unwrap();
    assert_eq!(answer, serde_json::json!(["yes"]));
    assert_eq!(io.stats().pending_acks, 0);

    // Another one pending when b's connection drops (no close packet): the
    // ack fails, b's sockets and r2 go, both sockets' sessions are kept.
    let sb = server.socket("/", &id_b);
    let asked =
        tokio::spawn(async move { sb.timeout(WAIT).emit_with_ack::<_, Value>("q", &2).await });
    let _ = b.recv().await;
    wait_stats(&io, "1 pending ack", |s| s.pending_acks == 1).await;
    drop(b);
    let r = within("the failed ack", asked).await.unwrap();
    assert!(matches!(r, Err(AckError::Disconnected)), "{r:?}");
    let s = wait_stats(&io, "b gone", |s| s.sessions == 1 && s.sockets == 1).await;
    assert_eq!(
        (s.rooms, s.pending_acks, s.recovery_sessions),
        (1, 0, 2),
        "{s:?}"
    );

    // A broadcast without ack is kept in the recovery log.
    io.to("r1").emit("news", &1).unwrap();
    let (kind, _, _, news) = parse(&a.recv().await);
    assert_eq!((kind, news.unwrap()[0].clone()), ('2', Value::from("news")));
    assert!(io.stats().recovery_packets >= 1);

    // a leaves cleanly (not kept); what recovery kept expires and is purged
    // without any further activity.
    a.send("41").await;
    a.close().await;
    let s = wait_stats(&io, "everything back to zero", |s| {
        (
            s.sessions,
            s.websockets,
            s.sockets,
            s.rooms,
            s.pending_acks,
            s.recovery_sessions,
            s.recovery_packets,
        ) == (0, 0, 0, 0, 0, 0, 0)
    })
    .await;
    assert_eq!(s.namespaces, 2);
}

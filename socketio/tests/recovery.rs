//! Connection state recovery: offsets on emitted events, sessions kept after
//! a recoverable disconnect, restored with the same id, rooms, data and the
//! missed events.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::Value;
use socketio::{ConnectError, RecoveryConfig, Socket, SocketIo};
use support::{Client, Left, Log, Server, config, track, within};

fn recovery_server_setup(io: &SocketIo, connected: &Log<(String, bool)>, left: &Log<Left>) {
    let connected = connected.clone();
    let left = left.clone();
    let io2 = io.clone();
    io.of("/").use_middleware(|socket: Socket| async move {
        // Refuses new sessions that ask for it: proves middlewares are skipped on recovery.
        if socket.handshake().auth.get("refuse").is_some() {
            return Err(ConnectError::new("refused"));
        }
        Ok(())
    });
    io.on_connection(move |socket: Socket| {
        let connected = connected.clone();
        let io = io2.clone();
        let left = left.clone();
        async move {
            track(&socket, &left);
            connected.push((socket.id().to_string(), socket.recovered()));
            if !socket.recovered() {
                socket.join("room");
                let _ = socket.set_data(&"kept");
            }
            socket.on("room-event", move |_s: Socket, n: u32, _ack| {
                let io = io.clone();
                async move {
                    let _ = io.to("room").emit("in-room", &n);
                }
            });
            socket.on(
                "whoami",
                |s: Socket, _: Value, ack: socketio::AckSender| async move {
                    let mut rooms = s.rooms();
                    rooms.sort();
                    let _ = ack.send(&serde_json::json!({
                        "rooms": rooms,
                        "data": s.data_value(),
                        "recovered": s.recovered(),
                    }));
                },
            );
        }
    });
}

/// CONNECT reply → (sid, pid).
async fn join_recoverable(c: &mut Client, auth: &str) -> (String, String) {
    c.send(&format!("40{auth}")).await;
    let reply = c.recv().await;
    let json: Value = serde_json::from_str(reply.strip_prefix("40").unwrap()).unwrap();
    (
        json["sid"].as_str().unwrap().to_owned(),
        json["pid"].as_str().unwrap().to_owned(),
    )
}

fn last_arg(frame: &str) -> (Value, String) {
    let (_, _, _, json) = support::parse(frame);
    let args = json.unwrap();
    let arr = args.as_array().unwrap();
    let offset = arr.last().unwrap().as_str().unwrap().to_owned();
    (args.clone(), offset)
}

#[tokio::test]
async fn recovers_id_rooms_data_and_missed_events_in_order() {
    let connected = Log::new();
    let c2 = connected.clone();
    let server = Server::start(
        config().connection_state_recovery(RecoveryConfig::default()),
        move |io, left| recovery_server_setup(io, &c2, left),
    )
    .await;

    let mut a = server.client().await;
    let (sid, pid) = join_recoverable(&mut a, "").await;
    let mut b = server.client().await;
    join_recoverable(&mut b, "").await;

    // A direct emit carries an offset as its last argument too (regression:
    // only broadcasts had one, so a client that got only direct events could
    // never recover).
    let direct_a = server.socket("/", &sid);
    let _ = direct_a.emit("hello", &"a");
    let (args, _) = last_arg(&a.recv().await);
    assert_eq!(args, serde_json::json!(["hello", "a", args[2].clone()]));

    // An event with an offset as its last argument.
    b.send(r#"42["room-event",1]"#).await;
    let frame = a.recv().await;
    let (args, offset) = last_arg(&frame);
    assert_eq!(args[0], "in-room");
    assert_eq!(args[1], 1);
    // b gets it too (same room); drain it.
    b.recv().await;

    // a's transport drops (a recoverable reason).
    a.close().await;
    server.wait_left(&sid).await;

    // Missed: two room events and one direct event.
    b.send(r#"42["room-event",2]"#).await;
    b.recv().await;
    b.send(r#"42["room-event",3]"#).await;
    b.recv().await;
    let direct = server.socket("/", &{
        let items = connected.items();
        items.last().unwrap().0.clone()
    });
    let _ = direct.emit("direct", &"to b only");
    b.recv().await;

    // Comes back with pid + offset: same id, replayed events in order; the
    // middleware (which would refuse) is skipped.
    let mut a2 = server.client().await;
    let auth = format!(r#"{{"refuse":true,"pid":"{pid}","offset":"{offset}"}}"#);
    let (sid2, pid2) = join_recoverable(&mut a2, &auth).await;
    assert_eq!(sid2, sid);
    assert_eq!(pid2, pid);
    for n in [2, 3] {
        let (args, _) = last_arg(&a2.recv().await);
        assert_eq!(args[0], "in-room");
        assert_eq!(args[1], n);
    }
    a2.send(r#"421["whoami"]"#).await;
    let ack = a2.recv().await;
    let (_, _, id, json) = support::parse(&ack);
    assert_eq!(id, Some(1));
    let info = &json.unwrap()[0];
    assert_eq!(info["recovered"], true);
    assert_eq!(info["data"], "kept");
    let mut want = vec!["room".to_owned(), sid.clone()];
    want.sort();
    assert_eq!(info["rooms"], serde_json::json!(want));
    assert!(connected.items().iter().any(|(id, rec)| *id == sid && *rec));
}

#[tokio::test]
async fn no_recovery_after_client_disconnect_or_without_offset_or_after_expiry() {
    let connected = Log::new();
    let c2 = connected.clone();
    let server = Server::start(
        config().connection_state_recovery(
            RecoveryConfig::default().max_disconnection_duration(Duration::from_millis(300)),
        ),
        move |io, left| recovery_server_setup(io, &c2, left),
    )
    .await;
    let mut b = server.client().await;
    join_recoverable(&mut b, "").await;

    // 1. An explicit namespace disconnect keeps nothing.
    let mut a = server.client().await;
    let (sid, pid) = join_recoverable(&mut a, "").await;
    b.send(r#"42["room-event",1]"#).await;
    let (_, offset) = last_arg(&a.recv().await);
    b.recv().await;
    a.send("41").await;
    server.wait_left(&sid).await;
    let auth = format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#);
    let (sid2, _) = join_recoverable(&mut a, &auth).await;
    assert_ne!(sid2, sid, "client namespace disconnect is not recoverable");

    // 2. A pid without offset gets a new id.
    a.close().await;
    server.wait_left(&sid2).await;
    let mut c = server.client().await;
    let (sid3, pid3) = join_recoverable(&mut c, &format!(r#"{{"pid":"{pid}"}}"#)).await;
    assert_ne!(sid3, sid2);

    // 3. After max_disconnection_duration the session is gone.
    b.send(r#"42["room-event",2]"#).await;
    let (_, offset3) = last_arg(&c.recv().await);
    b.recv().await;
    c.close().await;
    server.wait_left(&sid3).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut d = server.client().await;
    let auth = format!(r#"{{"pid":"{pid3}","offset":"{offset3}"}}"#);
    let (sid4, _) = within("reconnect", join_recoverable(&mut d, &auth)).await;
    assert_ne!(sid4, sid3, "expired session is not recovered");
}

#[tokio::test]
async fn recovery_off_adds_no_offset_and_no_pid() {
    let server = Server::plain().await;
    let (mut a, _id) = server.joined("/").await; // asserts the reply has only `sid`
    let s = server.io.of("/").sockets().pop().unwrap();
    let _ = s.emit("x", &1);
    assert_eq!(a.recv().await, r#"42["x",1]"#);
}

//! Rooms and broadcast operators: join/leave, `to` (union), `except`,
//! sender exclusion, bulk operations, and volatile delivery.

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{Client, Polling, QUIET, Server, WAIT, config};

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

/// Sends a marker to everyone on `/`, then checks that each client's next
/// frames are exactly `expected[i]` followed by the marker: nothing missing,
/// nothing duplicated, nothing extra.
async fn check_delivery(server: &Server, clients: &mut [&mut Client], expected: &[&[&str]]) {
    server.io.emit("end", &0).unwrap();
    for (c, want) in clients.iter_mut().zip(expected) {
        for w in *want {
            c.expect(w).await;
        }
        c.expect(r#"42["end",0]"#).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_and_rooms() {
    let server = Server::plain().await;
    let (_c, id) = server.joined("/").await;
    let s = server.socket("/", &id);
    assert_eq!(set(s.rooms()), set([id.clone()]));
    s.join("a");
    s.join(["b", "c"]);
    s.join(vec!["c".to_owned()]);
    assert_eq!(set(s.rooms()), set([id.as_str(), "a", "b", "c"]));
    s.leave("b");
    s.leave("not-in");
    assert_eq!(set(s.rooms()), set([id.as_str(), "a", "c"]));
    assert_eq!(
        set(server.io.of("/").adapter().rooms()),
        set([id.as_str(), "a", "c"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_is_a_union_without_duplicates_and_except_subtracts() {
    let server = Server::plain().await;
    let (mut a, ida) = server.joined("/").await;
    let (mut b, idb) = server.joined("/").await;
    let (mut ab, idab) = server.joined("/").await;
    let (mut none, _) = server.joined("/").await;
    server.socket("/", &ida).join("a");
    server.socket("/", &idb).join("b");
    server.socket("/", &idab).join(["a", "b", "muted"]);

    server.io.to("a").to("b").emit("x", &1).unwrap();
    server.io.to(["a", "b"]).emit("x", &2).unwrap();
    server.io.to("a").except("muted").emit("x", &3).unwrap();
    server.io.except("b").emit("x", &4).unwrap();
    server.io.to("nobody-here").emit("x", &5).unwrap();
    // A socket id is a room.
    server.io.to(idb.as_str()).emit("x", &6).unwrap();
    server
        .io
        .to("a")
        .except(ida.as_str())
        .emit("x", &7)
        .unwrap();
    check_delivery(
        &server,
        &mut [&mut a, &mut b, &mut ab, &mut none],
        &[
            &[
                r#"42["x",1]"#,
                r#"42["x",2]"#,
                r#"42["x",3]"#,
                r#"42["x",4]"#,
            ],
            &[r#"42["x",1]"#, r#"42["x",2]"#, r#"42["x",6]"#],
            &[r#"42["x",1]"#, r#"42["x",2]"#, r#"42["x",7]"#],
            &[r#"42["x",4]"#],
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_operators_exclude_the_sender_io_ones_do_not() {
    let server = Server::plain().await;
    let (mut me, idme) = server.joined("/").await;
    let (mut other, ido) = server.joined("/").await;
    let (mut outsider, _) = server.joined("/").await;
    let s = server.socket("/", &idme);
    s.join("r");
    server.socket("/", &ido).join("r");

    s.broadcast().emit("x", &"broadcast").unwrap();
    s.to("r").emit("x", &"socket.to").unwrap();
    s.except("r").emit("x", &"socket.except").unwrap();
    server.io.to("r").emit("x", &"io.to").unwrap();
    check_delivery(
        &server,
        &mut [&mut me, &mut other, &mut outsider],
        &[
            &[r#"42["x","io.to"]"#],
            &[
                r#"42["x","broadcast"]"#,
                r#"42["x","socket.to"]"#,
                r#"42["x","io.to"]"#,
            ],
            &[r#"42["x","broadcast"]"#, r#"42["x","socket.except"]"#],
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_stay_in_their_namespace() {
    let server = Server::start(config(), |io, _| {
        io.of("/other");
    })
    .await;
    let (mut c, id) = server.joined("/").await;
    let other_id = c.join("/other").await;
    server.socket("/", &id).join("r");
    server.socket("/other", &other_id).join("r");
    server.io.of("/other").to("r").emit("x", &1).unwrap();
    server.io.to("r").emit("x", &2).unwrap();
    c.expect(r#"42/other,["x",1]"#).await;
    c.expect(r#"42["x",2]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_cleared_on_disconnect() {
    let server = Server::plain().await;
    let (c, id) = server.joined("/").await;
    let (_c2, id2) = server.joined("/").await;
    server.socket("/", &id).join(["solo", "shared"]);
    server.socket("/", &id2).join("shared");
    c.close().await;
    server.wait_left(&id).await;
    assert_eq!(
        set(server.io.of("/").adapter().rooms()),
        set([id2.as_str(), "shared"])
    );
    let in_shared = server.io.to("shared").fetch_sockets().await.unwrap();
    assert_eq!(in_shared.len(), 1);
    assert_eq!(in_shared[0].id().to_string(), id2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_join_leave_and_disconnect_in_bulk() {
    let server = Server::plain().await;
    let (mut a, ida) = server.joined("/").await;
    let (mut b, idb) = server.joined("/").await;
    let (mut c, idc) = server.joined("/").await;
    server.socket("/", &ida).join("x");
    server.socket("/", &idb).join("x");

    let ids = |v: Vec<socketio::RemoteSocket>| set(v.iter().map(|s| s.id().to_string()));
    assert_eq!(
        ids(server.io.to("x").fetch_sockets().await.unwrap()),
        set([&*ida, &*idb])
    );
    assert_eq!(
        ids(server.io.fetch_sockets().await.unwrap()),
        set([&*ida, &*idb, &*idc])
    );
    assert_eq!(
        ids(server.io.except("x").fetch_sockets().await.unwrap()),
        set([&*idc])
    );

    server.io.to("x").sockets_join(["y", "z"]);
    assert_eq!(
        ids(server.io.to("y").fetch_sockets().await.unwrap()),
        set([&*ida, &*idb])
    );
    server.io.except("x").sockets_join("y");
    assert_eq!(
        ids(server.io.to("y").fetch_sockets().await.unwrap()),
        set([&*ida, &*idb, &*idc])
    );
    server.io.to(ida.as_str()).sockets_leave(["y", "x"]);
    assert_eq!(
        ids(server.io.to("y").fetch_sockets().await.unwrap()),
        set([&*idb, &*idc])
    );
    assert_eq!(
        ids(server.io.to("x").fetch_sockets().await.unwrap()),
        set([&*idb])
    );
    assert_eq!(set(server.socket("/", &ida).rooms()), set([&*ida, "z"]));

    // disconnect_sockets(false): DISCONNECT packets, connections stay.
    server.io.to("y").disconnect_sockets(false).await;
    b.expect("41").await;
    c.expect("41").await;
    for id in [&idb, &idc] {
        let l = server.wait_left(id).await;
        assert_eq!(
            l.reason,
            socketio::DisconnectReason::ServerNamespaceDisconnect
        );
    }
    assert_eq!(ids(server.io.fetch_sockets().await.unwrap()), set([&*ida]));
    let idb2 = b.join("/").await;
    c.join("/").await;

    // disconnect_sockets(true): DISCONNECT, then the connection closes.
    server.io.to(idb2.as_str()).disconnect_sockets(true).await;
    b.expect("41").await;
    b.expect_closed().await;
    // Everyone else is untouched.
    server.io.emit("still", &1).unwrap();
    a.expect(r#"42["still",1]"#).await;
    c.expect(r#"42["still",1]"#).await;
    server.io.disconnect_sockets(true).await;
    a.expect("41").await;
    a.expect_closed().await;
    c.expect("41").await;
    c.expect_closed().await;
    assert!(server.io.fetch_sockets().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_is_dropped_when_the_transport_cannot_write() {
    let server = Server::plain().await;
    let p = Polling::open(server.addr).await;
    p.post("40").await;
    let reply = p.get().await;
    let id = reply
        .strip_prefix(r#"40{"sid":""#)
        .and_then(|r| r.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("not a CONNECT reply: {reply}"))
        .to_owned();
    let (mut ws, _) = server.joined("/").await;
    let s = server.socket("/", &id);

    // No GET is pending: volatile emits are dropped, normal ones queue.
    assert!(!s.volatile().emit("v", &1).unwrap());
    server.io.volatile().emit("v", &2).unwrap();
    s.emit("n", &3).unwrap();
    // A volatile emit is dropped while something else is queued, too.
    assert!(!s.volatile().emit("v", &4).unwrap());
    assert_eq!(p.get().await, r#"42["n",3]"#);
    // The WebSocket client could take the volatile broadcast.
    ws.expect(r#"42["v",2]"#).await;

    // With a GET pending, a volatile emit goes out. The GET is in flight
    // on its own connection; retry until the server has it.
    let get = p.start_get();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !s.volatile().emit("v", &5).unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET never became pending"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        support::within("volatile GET", get).await.unwrap(),
        r#"42["v",5]"#
    );
    ws.assert_silent(QUIET).await;
}

/// A broadcast to the whole namespace goes to a shared list of its sockets
/// (`NsInner::all`): every join and every leave must be seen by the next
/// broadcast, none may reach a socket that left or miss one that joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_to_all_follows_every_join_and_leave() {
    let server = Server::plain().await;
    let (mut a, _ida) = server.joined("/").await;
    server.io.emit("n", &1).unwrap();
    a.expect(r#"42["n",1]"#).await;
    let (mut b, idb) = server.joined("/").await;
    server.io.emit("n", &2).unwrap();
    a.expect(r#"42["n",2]"#).await;
    b.expect(r#"42["n",2]"#).await;
    b.close().await;
    server.wait_left(&idb).await;
    server.io.emit("n", &3).unwrap();
    a.expect(r#"42["n",3]"#).await;
    let (mut c, _idc) = server.joined("/").await;
    server.io.emit("n", &4).unwrap();
    a.expect(r#"42["n",4]"#).await;
    c.expect(r#"42["n",4]"#).await;
    assert_eq!(server.io.of("/").sockets().len(), 2);
}

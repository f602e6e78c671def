//! The msgpack parser against a real server, spoken as raw Engine.IO over
//! WebSocket: one binary message per packet (a MessagePack map
//! `{type, nsp, data, id}`), what the handlers see, and hostile input —
//! every malformed packet closes its own session with `ParseError`, nothing
//! panics, and a client connected at the same time keeps getting its echo.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use socketio::packet::{BinaryPacket, Limits, PacketType, decode_msgpack};
use socketio::{Args, Binary, DisconnectReason, Parser, Socket, msgpack};
use support::{Client, Server, config, track};

/// `/` echoes `echo` (same args) and acks `ack` (same args); `/custom` exists.
async fn server() -> Server {
    Server::start(config().parser(Parser::Msgpack), |io, left| {
        let left = left.clone();
        io.of("/").on_connection(move |s: Socket| {
            let left = left.clone();
            async move {
                track(&s, &left);
                let auth = s.handshake().auth.clone();
                s.emit("auth", &auth).unwrap();
                s.on_args("echo", |s: Socket, args: Args, _ack| async move {
                    s.emit_args("echo", args).unwrap();
                });
                s.on_args("ack", |_s: Socket, args: Args, ack| async move {
                    ack.send_args(args).unwrap();
                });
                s.on(
                    "typed",
                    |s: Socket, (name, file, missing): (String, Binary, Option<u8>), _ack| async move {
                        s.emit_args("typed", Args::many(&(name, file.0.len(), missing.is_none())).unwrap()).unwrap();
                    },
                );
            }
        });
        io.of("/custom").on_connection(|_s: Socket| async {});
    })
    .await
}

/// A packet map as MessagePack bytes (binary values as placeholders into `bins`).
fn pack(v: &Value, bins: &[Bytes]) -> Vec<u8> {
    msgpack::encode(v, bins).unwrap()
}

fn unpack(bytes: &[u8]) -> BinaryPacket {
    decode_msgpack(bytes, &Limits::default()).unwrap()
}

/// CONNECT to `nsp` without auth (notepack's `undefined` as data, as the client sends it).
fn connect_packet(nsp: &str) -> Vec<u8> {
    let out = pack(
        &json!({"type": 0, "nsp": nsp, "data": msgpack::undefined()}),
        &[],
    );
    assert!(out.ends_with(&[b'd', b'a', b't', b'a', 0xd4, 0x00, 0x00]));
    out
}

async fn recv_packet(c: &mut Client) -> BinaryPacket {
    unpack(&c.recv_binary().await)
}

/// A client joined to `/`: the CONNECT reply and the `auth` event read.
async fn joined(server: &Server) -> (Client, String) {
    let mut c = server.client().await;
    c.send_binary(&connect_packet("/")).await;
    let reply = recv_packet(&mut c).await;
    assert_eq!(reply.packet.kind, PacketType::Connect);
    let sid = reply.packet.data.unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = recv_packet(&mut c).await;
    assert_eq!(auth.packet.data, Some(json!(["auth", {}])));
    (c, sid)
}

async fn assert_echo(c: &mut Client, tag: &str) {
    c.send_binary(&pack(
        &json!({"type": 2, "nsp": "/", "data": ["echo", tag]}),
        &[],
    ))
    .await;
    let back = recv_packet(c).await;
    assert_eq!(back.packet.data, Some(json!(["echo", tag])), "{tag}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_binary_and_undefined() {
    let server = server().await;
    let (mut c, _) = joined(&server).await;

    // Binary inline, nested; an unknown key (the 4.8 client's `options`) ignored.
    let bins = [Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[])];
    let sent = json!({
        "type": 2, "nsp": "/",
        "data": ["echo", {"f": {"_placeholder": true, "num": 0}}, [{"_placeholder": true, "num": 1}], 1.5],
        "options": {"compress": true},
    });
    c.send_binary(&pack(&sent, &bins)).await;
    let raw = c.recv_binary().await;
    // bin 8 of [1, 2, 3], inline in the one message.
    assert!(raw.windows(5).any(|w| w == [0xc4, 3, 1, 2, 3]), "{raw:x?}");
    let back = unpack(&raw);
    assert_eq!(back.packet.kind, PacketType::BinaryEvent);
    assert_eq!(back.attachments, bins);
    assert_eq!(back.packet.data, sent.get("data").cloned());

    // undefined (d4 00 00) goes back as undefined; an ack with binary.
    let ack = pack(
        &json!({"type": 2, "nsp": "/", "id": 7, "data": ["ack", 1, msgpack::undefined()]}),
        &[],
    );
    c.send_binary(&ack).await;
    let reply = c.recv_binary().await;
    assert!(reply.windows(3).any(|w| w == [0xd4, 0, 0]), "{reply:x?}");
    let reply = unpack(&reply);
    assert_eq!(reply.packet.kind, PacketType::Ack);
    assert_eq!(reply.packet.id, Some(7));
    assert_eq!(reply.packet.data, Some(json!([1, msgpack::undefined()])));

    // Typed handlers: Binary from `bin`, undefined read as None.
    let typed = pack(
        &json!({"type": 2, "nsp": "/", "data": ["typed", "f", {"_placeholder": true, "num": 0}, msgpack::undefined()]}),
        &[Bytes::from_static(b"abcd")],
    );
    c.send_binary(&typed).await;
    let got = recv_packet(&mut c).await;
    assert_eq!(got.packet.data, Some(json!(["typed", "f", 4, true])));

    // Server → client ack: the client's binary answer reaches the server.
    let s = server.io.of("/").sockets().pop().unwrap();
    let asked =
        tokio::spawn(async move { s.emit_with_ack::<_, (Binary,)>("q", &1).await.unwrap() });
    let q = recv_packet(&mut c).await;
    let id = q.packet.id.unwrap();
    c.send_binary(&pack(
        &json!({"type": 3, "nsp": "/", "id": id, "data": [{"_placeholder": true, "num": 0}]}),
        &[Bytes::from_static(&[9, 9])],
    ))
    .await;
    let (answer,) = support::within("the ack", asked).await.unwrap();
    assert_eq!(&answer.0[..], &[9, 9]);

    // An unknown namespace: CONNECT_ERROR {message}.
    c.send_binary(&connect_packet("/nope")).await;
    let err = recv_packet(&mut c).await;
    assert_eq!(err.packet.kind, PacketType::ConnectError);
    assert_eq!(err.packet.nsp, "/nope");
    assert_eq!(
        err.packet.data,
        Some(json!({"message": "Invalid namespace"}))
    );

    // A custom namespace with auth.
    c.send_binary(&pack(
        &json!({"type": 0, "nsp": "/custom", "data": {"token": "abc"}}),
        &[],
    ))
    .await;
    let ok = recv_packet(&mut c).await;
    assert_eq!(ok.packet.kind, PacketType::Connect);
    assert_eq!(ok.packet.nsp, "/custom");
    let id = ok.packet.data.unwrap()["sid"].as_str().unwrap().to_owned();
    let s = server.socket("/custom", &id);
    assert_eq!(s.handshake().auth, json!({"token": "abc"}));
}

/// MessagePack bytes of `{type: 2, nsp: "/", data: <value>}` with `value` given raw.
fn event_with_raw_data(value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x83, 0xa4, b't', b'y', b'p', b'e', 0x02];
    out.extend_from_slice(&[0xa3, b'n', b's', b'p', 0xa1, b'/']);
    out.extend_from_slice(&[0xa4, b'd', b'a', b't', b'a']);
    out.extend_from_slice(value);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packets_close_only_their_session() {
    let server = server().await;
    let (mut other, _) = joined(&server).await;

    let mut deep = vec![0x92, 0xa4, b'e', b'c', b'h', b'o'];
    deep.extend(std::iter::repeat_n(0x91, 10_000));
    deep.push(0xc0);
    let long_nsp = pack(
        &json!({"type": 0, "nsp": format!("/{}", "n".repeat(100 * 1024))}),
        &[],
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved marker 0xc1", vec![0xc1]),
        ("empty message", vec![]),
        ("truncated map", vec![0x83, 0xa4, b't', b'y']),
        ("trailing bytes", {
            let mut v = pack(&json!({"type": 2, "nsp": "/", "data": ["echo"]}), &[]);
            v.push(0xc0);
            v
        }),
        ("an array, not a map", pack(&json!([2, "/", ["echo"]]), &[])),
        ("a string, not a map", pack(&json!("42[\"echo\"]"), &[])),
        (
            "type missing",
            pack(&json!({"nsp": "/", "data": ["echo"]}), &[]),
        ),
        (
            "type a string",
            pack(&json!({"type": "2", "nsp": "/", "data": ["echo"]}), &[]),
        ),
        (
            "type 5 (no binary types)",
            pack(&json!({"type": 5, "nsp": "/", "data": ["echo"]}), &[]),
        ),
        (
            "type 2.5",
            pack(&json!({"type": 2.5, "nsp": "/", "data": ["echo"]}), &[]),
        ),
        (
            "type -1",
            pack(&json!({"type": -1, "nsp": "/", "data": ["echo"]}), &[]),
        ),
        (
            "nsp missing",
            pack(&json!({"type": 2, "data": ["echo"]}), &[]),
        ),
        (
            "nsp a number",
            pack(&json!({"type": 2, "nsp": 1, "data": ["echo"]}), &[]),
        ),
        (
            "nsp binary",
            pack(
                &json!({"type": 2, "nsp": {"_placeholder": true, "num": 0}, "data": ["echo"]}),
                &[Bytes::from_static(b"/")],
            ),
        ),
        (
            "event data a map",
            pack(&json!({"type": 2, "nsp": "/", "data": {"0": "echo"}}), &[]),
        ),
        (
            "event data a string",
            pack(&json!({"type": 2, "nsp": "/", "data": "echo"}), &[]),
        ),
        (
            "event data missing",
            pack(&json!({"type": 2, "nsp": "/"}), &[]),
        ),
        (
            "event name a map",
            pack(&json!({"type": 2, "nsp": "/", "data": [{}]}), &[]),
        ),
        (
            "event name binary",
            pack(
                &json!({"type": 2, "nsp": "/", "data": [{"_placeholder": true, "num": 0}]}),
                &[Bytes::from_static(b"echo")],
            ),
        ),
        (
            "reserved event name",
            pack(&json!({"type": 2, "nsp": "/", "data": ["disconnect"]}), &[]),
        ),
        (
            "ack data a map",
            pack(&json!({"type": 3, "nsp": "/", "id": 1, "data": {}}), &[]),
        ),
        (
            "disconnect with data",
            pack(&json!({"type": 1, "nsp": "/", "data": ["x"]}), &[]),
        ),
        (
            "connect data an array",
            pack(&json!({"type": 0, "nsp": "/custom", "data": [1]}), &[]),
        ),
        (
            "connect_error from a client",
            pack(
                &json!({"type": 4, "nsp": "/", "data": {"message": "x"}}),
                &[],
            ),
        ),
        (
            "id a string",
            pack(
                &json!({"type": 2, "nsp": "/", "id": "1", "data": ["echo"]}),
                &[],
            ),
        ),
        (
            "id negative",
            pack(
                &json!({"type": 2, "nsp": "/", "id": -1, "data": ["echo"]}),
                &[],
            ),
        ),
        (
            "id a float",
            pack(
                &json!({"type": 2, "nsp": "/", "id": 1.5, "data": ["echo"]}),
                &[],
            ),
        ),
        (
            "str 32 of 4 GiB declared",
            event_with_raw_data(&[0x92, 0xa1, b'e', 0xdb, 0xff, 0xff, 0xff, 0xff, b'x']),
        ),
        (
            "bin 32 of 4 GiB declared",
            event_with_raw_data(&[0x92, 0xa1, b'e', 0xc6, 0xff, 0xff, 0xff, 0xff, 1]),
        ),
        (
            "array 32 of 4 billion declared",
            event_with_raw_data(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xa1, b'e']),
        ),
        (
            "map 32 of 4 billion declared",
            event_with_raw_data(&[0x92, 0xa1, b'e', 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0]),
        ),
        (
            "ext 32 of 4 GiB declared",
            event_with_raw_data(&[0x92, 0xa1, b'e', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x00, 1]),
        ),
        ("nested 10 000 levels", event_with_raw_data(&deep)),
        ("CONNECT to a 100 KB namespace", long_nsp),
    ];
    for (what, bad) in cases {
        let (mut c, id) = joined(&server).await;
        c.send_binary(&bad).await;
        c.expect_closed().await;
        let left = server.wait_left(&id).await;
        assert_eq!(left.reason, DisconnectReason::ParseError, "{what}");
        assert!(server.io.engine().socket(&c.sid).is_none(), "{what}");
        assert_echo(&mut other, what).await;
    }

    // A text packet (the JSON parser's) on a msgpack server.
    let (mut c, id) = joined(&server).await;
    c.send(r#"42["echo","x"]"#).await;
    c.expect_closed().await;
    assert_eq!(
        server.wait_left(&id).await.reason,
        DisconnectReason::ParseError
    );
    assert_echo(&mut other, "after text").await;
    assert_eq!(server.io.of("/").sockets().len(), 1);
}

//! Binary events and acks (PROTOCOL.md §2.2, §3.2 cases 11 and 13):
//! placeholders in the header, attachments as separate binary frames.

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use socketio::{AckSender, Args, Binary, Socket};
use support::{Log, Server, config, parse};

const P0: &str = r#"{"_placeholder":true,"num":0}"#;
const P1: &str = r#"{"_placeholder":true,"num":1}"#;

fn echo_server(io: &socketio::SocketIo, _: &Log<support::Left>) {
    io.on_connection(|s: Socket| async move {
        s.on_args("message", |s: Socket, args: Args, _ack| async move {
            s.emit_args("message-back", args).unwrap();
        });
        s.on_args(
            "message-with-ack",
            |_s: Socket, args: Args, ack: AckSender| async move {
                ack.send_args(args).unwrap();
            },
        );
    });
    io.of("/admin").on_connection(|s: Socket| async move {
        s.on_args("message", |s: Socket, args: Args, _ack| async move {
            s.emit_args("message-back", args).unwrap();
        });
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_event_round_trip_suite_case_11() {
    let server = Server::start(config(), echo_server).await;
    let (mut c, _) = server.joined("/").await;
    c.send(&format!(r#"452-["message",{P0},{P1}]"#)).await;
    c.send_binary(&[1, 2, 3]).await;
    c.send_binary(&[4, 5, 6]).await;
    c.expect(&format!(r#"452-["message-back",{P0},{P1}]"#))
        .await;
    c.expect_binary(&[1, 2, 3]).await;
    c.expect_binary(&[4, 5, 6]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_ack_round_trip_suite_case_13() {
    let server = Server::start(config(), echo_server).await;
    let (mut c, _) = server.joined("/").await;
    c.send(&format!(r#"452-789["message-with-ack",{P0},{P1}]"#))
        .await;
    c.send_binary(&[1, 2, 3]).await;
    c.send_binary(&[4, 5, 6]).await;
    c.expect(&format!("462-789[{P0},{P1}]")).await;
    c.expect_binary(&[1, 2, 3]).await;
    c.expect_binary(&[4, 5, 6]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_on_a_namespace_with_placeholders_out_of_order() {
    let server = Server::start(config(), echo_server).await;
    let mut c = server.client().await;
    c.join("/admin").await;
    // Placeholders may name attachments in any order; raw arguments echo
    // them as received (same numbering, same attachment order), which
    // decodes to the same values.
    c.send(&format!(r#"452-/admin,["message",{P1},"x",{P0}]"#))
        .await;
    c.send_binary(b"zero").await;
    c.send_binary(b"one").await;
    c.expect(&format!(r#"452-/admin,["message-back",{P1},"x",{P0}]"#))
        .await;
    c.expect_binary(b"zero").await;
    c.expect_binary(b"one").await;
    // An empty attachment is still an attachment.
    c.send(&format!(r#"451-/admin,["message",{P0}]"#)).await;
    c.send_binary(&[]).await;
    c.expect(&format!(r#"451-/admin,["message-back",{P0}]"#))
        .await;
    c.expect_binary(&[]).await;
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Upload {
    name: String,
    parts: Vec<Binary>,
    meta: Meta,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    thumb: Option<Binary>,
    size: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_handlers_receive_binary_and_nested_binary() {
    let got: Log<String> = Log::new();
    let g = got.clone();
    let server = Server::start(config(), move |io, _| {
        io.on_connection(move |s: Socket| {
            let g = g.clone();
            async move {
                let g1 = g.clone();
                s.on(
                    "file",
                    move |_s: Socket, (name, data): (String, Binary), _ack| {
                        let g = g1.clone();
                        async move { g.push(format!("file {name} {:?}", &data.0[..])) }
                    },
                );
                let g2 = g.clone();
                s.on("upload", move |_s: Socket, up: Upload, ack: AckSender| {
                    let g = g2.clone();
                    async move {
                        g.push(format!(
                            "upload {} {:?} {:?} {}",
                            up.name,
                            up.parts.iter().map(|p| p.0.to_vec()).collect::<Vec<_>>(),
                            up.meta.thumb.as_ref().map(|t| t.0.to_vec()),
                            up.meta.size
                        ));
                        ack.send(&up.parts.len()).unwrap();
                    }
                });
            }
        });
    })
    .await;
    let (mut c, _) = server.joined("/").await;
    c.send(&format!(r#"451-["file","a.bin",{P0}]"#)).await;
    c.send_binary(&[0xde, 0xad]).await;
    let p2 = r#"{"_placeholder":true,"num":2}"#;
    c.send(&format!(
        r#"453-4["upload",{{"name":"u","parts":[{P0},{P1}],"meta":{{"thumb":{p2},"size":9}}}}]"#
    ))
    .await;
    c.send_binary(b"p0").await;
    c.send_binary(b"p1").await;
    c.send_binary(b"th").await;
    c.expect("434[2]").await;
    assert_eq!(
        got.wait_len(2).await,
        [
            "file a.bin [222, 173]",
            "upload u [[112, 48], [112, 49]] Some([116, 104]) 9"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_emits_binary_with_placeholders_in_order() {
    let server = Server::plain().await;
    let (mut c, id) = server.joined("/").await;
    let socket = server.socket("/", &id);

    socket.emit("one", &Binary::from(vec![1u8, 2])).unwrap();
    c.expect(&format!(r#"451-["one",{P0}]"#)).await;
    c.expect_binary(&[1, 2]).await;

    let up = Upload {
        name: "n".to_owned(),
        parts: vec![Binary::from(vec![1u8]), Binary::from(vec![2u8])],
        meta: Meta {
            thumb: Some(Binary::from(Bytes::from_static(b"t"))),
            size: 3,
        },
    };
    socket.emit("nested", &up).unwrap();
    let p2 = r#"{"_placeholder":true,"num":2}"#;
    c.expect(&format!(
        r#"453-["nested",{{"name":"n","parts":[{P0},{P1}],"meta":{{"thumb":{p2},"size":3}}}}]"#
    ))
    .await;
    c.expect_binary(&[1]).await;
    c.expect_binary(&[2]).await;
    c.expect_binary(b"t").await;

    // Several arguments, binary among them, on a namespace broadcast.
    let args = Args::many(&("a", Binary::from(vec![9u8]), 5, Binary::from(vec![8u8]))).unwrap();
    server.io.of("/").all().emit_args("many", args).unwrap();
    c.expect(&format!(r#"452-["many","a",{P0},5,{P1}]"#)).await;
    c.expect_binary(&[9]).await;
    c.expect_binary(&[8]).await;

    // A plain Vec<u8> is a JSON array, not an attachment.
    socket.emit("plain", &vec![1u8, 2]).unwrap();
    c.expect(r#"42["plain",[1,2]]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_acks_both_ways() {
    let server = Server::start(config(), |io, _| {
        io.on_connection(|s: Socket| async move {
            s.on("get", |_s: Socket, n: u8, ack: AckSender| async move {
                ack.send_many(&(Binary::from(vec![n; 2]), "meta")).unwrap();
            });
        });
    })
    .await;
    let (mut c, id) = server.joined("/").await;

    // Server → client BINARY_ACK.
    c.send(r#"4211["get",7]"#).await;
    c.expect(&format!(r#"461-11[{P0},"meta"]"#)).await;
    c.expect_binary(&[7, 7]).await;

    // Client → server BINARY_ACK resolves emit_with_ack.
    let socket = server.socket("/", &id);
    let task = tokio::spawn(async move {
        socket
            .emit_with_ack::<_, (Binary, String)>("want", &Binary::from(vec![1u8]))
            .await
    });
    let frame = c.recv().await;
    let (kind, _, ack_id, data) = parse(&frame);
    assert_eq!(kind, '5', "{frame}");
    assert_eq!(
        data,
        Some(json!(["want", {"_placeholder": true, "num": 0}]))
    );
    c.expect_binary(&[1]).await;
    let ack_id = ack_id.unwrap();
    c.send(&format!(r#"461-{ack_id}[{P0},"ok"]"#)).await;
    c.send_binary(&[5, 6]).await;
    let (bin, text) = task.await.unwrap().unwrap();
    assert_eq!((&bin.0[..], text.as_str()), (&[5u8, 6][..], "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_over_long_polling_is_base64() {
    let server = Server::start(config(), echo_server).await;
    let p = support::Polling::open(server.addr).await;
    p.post("40").await;
    assert!(p.get().await.starts_with("40{"));
    // `bAQID` = bytes 01 02 03.
    p.post(&format!("451-[\"message\",{P0}]\x1ebAQID")).await;
    assert_eq!(
        p.get().await,
        format!("451-[\"message-back\",{P0}]\x1ebAQID")
    );
}

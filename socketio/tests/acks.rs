//! Acknowledgements both ways (PROTOCOL.md §2.4): client→server acks,
//! `emit_with_ack` with its answer, timeout and disconnect, and broadcasts
//! with acks.

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
use socketio::{AckError, AckSender, Args, Socket};
use support::{Client, Log, QUIET, Server, config, parse};

async fn ack_server() -> Server {
    Server::start(config(), |io, _| {
        io.of("/admin").on_connection(|s: Socket| async move {
            s.on_args(
                "echo",
                |_s: Socket, args: Args, ack: AckSender| async move {
                    ack.send_args(args).unwrap();
                },
            );
        });
    })
    .await
}

/// Installs ack-answering handlers on `/` (replacing the tracking one).
fn main_handlers(io: &socketio::SocketIo, left: &Log<support::Left>) {
    let left = left.clone();
    io.on_connection(move |s: Socket| {
        let left = left.clone();
        async move {
            support::track(&s, &left);
            s.on_args(
                "echo",
                |_s: Socket, args: Args, ack: AckSender| async move {
                    assert!(ack.is_requested());
                    ack.send_args(args).unwrap();
                },
            );
            s.on(
                "sum",
                |_s: Socket, (a, b): (i64, i64), ack: AckSender| async move {
                    ack.send(&(a + b)).unwrap();
                },
            );
            s.on("many", |_s: Socket, (): (), ack: AckSender| async move {
                ack.send_many(&(1, "two", [3])).unwrap();
            });
            s.on("nothing", |_s: Socket, (): (), ack: AckSender| async move {
                ack.send_args(Args::none()).unwrap();
            });
            s.on(
                "no-ack-asked",
                |s: Socket, (): (), ack: AckSender| async move {
                    assert!(!ack.is_requested());
                    // Sending is a no-op.
                    ack.send(&1).unwrap();
                    s.emit("done", &()).unwrap();
                },
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_to_server_acks_carry_the_id_back() {
    let server = Server::start(config(), main_handlers).await;
    let (mut c, _) = server.joined("/").await;
    // The official suite's case 12.
    c.send(r#"42456["echo",1,"2",{"3":[false]}]"#).await;
    c.expect(r#"43456[1,"2",{"3":[false]}]"#).await;
    c.send(r#"4212["sum",2,3]"#).await;
    c.expect("4312[5]").await;
    c.send(r#"420["many"]"#).await;
    c.expect(r#"430[1,"two",[3]]"#).await;
    c.send(r#"427["nothing"]"#).await;
    c.expect("437[]").await;
    c.send(r#"42["no-ack-asked"]"#).await;
    c.expect(r#"42["done",null]"#).await;
    c.assert_silent(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_on_a_custom_namespace() {
    let server = ack_server().await;
    let mut c = server.client().await;
    c.join("/admin").await;
    c.send(r#"42/admin,13["echo","bar"]"#).await;
    c.expect(r#"43/admin,13["bar"]"#).await;
}

/// Runs `f` on the server socket in a task; returns its result handle.
fn spawn_on<T: Send + 'static, F>(
    socket: Socket,
    f: impl FnOnce(Socket) -> F,
) -> tokio::task::JoinHandle<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
{
    tokio::spawn(f(socket))
}

/// Reads an EVENT with an ack id; returns the id and the data array.
async fn recv_ack_request(c: &mut Client) -> (u64, Value) {
    let frame = c.recv().await;
    let (kind, _nsp, id, data) = parse(&frame);
    assert_eq!(kind, '2', "{frame}");
    (
        id.unwrap_or_else(|| panic!("no ack id: {frame}")),
        data.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_resolves_with_the_client_answer() {
    let server = Server::plain().await;
    let (mut c, id) = server.joined("/").await;
    let socket = server.socket("/", &id);
    let task = spawn_on(socket.clone(), |s| async move {
        s.emit_with_ack::<_, (String, u32)>("q", &json!({"a":1}))
            .await
    });
    let (ack_id, data) = recv_ack_request(&mut c).await;
    // Node: ids count from 0 per namespace.
    assert_eq!(ack_id, 0);
    assert_eq!(data, json!(["q", {"a":1}]));
    // An ack for an unknown id is ignored.
    c.send(r#"4399["nope"]"#).await;
    c.send(&format!(r#"43{ack_id}["yes",2]"#)).await;
    assert_eq!(task.await.unwrap(), Ok(("yes".to_owned(), 2)));

    // A second one gets the next id; a single value parses as itself.
    let task = spawn_on(socket.clone(), |s| async move {
        s.emit_with_ack::<_, String>("q2", &1).await
    });
    let (ack_id, _) = recv_ack_request(&mut c).await;
    assert_eq!(ack_id, 1);
    // A duplicate answer is ignored.
    c.send(&format!(r#"43{ack_id}["one"]"#)).await;
    c.send(&format!(r#"43{ack_id}["two"]"#)).await;
    assert_eq!(task.await.unwrap(), Ok("one".to_owned()));

    // An answer that does not fit the type is a decode error.
    let task = spawn_on(socket, |s| async move {
        s.emit_with_ack::<_, u32>("q3", &1).await
    });
    let (ack_id, _) = recv_ack_request(&mut c).await;
    c.send(&format!(r#"43{ack_id}["not a number"]"#)).await;
    assert!(matches!(task.await.unwrap(), Err(AckError::Decode(_))));
    assert!(server.left.items().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_times_out() {
    let server = Server::plain().await;
    let (mut c, id) = server.joined("/").await;
    let socket = server.socket("/", &id);
    let task = spawn_on(socket.clone(), |s| async move {
        s.timeout(Duration::from_millis(100))
            .emit_with_ack::<_, Value>("q", &1)
            .await
    });
    let (ack_id, _) = recv_ack_request(&mut c).await;
    assert_eq!(task.await.unwrap(), Err(AckError::Timeout));
    // A late answer is ignored and the socket keeps working.
    c.send(&format!(r#"43{ack_id}["late"]"#)).await;
    socket.emit("after", &1).unwrap();
    c.expect(r#"42["after",1]"#).await;

    // The configured default applies without `timeout()`.
    let cfg = config().ack_timeout(Duration::from_millis(100));
    let server = Server::start(cfg, |_, _| {}).await;
    let (mut c, id) = server.joined("/").await;
    let task = spawn_on(server.socket("/", &id), |s| async move {
        s.emit_with_ack::<_, Value>("q", &1).await
    });
    recv_ack_request(&mut c).await;
    assert_eq!(task.await.unwrap(), Err(AckError::Timeout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_fails_with_disconnected_when_the_client_leaves() {
    let server = Server::plain().await;

    // The client leaves the namespace.
    let (mut c, id) = server.joined("/").await;
    let socket = server.socket("/", &id);
    let task = spawn_on(socket.clone(), |s| async move {
        s.emit_with_ack::<_, Value>("q", &1).await
    });
    recv_ack_request(&mut c).await;
    c.send("41").await;
    assert_eq!(task.await.unwrap(), Err(AckError::Disconnected));
    // Emitting on the gone socket fails at once.
    assert!(matches!(
        socket.emit_with_ack::<_, Value>("q", &1).await,
        Err(AckError::Send(_))
    ));
    assert!(socket.emit("x", &1).is_err());

    // The client closes the connection.
    let (mut c, id) = server.joined("/").await;
    let task = spawn_on(server.socket("/", &id), |s| async move {
        s.emit_with_ack::<_, Value>("q", &1).await
    });
    recv_ack_request(&mut c).await;
    c.close().await;
    assert_eq!(task.await.unwrap(), Err(AckError::Disconnected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_with_acks_collects_answers_and_reports_missing() {
    let server = Server::plain().await;
    let (mut a, ida) = server.joined("/").await;
    let (mut b, idb) = server.joined("/").await;
    let (mut silent, ids) = server.joined("/").await;
    let io = server.io.clone();
    let task = tokio::spawn(async move {
        io.timeout(Duration::from_millis(500))
            .emit_args_with_ack("q", Args::one(&"all").unwrap())
            .await
    });
    let (id_a, data) = recv_ack_request(&mut a).await;
    assert_eq!(data, json!(["q", "all"]));
    let (id_b, _) = recv_ack_request(&mut b).await;
    let (id_s, _) = recv_ack_request(&mut silent).await;
    // One packet for all: the same id everywhere.
    assert_eq!((id_a, id_b), (id_s, id_s));
    b.send(&format!(r#"43{id_b}["from b"]"#)).await;
    a.send(&format!(r#"43{id_a}["from a",1]"#)).await;
    let res = task.await.unwrap();
    let mut got: Vec<(String, Vec<Value>)> = res
        .responses
        .iter()
        .map(|(id, args)| (id.to_string(), args.values().to_vec()))
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (ida.clone(), vec![json!("from a"), json!(1)]),
        (idb.clone(), vec![json!("from b")]),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, want);
    assert_eq!(
        res.missing
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>(),
        [ids]
    );

    // The typed form: all answers parsed, or Timeout if one is missing.
    let io = server.io.clone();
    let task = tokio::spawn(async move {
        io.to(ida.as_str())
            .to(idb.as_str())
            .timeout(Duration::from_secs(5))
            .emit_with_ack::<_, u32>("n", &0)
            .await
    });
    let (id_a, _) = recv_ack_request(&mut a).await;
    let (id_b, _) = recv_ack_request(&mut b).await;
    a.send(&format!("43{id_a}[1]")).await;
    b.send(&format!("43{id_b}[2]")).await;
    let mut all = task.await.unwrap().unwrap();
    all.sort();
    assert_eq!(all, [1, 2]);

    let io = server.io.clone();
    let task = tokio::spawn(async move {
        io.timeout(Duration::from_millis(200))
            .emit_with_ack::<_, u32>("n", &0)
            .await
    });
    let (id_a, _) = recv_ack_request(&mut a).await;
    a.send(&format!("43{id_a}[1]")).await;
    assert_eq!(task.await.unwrap(), Err(AckError::Timeout));
    recv_ack_request(&mut b).await;
    recv_ack_request(&mut silent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_with_acks_counts_a_leaving_socket_as_missing() {
    let server = Server::plain().await;
    let (mut a, ida) = server.joined("/").await;
    let (mut b, idb) = server.joined("/").await;
    let io = server.io.clone();
    let task = tokio::spawn(async move {
        io.timeout(Duration::from_secs(30))
            .emit_args_with_ack("q", Args::none())
            .await
    });
    let (id_a, _) = recv_ack_request(&mut a).await;
    recv_ack_request(&mut b).await;
    a.send(&format!("43{id_a}[]")).await;
    b.close().await;
    // Resolved by the disconnect, long before the 30 s timeout.
    let res = support::within("broadcast acks", task).await.unwrap();
    assert_eq!(res.responses.len(), 1);
    assert_eq!(res.responses[0].0.to_string(), ida);
    assert_eq!(
        res.missing
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>(),
        [idb]
    );
}

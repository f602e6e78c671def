//! socketioxide (default settings, axum as its docs show) with the same
//! events as `conformance-server`'s namespace `/`, for `bench/run.sh`:
//! - on connect: emit `auth` with the CONNECT auth payload (`{}` if none),
//!   as conformance-server does, so every server does the same work per connect;
//! - `echo` (args…): ack with the same args;
//! - `join` (room): join, then ack with no args;
//! - `bcast` (room, payload): emit `msg` with payload to the room, sender included;
//! - `ping-all` (n, payload): n times emit `msg` with payload to all sockets of `/`.
//!
//! `socketioxide-server [--port 3000]` prints `listening on 127.0.0.1:PORT`.

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

fn on_connect(socket: SocketRef, io: SocketIo, auth: Value) {
    socket.emit("auth", &auth).ok();
    // `Data<Value>` is the first argument; the bench sends exactly one.
    socket.on("echo", async |Data::<Value>(arg), ack: AckSender| {
        ack.send(&arg).ok();
    });
    socket.on(
        "join",
        async |socket: SocketRef, Data::<String>(room), ack: AckSender| {
            socket.join(room);
            ack.send(&()).ok();
        },
    );
    let io_b = io.clone();
    socket.on(
        "bcast",
        async move |Data::<(String, Value)>((room, payload))| {
            io_b.to(room).emit("msg", &payload).await.ok();
        },
    );
    socket.on(
        "ping-all",
        async move |Data::<(u64, Value)>((n, payload))| {
            for _ in 0..n.min(100_000) {
                io.emit("msg", &payload).await.ok();
            }
        },
    );
}

fn port_arg() -> Result<u16, String> {
    let mut port = 3000;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse().map_err(|e| format!("--port {value}: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_arg()?;
    let (layer, io) = SocketIo::new_layer();
    let io2 = io.clone();
    // `Data<Value>` on connect is the CONNECT auth payload, `{}` if none.
    io.ns("/", async move |socket: SocketRef, Data::<Value>(auth)| {
        on_connect(socket, io2.clone(), auth);
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

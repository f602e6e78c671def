//! The smallest Socket.IO server: hyper 1.x only, your own accept loop.
//!
//! Every request under `/socket.io/` goes to `io.handle`; anything else
//! gets a 404 (your routes would go there). The `echo` event answers its
//! ack with what it received.
//!
//! ```sh
//! cargo run -p socketio-examples --example hyper
//! ```
//! (`SocketIo::serve(listener, shutdown)` does the same loop for you.)

use std::convert::Infallible;

use engineio::ResponseBody;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketio::{AckSender, Socket, SocketIo, SocketIoConfig};

fn port() -> u16 {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--port"), Some(p)) => p.parse().unwrap_or(3000),
        _ => 3000,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let io = SocketIo::new(SocketIoConfig::default())?;
    io.on_connection(|socket: Socket| async move {
        socket.on(
            "echo",
            |_s: Socket, (msg,): (Value,), ack: AckSender| async move {
                let _ = ack.send(&msg);
            },
        );
    });

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port())).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _peer) = listener.accept().await?;
        let io = io.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let io = io.clone();
            async move {
                if io.matches(&req) {
                    return Ok::<_, Infallible>(io.handle(req).await);
                }
                let mut res = Response::new(ResponseBody::new("not found".into()));
                *res.status_mut() = StatusCode::NOT_FOUND;
                Ok(res)
            }
        });
        tokio::spawn(async move {
            // `with_upgrades` lets WebSocket connections through.
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

//! `conformance-server`: the server the Node conformance tests and the
//! benchmarks drive.
//!
//! ```text
//! conformance-server [--port 3000] [--ping-interval 25000] [--ping-timeout 20000]
//!                    [--max-payload 1000000] [--connect-timeout 45000] [--log-level info]
//! ```
//! - `/engine.io/`: plain Engine.IO, CORS any origin; every message is echoed
//!   back, except the text `server-close`, which makes the server close the session.
//! - `/socket.io/`: Socket.IO, CORS any origin; see `app.rs`.
//!
//! Prints `listening on 127.0.0.1:PORT` once ready; exits on SIGTERM / SIGINT.

use std::time::Duration;

use engineio::{Cors, EngineConfig, EngineIo, Message};
use socketio::SocketIoConfig;

mod app;

#[derive(Debug)]
struct Args {
    port: u16,
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
    connect_timeout: u64,
    log_level: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 3000,
        ping_interval: 25_000,
        ping_timeout: 20_000,
        max_payload: 1_000_000,
        connect_timeout: 45_000,
        log_level: "info".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|e| bad(&e))?,
            "--ping-interval" => args.ping_interval = value.parse().map_err(|e| bad(&e))?,
            "--ping-timeout" => args.ping_timeout = value.parse().map_err(|e| bad(&e))?,
            "--max-payload" => args.max_payload = value.parse().map_err(|e| bad(&e))?,
            "--connect-timeout" => args.connect_timeout = value.parse().map_err(|e| bad(&e))?,
            "--log-level" => args.log_level = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn engine_app(args: &Args) -> Result<EngineIo, engineio::Error> {
    let config = EngineConfig::default()
        .ping_interval(Duration::from_millis(args.ping_interval))
        .ping_timeout(Duration::from_millis(args.ping_timeout))
        .max_payload(args.max_payload)
        .cors(Cors::any());
    EngineIo::new(config, |socket, mut incoming| async move {
        while let Some(msg) = incoming.recv().await {
            if matches!(&msg, Message::Text(t) if t == "server-close") {
                socket.close();
                break;
            }
            if socket.send(msg).is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let engine = match engine_app(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let io = match app::socketio_app(
        SocketIoConfig::default()
            .engine(
                EngineConfig::default()
                    .path("/socket.io/")
                    .ping_interval(Duration::from_millis(args.ping_interval))
                    .ping_timeout(Duration::from_millis(args.ping_timeout))
                    .max_payload(args.max_payload)
                    .cors(Cors::any()),
            )
            .connect_timeout(Duration::from_millis(args.connect_timeout)),
    ) {
        Ok(io) => io,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("conformance-server: bind: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on {addr}");
    let router = {
        let engine = engine.clone();
        let io = io.clone();
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let engine = engine.clone();
            let io = io.clone();
            async move {
                if engine.matches(&req) {
                    return Ok::<_, std::convert::Infallible>(engine.handle(req).await);
                }
                if io.matches(&req) {
                    return Ok(io.handle(req).await);
                }
                let mut res = http::Response::new(engineio::ResponseBody::default());
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                Ok(res)
            }
        })
    };
    let result = engineio::serve(listener, router, shutdown_signal()).await;
    engine.shutdown();
    io.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `chat-demo`: a real-time chat web app on the `socketio` crate and hyper,
//! with all state in memory.
//!
//! ```text
//! chat-demo [--host 127.0.0.1] [--port 3000] [--client-dir <dir>] [--log-level info]
//! ```
//! `PORT` sets the port when `--port` is not given; `--port 0` picks a free
//! one. `RUST_LOG` overrides `--log-level`. Prints
//! `chat-demo listening on http://HOST:PORT` once ready; stops on Ctrl-C / SIGTERM.
//!
//! # Layout
//! - `chat/`: the chat as a pure state machine (users, rooms, history, rate
//!   limits, input rules), unit tested with an explicit clock.
//! - `server.rs`: the Socket.IO wiring (middleware, events, emits).
//! - `web.rs`: HTTP routing and the static page (`static/`, embedded); the
//!   client bundle is served by `socketio` (`serve_client`) from
//!   `--client-dir` (default `chat-demo/node_modules/socket.io-client/dist`).
//!
//! # Limits
//! Messages ≤ 2000 characters, 10 per 5 s per user; ≤ 100 rooms of ≤ 100
//! kept messages (worst case ~80 MB of history); ≤ 20 rooms per user;
//! ≤ 10 000 connections; request bodies / WebSocket messages ≤ 100 kB.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod chat;
mod server;
mod web;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use engineio::EngineConfig;
use socketio::{SocketIo, SocketIoConfig};

const USAGE: &str = "usage: chat-demo [--host 127.0.0.1] [--port 3000] [--client-dir <dir>] [--log-level info]\n\
                     PORT=<port> is used when --port is not given; --port 0 picks a free port.";

#[derive(Debug, PartialEq)]
struct Options {
    host: String,
    port: u16,
    client_dir: PathBuf,
    log_level: String,
}

/// Parses the flags (`args` without the program name) and `PORT`.
fn parse_args(
    args: impl IntoIterator<Item = String>,
    env_port: Option<String>,
) -> Result<Options, String> {
    let mut opts = Options {
        host: "127.0.0.1".to_owned(),
        port: 3000,
        client_dir: PathBuf::from(web::DEFAULT_CLIENT_DIR),
        log_level: "info".to_owned(),
    };
    let mut port = None;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        let value = inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
        match name.as_str() {
            "--host" => opts.host = value,
            "--port" => port = Some(value),
            "--client-dir" => opts.client_dir = PathBuf::from(value),
            "--log-level" => opts.log_level = value,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if let Some(p) = port.or(env_port) {
        opts.port = p
            .trim()
            .parse()
            .map_err(|e| format!("invalid port {p:?}: {e}"))?;
    }
    Ok(opts)
}

/// Waits for Ctrl-C or SIGTERM.
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

fn socketio_config(client_dir: &std::path::Path) -> SocketIoConfig {
    let config = SocketIoConfig::default().engine(
        EngineConfig::default()
            .path("/socket.io/")
            .max_payload(100_000)
            .max_sessions(10_000),
    );
    // A missing bundle is logged, not fatal: the page then says what to do.
    if client_dir.join("socket.io.js").is_file() {
        config.serve_client(client_dir)
    } else {
        tracing::error!(
            dir = %client_dir.display(),
            "socket.io client bundle not found: run `npm ci` in chat-demo/ \
             (or pass --client-dir <dir>); the page cannot connect without it"
        );
        config
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chat-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&opts.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let io = match SocketIo::new(socketio_config(&opts.client_dir)) {
        Ok(io) => io,
        Err(e) => {
            eprintln!("chat-demo: {e}");
            return ExitCode::from(2);
        }
    };
    server::install(&io);

    let listener = match tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "chat-demo: cannot listen on {}:{}: {e}",
                opts.host, opts.port
            );
            return ExitCode::FAILURE;
        }
    };
    let addr: SocketAddr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chat-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("chat-demo listening on http://{addr}");
    let _ = std::io::stdout().flush();

    let router = {
        let io = io.clone();
        hyper::service::service_fn(move |req| web::route(req, io.clone()))
    };
    // On SIGTERM the transports are dropped (`io.shutdown()`), not closed with
    // a goodbye (`io.close()`): the browsers then show "reconnecting" and come
    // back by themselves when the demo restarts. The engine's close still
    // waits (bounded) until none of its tasks is left.
    let close = {
        let io = io.clone();
        async move {
            tracing::info!("shutting down");
            io.shutdown();
            io.engine().close().await;
        }
    };
    let options =
        engineio::ServeOptions::default().shutdown_timeout(io.engine().config().shutdown_timeout);
    let result =
        engineio::serve_with_close(listener, router, shutdown_signal(), options, close).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_and_env() {
        let o = parse_args(args(&[]), None).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 3000));
        assert!(o.client_dir.ends_with("socket.io-client/dist"));
        assert_eq!(
            parse_args(args(&[]), Some("4000".into())).unwrap().port,
            4000
        );
        // The flag wins over PORT.
        let o = parse_args(
            args(&["--port", "0", "--host", "0.0.0.0"]),
            Some("4000".into()),
        )
        .unwrap();
        assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 0));
        let o = parse_args(args(&["--port=5000", "--client-dir", "/x"]), None).unwrap();
        assert_eq!((o.port, o.client_dir), (5000, PathBuf::from("/x")));
        assert!(parse_args(args(&["--port"]), None).is_err());
        assert!(parse_args(args(&["--port", "99999"]), None).is_err());
        assert!(parse_args(args(&["--bogus", "1"]), None).is_err());
        assert!(parse_args(args(&[]), Some("x".into())).is_err());
        assert!(parse_args(args(&["--help"]), None).is_err());
    }
}

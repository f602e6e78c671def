//! `chat-demo`: a real-time chat web app on the `socketio` crate and hyper,
//! with all state in memory.
//!
//! ```text
//! chat-demo [--host 127.0.0.1] [--port 3000] [--client-dir <dir>] [--log-level info]
//!           [--admin-password-hash <bcrypt>] [--admin-user admin]
//!           [--admin-origin https://admin.socket.io] [--admin-mode development|production]
//! ```
//! `PORT` sets the port when `--port` is not given; `--port 0` picks a free
//! one. `RUST_LOG` overrides `--log-level`. `--admin-password-hash` (or
//! `CHAT_ADMIN_PASSWORD_HASH`) turns on the Socket.IO Admin UI's namespace
//! `/admin` with basic auth (user `--admin-user`), and allows the UI's origin
//! (`--admin-origin`) with credentials; see the README. Prints
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
                     \x20         [--admin-password-hash <bcrypt>] [--admin-user admin]\n\
                     \x20         [--admin-origin https://admin.socket.io] [--admin-mode development|production]\n\
                     PORT=<port> is used when --port is not given; --port 0 picks a free port.\n\
                     CHAT_ADMIN_PASSWORD_HASH=<bcrypt> is used when --admin-password-hash is not given.";

/// The Socket.IO Admin UI's namespace, when a password hash is given.
#[derive(Debug, PartialEq)]
struct Admin {
    user: String,
    password_hash: String,
    origin: String,
    mode: socketio::AdminMode,
}

#[derive(Debug, PartialEq)]
struct Options {
    host: String,
    port: u16,
    client_dir: PathBuf,
    log_level: String,
    admin: Option<Admin>,
}

/// Parses the flags (`args` without the program name), `PORT` and
/// `CHAT_ADMIN_PASSWORD_HASH`.
fn parse_args(
    args: impl IntoIterator<Item = String>,
    env_port: Option<String>,
    env_admin_hash: Option<String>,
) -> Result<Options, String> {
    let mut opts = Options {
        host: "127.0.0.1".to_owned(),
        port: 3000,
        client_dir: PathBuf::from(web::DEFAULT_CLIENT_DIR),
        log_level: "info".to_owned(),
        admin: None,
    };
    let mut port = None;
    let mut admin_hash = None;
    let mut admin = Admin {
        user: "admin".to_owned(),
        password_hash: String::new(),
        origin: "https://admin.socket.io".to_owned(),
        mode: socketio::AdminMode::Development,
    };
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
            "--admin-password-hash" => admin_hash = Some(value),
            "--admin-user" => admin.user = value,
            "--admin-origin" => admin.origin = value,
            "--admin-mode" => {
                admin.mode = match value.as_str() {
                    "development" => socketio::AdminMode::Development,
                    "production" => socketio::AdminMode::Production,
                    _ => return Err(format!("unknown admin mode {value:?}\n{USAGE}")),
                }
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if let Some(hash) = admin_hash.or(env_admin_hash).filter(|h| !h.is_empty()) {
        admin.password_hash = hash;
        opts.admin = Some(admin);
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

fn socketio_config(client_dir: &std::path::Path, admin: Option<&Admin>) -> SocketIoConfig {
    let mut engine = EngineConfig::default()
        .path("/socket.io/")
        .max_payload(100_000)
        .max_sessions(10_000);
    if let Some(admin) = admin {
        // The Admin UI is served from another origin and sends credentials
        // (the chat page itself is same-origin and needs no CORS).
        engine = engine.cors(engineio::Cors::origins([admin.origin.clone()]).credentials(true));
    }
    let config = SocketIoConfig::default().engine(engine);
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
    let opts = match parse_args(
        std::env::args().skip(1),
        std::env::var("PORT").ok(),
        std::env::var("CHAT_ADMIN_PASSWORD_HASH").ok(),
    ) {
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

    let io = match SocketIo::new(socketio_config(&opts.client_dir, opts.admin.as_ref())) {
        Ok(io) => io,
        Err(e) => {
            eprintln!("chat-demo: {e}");
            return ExitCode::from(2);
        }
    };
    server::install(&io);
    if let Some(admin) = &opts.admin {
        let config = socketio::AdminConfig::default()
            .basic_auth(admin.user.clone(), admin.password_hash.clone())
            .mode(admin.mode);
        if let Err(e) = io.instrument(config) {
            eprintln!("chat-demo: admin UI: {e}");
            return ExitCode::from(2);
        }
        tracing::info!(user = %admin.user, origin = %admin.origin, "admin UI namespace /admin on");
    }

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
        let o = parse_args(args(&[]), None, None).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 3000));
        assert!(o.client_dir.ends_with("socket.io-client/dist"));
        assert_eq!(
            parse_args(args(&[]), Some("4000".into()), None)
                .unwrap()
                .port,
            4000
        );
        // The flag wins over PORT.
        let o = parse_args(
            args(&["--port", "0", "--host", "0.0.0.0"]),
            Some("4000".into()),
            None,
        )
        .unwrap();
        assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 0));
        let o = parse_args(args(&["--port=5000", "--client-dir", "/x"]), None, None).unwrap();
        assert_eq!((o.port, o.client_dir), (5000, PathBuf::from("/x")));
        assert!(parse_args(args(&["--port"]), None, None).is_err());
        assert!(parse_args(args(&["--port", "99999"]), None, None).is_err());
        assert!(parse_args(args(&["--bogus", "1"]), None, None).is_err());
        assert!(parse_args(args(&[]), Some("x".into()), None).is_err());
        assert!(parse_args(args(&["--help"]), None, None).is_err());
        assert_eq!(o.admin, None);
    }

    #[test]
    fn admin_flags_and_env() {
        const HASH: &str = "$2a$04$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5my";
        assert_eq!(
            parse_args(args(&[]), None, Some(String::new()))
                .unwrap()
                .admin,
            None
        );
        let o = parse_args(args(&[]), None, Some(HASH.into())).unwrap();
        assert_eq!(
            o.admin,
            Some(Admin {
                user: "admin".into(),
                password_hash: HASH.into(),
                origin: "https://admin.socket.io".into(),
                mode: socketio::AdminMode::Development,
            })
        );
        let o = parse_args(
            args(&[
                "--admin-password-hash",
                HASH,
                "--admin-user",
                "ops",
                "--admin-origin",
                "http://localhost:8080",
                "--admin-mode",
                "production",
            ]),
            None,
            Some("ignored: the flag wins".into()),
        )
        .unwrap();
        let admin = o.admin.unwrap();
        assert_eq!(
            (
                admin.user.as_str(),
                admin.password_hash.as_str(),
                admin.origin.as_str()
            ),
            ("ops", HASH, "http://localhost:8080")
        );
        assert_eq!(admin.mode, socketio::AdminMode::Production);
        // Without a hash the other admin flags change nothing.
        assert_eq!(
            parse_args(args(&["--admin-user", "ops"]), None, None)
                .unwrap()
                .admin,
            None
        );
        assert!(parse_args(args(&["--admin-mode", "x"]), None, None).is_err());
    }
}

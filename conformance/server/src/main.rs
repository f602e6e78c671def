//! `conformance-server`: the server the Node conformance tests and the
//! benchmarks drive.
//!
//! ```text
//! conformance-server [--port 3000] [--ping-interval 25000] [--ping-timeout 20000]
//!                    [--max-payload 1000000] [--connect-timeout 45000] [--log-level info]
//!                    [--recovery]  (connection state recovery on: 120 s, middlewares skipped)
//!                    [--recovery-duration ms]   (the same with that duration)
//!                    [--redis redis://127.0.0.1:6379]  (Redis adapter, default app)
//!                    [--redis-adapter classic|sharded|streams]  (default classic; with classic or
//!                     sharded, --redis redis+cluster://host:port,host:port reaches a Redis Cluster)
//!                    [--parser json|msgpack]   (packet parser of every namespace, default app)
//!                    [--allow-eio3]  (Engine.IO v3 / Socket.IO v2 clients too, both paths)
//!                    [--per-message-deflate THRESHOLD]  (WebSocket permessage-deflate, both paths)
//!                    [--deflate-window-bits 8..15] [--deflate-client-window-bits 8..15]
//!                     (its server_max_window_bits / client_max_window_bits limits, default 15)
//!                    [--deflate-context-takeover MAX]  (context takeover for up to MAX connections)
//!                    [--shutdown-timeout 10000] [--shutdown-mode drop|goodbye]  (on SIGTERM)
//!                    [--admin] [--admin-user NAME --admin-password-hash BCRYPT] [--admin-readonly]
//!                    [--admin-mode development|production] [--admin-server-id ID]
//!                    [--admin-stats-interval ms]
//! conformance-server --app client-suites [--port-a 3000] [--port-b 3210] [--log-level info]
//! ```
//! - `/engine.io/`: plain Engine.IO, CORS any origin; every message is echoed
//!   back, except the text `server-close`, which makes the server close the session.
//! - `/socket.io/`: Socket.IO, CORS any origin; see `app.rs`.
//! - `GET /stats`: what the Socket.IO app holds, as JSON; see `stats.rs`.
//! - With `--admin` (or any `--admin-*` flag): the Socket.IO Admin UI's
//!   namespace `/admin` (`SocketIo::instrument`; auth off unless
//!   `--admin-user` and `--admin-password-hash` are given; development mode
//!   unless `--admin-mode production`), and `/socket.io/` then allows
//!   credentialed CORS from any origin that asks (the origin reflected), as
//!   the hosted UI needs.
//!
//! Prints `listening on 127.0.0.1:PORT` once ready (with `--redis`: once the
//! adapter's subscriptions are live); exits on SIGTERM / SIGINT.
//!
//! `--app client-suites` serves instead what the official clients' own test
//! suites expect (see [`client_suites`]) and prints
//! `listening on 127.0.0.1:PORT_A 127.0.0.1:PORT_B`; the other options do not apply.

use std::time::Duration;

use engineio::{Cors, EngineConfig, EngineIo, Message};
use socketio::SocketIoConfig;

mod app;
mod client_suites;
mod cluster;
mod stats;

#[derive(Debug)]
struct Args {
    port: u16,
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
    connect_timeout: u64,
    log_level: String,
    /// `default` or `client-suites`.
    app: String,
    port_a: u16,
    port_b: u16,
    /// Connection state recovery for the default app (`--recovery-duration ms`).
    recovery_ms: Option<u64>,
    /// Redis adapter URL (`--redis`).
    redis: Option<String>,
    /// Which Redis adapter (`--redis-adapter`).
    redis_adapter: RedisAdapterKind,
    /// Bound of the graceful close on SIGTERM (`--shutdown-timeout ms`).
    shutdown_timeout: u64,
    /// On SIGTERM, `goodbye` (`SocketIo::close`: every client gets a
    /// DISCONNECT, `io server disconnect`, and does not reconnect) or `drop`
    /// (the default: transports dropped, as Node's `io.close()`, so clients
    /// reconnect to the restarted server); both bounded and leaving no task.
    goodbye: bool,
    /// The Socket.IO packet parser (`--parser json|msgpack`).
    parser: socketio::Parser,
    /// Serve Engine.IO v3 clients too (`--allow-eio3`, a flag without value).
    allow_eio3: bool,
    /// The Admin UI's namespace (`--admin` and the `--admin-*` flags).
    admin: Option<socketio::AdminConfig>,
    admin_user: Option<String>,
    admin_password_hash: Option<String>,
    /// WebSocket permessage-deflate with this threshold in bytes
    /// (`--per-message-deflate 1024`); off when absent.
    deflate: Option<usize>,
    /// `--deflate-window-bits N`: `PerMessageDeflate::server_max_window_bits`.
    deflate_window_bits: Option<u8>,
    /// `--deflate-client-window-bits N`: `PerMessageDeflate::client_max_window_bits`.
    deflate_client_window_bits: Option<u8>,
    /// `--deflate-context-takeover MAX`: `PerMessageDeflate::context_takeover`.
    deflate_context_takeover: Option<usize>,
}

/// `--redis-adapter`: the Redis adapter of `--redis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisAdapterKind {
    /// `@socket.io/redis-adapter` (pub/sub).
    Classic,
    /// `@socket.io/redis-adapter`'s sharded pub/sub mode.
    Sharded,
    /// `@socket.io/redis-streams-adapter`.
    Streams,
}

/// Turns connection state recovery on when `--recovery-duration` was given.
trait WithRecovery {
    fn with_recovery(self, ms: Option<u64>) -> Self;
}

impl WithRecovery for SocketIoConfig {
    fn with_recovery(self, ms: Option<u64>) -> Self {
        match ms {
            Some(ms) => self.connection_state_recovery(
                socketio::RecoveryConfig::default()
                    .max_disconnection_duration(Duration::from_millis(ms)),
            ),
            None => self,
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 3000,
        ping_interval: 25_000,
        ping_timeout: 20_000,
        max_payload: 1_000_000,
        connect_timeout: 45_000,
        log_level: "info".to_owned(),
        app: "default".to_owned(),
        port_a: 3000,
        port_b: 3210,
        recovery_ms: None,
        redis: None,
        redis_adapter: RedisAdapterKind::Classic,
        shutdown_timeout: 10_000,
        goodbye: false,
        parser: socketio::Parser::Json,
        allow_eio3: false,
        admin: None,
        admin_user: None,
        admin_password_hash: None,
        deflate: None,
        deflate_window_bits: None,
        deflate_client_window_bits: None,
        deflate_context_takeover: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--allow-eio3" {
            args.allow_eio3 = true;
            continue;
        }
        if flag == "--admin" || flag == "--admin-readonly" {
            let admin = args.admin.take().unwrap_or_default();
            args.admin = Some(if flag == "--admin-readonly" {
                admin.readonly(true)
            } else {
                admin
            });
            continue;
        }
        if flag == "--recovery" {
            // The reference's defaults: 120 s, middlewares skipped.
            args.recovery_ms.get_or_insert(120_000);
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|e| bad(&e))?,
            "--ping-interval" => args.ping_interval = value.parse().map_err(|e| bad(&e))?,
            "--ping-timeout" => args.ping_timeout = value.parse().map_err(|e| bad(&e))?,
            "--max-payload" => args.max_payload = value.parse().map_err(|e| bad(&e))?,
            "--per-message-deflate" => args.deflate = Some(value.parse().map_err(|e| bad(&e))?),
            "--deflate-window-bits" => {
                args.deflate_window_bits = Some(window_bits(&value).ok_or_else(|| bad(&"8..15"))?);
            }
            "--deflate-context-takeover" => {
                args.deflate_context_takeover = Some(value.parse().map_err(|e| bad(&e))?);
            }
            "--deflate-client-window-bits" => {
                args.deflate_client_window_bits =
                    Some(window_bits(&value).ok_or_else(|| bad(&"8..15"))?);
            }
            "--connect-timeout" => args.connect_timeout = value.parse().map_err(|e| bad(&e))?,
            "--log-level" => args.log_level = value,
            "--app" => match value.as_str() {
                "default" | "client-suites" => args.app = value,
                _ => return Err(format!("unknown app {value}")),
            },
            "--port-a" => args.port_a = value.parse().map_err(|e| bad(&e))?,
            "--port-b" => args.port_b = value.parse().map_err(|e| bad(&e))?,
            "--recovery-duration" => args.recovery_ms = Some(value.parse().map_err(|e| bad(&e))?),
            "--redis" => args.redis = Some(value),
            "--redis-adapter" => {
                args.redis_adapter = match value.as_str() {
                    "classic" => RedisAdapterKind::Classic,
                    "sharded" => RedisAdapterKind::Sharded,
                    "streams" => RedisAdapterKind::Streams,
                    _ => {
                        return Err(format!(
                            "unknown redis adapter {value} (classic, sharded or streams)"
                        ));
                    }
                }
            }
            "--shutdown-mode" => match value.as_str() {
                "drop" => args.goodbye = false,
                "goodbye" => args.goodbye = true,
                _ => return Err(format!("unknown shutdown mode {value} (drop or goodbye)")),
            },
            "--shutdown-timeout" => {
                args.shutdown_timeout = value.parse().map_err(|e| bad(&e))?;
            }
            "--parser" => match value.as_str() {
                "json" => args.parser = socketio::Parser::Json,
                "msgpack" => args.parser = socketio::Parser::Msgpack,
                _ => return Err(format!("unknown parser {value} (json or msgpack)")),
            },
            "--admin-user" => args.admin_user = Some(value),
            "--admin-password-hash" => args.admin_password_hash = Some(value),
            "--admin-mode" => {
                let mode = match value.as_str() {
                    "development" => socketio::AdminMode::Development,
                    "production" => socketio::AdminMode::Production,
                    _ => return Err(format!("unknown admin mode {value}")),
                };
                args.admin = Some(args.admin.take().unwrap_or_default().mode(mode));
            }
            "--admin-server-id" => {
                args.admin = Some(args.admin.take().unwrap_or_default().server_id(value));
            }
            "--admin-stats-interval" => {
                let ms: u64 = value.parse().map_err(|e| bad(&e))?;
                args.admin = Some(
                    args.admin
                        .take()
                        .unwrap_or_default()
                        .stats_interval(Duration::from_millis(ms)),
                );
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    match (args.admin_user.take(), args.admin_password_hash.take()) {
        (Some(user), Some(hash)) => {
            args.admin = Some(args.admin.take().unwrap_or_default().basic_auth(user, hash));
        }
        (None, None) => {}
        _ => return Err("--admin-user and --admin-password-hash go together".to_owned()),
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

/// A window size flag's value (8 to 15).
fn window_bits(value: &str) -> Option<u8> {
    value.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

/// `--per-message-deflate THRESHOLD` (and the `--deflate-*` flags) as the
/// engine option.
fn deflate(args: &Args) -> Option<engineio::PerMessageDeflate> {
    args.deflate.map(|t| {
        let mut d = engineio::PerMessageDeflate::default().threshold(t);
        if let Some(bits) = args.deflate_window_bits {
            d = d.server_max_window_bits(bits);
        }
        if let Some(bits) = args.deflate_client_window_bits {
            d = d.client_max_window_bits(bits);
        }
        if let Some(max) = args.deflate_context_takeover {
            d = d.context_takeover(max);
        }
        d
    })
}

fn engine_app(args: &Args) -> Result<EngineIo, engineio::Error> {
    let config = EngineConfig::default()
        .ping_interval(Duration::from_millis(args.ping_interval))
        .ping_timeout(Duration::from_millis(args.ping_timeout))
        .max_payload(args.max_payload)
        .shutdown_timeout(Duration::from_millis(args.shutdown_timeout))
        .allow_eio3(args.allow_eio3)
        .per_message_deflate(deflate(args))
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

    if args.app == "client-suites" {
        let ports = client_suites::Ports {
            a: args.port_a,
            b: args.port_b,
        };
        return match client_suites::run(ports, shutdown_signal()).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("conformance-server: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }

    let engine = match engine_app(&args) {
        Ok(e) => e,
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
    let redis = match &args.redis {
        Some(url) => match cluster::RedisChoice::connect(url, args.redis_adapter).await {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("conformance-server: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let factory: Option<socketio::AdapterFactory> =
        redis.as_ref().map(cluster::RedisChoice::factory);
    let io = match app::socketio_app(
        SocketIoConfig::default()
            .engine(
                EngineConfig::default()
                    .path("/socket.io/")
                    .ping_interval(Duration::from_millis(args.ping_interval))
                    .ping_timeout(Duration::from_millis(args.ping_timeout))
                    .max_payload(args.max_payload)
                    .shutdown_timeout(Duration::from_millis(args.shutdown_timeout))
                    .allow_eio3(args.allow_eio3)
                    .per_message_deflate(deflate(&args))
                    .cors(if args.admin.is_some() {
                        Cors::reflect().credentials(true)
                    } else {
                        Cors::any()
                    }),
            )
            .connect_timeout(Duration::from_millis(args.connect_timeout))
            .with_recovery(args.recovery_ms)
            .parser(args.parser),
        factory,
        addr.port(),
    ) {
        Ok(io) => io,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(admin) = args.admin.clone() {
        if let Err(e) = io.instrument(admin) {
            eprintln!("conformance-server: --admin: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    if let Some(r) = &redis {
        if tokio::time::timeout(Duration::from_secs(10), r.ready())
            .await
            .is_err()
        {
            eprintln!("conformance-server: redis subscriptions not live after 10 s");
            return std::process::ExitCode::FAILURE;
        }
    }
    println!("listening on {addr}");
    let router = {
        let engine = engine.clone();
        let io = io.clone();
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let engine = engine.clone();
            let io = io.clone();
            async move {
                if let Some(res) = stats::route(&req, &io) {
                    return Ok(res);
                }
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
    // On SIGTERM: both servers close, bounded by --shutdown-timeout; the
    // Socket.IO clients get a goodbye or see their transport drop (see Args).
    let close = {
        let (engine, io, goodbye) = (engine.clone(), io.clone(), args.goodbye);
        async move {
            let io_close = async {
                if !goodbye {
                    io.shutdown();
                }
                io.close().await;
            };
            tokio::join!(engine.close(), io_close);
        }
    };
    let options = engineio::ServeOptions::default()
        .shutdown_timeout(Duration::from_millis(args.shutdown_timeout));
    let result =
        engineio::serve_with_close(listener, router, shutdown_signal(), options, close).await;
    // The tests read this line: nothing of either server may be left running.
    println!(
        "closed: {} engine tasks, {} socket.io tasks left",
        engine.task_count(),
        io.engine().task_count()
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! Socket.IO inside an axum 0.8 app.
//!
//! - `io.layer()` answers `/socket.io/` (polling, WebSocket, the upgrade and,
//!   with `--client-dir`, the official client bundle) beside plain routes;
//! - one `Stats` value is shared by the routes (axum `State`) and the event
//!   handlers (`SocketIoBuilder::state`), no globals;
//! - tower-http: trace outermost, CORS for a named origin with credentials,
//!   compression on the routes;
//! - handler shapes, a per-event middleware, typed per-socket state.
//!
//! ```sh
//! cargo run -p socketio-examples --example axum -- --client-dir conformance/node_modules/socket.io-client/dist
//! ```
//! then open http://127.0.0.1:3000 (the page loads `/socket.io/socket.io.min.js`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderValue, Method};
use serde_json::{Value, json};
use socketio::{AckSender, Args, EventRejection, Socket, SocketIo, SocketIoConfig};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

/// State shared by the HTTP routes and the Socket.IO handlers.
#[derive(Clone, Default)]
struct Stats {
    connected: Arc<AtomicUsize>,
    messages: Arc<AtomicUsize>,
}

/// Typed per-socket state (not JSON, not shared with other nodes).
#[derive(Clone)]
struct Nick(String);

/// The origin a browser app on another port may call us from.
const APP_ORIGIN: &str = "http://localhost:5173";

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>axum + socketio</title>
<script src="/socket.io/socket.io.min.js"></script>
<pre id="log"></pre>
<script>
  const socket = io({ auth: { nick: "web" } });
  const log = (m) => (document.getElementById("log").textContent += m + "\n");
  socket.on("connect", () => socket.emit("echo", "hello", (r) => log("ack: " + JSON.stringify(r))));
  socket.on("chat", (m) => log(m.from + ": " + m.text));
</script>
"#;

fn socket_io(stats: Stats, client_dir: Option<String>) -> Result<SocketIo, socketio::Error> {
    let mut config = SocketIoConfig::default();
    if let Some(dir) = client_dir {
        config = config.serve_client(dir);
    }
    let io = SocketIo::builder(config).state(stats).build()?;
    io.on_connection(|socket: Socket| async move {
        let stats = socket.state::<Stats>();
        if let Some(s) = &stats {
            s.connected.fetch_add(1, Ordering::Relaxed);
        }
        let auth = &socket.handshake().auth;
        let nick = auth
            .get("nick")
            .and_then(Value::as_str)
            .unwrap_or("anonymous")
            .to_owned();
        let admin = auth.get("admin").and_then(Value::as_bool).unwrap_or(false);
        socket.extensions().insert(Nick(nick));

        // Events named "admin:*" need `auth: { admin: true }`.
        socket.use_middleware(move |_socket: Socket, event| async move {
            if event.name.starts_with("admin:") && !admin {
                return Err(EventRejection::new("unauthorized event"));
            }
            Ok(event)
        });
        // Node's socket.on("error"): tell the client what was refused.
        socket.on_error(|socket, err| {
            let _ = socket.emit(
                "error-event",
                &json!({"event": err.event(), "message": err.message()}),
            );
        });

        // (Socket, T, AckSender): echo with an ack.
        // A tuple takes the arguments in order: `(Value,)` is the first one.
        socket.on(
            "echo",
            |_s: Socket, (value,): (Value,), ack: AckSender| async move {
                let _ = ack.send(&value);
            },
        );
        // (Socket, T): a chat message to everyone else.
        socket.on("chat", |s: Socket, (text,): (String,)| async move {
            if let Some(stats) = s.state::<Stats>() {
                stats.messages.fetch_add(1, Ordering::Relaxed);
            }
            let from = s
                .extensions()
                .get::<Nick>()
                .map(|n| n.0)
                .unwrap_or_default();
            let _ = s
                .broadcast()
                .emit("chat", &json!({"from": from, "text": text}));
        });
        // (Socket): no arguments needed.
        socket.on("whoami", |s: Socket| async move {
            let nick = s.extensions().get::<Nick>().map(|n| n.0);
            let _ = s.emit("you-are", &nick);
        });
        // The peer address (see `peer_address` below for how it gets there).
        socket.on("whereami", |s: Socket, (): (), ack: AckSender| async move {
            let _ = ack.send(&s.handshake().address.map(|a| a.ip().to_string()));
        });
        // A large answer (a compressed polling response): `n` bytes of text.
        socket.on("big", |_s: Socket, n: usize, ack: AckSender| async move {
            let _ = ack.send(&"x".repeat(n.min(1_000_000)));
        });
        // (Socket, Args, AckSender): raw arguments, binary included.
        socket.on(
            "admin:echo-raw",
            |_s: Socket, args: Args, ack: AckSender| async move {
                let _ = ack.send_args(args);
            },
        );
        socket.on_disconnect(|s: Socket, _reason| async move {
            if let Some(stats) = s.state::<Stats>() {
                stats.connected.fetch_sub(1, Ordering::Relaxed);
            }
        });
    });
    Ok(io)
}

async fn stats_route(State(stats): State<Stats>) -> Json<Value> {
    Json(json!({
        "connected": stats.connected.load(Ordering::Relaxed),
        "messages": stats.messages.load(Ordering::Relaxed),
    }))
}

/// axum's peer address (from `into_make_service_with_connect_info`) handed
/// to the engine in the form it reads (`Handshake::address`).
async fn peer_address(mut req: Request) -> Request {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        req.extensions_mut().insert(engineio::ConnectInfo(addr));
    }
    req
}

fn app(io: &SocketIo, stats: Stats) -> Router {
    let cors = CorsLayer::new()
        .allow_origin([HeaderValue::from_static(APP_ORIGIN)])
        .allow_methods([Method::GET, Method::POST])
        .allow_credentials(true);
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/stats", get(stats_route))
        .with_state(stats)
        // Inner to outer: compression on the routes only (polling responses
        // are compressed by the engine), then Socket.IO, the peer address for
        // it, CORS for both, trace.
        .layer(CompressionLayer::new())
        .layer(io.layer())
        .layer(axum::middleware::map_request(peer_address))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

struct Options {
    port: u16,
    client_dir: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        port: 3000,
        client_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                opts.port = v.parse().map_err(|_| format!("bad port {v}"))?;
            }
            "--client-dir" => {
                opts.client_dir = Some(args.next().ok_or("--client-dir needs a value")?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(opts)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let opts = parse_args()?;
    let stats = Stats::default();
    let io = socket_io(stats.clone(), opts.client_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let app = app(&io, stats).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    io.shutdown();
    Ok(())
}

//! tower / axum 0.8 integration: `SocketIo::layer()` in a `Router` beside
//! plain routes (polling, WebSocket and the upgrade through it), as a
//! `route_service` and a `fallback_service`, and inside a tower-http stack
//! (trace → CORS → Socket.IO → compression → routes).

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(feature = "tower")]

mod support;

use std::io::Read;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::{HeaderValue, Method};
use serde_json::Value;
use socketio::{Socket, SocketIo, SocketIoConfig};
use support::{Client, Polling, http_raw};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

fn io() -> SocketIo {
    let io = SocketIo::new(SocketIoConfig::default()).unwrap();
    io.on_connection(|s: Socket| async move {
        s.on("echo", |s: Socket, (msg,): (String,)| async move {
            let _ = s.emit("echo", &msg);
        });
    });
    io
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

/// The routes of a small app: a greeting and a big page.
fn routes() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|State(s): State<AppState>| async move { s.greeting }),
        )
        .route("/big", get(|| async { "b".repeat(10_000) }))
        .with_state(AppState { greeting: "hello" })
}

/// WebSocket: connect, join, echo.
async fn websocket_echo(addr: SocketAddr) {
    let mut c = Client::connect(addr, "", &[]).await;
    c.join("/").await;
    c.send(r#"42["echo","over ws"]"#).await;
    c.expect(r#"42["echo","over ws"]"#).await;
}

/// Polling: handshake, join, echo.
async fn polling_echo(addr: SocketAddr) {
    let p = Polling::open(addr).await;
    p.post("40").await;
    assert!(p.get().await.starts_with("40{\"sid\""));
    p.post(r#"42["echo","over polling"]"#).await;
    assert_eq!(p.get().await, r#"42["echo","over polling"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_on_a_router_serves_both() {
    let io = io();
    let addr = serve(routes().layer(io.layer())).await;
    let res = http_raw(addr, "GET", "/hello", &[], b"").await;
    assert_eq!((res.status, res.text().as_str()), (200, "hello"));
    // A path of neither: the router's own 404.
    let res = http_raw(addr, "GET", "/nope", &[], b"").await;
    assert_eq!(res.status, 404);
    polling_echo(addr).await;
    websocket_echo(addr).await;
    // An Engine.IO refusal keeps the reference's answer.
    let res = http_raw(addr, "GET", "/socket.io/?EIO=4&transport=bogus", &[], b"").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":0,"message":"Transport unknown"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_upgrades_to_websocket_through_the_layer() {
    let io = io();
    let addr = serve(routes().layer(io.layer())).await;
    let p = Polling::open(addr).await;
    p.post("40").await;
    assert!(p.get().await.starts_with("40{"));
    let mut ws = Client::connect_upgrade(addr, &p.sid).await;
    ws.send("2probe").await;
    ws.expect("3probe").await;
    ws.send("5").await;
    ws.send(r#"42["echo","upgraded"]"#).await;
    ws.expect(r#"42["echo","upgraded"]"#).await;
    // The session is on WebSocket now: polling it is a bad request.
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={}", p.sid);
    assert_eq!(http_raw(addr, "GET", &target, &[], b"").await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_service_and_fallback_service() {
    let io = io();
    let app = routes().route_service("/socket.io/", io.clone());
    let addr = serve(app).await;
    polling_echo(addr).await;
    websocket_echo(addr).await;
    assert_eq!(http_raw(addr, "GET", "/hello", &[], b"").await.status, 200);

    let io = self::io();
    let app = routes().fallback_service(io);
    let addr = serve(app).await;
    polling_echo(addr).await;
    websocket_echo(addr).await;
    assert_eq!(
        http_raw(addr, "GET", "/hello", &[], b"").await.text(),
        "hello"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_http_stack_around_and_inside() {
    let io = io();
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static("https://app.example"))
        .allow_methods([Method::GET, Method::POST])
        .allow_credentials(true);
    let app = routes()
        .layer(CompressionLayer::new())
        .layer(io.layer())
        .layer(cors)
        .layer(TraceLayer::new_for_http());
    let addr = serve(app).await;

    // tower-http answers the preflight of the Socket.IO path.
    let res = http_raw(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));

    // A credentialed polling handshake gets the CORS headers too.
    let res = http_raw(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "https://app.example"), ("Cookie", "a=1")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.text().starts_with("0{"));
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let open: Value = serde_json::from_str(&res.text()[1..]).unwrap();
    assert!(open["sid"].is_string());

    // The routes are compressed by tower-http.
    let res = http_raw(addr, "GET", "/big", &[("Accept-Encoding", "gzip")], b"").await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    let mut out = String::new();
    flate2::read::GzDecoder::new(&res.body[..])
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "b".repeat(10_000));

    polling_echo(addr).await;
    websocket_echo(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_use_is_unchanged() {
    // The hyper service (no tower) still serves alone.
    let io = io();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = io.clone();
    tokio::spawn(async move { served.serve(listener, std::future::pending()).await });
    polling_echo(addr).await;
    websocket_echo(addr).await;
}

//! CORS options as Node's `cors` takes them: predicate origins, credentials,
//! methods, allowed / exposed headers, max age, over real HTTP.

mod support;

use std::time::Duration;

use engineio::{Cors, EngineConfig};
use support::{Server, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_policy_answers_preflights_and_requests() {
    let cors = Cors::predicate(|o| o.ends_with(".good.example"))
        .credentials(true)
        .methods(["GET", "POST"])
        .allowed_headers(["content-type", "authorization"])
        .exposed_headers(["x-trace"])
        .max_age(Duration::from_secs(3600));
    let server = Server::start(EngineConfig::default().cors(cors)).await;
    let target = server.url("transport=polling");
    let res = request(
        server.addr,
        "OPTIONS",
        &target,
        &[
            ("Origin", "https://app.good.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        b"",
    )
    .await;
    assert_eq!(res.status, 204);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.good.example")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("content-type,authorization")
    );
    assert_eq!(res.header("access-control-max-age"), Some("3600"));

    // A credentialed handshake from the named origin.
    let res = request(
        server.addr,
        "GET",
        &target,
        &[("Origin", "https://app.good.example"), ("Cookie", "a=1")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.text().starts_with("0{"), "{}", res.text());
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.good.example")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("access-control-expose-headers"), Some("x-trace"));

    // Another origin: served (CORS is the browser's check) without CORS headers.
    let res = request(
        server.addr,
        "GET",
        &target,
        &[("Origin", "https://evil.example")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), None);
    assert_eq!(res.header("access-control-allow-credentials"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflect_mirrors_any_origin() {
    let server = Server::start(EngineConfig::default().cors(Cors::reflect())).await;
    let res = request(
        server.addr,
        "GET",
        &server.url("transport=polling"),
        &[("Origin", "http://localhost:5173")],
        b"",
    )
    .await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    assert_eq!(res.header("vary"), Some("Origin"));
}

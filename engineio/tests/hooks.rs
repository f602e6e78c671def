//! Builder hooks: extra headers on the response that opens a session, and the
//! headers of the request that carried each message.

mod support;

use std::time::Duration;

use engineio::{EngineConfig, EngineIo, Message};
use http::HeaderValue;
use support::{Server, request, within};
use tokio::net::TcpListener;

#[tokio::test]
async fn initial_headers_on_polling_and_websocket_handshakes() {
    let builder = EngineIo::builder(EngineConfig::default()).initial_headers(|req, headers| {
        headers.append("set-cookie", HeaderValue::from_static("1=1; Max-Age=86400"));
        headers.append("set-cookie", HeaderValue::from_static("2=2; Path=/"));
        if req.query("mark").is_some() {
            headers.insert("x-marked", HeaderValue::from_static("yes"));
        }
    });
    let server = Server::start_builder(builder).await;
    let res = request(
        server.addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&mark=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    let cookies: Vec<&str> = res
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["1=1; Max-Age=86400", "2=2; Path=/"]);
    assert_eq!(res.header("x-marked"), Some("yes"));

    // Later requests of the session carry none of them.
    let sid = {
        let body = String::from_utf8(res.body.clone()).unwrap();
        let open: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
        open["sid"].as_str().unwrap().to_owned()
    };
    let res = request(
        server.addr,
        "POST",
        &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
        &[],
        b"4x",
    )
    .await;
    assert_eq!(res.header("set-cookie"), None);

    // The WebSocket handshake response (101) carries them too.
    let (stream, response) = within("ws connect", async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tokio_tungstenite::client_async(
            format!("ws://{}/engine.io/?EIO=4&transport=websocket", server.addr),
            tcp,
        )
        .await
        .unwrap()
    })
    .await;
    drop(stream);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2);
}

#[tokio::test]
async fn messages_come_with_the_headers_of_their_request() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let engine = EngineIo::new(EngineConfig::default(), move |_socket, mut incoming| {
        let tx = tx.clone();
        async move {
            while let Some((msg, headers)) = incoming.recv_with_headers().await {
                let cookie = headers
                    .get("cookie")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = tx.send((msg, cookie)).await;
            }
        }
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = engine.clone();
    tokio::spawn(async move { engineio::serve(listener, served, std::future::pending()).await });

    let res = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    let body = String::from_utf8(res.body).unwrap();
    let open: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let target = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    request(addr, "POST", &target, &[("Cookie", "1=1; 2=2")], b"4first").await;
    request(addr, "POST", &target, &[], b"4second").await;
    let got = |x: Option<(Message, Option<String>)>| x.unwrap();
    let wait = Duration::from_secs(10);
    let first = got(tokio::time::timeout(wait, rx.recv()).await.unwrap());
    assert_eq!(first.0, Message::from("first"));
    assert_eq!(first.1.as_deref(), Some("1=1; 2=2"));
    let second = got(tokio::time::timeout(wait, rx.recv()).await.unwrap());
    assert_eq!(second.0, Message::from("second"));
    assert_eq!(second.1, None);
}

#[tokio::test]
async fn allow_request_may_delay_or_refuse_handshakes() {
    let builder = EngineIo::builder(EngineConfig::default()).allow_request(|req| {
        let refuse = req.query("deny").is_some();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            !refuse
        }
    });
    let server = Server::start_builder(builder).await;
    let started = std::time::Instant::now();
    let res = request(
        server.addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        &[],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "answered before the hook"
    );
    let res = request(
        server.addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&deny=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.body, br#"{"code":4,"message":"Forbidden"}"#);
}

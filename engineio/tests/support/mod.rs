//! Test support: a real server on `127.0.0.1:0` with an echo handler that
//! records close reasons, a raw HTTP/1.1 client and a WebSocket client.
//!
//! Every wait has a timeout ([`WAIT`]); nothing synchronises by sleeping.

// Helpers outside `#[test]` functions are not covered by clippy.toml's
// allow-*-in-tests; a failed helper should fail the test loudly, so allow here.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio::{CloseReason, EngineConfig, EngineIo, EngineIoBuilder, Message};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// The text message that makes the echo handler close its session.
pub const SERVER_CLOSE: &str = "server-close";

/// A config with the official suites' heartbeat values (300 / 200 ms).
pub fn fast_heartbeat() -> EngineConfig {
    EngineConfig::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
}

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

// ----- server ----------------------------------------------------------------

/// One recorded session close, as the application saw it.
#[derive(Debug, Clone)]
pub struct Closed {
    pub sid: String,
    pub reason: CloseReason,
    pub at: Instant,
}

#[derive(Default)]
struct Closes {
    list: Mutex<Vec<Closed>>,
    notify: Notify,
}

/// A running server. Dropping it stops the accept loop and closes every session.
pub struct Server {
    pub addr: SocketAddr,
    pub engine: EngineIo,
    closes: Arc<Closes>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// An echo server with `config` and no hooks.
    pub async fn start(config: EngineConfig) -> Server {
        Server::start_builder(EngineIo::builder(config)).await
    }

    /// An echo server from a builder (for hooks such as `allow_request`).
    pub async fn start_builder(builder: EngineIoBuilder) -> Server {
        let closes = Arc::new(Closes::default());
        let recorder = closes.clone();
        let engine = builder
            .build(move |socket, mut incoming| {
                let closes = recorder.clone();
                async move {
                    let watcher = socket.clone();
                    tokio::spawn(async move {
                        let reason = watcher.closed().await;
                        closes.list.lock().unwrap().push(Closed {
                            sid: watcher.sid().to_string(),
                            reason,
                            at: Instant::now(),
                        });
                        closes.notify.notify_waiters();
                    });
                    while let Some(msg) = incoming.recv().await {
                        match &msg {
                            Message::Text(t) if t.as_str() == SERVER_CLOSE => socket.close(),
                            _ => {
                                let _ = socket.send(msg);
                            }
                        }
                    }
                }
            })
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = engine.clone();
        let task = tokio::spawn(async move {
            // Graceful: the engine closes its sessions, then the connections drain.
            let _ = served
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Server {
            addr,
            engine,
            closes,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the accept loop and closes every session (`ServerShutdown`).
    pub async fn shutdown(&mut self) {
        if let Some(task) = self.begin_shutdown() {
            within("server shutdown", task).await.unwrap();
        }
    }

    /// Starts the graceful shutdown; the returned task ends with it (the
    /// server waits for its clients' close handshakes, so read them meanwhile).
    pub fn begin_shutdown(&mut self) -> Option<JoinHandle<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take()
    }

    /// Waits until the application has seen session `sid` close; returns the record.
    pub async fn wait_closed(&self, sid: &str) -> Closed {
        within(&format!("close of session {sid}"), async {
            loop {
                let notified = self.closes.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(c) = self.closed_now(sid) {
                    return c;
                }
                notified.await;
            }
        })
        .await
    }

    /// The close record of `sid`, if it has closed already.
    pub fn closed_now(&self, sid: &str) -> Option<Closed> {
        self.closes
            .list
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.sid == sid)
            .cloned()
    }

    /// `/engine.io/?EIO=4&<query>`.
    pub fn url(&self, query: &str) -> String {
        format!("/engine.io/?EIO=4&{query}")
    }

    // ----- polling shortcuts ---------------------------------------------------

    /// A polling handshake; returns the sid and the open packet's JSON.
    pub async fn polling_open(&self) -> (String, serde_json::Value) {
        let res = get(self.addr, &self.url("transport=polling")).await;
        assert_eq!(res.status, 200, "handshake: {}", res.text());
        let body = res.text();
        let json = body
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("not an open packet: {body}"));
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        let sid = json["sid"].as_str().unwrap().to_owned();
        (sid, json)
    }

    /// GET on a polling session.
    pub async fn poll(&self, sid: &str) -> HttpResponse {
        get(
            self.addr,
            &self.url(&format!("transport=polling&sid={sid}")),
        )
        .await
    }

    /// POST `body` on a polling session.
    pub async fn post(&self, sid: &str, body: &[u8]) -> HttpResponse {
        post(
            self.addr,
            &self.url(&format!("transport=polling&sid={sid}")),
            body,
        )
        .await
    }

    /// POST `body` and assert `200 ok`.
    pub async fn post_ok(&self, sid: &str, body: &[u8]) {
        let res = self.post(sid, body).await;
        assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    }

    /// GET on a polling session, asserting 200; returns the payload text.
    pub async fn poll_text(&self, sid: &str) -> String {
        let res = self.poll(sid).await;
        assert_eq!(res.status, 200, "poll: {}", res.text());
        res.text()
    }

    // ----- websocket shortcuts -------------------------------------------------

    /// A direct WebSocket session; returns the socket, its sid and the open JSON.
    pub async fn ws_open(&self) -> (Ws, String, serde_json::Value) {
        let mut ws = ws_connect(self.addr, &self.url("transport=websocket")).await;
        let open = ws_recv_text(&mut ws).await;
        let json = open
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("not an open packet: {open}"));
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        let sid = json["sid"].as_str().unwrap().to_owned();
        (ws, sid, json)
    }

    /// A WebSocket joining polling session `sid` (an upgrade).
    pub async fn ws_upgrade(&self, sid: &str) -> Ws {
        ws_connect(
            self.addr,
            &self.url(&format!("transport=websocket&sid={sid}")),
        )
        .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ----- raw HTTP/1.1 client -------------------------------------------------------

/// A response read off the wire.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// Asserts one of the reference server's JSON errors.
    pub fn assert_error(&self, status: u16, code: u8, message: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(
            self.text(),
            format!(r#"{{"code":{code},"message":"{message}"}}"#)
        );
    }
}

/// Writes one request on `stream` (adding `Host`, `Content-Length` and, unless
/// given, `Connection: close`).
pub async fn write_request(
    stream: &mut TcpStream,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
}

/// Reads one response from `stream` (Content-Length, chunked, or until EOF).
pub async fn read_response(stream: &mut TcpStream, method: &str) -> HttpResponse {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let find_header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = if method == "HEAD" || status == 204 || status == 304 || status == 101 {
        Vec::new()
    } else if find_header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(stream, rest).await
    } else if let Some(len) = find_header("content-length") {
        let len: usize = len.parse().unwrap();
        while rest.len() < len {
            let mut chunk = vec![0u8; 64 * 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-body");
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        stream.read_to_end(&mut rest).await.unwrap();
        rest
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        // Chunk size line.
        let line_end = loop {
            if let Some(i) = find(&buf, b"\r\n") {
                break i;
            }
            fill(stream, &mut buf).await;
        };
        let line = String::from_utf8(buf[..line_end].to_vec()).unwrap();
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        buf.drain(..line_end + 2);
        if size == 0 {
            return body;
        }
        while buf.len() < size + 2 {
            fill(stream, &mut buf).await;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.unwrap();
    assert!(n > 0, "connection closed mid-chunk");
    buf.extend_from_slice(&chunk[..n]);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection, with `Connection: close`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    within(&format!("{method} {target}"), async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        write_request(&mut stream, method, target, headers, body).await;
        read_response(&mut stream, method).await
    })
    .await
}

pub async fn get(addr: SocketAddr, target: &str) -> HttpResponse {
    request(addr, "GET", target, &[], b"").await
}

pub async fn post(addr: SocketAddr, target: &str, body: &[u8]) -> HttpResponse {
    request(
        addr,
        "POST",
        target,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body,
    )
    .await
}

/// Starts a request and returns the connection without reading the answer
/// (for requests that the server holds, such as a polling GET).
pub async fn start_request(addr: SocketAddr, method: &str, target: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    write_request(&mut stream, method, target, &[], b"").await;
    stream
}

/// Reads the answer of a request begun with [`start_request`].
pub async fn finish_request(mut stream: TcpStream, method: &str) -> HttpResponse {
    within("held response", read_response(&mut stream, method)).await
}

/// Asserts that no response byte arrives on `stream` for `d` (the server holds
/// the request). This is an observation window, not a synchronisation.
pub async fn assert_held(stream: &mut TcpStream, d: Duration) {
    let mut b = [0u8; 1];
    if let Ok(r) = tokio::time::timeout(d, stream.peek(&mut b)).await {
        panic!("request was answered early: {r:?}");
    }
}

// ----- WebSocket client ------------------------------------------------------------

pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket to `target` (path and query) on `addr`.
pub async fn ws_connect(addr: SocketAddr, target: &str) -> Ws {
    within("websocket connect", async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}{target}");
        let (ws, res) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        assert_eq!(res.status(), 101);
        ws
    })
    .await
}

/// The next data or close frame (`None` when the connection ended without one).
pub async fn ws_next(ws: &mut Ws) -> Option<WsMessage> {
    within("websocket frame", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
}

/// The next text frame; fails on anything else.
pub async fn ws_recv_text(ws: &mut Ws) -> String {
    match ws_next(ws).await {
        Some(WsMessage::Text(t)) => t.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next text frame that is not a heartbeat ping (`2`).
pub async fn ws_recv_text_skip_ping(ws: &mut Ws) -> String {
    loop {
        let t = ws_recv_text(ws).await;
        if t != "2" {
            return t;
        }
    }
}

pub async fn ws_send_text(ws: &mut Ws, text: &str) {
    within("websocket send", ws.send(WsMessage::text(text)))
        .await
        .unwrap();
}

pub async fn ws_send_binary(ws: &mut Ws, data: &[u8]) {
    within(
        "websocket send",
        ws.send(WsMessage::Binary(Bytes::copy_from_slice(data))),
    )
    .await
    .unwrap();
}

/// Sends a text frame with arbitrary (e.g. invalid UTF-8) payload bytes.
pub async fn ws_send_raw_text(ws: &mut Ws, payload: &[u8]) {
    let frame = Frame::message(
        Bytes::copy_from_slice(payload),
        OpCode::Data(Data::Text),
        true,
    );
    within("websocket send", ws.send(WsMessage::Frame(frame)))
        .await
        .unwrap();
}

/// Reads until the server closes the connection; returns the close frame, if
/// the server sent one. Data frames before the close are skipped.
pub async fn ws_expect_closed(ws: &mut Ws) -> Option<CloseFrame> {
    within("websocket close", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
}

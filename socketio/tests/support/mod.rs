//! Test support: a real [`SocketIo`] server on `127.0.0.1:0`, a raw Engine.IO
//! WebSocket client that answers pings by itself, a tiny HTTP client for
//! long-polling, and [`Log`], a list that tests can wait on.
//!
//! Every wait has a timeout ([`WAIT`]); nothing synchronises by sleeping.
//! Sleeps appear only to show that something does *not* happen ([`QUIET`]).

#![allow(dead_code, unreachable_pub)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use socketio::{DisconnectReason, Socket, SocketIo, SocketIoConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Upper bound for any single wait.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long to watch for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(250);

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

// ----- Log --------------------------------------------------------------------

/// A shared list that handlers push to and tests wait on.
pub struct Log<T> {
    inner: Arc<(Mutex<Vec<T>>, Notify)>,
}

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Debug> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Debug> Log<T> {
    pub fn new() -> Self {
        Log {
            inner: Arc::new((Mutex::new(Vec::new()), Notify::new())),
        }
    }

    pub fn push(&self, item: T) {
        self.inner.0.lock().unwrap().push(item);
        self.inner.1.notify_waiters();
    }

    pub fn items(&self) -> Vec<T> {
        self.inner.0.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the whole list; returns the list.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[T]) -> bool) -> Vec<T> {
        within(what, async {
            loop {
                let notified = self.inner.1.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let items = self.inner.0.lock().unwrap();
                    if pred(&items) {
                        return items.clone();
                    }
                }
                notified.await;
            }
        })
        .await
    }

    /// Waits until the list holds at least `n` items.
    pub async fn wait_len(&self, n: usize) -> Vec<T> {
        self.wait_until(&format!("{n} log entries"), |items| items.len() >= n)
            .await
    }

    /// Waits for an item matching `pred`; returns it.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&T) -> bool) -> T {
        let items = self.wait_until(what, |items| items.iter().any(&pred)).await;
        items.into_iter().find(|t| pred(t)).unwrap()
    }
}

// ----- server -----------------------------------------------------------------

/// A socket that left its namespace, as seen by `on_disconnect`.
#[derive(Debug, Clone)]
pub struct Left {
    pub nsp: String,
    pub id: String,
    pub reason: DisconnectReason,
}

/// Records the socket's disconnect reason into `log`.
pub fn track(socket: &Socket, log: &Log<Left>) {
    let log = log.clone();
    socket.on_disconnect(move |s: Socket, reason| {
        let log = log.clone();
        async move {
            log.push(Left {
                nsp: s.ns_name().to_owned(),
                id: s.id().to_string(),
                reason,
            });
        }
    });
}

/// A config for tests: reference defaults, but a shorter ack timeout.
pub fn config() -> SocketIoConfig {
    SocketIoConfig::default().ack_timeout(WAIT)
}

/// A running server. Dropping it stops the accept loop and closes every session.
pub struct Server {
    pub addr: SocketAddr,
    pub io: SocketIo,
    /// Disconnects of every socket passed to [`track`] with this log
    /// (on `/`, every socket is tracked unless `on_connection` is replaced).
    pub left: Log<Left>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server; `setup` registers namespaces and handlers. Before it
    /// runs, `/` gets a connection handler that tracks disconnects.
    pub async fn start(
        config: SocketIoConfig,
        setup: impl FnOnce(&SocketIo, &Log<Left>),
    ) -> Server {
        Server::start_io(SocketIo::new(config).unwrap(), setup).await
    }

    /// As [`start`](Self::start), with a server built by the test (e.g. with
    /// its own adapter).
    pub async fn start_io(io: SocketIo, setup: impl FnOnce(&SocketIo, &Log<Left>)) -> Server {
        let left = Log::new();
        let l = left.clone();
        io.on_connection(move |socket: Socket| {
            let l = l.clone();
            async move { track(&socket, &l) }
        });
        setup(&io, &left);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = io.clone();
        let task = tokio::spawn(async move {
            served
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            io,
            left,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A server with the test config and the default `/` handler only.
    pub async fn plain() -> Server {
        Server::start(config(), |_, _| {}).await
    }

    /// Stops the server (every connection closes with `ServerShutdown`).
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            within("server shutdown", task).await.unwrap();
        }
    }

    /// A WebSocket client, open packet read.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr, "", &[]).await
    }

    /// A client joined to `nsp`; returns it and its socket id.
    pub async fn joined(&self, nsp: &str) -> (Client, String) {
        let mut c = self.client().await;
        let id = c.join(nsp).await;
        (c, id)
    }

    /// The server-side socket with id `id` on `nsp`.
    pub fn socket(&self, nsp: &str, id: &str) -> Socket {
        let sid = socketio::SocketId::parse(id).unwrap();
        self.io
            .of(nsp)
            .get_socket(&sid)
            .unwrap_or_else(|| panic!("no socket {id} on {nsp}"))
    }

    /// Waits for the disconnect of socket `id`.
    pub async fn wait_left(&self, id: &str) -> Left {
        self.left
            .wait_for(&format!("disconnect of {id}"), |l| l.id == id)
            .await
    }

    /// `http://addr/socket.io/?EIO=4&<query>` as a request target.
    pub fn url(&self, query: &str) -> String {
        format!("/socket.io/?EIO=4&{query}")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ----- WebSocket client ---------------------------------------------------------

/// A data frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// What the reader task saw.
#[derive(Debug)]
enum Event {
    Frame(Frame),
    /// The n-th ping (from 1).
    Ping(usize),
    Closed,
}

type WsSink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, WsMessage>;

/// A raw Engine.IO v4 client over WebSocket. A background task reads every
/// frame and answers pings (`2`) with `3` at once, unless `auto_pong` is off,
/// so an idle client stays alive while the test talks to another one.
pub struct Client {
    sink: Arc<tokio::sync::Mutex<WsSink>>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    auto_pong: Arc<AtomicBool>,
    pings: Arc<AtomicUsize>,
    reader: JoinHandle<()>,
    /// The Engine.IO session id.
    pub sid: String,
    /// The open packet's JSON.
    pub open: Value,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Opens `ws://addr/socket.io/?EIO=4&transport=websocket&<query>` with extra
    /// headers, and reads the open packet.
    pub async fn connect(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Client {
        Self::connect_opts(addr, query, headers, true).await
    }

    /// A client that never answers pings.
    pub async fn connect_no_pong(addr: SocketAddr) -> Client {
        Self::connect_opts(addr, "", &[], false).await
    }

    /// A WebSocket opened to upgrade the polling session `sid` (no open
    /// packet comes: the caller sends `2probe`).
    pub async fn connect_upgrade(addr: SocketAddr, sid: &str) -> Client {
        let mut c = Self::open_ws(addr, &format!("sid={sid}"), &[], true).await;
        c.sid = sid.to_owned();
        c
    }

    async fn connect_opts(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
        auto_pong: bool,
    ) -> Client {
        let mut c = Self::open_ws(addr, query, headers, auto_pong).await;
        let open = c.recv().await;
        let json = open
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("not an open packet: {open}"));
        c.open = serde_json::from_str(json).unwrap();
        c.sid = c.open["sid"].as_str().unwrap().to_owned();
        c
    }

    async fn open_ws(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
        auto_pong: bool,
    ) -> Client {
        let mut url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
            req.headers_mut()
                .insert(name, HeaderValue::from_str(v).unwrap());
        }
        let ws = within("websocket connect", async {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (ws, res) = tokio_tungstenite::client_async(req, stream).await.unwrap();
            assert_eq!(res.status(), 101);
            ws
        })
        .await;
        let (sink, mut stream) = ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let auto_pong = Arc::new(AtomicBool::new(auto_pong));
        let pings = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (sink, auto_pong, pings) = (sink.clone(), auto_pong.clone(), pings.clone());
            tokio::spawn(async move {
                loop {
                    let event = match stream.next().await {
                        Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                            let n = pings.fetch_add(1, Ordering::SeqCst) + 1;
                            if auto_pong.load(Ordering::SeqCst) {
                                let _ = sink.lock().await.send(WsMessage::text("3")).await;
                            }
                            Event::Ping(n)
                        }
                        Some(Ok(WsMessage::Text(t))) => {
                            Event::Frame(Frame::Text(t.as_str().to_owned()))
                        }
                        Some(Ok(WsMessage::Binary(b))) => Event::Frame(Frame::Binary(b.to_vec())),
                        Some(Ok(WsMessage::Close(_)) | Err(_)) | None => Event::Closed,
                        Some(Ok(_)) => continue,
                    };
                    let closed = matches!(event, Event::Closed);
                    if tx.send(event).is_err() || closed {
                        return;
                    }
                }
            })
        };
        Client {
            sink,
            rx,
            auto_pong,
            pings,
            reader,
            sid: String::new(),
            open: Value::Null,
        }
    }

    /// Pings received so far.
    pub fn pings(&self) -> usize {
        self.pings.load(Ordering::SeqCst)
    }

    /// Turns the automatic pong on or off.
    pub fn set_auto_pong(&self, on: bool) {
        self.auto_pong.store(on, Ordering::SeqCst);
    }

    /// The next event before `deadline` (`Err` at the deadline). Once the
    /// connection has closed, every call returns `Closed`.
    async fn next_event(&mut self, deadline: Instant) -> Result<Event, ()> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Err(_) => Err(()),
            Ok(Some(e)) => Ok(e),
            Ok(None) => Ok(Event::Closed),
        }
    }

    /// The next data frame before `deadline` (pings skipped): `Ok(None)` if
    /// the connection closed, `Err(())` at the deadline.
    async fn next_until(&mut self, deadline: Instant) -> Result<Option<Frame>, ()> {
        loop {
            match self.next_event(deadline).await? {
                Event::Ping(_) => {}
                Event::Frame(f) => return Ok(Some(f)),
                Event::Closed => return Ok(None),
            }
        }
    }

    /// The next data frame, `None` if the connection closed.
    pub async fn recv_frame(&mut self) -> Option<Frame> {
        match self.next_until(Instant::now() + WAIT).await {
            Ok(f) => f,
            Err(()) => panic!("timed out after {WAIT:?} waiting for a frame"),
        }
    }

    /// The next text frame; fails on anything else.
    pub async fn recv(&mut self) -> String {
        match self.recv_frame().await {
            Some(Frame::Text(t)) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next binary frame; fails on anything else.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match self.recv_frame().await {
            Some(Frame::Binary(b)) => b,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// Asserts the next text frame.
    pub async fn expect(&mut self, text: &str) {
        assert_eq!(self.recv().await, text);
    }

    /// Asserts the next binary frame.
    pub async fn expect_binary(&mut self, data: &[u8]) {
        assert_eq!(self.recv_binary().await, data);
    }

    async fn send_msg(&self, msg: WsMessage) {
        within("websocket send", async {
            self.sink.lock().await.send(msg).await.unwrap();
        })
        .await;
    }

    pub async fn send(&mut self, text: &str) {
        self.send_msg(WsMessage::text(text)).await;
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.send_msg(WsMessage::Binary(Bytes::copy_from_slice(data)))
            .await;
    }

    /// Sends CONNECT for `nsp` (`/` or `/name`) and expects the success reply;
    /// returns the socket id.
    pub async fn join(&mut self, nsp: &str) -> String {
        self.join_with(nsp, "").await
    }

    /// As [`join`](Self::join) with an auth payload (JSON text).
    pub async fn join_with(&mut self, nsp: &str, auth: &str) -> String {
        let prefix = if nsp == "/" {
            "40".to_owned()
        } else {
            format!("40{nsp},")
        };
        self.send(&format!("{prefix}{auth}")).await;
        let reply = self.recv().await;
        let json = reply
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not a CONNECT reply for {nsp}: {reply}"));
        let json: Value = serde_json::from_str(json).unwrap();
        let obj = json.as_object().unwrap();
        assert_eq!(obj.len(), 1, "CONNECT reply has only sid: {reply}");
        obj["sid"].as_str().unwrap().to_owned()
    }

    /// Waits for the server to close the connection (data frames are skipped).
    pub async fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_until(deadline).await {
                Ok(None) => return,
                Ok(Some(_)) => {}
                Err(()) => panic!("connection not closed within {WAIT:?}"),
            }
        }
    }

    /// Asserts that no data frame (and no close) arrives for `d`; pings are
    /// still answered. An observation window, not a synchronisation.
    pub async fn assert_silent(&mut self, d: Duration) {
        if let Ok(f) = self.next_until(Instant::now() + d).await {
            panic!("expected silence, got {f:?}");
        }
    }

    /// Waits for a ping that arrives after this call, asserting that no
    /// data frame arrives first.
    pub async fn wait_ping(&mut self) {
        let before = self.pings();
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_event(deadline).await {
                Ok(Event::Ping(n)) if n > before => return,
                Ok(Event::Ping(_)) => {}
                Ok(other) => panic!("expected a ping, got {other:?}"),
                Err(()) => panic!("no ping within {WAIT:?}"),
            }
        }
    }

    /// Closes the WebSocket from the client side.
    pub async fn close(self) {
        let _ = within("websocket close", async {
            self.sink.lock().await.close().await
        })
        .await;
    }
}

/// Splits a Socket.IO wire frame `4<type>[n-][/nsp,][id][json]` into
/// `(type, nsp, id, json)`.
pub fn parse(frame: &str) -> (char, String, Option<u64>, Option<Value>) {
    let rest = frame.strip_prefix('4').expect("an Engine.IO message");
    let mut chars = rest.chars();
    let kind = chars.next().unwrap();
    let mut rest = chars.as_str();
    if matches!(kind, '5' | '6') {
        let dash = rest.find('-').unwrap();
        rest = &rest[dash + 1..];
    }
    let mut nsp = "/".to_owned();
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        nsp = rest[..end].to_owned();
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = (digits > 0).then(|| rest[..digits].parse().unwrap());
    rest = &rest[digits..];
    let json = (!rest.is_empty()).then(|| serde_json::from_str(rest).unwrap());
    (kind, nsp, id, json)
}

// ----- long-polling -----------------------------------------------------------------

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub async fn http(addr: SocketAddr, method: &str, target: &str, body: &str) -> (u16, String) {
    within(&format!("{method} {target}"), async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    })
    .await
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        s = &rest[size + 2..];
    }
}

/// A long-polling Engine.IO session driven by hand.
pub struct Polling {
    pub addr: SocketAddr,
    pub sid: String,
}

impl Polling {
    /// A polling handshake.
    pub async fn open(addr: SocketAddr) -> Polling {
        let (status, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
        Polling {
            addr,
            sid: json["sid"].as_str().unwrap().to_owned(),
        }
    }

    fn target(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs a payload and expects `ok`.
    pub async fn post(&self, payload: &str) {
        let (status, body) = http(self.addr, "POST", &self.target(), payload).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }

    /// A GET; returns the payload.
    pub async fn get(&self) -> String {
        let (status, body) = http(self.addr, "GET", &self.target(), "").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Starts a GET in the background.
    pub fn start_get(&self) -> JoinHandle<String> {
        let addr = self.addr;
        let target = self.target();
        tokio::spawn(async move {
            let (status, body) = http(addr, "GET", &target, "").await;
            assert_eq!(status, 200, "{body}");
            body
        })
    }
}

/// A response with its headers (names lower-cased) and raw body bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// One HTTP/1.1 request with extra headers and `Connection: close`; the
/// body is read to the end (de-chunked).
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    within(&format!("{method} {target}"), async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..end].to_vec()).unwrap();
        let mut rest = raw[end + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        if chunked {
            let mut out = Vec::new();
            loop {
                let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
                let size = std::str::from_utf8(&rest[..eol]).unwrap();
                let size =
                    usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
                rest = rest[eol + 2 + size + 2..].to_vec();
            }
            rest = out;
        }
        RawResponse {
            status,
            headers,
            body: rest,
        }
    })
    .await
}

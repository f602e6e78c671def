//! The hyper service: routing of Engine.IO requests, refusals with the
//! reference server's answers, CORS, and session creation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Body;

use crate::config::EngineConfig;
use crate::error::{Error, HandshakeError};
use crate::observer::EngineObserver;
use crate::packet::{Packet, Str};
use crate::proto::{CloseReason, Protocol, Session, Timings, Transport};
use crate::sid::Sid;
use crate::socket::{HandshakeRequest, Incoming, Registry, Shared, Socket, now, run_timer};
use crate::tasks::TaskSet;
use crate::transport::{polling, websocket};

/// The body type of every response the service produces.
pub type ResponseBody = Full<Bytes>;

/// A boxed, sendable future, as the hooks return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The peer address of a connection, put in the request extensions by
/// [`serve`](crate::serve) (or by your own accept loop) so that handshakes know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectInfo(pub SocketAddr);

type Handler = Arc<dyn Fn(Socket, Incoming) -> BoxFuture<()> + Send + Sync>;
type AllowRequest = Arc<dyn Fn(&HandshakeRequest) -> BoxFuture<bool> + Send + Sync>;
type InitialHeaders = Arc<dyn Fn(&HandshakeRequest, &mut HeaderMap) + Send + Sync>;

struct Sessions {
    map: Mutex<HashMap<Sid, Arc<Shared>>>,
}

impl Sessions {
    fn get(&self, sid: &Sid) -> Option<Arc<Shared>> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sid)
            .cloned()
    }

    fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn all(&self) -> Vec<Arc<Shared>> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

impl Registry for Sessions {
    fn remove(&self, sid: &Sid) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sid);
    }
}

struct Inner {
    /// Open WebSocket connections (including probes and ones being closed).
    websockets: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections allowed to keep zlib state (permessage-deflate context
    /// takeover), bounded by `PerMessageDeflate::context_takeover`.
    deflate_takeover: Arc<crate::ws::deflate::TakeoverSlots>,
    /// Every task spawned for a session (timer, WebSocket, handler).
    tasks: TaskSet,
    /// Set by [`EngineIo::close`] / [`EngineIo::shutdown`]: handshakes get 503.
    closing: std::sync::atomic::AtomicBool,
    config: EngineConfig,
    timings: Timings,
    sessions: Arc<Sessions>,
    handler: Handler,
    allow_request: Option<AllowRequest>,
    initial_headers: Option<InitialHeaders>,
    /// See [`EngineIo::set_observer`].
    observer: std::sync::OnceLock<Arc<dyn EngineObserver>>,
}

/// An Engine.IO server: a cloneable hyper service plus the session registry.
///
/// Mount it beside your own routes by checking [`matches`](Self::matches) and
/// calling [`handle`](Self::handle), or run it alone with [`serve`](Self::serve).
///
/// ```no_run
/// use engineio::{EngineConfig, EngineIo};
///
/// # async fn run() -> Result<(), engineio::Error> {
/// let engine = EngineIo::new(EngineConfig::default(), |socket, mut incoming| async move {
///     // Echo every message back.
///     while let Some(msg) = incoming.recv().await {
///         let _ = socket.send(msg);
///     }
/// })?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// engine.serve(listener, std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EngineIo {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EngineIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIo")
            .field("config", &self.inner.config)
            .field("sessions", &self.inner.sessions.len())
            .finish()
    }
}

/// Builds an [`EngineIo`] with optional hooks.
///
/// ```
/// use engineio::{EngineConfig, EngineIo};
/// let engine = EngineIo::builder(EngineConfig::default())
///     .allow_request(|req| {
///         let ok = req.query("token").is_some();
///         async move { ok }
///     })
///     .build(|_socket, _incoming| async {})
///     .unwrap();
/// # let _ = engine;
/// ```
pub struct EngineIoBuilder {
    config: EngineConfig,
    allow_request: Option<AllowRequest>,
    initial_headers: Option<InitialHeaders>,
}

impl std::fmt::Debug for EngineIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIoBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EngineIoBuilder {
    /// An async hook that sees every handshake request (no `sid`) and may
    /// delay or refuse it; refused handshakes get 403 `{"code":4,"message":"Forbidden"}`.
    pub fn allow_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&HandshakeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.allow_request = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }

    /// Adds headers to the response that opens a session (the polling
    /// handshake or the WebSocket `101`), e.g. `Set-Cookie` — Node's
    /// `initial_headers` event.
    ///
    /// ```
    /// use engineio::{EngineConfig, EngineIo};
    /// let engine = EngineIo::builder(EngineConfig::default())
    ///     .initial_headers(|_req, headers| {
    ///         headers.append("set-cookie", http::HeaderValue::from_static("io=1; Path=/"));
    ///     })
    ///     .build(|_socket, _incoming| async {})
    ///     .unwrap();
    /// # let _ = engine;
    /// ```
    pub fn initial_headers<F>(mut self, f: F) -> Self
    where
        F: Fn(&HandshakeRequest, &mut HeaderMap) + Send + Sync + 'static,
    {
        self.initial_headers = Some(Arc::new(f));
        self
    }

    /// Builds the server; `handler` runs once per new session, in its own task,
    /// with the session's handle and its stream of received messages.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the configuration is inconsistent.
    pub fn build<H, Fut>(self, handler: H) -> Result<EngineIo, Error>
    where
        H: Fn(Socket, Incoming) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.config.validate()?;
        let timings = Timings {
            ping_interval: self.config.ping_interval,
            ping_timeout: self.config.ping_timeout,
            upgrade_timeout: self.config.upgrade_timeout,
            close_wait: self.config.polling_close_wait,
            high_water_mark: self.config.high_water_mark,
            max_buffered_bytes: self.config.max_buffered_bytes,
            slow_client_timeout: self.config.slow_client_timeout,
        };
        Ok(EngineIo {
            inner: Arc::new(Inner {
                websockets: Arc::default(),
                deflate_takeover: crate::ws::deflate::TakeoverSlots::new(
                    self.config
                        .per_message_deflate
                        .map_or(0, |d| d.context_takeover),
                ),
                tasks: TaskSet::default(),
                closing: std::sync::atomic::AtomicBool::new(false),
                config: self.config,
                timings,
                sessions: Arc::new(Sessions {
                    map: Mutex::new(HashMap::new()),
                }),
                handler: Arc::new(move |s, i| Box::pin(handler(s, i))),
                allow_request: self.allow_request,
                initial_headers: self.initial_headers,
                observer: std::sync::OnceLock::new(),
            }),
        })
    }
}

/// The open packet's JSON, keys in the reference server's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenPacket<'a> {
    sid: &'a str,
    upgrades: &'a [&'a str],
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
}

/// Query parameters the protocol looks at.
#[derive(Debug, Default)]
struct Query {
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
    all: Vec<(String, String)>,
}

fn parse_query(q: Option<&str>) -> Query {
    let mut out = Query::default();
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            "EIO" if out.eio.is_none() => out.eio = Some(v.clone()),
            "transport" if out.transport.is_none() => out.transport = Some(v.clone()),
            "sid" if out.sid.is_none() => out.sid = Some(v.clone()),
            _ => {}
        }
        out.all.push((k, v));
    }
    // Kept by the session for its whole life.
    out.all.shrink_to_fit();
    out
}

/// Whether a query asks for `b64`: `supportsBinary = !(req._query &&
/// req._query.b64)`, so any non-empty value (packages/engine.io/lib/transport.ts).
fn wants_b64(query: &[(String, String)]) -> bool {
    query.iter().any(|(k, v)| k == "b64" && !v.is_empty())
}

/// A response with the reference server's JSON error body.
pub(crate) fn error_response(e: HandshakeError) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(Bytes::from(e.json_body())));
    *res.status_mut() = e.status();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A refused WebSocket upgrade: 400, `text/html`, the message as body, and
/// the connection closed (what the reference writes on the raw socket).
fn upgrade_error_response(e: HandshakeError) -> Response<ResponseBody> {
    let mut res = plain_response(StatusCode::BAD_REQUEST, e.message());
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

pub(crate) fn plain_response(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::UPGRADE, "websocket")
}

/// The `Sec-WebSocket-Accept` value, or `None` if the upgrade request is not
/// a valid RFC 6455 handshake.
fn websocket_accept(method: &Method, headers: &HeaderMap) -> Option<HeaderValue> {
    if method != Method::GET
        || !header_has_token(headers, header::CONNECTION, "upgrade")
        || headers.get(header::SEC_WEBSOCKET_VERSION)? != "13"
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).ok()
}

/// What a WebSocket connection gets: `max_payload`, and permessage-deflate
/// when the server has it on and the request offers it acceptably (with
/// context takeover while a slot of `takeover` is free).
fn ws_link(
    config: &EngineConfig,
    headers: &HeaderMap,
    takeover: &Arc<crate::ws::deflate::TakeoverSlots>,
) -> websocket::WsLink {
    let mut slot = None;
    let deflate = config.per_message_deflate.and_then(|config| {
        let offers = headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok());
        slot = takeover.take();
        crate::ws::deflate::negotiate(offers, &config, slot.is_some())
            .map(|negotiated| websocket::DeflateLink { config, negotiated })
    });
    // The slot is kept only by a connection that uses it.
    if !deflate.is_some_and(|d| d.negotiated.server_takeover || d.negotiated.client_takeover) {
        slot = None;
    }
    websocket::WsLink {
        max_payload: config.max_payload,
        deflate,
        takeover: slot,
    }
}

fn switching_protocols(accept: HeaderValue, link: &websocket::WsLink) -> Response<ResponseBody> {
    let mut res = plain_response(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(d) = &link.deflate {
        if let Ok(v) = HeaderValue::from_str(&d.negotiated.response()) {
            h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
        }
    }
    res
}

impl EngineIo {
    /// Starts building a server with hooks.
    pub fn builder(config: EngineConfig) -> EngineIoBuilder {
        EngineIoBuilder {
            config,
            allow_request: None,
            initial_headers: None,
        }
    }

    /// A server with no hooks; see [`EngineIoBuilder::build`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the configuration is inconsistent.
    pub fn new<H, Fut>(config: EngineConfig, handler: H) -> Result<EngineIo, Error>
    where
        H: Fn(Socket, Incoming) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::builder(config).build(handler)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Installs the observer that every session opened from now on reports
    /// to (see [`EngineObserver`]); only the first call installs one.
    /// Returns whether this call did.
    pub fn set_observer(&self, observer: Arc<dyn EngineObserver>) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Open WebSocket connections, including upgrade probes and connections of
    /// closed sessions still being flushed (for metrics and leak checks).
    pub fn websocket_count(&self) -> usize {
        self.inner
            .websockets
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A live session by id.
    pub fn socket(&self, sid: &str) -> Option<Socket> {
        let sid = Sid::parse(sid)?;
        self.inner
            .sessions
            .get(&sid)
            .map(|shared| Socket { shared })
    }

    /// Closes every session at once with [`CloseReason::ServerShutdown`]
    /// (what is still queued is dropped) and refuses new handshakes with
    /// 503. Returns without waiting; [`close`](Self::close) is the graceful
    /// form.
    pub fn shutdown(&self) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::Release);
        let all = self.inner.sessions.all();
        tracing::info!(sessions = all.len(), "shutting down engine");
        for shared in all {
            shared.with_wake(|s| s.close_now(CloseReason::ServerShutdown));
        }
    }

    /// Whether [`close`](Self::close) or [`shutdown`](Self::shutdown) was called.
    pub fn is_closing(&self) -> bool {
        self.inner
            .closing
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Closes the server gracefully and waits until it is done:
    ///
    /// 1. new handshakes are refused (503);
    /// 2. every session closes with [`CloseReason::ServerShutdown`] after what
    ///    is already queued for it went out: a WebSocket client gets its
    ///    messages then a close frame, a polling client its messages then the
    ///    close packet in its pending (or next) GET;
    /// 3. it waits until every task the engine spawned has ended (session
    ///    timers, WebSocket connections, the connection handlers of the
    ///    application).
    ///
    /// Bounded by [`EngineConfig::shutdown_timeout`]: sessions still open then
    /// are closed at once, and the tasks still running are aborted, so this
    /// returns within about that time whatever the clients or the handlers do.
    pub async fn close(&self) {
        let deadline = tokio::time::Instant::now() + self.inner.config.shutdown_timeout;
        self.close_until(deadline).await;
    }

    /// [`close`](Self::close) with its own deadline in place of
    /// `shutdown_timeout` (for a layer above that spent part of the time
    /// already, as `socketio` does saying goodbye to each socket).
    pub async fn close_until(&self, deadline: tokio::time::Instant) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::Release);
        let all = self.inner.sessions.all();
        tracing::info!(sessions = all.len(), "closing engine gracefully");
        let at = now();
        for shared in all {
            shared.with_wake(|s| s.close_gracefully(at, CloseReason::ServerShutdown));
        }
        let tasks = &self.inner.tasks;
        if tokio::time::timeout_at(deadline, tasks.idle())
            .await
            .is_ok()
        {
            tracing::info!("engine closed");
            return;
        }
        let left = self.inner.sessions.all();
        let aborted = tasks.abort_all();
        tracing::warn!(
            sessions = left.len(),
            tasks = aborted,
            "shutdown_timeout passed; closing the remaining sessions at once and aborting their tasks"
        );
        for shared in left {
            shared.with_wake(|s| s.close_now(CloseReason::ServerShutdown));
        }
        tasks.idle().await;
        tracing::info!("engine closed");
    }

    /// Tasks the engine has spawned that are still running (a leak check:
    /// zero once [`close`](Self::close) returns).
    pub fn task_count(&self) -> usize {
        self.inner.tasks.len()
    }

    /// Whether a request is for this server's path (`<path>` prefix).
    pub fn matches<B>(&self, req: &Request<B>) -> bool {
        let path = req.uri().path();
        let prefix = self.inner.config.path.as_str();
        path.starts_with(prefix) || path == prefix.trim_end_matches('/')
    }

    /// Serves on `listener` until `shutdown` completes, then closes gracefully
    /// (see [`close`](Self::close) and [`serve`](crate::serve)): returns within
    /// [`EngineConfig::shutdown_timeout`] plus half a second, with no
    /// connection or session task left running.
    ///
    /// # Errors
    /// An accept error that is not transient.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let options =
            crate::ServeOptions::default().shutdown_timeout(self.inner.config.shutdown_timeout);
        crate::server::serve_with_close(listener, self.clone(), shutdown, options, self.close())
            .await
    }

    /// Handles one HTTP request for the Engine.IO path. Any request body type
    /// will do (hyper's `Incoming`, axum's `Body`, ...): its chunks are read as
    /// [`Bytes`].
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = req.map(crate::body::bytes_body);
        let cors = self.inner.config.cors.clone();
        let req_headers = cors.as_ref().map(|_| req.headers().clone());
        // Polling responses to a GET may be compressed (never a 101).
        let coding = match &self.inner.config.http_compression {
            Some(_) if req.method() == Method::GET && !is_websocket_upgrade(req.headers()) => {
                crate::compression::negotiate(req.headers())
            }
            _ => None,
        };
        let mut res = self.route(req).await;
        if let Some(c) = &self.inner.config.http_compression {
            res = crate::compression::maybe_compress(c, coding, res).await;
        }
        if let (Some(cors), Some(h)) = (cors, req_headers) {
            if res.status() != StatusCode::SWITCHING_PROTOCOLS {
                crate::cors::apply(&cors, &h, res.headers_mut());
            }
        }
        res
    }

    async fn route<B>(&self, mut req: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let config = &self.inner.config;
        if !self.matches(&req) {
            return plain_response(StatusCode::NOT_FOUND, "");
        }
        if let Some(cors) = &config.cors {
            if req.method() == Method::OPTIONS
                && req
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
            {
                return crate::cors::preflight(cors, req.headers());
            }
        }
        let query = parse_query(req.uri().query());
        let is_upgrade = is_websocket_upgrade(req.headers());
        let uri = req.uri().clone();
        let refuse = |e: HandshakeError| {
            tracing::info!(reason = %e, %uri, "request refused");
            if is_upgrade {
                upgrade_error_response(e)
            } else {
                error_response(e)
            }
        };
        let transport = match query.transport.as_deref() {
            Some("polling") if config.allow_polling => Transport::Polling,
            Some("websocket") if config.allow_websocket => Transport::WebSocket,
            _ => return refuse(HandshakeError::UnknownTransport),
        };
        if let Some(sid) = query.sid.as_deref() {
            let Some(shared) = Sid::parse(sid).and_then(|s| self.inner.sessions.get(&s)) else {
                return refuse(HandshakeError::UnknownSid);
            };
            return match transport {
                Transport::Polling => {
                    // After an upgrade, polling with this sid is a transport mismatch.
                    if shared.with(|s| s.transport()) != Transport::Polling {
                        return refuse(HandshakeError::BadRequest);
                    }
                    match *req.method() {
                        Method::GET => polling::get(shared).await,
                        Method::POST => {
                            polling::post(shared, req, config.max_payload, config.body_timeout)
                                .await
                        }
                        _ => plain_response(StatusCode::INTERNAL_SERVER_ERROR, ""),
                    }
                }
                Transport::WebSocket => {
                    if !is_upgrade || !config.allow_upgrades {
                        return refuse(HandshakeError::BadRequest);
                    }
                    let Some(accept) = websocket_accept(req.method(), req.headers()) else {
                        return refuse(HandshakeError::BadRequest);
                    };
                    let on = hyper::upgrade::on(&mut req);
                    let link = ws_link(config, req.headers(), &self.inner.deflate_takeover);
                    let res = switching_protocols(accept, &link);
                    match shared.with_wake(|s| s.start_probe(now())) {
                        Some(conn) => {
                            tracing::debug!(sid = %shared.sid, "upgrade probe started");
                            let (_, headers) = crate::socket::detach(req.uri(), req.headers());
                            let headers = Arc::new(headers);
                            let b64 = shared.protocol == Protocol::V3 && wants_b64(&query.all);
                            self.inner.tasks.spawn(websocket::run(
                                shared,
                                conn,
                                on,
                                link,
                                self.inner.websockets.clone(),
                                headers,
                                websocket::WsRole { timers: false, b64 },
                                self.inner.tasks.clone(),
                            ));
                        }
                        None => {
                            tracing::info!(sid = %shared.sid, "second websocket for session; closing it");
                            self.inner.tasks.spawn(websocket::refuse(on));
                        }
                    }
                    res
                }
            };
        }
        // A handshake.
        if req.method() != Method::GET {
            return refuse(HandshakeError::BadHandshakeMethod);
        }
        let accept = match transport {
            Transport::WebSocket => match websocket_accept(req.method(), req.headers()) {
                Some(a) if is_upgrade => Some(a),
                _ => return refuse(HandshakeError::BadRequest),
            },
            Transport::Polling => None,
        };
        let handshake = HandshakeRequest::from_parts(
            req.method().clone(),
            req.uri().clone(),
            req.headers().clone(),
            req.extensions().get::<ConnectInfo>().map(|c| c.0),
            query.all,
        );
        if let Some(allow) = &self.inner.allow_request {
            if !allow(&handshake).await {
                return refuse(HandshakeError::Forbidden);
            }
        }
        // `req._query.EIO === "4" ? 4 : 3` and, for 3 without `allowEIO3`,
        // code 5 (packages/engine.io/lib/server.ts, `handshake`).
        let protocol = match query.eio.as_deref() {
            Some("4") => Protocol::V4,
            _ if config.allow_eio3 => Protocol::V3,
            _ => return refuse(HandshakeError::UnsupportedProtocolVersion),
        };
        if self.is_closing() {
            tracing::info!(%uri, "server closing; handshake refused");
            return plain_response(StatusCode::SERVICE_UNAVAILABLE, "");
        }
        let b64 = protocol == Protocol::V3 && wants_b64(handshake.query_pairs());
        let Some(shared) = self.open_session(transport, protocol, b64, handshake) else {
            tracing::warn!(
                max = config.max_sessions,
                "session limit reached; handshake refused"
            );
            return plain_response(StatusCode::SERVICE_UNAVAILABLE, "");
        };
        let mut res = match accept {
            None => {
                let packets = shared.with(|s| {
                    let _ = s.begin_get();
                    s.take_get(crate::socket::now())
                });
                polling::respond(&shared, &packets.unwrap_or_default())
            }
            Some(accept) => {
                let on = hyper::upgrade::on(&mut req);
                let link = ws_link(config, req.headers(), &self.inner.deflate_takeover);
                let res = switching_protocols(accept, &link);
                if let Some(conn) = shared.with(|s| s.initial_ws_conn()) {
                    let headers = shared.handshake.headers.clone();
                    // A WebSocket session lives and dies with this one
                    // connection (it cannot change transport): its task
                    // drives the session's timers too.
                    self.inner.tasks.spawn(websocket::run(
                        shared.clone(),
                        conn,
                        on,
                        link,
                        self.inner.websockets.clone(),
                        headers,
                        websocket::WsRole {
                            timers: true,
                            b64: shared.b64,
                        },
                        self.inner.tasks.clone(),
                    ));
                } else {
                    self.inner.tasks.spawn(run_timer(shared.clone()));
                }
                res
            }
        };
        if let Some(f) = &self.inner.initial_headers {
            f(&shared.handshake, res.headers_mut());
        }
        res
    }

    /// Registers a new session, or `None` when `max_sessions` are live (the
    /// count is checked under the registry lock, so concurrent handshakes
    /// cannot overshoot it).
    fn open_session(
        &self,
        transport: Transport,
        protocol: Protocol,
        b64: bool,
        handshake: HandshakeRequest,
    ) -> Option<Arc<Shared>> {
        let config = &self.inner.config;
        let sid = Sid::generate();
        let upgrades: &[&str] =
            if transport == Transport::Polling && config.allow_websocket && config.allow_upgrades {
                &["websocket"]
            } else {
                &[]
            };
        let open = OpenPacket {
            sid: sid.as_str(),
            upgrades,
            ping_interval: u64::try_from(config.ping_interval.as_millis()).unwrap_or(u64::MAX),
            ping_timeout: u64::try_from(config.ping_timeout.as_millis()).unwrap_or(u64::MAX),
            max_payload: config.max_payload,
        };
        let open = serde_json::to_string(&open).unwrap_or_default();
        // The v3 open packet has the same keys (the reference's socket.ts
        // `onOpen` writes one object for both revisions).
        let session = Session::with_protocol(
            now(),
            transport,
            protocol,
            Packet::Open(Str::from(open)),
            self.inner.timings,
        );
        let registry: Weak<dyn Registry> = {
            let strong: Arc<dyn Registry> = self.inner.sessions.clone();
            Arc::downgrade(&strong)
        };
        let (shared, incoming) = Shared::new(
            sid,
            session,
            handshake,
            registry,
            config.max_buffered_incoming,
            b64,
            self.inner.observer.get().cloned(),
        );
        {
            let mut map = self
                .inner
                .sessions
                .map
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if map.len() >= config.max_sessions {
                return None;
            }
            map.insert(sid, shared.clone());
        }
        tracing::info!(%sid, %transport, eio = protocol.number(), remote = ?shared.handshake.remote_addr, "session opened");
        if let Some(o) = &shared.observer {
            o.session_opened(sid, transport);
        }
        if transport == Transport::Polling {
            // A WebSocket session's timers run in its connection's task.
            self.inner.tasks.spawn(run_timer(shared.clone()));
        }
        let socket = Socket {
            shared: shared.clone(),
        };
        self.inner
            .tasks
            .spawn((self.inner.handler)(socket, incoming));
        Some(shared)
    }
}

impl<B> hyper::service::Service<Request<B>> for EngineIo
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ResponseBody>, Infallible>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

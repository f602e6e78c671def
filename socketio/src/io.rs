//! The server: namespaces (static and dynamic), server-wide middlewares, the
//! Engine.IO layer underneath, and the hyper service.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use engineio::{EngineIo, ResponseBody};
use http::{Request, Response};
use hyper::body::Body;

use crate::adapter::{AdapterFactory, MemoryAdapter};
use crate::config::SocketIoConfig;
use crate::error::Error;
use crate::extensions::Extensions;
use crate::ns::{ConnectError, Middleware, Namespace, NsHandlers, NsInner};
use crate::observe::ObserverSlot;
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::socket::{BoxFuture, Socket};

type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;
type AllowRequest = Arc<dyn Fn(&engineio::HandshakeRequest) -> BoxFuture<bool> + Send + Sync>;

pub(crate) struct IoInner {
    pub(crate) config: Arc<SocketIoConfig>,
    namespaces: RwLock<HashMap<String, Namespace>>,
    dynamic: RwLock<Vec<(Matcher, Arc<NsHandlers>)>>,
    middlewares: RwLock<Vec<Middleware>>,
    adapter_factory: AdapterFactory,
    pub(crate) engine: EngineIo,
    state: Arc<Extensions>,
    client_files: Option<crate::serve_client::ClientFiles>,
    /// The socket observer of every namespace (the Admin UI's development mode).
    pub(crate) observer: Arc<ObserverSlot>,
    /// The Admin UI's state, once instrumented.
    #[cfg(feature = "admin")]
    pub(crate) admin: OnceLock<Arc<crate::admin::Admin>>,
}

impl IoInner {
    pub(crate) fn server_middlewares(&self) -> Vec<Middleware> {
        self.middlewares
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn get_or_create(&self, name: &str) -> Namespace {
        let mut map = self
            .namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(name.to_owned())
            .or_insert_with(|| Namespace {
                inner: NsInner::new(
                    name.to_owned(),
                    self.config.clone(),
                    Arc::new(NsHandlers::default()),
                    &self.adapter_factory,
                    false,
                    self.state.clone(),
                    self.observer.clone(),
                ),
            })
            .clone()
    }

    /// The namespace a CONNECT names: a static one, or a new child of the
    /// first dynamic namespace that matches. Counts the caller in
    /// `connecting` (under the map lock, so that an emptied dynamic child is
    /// not dropped under a socket still in its middlewares); the caller must
    /// call [`connect_done`](Self::connect_done) after.
    pub(crate) fn namespace_for(&self, name: &str) -> Option<Arc<NsInner>> {
        if let Some(ns) = self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            ns.inner.connecting.fetch_add(1, Ordering::AcqRel);
            return Some(ns.inner.clone());
        }
        let handlers = self
            .dynamic
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(m, _)| m(name))
            .map(|(_, h)| h.clone())?;
        let mut map = self
            .namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let ns = map.entry(name.to_owned()).or_insert_with(|| {
            tracing::debug!(nsp = name, "dynamic namespace created");
            Namespace {
                inner: NsInner::new(
                    name.to_owned(),
                    self.config.clone(),
                    handlers,
                    &self.adapter_factory,
                    true,
                    self.state.clone(),
                    self.observer.clone(),
                ),
            }
        });
        ns.inner.connecting.fetch_add(1, Ordering::AcqRel);
        Some(ns.inner.clone())
    }

    /// Every namespace of the server now (static ones, live dynamic
    /// children), sorted by name.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn namespace_list(&self) -> Vec<Namespace> {
        let mut list: Vec<Namespace> = self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name().cmp(b.name()));
        list
    }

    /// An existing namespace (none is created).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn namespace_by_name(&self, name: &str) -> Option<Namespace> {
        self.namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Ends a [`namespace_for`](Self::namespace_for): the socket joined or was
    /// refused; an emptied dynamic child can go now.
    pub(crate) fn connect_done(&self, ns: &Arc<NsInner>) {
        ns.connecting.fetch_sub(1, Ordering::AcqRel);
        self.remove_if_empty_dynamic(ns);
    }

    /// Drops a dynamic namespace that has no socket left (so names made up by
    /// clients cannot accumulate).
    pub(crate) fn remove_if_empty_dynamic(&self, ns: &Arc<NsInner>) {
        let busy = || ns.socket_count() > 0 || ns.connecting.load(Ordering::Acquire) > 0;
        if !ns.dynamic || busy() {
            return;
        }
        let mut map = self
            .namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&ns.name)
            .is_some_and(|n| Arc::ptr_eq(&n.inner, ns) && !busy())
        {
            map.remove(&ns.name);
            tracing::debug!(nsp = %ns.name, "empty dynamic namespace removed");
        }
    }
}

/// A Socket.IO server. Cheap to clone.
///
/// ```no_run
/// use socketio::{SocketIo, SocketIoConfig};
///
/// # async fn run() -> Result<(), socketio::Error> {
/// let io = SocketIo::new(SocketIoConfig::default())?;
/// io.on_connection(|socket| async move {
///     socket.on("message", |socket: socketio::Socket, (text,): (String,), ack: socketio::AckSender| async move {
///         let _ = socket.broadcast().emit("message", &text);
///         let _ = ack.send("received");
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.map_err(engineio::Error::from)?;
/// io.serve(listener, std::future::pending()).await
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    pub(crate) inner: Arc<IoInner>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SocketIo`] with a custom adapter or Engine.IO hooks.
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    adapter_factory: AdapterFactory,
    allow_request: Option<AllowRequest>,
    state: Extensions,
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SocketIoBuilder {
    /// Uses another adapter (e.g. a multi-node one) for every namespace.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use socketio::{MemoryAdapter, SocketIo, SocketIoConfig};
    /// let io = SocketIo::builder(SocketIoConfig::default())
    ///     .adapter(|ns| Arc::new(MemoryAdapter::new(ns)))
    ///     .build()
    ///     .unwrap();
    /// # let _ = io;
    /// ```
    pub fn adapter<F>(mut self, factory: F) -> Self
    where
        F: Fn(crate::ns::LocalNamespace) -> Arc<dyn crate::adapter::Adapter>
            + Send
            + Sync
            + 'static,
    {
        self.adapter_factory = Arc::new(factory);
        self
    }

    /// An async hook that sees every Engine.IO handshake and may delay or refuse
    /// it (403 `{"code":4,"message":"Forbidden"}`).
    pub fn allow_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&engineio::HandshakeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.allow_request = Some(Arc::new(move |r| Box::pin(f(r))));
        self
    }

    /// Adds app-wide state: one value per type, reachable from every handler
    /// through [`Socket::state`] (and [`SocketIo::state`]) without globals.
    /// Wrap what must be shared mutably in an `Arc<Mutex<..>>` (or use atomics):
    /// handlers get clones.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use socketio::{Socket, SocketIo, SocketIoConfig};
    ///
    /// #[derive(Clone, Default)]
    /// struct Counter(Arc<AtomicUsize>);
    ///
    /// let io = SocketIo::builder(SocketIoConfig::default())
    ///     .state(Counter::default())
    ///     .build()
    ///     .unwrap();
    /// io.on_connection(|socket: Socket| async move {
    ///     if let Some(c) = socket.state::<Counter>() {
    ///         c.0.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// assert!(io.state::<Counter>().is_some());
    /// ```
    pub fn state<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Builds the server.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] or an Engine.IO config error.
    pub fn build(self) -> Result<SocketIo, Error> {
        self.config.validate()?;
        let client_files = match &self.config.serve_client {
            Some(dir) => Some(crate::serve_client::ClientFiles::load(dir)?),
            None => None,
        };
        // The engine's connection handler reaches the server through this
        // cell, filled right after the server is built around the engine.
        let cell: Arc<OnceLock<Weak<IoInner>>> = Arc::new(OnceLock::new());
        let handler_cell = cell.clone();
        let mut builder = EngineIo::builder(self.config.engine.clone());
        if let Some(allow) = self.allow_request {
            builder = builder.allow_request(move |r| allow(r));
        }
        let engine = builder.build(move |esock, incoming| {
            let io = handler_cell.get().and_then(Weak::upgrade);
            async move {
                if let Some(io) = io {
                    crate::client::run(io, esock, incoming).await;
                }
            }
        })?;
        let inner = Arc::new(IoInner {
            config: Arc::new(self.config),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            middlewares: RwLock::new(Vec::new()),
            adapter_factory: self.adapter_factory,
            engine,
            state: Arc::new(self.state),
            client_files,
            observer: Arc::new(ObserverSlot::new()),
            #[cfg(feature = "admin")]
            admin: OnceLock::new(),
        });
        let _ = cell.set(Arc::downgrade(&inner));
        let io = SocketIo { inner };
        // The main namespace always exists.
        io.of("/");
        Ok(io)
    }
}

impl SocketIo {
    /// A server with the in-memory adapter.
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn new(config: SocketIoConfig) -> Result<SocketIo, Error> {
        Self::builder(config).build()
    }

    /// Starts building a server.
    pub fn builder(config: SocketIoConfig) -> SocketIoBuilder {
        SocketIoBuilder {
            config,
            adapter_factory: Arc::new(|ns| Arc::new(MemoryAdapter::new(ns))),
            allow_request: None,
            state: Extensions::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SocketIoConfig {
        &self.inner.config
    }

    /// A clone of the app-wide state of type `T`; see [`SocketIoBuilder::state`].
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.inner.state.get::<T>()
    }

    /// The Engine.IO server underneath.
    pub fn engine(&self) -> &EngineIo {
        &self.inner.engine
    }

    /// The namespace `name` (created if needed; a missing leading `/` is added).
    pub fn of(&self, name: &str) -> Namespace {
        if name.starts_with('/') {
            self.inner.get_or_create(name)
        } else {
            self.inner.get_or_create(&format!("/{name}"))
        }
    }

    /// A dynamic namespace: every CONNECT to a name that `matcher` accepts
    /// creates (or reuses) a child namespace with these handlers. Children
    /// are dropped when their last socket leaves.
    ///
    /// ```
    /// # let io = socketio::SocketIo::new(Default::default()).unwrap();
    /// let rooms = io.dynamic(|name| name.starts_with("/room-"));
    /// rooms.on_connection(|socket| async move {
    ///     let _ = socket.emit("hello", socket.ns_name());
    /// });
    /// ```
    pub fn dynamic<F>(&self, matcher: F) -> DynamicNamespace
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let handlers = Arc::new(NsHandlers::default());
        self.inner
            .dynamic
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((Arc::new(matcher), handlers.clone()));
        DynamicNamespace { handlers }
    }

    /// A middleware for every namespace, run before the namespace's own.
    pub fn use_middleware<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.inner
            .middlewares
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(move |s| Box::pin(f(s))));
    }

    /// The connection handler of the main namespace `/`.
    pub fn on_connection<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of("/").on_connection(f);
    }

    fn main(&self) -> BroadcastOperator {
        self.of("/").all()
    }

    /// Sockets of `/` in `rooms`.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.main().to(rooms)
    }

    /// Sockets of `/` except members of `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.main().except(rooms)
    }

    /// Volatile emits on `/`.
    pub fn volatile(&self) -> BroadcastOperator {
        self.main().volatile()
    }

    /// This node only, on `/`.
    pub fn local(&self) -> BroadcastOperator {
        self.main().local()
    }

    /// Ack timeout for a broadcast with acks on `/`.
    pub fn timeout(&self, d: std::time::Duration) -> BroadcastOperator {
        self.main().timeout(d)
    }

    /// Emits to every socket of `/`.
    ///
    /// # Errors
    /// If the argument does not serialize.
    pub fn emit<T: serde::Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.main().emit(event, data)
    }

    /// The sockets of `/`, on every node of the cluster.
    ///
    /// # Errors
    /// If other nodes cannot be asked or do not answer in time.
    pub async fn fetch_sockets(&self) -> Result<Vec<crate::RemoteSocket>, Error> {
        self.main().fetch_sockets().await
    }

    /// Sends an event to the server-side handlers of the other nodes (on `/`);
    /// see [`Namespace::server_side_emit`].
    ///
    /// # Errors
    /// If the argument does not serialize or the adapter cannot publish.
    pub fn server_side_emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), Error> {
        self.of("/").server_side_emit(event, data)
    }

    /// Sets a server-side event handler on `/`; see [`Namespace::on_server_event`].
    pub fn on_server_event<F, Fut>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(crate::Args, crate::ServerAck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of("/").on_server_event(event, f)
    }

    /// Makes every socket of `/` join `rooms`.
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        self.main().sockets_join(rooms)
    }

    /// Makes every socket of `/` leave `rooms`.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        self.main().sockets_leave(rooms)
    }

    /// Disconnects every socket of `/`.
    pub async fn disconnect_sockets(&self, close: bool) {
        self.main().disconnect_sockets(close).await
    }

    /// Whether a request is for the Socket.IO path.
    pub fn matches<B>(&self, req: &Request<B>) -> bool {
        self.engine().matches(req)
    }

    /// Handles one HTTP request for the Socket.IO path: the client bundle
    /// when [`serve_client`](SocketIoConfig::serve_client) is set, the
    /// Engine.IO protocol otherwise. Any request body type will do.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(files) = &self.inner.client_files {
            if let Some(res) = files.answer(&self.inner.config.engine.path, &req) {
                // Compressed like polling responses (Node compresses it too).
                return match &self.inner.config.engine.http_compression {
                    Some(c) => c.compress(req.headers(), res).await,
                    None => res,
                };
            }
        }
        self.engine().handle(req).await
    }

    /// Serves on `listener` until `shutdown` completes, then closes
    /// gracefully ([`close`](Self::close)): returns within the engine's
    /// `shutdown_timeout` plus half a second, no connection left open and no
    /// task of the server left running.
    ///
    /// # Errors
    /// See [`engineio::serve`].
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let options = engineio::ServeOptions::default()
            .shutdown_timeout(self.engine().config().shutdown_timeout);
        engineio::serve_with_close(listener, self.clone(), shutdown, options, self.close()).await?;
        Ok(())
    }

    /// Closes every connection at once (reason `server shutting down` on the
    /// server; the clients see their transport close and reconnect). Returns
    /// without waiting; [`close`](Self::close) is the graceful form.
    pub fn shutdown(&self) {
        self.engine().shutdown();
    }

    /// Closes the server gracefully and waits until it is done, bounded by
    /// the engine's [`shutdown_timeout`](engineio::EngineConfig::shutdown_timeout)
    /// (10 s by default):
    ///
    /// 1. new connections are refused (503 to a handshake);
    /// 2. every socket of every namespace is disconnected: the client gets a
    ///    DISCONNECT packet, so the official client reports
    ///    `io server disconnect` (and, as for `socket.disconnect()`, does not
    ///    reconnect by itself); on the server the `disconnecting` and
    ///    `disconnect` handlers run with reason `server shutting down`, and
    ///    with connection state recovery the session is kept as after any
    ///    server shutdown;
    /// 3. every ack the server is still awaiting resolves at once with
    ///    [`AckError::Disconnected`](crate::AckError::Disconnected);
    /// 4. each connection delivers what was queued for it, then closes;
    /// 5. every adapter is closed ([`Adapter::close`](crate::Adapter::close)),
    ///    and it waits until every task of the engine has ended (session
    ///    timers, WebSocket connections, the connection handlers).
    ///
    /// At the deadline, what is still open is closed at once and the tasks
    /// still running (for instance a `disconnect` handler that never returns)
    /// are aborted.
    ///
    /// Node's `io.close()` drops the transports instead (its clients see
    /// `transport close` and reconnect): [`shutdown`](Self::shutdown) does
    /// that, when the clients should come back to another instance.
    ///
    /// ```no_run
    /// # async fn f(io: socketio::SocketIo) {
    /// // e.g. on SIGTERM:
    /// io.close().await;
    /// assert_eq!(io.engine().task_count(), 0);
    /// # }
    /// ```
    pub async fn close(&self) {
        let deadline = tokio::time::Instant::now() + self.engine().config().shutdown_timeout;
        let namespaces: Vec<Namespace> = self
            .inner
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let sockets: Vec<Socket> = namespaces.iter().flat_map(Namespace::sockets).collect();
        tracing::info!(
            namespaces = namespaces.len(),
            sockets = sockets.len(),
            "closing the Socket.IO server"
        );
        let goodbyes = futures_util::future::join_all(
            sockets
                .iter()
                .map(|s| s.close(crate::socket::DisconnectReason::ServerShutdown, true)),
        );
        if tokio::time::timeout_at(deadline, goodbyes).await.is_err() {
            tracing::warn!("disconnect handlers still running at shutdown_timeout");
        }
        #[cfg(feature = "admin")]
        if let Some(admin) = self.inner.admin.get() {
            admin.stop();
        }
        for ns in &namespaces {
            let _ = tokio::time::timeout_at(deadline, ns.adapter().close()).await;
        }
        self.engine().close_until(deadline).await;
    }
}

impl<B> hyper::service::Service<Request<B>> for SocketIo
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

/// The handlers of a dynamic namespace; see [`SocketIo::dynamic`].
#[derive(Clone)]
pub struct DynamicNamespace {
    handlers: Arc<NsHandlers>,
}

impl std::fmt::Debug for DynamicNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicNamespace").finish_non_exhaustive()
    }
}

impl DynamicNamespace {
    /// The connection handler of every child namespace.
    pub fn on_connection<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.set_on_connect(f);
    }

    /// A middleware of every child namespace.
    pub fn use_middleware<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.handlers.add_middleware(f);
    }
}

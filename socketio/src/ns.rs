//! Namespaces: their middlewares, connection handler, sockets and adapter.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use dashmap::DashMap;
use serde_json::Value;

use crate::adapter::{Adapter, AdapterFactory};
use crate::config::SocketIoConfig;
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::socket::{BoxFuture, Socket, SocketId};

/// Why a middleware refused a connection; reaches the client's `connect_error`
/// as `{"message": ..., "data": ...}`.
///
/// ```
/// let e = socketio::ConnectError::new("Not authorized").with_data(serde_json::json!({"code": 401}));
/// assert_eq!(e.message, "Not authorized");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectError {
    /// The message the client sees.
    pub message: String,
    /// Optional extra data.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data for the client.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

pub(crate) type Middleware =
    Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// Middlewares and connection handler, shared by a dynamic namespace's children.
#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) on_connect: RwLock<Option<ConnectHandler>>,
}

impl NsHandlers {
    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        self.middlewares
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn on_connect(&self) -> Option<ConnectHandler> {
        self.on_connect
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn add_middleware<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.middlewares
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(move |s| Box::pin(f(s))));
    }

    pub(crate) fn set_on_connect<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        *self
            .on_connect
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(move |s| Box::pin(f(s))));
    }
}

pub(crate) struct NsInner {
    pub(crate) name: String,
    pub(crate) config: Arc<SocketIoConfig>,
    pub(crate) handlers: Arc<NsHandlers>,
    sockets: DashMap<SocketId, Socket>,
    adapter: OnceLock<Arc<dyn Adapter>>,
    /// Created on demand by a dynamic namespace (removed when empty).
    pub(crate) dynamic: bool,
    ack_ids: AtomicU64,
    /// Sockets between CONNECT and joining (in middlewares); a dynamic child
    /// is not dropped while this is not 0. Changed under the namespace map lock
    /// (see `IoInner::namespace_for`).
    pub(crate) connecting: AtomicUsize,
}

impl NsInner {
    pub(crate) fn new(
        name: String,
        config: Arc<SocketIoConfig>,
        handlers: Arc<NsHandlers>,
        factory: &AdapterFactory,
        dynamic: bool,
    ) -> Arc<NsInner> {
        let ns = Arc::new(NsInner {
            name,
            config,
            handlers,
            sockets: DashMap::new(),
            adapter: OnceLock::new(),
            dynamic,
            ack_ids: AtomicU64::new(0),
            connecting: AtomicUsize::new(0),
        });
        let adapter = factory(LocalNamespace {
            inner: Arc::downgrade(&ns),
        });
        let _ = ns.adapter.set(adapter);
        ns
    }

    pub(crate) fn adapter(&self) -> &dyn Adapter {
        match self.adapter.get() {
            Some(a) => a.as_ref(),
            // Set in `new` before the namespace is shared.
            None => &NO_ADAPTER,
        }
    }

    /// The next server→client ack id of this namespace.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert_socket(&self, socket: Socket) {
        self.sockets.insert(socket.id(), socket);
    }

    pub(crate) fn remove_socket(&self, id: &SocketId) {
        self.sockets.remove(id);
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    pub(crate) fn get(&self, id: &SocketId) -> Option<Socket> {
        self.sockets.get(id).map(|s| s.clone())
    }

    pub(crate) fn all(&self) -> Vec<Socket> {
        self.sockets.iter().map(|s| s.value().clone()).collect()
    }
}

/// Stand-in that is never reached (the adapter is set at construction).
struct NoAdapter;
static NO_ADAPTER: NoAdapter = NoAdapter;

impl Adapter for NoAdapter {
    fn add_all(&self, _: &SocketId, _: &[crate::adapter::Room]) {}
    fn del(&self, _: &SocketId, _: &str) {}
    fn del_all(&self, _: &SocketId) {}
    fn socket_rooms(&self, _: &SocketId) -> Vec<crate::adapter::Room> {
        Vec::new()
    }
    fn sockets(&self, _: &crate::adapter::BroadcastOptions) -> Vec<SocketId> {
        Vec::new()
    }
    fn rooms(&self) -> Vec<crate::adapter::Room> {
        Vec::new()
    }
    fn broadcast(&self, _: &crate::EncodedPacket, _: &crate::adapter::BroadcastOptions) -> usize {
        0
    }
}

/// An adapter's view of its namespace: the local sockets it delivers to.
#[derive(Clone)]
pub struct LocalNamespace {
    inner: Weak<NsInner>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace").finish_non_exhaustive()
    }
}

impl LocalNamespace {
    pub(crate) fn upgrade(&self) -> Option<Arc<NsInner>> {
        self.inner.upgrade()
    }

    /// A local socket by id.
    pub fn get(&self, id: &SocketId) -> Option<Socket> {
        self.inner.upgrade()?.get(id)
    }

    /// The ids of every local socket.
    pub fn ids(&self) -> Vec<SocketId> {
        self.inner
            .upgrade()
            .map(|ns| ns.sockets.iter().map(|e| *e.key()).collect())
            .unwrap_or_default()
    }

    /// The namespace name.
    pub fn name(&self) -> String {
        self.inner
            .upgrade()
            .map(|ns| ns.name.clone())
            .unwrap_or_default()
    }

    /// The connection state recovery settings, if the server enables it.
    pub fn recovery_config(&self) -> Option<crate::RecoveryConfig> {
        self.inner
            .upgrade()
            .and_then(|ns| ns.config.connection_state_recovery.clone())
    }
}

/// A namespace: where handlers and middlewares are registered, and an entry
/// point for broadcasting to its sockets.
///
/// ```no_run
/// # fn f(io: socketio::SocketIo) {
/// let admin = io.of("/admin");
/// admin.use_middleware(|socket| async move {
///     match socket.handshake().auth.get("token").and_then(|t| t.as_str()) {
///         Some("secret") => Ok(()),
///         _ => Err(socketio::ConnectError::new("Not authorized")),
///     }
/// });
/// admin.on_connection(|socket| async move {
///     let _ = socket.emit("welcome", "admin");
/// });
/// let _ = admin.emit("news", &"to every admin");
/// # }
/// ```
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NsInner>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.inner.name)
            .field("sockets", &self.inner.socket_count())
            .finish()
    }
}

impl Namespace {
    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sets the handler run for every socket that connects (after the
    /// middlewares accepted it and the client got its CONNECT reply).
    pub fn on_connection<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner.handlers.set_on_connect(f);
    }

    /// Adds a middleware, run in order for every connecting socket; an error
    /// refuses the connection with a CONNECT_ERROR.
    pub fn use_middleware<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.inner.handlers.add_middleware(f);
    }

    /// The connected sockets of this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.all()
    }

    /// A connected socket by id.
    pub fn get_socket(&self, id: &SocketId) -> Option<Socket> {
        self.inner.get(id)
    }

    /// The adapter (rooms, delivery).
    pub fn adapter(&self) -> &dyn Adapter {
        self.inner.adapter()
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone())
    }

    /// Members of `rooms`.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().to(rooms)
    }

    /// Every socket except members of `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.operator().except(rooms)
    }

    /// Volatile emits.
    pub fn volatile(&self) -> BroadcastOperator {
        self.operator().volatile()
    }

    /// This node only.
    pub fn local(&self) -> BroadcastOperator {
        self.operator().local()
    }

    /// With an ack timeout.
    pub fn timeout(&self, d: std::time::Duration) -> BroadcastOperator {
        self.operator().timeout(d)
    }

    /// Emits to every socket of the namespace.
    ///
    /// # Errors
    /// If the argument does not serialize.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), crate::Error> {
        self.operator().emit(event, data)
    }

    /// Every socket of the namespace, as a selection for bulk operations.
    pub fn all(&self) -> BroadcastOperator {
        self.operator()
    }
}

//! Namespaces: their middlewares, connection handler, sockets and adapter.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use serde_json::Value;

use crate::adapter::{Adapter, AdapterFactory, BroadcastOptions, Room, SocketInfo};
use crate::config::SocketIoConfig;
use crate::encoded::Args;
use crate::error::{AckError, Error};
use crate::observe::{ObserverSlot, SocketObserver};
use crate::operators::{BroadcastOperator, IntoRooms, PendingAcks};
use crate::remote::RemoteSocket;
use crate::server_events::{ServerAck, ServerEventHandlers};
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

/// Middlewares, connection handler and server-side event handlers, shared
/// by a dynamic namespace's children.
#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) on_connect: RwLock<Option<ConnectHandler>>,
    pub(crate) server_events: RwLock<ServerEventHandlers>,
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
    /// Every socket of `sockets` as one shared list, for broadcasts to the
    /// whole namespace; dropped on every insert / remove (made under this
    /// lock, so a list is never older than the map) and rebuilt by the next
    /// broadcast. A broadcast then costs one reference count, not one per
    /// socket.
    snapshot: Mutex<Option<Arc<[Socket]>>>,
    adapter: OnceLock<Arc<dyn Adapter>>,
    /// Created on demand by a dynamic namespace (removed when empty).
    pub(crate) dynamic: bool,
    ack_ids: AtomicU64,
    /// Sockets between CONNECT and joining (in middlewares); a dynamic child
    /// is not dropped while this is not 0. Changed under the namespace map lock
    /// (see `IoInner::namespace_for`).
    pub(crate) connecting: AtomicUsize,
    /// With connection state recovery: held while an event is kept in the log
    /// and delivered, and while a recovering socket reads the log and joins,
    /// so that (1) an event is either in its replay or delivered to it live,
    /// never neither and never both, and (2) every socket gets the events in
    /// the log's order, which is what a replay after its last offset assumes.
    /// Only synchronous work runs under it (keeping, queueing); never held
    /// across an await.
    recovery_order: Mutex<()>,
    /// With connection state recovery: the private id (`pid`) of each
    /// connected socket that has one, to its socket id. A client whose
    /// transport just closed can reconnect with its pid before this node has
    /// finished the old socket's leaving (which keeps its session): see
    /// [`wait_pid_left`](Self::wait_pid_left). Empty without recovery.
    pids: DashMap<String, SocketId>,
    /// Woken whenever a socket that had a pid leaves (recovery only).
    pid_left: tokio::sync::Notify,
    /// App-wide state (`SocketIoBuilder::state`), shared by every namespace.
    pub(crate) state: Arc<crate::extensions::Extensions>,
    /// The server's socket observer (the Admin UI's development mode), if any.
    observer: Arc<ObserverSlot>,
}

impl NsInner {
    pub(crate) fn new(
        name: String,
        config: Arc<SocketIoConfig>,
        handlers: Arc<NsHandlers>,
        factory: &AdapterFactory,
        dynamic: bool,
        state: Arc<crate::extensions::Extensions>,
        observer: Arc<ObserverSlot>,
    ) -> Arc<NsInner> {
        let ns = Arc::new(NsInner {
            name,
            config,
            handlers,
            sockets: DashMap::new(),
            snapshot: Mutex::new(None),
            adapter: OnceLock::new(),
            dynamic,
            ack_ids: AtomicU64::new(0),
            connecting: AtomicUsize::new(0),
            recovery_order: Mutex::new(()),
            pids: DashMap::new(),
            pid_left: tokio::sync::Notify::new(),
            state,
            observer,
        });
        let adapter = factory(LocalNamespace {
            inner: Arc::downgrade(&ns),
        });
        let _ = ns.adapter.set(adapter);
        register(&ns);
        ns
    }

    pub(crate) fn adapter(&self) -> &dyn Adapter {
        match self.adapter.get() {
            Some(a) => a.as_ref(),
            // Set in `new` before the namespace is shared.
            None => &NO_ADAPTER,
        }
    }

    /// The recovery ordering lock (see `recovery_order`); `None` without
    /// connection state recovery, where nothing needs it.
    pub(crate) fn recovery_order(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.config.connection_state_recovery.as_ref().map(|_| {
            self.recovery_order
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    /// The server's socket observer, if one is installed.
    pub(crate) fn observer(&self) -> Option<&Arc<dyn SocketObserver>> {
        self.observer.get()
    }

    /// Adds a socket to rooms (through the adapter); an observer hears of
    /// each room it was not in yet.
    pub(crate) fn join_rooms(&self, id: &SocketId, rooms: &[Room]) {
        let adapter = self.adapter();
        let Some(o) = self.observer.get() else {
            return adapter.add_all(id, rooms);
        };
        let mut before = adapter.socket_rooms(id);
        adapter.add_all(id, rooms);
        for room in rooms {
            if !before.contains(room) {
                o.room_joined(&self.name, room, id);
                before.push(room.clone());
            }
        }
    }

    /// Removes a socket from a room (through the adapter); an observer hears
    /// of it if the socket was in it.
    pub(crate) fn leave_room(&self, id: &SocketId, room: &str) {
        let adapter = self.adapter();
        let Some(o) = self.observer.get() else {
            return adapter.del(id, room);
        };
        let was_in = adapter.socket_rooms(id).iter().any(|r| r == room);
        adapter.del(id, room);
        if was_in {
            o.room_left(&self.name, room, id);
        }
    }

    /// Removes a socket from every room (through the adapter); an observer
    /// hears of each.
    pub(crate) fn leave_all_rooms(&self, id: &SocketId) {
        let adapter = self.adapter();
        let Some(o) = self.observer.get() else {
            return adapter.del_all(id);
        };
        let rooms = adapter.socket_rooms(id);
        adapter.del_all(id);
        for room in &rooms {
            o.room_left(&self.name, room, id);
        }
    }

    /// The next server→client ack id of this namespace.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    fn snapshot(&self) -> std::sync::MutexGuard<'_, Option<Arc<[Socket]>>> {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert_socket(&self, socket: Socket) {
        if let Some(pid) = socket.pid() {
            self.pids.insert(pid.to_owned(), socket.id());
        }
        let mut snapshot = self.snapshot();
        self.sockets.insert(socket.id(), socket);
        *snapshot = None;
    }

    pub(crate) fn remove_socket(&self, id: &SocketId) {
        let removed = {
            let mut snapshot = self.snapshot();
            let removed = self.sockets.remove(id);
            if removed.is_some() {
                *snapshot = None;
            }
            removed
        };
        // The socket's handle is dropped outside the lock.
        let Some((_, socket)) = removed else {
            return;
        };
        if let Some(pid) = socket.pid() {
            self.pids.remove_if(pid, |_, v| v == id);
            self.pid_left.notify_waiters();
        }
    }

    /// Connection state recovery: when the socket holding `pid` on this node
    /// is on a connection that has already closed, waits (at most `bound`)
    /// until it has left the namespace, its session kept. Returns whether it
    /// waited, i.e. whether a restore that found nothing is worth retrying.
    ///
    /// The Engine.IO session closes first; the Socket.IO socket leaves (and
    /// its session is kept) when the connection's task runs next, after the
    /// app's `disconnecting` handlers. A client that closed its transport
    /// itself does not wait for the server and may reconnect in between
    /// (seen with the official client closing a polling transport and
    /// reconnecting over WebSocket at once). The reference server does both
    /// steps in one go, so its client always recovers there.
    pub(crate) async fn wait_pid_left(&self, pid: &str, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        let mut waited = false;
        loop {
            let notified = self.pid_left.notified();
            tokio::pin!(notified);
            // Registered before the check: a leave right after it still wakes us.
            notified.as_mut().enable();
            let id = self.pids.get(pid).map(|id| *id.value());
            let Some(old) = id.and_then(|id| self.get(&id)) else {
                return waited;
            };
            if old.connection_open() {
                // Its connection is alive (as far as this node knows): it is
                // not leaving, and the reconnect gets a new session.
                return waited;
            }
            waited = true;
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::debug!(%pid, "socket on a closed connection still here; not waiting longer");
                return waited;
            }
        }
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    pub(crate) fn get(&self, id: &SocketId) -> Option<Socket> {
        self.sockets.get(id).map(|s| s.clone())
    }

    /// The connected sockets, as a list shared until the next join or leave.
    pub(crate) fn all(&self) -> Arc<[Socket]> {
        let mut snapshot = self.snapshot();
        match &*snapshot {
            Some(list) => list.clone(),
            None => {
                let list: Arc<[Socket]> = self.sockets.iter().map(|s| s.value().clone()).collect();
                *snapshot = Some(list.clone());
                list
            }
        }
    }
}

/// Every namespace of this process, for [`namespaces_of`] (server statistics);
/// dead entries are pruned whenever one is added.
static REGISTRY: Mutex<Vec<Weak<NsInner>>> = Mutex::new(Vec::new());

fn register(ns: &Arc<NsInner>) {
    let mut list = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    list.retain(|w| w.strong_count() > 0);
    list.push(Arc::downgrade(ns));
}

/// The live namespaces of the server whose configuration is `config` (the
/// namespaces of a server share its `Arc<SocketIoConfig>`), including dynamic
/// children already removed from the server but still referenced elsewhere.
pub(crate) fn namespaces_of(config: &SocketIoConfig) -> Vec<Arc<NsInner>> {
    let weak: Vec<Weak<NsInner>> = REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    weak.iter()
        .filter_map(Weak::upgrade)
        .filter(|ns| std::ptr::eq(Arc::as_ptr(&ns.config), config))
        .collect()
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

    /// The server's packet [`Parser`](crate::Parser): what a packet from
    /// another node must be encoded with for this node's clients.
    pub fn parser(&self) -> crate::Parser {
        self.inner
            .upgrade()
            .map(|ns| ns.config.parser)
            .unwrap_or_default()
    }

    /// The connection state recovery settings, if the server enables it.
    pub fn recovery_config(&self) -> Option<crate::RecoveryConfig> {
        self.inner
            .upgrade()
            .and_then(|ns| ns.config.connection_state_recovery.clone())
    }

    /// Runs `f` under the namespace's delivery-order lock when connection
    /// state recovery is on (at once otherwise). An adapter that delivers
    /// events from a shared log ([`Adapter::assigns_offsets`]) delivers each
    /// one, and remembers it for [`Adapter::missed_after`], inside `f`: a
    /// recovering socket then gets every event exactly once, in log order.
    /// `f` must not block or call back into the namespace's recovery.
    pub fn in_delivery_order<R>(&self, f: impl FnOnce() -> R) -> R {
        let ns = self.inner.upgrade();
        let _order = ns.as_ref().and_then(|ns| ns.recovery_order());
        f()
    }

    /// The session record a local socket would be kept with if it left now
    /// (id, private id, rooms, data); `None` if there is no such socket or no
    /// connection state recovery. For adapters that keep it in an external
    /// store while the socket is connected, so that it outlives this process.
    pub fn session_of(&self, id: &SocketId) -> Option<crate::adapter::SessionState> {
        let socket = self.get(id)?;
        let pid = socket.pid()?.to_owned();
        Some(crate::adapter::SessionState::new(
            socket.id(),
            pid,
            socket.rooms(),
            socket.data_value(),
        ))
    }

    fn local_operator(&self, opts: &BroadcastOptions) -> Option<BroadcastOperator> {
        let mut op = BroadcastOperator::with_options(self.inner.upgrade()?, opts.clone());
        op = op.local();
        Some(op)
    }

    /// Describes the local sockets that `opts` selects (for a remote fetch).
    pub fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let Some(ns) = self.inner.upgrade() else {
            return Vec::new();
        };
        ns.adapter()
            .sockets(opts)
            .iter()
            .filter_map(|id| ns.get(id))
            .map(|s| RemoteSocket::local(s).info().clone())
            .collect()
    }

    /// Makes the local sockets that `opts` selects join `rooms`.
    pub fn add_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        if let Some(op) = self.local_operator(opts) {
            op.sockets_join(rooms);
        }
    }

    /// Makes the local sockets that `opts` selects leave `rooms`.
    pub fn del_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        if let Some(op) = self.local_operator(opts) {
            op.sockets_leave(rooms);
        }
    }

    /// Disconnects the local sockets that `opts` selects.
    pub async fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if let Some(op) = self.local_operator(opts) {
            op.disconnect_sockets(close).await;
        }
    }

    /// Sends an event (`data` = `[event, ...args]`) with a fresh ack id to
    /// the local sockets that `opts` selects; the returned acks resolve as
    /// they arrive, until `timeout`.
    pub fn broadcast_with_ack(
        &self,
        data: Args,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> PendingAcks {
        match self.local_operator(opts) {
            Some(op) => op.start_acks(data, timeout).1,
            None => PendingAcks::empty(),
        }
    }

    /// Runs this namespace's handler for a server-side event another node sent
    /// (`data` = `[event, ...args]`); an event without a handler is dropped
    /// (and `ack` with it).
    pub fn dispatch_server_event(&self, data: Args, ack: ServerAck) {
        let Some(ns) = self.inner.upgrade() else {
            return;
        };
        let (event, args) = data.split_event();
        let Some(event) = event else {
            tracing::debug!(nsp = %ns.name, "server-side event without a name dropped");
            return;
        };
        let handler = ns
            .handlers
            .server_events
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&event);
        match handler {
            Some(h) => {
                tokio::spawn(h(args, ack));
            }
            None => tracing::debug!(nsp = %ns.name, %event, "no handler for server-side event"),
        }
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
        self.inner.all().to_vec()
    }

    /// A connected socket by id.
    pub fn get_socket(&self, id: &SocketId) -> Option<Socket> {
        self.inner.get(id)
    }

    /// The adapter (rooms, delivery).
    pub fn adapter(&self) -> &dyn Adapter {
        self.inner.adapter()
    }

    /// Sets the handler of a server-side event that other nodes of a cluster
    /// send with [`server_side_emit`](Self::server_side_emit) (the reference's
    /// `io.on(event, ...)`). It gets the event's arguments and, when the
    /// sender waits for answers, a [`ServerAck`] to answer with.
    pub fn on_server_event<F, Fut>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Args, ServerAck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner
            .handlers
            .server_events
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(event.into(), f);
    }

    /// Sends an event to the server-side handlers of every *other* node of
    /// the cluster (nothing happens with a single node).
    ///
    /// # Errors
    /// If the arguments do not serialize or the adapter cannot publish.
    pub fn server_side_emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), Error> {
        self.inner
            .adapter()
            .server_side_emit(&Args::one(data)?.with_event(event))
    }

    /// As [`server_side_emit`](Self::server_side_emit), and waits for one
    /// answer per other node (the adapter's request timeout applies).
    ///
    /// # Errors
    /// [`AckError::Send`] if the arguments do not serialize or the request
    /// fails; [`AckError::Timeout`] if some node did not answer in time;
    /// [`AckError::Decode`] if an answer does not fit `R`.
    pub async fn server_side_emit_with_ack<T, R>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<R>, AckError>
    where
        T: serde::Serialize + ?Sized,
        R: serde::de::DeserializeOwned,
    {
        let args = Args::one(data)
            .map_err(|e| AckError::Send(e.to_string()))?
            .with_event(event);
        let answers = self
            .inner
            .adapter()
            .server_side_emit_with_ack(&args)
            .await
            .map_err(|e| match e {
                Error::Timeout(_) => AckError::Timeout,
                e => AckError::Send(e.to_string()),
            })?;
        answers
            .iter()
            .map(|a| a.get::<R>(0).map_err(|e| AckError::Decode(e.to_string())))
            .collect()
    }

    /// How many nodes serve this namespace (1 without a cluster adapter).
    ///
    /// # Errors
    /// If the adapter cannot tell (e.g. its backend is down).
    pub async fn server_count(&self) -> Result<usize, Error> {
        self.inner.adapter().server_count().await
    }

    /// Every room with at least one member, on any node, sorted.
    ///
    /// # Errors
    /// If other nodes cannot be asked or do not answer in time.
    pub async fn all_rooms(&self) -> Result<Vec<Room>, Error> {
        let mut rooms: std::collections::BTreeSet<Room> =
            self.inner.adapter().rooms().into_iter().collect();
        rooms.extend(self.inner.adapter().remote_rooms().await?);
        Ok(rooms.into_iter().collect())
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

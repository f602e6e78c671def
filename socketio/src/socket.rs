//! A socket: one client's connection to one namespace.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use engineio::Backlog;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ack::{AckSender, AckTable, await_ack};
use crate::adapter::Room;
use crate::client::Client;
use crate::encoded::{Args, EncodedPacket};
use crate::error::{AckError, Error};
use crate::handshake::Handshake;
use crate::ns::NsInner;
use crate::operators::BroadcastOperator;
use crate::packet::Packet;

/// A socket id: 20 URL-safe random characters, distinct from the Engine.IO
/// session id (as the reference server does).
pub type SocketId = engineio::Sid;

/// A boxed, sendable future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a socket left its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent a DISCONNECT for this namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server called [`Socket::disconnect`].
    ServerNamespaceDisconnect,
    /// The client closed the connection.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent a packet that does not decode or is not allowed.
    ParseError,
    /// The server is shutting down.
    ServerShutdown,
    /// The server closed the underlying connection.
    ForcedClose,
}

impl DisconnectReason {
    /// The reference server's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShutdown => "server shutting down",
            DisconnectReason::ForcedClose => "forced close",
        }
    }

    /// Whether connection state recovery keeps the session after this reason.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::ForcedClose
                | DisconnectReason::ServerShutdown
        )
    }

    pub(crate) fn from_engine(r: engineio::CloseReason) -> Self {
        use engineio::CloseReason as C;
        match r {
            C::TransportClose => DisconnectReason::TransportClose,
            C::PingTimeout => DisconnectReason::PingTimeout,
            C::ForcedClose => DisconnectReason::ForcedClose,
            C::ParseError => DisconnectReason::ParseError,
            C::ServerShutdown => DisconnectReason::ServerShutdown,
            _ => DisconnectReason::TransportError,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's handler; it is given the event's name (for its logs) rather
/// than keeping a copy per socket.
type EventHandler = crate::handler::ErasedHandler;
type AnyListener = Arc<dyn Fn(&Socket, &str, &Args) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// Event handlers by name: a sorted list sized exactly (binary search), the
/// names back to back in one string. For the dozen or so events a socket
/// handles, a fraction of a hash map's memory (and one allocation for all
/// the names), kept by every connected socket.
#[derive(Default)]
struct EventHandlers {
    names: String,
    /// (start, end) of the name in `names`, handler; sorted by name.
    list: Vec<(usize, usize, EventHandler)>,
}

impl EventHandlers {
    fn name(&self, start: usize, end: usize) -> &str {
        self.names.get(start..end).unwrap_or_default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.list
            .binary_search_by(|(start, end, _)| self.name(*start, *end).cmp(name))
    }

    fn insert(&mut self, name: &str, handler: EventHandler) {
        match self.find(name) {
            Ok(i) => {
                if let Some(slot) = self.list.get_mut(i) {
                    slot.2 = handler;
                }
            }
            Err(i) => {
                self.names.reserve_exact(name.len());
                let start = self.names.len();
                self.names.push_str(name);
                self.list.reserve_exact(1);
                self.list.insert(i, (start, self.names.len(), handler));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&EventHandler> {
        let i = self.find(name).ok()?;
        self.list.get(i).map(|(_, _, h)| h)
    }

    fn remove(&mut self, name: &str) {
        if let Ok(i) = self.find(name) {
            self.list.remove(i);
            // Rare: rebuild the names without the removed one.
            let mut names = String::new();
            for (start, end, _) in &mut self.list {
                let n = self.names.get(*start..*end).unwrap_or_default();
                let at = names.len();
                names.push_str(n);
                (*start, *end) = (at, names.len());
            }
            names.shrink_to_fit();
            self.names = names;
        }
    }
}

#[derive(Default)]
struct Handlers {
    events: EventHandlers,
    any_incoming: Vec<AnyListener>,
    middlewares: Vec<crate::handler::EventMiddleware>,
    on_error: Vec<crate::handler::ErrorListener>,
    any_outgoing: Vec<AnyListener>,
    disconnecting: Vec<DisconnectHandler>,
    disconnect: Vec<DisconnectHandler>,
}

pub(crate) struct SocketInner {
    id: SocketId,
    ns: Arc<NsInner>,
    client: Arc<Client>,
    handshake: Handshake,
    handlers: RwLock<Handlers>,
    acks: Mutex<AckTable>,
    data: Mutex<Value>,
    extensions: crate::extensions::Extensions,
    connected: AtomicBool,
    closing: AtomicBool,
    /// Private session id (connection state recovery only).
    pid: Option<String>,
    recovered: bool,
}

/// One client's connection to one namespace. Cheap to clone; clones share
/// the socket.
///
/// ```no_run
/// use socketio::{SocketIo, SocketIoConfig};
/// # fn f(io: SocketIo) {
/// io.of("/").on_connection(|socket| async move {
///     socket.on("chat", |socket: socketio::Socket, (text,): (String,)| async move {
///         let _ = socket.broadcast().emit("chat", &text);
///     });
///     socket.on_disconnect(|socket, reason| async move {
///         tracing::info!(id = %socket.id(), %reason, "left");
///     });
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.inner.id)
            .field("nsp", &self.inner.ns.name)
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Socket {
    /// A new socket with id `id` (fresh and random for v4 clients; the
    /// Engine.IO sid for v3 ones, see `client::connect`).
    pub(crate) fn new(
        ns: Arc<NsInner>,
        client: Arc<Client>,
        handshake: Handshake,
        id: SocketId,
    ) -> Socket {
        // A v2 client's CONNECT reply carries no pid, so it cannot recover.
        let pid = ns
            .config
            .connection_state_recovery
            .as_ref()
            .filter(|_| handshake.protocol == engineio::Protocol::V4)
            .map(|_| SocketId::generate().as_str().to_owned());
        Self::build(ns, client, handshake, id, pid, Value::Null, false)
    }

    /// A socket that takes back a kept session (connection state recovery).
    pub(crate) fn restored(
        ns: Arc<NsInner>,
        client: Arc<Client>,
        handshake: Handshake,
        session: &crate::adapter::SessionState,
    ) -> Socket {
        Self::build(
            ns,
            client,
            handshake,
            session.sid,
            Some(session.pid.clone()),
            session.data.clone(),
            true,
        )
    }

    fn build(
        ns: Arc<NsInner>,
        client: Arc<Client>,
        handshake: Handshake,
        id: SocketId,
        pid: Option<String>,
        data: Value,
        recovered: bool,
    ) -> Socket {
        Socket {
            inner: Arc::new(SocketInner {
                id,
                ns,
                client,
                handshake,
                handlers: RwLock::new(Handlers::default()),
                acks: Mutex::new(AckTable::default()),
                data: Mutex::new(data),
                extensions: crate::extensions::Extensions::default(),
                connected: AtomicBool::new(false),
                closing: AtomicBool::new(false),
                pid,
                recovered,
            }),
        }
    }

    /// Whether this socket took back an earlier session through connection
    /// state recovery (same id, rooms and data; missed events replayed).
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    pub(crate) fn pid(&self) -> Option<&str> {
        self.inner.pid.as_deref()
    }

    /// Whether this socket's Engine.IO connection is still open.
    pub(crate) fn connection_open(&self) -> bool {
        self.inner.client.esock.is_open()
    }

    /// The socket id (what the client sees as `socket.id`).
    pub fn id(&self) -> SocketId {
        self.inner.id
    }

    /// The namespace name, e.g. `/` or `/chat`.
    pub fn ns_name(&self) -> &str {
        &self.inner.ns.name
    }

    /// The server's parser.
    pub(crate) fn parser(&self) -> crate::Parser {
        self.inner.ns.config.parser
    }

    pub(crate) fn inner_ns(&self) -> Arc<NsInner> {
        self.inner.ns.clone()
    }

    /// The namespace.
    pub fn namespace(&self) -> crate::Namespace {
        crate::Namespace {
            inner: self.inner.ns.clone(),
        }
    }

    /// The handshake: headers, query, address, auth payload...
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// The underlying Engine.IO session.
    pub fn engine_socket(&self) -> &engineio::Socket {
        &self.inner.client.esock
    }

    /// The transport the connection is on now.
    pub fn transport(&self) -> engineio::Transport {
        self.inner.client.esock.transport()
    }

    /// Whether the socket is connected to its namespace.
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self) {
        self.inner.connected.store(true, Ordering::Release);
    }

    // ----- data ------------------------------------------------------------

    /// Stores per-socket data (any `Serialize`; kept as JSON like Node's `socket.data`).
    ///
    /// # Errors
    /// If `data` does not serialize.
    pub fn set_data<T: Serialize>(&self, data: &T) -> Result<(), Error> {
        *lock(&self.inner.data) = serde_json::to_value(data)?;
        if let Some(o) = self.inner.ns.observer() {
            o.data_changed(self);
        }
        Ok(())
    }

    /// Reads the per-socket data as `T` (`None` if unset or of another shape).
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        let v = lock(&self.inner.data).clone();
        if v.is_null() {
            return None;
        }
        serde_json::from_value(v).ok()
    }

    /// The per-socket data as raw JSON (`null` if unset).
    pub fn data_value(&self) -> Value {
        lock(&self.inner.data).clone()
    }

    /// Typed per-socket state: any `Send + Sync + 'static` Rust values, one
    /// per type, kept on this node only (the JSON [`data`](Self::data) is what
    /// crosses the cluster and connection state recovery). Cleared once the
    /// socket has left and its disconnect handlers have run.
    ///
    /// ```
    /// use socketio::Socket;
    /// #[derive(Clone)]
    /// struct User { name: String }
    /// # fn f(socket: Socket) {
    /// socket.extensions().insert(User { name: "ann".into() });
    /// socket.on("whoami", |socket: Socket| async move {
    ///     let name = socket.extensions().get::<User>().map(|u| u.name);
    ///     let _ = socket.emit("you-are", &name);
    /// });
    /// # }
    /// ```
    pub fn extensions(&self) -> &crate::extensions::Extensions {
        &self.inner.extensions
    }

    /// A clone of the app-wide state of type `T` (see
    /// [`SocketIoBuilder::state`](crate::SocketIoBuilder::state)).
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.inner.ns.state.get::<T>()
    }

    // ----- handlers --------------------------------------------------------

    /// Handles an event. The handler's shape is chosen by its signature
    /// (annotate the closure's parameters):
    ///
    /// - `|socket: Socket| async move { .. }`: the arguments are ignored;
    /// - `|socket: Socket, data: T| async move { .. }`: the arguments
    ///   deserialized into `T` (any `DeserializeOwned`): all of them as a tuple
    ///   or sequence (`(String, u32)`), or, when there is exactly one argument
    ///   that does not fit that way, that one alone (`String`);
    /// - `|socket: Socket, data: T, ack: AckSender| async move { .. }`: the
    ///   same, with the responder for a client that asked for an ack;
    /// - `|socket: Socket, args: Args|` and `|socket: Socket, args: Args, ack: AckSender|`:
    ///   the raw arguments (JSON values and binary parts).
    ///
    /// When the arguments do not deserialize into `T`, the handler does not
    /// run: a `tracing` warning is logged, the [`on_error`](Self::on_error)
    /// listeners get [`EventError::InvalidArgs`](crate::EventError::InvalidArgs),
    /// and if the client asked for an ack it is answered with one argument
    /// `{"error": "invalid arguments: .."}` (never left waiting). A shape
    /// without [`AckSender`] never answers an ack the client asked for.
    ///
    /// Handlers of one connection run one at a time, in the order the packets
    /// arrived; acks from the client are processed meanwhile, so a handler
    /// may await [`emit_with_ack`](Self::emit_with_ack) on its own client.
    ///
    /// ```
    /// use socketio::{AckSender, Args, Socket};
    /// # fn f(socket: Socket) {
    /// socket.on("ping", |socket: Socket| async move {
    ///     let _ = socket.emit("pong", &());
    /// });
    /// socket.on("chat", |socket: Socket, (msg,): (String,)| async move {
    ///     let _ = socket.broadcast().emit("chat", &msg);
    /// });
    /// socket.on("add", |_socket: Socket, (a, b): (i64, i64), ack: AckSender| async move {
    ///     let _ = ack.send(&(a + b));
    /// });
    /// socket.on("raw", |_socket: Socket, args: Args, ack: AckSender| async move {
    ///     let _ = ack.send_args(args); // echo, binary parts included
    /// });
    /// # }
    /// ```
    pub fn on<M, H>(&self, event: impl Into<String>, handler: H)
    where
        H: crate::handler::EventHandler<M>,
    {
        let h = handler.into_erased().0;
        write(&self.inner.handlers).events.insert(&event.into(), h);
    }

    /// Handles an event with its raw [`Args`] (JSON values and binary parts);
    /// the same as [`on`](Self::on) with an `(Socket, Args, AckSender)` closure.
    pub fn on_args<F, Fut>(&self, event: impl Into<String>, handler: F)
    where
        F: Fn(Socket, Args, AckSender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on(event, handler);
    }

    /// A per-event middleware, like Node's `socket.use((packet, next) => ..)`:
    /// it sees every incoming event of this socket (name and arguments, which
    /// it may change) before the event's handler (after the
    /// [`on_any`](Self::on_any) listeners, as in Node), and hands it on
    /// (`Ok(event)`) or refuses it (`Err(EventRejection)`). Middlewares run in the order they were added;
    /// the first refusal stops the event: its handler does not run, the
    /// [`on_error`](Self::on_error) listeners get
    /// [`EventError::Rejected`](crate::EventError::Rejected) (Node emits
    /// `error` on the socket), and an ack the client asked for is answered
    /// with `{"error": message}`.
    ///
    /// ```
    /// use socketio::{EventRejection, Socket};
    /// # fn f(socket: Socket) {
    /// socket.use_middleware(|socket: Socket, event| async move {
    ///     if event.name == "admin" && socket.handshake().query("role") != Some("admin") {
    ///         return Err(EventRejection::new("unauthorized event"));
    ///     }
    ///     Ok(event)
    /// });
    /// socket.on_error(|socket, err| {
    ///     let _ = socket.emit("oops", &err.message());
    /// });
    /// # }
    /// ```
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(Socket, crate::handler::Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<crate::handler::Event, crate::handler::EventRejection>>
            + Send
            + 'static,
    {
        write(&self.inner.handlers)
            .middlewares
            .push(Arc::new(move |s, e| Box::pin(middleware(s, e))));
    }

    /// A listener for events that did not reach their handler (refused by a
    /// middleware, or arguments that do not deserialize): Node's server-side
    /// `socket.on("error", ..)`. Called synchronously, in the connection's task.
    pub fn on_error<F>(&self, listener: F)
    where
        F: Fn(&Socket, &crate::handler::EventError) + Send + Sync + 'static,
    {
        write(&self.inner.handlers)
            .on_error
            .push(Arc::new(listener));
    }

    /// Logs an event error, tells the listeners and answers the ack.
    pub(crate) fn report_event_error(&self, error: &crate::handler::EventError, ack: AckSender) {
        tracing::warn!(id = %self.inner.id, nsp = %self.inner.ns.name, error = %error, "event not handled");
        let listeners = read(&self.inner.handlers).on_error.clone();
        for l in &listeners {
            l(self, error);
        }
        if ack.is_requested() {
            let _ = ack.send(&crate::handler::error_ack_value(error));
        }
    }

    /// Removes the handler of an event.
    pub fn off(&self, event: &str) {
        write(&self.inner.handlers).events.remove(event);
    }

    /// A catch-all listener for incoming events, called (synchronously) with
    /// each event as it arrived, before the per-event middlewares and the
    /// event's own handler (so it sees refused events too, as in Node).
    pub fn on_any<F>(&self, listener: F)
    where
        F: Fn(&Socket, &str, &Args) + Send + Sync + 'static,
    {
        write(&self.inner.handlers)
            .any_incoming
            .push(Arc::new(listener));
    }

    /// A catch-all listener for outgoing events of this socket.
    pub fn on_any_outgoing<F>(&self, listener: F)
    where
        F: Fn(&Socket, &str, &Args) + Send + Sync + 'static,
    {
        write(&self.inner.handlers)
            .any_outgoing
            .push(Arc::new(listener));
    }

    /// Runs when the socket is about to leave (it is still in its rooms).
    pub fn on_disconnecting<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        write(&self.inner.handlers)
            .disconnecting
            .push(Arc::new(move |s, r| Box::pin(handler(s, r))));
    }

    /// Runs once the socket has left (rooms already cleared).
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        write(&self.inner.handlers)
            .disconnect
            .push(Arc::new(move |s, r| Box::pin(handler(s, r))));
    }

    pub(crate) async fn dispatch(&self, event: String, args: Args, id: Option<u64>) {
        if let Some(o) = self.inner.ns.observer().filter(|o| o.wants_events()) {
            o.event_received(self, &event, &args);
        }
        // As in Node, the catch-all listeners see every event as it arrived,
        // before the middlewares (refused ones included).
        let (any, middlewares) = {
            let h = read(&self.inner.handlers);
            (h.any_incoming.clone(), h.middlewares.clone())
        };
        for l in &any {
            l(self, &event, &args);
        }
        let (event, args) = if middlewares.is_empty() {
            (event, args)
        } else {
            let mut ev = crate::handler::Event {
                name: event,
                args,
                ack_id: id,
            };
            for m in &middlewares {
                let name = ev.name.clone();
                match m(self.clone(), ev).await {
                    Ok(next) => ev = next,
                    Err(rejection) => {
                        let error = crate::handler::EventError::Rejected {
                            event: name,
                            rejection,
                        };
                        self.report_event_error(&error, AckSender::new(self.clone(), id));
                        return;
                    }
                }
            }
            if !self.connected() {
                tracing::debug!(event = %ev.name, "event dropped: socket left during its middlewares");
                return;
            }
            (ev.name, ev.args)
        };
        let handler = read(&self.inner.handlers).events.get(&event).cloned();
        match handler {
            Some(h) => {
                h(self.clone(), &event, args, AckSender::new(self.clone(), id)).await;
            }
            None => tracing::trace!(%event, "no handler for event"),
        }
    }

    // ----- emitting --------------------------------------------------------

    /// Queues an encoded packet on this socket's connection.
    pub(crate) fn send_packet(&self, packet: &EncodedPacket) -> Result<Backlog, Error> {
        if !self.connected() {
            return Err(Error::Disconnected);
        }
        Ok(self.inner.client.esock.send_slice(packet.messages())?)
    }

    /// Delivery from a broadcast; returns whether it was queued.
    pub(crate) fn deliver(&self, packet: &EncodedPacket, volatile: bool) -> bool {
        if !self.connected() {
            return false;
        }
        if volatile {
            self.inner.client.esock.send_volatile(packet.messages())
        } else {
            self.inner
                .client
                .esock
                .send_slice(packet.messages())
                .is_ok()
        }
    }

    fn notify_outgoing(&self, event: &str, args: &Args) {
        if let Some(o) = self.inner.ns.observer().filter(|o| o.wants_events()) {
            o.event_sent(&self.inner.ns.name, &self.inner.id, event, args);
        }
        let any = read(&self.inner.handlers).any_outgoing.clone();
        for l in &any {
            l(self, event, args);
        }
    }

    /// Emits an event with one argument (any `Serialize`; binary as `bytes::Bytes` or
    /// [`Binary`](crate::Binary), anywhere inside it: the packet becomes a BINARY_EVENT).
    ///
    /// Returns [`Backlog::High`] when the connection's outbound queue is over
    /// its high-water mark after this packet (it is queued all the same): a
    /// handler sending a long stream to this client should then await
    /// [`writable`](Self::writable) before sending more. The policy is in
    /// [`engineio::EngineConfig`]'s docs (a burst is absorbed; a client that
    /// reads nothing while over the mark is cut off).
    ///
    /// # Errors
    /// If the argument does not serialize, the socket is disconnected, or its
    /// connection's queue would pass its hard limit (`max_buffered_bytes`;
    /// the connection is then closed).
    ///
    /// ```no_run
    /// # async fn stream(socket: socketio::Socket, chunks: Vec<String>) -> Result<(), socketio::Error> {
    /// for chunk in chunks {
    ///     if socket.emit("chunk", &chunk)?.is_high() {
    ///         socket.writable().await?; // at the client's pace
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<Backlog, Error> {
        self.emit_args(event, Args::one(data)?)
    }

    /// Emits an event with raw arguments (`Args::many(&(a, b))`, or received ones).
    ///
    /// # Errors
    /// As [`emit`](Self::emit).
    pub fn emit_args(&self, event: &str, mut args: Args) -> Result<Backlog, Error> {
        self.notify_outgoing(event, &args);
        // With connection state recovery the event gets an offset and is kept,
        // addressed to this socket's own room (as the reference does).
        let adapter = self.inner.ns.adapter();
        // Kept and sent in one step for recovering sockets (ns.rs).
        let _order = self.inner.ns.recovery_order();
        let Some(offset) = adapter.new_offset() else {
            let packet =
                EncodedPacket::event(self.parser(), &self.inner.ns.name, event, args, None);
            if _order.is_some() && adapter.assigns_offsets() {
                // The adapter's log numbers it: through the log, to this
                // socket's room (the reference routes it the same way).
                if !self.connected() {
                    return Err(Error::Disconnected);
                }
                let mut opts = crate::adapter::BroadcastOptions::default();
                opts.rooms.insert(self.inner.id.as_str().to_owned());
                adapter.broadcast(&packet, &opts);
                return Ok(Backlog::Normal);
            }
            return self.send_packet(&packet);
        };
        args.values.push(Value::String(offset.clone()));
        let packet = EncodedPacket::event(self.parser(), &self.inner.ns.name, event, args, None);
        let mut opts = crate::adapter::BroadcastOptions::default();
        opts.rooms.insert(self.inner.id.as_str().to_owned());
        adapter.persist_packet(offset, &opts, packet.clone());
        self.send_packet(&packet)
    }

    /// Waits until this socket's connection has room: its outbound queue is at
    /// or under the high-water mark (at once if it is). See [`emit`](Self::emit).
    ///
    /// # Errors
    /// [`Error::Disconnected`] if the socket is or becomes disconnected.
    pub async fn writable(&self) -> Result<(), Error> {
        if !self.connected() {
            return Err(Error::Disconnected);
        }
        self.inner
            .client
            .esock
            .writable()
            .await
            .map_err(|_| Error::Disconnected)
    }

    /// Emits an event with one argument and waits for the client's ack, parsed
    /// as `R` (see [`on`](Self::on) for how arguments map to `R`). Times out
    /// after the configured `ack_timeout`; see [`timeout`](Self::timeout).
    ///
    /// # Errors
    /// [`AckError::Timeout`], [`AckError::Disconnected`], or a send/decode failure.
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Result<R, AckError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = self.inner.ns.config.ack_timeout;
        self.emit_args_with_ack(event, Args::one(data).map_err(send_err)?, timeout)
            .await
    }

    pub(crate) async fn emit_args_with_ack<R: DeserializeOwned>(
        &self,
        event: &str,
        args: Args,
        timeout: Duration,
    ) -> Result<R, AckError> {
        let id = self.inner.ns.next_ack_id();
        let Some(rx) = self.register_ack(id) else {
            return Err(AckError::Send(Error::TooManyPendingAcks.to_string()));
        };
        self.notify_outgoing(event, &args);
        let packet =
            EncodedPacket::event(self.parser(), &self.inner.ns.name, event, args, Some(id));
        if let Err(e) = self.send_packet(&packet) {
            lock(&self.inner.acks).forget(id);
            return Err(send_err(e));
        }
        let result = await_ack(rx, timeout).await;
        if matches!(result, Err(AckError::Timeout)) {
            lock(&self.inner.acks).forget(id);
        }
        result
    }

    pub(crate) fn register_ack(&self, id: u64) -> Option<tokio::sync::oneshot::Receiver<Args>> {
        let max = self.inner.ns.config.max_pending_acks;
        lock(&self.inner.acks).register(id, max)
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        lock(&self.inner.acks).forget(id);
    }

    pub(crate) fn resolve_ack(&self, id: u64, args: Args) {
        lock(&self.inner.acks).resolve(id, args);
    }

    // ----- rooms and operators --------------------------------------------

    /// Joins rooms.
    pub fn join(&self, rooms: impl crate::operators::IntoRooms) {
        let rooms = rooms.into_rooms();
        self.inner.ns.join_rooms(&self.inner.id, &rooms);
    }

    /// Leaves rooms.
    pub fn leave(&self, rooms: impl crate::operators::IntoRooms) {
        for room in rooms.into_rooms() {
            self.inner.ns.leave_room(&self.inner.id, &room);
        }
    }

    /// The rooms this socket is in (including the one named by its id).
    pub fn rooms(&self) -> Vec<Room> {
        self.inner.ns.adapter().socket_rooms(&self.inner.id)
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.ns.clone()).except(self.inner.id.as_str())
    }

    /// Every other socket of the namespace (the sender excluded).
    pub fn broadcast(&self) -> BroadcastOperator {
        self.operator()
    }

    /// Members of `rooms`, the sender excluded.
    pub fn to(&self, rooms: impl crate::operators::IntoRooms) -> BroadcastOperator {
        self.operator().to(rooms)
    }

    /// Every other socket of the namespace except members of `rooms`.
    pub fn except(&self, rooms: impl crate::operators::IntoRooms) -> BroadcastOperator {
        self.operator().except(rooms)
    }

    /// This socket only, with an ack timeout for [`emit_with_ack`](SocketWithTimeout::emit_with_ack).
    pub fn timeout(&self, timeout: Duration) -> SocketWithTimeout {
        SocketWithTimeout {
            socket: self.clone(),
            timeout,
        }
    }

    /// This socket, with volatile emits (dropped if the transport is busy).
    pub fn volatile(&self) -> VolatileSocket {
        VolatileSocket {
            socket: self.clone(),
        }
    }

    // ----- disconnect ------------------------------------------------------

    /// Disconnects from the namespace (the client gets a DISCONNECT packet and
    /// reason `io server disconnect`); with `close_underlying`, every namespace
    /// of the connection is left and the connection itself is closed.
    pub async fn disconnect(&self, close_underlying: bool) {
        if close_underlying {
            self.inner.client.disconnect_all().await;
        } else {
            self.close(DisconnectReason::ServerNamespaceDisconnect, true)
                .await;
        }
    }

    /// Leaves the namespace: handlers, rooms, registrations, pending acks.
    pub(crate) async fn close(&self, reason: DisconnectReason, notify_client: bool) {
        if !self.connected() || self.inner.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        // While these run the socket is still connected and in its rooms.
        let disconnecting = read(&self.inner.handlers).disconnecting.clone();
        for h in disconnecting {
            h(self.clone(), reason).await;
        }
        self.inner.connected.store(false, Ordering::Release);
        if let Some(pid) = self.inner.pid.clone() {
            if reason.is_recoverable() {
                let session = crate::adapter::SessionState::new(
                    self.inner.id,
                    pid,
                    self.rooms(),
                    self.data_value(),
                );
                self.inner.ns.adapter().persist_session(session);
            }
        }
        if notify_client {
            let packet = EncodedPacket::packet(self.parser(), Packet::disconnect(self.ns_name()));
            let _ = self.inner.client.esock.send_slice(packet.messages());
        }
        if let Some(o) = self.inner.ns.observer() {
            o.socket_disconnected(self, reason);
        }
        self.inner.ns.leave_all_rooms(&self.inner.id);
        self.inner.ns.remove_socket(&self.inner.id);
        self.inner
            .client
            .remove_socket(self.ns_name(), &self.inner.id);
        lock(&self.inner.acks).clear();
        tracing::debug!(id = %self.inner.id, nsp = %self.inner.ns.name, %reason, "socket disconnected");
        let handlers = {
            let mut h = write(&self.inner.handlers);
            h.events = EventHandlers::default();
            h.middlewares.clear();
            h.disconnecting.clear();
            std::mem::take(&mut h.disconnect)
        };
        for h in handlers {
            h(self.clone(), reason).await;
        }
        self.inner.extensions.clear();
    }
}

fn send_err(e: Error) -> AckError {
    AckError::Send(e.to_string())
}

/// A socket with an ack timeout; see [`Socket::timeout`].
#[derive(Debug, Clone)]
pub struct SocketWithTimeout {
    socket: Socket,
    timeout: Duration,
}

impl SocketWithTimeout {
    /// As [`Socket::emit_with_ack`], with this timeout.
    ///
    /// # Errors
    /// As [`Socket::emit_with_ack`].
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Result<R, AckError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let args = Args::one(data).map_err(send_err)?;
        self.socket
            .emit_args_with_ack(event, args, self.timeout)
            .await
    }

    /// As [`emit_with_ack`](Self::emit_with_ack) with raw arguments.
    ///
    /// # Errors
    /// As [`Socket::emit_with_ack`].
    pub async fn emit_args_with_ack<R: DeserializeOwned>(
        &self,
        event: &str,
        args: Args,
    ) -> Result<R, AckError> {
        self.socket
            .emit_args_with_ack(event, args, self.timeout)
            .await
    }
}

/// A socket whose emits are dropped when the transport cannot take them now.
#[derive(Debug, Clone)]
pub struct VolatileSocket {
    socket: Socket,
}

impl VolatileSocket {
    /// Emits one argument if the transport is writable; returns whether it was queued.
    ///
    /// # Errors
    /// If the argument does not serialize.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<bool, Error> {
        let args = Args::one(data)?;
        self.socket.notify_outgoing(event, &args);
        let packet = EncodedPacket::event(
            self.socket.parser(),
            self.socket.ns_name(),
            event,
            args,
            None,
        );
        Ok(self.socket.deliver(&packet, true))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn handler(tag: u8) -> EventHandler {
        Arc::new(move |_s, _e, _a, _ack| {
            let _ = tag;
            Box::pin(async {})
        })
    }

    #[test]
    fn event_handlers_insert_replace_remove() {
        let mut h = EventHandlers::default();
        let names = ["echo", "bcast", "join", "a", "ping-all", "zz", "é"];
        let mut kept = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let e = handler(u8::try_from(i).unwrap());
            kept.push(e.clone());
            h.insert(n, e);
        }
        for (n, e) in names.iter().zip(&kept) {
            assert!(Arc::ptr_eq(h.get(n).unwrap(), e), "{n}");
        }
        assert!(h.get("missing").is_none());
        assert!(h.get("").is_none());
        // Replacing keeps one entry.
        let new = handler(99);
        h.insert("join", new.clone());
        assert!(Arc::ptr_eq(h.get("join").unwrap(), &new));
        assert_eq!(h.list.len(), names.len());
        h.remove("bcast");
        h.remove("missing");
        assert!(h.get("bcast").is_none());
        for n in ["echo", "join", "a", "ping-all", "zz", "é"] {
            assert!(h.get(n).is_some(), "{n}");
        }
        assert_eq!(h.names.len(), "echojoinaping-allzzé".len());
    }
}

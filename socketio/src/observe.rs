//! What the application layer reports to an observer of its sockets (the
//! Admin UI's development mode, `admin/`): connects, disconnects, room
//! changes, events in and out, data changes.
//!
//! The slot is empty unless an observer was installed: then each hook costs
//! one atomic load and a branch. Observers are called synchronously, never
//! under a lock of this crate, and must not block.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::encoded::Args;
use crate::socket::{DisconnectReason, Socket, SocketId};

/// Sees the sockets of every namespace of one server.
pub(crate) trait SocketObserver: Send + Sync + 'static {
    /// A socket joined its namespace (after its CONNECT reply, before the
    /// namespace's connection handler).
    fn socket_connected(&self, socket: &Socket);
    /// A socket left (before its rooms are left).
    fn socket_disconnected(&self, socket: &Socket, reason: DisconnectReason);
    /// A socket entered a room it was not in.
    fn room_joined(&self, nsp: &str, room: &str, id: &SocketId);
    /// A socket left a room it was in.
    fn room_left(&self, nsp: &str, room: &str, id: &SocketId);
    /// Whether anyone is listening to events now: when not, the callers
    /// skip [`event_received`](Self::event_received) and
    /// [`event_sent`](Self::event_sent) (and the work of preparing them).
    fn wants_events(&self) -> bool;
    /// An event arrived from a client (before middlewares and handler).
    fn event_received(&self, socket: &Socket, event: &str, args: &Args);
    /// An event was sent to socket `id` of namespace `nsp` (direct emit or
    /// broadcast, one call per recipient on this node).
    fn event_sent(&self, nsp: &str, id: &SocketId, event: &str, args: &Args);
    /// A socket's data was set.
    fn data_changed(&self, socket: &Socket);
    /// The data of a socket as another node (or `fetch_sockets`) sees it.
    fn shared_data(&self, socket: &Socket, data: Value) -> Value;
}

/// One server's observer, shared by its namespaces; set at most once.
pub(crate) type ObserverSlot = OnceLock<Arc<dyn SocketObserver>>;

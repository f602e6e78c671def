//! [`ServerStats`]: what a server holds right now, for metrics and leak
//! checks (the soak test of `conformance/soak/` asserts that every count is
//! back to zero after the churn).

use std::collections::HashSet;

use serde::Serialize;

use crate::io::SocketIo;
use crate::socket::{Socket, SocketId};

/// A snapshot of what a [`SocketIo`] holds, from [`SocketIo::stats`].
///
/// Each count is read on its own, without a global lock: while clients come
/// and go the counts may disagree with each other by the few connections in
/// flight; once the server is idle they are exact. Serializes to JSON with
/// camelCase names (`pendingAcks`, `recoverySessions`, ...).
///
/// ```
/// let io = socketio::SocketIo::new(Default::default()).unwrap();
/// let stats = io.stats();
/// assert_eq!((stats.sessions, stats.sockets, stats.rooms), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServerStats {
    /// Engine.IO sessions, open or closing ([`engineio::EngineIo::session_count`]).
    pub sessions: usize,
    /// Open WebSocket connections, upgrade probes and connections of closed
    /// sessions still being flushed included ([`engineio::EngineIo::websocket_count`]).
    pub websockets: usize,
    /// Namespaces of this server that are alive: the static ones, the
    /// dynamic children that have sockets (or are still referenced).
    pub namespaces: usize,
    /// Connected sockets, summed over the namespaces (a connection joined to
    /// two namespaces counts twice).
    pub sockets: usize,
    /// Rooms with at least one member, summed over the namespaces (the same
    /// name in two namespaces counts twice), from each namespace's adapter on
    /// this node; the room named by the id of a connected socket of that
    /// namespace is not counted, any other room is (a leftover id-room of a
    /// socket that left is).
    pub rooms: usize,
    /// Server→client acks awaiting an answer (`emit_with_ack`, broadcasts
    /// with acks), summed over every socket **of every server of this
    /// process** (the count is kept per process).
    pub pending_acks: usize,
    /// Disconnected sessions kept for connection state recovery, summed over
    /// the namespaces' adapters (expired ones not yet dropped included; 0
    /// without recovery or with an adapter that does not report it).
    pub recovery_sessions: usize,
    /// Events kept in the recovery logs, summed over the namespaces' adapters
    /// (expired ones not yet dropped included).
    pub recovery_packets: usize,
}

impl SocketIo {
    /// What this server holds right now; see [`ServerStats`]. Walks every
    /// namespace and its rooms: meant for a metrics endpoint, not the hot path.
    pub fn stats(&self) -> ServerStats {
        let mut stats = ServerStats {
            sessions: self.engine().session_count(),
            websockets: self.engine().websocket_count(),
            pending_acks: crate::ack::pending_acks(),
            ..ServerStats::default()
        };
        for ns in crate::ns::namespaces_of(self.config()) {
            let sockets = ns.all();
            let ids: HashSet<SocketId> = sockets.iter().map(Socket::id).collect();
            let adapter = ns.adapter();
            stats.namespaces += 1;
            stats.sockets += sockets.len();
            stats.rooms += adapter
                .rooms()
                .iter()
                // A socket's own room, and a v2 client's `<nsp>#<id>` one.
                .filter(|r| {
                    let id = r.rsplit_once('#').map_or(r.as_str(), |(_, id)| id);
                    !SocketId::parse(id).is_some_and(|id| ids.contains(&id))
                })
                .count();
            stats.recovery_sessions += adapter.kept_sessions();
            stats.recovery_packets += adapter.kept_packets();
        }
        stats
    }
}

//! The adapter: room bookkeeping and packet delivery for one namespace,
//! behind a trait so that a multi-node backend can replace the in-memory one.
//!
//! Every broadcast goes through [`Adapter::broadcast`] with a
//! [`BroadcastOptions`] (rooms, except, flags); the packet is encoded once by the
//! caller and shared by every recipient.

mod memory;
mod recovery;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub use memory::MemoryAdapter;
pub use recovery::{RecoveryStore, SessionState};

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::encoded::{Args, EncodedPacket};
use crate::error::Error;
use crate::ns::LocalNamespace;
use crate::socket::SocketId;

/// The future of an adapter's cluster operation.
pub type AdapterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A socket as another node describes it (the fields of the reference's
/// `RemoteSocket`): what a cluster-wide `fetch_sockets` returns for sockets
/// that are not on this node.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// Its handshake, in the reference's `socket.handshake` JSON shape.
    pub handshake: Value,
    /// Its rooms (including the one named by its id).
    pub rooms: Vec<Room>,
    /// Its `data`.
    pub data: Value,
}

impl SocketInfo {
    /// A description of a socket.
    pub fn new(id: SocketId, handshake: Value, rooms: Vec<Room>, data: Value) -> Self {
        SocketInfo {
            id,
            handshake,
            rooms,
            data,
        }
    }
}

/// What other nodes answered to a broadcast with acks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RemoteAcks {
    /// Each remote client's ack (its first argument), in order of arrival.
    pub responses: Vec<Args>,
    /// Whether every other node reported its recipients and every one of
    /// them answered before the timeout.
    pub complete: bool,
}

impl RemoteAcks {
    /// Answers from other nodes.
    pub fn new(responses: Vec<Args>, complete: bool) -> Self {
        RemoteAcks {
            responses,
            complete,
        }
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> AdapterFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

/// A room name. Every socket is also in the room named by its id.
pub type Room = String;

/// Flags of a broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastFlags {
    /// Drop the packet for recipients that cannot take it right now.
    pub volatile: bool,
    /// Only this node's sockets (no effect with the in-memory adapter).
    pub local: bool,
}

/// Who receives a broadcast: members of any of `rooms` (every socket of the
/// namespace when empty), minus members of any of `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Target rooms (union); empty means the whole namespace.
    pub rooms: HashSet<Room>,
    /// Excluded rooms (a socket id excludes that socket).
    pub except: HashSet<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
    /// Ack timeout for broadcasts with acks.
    pub timeout: Option<Duration>,
}

/// Room bookkeeping and delivery for one namespace.
///
/// Implementations must be cheap to call on every emit: `broadcast` is on the
/// hot path. The in-memory [`MemoryAdapter`] is the default.
///
/// # Clusters
/// A multi-node adapter (e.g. the `socketio-redis` crate) also implements
/// the `remote_*` methods and [`server_count`](Adapter::server_count): they
/// act on the *other* nodes only; the caller does the local part itself
/// through the sync methods above them. Their defaults describe a single
/// node (nothing elsewhere). `broadcast` is the exception: a cluster adapter
/// delivers locally *and* publishes, unless `opts.flags.local` is set. A
/// node that hears from another one acts on its own sockets through
/// [`LocalNamespace`].
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn add_all(&self, id: &SocketId, rooms: &[Room]);
    /// Removes a socket from one room.
    fn del(&self, id: &SocketId, room: &str);
    /// Removes a socket from every room (on disconnect).
    fn del_all(&self, id: &SocketId);
    /// The rooms a socket is in.
    fn socket_rooms(&self, id: &SocketId) -> Vec<Room>;
    /// The ids of the sockets that `opts` selects.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId>;
    /// Every room that has at least one member.
    fn rooms(&self) -> Vec<Room>;
    /// Delivers an encoded packet to every socket `opts` selects; returns how
    /// many local sockets it was queued for.
    fn broadcast(&self, packet: &EncodedPacket, opts: &BroadcastOptions) -> usize;

    // ----- clusters (optional; defaults: a single node) --------------------

    /// How many nodes serve this namespace, this one included.
    fn server_count(&self) -> AdapterFuture<'_, Result<usize, Error>> {
        ready(Ok(1))
    }

    /// Every room that has a member on another node.
    fn remote_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, Error>> {
        ready(Ok(Vec::new()))
    }

    /// The sockets that `opts` selects on other nodes.
    fn remote_fetch_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
    ) -> AdapterFuture<'a, Result<Vec<SocketInfo>, Error>> {
        let _ = opts;
        ready(Ok(Vec::new()))
    }

    /// Makes the sockets `opts` selects on other nodes join `rooms`.
    fn remote_add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let _ = (opts, rooms);
    }

    /// Makes the sockets `opts` selects on other nodes leave `rooms`.
    fn remote_del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let _ = (opts, rooms);
    }

    /// Disconnects the sockets `opts` selects on other nodes.
    fn remote_disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        let _ = (opts, close);
    }

    /// Sends `packet` (an event with an ack id the caller registered locally)
    /// to the sockets `opts` selects on other nodes, and collects their acks
    /// until each node's recipients answered or `timeout` passed.
    fn remote_broadcast_with_ack<'a>(
        &'a self,
        packet: &'a EncodedPacket,
        opts: &'a BroadcastOptions,
        timeout: Duration,
    ) -> AdapterFuture<'a, RemoteAcks> {
        let _ = (packet, opts, timeout);
        ready(RemoteAcks::new(Vec::new(), true))
    }

    /// Sends an event (`data` = `[event, ...args]`) to the other nodes'
    /// server-side handlers ([`Namespace::on_server_event`](crate::Namespace::on_server_event)).
    ///
    /// # Errors
    /// If it cannot be published.
    fn server_side_emit(&self, data: &Args) -> Result<(), Error> {
        let _ = data;
        Ok(())
    }

    /// As [`server_side_emit`](Adapter::server_side_emit), and collects one
    /// answer per other node.
    fn server_side_emit_with_ack<'a>(
        &'a self,
        data: &'a Args,
    ) -> AdapterFuture<'a, Result<Vec<Args>, Error>> {
        let _ = data;
        ready(Ok(Vec::new()))
    }

    // ----- connection state recovery (optional) ---------------------------

    /// A fresh offset for an event about to be emitted, when this adapter
    /// keeps an event log for connection state recovery (`None`: it does not).
    fn new_offset(&self) -> Option<String> {
        None
    }

    /// Keeps an emitted event (already carrying `offset` as its last argument).
    fn persist_packet(&self, offset: String, opts: &BroadcastOptions, packet: EncodedPacket) {
        let _ = (offset, opts, packet);
    }

    /// Keeps the state of a socket that left for a recoverable reason.
    fn persist_session(&self, session: SessionState) {
        let _ = session;
    }

    /// Takes back a kept session and the events it missed after `offset`, in
    /// order; `None` if unknown, expired, or the offset is no longer known.
    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> Option<(SessionState, Vec<EncodedPacket>)> {
        let _ = (pid, offset);
        None
    }

    /// The offset of the newest event kept (`None`: none, or no log).
    fn last_offset(&self) -> Option<String> {
        None
    }

    /// The events kept after `offset`, in order, that a socket in `rooms`
    /// was sent; `None` if `offset` is not in the log (or there is no log).
    /// A recovering socket gets these on top of what
    /// [`restore_session`](Self::restore_session) returned: the events of the
    /// time its middlewares ran.
    fn missed_after(&self, offset: &str, rooms: &[Room]) -> Option<Vec<EncodedPacket>> {
        let _ = (offset, rooms);
        None
    }

    /// Whether this adapter numbers events itself, from a log shared by the
    /// cluster (a Redis stream): then [`new_offset`](Self::new_offset) gives
    /// `None`, [`broadcast`](Self::broadcast) delivers each event with its
    /// offset once it is in the log (this node's sockets included), and with
    /// connection state recovery a socket's own `emit` goes through
    /// `broadcast` to the socket's room so that it is logged too. Default false.
    fn assigns_offsets(&self) -> bool {
        false
    }

    /// Restores a session from a store that is not in this process (a
    /// session record in Redis): `Some(future)` for such adapters, `None`
    /// (the default) for those that answer at once through
    /// [`restore_session`](Self::restore_session) and
    /// [`last_offset`](Self::last_offset). The future resolves to the
    /// session, the events it missed up to a point of the log, and that point
    /// (`mark`): what is delivered after it is read by
    /// [`missed_after`](Self::missed_after) when the socket joins.
    fn restore_session_async<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
    ) -> Option<AdapterFuture<'a, Option<RestoredSession>>> {
        let _ = (pid, offset);
        None
    }

    /// Disconnected sessions kept in this process for connection state
    /// recovery, expired ones not yet dropped included (statistics; default 0).
    fn kept_sessions(&self) -> usize {
        0
    }

    /// Events kept in this process's recovery log, expired ones not yet
    /// dropped included (statistics; default 0).
    fn kept_packets(&self) -> usize {
        0
    }

    /// The server is closing ([`SocketIo::close`](crate::SocketIo::close)):
    /// stop background work (timers, subscriptions). Called once per
    /// namespace, after its sockets left; the default does nothing.
    fn close(&self) -> AdapterFuture<'_, ()> {
        ready(())
    }
}

/// What [`Adapter::restore_session_async`] gives back.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoredSession {
    /// The session (id, pid, rooms, data).
    pub session: SessionState,
    /// The events it missed, in order, each carrying its offset.
    pub missed: Vec<EncodedPacket>,
    /// The log position up to which `missed` goes; later events come from
    /// [`Adapter::missed_after`] or live.
    pub mark: String,
}

impl RestoredSession {
    /// A restored session.
    pub fn new(session: SessionState, missed: Vec<EncodedPacket>, mark: String) -> Self {
        RestoredSession {
            session,
            missed,
            mark,
        }
    }
}

/// Builds the adapter of each namespace.
pub type AdapterFactory = Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>;

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

use crate::encoded::EncodedPacket;
use crate::ns::LocalNamespace;
use crate::socket::SocketId;

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
}

/// Builds the adapter of each namespace.
pub type AdapterFactory = Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>;

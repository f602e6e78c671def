//! The default adapter: rooms in memory, delivery to this process's sockets.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;

use super::recovery::{RecoveryStore, SessionState};
use super::{Adapter, BroadcastOptions, Room};
use crate::encoded::EncodedPacket;
use crate::ns::LocalNamespace;
use crate::socket::SocketId;

/// Rooms kept in two concurrent maps (room → members, socket → rooms).
#[derive(Debug)]
pub struct MemoryAdapter {
    ns: LocalNamespace,
    rooms: DashMap<Room, HashSet<SocketId>>,
    sids: DashMap<SocketId, HashSet<Room>>,
    recovery: Option<Arc<RecoveryStore>>,
    /// The recovery log's purge task, stopped by [`Adapter::close`].
    purge: Option<tokio::task::AbortHandle>,
}

impl MemoryAdapter {
    /// An empty adapter delivering to the sockets of `ns`; it keeps the
    /// recovery log if the server enables connection state recovery, and then
    /// (inside a tokio runtime) drops its expired entries periodically.
    pub fn new(ns: LocalNamespace) -> Self {
        let recovery = ns
            .recovery_config()
            .map(|c| Arc::new(RecoveryStore::new(c)));
        let mut purge = None;
        if let (Some(store), Ok(rt)) = (&recovery, tokio::runtime::Handle::try_current()) {
            let every = store.purge_interval();
            let store = Arc::downgrade(store);
            let task = rt.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.upgrade() {
                        Some(store) => store.purge_expired(),
                        None => return,
                    }
                }
            });
            purge = Some(task.abort_handle());
        }
        MemoryAdapter {
            ns,
            rooms: DashMap::new(),
            sids: DashMap::new(),
            recovery,
            purge,
        }
    }

    /// Whether `room` has at least one member.
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    fn is_excluded(&self, id: &SocketId, except: &HashSet<Room>) -> bool {
        !except.is_empty()
            && self
                .sids
                .get(id)
                .is_some_and(|rooms| rooms.iter().any(|r| except.contains(r)))
    }

    /// Calls `f` once for each selected socket id.
    fn for_each_target(&self, opts: &BroadcastOptions, mut f: impl FnMut(&SocketId)) {
        if opts.rooms.is_empty() {
            // Collect first: no map guard is held while delivering.
            for id in self.ns.ids() {
                if !self.is_excluded(&id, &opts.except) {
                    f(&id)
                }
            }
            return;
        }
        let mut seen: Option<HashSet<SocketId>> = (opts.rooms.len() > 1).then(HashSet::new);
        for room in &opts.rooms {
            // Collect the members first: no map guard is held while delivering.
            let members: Vec<SocketId> = match self.rooms.get(room) {
                Some(m) => m.iter().copied().collect(),
                None => continue,
            };
            for id in members {
                if let Some(seen) = seen.as_mut() {
                    if !seen.insert(id) {
                        continue;
                    }
                }
                if !self.is_excluded(&id, &opts.except) {
                    f(&id);
                }
            }
        }
    }
}

impl Adapter for MemoryAdapter {
    fn close(&self) -> super::AdapterFuture<'_, ()> {
        if let Some(task) = &self.purge {
            task.abort();
        }
        Box::pin(std::future::ready(()))
    }

    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        for room in rooms {
            self.rooms.entry(room.clone()).or_default().insert(*id);
        }
        self.sids
            .entry(*id)
            .or_default()
            .extend(rooms.iter().cloned());
    }

    fn del(&self, id: &SocketId, room: &str) {
        if let Some(mut set) = self.sids.get_mut(id) {
            set.remove(room);
        }
        self.rooms.remove_if_mut(room, |_, members| {
            members.remove(id);
            members.is_empty()
        });
    }

    fn del_all(&self, id: &SocketId) {
        let Some((_, rooms)) = self.sids.remove(id) else {
            return;
        };
        for room in rooms {
            self.rooms.remove_if_mut(&room, |_, members| {
                members.remove(id);
                members.is_empty()
            });
        }
    }

    fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        self.sids
            .get(id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        let mut out = Vec::new();
        self.for_each_target(opts, |id| out.push(*id));
        out
    }

    fn rooms(&self) -> Vec<Room> {
        self.rooms.iter().map(|e| e.key().clone()).collect()
    }

    fn new_offset(&self) -> Option<String> {
        self.recovery.as_ref().map(|r| r.new_offset())
    }

    fn persist_packet(&self, offset: String, opts: &BroadcastOptions, packet: EncodedPacket) {
        if let Some(r) = &self.recovery {
            r.persist_packet(offset, opts, packet);
        }
    }

    fn persist_session(&self, session: SessionState) {
        if let Some(r) = &self.recovery {
            r.persist_session(session);
        }
    }

    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> Option<(SessionState, Vec<EncodedPacket>)> {
        self.recovery.as_ref()?.restore_session(pid, offset)
    }

    fn last_offset(&self) -> Option<String> {
        self.recovery.as_ref()?.last_offset()
    }

    fn missed_after(&self, offset: &str, rooms: &[Room]) -> Option<Vec<EncodedPacket>> {
        self.recovery.as_ref()?.missed_after(offset, rooms)
    }

    fn kept_sessions(&self) -> usize {
        self.recovery.as_ref().map_or(0, |r| r.kept_sessions())
    }

    fn kept_packets(&self) -> usize {
        self.recovery.as_ref().map_or(0, |r| r.kept_packets())
    }

    fn broadcast(&self, packet: &EncodedPacket, opts: &BroadcastOptions) -> usize {
        let Some(ns) = self.ns.upgrade() else {
            return 0;
        };
        let mut n = 0;
        if opts.rooms.is_empty() {
            // The whole namespace: one pass over its sockets.
            for socket in ns.all().iter() {
                if !self.is_excluded(&socket.id(), &opts.except)
                    && socket.deliver(packet, opts.flags.volatile)
                {
                    n += 1;
                }
            }
            return n;
        }
        self.for_each_target(opts, |id| {
            if let Some(socket) = ns.get(id) {
                if socket.deliver(packet, opts.flags.volatile) {
                    n += 1;
                }
            }
        });
        n
    }
}

//! The in-memory store behind connection state recovery: a bounded, expiring
//! log of emitted events and the sessions of sockets that left.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use tokio::time::Instant;

use super::{BroadcastOptions, Room};
use crate::config::RecoveryConfig;
use crate::encoded::EncodedPacket;
use crate::socket::SocketId;

/// What is kept of a socket that left for a recoverable reason.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionState {
    /// The socket id it had (and gets back).
    pub sid: SocketId,
    /// Its private session id, known only to that client.
    pub pid: String,
    /// Its rooms.
    pub rooms: Vec<Room>,
    /// Its data.
    pub data: Value,
}

impl SessionState {
    /// A session record.
    pub fn new(sid: SocketId, pid: String, rooms: Vec<Room>, data: Value) -> Self {
        SessionState {
            sid,
            pid,
            rooms,
            data,
        }
    }
}

struct Kept {
    offset: String,
    rooms: Vec<Room>,
    except: Vec<Room>,
    packet: EncodedPacket,
    at: Instant,
}

/// Bounded event log and session table; see [`RecoveryConfig`] for the bounds.
pub struct RecoveryStore {
    config: RecoveryConfig,
    prefix: String,
    counter: AtomicU64,
    log: Mutex<VecDeque<Kept>>,
    sessions: Mutex<HashMap<String, (SessionState, Instant)>>,
}

impl std::fmt::Debug for RecoveryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RecoveryStore {
    /// An empty store.
    pub fn new(config: RecoveryConfig) -> Self {
        // A per-process prefix so that offsets of an earlier process never match.
        let prefix = SocketId::generate()
            .as_str()
            .get(..8)
            .unwrap_or("")
            .to_owned();
        RecoveryStore {
            config,
            prefix,
            counter: AtomicU64::new(0),
            log: Mutex::new(VecDeque::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh, unique offset.
    pub fn new_offset(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }

    fn expired(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) > self.config.max_disconnection_duration
    }

    /// Keeps an emitted event.
    pub fn persist_packet(&self, offset: String, opts: &BroadcastOptions, packet: EncodedPacket) {
        let now = Instant::now();
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        while log
            .front()
            .is_some_and(|k| self.expired(k.at, now) || log.len() >= self.config.max_kept_packets)
        {
            log.pop_front();
        }
        if self.config.max_kept_packets == 0 {
            return;
        }
        log.push_back(Kept {
            offset,
            rooms: opts.rooms.iter().cloned().collect(),
            except: opts.except.iter().cloned().collect(),
            packet,
            at: now,
        });
    }

    /// Keeps a session.
    pub fn persist_session(&self, session: SessionState) {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, (_, at)| !self.expired(*at, now));
        while sessions.len() >= self.config.max_kept_sessions.max(1) {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(pid, _)| pid.clone());
            match oldest {
                Some(pid) => sessions.remove(&pid),
                None => break,
            };
        }
        if self.config.max_kept_sessions > 0 {
            sessions.insert(session.pid.clone(), (session, now));
        }
    }

    /// Sessions kept, expired ones not yet dropped included.
    pub fn kept_sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Events kept, expired ones not yet dropped included.
    pub fn kept_packets(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Drops the expired sessions and events (they are otherwise dropped only
    /// when new ones are kept; [`MemoryAdapter`](crate::MemoryAdapter) calls
    /// this periodically, as the reference's in-memory adapter does).
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (_, at)| !self.expired(*at, now));
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        while log.front().is_some_and(|k| self.expired(k.at, now)) {
            log.pop_front();
        }
    }

    /// How often [`purge_expired`](Self::purge_expired) should run: the
    /// maximum disconnection duration, within 1 s to 60 s.
    pub fn purge_interval(&self) -> std::time::Duration {
        self.config.max_disconnection_duration.clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(60),
        )
    }

    /// Takes a session back with the events it missed after `offset`.
    pub fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> Option<(SessionState, Vec<EncodedPacket>)> {
        let now = Instant::now();
        let (session, at) = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(pid)?;
        if self.expired(at, now) {
            return None;
        }
        let missed = self.missed_after(offset, &session.rooms)?;
        Some((session, missed))
    }

    /// The offset of the newest event kept, if any.
    pub fn last_offset(&self) -> Option<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .back()
            .map(|k| k.offset.clone())
    }

    /// The events kept after `offset`, in order, that a socket in `rooms`
    /// was sent; `None` if `offset` is no longer (or was never) in the log.
    pub fn missed_after(&self, offset: &str, rooms: &[Room]) -> Option<Vec<EncodedPacket>> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let start = log.iter().position(|k| k.offset == offset)?;
        let missed = log
            .iter()
            .skip(start + 1)
            .filter(|k| {
                let included = k.rooms.is_empty() || rooms.iter().any(|r| k.rooms.contains(r));
                let excluded = rooms.iter().any(|r| k.except.contains(r));
                included && !excluded
            })
            .map(|k| k.packet.clone())
            .collect();
        Some(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|s| s.to_string()).collect(),
            except: except.iter().map(|s| s.to_string()).collect(),
            ..BroadcastOptions::default()
        }
    }

    fn packet(text: &str) -> EncodedPacket {
        EncodedPacket::from_text(text.to_owned())
    }

    fn session(pid: &str, rooms: &[&str]) -> SessionState {
        SessionState::new(
            SocketId::generate(),
            pid.to_owned(),
            rooms.iter().map(|s| s.to_string()).collect(),
            Value::Null,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn restores_missed_events_for_the_session_rooms_in_order() {
        let store = RecoveryStore::new(RecoveryConfig::default());
        let o0 = store.new_offset();
        store.persist_packet(o0.clone(), &opts(&[], &[]), packet("seen"));
        store.persist_session(session("p1", &["a", "me"]));
        for (i, (rooms, except)) in [
            (vec!["a"], vec![]),
            (vec!["b"], vec![]),
            (vec![], vec![]),
            (vec![], vec!["a"]),
            (vec!["me"], vec![]),
        ]
        .into_iter()
        .enumerate()
        {
            let off = store.new_offset();
            store.persist_packet(off, &opts(&rooms, &except), packet(&format!("p{i}")));
        }
        let (s, missed) = store.restore_session("p1", &o0).unwrap();
        assert_eq!(s.pid, "p1");
        let texts: Vec<&str> = missed.iter().map(|p| p.text()).collect();
        assert_eq!(texts, ["p0", "p2", "p4"]);
        // Taken: a second restore fails.
        assert!(store.restore_session("p1", &o0).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_and_offsets_expire() {
        let store = RecoveryStore::new(
            RecoveryConfig::default().max_disconnection_duration(Duration::from_secs(10)),
        );
        let o0 = store.new_offset();
        store.persist_packet(o0.clone(), &opts(&[], &[]), packet("x"));
        store.persist_session(session("p", &[]));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.restore_session("p", &o0).is_none());
        assert!(store.restore_session("unknown", &o0).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn purge_drops_what_expired_and_keeps_the_rest() {
        let store = RecoveryStore::new(
            RecoveryConfig::default().max_disconnection_duration(Duration::from_secs(10)),
        );
        assert_eq!(store.purge_interval(), Duration::from_secs(10));
        store.persist_packet(store.new_offset(), &opts(&[], &[]), packet("old"));
        store.persist_session(session("old", &[]));
        tokio::time::advance(Duration::from_secs(6)).await;
        let recent = store.new_offset();
        store.persist_packet(recent.clone(), &opts(&[], &[]), packet("recent"));
        store.persist_session(session("recent", &[]));
        assert_eq!((store.kept_sessions(), store.kept_packets()), (2, 2));
        tokio::time::advance(Duration::from_secs(5)).await;
        store.purge_expired();
        assert_eq!((store.kept_sessions(), store.kept_packets()), (1, 1));
        assert!(store.restore_session("recent", &recent).is_some());
        tokio::time::advance(Duration::from_secs(11)).await;
        store.purge_expired();
        assert_eq!((store.kept_sessions(), store.kept_packets()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn bounds_hold() {
        let store = RecoveryStore::new(
            RecoveryConfig::default()
                .max_kept_packets(3)
                .max_kept_sessions(2),
        );
        let first = store.new_offset();
        store.persist_packet(first.clone(), &opts(&[], &[]), packet("0"));
        for i in 1..10 {
            store.persist_packet(store.new_offset(), &opts(&[], &[]), packet(&i.to_string()));
        }
        assert_eq!(store.log.lock().unwrap().len(), 3);
        store.persist_session(session("a", &[]));
        tokio::time::advance(Duration::from_millis(1)).await;
        store.persist_session(session("b", &[]));
        tokio::time::advance(Duration::from_millis(1)).await;
        store.persist_session(session("c", &[]));
        assert_eq!(store.sessions.lock().unwrap().len(), 2);
        // The oldest session went first; the dropped offset cannot recover.
        assert!(store.restore_session("b", &first).is_none());
        assert!(store.sessions.lock().unwrap().get("a").is_none());
    }
}

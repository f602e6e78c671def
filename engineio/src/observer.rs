//! [`EngineObserver`]: what happens to the sessions of an engine, for
//! metrics and dashboards (the Socket.IO Admin UI's aggregated events).
//!
//! Installed once with [`EngineIo::set_observer`](crate::EngineIo::set_observer);
//! each session takes the observer installed when it opens, so sessions
//! opened before see nothing (as listeners added to Node's engine after a
//! connection do not see it). Without one, the cost is one `Option` check per
//! message.

use crate::packet::Message;
use crate::proto::{CloseReason, Transport};
use crate::sid::Sid;

/// Sees every session of an engine open, upgrade and close, and every
/// message it receives or queues.
///
/// Called synchronously on the transports' tasks and in the senders' calls,
/// never under a session lock: keep it cheap (counters), never block.
/// Every method has an empty default.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use engineio::{EngineConfig, EngineIo, EngineObserver, Message};
///
/// #[derive(Default)]
/// struct BytesIn(AtomicU64);
///
/// impl EngineObserver for BytesIn {
///     fn message_received(&self, message: &Message) {
///         self.0.fetch_add(message.len() as u64, Ordering::Relaxed);
///     }
/// }
///
/// let engine = EngineIo::new(EngineConfig::default(), |_s, _i| async {}).unwrap();
/// let counter = Arc::new(BytesIn::default());
/// assert!(engine.set_observer(counter.clone()));
/// assert!(!engine.set_observer(counter)); // once only
/// ```
pub trait EngineObserver: Send + Sync + 'static {
    /// A session opened on `transport` (its open packet is queued).
    fn session_opened(&self, sid: Sid, transport: Transport) {
        let _ = (sid, transport);
    }

    /// A session moved from polling to WebSocket (the client's upgrade packet).
    fn session_upgraded(&self, sid: Sid) {
        let _ = sid;
    }

    /// A session closed, for `reason`, while on `transport`.
    fn session_closed(&self, sid: Sid, reason: CloseReason, transport: Transport) {
        let _ = (sid, reason, transport);
    }

    /// A message arrived and is handed to the application.
    fn message_received(&self, message: &Message) {
        let _ = message;
    }

    /// The application queued `messages` messages of `bytes` bytes in all
    /// (bodies only: text in UTF-8 bytes, binary in bytes).
    fn messages_sent(&self, messages: usize, bytes: usize) {
        let _ = (messages, bytes);
    }
}

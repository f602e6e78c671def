//! The glue around one session's state machine: the shared cell that the
//! transports, the timer task and the application's [`Socket`] handle all use.
//!
//! Locking: one `std::sync::Mutex` per session, never held across an `.await`.
//! Wake-ups: `changed` (all waiters: pending GET, WebSocket writers, `closed()`)
//! and `timer` (the session's timer task).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use tokio::sync::{Notify, mpsc};

use crate::error::Error;
use crate::packet::{Message, Str};
use crate::proto::{CloseReason, Session, Transport};
use crate::sid::Sid;

/// What the server knows of the HTTP request that opened a session.
#[derive(Debug, Clone)]
pub struct HandshakeRequest {
    /// Request method (`GET`).
    pub method: Method,
    /// Full request URI (path and query).
    pub uri: Uri,
    /// Request headers (shared with the messages this request carried).
    pub headers: Arc<HeaderMap>,
    /// The peer's address, when the server knows it (see [`ConnectInfo`](crate::ConnectInfo)).
    pub remote_addr: Option<SocketAddr>,
    /// When the request arrived.
    pub issued: std::time::SystemTime,
    query: Vec<(String, String)>,
}

impl HandshakeRequest {
    pub(crate) fn from_parts(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        remote_addr: Option<SocketAddr>,
        query: Vec<(String, String)>,
    ) -> Self {
        HandshakeRequest {
            method,
            uri,
            headers: Arc::new(headers),
            remote_addr,
            issued: std::time::SystemTime::now(),
            query,
        }
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }
}

/// The registry a session removes itself from when it closes.
pub(crate) trait Registry: Send + Sync {
    fn remove(&self, sid: &Sid);
}

pub(crate) struct Shared {
    pub(crate) sid: Sid,
    core: Mutex<Session>,
    pub(crate) changed: Notify,
    pub(crate) timer: Notify,
    /// Notified (all waiters) once, when the session closes.
    pub(crate) closed: Notify,
    incoming: Mutex<Option<mpsc::Sender<Received>>>,
    pub(crate) handshake: HandshakeRequest,
    registry: Weak<dyn Registry>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// The current instant of the (possibly paused) tokio clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Shared {
    pub(crate) fn new(
        sid: Sid,
        session: Session,
        handshake: HandshakeRequest,
        registry: Weak<dyn Registry>,
        incoming_bound: usize,
    ) -> (Arc<Shared>, Incoming) {
        let (tx, rx) = mpsc::channel(incoming_bound);
        let shared = Arc::new(Shared {
            sid,
            core: Mutex::new(session),
            changed: Notify::new(),
            timer: Notify::new(),
            closed: Notify::new(),
            incoming: Mutex::new(Some(tx)),
            handshake,
            registry,
        });
        (shared, Incoming { rx })
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state machine; if that closed the session, finishes the
    /// close (registry, application, wake-ups) after releasing the lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        let (r, closed) = {
            let mut s = self.lock();
            let r = f(&mut s);
            (r, s.take_close_event())
        };
        if let Some(reason) = closed {
            self.finish_close(reason);
        }
        r
    }

    /// Runs `f`, then wakes every waiter: for state changes other than sends.
    pub(crate) fn with_wake<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        let r = self.with(f);
        self.wake();
        r
    }

    pub(crate) fn wake(&self) {
        self.changed.notify_waiters();
        self.timer.notify_one();
    }

    fn finish_close(&self, reason: CloseReason) {
        tracing::info!(sid = %self.sid, %reason, "session closed");
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(&self.sid);
        }
        // Dropping our sender ends the application's `Incoming` once the
        // transports drop their clones.
        self.incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.wake();
        self.closed.notify_waiters();
    }

    /// Waits until the session is closed.
    pub(crate) async fn wait_closed(&self) -> CloseReason {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if let Some(r) = self.with(|s| s.close_reason()) {
                return r;
            }
            closed.await;
        }
    }

    /// A sender for received messages, while the session is open.
    pub(crate) fn incoming_sender(&self) -> Option<mpsc::Sender<Received>> {
        self.incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn send_messages(&self, msgs: impl ExactSizeIterator<Item = Message>) -> Result<(), Error> {
        let was_empty = self.with(|s| s.send(msgs))?;
        if was_empty {
            self.changed.notify_waiters();
        }
        Ok(())
    }
}

/// Drives the session's timers (heartbeat, upgrade timeout, close wait) until
/// it closes.
pub(crate) async fn run_timer(shared: Arc<Shared>) {
    loop {
        let wake = shared.timer.notified();
        let Some(deadline) = shared.with(|s| s.poll_timeout()) else {
            break;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                shared.with_wake(|s| s.handle_timeout(now()));
            }
            _ = wake => {}
        }
    }
}

/// A handle on one Engine.IO session: send messages, close it, read its
/// handshake. Cheap to clone; all clones act on the same session.
///
/// Sending never blocks: messages are queued (bounded by
/// [`EngineConfig::max_buffered_packets`](crate::EngineConfig::max_buffered_packets))
/// and written by the session's transport.
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("sid", &self.shared.sid)
            .field("transport", &self.transport())
            .finish()
    }
}

impl Socket {
    /// The session id.
    pub fn sid(&self) -> Sid {
        self.shared.sid
    }

    /// The transport the session is on now.
    pub fn transport(&self) -> Transport {
        self.shared.with(|s| s.transport())
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &HandshakeRequest {
        &self.shared.handshake
    }

    /// Queues a message.
    ///
    /// # Errors
    /// [`Error::Closed`] once the session is closed or closing;
    /// [`Error::QueueFull`] if the outbound bound is reached (the session is
    /// then closed with [`CloseReason::QueueFull`]).
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        self.shared.send_messages(std::iter::once(msg.into()))
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&self, text: impl Into<Str>) -> Result<(), Error> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues several messages at once, all or none, with nothing of another
    /// sender in between (e.g. a Socket.IO packet and its attachments).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_all(&self, msgs: Vec<Message>) -> Result<(), Error> {
        self.shared.send_messages(msgs.into_iter())
    }

    /// As [`send_all`](Self::send_all), from a slice: the messages are cloned
    /// (shared buffers, no copy), so one prepared list can go to many sessions.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_slice(&self, msgs: &[Message]) -> Result<(), Error> {
        self.shared.send_messages(msgs.iter().cloned())
    }

    /// Queues messages (all or none) only if the transport can write them
    /// right now, and drops them otherwise: for volatile data such as typing
    /// indicators or positions. Returns whether they were queued.
    pub fn send_volatile(&self, msgs: &[Message]) -> bool {
        let queued = self.shared.with(|s| s.send_volatile(msgs.iter().cloned()));
        if queued {
            self.shared.changed.notify_waiters();
        }
        queued
    }

    /// Closes the session: what is queued is still delivered, then the close.
    pub fn close(&self) {
        self.shared
            .with_wake(|s| s.close_gracefully(now(), CloseReason::ForcedClose));
    }

    /// Whether the session is still open for sending.
    pub fn is_open(&self) -> bool {
        self.shared.with(|s| s.is_open())
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.with(|s| s.close_reason())
    }

    /// Waits until the session is closed and returns why.
    pub async fn closed(&self) -> CloseReason {
        self.shared.wait_closed().await
    }
}

/// The messages a session receives, in order. Ends (`None`) when the session
/// has closed and every received message has been taken.
///
/// Holds at most
/// [`EngineConfig::max_buffered_incoming`](crate::EngineConfig::max_buffered_incoming)
/// messages; while it is full the session's transport stops reading.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Received>,
}

/// A received message with the headers of the HTTP request that carried it:
/// the polling POST, or the WebSocket upgrade request.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) message: Message,
    pub(crate) headers: Arc<HeaderMap>,
}

impl Incoming {
    /// The next message, or `None` once the session is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await.map(|r| r.message)
    }

    /// The next message with the headers of the HTTP request that carried it
    /// (the polling POST, or the WebSocket's upgrade request).
    pub async fn recv_with_headers(&mut self) -> Option<(Message, Arc<HeaderMap>)> {
        self.rx.recv().await.map(|r| (r.message, r.headers))
    }
}

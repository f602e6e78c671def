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
use http::{HeaderMap, HeaderValue, Method, Uri};
use std::collections::VecDeque;

use tokio::sync::Notify;

use crate::error::Error;
use crate::observer::EngineObserver;
use crate::packet::{Message, Str};
use crate::proto::{CloseReason, Protocol, Session, Transport};
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
        let (uri, headers) = detach(&uri, &headers);
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

/// Copies a request's URI and header values into one buffer of their own.
///
/// hyper parses them as slices of its connection's read buffer (8 KiB), so a
/// kept clone would keep that whole buffer alive for the session's life.
pub(crate) fn detach(uri: &Uri, headers: &HeaderMap) -> (Uri, HeaderMap) {
    let uri_text = uri.to_string();
    let len = uri_text.len() + headers.iter().map(|(_, v)| v.len()).sum::<usize>();
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(uri_text.as_bytes());
    for (_, v) in headers {
        buf.extend_from_slice(v.as_bytes());
    }
    let buf = Bytes::from(buf);
    let mut at = uri_text.len();
    let uri = buf
        .get(..at)
        .and_then(|b| Uri::from_maybe_shared(buf.slice_ref(b)).ok())
        .unwrap_or_else(|| uri.clone());
    let mut out = headers.clone();
    for (_, v) in &mut out {
        let end = at + v.len();
        if let Some(copy) = buf
            .get(at..end)
            .and_then(|b| HeaderValue::from_maybe_shared(buf.slice_ref(b)).ok())
        {
            let sensitive = v.is_sensitive();
            *v = copy;
            v.set_sensitive(sensitive);
        }
        at = end;
    }
    (uri, out)
}

/// The registry a session removes itself from when it closes.
pub(crate) trait Registry: Send + Sync {
    fn remove(&self, sid: &Sid);
}

pub(crate) struct Shared {
    pub(crate) sid: Sid,
    /// The protocol revision (fixed at the handshake).
    pub(crate) protocol: Protocol,
    /// v3 only: the handshake asked for `b64=1`, so polling responses carry
    /// binary as `b4<base64>` text (the reference decides `supportsBinary`
    /// once, from the query of the request that created the transport:
    /// `packages/engine.io/lib/transport.ts`).
    pub(crate) b64: bool,
    core: Mutex<Session>,
    pub(crate) changed: Notify,
    pub(crate) timer: Notify,
    /// Notified (all waiters) once, when the session closes.
    pub(crate) closed: Notify,
    /// Notified (all waiters) when the outbound queue falls back under the
    /// high-water mark, and when the session closes.
    room: Notify,
    inbox: Mutex<Inbox>,
    /// Wakes the application's [`Incoming`]: a message, or its end.
    inbox_ready: Notify,
    /// Wakes transports waiting for room in the inbox.
    inbox_room: Notify,
    pub(crate) handshake: HandshakeRequest,
    registry: Weak<dyn Registry>,
    /// The engine's observer when the session opened (see `observer.rs`).
    pub(crate) observer: Option<Arc<dyn EngineObserver>>,
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
        b64: bool,
        observer: Option<Arc<dyn EngineObserver>>,
    ) -> (Arc<Shared>, Incoming) {
        let protocol = session.protocol();
        let shared = Arc::new(Shared {
            sid,
            protocol,
            b64,
            core: Mutex::new(session),
            changed: Notify::new(),
            timer: Notify::new(),
            closed: Notify::new(),
            room: Notify::new(),
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                bound: incoming_bound.max(1),
                open: true,
                senders: 1,
                receiver: true,
            }),
            inbox_ready: Notify::new(),
            inbox_room: Notify::new(),
            handshake,
            registry,
            observer,
        });
        let incoming = Incoming {
            shared: shared.clone(),
        };
        (shared, incoming)
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state machine; if that closed the session, finishes the
    /// close (registry, application, wake-ups) after releasing the lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        let (r, closed, room) = {
            let mut s = self.lock();
            let r = f(&mut s);
            (r, s.take_close_event(), s.take_room_signal())
        };
        if room {
            self.room.notify_waiters();
        }
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
        if let Some(o) = &self.observer {
            o.session_closed(self.sid, reason, self.lock().transport());
        }
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(&self.sid);
        }
        // Dropping our sender ends the application's `Incoming` once the
        // transports drop theirs.
        {
            let mut inbox = self.inbox();
            if inbox.open {
                inbox.open = false;
                inbox.senders -= 1;
            }
        }
        self.inbox_ready.notify_one();
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

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A sender for received messages, while the session is open.
    pub(crate) fn incoming_sender(self: &Arc<Self>) -> Option<InboxSender> {
        let mut inbox = self.inbox();
        if !inbox.open {
            return None;
        }
        inbox.senders += 1;
        Some(InboxSender {
            shared: self.clone(),
        })
    }

    /// Wakes the application reading the inbox.
    pub(crate) fn notify_inbox(&self) {
        self.inbox_ready.notify_one();
    }

    fn send_messages(
        self: &Arc<Self>,
        msgs: impl ExactSizeIterator<Item = Message> + Clone,
    ) -> Result<Backlog, Error> {
        let counted = self
            .observer
            .as_ref()
            .map(|o| (o, msgs.len(), msgs.clone().map(|m| m.len()).sum::<usize>()));
        let sent = self.with(|s| s.send(msgs))?;
        if let Some((o, n, bytes)) = counted {
            o.messages_sent(n, bytes);
        }
        if sent.wake {
            // Once per burst and session: see `wake.rs`.
            crate::wake::writer(self);
        }
        if sent.crossed {
            // Rare: only when this send took the queue over the mark.
            self.with(|s| s.arm_stall(now()));
            self.timer.notify_one();
        }
        Ok(if sent.over {
            Backlog::High
        } else {
            Backlog::Normal
        })
    }

    /// Waits until the outbound queue is at or under the high-water mark.
    pub(crate) async fn wait_room(&self) -> Result<(), Error> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.with(|s| (s.is_open(), s.is_over_high_water())) {
                (false, _) => return Err(Error::Closed),
                (true, false) => return Ok(()),
                (true, true) => {}
            }
            room.await;
        }
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

/// How full a session's outbound queue is after a send that queued.
///
/// See [`EngineConfig::high_water_mark`](crate::EngineConfig::high_water_mark)
/// for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backlog {
    /// At or under the high-water mark.
    Normal,
    /// Over the high-water mark: the message is queued, but the client reads
    /// slower than the server writes. If the client takes nothing for
    /// `slow_client_timeout`, or the queue reaches `max_buffered_bytes`, the
    /// session is closed. A sender of a long stream should wait for
    /// [`Socket::writable`] before sending more.
    High,
}

impl Backlog {
    /// Whether the queue is over the high-water mark.
    pub fn is_high(self) -> bool {
        self == Backlog::High
    }
}

/// A handle on one Engine.IO session: send messages, close it, read its
/// handshake. Cheap to clone; all clones act on the same session.
///
/// Sending never blocks: messages are queued and written by the session's
/// transport. The queue is bounded in bytes; see
/// [`EngineConfig::high_water_mark`](crate::EngineConfig::high_water_mark)
/// for the policy, and [`writable`](Self::writable) to wait for room.
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

    /// The Engine.IO protocol revision the client speaks (v3 only with
    /// [`EngineConfig::allow_eio3`](crate::EngineConfig::allow_eio3)).
    pub fn protocol(&self) -> Protocol {
        self.shared.protocol
    }

    /// The transport the session is on now.
    pub fn transport(&self) -> Transport {
        self.shared.with(|s| s.transport())
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &HandshakeRequest {
        &self.shared.handshake
    }

    /// Queues a message. Returns [`Backlog::High`] if the queue is now over the
    /// high-water mark (the message is queued all the same).
    ///
    /// # Errors
    /// [`Error::Closed`] once the session is closed or closing;
    /// [`Error::QueueFull`] if the message would take the queue over
    /// `max_buffered_bytes` (nothing is queued, and the session is closed
    /// with [`CloseReason::QueueFull`]).
    pub fn send(&self, msg: impl Into<Message>) -> Result<Backlog, Error> {
        self.shared.send_messages(std::iter::once(msg.into()))
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&self, text: impl Into<Str>) -> Result<Backlog, Error> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<Backlog, Error> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues several messages at once, all or none, with nothing of another
    /// sender in between (e.g. a Socket.IO packet and its attachments).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_all(&self, msgs: Vec<Message>) -> Result<Backlog, Error> {
        self.shared.send_messages(msgs.into_iter())
    }

    /// As [`send_all`](Self::send_all), from a slice: the messages are cloned
    /// (shared buffers, no copy), so one prepared list can go to many sessions.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_slice(&self, msgs: &[Message]) -> Result<Backlog, Error> {
        self.shared.send_messages(msgs.iter().cloned())
    }

    /// Queues messages (all or none) only if the transport can write them
    /// right now, and drops them otherwise: for volatile data such as typing
    /// indicators or positions. Returns whether they were queued.
    pub fn send_volatile(&self, msgs: &[Message]) -> bool {
        let queued = self.shared.with(|s| s.send_volatile(msgs.iter().cloned()));
        if queued {
            self.shared.changed.notify_waiters();
            if let Some(o) = &self.shared.observer {
                o.messages_sent(msgs.len(), msgs.iter().map(Message::len).sum());
            }
        }
        queued
    }

    /// Bytes waiting in the outbound queue (each message counts its length
    /// plus 64 bytes of bookkeeping), not counting the batch a WebSocket
    /// writer is writing (at most 64 KiB or one message).
    pub fn buffered_bytes(&self) -> usize {
        self.shared.with(|s| s.queued_bytes())
    }

    /// Waits until the outbound queue is at or under the high-water mark:
    /// at once if it is. For a producer of a long stream to one client
    /// (a file, a history replay): send until [`Backlog::High`], then await
    /// this before sending more, so that the stream goes at the client's pace
    /// and the session is never cut off for it.
    ///
    /// # Errors
    /// [`Error::Closed`] once the session is closed or closing.
    pub async fn writable(&self) -> Result<(), Error> {
        self.shared.wait_room().await
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

/// The session's received messages not yet taken by the application: a small
/// bounded queue in the session's cell (no channel allocation per session).
struct Inbox {
    queue: VecDeque<Received>,
    /// `max_buffered_incoming`: senders wait while the queue holds this many.
    bound: usize,
    /// The session's own sender is alive (until the session closes).
    open: bool,
    /// Live senders: the session's own while `open`, plus the transports'.
    senders: usize,
    /// The application's [`Incoming`] is alive; without it, messages are dropped.
    receiver: bool,
}

/// A transport's handle for handing received messages to the application.
/// While any is alive, [`Incoming`] does not end.
pub(crate) struct InboxSender {
    shared: Arc<Shared>,
}

impl InboxSender {
    /// Queues a message, waiting while the inbox is full (backpressure).
    /// The message is dropped if the application no longer takes messages.
    pub(crate) async fn send(&self, mut received: Received) {
        loop {
            let room = self.shared.inbox_room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_send(received) {
                Some(r) => received = r,
                None => return,
            }
            room.await;
        }
    }

    /// Queues a message if there is room; returns it if the inbox is full.
    /// The message is dropped if the application no longer takes messages.
    pub(crate) fn try_send(&self, received: Received) -> Option<Received> {
        let shared = &*self.shared;
        let was_empty = {
            let mut inbox = shared.inbox();
            if !inbox.receiver {
                return None;
            }
            if inbox.queue.len() >= inbox.bound {
                return Some(received);
            }
            if let Some(o) = &shared.observer {
                o.message_received(&received.message);
            }
            inbox.queue.push_back(received);
            inbox.queue.len() == 1
        };
        // The reader only waits after finding the inbox empty, so a push
        // onto a non-empty inbox needs no wake-up.
        if was_empty {
            crate::wake::inbox(&self.shared);
        }
        None
    }

    /// Whether every queued message has been taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.inbox().queue.is_empty()
    }
}

impl Drop for InboxSender {
    fn drop(&mut self) {
        let last = {
            let mut inbox = self.shared.inbox();
            inbox.senders -= 1;
            inbox.senders == 0
        };
        if last {
            self.shared.inbox_ready.notify_one();
        }
    }
}

/// The messages a session receives, in order. Ends (`None`) when the session
/// has closed and every received message has been taken.
///
/// Holds at most
/// [`EngineConfig::max_buffered_incoming`](crate::EngineConfig::max_buffered_incoming)
/// messages; while it is full the session's transport stops reading.
pub struct Incoming {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("sid", &self.shared.sid)
            .finish_non_exhaustive()
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let dropped = {
            let mut inbox = self.shared.inbox();
            inbox.receiver = false;
            std::mem::take(&mut inbox.queue)
        };
        drop(dropped);
        self.shared.inbox_room.notify_waiters();
    }
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
    ///
    /// Cancel safe: a message is taken only when the future completes.
    pub async fn recv(&mut self) -> Option<Message> {
        self.next().await.map(|r| r.message)
    }

    /// The next message with the headers of the HTTP request that carried it
    /// (the polling POST, or the WebSocket's upgrade request).
    ///
    /// Cancel safe, as [`recv`](Self::recv).
    pub async fn recv_with_headers(&mut self) -> Option<(Message, Arc<HeaderMap>)> {
        self.next().await.map(|r| (r.message, r.headers))
    }

    async fn next(&mut self) -> Option<Received> {
        let shared = &*self.shared;
        loop {
            let ready = shared.inbox_ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            {
                let mut inbox = shared.inbox();
                let was_full = inbox.queue.len() >= inbox.bound;
                if let Some(r) = inbox.queue.pop_front() {
                    if inbox.queue.is_empty() {
                        // An idle session keeps no queue allocation.
                        inbox.queue = VecDeque::new();
                    }
                    drop(inbox);
                    if was_full {
                        shared.inbox_room.notify_waiters();
                    }
                    return Some(r);
                }
                if inbox.senders == 0 {
                    return None;
                }
            }
            ready.await;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::packet::Packet;

    struct NoRegistry;
    impl Registry for NoRegistry {
        fn remove(&self, _: &Sid) {}
    }

    /// A WebSocket session whose open packet the writer already took.
    pub(crate) fn ws_shared() -> (Arc<Shared>, Incoming, u64) {
        use crate::proto::Timings;
        use std::time::Duration;
        let timings = Timings {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            upgrade_timeout: Duration::from_secs(10),
            close_wait: Duration::from_secs(5),
            high_water_mark: 1 << 20,
            max_buffered_bytes: 1 << 24,
            slow_client_timeout: Duration::from_secs(30),
        };
        let session = Session::new(
            now(),
            crate::Transport::WebSocket,
            Packet::Open(Str::from("{}")),
            timings,
        );
        let conn = session.initial_ws_conn().unwrap();
        let handshake = HandshakeRequest::from_parts(
            Method::GET,
            Uri::from_static("/engine.io/"),
            HeaderMap::new(),
            None,
            Vec::new(),
        );
        let registry: Arc<dyn Registry> = Arc::new(NoRegistry);
        let (shared, incoming) = Shared::new(
            Sid::generate(),
            session,
            handshake,
            Arc::downgrade(&registry),
            16,
            false,
            None,
        );
        assert!(matches!(
            shared.with(|s| s.take_ws(now(), conn)),
            crate::proto::WsOutput::Packets(_)
        ));
        (shared, incoming, conn)
    }

    /// Whether `n` has been notified, without waiting.
    fn notified(n: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
        let waker = std::task::Waker::noop();
        n.poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
    }

    /// Regression test for the 2-thread fanout cost (BENCHMARKS.md, multi-core):
    /// a burst of sends made in one poll of an engine task wakes the writer
    /// once, when the poll ends, not once per send while it is still queueing.
    #[tokio::test]
    async fn a_burst_sent_in_one_poll_wakes_the_writer_once_at_its_end() {
        let (shared, _incoming, conn) = ws_shared();
        let socket = Socket {
            shared: shared.clone(),
        };
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        crate::wake::batched(std::future::poll_fn(|_| {
            for _ in 0..100 {
                socket.send_text("burst").unwrap();
            }
            assert_eq!(crate::wake::pending(), 1, "one wake-up for the whole burst");
            assert!(
                !notified(changed.as_mut()),
                "the writer is not woken mid-burst"
            );
            std::task::Poll::Ready(())
        }))
        .await;
        assert!(notified(changed.as_mut()), "woken when the poll ends");
        assert_eq!(crate::wake::pending(), 0);
        match shared.with(|s| s.take_ws(now(), conn)) {
            crate::proto::WsOutput::Packets(p) => assert_eq!(p.len(), 100),
            other => panic!("{other:?}"),
        }
    }

    /// Outside an engine task (a task the application spawned), a send wakes
    /// the writer at once, as before.
    #[tokio::test]
    async fn a_send_outside_any_engine_task_wakes_at_once() {
        let (shared, _incoming, _conn) = ws_shared();
        let socket = Socket {
            shared: shared.clone(),
        };
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        socket.send_text("one").unwrap();
        assert!(notified(changed.as_mut()));
    }

    /// The inbox reader is woken when a message arrives on an empty inbox,
    /// deferred like the writers inside an engine task.
    #[tokio::test]
    async fn the_inbox_reader_is_woken_by_a_message_on_an_empty_inbox() {
        let (shared, mut incoming, _conn) = ws_shared();
        let tx = shared.incoming_sender().unwrap();
        let msg = |t: &str| Received {
            message: Message::Text(Str::from(t.to_owned())),
            headers: Arc::new(HeaderMap::new()),
        };
        {
            let reader = incoming.recv();
            tokio::pin!(reader);
            assert!(futures_poll(reader.as_mut()).is_none());
            crate::wake::batched(std::future::poll_fn(|_| {
                assert!(tx.try_send(msg("a")).is_none());
                assert!(tx.try_send(msg("b")).is_none());
                assert_eq!(crate::wake::pending(), 1, "one wake-up for both");
                std::task::Poll::Ready(())
            }))
            .await;
            assert_eq!(reader.await, Some(Message::Text(Str::from("a"))));
        }
        assert_eq!(incoming.recv().await, Some(Message::Text(Str::from("b"))));
    }

    fn futures_poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        match f.poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    /// The kept URI and header values must not point into the request's
    /// buffer (hyper's 8 KiB connection read buffer, in a server).
    #[test]
    fn detach_copies_out_of_the_request_buffer() {
        let raw = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocket|example.org|secret");
        let uri = Uri::from_maybe_shared(raw.slice(..37)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_maybe_shared(raw.slice(38..49)).unwrap(),
        );
        let mut auth = HeaderValue::from_maybe_shared(raw.slice(50..)).unwrap();
        auth.set_sensitive(true);
        headers.append("authorization", auth);
        headers.append("x-two", HeaderValue::from_static("a"));
        headers.append("x-two", HeaderValue::from_static("b"));

        let (uri2, headers2) = detach(&uri, &headers);
        assert_eq!(uri2, uri);
        assert_eq!(headers2, headers);
        assert!(headers2["authorization"].is_sensitive());
        let all: Vec<_> = headers2.get_all("x-two").iter().collect();
        assert_eq!(all, ["a", "b"]);
        let outside = |p: *const u8| {
            let r = raw.as_ptr_range();
            !(r.start..r.end).contains(&p)
        };
        assert!(outside(uri2.path().as_ptr()));
        for v in headers2.values() {
            assert!(outside(v.as_bytes().as_ptr()));
        }
    }
}

//! Acknowledgements: the table of server→client emits awaiting an answer,
//! the future that awaits one, and the responder for client→server acks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::encoded::{Args, EncodedPacket};
use crate::error::{AckError, Error};
use crate::socket::Socket;

/// Pending server→client acks of one socket, bounded.
///
/// Ids come from the namespace's counter (as in the reference server), so one
/// broadcast with acks carries the same id to every recipient.
#[derive(Debug, Default)]
pub(crate) struct AckTable {
    pending: HashMap<u64, oneshot::Sender<Args>>,
}

/// Entries of every [`AckTable`] of this process (see [`pending_acks`]).
static PENDING_ACKS: AtomicUsize = AtomicUsize::new(0);

/// Server→client acks awaiting an answer, summed over every socket of every
/// server of this process (for metrics and leak checks).
pub(crate) fn pending_acks() -> usize {
    PENDING_ACKS.load(Ordering::Relaxed)
}

impl AckTable {
    /// Waits for the ack with `id`; `None` when `max` acks are already pending.
    pub(crate) fn register(&mut self, id: u64, max: usize) -> Option<oneshot::Receiver<Args>> {
        if self.pending.len() >= max {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if self.pending.insert(id, tx).is_none() {
            PENDING_ACKS.fetch_add(1, Ordering::Relaxed);
        }
        Some(rx)
    }

    /// Removes `id`, keeping the process-wide count.
    fn take(&mut self, id: u64) -> Option<oneshot::Sender<Args>> {
        let tx = self.pending.remove(&id)?;
        PENDING_ACKS.fetch_sub(1, Ordering::Relaxed);
        Some(tx)
    }

    /// An ACK arrived; unknown ids are ignored (as the reference does).
    pub(crate) fn resolve(&mut self, id: u64, args: Args) {
        if let Some(tx) = self.take(id) {
            let _ = tx.send(args);
        } else {
            tracing::debug!(id, "ack for unknown id ignored");
        }
    }

    pub(crate) fn forget(&mut self, id: u64) {
        self.take(id);
    }

    /// Drops every pending ack (their futures see [`AckError::Disconnected`]).
    pub(crate) fn clear(&mut self) {
        PENDING_ACKS.fetch_sub(self.pending.len(), Ordering::Relaxed);
        self.pending.clear();
    }
}

impl Drop for AckTable {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Awaits an ack with a timeout, then parses its arguments.
pub(crate) async fn await_ack<T: DeserializeOwned>(
    rx: oneshot::Receiver<Args>,
    timeout: Duration,
) -> Result<T, AckError> {
    let args = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(args)) => args,
        Ok(Err(_)) => return Err(AckError::Disconnected),
        Err(_) => return Err(AckError::Timeout),
    };
    parse_args(&args).map_err(|e| AckError::Decode(e.to_string()))
}

/// Parses arguments into `T`: all of them as a tuple / sequence first, then,
/// if that fails and there is exactly one, that one alone; no arguments at
/// all also fit `()` (and `Option<_>` as `None`).
pub(crate) fn parse_args<T: DeserializeOwned>(args: &Args) -> Result<T, serde_json::Error> {
    match args.parse::<T>() {
        Ok(v) => Ok(v),
        Err(e) if args.is_empty() => serde_json::from_value(serde_json::Value::Null).map_err(|_| e),
        Err(e) if args.len() != 1 => Err(e),
        Err(_) => args.get::<T>(0),
    }
}

/// Answers a client's event that asked for an acknowledgement. Sending is a
/// no-op if the client did not ask for one. It can be used once (it is consumed).
///
/// ```no_run
/// # fn f(socket: socketio::Socket) {
/// socket.on("add", |_socket, (a, b): (i64, i64), ack: socketio::AckSender| async move {
///     let _ = ack.send(&(a + b));
/// });
/// # }
/// ```
#[derive(Debug)]
pub struct AckSender {
    socket: Socket,
    id: Option<u64>,
}

impl AckSender {
    pub(crate) fn new(socket: Socket, id: Option<u64>) -> Self {
        AckSender { socket, id }
    }

    /// Whether the client asked for an ack.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Acks with one value.
    ///
    /// # Errors
    /// If the value does not serialize or the socket is gone.
    pub fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.send_args(Args::one(value)?)
    }

    /// Acks with several values (a tuple).
    ///
    /// # Errors
    /// If the values do not serialize to an array or the socket is gone.
    pub fn send_many<T: Serialize + ?Sized>(self, values: &T) -> Result<(), Error> {
        self.send_args(Args::many(values)?)
    }

    /// Acks with raw arguments (e.g. the ones received, to echo them).
    ///
    /// # Errors
    /// If the socket is gone.
    pub fn send_args(self, args: Args) -> Result<(), Error> {
        let Some(id) = self.id else {
            return Ok(());
        };
        let packet = EncodedPacket::ack(self.socket.parser(), self.socket.ns_name(), args, id);
        self.socket.send_packet(&packet).map(|_| ())
    }
}

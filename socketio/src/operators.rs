//! Broadcast operators: `to`, `except`, `volatile`, `local`, `timeout`, then
//! `emit`, `emit_with_ack`, and the bulk operations on the selected sockets.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ack::parse_args;
use crate::adapter::{BroadcastOptions, RemoteAcks, Room};
use crate::encoded::{Args, EncodedPacket};
use crate::error::{AckError, Error};
use crate::ns::NsInner;
use crate::remote::RemoteSocket;
use crate::socket::SocketId;

/// Anything that names one or more rooms.
pub trait IntoRooms {
    /// The room names.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.to_owned()]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.clone()]
    }
}

impl IntoRooms for SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.as_str().to_owned()]
    }
}

impl IntoRooms for Vec<String> {
    fn into_rooms(self) -> Vec<Room> {
        self
    }
}

impl IntoRooms for Vec<&str> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(str::to_owned).collect()
    }
}

impl<const N: usize> IntoRooms for [&str; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(str::to_owned).collect()
    }
}

impl IntoRooms for &[String] {
    fn into_rooms(self) -> Vec<Room> {
        self.to_vec()
    }
}

/// The answers to a broadcast with acks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AckResponses {
    /// Each answering socket of this node with its ack arguments.
    pub responses: Vec<(SocketId, Args)>,
    /// Sockets of this node that did not answer in time (or left).
    pub missing: Vec<SocketId>,
    /// Answers of sockets on other nodes (their first argument, as the
    /// reference carries them), in order of arrival.
    pub remote: Vec<Args>,
    /// Whether some other node, or one of its sockets, did not answer in time.
    pub remote_incomplete: bool,
}

impl AckResponses {
    /// Whether every selected socket, on every node, answered in time.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && !self.remote_incomplete
    }

    /// Every answer's arguments: this node's first, then the other nodes'.
    pub fn all(&self) -> impl Iterator<Item = &Args> {
        self.responses.iter().map(|(_, a)| a).chain(&self.remote)
    }
}

type AckWait = std::pin::Pin<Box<dyn Future<Output = (SocketId, Option<Args>)> + Send>>;

/// The acks of a broadcast to this node's sockets, resolved in order of
/// arrival (for cluster adapters answering another node's broadcast).
pub struct PendingAcks {
    recipients: usize,
    waits: FuturesUnordered<AckWait>,
}

impl std::fmt::Debug for PendingAcks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAcks")
            .field("recipients", &self.recipients)
            .field("waiting", &self.waits.len())
            .finish()
    }
}

impl PendingAcks {
    pub(crate) fn empty() -> Self {
        PendingAcks {
            recipients: 0,
            waits: FuturesUnordered::new(),
        }
    }

    /// How many sockets the packet was sent to.
    pub fn recipients(&self) -> usize {
        self.recipients
    }

    /// The next socket that answered (`Some(args)`) or timed out / left
    /// (`None`); `None` once every recipient is accounted for.
    pub async fn next(&mut self) -> Option<(SocketId, Option<Args>)> {
        self.waits.next().await
    }
}

/// A selection of sockets (rooms, exceptions, flags) to emit to or act on.
/// Built from [`SocketIo`](crate::SocketIo), a [`Namespace`](crate::Namespace)
/// or a [`Socket`](crate::Socket) (which excludes itself).
///
/// ```no_run
/// # fn f(io: socketio::SocketIo) {
/// // Everyone in "room1" or "room2" but not in "muted":
/// let _ = io.to("room1").to("room2").except("muted").emit("news", &"hello");
/// # }
/// ```
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
}

impl std::fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("nsp", &self.ns.name)
            .field("opts", &self.opts)
            .finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<NsInner>) -> Self {
        Self::with_options(ns, BroadcastOptions::default())
    }

    pub(crate) fn with_options(ns: Arc<NsInner>, opts: BroadcastOptions) -> Self {
        BroadcastOperator { ns, opts }
    }

    /// Adds target rooms (union with those already given).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// Alias of [`to`](Self::to).
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Excludes members of rooms (a socket id excludes that socket).
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Drops the packet for recipients whose transport cannot take it now.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Only sockets of this node (matters with a multi-node adapter).
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Ack timeout for [`emit_with_ack`](Self::emit_with_ack).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.opts.timeout = Some(d);
        self
    }

    /// The options this operator carries.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits one argument to every selected socket; the packet is encoded once.
    ///
    /// # Errors
    /// If the argument does not serialize.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.emit_args(event, Args::one(data)?)
    }

    /// Emits raw arguments to every selected socket.
    ///
    /// # Errors
    /// None today; kept for adapters whose publish can fail.
    pub fn emit_args(&self, event: &str, mut args: Args) -> Result<(), Error> {
        let adapter = self.ns.adapter();
        // Out of the ordering lock below: an observer emits.
        if let Some(o) = self.ns.observer().filter(|o| o.wants_events()) {
            for id in adapter.sockets(&self.opts) {
                o.event_sent(&self.ns.name, &id, event, &args);
            }
        }
        // Connection state recovery: non-volatile events get an offset and are
        // kept, then delivered, in one step for recovering sockets (ns.rs).
        let _order = self.ns.recovery_order();
        let offset = if self.opts.flags.volatile {
            None
        } else {
            adapter.new_offset()
        };
        if let Some(off) = &offset {
            args.values.push(serde_json::Value::String(off.clone()));
        }
        let packet = EncodedPacket::event(self.ns.config.parser, &self.ns.name, event, args, None);
        if let Some(off) = offset {
            adapter.persist_packet(off, &self.opts, packet.clone());
        }
        let n = adapter.broadcast(&packet, &self.opts);
        tracing::trace!(nsp = %self.ns.name, event, recipients = n, "broadcast");
        Ok(())
    }

    /// Emits and collects every selected socket's ack (on every node), parsed
    /// as `R`, within the timeout (the configured `ack_timeout` unless
    /// [`timeout`](Self::timeout) was given).
    ///
    /// # Errors
    /// [`AckError::Timeout`] if any socket did not answer in time; a decode error
    /// if an answer does not fit `R`.
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Result<Vec<R>, AckError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let args = Args::one(data).map_err(|e| AckError::Send(e.to_string()))?;
        let all = self.emit_args_with_ack(event, args).await;
        if !all.is_complete() {
            return Err(AckError::Timeout);
        }
        all.all()
            .map(|a| parse_args::<R>(a).map_err(|e| AckError::Decode(e.to_string())))
            .collect()
    }

    /// Emits raw arguments and collects the acks that arrive within the
    /// timeout, from this node's sockets and (unless [`local`](Self::local))
    /// from the other nodes'.
    pub async fn emit_args_with_ack(&self, event: &str, args: Args) -> AckResponses {
        let timeout = self.opts.timeout.unwrap_or(self.ns.config.ack_timeout);
        let (packet, mut pending) = self.start_acks(args.with_event(event), timeout);
        let local = async move {
            let mut out = AckResponses::default();
            while let Some((id, answer)) = pending.next().await {
                match answer {
                    Some(args) => out.responses.push((id, args)),
                    None => out.missing.push(id),
                }
            }
            out
        };
        let adapter = self.ns.adapter();
        let remote = async {
            if self.opts.flags.local {
                RemoteAcks::new(Vec::new(), true)
            } else {
                adapter
                    .remote_broadcast_with_ack(&packet, &self.opts, timeout)
                    .await
            }
        };
        let (mut out, remote) = tokio::join!(local, remote);
        out.remote = remote.responses;
        out.remote_incomplete = !remote.complete;
        out
    }

    /// Sends `data` (`[event, ...args]`) with a fresh ack id to the selected
    /// sockets of this node.
    pub(crate) fn start_acks(&self, data: Args, timeout: Duration) -> (EncodedPacket, PendingAcks) {
        let id = self.ns.next_ack_id();
        let observer = self.ns.observer().filter(|o| o.wants_events());
        let split = observer.map(|_| data.clone().split_event());
        let packet =
            EncodedPacket::event_data(self.ns.config.parser, &self.ns.name, data, Some(id));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pending = PendingAcks::empty();
        for sid in self.ns.adapter().sockets(&self.opts) {
            let Some(socket) = self.ns.get(&sid) else {
                continue;
            };
            if let (Some(o), Some((Some(event), args))) = (observer, &split) {
                o.event_sent(&self.ns.name, &sid, event, args);
            }
            let Some(rx) = socket.register_ack(id) else {
                continue;
            };
            if !socket.deliver(&packet, self.opts.flags.volatile) {
                socket.forget_ack(id);
                continue;
            }
            pending.recipients += 1;
            pending.waits.push(Box::pin(async move {
                match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(args)) => (sid, Some(args)),
                    _ => {
                        socket.forget_ack(id);
                        (sid, None)
                    }
                }
            }));
        }
        (packet, pending)
    }

    /// The selected sockets, on every node (unless [`local`](Self::local)):
    /// this node's first.
    ///
    /// # Errors
    /// If other nodes cannot be asked or do not all answer in time.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, Error> {
        let mut out: Vec<RemoteSocket> = self
            .ns
            .adapter()
            .sockets(&self.opts)
            .iter()
            .filter_map(|id| self.ns.get(id))
            .map(RemoteSocket::local)
            .collect();
        if !self.opts.flags.local {
            let remote = self.ns.adapter().remote_fetch_sockets(&self.opts).await?;
            out.extend(
                remote
                    .into_iter()
                    .map(|info| RemoteSocket::remote(self.ns.clone(), info)),
            );
        }
        Ok(out)
    }

    /// Makes every selected socket (on every node, unless
    /// [`local`](Self::local)) join `rooms`.
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        let adapter = self.ns.adapter();
        for id in adapter.sockets(&self.opts) {
            self.ns.join_rooms(&id, &rooms);
        }
        if !self.opts.flags.local {
            adapter.remote_add_sockets(&self.opts, &rooms);
        }
    }

    /// Makes every selected socket (on every node, unless
    /// [`local`](Self::local)) leave `rooms`.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        let adapter = self.ns.adapter();
        for id in adapter.sockets(&self.opts) {
            for room in &rooms {
                self.ns.leave_room(&id, room);
            }
        }
        if !self.opts.flags.local {
            adapter.remote_del_sockets(&self.opts, &rooms);
        }
    }

    /// Disconnects every selected socket (on every node, unless
    /// [`local`](Self::local)), and closes their connections with `close`.
    pub async fn disconnect_sockets(&self, close: bool) {
        if !self.opts.flags.local {
            self.ns
                .adapter()
                .remote_disconnect_sockets(&self.opts, close);
        }
        let local: Vec<_> = self
            .ns
            .adapter()
            .sockets(&self.opts)
            .iter()
            .filter_map(|id| self.ns.get(id))
            .collect();
        for socket in local {
            socket.disconnect(close).await;
        }
    }
}

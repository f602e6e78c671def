//! Broadcast operators: `to`, `except`, `volatile`, `local`, `timeout`, then
//! `emit`, `emit_with_ack`, and the bulk operations on the selected sockets.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ack::parse_args;
use crate::adapter::{BroadcastOptions, Room};
use crate::encoded::{Args, EncodedPacket};
use crate::error::{AckError, Error};
use crate::ns::NsInner;
use crate::socket::{Socket, SocketId};

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
    /// Each answering socket with its ack arguments, in order of arrival.
    pub responses: Vec<(SocketId, Args)>,
    /// Sockets that did not answer in time (or left).
    pub missing: Vec<SocketId>,
}

/// A selection of sockets (rooms, exceptions, flags) to emit to or act on.
/// Built from [`SocketIo`](crate::SocketIo), a [`Namespace`](crate::Namespace)
/// or a [`Socket`] (which excludes itself).
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
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
        }
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
        // Connection state recovery: non-volatile events get an offset and are kept.
        let offset = if self.opts.flags.volatile {
            None
        } else {
            adapter.new_offset()
        };
        if let Some(off) = &offset {
            args.values.push(serde_json::Value::String(off.clone()));
        }
        let packet = EncodedPacket::event(&self.ns.name, event, args, None);
        if let Some(off) = offset {
            adapter.persist_packet(off, &self.opts, packet.clone());
        }
        let n = adapter.broadcast(&packet, &self.opts);
        tracing::trace!(nsp = %self.ns.name, event, recipients = n, "broadcast");
        Ok(())
    }

    /// Emits and collects every selected socket's ack, parsed as `R`, within
    /// the timeout (the configured `ack_timeout` unless [`timeout`](Self::timeout) was given).
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
        if !all.missing.is_empty() {
            return Err(AckError::Timeout);
        }
        all.responses
            .iter()
            .map(|(_, a)| parse_args::<R>(a).map_err(|e| AckError::Decode(e.to_string())))
            .collect()
    }

    /// Emits raw arguments and collects the acks that arrive within the timeout.
    pub async fn emit_args_with_ack(&self, event: &str, args: Args) -> AckResponses {
        let timeout = self.opts.timeout.unwrap_or(self.ns.config.ack_timeout);
        let id = self.ns.next_ack_id();
        let packet = EncodedPacket::event(&self.ns.name, event, args, Some(id));
        let mut waiting = Vec::new();
        for sid in self.ns.adapter().sockets(&self.opts) {
            let Some(socket) = self.ns.get(&sid) else {
                continue;
            };
            if let Some(rx) = socket.register_ack(id) {
                if socket.deliver(&packet, self.opts.flags.volatile) {
                    waiting.push((socket, rx));
                } else {
                    socket.forget_ack(id);
                }
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = AckResponses::default();
        for (socket, rx) in waiting {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(args)) => out.responses.push((socket.id(), args)),
                _ => {
                    socket.forget_ack(id);
                    out.missing.push(socket.id());
                }
            }
        }
        out
    }

    /// The selected sockets of this node.
    pub async fn fetch_sockets(&self) -> Vec<Socket> {
        self.ns
            .adapter()
            .sockets(&self.opts)
            .iter()
            .filter_map(|id| self.ns.get(id))
            .collect()
    }

    /// Makes every selected socket join `rooms`.
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for id in self.ns.adapter().sockets(&self.opts) {
            self.ns.adapter().add_all(&id, &rooms);
        }
    }

    /// Makes every selected socket leave `rooms`.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for id in self.ns.adapter().sockets(&self.opts) {
            for room in &rooms {
                self.ns.adapter().del(&id, room);
            }
        }
    }

    /// Disconnects every selected socket (and closes their connections with `close`).
    pub async fn disconnect_sockets(&self, close: bool) {
        for socket in self.fetch_sockets().await {
            socket.disconnect(close).await;
        }
    }
}

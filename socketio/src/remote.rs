//! Sockets as a cluster-wide `fetch_sockets` returns them: on this node or
//! on another one, with the same few operations either way.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::adapter::{Room, SocketInfo};
use crate::error::Error;
use crate::ns::NsInner;
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::socket::{Socket, SocketId};

/// A socket selected by [`fetch_sockets`](BroadcastOperator::fetch_sockets),
/// on this node or another one of the cluster (the reference's
/// `RemoteSocket`). Its description is a snapshot; its operations go through
/// the adapter, so they reach the socket wherever it is.
///
/// ```no_run
/// # async fn f(io: socketio::SocketIo) -> Result<(), socketio::Error> {
/// for socket in io.to("room1").fetch_sockets().await? {
///     println!("{} is in {:?}", socket.id(), socket.rooms());
///     socket.emit("hello", &"from the server")?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RemoteSocket {
    ns: Arc<NsInner>,
    info: SocketInfo,
    local: Option<Socket>,
}

impl std::fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("id", &self.info.id)
            .field("nsp", &self.ns.name)
            .field("local", &self.local.is_some())
            .finish()
    }
}

impl RemoteSocket {
    pub(crate) fn local(socket: Socket) -> Self {
        let mut data = socket.data_value();
        if let Some(o) = socket.inner_ns().observer() {
            data = o.shared_data(&socket, data);
        }
        let info = SocketInfo::new(
            socket.id(),
            socket.handshake().to_json(),
            socket.rooms(),
            data,
        );
        RemoteSocket {
            ns: socket.inner_ns(),
            info,
            local: Some(socket),
        }
    }

    pub(crate) fn remote(ns: Arc<NsInner>, info: SocketInfo) -> Self {
        RemoteSocket {
            ns,
            info,
            local: None,
        }
    }

    /// The socket id.
    pub fn id(&self) -> SocketId {
        self.info.id
    }

    /// The handshake, in the reference's `socket.handshake` JSON shape.
    pub fn handshake(&self) -> &Value {
        &self.info.handshake
    }

    /// The rooms it was in when fetched (including the one named by its id).
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// Its `data` when fetched, as a `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.info.data.clone()).ok()
    }

    /// Its `data` when fetched.
    pub fn data_value(&self) -> &Value {
        &self.info.data
    }

    /// The whole description.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    /// The socket itself when it is on this node.
    pub fn as_local(&self) -> Option<&Socket> {
        self.local.as_ref()
    }

    fn only_me(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).to(self.info.id)
    }

    /// Emits an event to this socket, wherever it is.
    ///
    /// # Errors
    /// If the argument does not serialize.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.only_me().emit(event, data)
    }

    /// Makes it join rooms.
    pub fn join(&self, rooms: impl IntoRooms) {
        match &self.local {
            Some(s) => s.join(rooms),
            None => self.only_me().sockets_join(rooms),
        }
    }

    /// Makes it leave rooms.
    pub fn leave(&self, rooms: impl IntoRooms) {
        match &self.local {
            Some(s) => s.leave(rooms),
            None => self.only_me().sockets_leave(rooms),
        }
    }

    /// Disconnects it (and closes its connection with `close`).
    pub async fn disconnect(&self, close: bool) {
        match &self.local {
            Some(s) => s.disconnect(close).await,
            None => self.only_me().disconnect_sockets(close).await,
        }
    }
}

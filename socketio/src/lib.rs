//! A Socket.IO v5 server on top of the [`engineio`] crate: namespaces,
//! middlewares, events, acknowledgements both ways, rooms and broadcasting,
//! spoken exactly as the official `socket.io-client` 4.x expects.
//!
//! # Getting started
//! ```no_run
//! use socketio::{AckSender, Socket, SocketIo, SocketIoConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), socketio::Error> {
//!     let io = SocketIo::new(SocketIoConfig::default())?;
//!     io.on_connection(|socket: Socket| async move {
//!         socket.join("lobby");
//!         socket.on("chat", |socket: Socket, (text,): (String,), ack: AckSender| async move {
//!             // To everyone else in the lobby, then confirm to the sender.
//!             let _ = socket.to("lobby").emit("chat", &text);
//!             let _ = ack.send(&"delivered");
//!         });
//!         // Handlers take what they need: (Socket), (Socket, T), (Socket, T, AckSender).
//!         socket.on("ping", |socket: Socket| async move {
//!             let _ = socket.emit("pong", &());
//!         });
//!     });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000")
//!         .await
//!         .map_err(engineio::Error::from)?;
//!     io.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! }
//! ```
//!
//! # Layout
//! - `packet/`: the pure codec (packets, binary attachments, serde bridge for
//!   binary placeholders, and the msgpack parser's packets in `packet/msgpack.rs`).
//! - `msgpack.rs`: the workspace's MessagePack codec ([`msgpack`]), shared
//!   with the `socketio-redis` adapter.
//! - `client.rs`: one Engine.IO connection: decoding, ordered job queue,
//!   connect timeout. `socket.rs`: a namespace connection (handlers, emit,
//!   acks, rooms, disconnect). `ack.rs`: ack table and responder.
//! - `handler.rs`: the handler shapes ([`EventHandler`]), per-event
//!   middlewares and [`EventError`]. `extensions.rs`: typed per-socket and
//!   app-wide state ([`Extensions`]).
//! - `ns.rs`: namespaces, middlewares. `operators.rs`: `to`/`except`/... and
//!   bulk operations. `adapter/`: the [`Adapter`] trait and the in-memory one.
//! - `observe.rs`: what the sockets report to an observer (the Admin UI's
//!   development mode). `admin/` (cargo feature `admin`): the server side of
//!   the official Socket.IO Admin UI, `SocketIo::instrument`.
//! - `io.rs`: [`SocketIo`], the hyper service. `serve_client.rs`: the client
//!   bundle ([`SocketIoConfig::serve_client`]). `tower.rs` (feature `tower`):
//!   `tower::Service` and `SocketIo::layer`.
//!
//! # Limits
//! See [`SocketIoConfig`]: attachments per packet, namespace name length,
//! namespaces per connection, pending acks per socket, queued events per
//! connection; below them, every Engine.IO bound of [`engineio::EngineConfig`].
//!
//! With [`Parser::Msgpack`], each packet is one Engine.IO message, so its size
//! is bounded by the engine's `max_payload` (1 MB by default). Its decoder
//! ([`packet::decode_msgpack`], on [`msgpack::decode_with`]) checks every
//! declared length (string, binary, extension, array and map counts) against
//! the bytes left before allocating, so a packet costs at most a small multiple
//! of its size; nests at most [`packet::Limits::max_json_depth`] (128) levels
//! below the packet map; bounds the namespace by `max_namespace_len`; and
//! refuses trailing bytes. Binary values travel inline, so `max_attachments`
//! does not apply: their number is bounded by the message size. Any violation
//! closes that connection with `parse error`, as the JSON parser's do.

#![cfg_attr(
    feature = "tower",
    doc = r#"
# In an axum (or any tower) app
With the default cargo feature `tower`, [`SocketIo::layer`] answers the
Socket.IO path in front of your routes (and [`SocketIo`] is itself a
`tower::Service`, for `route_service` / `fallback_service`):
```no_run
# async fn run() -> Result<(), Box<dyn std::error::Error>> {
use axum::{Router, routing::get};
use socketio::{Socket, SocketIo, SocketIoConfig};

let io = SocketIo::new(
    SocketIoConfig::default().serve_client("node_modules/socket.io-client/dist"),
)?;
io.on_connection(|socket: Socket| async move {
    socket.on("chat", |socket: Socket, (msg,): (String,)| async move {
        let _ = socket.broadcast().emit("chat", &msg);
    });
});
let app = Router::new().route("/", get(|| async { "hi" })).layer(io.layer());
axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
# Ok(()) }
```
"#
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod ack;
mod adapter;
#[cfg(feature = "admin")]
mod admin;
mod client;
mod config;
mod encoded;
mod error;
mod extensions;
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod handshake;
mod io;
pub mod msgpack;
mod ns;
mod observe;
mod operators;
pub mod packet;
mod remote;
mod serve_client;
mod server_events;
mod socket;
mod stats;
#[cfg(feature = "tower")]
mod tower;

pub use ack::AckSender;
pub use adapter::{
    Adapter, AdapterFactory, AdapterFuture, BroadcastFlags, BroadcastOptions, MemoryAdapter,
    RecoveryStore, RemoteAcks, RestoredSession, Room, SessionState, SocketInfo,
};
#[cfg(feature = "admin")]
pub use admin::{AdminAuth, AdminConfig, AdminMode};
pub use config::{Parser, RecoveryConfig, SocketIoConfig};
pub use encoded::{Args, EncodedPacket};
pub use engineio::Backlog;
pub use error::{AckError, Error, ParseError};
pub use extensions::Extensions;
pub use handler::{Event, EventError, EventHandler, EventRejection};
/// Names that the handler shapes need to be public, not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use crate::handler::{ErasedHandlerBox, shape};
}
pub use handshake::Handshake;
pub use io::{DynamicNamespace, SocketIo, SocketIoBuilder};
pub use ns::{ConnectError, LocalNamespace, Namespace};
pub use operators::{AckResponses, BroadcastOperator, IntoRooms, PendingAcks};
pub use packet::Binary;
pub use remote::RemoteSocket;
pub use server_events::ServerAck;
pub use socket::{
    BoxFuture, DisconnectReason, Socket, SocketId, SocketWithTimeout, VolatileSocket,
};
pub use stats::ServerStats;
#[cfg(feature = "tower")]
pub use tower::{SocketIoLayer, SocketIoService};

//! An Engine.IO v4 server: the transport layer under Socket.IO.
//!
//! It speaks the protocol of the official `engine.io-client` 6.x: HTTP
//! long-polling, WebSocket, and the upgrade from one to the other, with
//! heartbeats, limits and the reference server's error answers. With
//! [`EngineConfig::allow_eio3`], Engine.IO v3 clients (Socket.IO v2) are
//! served too, next to v4 ones (see [`Protocol`]).
//!
//! # Getting started
//! ```no_run
//! use engineio::{EngineConfig, EngineIo};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), engineio::Error> {
//!     let engine = EngineIo::new(EngineConfig::default(), |socket, mut incoming| async move {
//!         while let Some(msg) = incoming.recv().await {
//!             let _ = socket.send(msg); // echo
//!         }
//!         tracing::info!(reason = ?socket.close_reason(), "gone");
//!     })?;
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     engine.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! }
//! ```
//!
//! To serve your own routes beside it, route requests yourself:
//! ```no_run
//! # use engineio::{EngineConfig, EngineIo, ResponseBody};
//! # use http::{Request, Response};
//! # fn app() -> Result<(), engineio::Error> {
//! let engine = EngineIo::new(EngineConfig::default(), |_s, _i| async {})?;
//! let router = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
//!     let engine = engine.clone();
//!     async move {
//!         if engine.matches(&req) {
//!             return Ok::<_, std::convert::Infallible>(engine.handle(req).await);
//!         }
//!         Ok(Response::new(ResponseBody::from("my page")))
//!     }
//! });
//! # let _ = router; Ok(()) }
//! ```
//!
//! # Layout
//! - [`packet`](crate::Packet) / [`payload`](crate::Payload): pure codecs;
//!   [`payload_v3`](crate::PayloadV3): the Engine.IO v3 packet forms and payloads.
//! - `proto/`: the sans-IO session state machine (heartbeat, upgrade, close,
//!   queues); no tokio, hyper or clock inside.
//! - `socket.rs`: the shared session cell, the timer task, [`Socket`] and [`Incoming`].
//! - `ws/`: the WebSocket data path, sans-IO: RFC 6455 framing (`frame.rs`)
//!   and permessage-deflate (`deflate.rs`, [`PerMessageDeflate`]).
//! - `transport/`: long-polling and WebSocket glue; `service.rs`: routing,
//!   refusals, handshakes; `cors.rs`: [`Cors`]; `compression.rs`: gzip /
//!   deflate of polling responses ([`HttpCompression`]); `body.rs`: any
//!   request body read as `Bytes`; `server.rs`: an accept loop;
//!   `observer.rs`: [`EngineObserver`] (session and message counts, for metrics).
//! - `tower.rs` (cargo feature `tower`, on by default): `tower::Service` for
//!   [`EngineIo`], for any `http_body::Body`.
//!
//! # Limits
//! Every peer-controlled quantity is bounded by [`EngineConfig`]: body and
//! message size (`max_payload`), the outbound queue per session in bytes
//! (`high_water_mark` 1 MiB soft, `max_buffered_bytes` 16 MiB hard, with
//! `slow_client_timeout` 10 s: a burst is absorbed, a client that reads nothing
//! while over the soft mark is cut off; see [`EngineConfig`]), buffered inbound
//! messages (`max_buffered_incoming`, then reading pauses), live sessions
//! (`max_sessions`), request header time ([`HEADER_READ_TIMEOUT`]). A polling
//! payload is decoded lazily, so its packet count costs no memory. A graceful
//! [`EngineIo::close`] (and the end of [`EngineIo::serve`]) takes at most
//! `shutdown_timeout` (10 s) plus half a second, whatever the clients or the
//! handlers do; nothing it spawned is left running.
//!
//! WebSocket frames are decoded by our own codec: a message (its fragments
//! added up, compressed or inflated) over `max_payload` is refused from the
//! frame header on with close code 1009, before its bytes are read; a frame
//! breaking RFC 6455 gets 1002, text that is not UTF-8 1007. Control frames
//! are at most 125 bytes. A connection holds no read buffer between frames
//! and no write buffer between batches; with [`PerMessageDeflate`] on it holds
//! no zlib state either, unless context takeover is on, for at most
//! `context_takeover` connections at once (see its `# Memory`).
//!
//! Engine.IO v3 payloads ([`PayloadV3`], only with `allow_eio3`) are decoded
//! lazily too, within the same `max_payload` body bound. A length prefix has
//! at most [`MAX_LENGTH_DIGITS`] (10) digits, each a `0`–`9` (text) or a byte
//! 0–9 (XHR2), and ends at `:` (text) or `0xFF` (XHR2) within them; every
//! declared length is checked against the bytes that are left before anything
//! is sliced, and a text length must end on a character boundary (counted in
//! UTF-16 units). A prefix that breaks any of this is a
//! [`DecodeError::BadLength`]; a binary packet other than a message is a
//! [`DecodeError::UnsupportedBinary`]. Either closes the session (the POST gets
//! 400), as a v4 decode error does. A v3 session pongs at most once per poll
//! however often its client pings, and is closed after `ping_interval +
//! ping_timeout` without a ping.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod body;
mod compression;
mod config;
mod cors;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod observer;
mod packet;
mod payload;
mod payload_v3;
mod proto;
mod server;
mod service;
mod sid;
mod socket;
mod tasks;
#[cfg(feature = "tower")]
mod tower;
mod transport;
mod wake;
mod ws;

pub use compression::HttpCompression;
pub use config::{EngineConfig, PerMessageDeflate};
pub use cors::{Cors, CorsOrigin, DEFAULT_CORS_METHODS};
pub use error::{DecodeError, Error, HandshakeError};
pub use observer::EngineObserver;
pub use packet::{Message, Packet, PacketType, Str};
pub use payload::{Payload, SEPARATOR, encode_payload};
pub use payload_v3::{
    BINARY_CONTENT_TYPE, MAX_LENGTH_DIGITS, PayloadV3, PayloadV3Format, decode_binary_packet_v3,
    decode_packet_v3, encode_payload_v3,
};
pub use proto::{CloseReason, Protocol, Transport};
pub use server::{HEADER_READ_TIMEOUT, ServeOptions, serve, serve_with, serve_with_close};
pub use service::{BoxFuture, ConnectInfo, EngineIo, EngineIoBuilder, ResponseBody};
pub use sid::Sid;
pub use socket::{Backlog, HandshakeRequest, Incoming, Socket};

//! The Redis Streams adapter, wire-compatible with
//! `@socket.io/redis-streams-adapter` 0.3: Rust and Node nodes share one
//! stream, and connection state recovery works on any node, including after
//! the node that held the client was killed.
//!
//! ```no_run
//! use std::time::Duration;
//! use socketio::{RecoveryConfig, SocketIo, SocketIoConfig};
//! use socketio_redis::{RedisStreamsAdapter, RedisStreamsConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisStreamsAdapter::connect("redis://127.0.0.1:6379", RedisStreamsConfig::default()).await?;
//! let io = SocketIo::builder(
//!     SocketIoConfig::default().connection_state_recovery(RecoveryConfig::default()),
//! )
//! .adapter(redis.factory())
//! .build()?;
//! redis.ready().await; // reading the stream, subscriptions live
//! io.to("news").emit("headline", &"hello")?; // on every node, numbered for recovery
//! # Ok(()) }
//! ```
//!
//! # What goes where
//! - Through the stream (`XADD <stream> MAXLEN ~ N * uid .. nsp .. type .. data ..`):
//!   broadcasts without acks, `sockets_join` / `sockets_leave`,
//!   `disconnect_sockets`. Every node reads the stream in order (`XREAD BLOCK`).
//! - Over pub/sub, MessagePack on `K#N#`, answers on `K#N#<uid>#`:
//!   `fetch_sockets`, server-side emits (with acks), broadcasts with acks.
//!   The node count is `PUBSUB NUMSUB K#N#`.
//!
//! # Connection state recovery
//! With [`SocketIoConfig::connection_state_recovery`](socketio::SocketIoConfig::connection_state_recovery):
//! - an event's offset is its stream entry id; this node's own events reach
//!   its sockets when read back from the stream, so every node delivers in
//!   stream order (a socket's own `emit` goes through the stream too);
//! - a connected socket's session record `sio:session:<pid>` (base64
//!   MessagePack `{sid, pid, rooms, data}`, as a Node node writes it) is in
//!   Redis from its connection on, rewritten when its rooms change and every
//!   [`RedisStreamsConfig::session_refresh_interval`], with a TTL of the maximum
//!   disconnection duration plus that interval: a client whose node died is
//!   restored by any node, Rust or Node;
//! - a restore takes the record (`GET` + `DEL`), checks that the client's
//!   offset is still in the stream, replays the entries after it up to what
//!   this node has delivered, then what was delivered meanwhile from an
//!   in-memory cache: each missed event once, in order.
//!
//! A record is written only if it is absent or still what this node wrote
//! (a Lua compare-and-set), so a node that learns late that its client moved
//! cannot overwrite the new node's record.
//!
//! # Limits
//! See [`RedisStreamsConfig`]. If Redis is unreachable, events numbered for
//! recovery reach no socket (this node's included) until it is back; other
//! events still reach this node's sockets.

mod adapter;
mod config;
mod driver;
pub mod wire;

use std::sync::Arc;

pub use config::RedisStreamsConfig;

use crate::error::Error;

/// A connection to Redis shared by the Streams adapters of every namespace
/// of a server; cheap to clone.
#[derive(Clone)]
pub struct RedisStreamsAdapter {
    driver: Arc<driver::Driver>,
}

impl std::fmt::Debug for RedisStreamsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsAdapter")
            .field("uid", &self.driver.uid)
            .field("stream", &self.driver.config.stream_name)
            .finish()
    }
}

impl RedisStreamsAdapter {
    /// Connects to Redis (`redis://[:password@]host:port[/db]`).
    ///
    /// # Errors
    /// A bad URL, or Redis not reachable now.
    pub async fn connect(url: &str, config: RedisStreamsConfig) -> Result<Self, Error> {
        Ok(RedisStreamsAdapter {
            driver: driver::Driver::connect(url, config).await?,
        })
    }

    /// The adapter factory for [`socketio::SocketIoBuilder::adapter`].
    pub fn factory(
        &self,
    ) -> impl Fn(socketio::LocalNamespace) -> Arc<dyn socketio::Adapter> + Send + Sync + 'static
    {
        let driver = self.driver.clone();
        move |ns| {
            adapter::StreamsNsAdapter::create(ns, driver.clone()) as Arc<dyn socketio::Adapter>
        }
    }

    /// Waits until the stream is being read and the subscriptions of every
    /// namespace created so far are live.
    pub async fn ready(&self) {
        self.driver.ready().await;
    }

    /// This node's id on the wire (16 hex characters).
    pub fn uid(&self) -> &str {
        &self.driver.uid
    }
}

//! A Redis adapter for the [`socketio`] crate that speaks the wire format of
//! the official `@socket.io/redis-adapter` 8.x (classic pub/sub adapter), so
//! Rust and Node.js servers can share one cluster, and
//! `@socket.io/redis-emitter` reaches the Rust nodes' clients.
//!
//! ```no_run
//! use socketio::{SocketIo, SocketIoConfig};
//! use socketio_redis::{RedisAdapter, RedisAdapterConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisAdapter::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
//! let io = SocketIo::builder(SocketIoConfig::default())
//!     .adapter(redis.factory())
//!     .build()?;
//! io.on_connection(|socket: socketio::Socket| async move {
//!     socket.join("news");
//! });
//! redis.ready().await; // subscriptions live: other nodes' messages reach us
//! // Reaches the members of "news" on every node, Rust or Node.
//! io.to("news").emit("headline", &"hello")?;
//! # Ok(()) }
//! ```
//!
//! # What crosses Redis
//! - Broadcasts (`emit`, `to`, `except`, `volatile`), as MessagePack frames
//!   `[uid, packet, opts]` on `K#N#` or, for one room, `K#N#<room>#`;
//!   [`local`](socketio::BroadcastOperator::local) ones never do.
//! - Requests on `K-request#N#` and answers on `K-response#N#`:
//!   `fetch_sockets`, `sockets_join` / `sockets_leave`, `disconnect_sockets`,
//!   `all_rooms`, server-side emits with and without acks, broadcasts with
//!   acks (client counts, then each ack). The node count is
//!   `PUBSUB NUMSUB K-request#N#`.
//!
//! # Failures
//! If Redis goes away, emits still reach this node's clients (the failure is
//! logged), messages for other nodes are dropped once
//! [`RedisAdapterConfig::max_queued_publishes`] are waiting, requests fail
//! or time out after [`RedisAdapterConfig::requests_timeout`], and both
//! connections come back by themselves.
//!
//! Not supported, as with the Node adapter: connection state recovery. For
//! that, use the [`streams`] adapter ([`RedisStreamsAdapter`], wire-compatible
//! with `@socket.io/redis-streams-adapter` 0.3): its clients recover on any
//! node, even after the death of the node that held them.
//!
//! # Sharded pub/sub
//! [`ShardedRedisAdapter`] speaks the format of the reference's
//! `createShardedAdapter` (Redis ≥ 7 `SPUBLISH` / `SSUBSCRIBE`, one channel
//! per room) on one Redis or a Redis Cluster; see [`sharded`].
//!
//! # Layout
//! `wire.rs` is the pure codec of the adapter's messages (its MessagePack is
//! the workspace codec, [`socketio::msgpack`], re-exported as [`msgpack`]); `driver.rs` the Redis
//! connections; `adapter.rs` the [`socketio::Adapter`] of one namespace. `sharded/` the
//! sharded adapter (its own `wire.rs`, `resp.rs`, `driver.rs`, `adapter.rs`, `config.rs`),
//! `streams/` the Streams adapter, laid out the same way (`wire.rs`, `driver.rs`,
//! `adapter.rs`, `config.rs`).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod adapter;
mod config;
mod driver;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub use socketio::msgpack;
pub mod sharded;
pub mod streams;
pub mod wire;

use std::sync::Arc;

pub use config::RedisAdapterConfig;
pub use error::Error;
pub use sharded::{ShardedAdapterConfig, ShardedRedisAdapter, SubscriptionMode};
pub use streams::{RedisStreamsAdapter, RedisStreamsConfig};

/// A connection to Redis shared by the adapters of every namespace of a
/// server; cheap to clone.
#[derive(Clone)]
pub struct RedisAdapter {
    driver: Arc<driver::Driver>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("uid", &self.driver.uid)
            .field("key", &self.driver.config.key)
            .finish()
    }
}

impl RedisAdapter {
    /// Connects to Redis (`redis://[:password@]host:port[/db]`, `redis+unix:///path`)
    /// or to a Redis Cluster (`redis+cluster://[user:password@]host:port,host:port,…`,
    /// seed nodes: publishing goes through the cluster, the subscriber to one
    /// seed at a time, the next one when it fails). TLS (`rediss://`) is not
    /// compiled in.
    ///
    /// # Errors
    /// A bad URL, or Redis not reachable now.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, Error> {
        Ok(RedisAdapter {
            driver: driver::Driver::connect(url, config).await?,
        })
    }

    /// The adapter factory for [`socketio::SocketIoBuilder::adapter`].
    pub fn factory(
        &self,
    ) -> impl Fn(socketio::LocalNamespace) -> Arc<dyn socketio::Adapter> + Send + Sync + 'static
    {
        let driver = self.driver.clone();
        move |ns| adapter::NsAdapter::create(ns, driver.clone()) as Arc<dyn socketio::Adapter>
    }

    /// Waits until the subscriptions of every namespace created so far are
    /// live (from then on, nothing other nodes publish is missed).
    pub async fn ready(&self) {
        self.driver.ready().await;
    }

    /// This node's id on the wire (6 characters).
    pub fn uid(&self) -> &str {
        &self.driver.uid
    }
}

//! The sharded adapter: wire-compatible with `createShardedAdapter` of
//! `@socket.io/redis-adapter` 8.x (Redis ≥ 7 sharded pub/sub, `SPUBLISH` /
//! `SSUBSCRIBE`), on one Redis or a Redis Cluster.
//!
//! # Channels (key `K`, default `socket.io`; namespace `N`)
//! - `K#N#`: every node of the namespace subscribes; broadcasts, requests
//!   (fetch sockets, join / leave, disconnect, server-side emits, broadcasts
//!   with acks). The node count is `PUBSUB SHARDNUMSUB K#N#`.
//! - `K#N#<uid>#`: this node's answers (`uid`: 16 hex characters).
//! - `K#N#<room>#` ([`SubscriptionMode::Dynamic`], the default): a public
//!   room's channel, subscribed while the room has a member on this node; a
//!   broadcast without acks to exactly that one room goes there and reaches
//!   only the nodes that have members.
//!
//! Each message is `{uid, nsp, type, data}`, JSON, or MessagePack when it
//! carries binary ([`wire`]).
//!
//! # Differences from the classic adapter
//! `all_rooms` across nodes is not part of this protocol (it returns an
//! error, as Node's `allRooms` does not exist on this adapter);
//! `@socket.io/redis-emitter` does not speak it.
//!
//! # Bounds
//! See [`ShardedAdapterConfig`]: the publish queue, the queue of messages
//! heard, the size of one message, the request timeout. Room channels: one
//! subscription per public room with a member on this node, dropped when the
//! room empties (so at most the number of local rooms).

mod adapter;
mod config;
pub(crate) mod driver;
pub(crate) mod resp;
pub mod wire;

use std::sync::Arc;

pub use config::{ShardedAdapterConfig, SubscriptionMode};

use crate::error::Error;

/// A sharded-pub/sub connection to Redis (one server or a cluster) shared by
/// the adapters of every namespace of a server; cheap to clone.
///
/// ```no_run
/// use socketio::{SocketIo, SocketIoConfig};
/// use socketio_redis::{ShardedAdapterConfig, ShardedRedisAdapter};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // One Redis ≥ 7, or a cluster: "redis+cluster://10.0.0.1:7000,10.0.0.2:7000".
/// let redis = ShardedRedisAdapter::connect("redis://127.0.0.1:6379", ShardedAdapterConfig::default()).await?;
/// let io = SocketIo::builder(SocketIoConfig::default())
///     .adapter(redis.factory())
///     .build()?;
/// redis.ready().await; // subscriptions live
/// io.to("news").emit("headline", &"reaches the members of news on every node")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ShardedRedisAdapter {
    driver: Arc<driver::Driver>,
    adapters: Arc<std::sync::Mutex<Vec<std::sync::Weak<adapter::ShardedNs>>>>,
}

impl std::fmt::Debug for ShardedRedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRedisAdapter")
            .field("uid", &self.driver.uid)
            .field("key", &self.driver.config.key)
            .finish()
    }
}

impl ShardedRedisAdapter {
    /// Connects to one Redis (`redis://[:password@]host:port`,
    /// `redis+unix:///path`) or to a Redis Cluster
    /// (`redis+cluster://[user:password@]host:port,host:port,…`: a few seed
    /// nodes; the others are found through them). TLS is not compiled in.
    ///
    /// # Errors
    /// A bad URL, or Redis not reachable now.
    pub async fn connect(url: &str, config: ShardedAdapterConfig) -> Result<Self, Error> {
        Ok(ShardedRedisAdapter {
            driver: driver::Driver::connect(url, config).await?,
            adapters: Arc::default(),
        })
    }

    /// The adapter factory for [`socketio::SocketIoBuilder::adapter`].
    pub fn factory(
        &self,
    ) -> impl Fn(socketio::LocalNamespace) -> Arc<dyn socketio::Adapter> + Send + Sync + 'static
    {
        let driver = self.driver.clone();
        let adapters = self.adapters.clone();
        move |ns| {
            let a = adapter::ShardedNs::create(ns, driver.clone());
            let mut list = adapters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&a));
            a as Arc<dyn socketio::Adapter>
        }
    }

    /// Waits until Redis confirmed the subscriptions of every namespace
    /// created so far (from then on, nothing other nodes publish to the
    /// namespaces is missed).
    pub async fn ready(&self) {
        let channels: Vec<String> = {
            let list = self
                .adapters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            list.iter()
                .filter_map(std::sync::Weak::upgrade)
                .flat_map(|a| a.fixed_channels())
                .collect()
        };
        self.driver.ready(&channels).await;
    }

    /// Whether Redis confirmed the subscription of `channel` (e.g. a room's
    /// `socket.io#/#room#`).
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.driver.is_live(channel)
    }

    /// This node's id on the wire (16 hex characters).
    pub fn uid(&self) -> &str {
        &self.driver.uid
    }
}

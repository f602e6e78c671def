//! Settings of the sharded adapter, with the reference adapter's defaults.

use std::time::Duration;

/// Which rooms get a channel of their own (the reference's
/// `subscriptionMode`); the whole cluster must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// Only the namespace's channel and the node's response channel: every
    /// broadcast reaches every node.
    Static,
    /// Public rooms (not a socket's own id room) also get a channel
    /// `K#N#<room>#`, subscribed while the room has a local member; a
    /// broadcast to exactly one room goes there (unless the room name is 20
    /// characters long, as socket ids are). The reference's default.
    #[default]
    Dynamic,
    /// As `Dynamic`, for every room, socket id rooms included.
    DynamicPrivate,
}

/// Settings of the sharded adapter.
///
/// | field | default | bound it sets |
/// |---|---|---|
/// | `key` | `socket.io` | — |
/// | `subscription_mode` | `Dynamic` | one subscription per local public room |
/// | `requests_timeout` | 5 s | every request to other nodes ends by then |
/// | `max_queued_publishes` | 65 536 | messages waiting for Redis (then dropped, logged) |
/// | `max_queued_messages` | 65 536 | messages heard, waiting to be handled (then dropped, logged) |
/// | `max_message_bytes` | 64 MiB | one message read from Redis |
/// | `max_reconnect_delay` | 5 s | backoff between reconnection attempts |
///
/// ```
/// use std::time::Duration;
/// use socketio_redis::{ShardedAdapterConfig, SubscriptionMode};
/// let config = ShardedAdapterConfig::default()
///     .key("my-app")
///     .subscription_mode(SubscriptionMode::Static)
///     .requests_timeout(Duration::from_secs(2));
/// assert_eq!(config.key, "my-app");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShardedAdapterConfig {
    /// Prefix of every channel (the reference's `channelPrefix`). Default `socket.io`.
    pub key: String,
    /// Which rooms get a channel of their own. Default [`SubscriptionMode::Dynamic`].
    pub subscription_mode: SubscriptionMode,
    /// How long a request to other nodes (fetch sockets, server-side emit
    /// with acks) waits for their answers. Default 5 s, as the reference.
    pub requests_timeout: Duration,
    /// Messages waiting to be published; beyond it (Redis down or too slow)
    /// messages for other nodes are dropped with a logged error, while local
    /// delivery goes on. Default 65 536.
    pub max_queued_publishes: usize,
    /// Messages read from Redis and not yet handled; beyond it they are
    /// dropped with a logged error. Default 65 536.
    pub max_queued_messages: usize,
    /// Longest message accepted from Redis (a longer one closes the
    /// connection, which then reconnects). Default 64 MiB.
    pub max_message_bytes: usize,
    /// Longest wait between two reconnection attempts. Default 5 s.
    pub max_reconnect_delay: Duration,
}

impl Default for ShardedAdapterConfig {
    fn default() -> Self {
        ShardedAdapterConfig {
            key: "socket.io".to_owned(),
            subscription_mode: SubscriptionMode::Dynamic,
            requests_timeout: Duration::from_secs(5),
            max_queued_publishes: 65_536,
            max_queued_messages: 65_536,
            max_message_bytes: 64 * 1024 * 1024,
            max_reconnect_delay: Duration::from_secs(5),
        }
    }
}

impl ShardedAdapterConfig {
    /// Sets [`key`](Self::key).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets [`subscription_mode`](Self::subscription_mode).
    pub fn subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.subscription_mode = mode;
        self
    }

    /// Sets [`requests_timeout`](Self::requests_timeout).
    pub fn requests_timeout(mut self, d: Duration) -> Self {
        self.requests_timeout = d;
        self
    }

    /// Sets [`max_queued_publishes`](Self::max_queued_publishes).
    pub fn max_queued_publishes(mut self, n: usize) -> Self {
        self.max_queued_publishes = n;
        self
    }

    /// Sets [`max_queued_messages`](Self::max_queued_messages).
    pub fn max_queued_messages(mut self, n: usize) -> Self {
        self.max_queued_messages = n;
        self
    }

    /// Sets [`max_message_bytes`](Self::max_message_bytes).
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Sets [`max_reconnect_delay`](Self::max_reconnect_delay).
    pub fn max_reconnect_delay(mut self, d: Duration) -> Self {
        self.max_reconnect_delay = d;
        self
    }
}

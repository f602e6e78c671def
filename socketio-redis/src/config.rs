//! Settings of the Redis adapter, with the reference adapter's defaults.

use std::time::Duration;

/// Settings of the Redis adapter.
///
/// ```
/// use std::time::Duration;
/// let config = socketio_redis::RedisAdapterConfig::default()
///     .key("my-app")
///     .requests_timeout(Duration::from_secs(2));
/// assert_eq!(config.key, "my-app");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisAdapterConfig {
    /// Prefix of every channel; the whole cluster must agree. Default `socket.io`.
    pub key: String,
    /// How long a request to other nodes (fetch sockets, all rooms,
    /// server-side emit with acks) waits for their answers. Default 5 s.
    pub requests_timeout: Duration,
    /// Answer other nodes on their own response channel
    /// (`K-response#N#<uid>#`) instead of the shared one. Default false, as
    /// the reference (every node of the cluster can then read the answers).
    pub publish_on_specific_response_channel: bool,
    /// Messages waiting to be published; beyond it (Redis down or too slow)
    /// messages for other nodes are dropped with a logged error, while local
    /// delivery goes on. Default 65 536.
    pub max_queued_publishes: usize,
    /// Longest wait between two reconnection attempts. Default 5 s.
    pub max_reconnect_delay: Duration,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        RedisAdapterConfig {
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
            max_queued_publishes: 65_536,
            max_reconnect_delay: Duration::from_secs(5),
        }
    }
}

impl RedisAdapterConfig {
    /// Sets [`key`](Self::key).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets [`requests_timeout`](Self::requests_timeout).
    pub fn requests_timeout(mut self, d: Duration) -> Self {
        self.requests_timeout = d;
        self
    }

    /// Sets [`publish_on_specific_response_channel`](Self::publish_on_specific_response_channel).
    pub fn publish_on_specific_response_channel(mut self, on: bool) -> Self {
        self.publish_on_specific_response_channel = on;
        self
    }

    /// Sets [`max_queued_publishes`](Self::max_queued_publishes).
    pub fn max_queued_publishes(mut self, n: usize) -> Self {
        self.max_queued_publishes = n;
        self
    }

    /// Sets [`max_reconnect_delay`](Self::max_reconnect_delay).
    pub fn max_reconnect_delay(mut self, d: Duration) -> Self {
        self.max_reconnect_delay = d;
        self
    }
}

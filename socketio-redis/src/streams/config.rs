//! Settings of the Redis Streams adapter, with the reference adapter's defaults.

use std::time::Duration;

/// Settings of the Redis Streams adapter. Every node of the cluster, Rust or
/// Node, must agree on `stream_name`, `channel_prefix` and
/// `session_key_prefix`.
///
/// # Defaults and bounds
/// | field | default | bounds |
/// |---|---|---|
/// | `stream_name` | `socket.io` | one stream for every namespace (the reference's `streamCount` 1) |
/// | `channel_prefix` | `socket.io` | pub/sub channels `K#N#` and `K#N#<uid>#` |
/// | `max_len` | 10 000 | `XADD MAXLEN ~`: the stream holds about this many entries; an offset older than that cannot be recovered |
/// | `read_count` | 100 | entries per `XREAD` and per `XRANGE` of a restore |
/// | `block_time` | 5 s | how long one `XREAD` waits |
/// | `session_key_prefix` | `sio:session:` | session records `<prefix><pid>` |
/// | `session_refresh_interval` | 30 s | a connected socket's record is rewritten this often (its TTL is then the maximum disconnection duration plus this) |
/// | `replay_cache_len` | 1 024 | events per namespace kept in memory for sockets that recover while the stream moves on |
/// | `requests_timeout` | 5 s | fetch, server-side emit with acks |
/// | `max_queued_commands` | 65 536 | Redis commands waiting to be sent; beyond it they are dropped (logged) |
/// | `max_reconnect_delay` | 5 s | longest wait between reconnection attempts |
///
/// ```
/// use std::time::Duration;
/// let config = socketio_redis::RedisStreamsConfig::default()
///     .stream_name("my-app")
///     .max_len(50_000);
/// assert_eq!(config.max_len, 50_000);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisStreamsConfig {
    /// The stream every node writes to and reads. Default `socket.io`.
    pub stream_name: String,
    /// Prefix of the pub/sub channels. Default `socket.io`.
    pub channel_prefix: String,
    /// Approximate length the stream is trimmed to (`MAXLEN ~`). Default 10 000.
    pub max_len: u64,
    /// Entries per `XREAD` / `XRANGE` call. Default 100.
    pub read_count: u64,
    /// Blocking time of one `XREAD`. Default 5 s.
    pub block_time: Duration,
    /// Prefix of the session records. Default `sio:session:`.
    pub session_key_prefix: String,
    /// How often the records of connected sockets are rewritten (rooms are
    /// written at once when they change, `data` at the next refresh).
    /// Default 30 s; at most half the maximum disconnection duration is used.
    pub session_refresh_interval: Duration,
    /// Events per namespace kept in memory so that a socket recovering while
    /// the stream moves on gets every one of them. Default 1 024.
    pub replay_cache_len: usize,
    /// How long a request to other nodes waits for their answers. Default 5 s.
    pub requests_timeout: Duration,
    /// Commands waiting to be sent to Redis. Default 65 536.
    pub max_queued_commands: usize,
    /// Longest wait between two reconnection attempts. Default 5 s.
    pub max_reconnect_delay: Duration,
}

impl Default for RedisStreamsConfig {
    fn default() -> Self {
        RedisStreamsConfig {
            stream_name: "socket.io".to_owned(),
            channel_prefix: "socket.io".to_owned(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".to_owned(),
            session_refresh_interval: Duration::from_secs(30),
            replay_cache_len: 1024,
            requests_timeout: Duration::from_secs(5),
            max_queued_commands: 65_536,
            max_reconnect_delay: Duration::from_secs(5),
        }
    }
}

impl RedisStreamsConfig {
    /// Sets [`stream_name`](Self::stream_name).
    pub fn stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream_name = name.into();
        self
    }

    /// Sets [`channel_prefix`](Self::channel_prefix).
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// Sets [`max_len`](Self::max_len).
    pub fn max_len(mut self, n: u64) -> Self {
        self.max_len = n;
        self
    }

    /// Sets [`read_count`](Self::read_count).
    pub fn read_count(mut self, n: u64) -> Self {
        self.read_count = n.max(1);
        self
    }

    /// Sets [`block_time`](Self::block_time).
    pub fn block_time(mut self, d: Duration) -> Self {
        self.block_time = d;
        self
    }

    /// Sets [`session_key_prefix`](Self::session_key_prefix).
    pub fn session_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.session_key_prefix = prefix.into();
        self
    }

    /// Sets [`session_refresh_interval`](Self::session_refresh_interval).
    pub fn session_refresh_interval(mut self, d: Duration) -> Self {
        self.session_refresh_interval = d;
        self
    }

    /// Sets [`replay_cache_len`](Self::replay_cache_len).
    pub fn replay_cache_len(mut self, n: usize) -> Self {
        self.replay_cache_len = n;
        self
    }

    /// Sets [`requests_timeout`](Self::requests_timeout).
    pub fn requests_timeout(mut self, d: Duration) -> Self {
        self.requests_timeout = d;
        self
    }

    /// Sets [`max_queued_commands`](Self::max_queued_commands).
    pub fn max_queued_commands(mut self, n: usize) -> Self {
        self.max_queued_commands = n;
        self
    }

    /// Sets [`max_reconnect_delay`](Self::max_reconnect_delay).
    pub fn max_reconnect_delay(mut self, d: Duration) -> Self {
        self.max_reconnect_delay = d;
        self
    }
}

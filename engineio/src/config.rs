//! Server limits and options, with the reference server's defaults.

use std::time::Duration;

use crate::compression::HttpCompression;
use crate::cors::Cors;
use crate::error::Error;

/// Engine.IO server options.
///
/// Every field has a setter that takes and returns the config, so options chain;
/// invalid combinations are reported by [`EngineIo::new`](crate::EngineIo::new).
///
/// ```
/// use std::time::Duration;
/// use engineio::EngineConfig;
/// let config = EngineConfig::default()
///     .ping_interval(Duration::from_millis(300))
///     .ping_timeout(Duration::from_millis(200))
///     .max_payload(100_000);
/// assert_eq!(config.path, "/engine.io/");
/// ```
///
/// # Defaults
/// | field | default | unit | worst-case memory it bounds |
/// |---|---|---|---|
/// | `path` | `/engine.io/` | | |
/// | `ping_interval` | 25 000 | ms | |
/// | `ping_timeout` | 20 000 | ms | |
/// | `upgrade_timeout` | 10 000 | ms | |
/// | `max_payload` | 1 000 000 | bytes | one POST body or one WebSocket message per session being read |
/// | `high_water_mark` | 1 MiB | bytes | soft budget of the outbound queue per session (see below) |
/// | `max_buffered_bytes` | 16 MiB | bytes | hard budget of the outbound queue per session: with one WebSocket write batch (64 KiB), the most a session pins |
/// | `slow_client_timeout` | 10 000 | ms | how long a session may stay over `high_water_mark` without its client taking anything |
/// | `max_buffered_incoming` | 64 | messages | received messages not yet taken by the application, per session (then reading pauses) |
/// | `max_sessions` | 100 000 | sessions | further handshakes get 503 |
/// | `polling_close_wait` | 30 000 | ms | how long a server-closed polling session waits for a GET to deliver its close |
/// | `body_timeout` | 30 000 | ms | how long a POST body may take to arrive (then 408 and the session closes) |
/// | `shutdown_timeout` | 10 000 | ms | how long a graceful [`close`](crate::EngineIo::close) (or the end of [`serve`](crate::EngineIo::serve)) waits for clients and tasks before it closes and aborts what is left |
/// | `cors` | off | | |
/// | `http_compression` | on, threshold 1 024 | bytes | polling responses of at least the threshold are gzip'd / deflated per `Accept-Encoding` (one compressed copy per response) |
/// | `allow_eio3` | off | | Engine.IO v3 clients (Socket.IO v2); see [`allow_eio3`](Self::allow_eio3) |
/// | `per_message_deflate` | off (threshold 1 024, window 15 bits when on) | bytes | WebSocket permessage-deflate; no zlib state per connection unless `context_takeover(max)` (then at most `max` connections × about 334 KiB, measured with 15-bit windows; see [`PerMessageDeflate`]) |
///
/// # Outbound backpressure: bursts are not slow clients
///
/// Each session's outbound queue is counted in bytes: a message costs its
/// length plus 64 bytes of bookkeeping. A broadcast message is one buffer
/// shared by all its recipients, but each counts it whole: it is what that
/// session alone can keep alive.
///
/// - Up to `high_water_mark` nothing happens: sends report [`Backlog::Normal`](crate::Backlog).
/// - Over it, messages are still queued (a burst the server produced itself —
///   a history replay, a tick of 2 000 emits — is absorbed), sends report
///   [`Backlog::High`](crate::Backlog), and the slow-client clock runs: if the
///   client's transport takes nothing from the queue for
///   `slow_client_timeout`, the session is closed
///   ([`CloseReason::QueueFull`](crate::CloseReason::QueueFull)). Every write
///   the client lets through (a WebSocket batch of at most 64 KiB, a polling
///   GET) restarts the clock, so a client that keeps reading is never cut off
///   by it; back under the mark, the clock stops and
///   [`Socket::writable`](crate::Socket::writable) waiters wake.
/// - A send that would take the queue over `max_buffered_bytes` fails with
///   [`Error::QueueFull`] and closes the session at once, whatever the pace.
///
/// Volatile sends are dropped unless the queue is empty and the transport
/// ready. A client that stops reading altogether is thus cut off within
/// `slow_client_timeout` of the queue passing the mark, or by the heartbeat
/// (`ping_interval + ping_timeout`) if its socket buffers took everything.
///
/// Worst case per session: `max_buffered_bytes` + 64 KiB (+ the kernel's
/// socket buffers). For the process: sessions × that, but broadcast messages
/// are shared, so N slow clients behind the same broadcast burst pin the burst
/// once plus 64 bytes per message each.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// URL prefix, with leading and trailing `/`.
    pub path: String,
    /// Time between a pong (or the handshake) and the next ping.
    pub ping_interval: Duration,
    /// How long the client has to answer a ping.
    pub ping_timeout: Duration,
    /// How long a probing WebSocket has to send the `5` upgrade packet.
    pub upgrade_timeout: Duration,
    /// Largest POST body / WebSocket message accepted, advertised as `maxPayload`.
    pub max_payload: usize,
    /// Whether long-polling is offered.
    pub allow_polling: bool,
    /// Whether WebSocket is offered.
    pub allow_websocket: bool,
    /// Whether polling sessions may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// Soft budget of a session's outbound queue, in bytes: over it, sends
    /// report [`Backlog::High`](crate::Backlog) and the slow-client clock runs
    /// (see [Outbound backpressure](Self#outbound-backpressure-bursts-are-not-slow-clients)).
    pub high_water_mark: usize,
    /// Hard budget of a session's outbound queue, in bytes: a send that would
    /// pass it fails with [`Error::QueueFull`] and the session is closed.
    pub max_buffered_bytes: usize,
    /// How long a session may stay over `high_water_mark` without its client
    /// taking anything before it is closed as a slow client.
    pub slow_client_timeout: Duration,
    /// Inbound messages buffered per session before reading pauses.
    pub max_buffered_incoming: usize,
    /// Maximum live sessions.
    pub max_sessions: usize,
    /// How long a server-closed polling session waits for the next GET.
    pub polling_close_wait: Duration,
    /// How long a POST body may take to arrive; a body that trickles or never
    /// ends gets 408 and its session is closed.
    pub body_timeout: Duration,
    /// How long a graceful close waits for queued messages to reach the
    /// clients and for the server's tasks to end before it cuts the rest.
    pub shutdown_timeout: Duration,
    /// CORS policy for HTTP requests; `None` sends no CORS headers.
    pub cors: Option<Cors>,
    /// Compression of long-polling responses (Node's `httpCompression`); on
    /// by default with a 1 024-byte threshold, `None` turns it off. Never
    /// applied to WebSocket.
    pub http_compression: Option<HttpCompression>,
    /// Whether Engine.IO v3 clients (`EIO=3`: `socket.io-client` 2.x and the
    /// native clients of that generation) are served, next to v4 clients.
    ///
    /// Off by default, as Node's `allowEIO3`. As in the reference
    /// (`packages/engine.io/lib/server.ts`, `handshake`: `EIO === "4" ? 4 : 3`),
    /// a handshake whose `EIO` is anything but `4` (missing included) is a v3
    /// handshake: refused with 400 `{"code":5,"message":"Unsupported protocol
    /// version"}` while this is off, served as v3 when it is on. See
    /// [`Protocol`](crate::Protocol) for what changes on the wire.
    pub allow_eio3: bool,
    /// WebSocket permessage-deflate (RFC 7692, Node's `perMessageDeflate`):
    /// off (`None`) by default, as in Node.
    pub per_message_deflate: Option<PerMessageDeflate>,
}

/// WebSocket compression (permessage-deflate, RFC 7692), offered to clients
/// that ask for it (Chromium and Node's `ws` do by default).
///
/// ```
/// use engineio::{EngineConfig, PerMessageDeflate};
/// let c = EngineConfig::default().per_message_deflate(Some(PerMessageDeflate::default().threshold(0)));
/// assert_eq!(c.per_message_deflate.map(|d| d.threshold), Some(0));
/// assert!(EngineConfig::default().per_message_deflate.is_none());
/// ```
///
/// # Memory
/// By default the server answers every offer with `server_no_context_takeover` and
/// `client_no_context_takeover`: each message is compressed and inflated on
/// its own, so a connection keeps **no** zlib state between messages: a few
/// compressors (at most 4 per worker thread, one per level and window size
/// in use, the least recently used dropped) and one decompressor per worker
/// thread, made on first use, serve all connections (an idle connection
/// costs nothing for deflate).
/// Measured (`conformance/soak/ws-memory.js`, debug build): 1 000 and 3 000
/// idle Socket.IO clients on WebSocket, each after one compressed 4 KiB
/// message both ways, cost the server 1.3 MiB more RSS with deflate on than
/// off, in both cases: the per-thread state, nothing per connection (again
/// with the zlib-rs backend: 14.4 KiB per connection with deflate on, 13.9
/// KiB off, 1 000 clients). While a message
/// is handled it costs its compressed and its inflated copy; an inflated
/// message is refused past `max_payload` (close code 1009), however small its
/// compressed form. A broadcast text message is compressed once per window
/// size and the compressed frame shared by every recipient whose window is
/// at least that large; binary messages and direct sends are compressed per
/// connection.
///
/// # Window bits
/// A client may ask for a smaller LZ77 window (`server_max_window_bits`,
/// 8–15): the server then compresses with the smaller of that and
/// [`server_max_window_bits`](Self::server_max_window_bits), and answers it.
/// As with Node's `ws` (whose zlib does the same), 8 is answered as asked and
/// compressed with a 9-bit window, which zlib's deflate keeps within 250
/// bytes of distance. When the offer carries `client_max_window_bits`, the
/// answer limits the client's window to the smaller of its value and
/// [`client_max_window_bits`](Self::client_max_window_bits) (left out when
/// both are 15 and the offer had no value). An invalid offer (an unknown or
/// repeated parameter, a value outside 8–15) is declined and the next one
/// tried (RFC 7692 §7.1).
///
/// # Context takeover
/// Off by default. With [`context_takeover(max)`](Self::context_takeover),
/// up to `max` connections at once negotiate context takeover: the response
/// leaves out `server_no_context_takeover` and `client_no_context_takeover`
/// unless the client's offer asked for them (Node's `ws` and Chromium do
/// not), so the server keeps, for that connection, a compressor whose
/// history carries over from message to message (a run of similar messages
/// compresses far better) and an inflater for what the client compresses
/// the same way. Both are made on the connection's first compressed message
/// and dropped when it closes, which frees its slot; past `max`, new
/// connections negotiate no context takeover as by default (already open
/// ones keep theirs). A connection with server-to-client takeover compresses
/// every message itself, broadcasts included: its bytes depend on its own
/// history, so it cannot share the once-compressed broadcast frame.
/// Worst case: `max` × (compressor + inflater). Measured
/// (`conformance/soak/ws-memory.js`, 1 000 Socket.IO clients, each after one
/// compressed 4 KiB message both ways, debug build, zlib-rs): 14.4 KiB of
/// RSS per connection with deflate on and no takeover, 348.8 KiB with
/// `context_takeover(1000)` (+334 KiB per connection, 15-bit windows), 222.2 KiB
/// with both windows limited to 10 bits (+208 KiB), and 47.9 KiB on average
/// with `context_takeover(100)` (only 100 of them hold state). What it buys
/// (`conformance/soak/ws-deflate-ratio.js`): 1 000 similar 2 KiB JSON
/// messages took 369 282 bytes server → client without takeover, 60 034
/// with it (6.2× fewer; 7.4× fewer client → server).
///
/// ```
/// use engineio::PerMessageDeflate;
/// let d = PerMessageDeflate::default()
///     .server_max_window_bits(10)
///     .client_max_window_bits(12);
/// assert_eq!((d.server_max_window_bits, d.client_max_window_bits), (10, 12));
/// assert_eq!(PerMessageDeflate::default().server_max_window_bits, 15);
/// assert_eq!(PerMessageDeflate::default().server_max_window_bits(3).server_max_window_bits, 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerMessageDeflate {
    /// Smallest message, in bytes of its frame, that is compressed (default
    /// 1 024, Node's); smaller ones go uncompressed.
    pub threshold: usize,
    /// zlib level 0–9 (default 6, zlib's and Node's default).
    pub level: u32,
    /// Largest LZ77 window, in bits (8–15), the server compresses with
    /// (default 15, a 32 KiB window, zlib's and Node's default); a client's
    /// smaller `server_max_window_bits` wins. Answered as
    /// `server_max_window_bits` when below 15 or when the client asked.
    pub server_max_window_bits: u8,
    /// Largest LZ77 window, in bits (8–15), the server lets a client compress
    /// with, answered as `client_max_window_bits` to a client that offers
    /// that parameter (default 15: no limit). The server inflates with a
    /// 15-bit window, which reads any smaller one.
    pub client_max_window_bits: u8,
    /// How many connections at once may use context takeover (default 0:
    /// none, every message compressed on its own). See
    /// [Context takeover](Self#context-takeover).
    pub context_takeover: usize,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        PerMessageDeflate {
            threshold: 1024,
            level: 6,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            context_takeover: 0,
        }
    }
}

impl PerMessageDeflate {
    /// Sets [`threshold`](Self::threshold).
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`level`](Self::level) (values over 9 are taken as 9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`server_max_window_bits`](Self::server_max_window_bits) (taken
    /// into 8–15).
    ///
    /// ```
    /// let d = engineio::PerMessageDeflate::default().server_max_window_bits(9);
    /// assert_eq!(d.server_max_window_bits, 9);
    /// ```
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`client_max_window_bits`](Self::client_max_window_bits) (taken
    /// into 8–15).
    ///
    /// ```
    /// let d = engineio::PerMessageDeflate::default().client_max_window_bits(20);
    /// assert_eq!(d.client_max_window_bits, 15);
    /// ```
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`context_takeover`](Self::context_takeover): up to
    /// `max_connections` connections at once keep their own compressor and
    /// inflater (0: off).
    ///
    /// ```
    /// let d = engineio::PerMessageDeflate::default().context_takeover(1000);
    /// assert_eq!(d.context_takeover, 1000);
    /// assert_eq!(engineio::PerMessageDeflate::default().context_takeover, 0);
    /// ```
    pub fn context_takeover(mut self, max_connections: usize) -> Self {
        self.context_takeover = max_connections;
        self
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".to_owned(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            allow_polling: true,
            allow_websocket: true,
            allow_upgrades: true,
            high_water_mark: 1 << 20,
            max_buffered_bytes: 16 << 20,
            slow_client_timeout: Duration::from_millis(10_000),
            max_buffered_incoming: 64,
            max_sessions: 100_000,
            polling_close_wait: Duration::from_millis(30_000),
            body_timeout: Duration::from_millis(30_000),
            shutdown_timeout: Duration::from_millis(10_000),
            cors: None,
            http_compression: Some(HttpCompression::default()),
            allow_eio3: false,
            per_message_deflate: None,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl EngineConfig {
    /// Sets the URL prefix; a missing leading or trailing `/` is added.
    ///
    /// ```
    /// let c = engineio::EngineConfig::default().path("/socket.io");
    /// assert_eq!(c.path, "/socket.io/");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut p: String = path.into();
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        if !p.ends_with('/') {
            p.push('/');
        }
        self.path = p;
        self
    }

    setter!(
        /// Sets [`ping_interval`](Self::ping_interval).
        ping_interval: Duration
    );
    setter!(
        /// Sets [`ping_timeout`](Self::ping_timeout).
        ping_timeout: Duration
    );
    setter!(
        /// Sets [`upgrade_timeout`](Self::upgrade_timeout).
        upgrade_timeout: Duration
    );
    setter!(
        /// Sets [`max_payload`](Self::max_payload).
        max_payload: usize
    );
    setter!(
        /// Sets [`allow_polling`](Self::allow_polling).
        allow_polling: bool
    );
    setter!(
        /// Sets [`allow_websocket`](Self::allow_websocket).
        allow_websocket: bool
    );
    setter!(
        /// Sets [`allow_upgrades`](Self::allow_upgrades).
        allow_upgrades: bool
    );
    setter!(
        /// Sets [`high_water_mark`](Self::high_water_mark).
        ///
        /// ```
        /// let c = engineio::EngineConfig::default().high_water_mark(256 * 1024);
        /// assert_eq!(c.high_water_mark, 256 * 1024);
        /// ```
        high_water_mark: usize
    );
    setter!(
        /// Sets [`max_buffered_bytes`](Self::max_buffered_bytes).
        max_buffered_bytes: usize
    );
    setter!(
        /// Sets [`slow_client_timeout`](Self::slow_client_timeout).
        slow_client_timeout: Duration
    );
    setter!(
        /// Sets [`max_buffered_incoming`](Self::max_buffered_incoming).
        max_buffered_incoming: usize
    );
    setter!(
        /// Sets [`max_sessions`](Self::max_sessions).
        max_sessions: usize
    );
    setter!(
        /// Sets [`polling_close_wait`](Self::polling_close_wait).
        polling_close_wait: Duration
    );
    setter!(
        /// Sets [`body_timeout`](Self::body_timeout).
        body_timeout: Duration
    );
    setter!(
        /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
        shutdown_timeout: Duration
    );
    setter!(
        /// Sets [`allow_eio3`](Self::allow_eio3).
        ///
        /// ```
        /// let c = engineio::EngineConfig::default().allow_eio3(true);
        /// assert!(c.allow_eio3);
        /// ```
        allow_eio3: bool
    );

    /// Sets the CORS policy.
    ///
    /// ```
    /// use engineio::{Cors, EngineConfig};
    /// let c = EngineConfig::default().cors(Cors::any());
    /// assert!(c.cors.is_some());
    /// ```
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Sets [`http_compression`](Self::http_compression) (`None`: off).
    ///
    /// ```
    /// use engineio::{EngineConfig, HttpCompression};
    /// let c = EngineConfig::default().http_compression(Some(HttpCompression::default().level(9)));
    /// assert_eq!(c.http_compression.map(|h| h.level), Some(9));
    /// ```
    pub fn http_compression(mut self, value: Option<HttpCompression>) -> Self {
        self.http_compression = value;
        self
    }

    /// Sets [`per_message_deflate`](Self::per_message_deflate) (`None`: off).
    ///
    /// ```
    /// use engineio::{EngineConfig, PerMessageDeflate};
    /// let c = EngineConfig::default().per_message_deflate(Some(PerMessageDeflate::default()));
    /// assert_eq!(c.per_message_deflate.map(|d| d.threshold), Some(1024));
    /// ```
    pub fn per_message_deflate(mut self, value: Option<PerMessageDeflate>) -> Self {
        self.per_message_deflate = value;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return Err(Error::InvalidConfig(
                "ping_interval and ping_timeout must be > 0",
            ));
        }
        if self.max_payload == 0 {
            return Err(Error::InvalidConfig("max_payload must be > 0"));
        }
        if self.high_water_mark == 0
            || self.max_buffered_bytes == 0
            || self.max_buffered_incoming == 0
        {
            return Err(Error::InvalidConfig("queue bounds must be > 0"));
        }
        if self.high_water_mark > self.max_buffered_bytes {
            return Err(Error::InvalidConfig(
                "high_water_mark must not exceed max_buffered_bytes",
            ));
        }
        if self.slow_client_timeout.is_zero() {
            return Err(Error::InvalidConfig("slow_client_timeout must be > 0"));
        }
        if !self.allow_polling && !self.allow_websocket {
            return Err(Error::InvalidConfig(
                "at least one transport must be allowed",
            ));
        }
        if let Some(d) = &self.per_message_deflate {
            let bits = 8..=15;
            if !bits.contains(&d.server_max_window_bits)
                || !bits.contains(&d.client_max_window_bits)
                || d.level > 9
            {
                return Err(Error::InvalidConfig(
                    "per_message_deflate: window bits must be 8-15 and level 0-9",
                ));
            }
        }
        if u64::try_from(self.ping_interval.as_millis()).is_err()
            || u64::try_from(self.ping_timeout.as_millis()).is_err()
        {
            return Err(Error::InvalidConfig("durations too large"));
        }
        Ok(())
    }
}

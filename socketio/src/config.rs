//! Socket.IO server options, with the reference server's defaults.

use std::time::Duration;

use engineio::EngineConfig;

/// Socket.IO server options: the Engine.IO options underneath plus the
/// Socket.IO layer's own limits.
///
/// ```
/// use std::time::Duration;
/// use socketio::SocketIoConfig;
/// let config = SocketIoConfig::default().connect_timeout(Duration::from_secs(10));
/// assert_eq!(config.engine.path, "/socket.io/");
/// ```
///
/// # Defaults
/// | field | default | unit | bounds |
/// |---|---|---|---|
/// | `engine.path` | `/socket.io/` | | |
/// | `connect_timeout` | 45 000 | ms | a connection that joins no namespace in time is closed |
/// | `max_attachments` | 10 | per packet | binary attachments declared by one packet |
/// | `max_namespace_len` | 256 | bytes | namespace names in CONNECT packets |
/// | `max_namespaces_per_client` | 64 | namespaces | joined namespaces per connection |
/// | `max_pending_acks` | 4 096 | per socket | server→client emits awaiting an ack (`emit_with_ack` fails beyond) |
/// | `max_queued_events` | 64 | per connection | received packets waiting for their handler (then reading pauses) |
/// | `ack_timeout` | 10 000 | ms | default `emit_with_ack` timeout when none is set |
/// | `connection_state_recovery` | off | | see [`RecoveryConfig`] |
/// | `serve_client` | off | | the bundle files found in the directory, read once at `build()` (about 1.2 MB for the official 4.8 `dist`) |
/// | `parser` | [`Parser::Json`] | | every namespace of the server uses it |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// The Engine.IO layer's options.
    pub engine: EngineConfig,
    /// How long a new connection may take to join its first namespace.
    pub connect_timeout: Duration,
    /// Attachments one packet may declare.
    pub max_attachments: usize,
    /// Longest namespace name accepted.
    pub max_namespace_len: usize,
    /// Namespaces one connection may join at once.
    pub max_namespaces_per_client: usize,
    /// Outstanding server→client acks per socket.
    pub max_pending_acks: usize,
    /// Decoded packets queued per connection while a handler runs.
    pub max_queued_events: usize,
    /// Default timeout of `emit_with_ack` when no `timeout()` was given.
    pub ack_timeout: Duration,
    /// Connection state recovery; off (`None`) by default, as in Node.
    pub connection_state_recovery: Option<RecoveryConfig>,
    /// Node's `serveClient`: a `socket.io-client/dist` directory whose bundle
    /// is served under the Socket.IO path; `None` (the default) serves nothing.
    /// See [`serve_client`](Self::serve_client).
    pub serve_client: Option<std::path::PathBuf>,
    /// How packets are written on the wire; one parser for the whole server,
    /// as Node's `new Server({ parser })`.
    pub parser: Parser,
}

/// The packet encoding of a server: what its clients' parser speaks.
///
/// ```
/// use socketio::{Parser, SocketIoConfig};
/// let config = SocketIoConfig::default().parser(Parser::Msgpack);
/// assert_eq!(config.parser, Parser::Msgpack);
/// assert_eq!(SocketIoConfig::default().parser, Parser::Json);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Parser {
    /// The default parser (`socket.io-parser`): text packets, binary values as
    /// attachments in binary messages after their header.
    #[default]
    Json,
    /// `socket.io-msgpack-parser` 3.x (clients built with
    /// `io(url, { parser: require("socket.io-msgpack-parser") })`): every packet
    /// is one binary message holding a MessagePack map `{type, nsp, data, id}`,
    /// binary values inline (see [`packet::decode_msgpack`](crate::packet::decode_msgpack)).
    /// Over polling, each travels as a `b<base64>` packet.
    ///
    /// Received binary values reach handlers as with the JSON parser (placeholders in
    /// [`Args::values`](crate::Args::values), bytes in [`Args::binary`](crate::Args::binary)).
    /// A JavaScript `undefined` argument is kept as the
    /// [`msgpack::undefined`](crate::msgpack::undefined) marker, so it goes back as
    /// `undefined` when re-emitted; typed handlers read it as `null` / `None`. A client's
    /// `Date` arrives as its ISO-8601 text.
    Msgpack,
}

/// Connection state recovery: a client that lost its connection for a
/// recoverable reason (transport close or error, ping timeout, forced close,
/// server shutdown) and comes back within `max_disconnection_duration` gets
/// the same socket id, rooms and data, and the events it missed.
///
/// # Defaults
/// | field | default | bounds |
/// |---|---|---|
/// | `max_disconnection_duration` | 120 000 ms | how long sessions and emitted events are kept |
/// | `skip_middlewares` | true | a recovered socket skips the middlewares |
/// | `max_kept_packets` | 10 000 per namespace | the event log (oldest dropped first; a client whose offset was dropped is not recovered) |
/// | `max_kept_sessions` | 10 000 per namespace | disconnected sessions kept (oldest dropped first) |
///
/// ```
/// use socketio::{RecoveryConfig, SocketIoConfig};
/// let config = SocketIoConfig::default().connection_state_recovery(RecoveryConfig::default());
/// assert!(config.connection_state_recovery.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// How long a disconnected session (and the events emitted meanwhile) is kept.
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the middlewares.
    pub skip_middlewares: bool,
    /// Events kept per namespace.
    pub max_kept_packets: usize,
    /// Disconnected sessions kept per namespace.
    pub max_kept_sessions: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(120_000),
            skip_middlewares: true,
            max_kept_packets: 10_000,
            max_kept_sessions: 10_000,
        }
    }
}

impl RecoveryConfig {
    /// Sets [`max_disconnection_duration`](Self::max_disconnection_duration).
    pub fn max_disconnection_duration(mut self, d: Duration) -> Self {
        self.max_disconnection_duration = d;
        self
    }

    /// Sets [`skip_middlewares`](Self::skip_middlewares).
    pub fn skip_middlewares(mut self, yes: bool) -> Self {
        self.skip_middlewares = yes;
        self
    }

    /// Sets [`max_kept_packets`](Self::max_kept_packets).
    pub fn max_kept_packets(mut self, n: usize) -> Self {
        self.max_kept_packets = n;
        self
    }

    /// Sets [`max_kept_sessions`](Self::max_kept_sessions).
    pub fn max_kept_sessions(mut self, n: usize) -> Self {
        self.max_kept_sessions = n;
        self
    }
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            engine: EngineConfig::default().path("/socket.io/"),
            connect_timeout: Duration::from_millis(45_000),
            max_attachments: 10,
            max_namespace_len: 256,
            max_namespaces_per_client: 64,
            max_pending_acks: 4096,
            max_queued_events: 64,
            ack_timeout: Duration::from_millis(10_000),
            connection_state_recovery: None,
            serve_client: None,
            parser: Parser::Json,
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

impl SocketIoConfig {
    /// Replaces the Engine.IO options (keep `path` pointing at `/socket.io/`
    /// unless your clients use another path).
    ///
    /// ```
    /// use socketio::SocketIoConfig;
    /// let c = SocketIoConfig::default()
    ///     .engine(engineio::EngineConfig::default().path("/socket.io/").max_payload(10_000));
    /// assert_eq!(c.engine.max_payload, 10_000);
    /// ```
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    setter!(
        /// Sets [`connect_timeout`](Self::connect_timeout).
        connect_timeout: Duration
    );
    setter!(
        /// Sets [`max_attachments`](Self::max_attachments).
        max_attachments: usize
    );
    setter!(
        /// Sets [`max_namespace_len`](Self::max_namespace_len).
        max_namespace_len: usize
    );
    setter!(
        /// Sets [`max_namespaces_per_client`](Self::max_namespaces_per_client).
        max_namespaces_per_client: usize
    );
    setter!(
        /// Sets [`max_pending_acks`](Self::max_pending_acks).
        max_pending_acks: usize
    );
    setter!(
        /// Sets [`max_queued_events`](Self::max_queued_events).
        max_queued_events: usize
    );
    setter!(
        /// Sets [`ack_timeout`](Self::ack_timeout).
        ack_timeout: Duration
    );

    setter!(
        /// Sets [`parser`](Self::parser).
        parser: Parser
    );

    /// Turns connection state recovery on.
    pub fn connection_state_recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.connection_state_recovery = Some(recovery);
        self
    }

    /// Serves the official client bundle from `dir` (e.g.
    /// `node_modules/socket.io-client/dist`), as Node's `serveClient` does:
    /// `GET <path>socket.io.js`, `socket.io.min.js`, `socket.io.esm.min.js`,
    /// `socket.io.msgpack.min.js` and their `.map` files, with
    /// `Content-Type: application/javascript; charset=utf-8` (maps:
    /// `application/json; charset=utf-8`), `Cache-Control: public, max-age=0`,
    /// an `ETag` of the client's version (from `dir/../package.json`; a hash of
    /// the files without one) and `304 Not Modified` on a matching
    /// `If-None-Match`. The files are read once, by
    /// [`SocketIo::new`](crate::SocketIo::new) / `build()`, which fails if
    /// the directory holds none of them. With
    /// [`EngineConfig::http_compression`](engineio::EngineConfig::http_compression)
    /// on (the default) they are sent gzip'd or deflated when the request
    /// accepts it.
    ///
    /// ```no_run
    /// use socketio::{SocketIo, SocketIoConfig};
    /// let io = SocketIo::new(
    ///     SocketIoConfig::default().serve_client("node_modules/socket.io-client/dist"),
    /// )?;
    /// // <script src="/socket.io/socket.io.min.js"></script> now loads.
    /// # let _ = io;
    /// # Ok::<(), socketio::Error>(())
    /// ```
    pub fn serve_client(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.serve_client = Some(dir.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if self.max_queued_events == 0 || self.max_namespaces_per_client == 0 {
            return Err(crate::Error::InvalidConfig("queue bounds must be > 0"));
        }
        Ok(())
    }
}

//! The sans-IO protocol core: per-session state machine with its timers.
//! Nothing here touches tokio, hyper or a clock; time comes in as `now`.

mod session;

pub(crate) use session::{
    Conn, GetError, MESSAGE_OVERHEAD, PostError, Session, Timings, WsOutput, message_cost,
};

/// The Engine.IO protocol revision a session speaks, from the handshake's
/// `EIO` query parameter.
///
/// v3 (served only with [`EngineConfig::allow_eio3`](crate::EngineConfig::allow_eio3))
/// differs from v4 on the wire (facts from the reference server,
/// `packages/engine.io/lib/socket.ts`, `transports/polling.ts`,
/// `parser-v3/index.ts`): polling payloads are length-prefixed
/// (see [`PayloadV3`](crate::PayloadV3)), binary packets carry their type
/// (`b4<base64>` in text, a leading `0x04` byte in binary), and the heartbeat
/// is reversed: the client pings, the server answers pong and closes the
/// session after `ping_interval + ping_timeout` without a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Engine.IO v3 (`EIO=3`; Socket.IO v2 clients).
    V3,
    /// Engine.IO v4 (`EIO=4`; Socket.IO v3 and v4 clients).
    V4,
}

impl Protocol {
    /// The revision number (`3` or `4`), as in the `EIO` query parameter.
    pub fn number(self) -> u8 {
        match self {
            Protocol::V3 => 3,
            Protocol::V4 => 4,
        }
    }
}

/// The transport a session is currently on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Transport {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed it: a `1` packet, or the WebSocket closed cleanly.
    TransportClose,
    /// The transport failed: I/O error, protocol violation, overlapping
    /// requests, or a message over `max_payload`.
    TransportError,
    /// No pong within `ping_timeout` of a ping.
    PingTimeout,
    /// The application closed it ([`Socket::close`](crate::Socket::close)).
    ForcedClose,
    /// The client sent something that does not decode.
    ParseError,
    /// The server is shutting down ([`EngineIo::shutdown`](crate::EngineIo::shutdown)).
    ServerShutdown,
    /// The outbound queue reached `max_buffered_bytes`, or stayed over
    /// `high_water_mark` for `slow_client_timeout` with nothing taken: the client does not
    /// read fast enough and was cut off.
    QueueFull,
}

impl CloseReason {
    /// The reference server's reason string (`"transport close"`, `"ping timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ParseError => "parse error",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::QueueFull => "transport error",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

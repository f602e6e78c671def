//! The sans-IO protocol core: per-session state machine with its timers.
//! Nothing here touches tokio, hyper or a clock; time comes in as `now`.

mod session;

pub(crate) use session::{
    Conn, GetError, MESSAGE_OVERHEAD, PostError, Session, Timings, WsOutput, message_cost,
};

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

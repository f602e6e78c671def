//! The crate's one error type.

use std::fmt;

pub use crate::packet::ParseError;

/// Every way the `socketio` crate can fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The Engine.IO layer failed (closed session, full queue, I/O, config).
    Engine(engineio::Error),
    /// A packet from the client could not be decoded.
    Parse(ParseError),
    /// Arguments could not be converted to or from JSON.
    Json(serde_json::Error),
    /// The socket is disconnected.
    Disconnected,
    /// Too many emits await an ack on this socket.
    TooManyPendingAcks,
    /// The configuration is invalid.
    InvalidConfig(&'static str),
    /// The adapter (e.g. a cluster backend) failed.
    Adapter(String),
    /// Other nodes did not answer in time.
    Timeout(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Engine(e) => write!(f, "engine: {e}"),
            Error::Parse(e) => write!(f, "parse error: {e}"),
            Error::Json(e) => write!(f, "json: {e}"),
            Error::Disconnected => f.write_str("socket disconnected"),
            Error::TooManyPendingAcks => f.write_str("too many pending acks"),
            Error::InvalidConfig(why) => write!(f, "invalid config: {why}"),
            Error::Adapter(why) => write!(f, "adapter: {why}"),
            Error::Timeout(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Engine(e) => Some(e),
            Error::Parse(e) => Some(e),
            Error::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<engineio::Error> for Error {
    fn from(e: engineio::Error) -> Self {
        Error::Engine(e)
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}

/// Why an `emit_with_ack` produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckError {
    /// No ack within the timeout.
    Timeout,
    /// The socket disconnected before answering.
    Disconnected,
    /// The ack arguments did not deserialize into the requested type.
    Decode(String),
    /// The emit could not be sent (closed socket, full queue, too many pending acks).
    Send(String),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckError::Timeout => f.write_str("operation has timed out"),
            AckError::Disconnected => f.write_str("socket disconnected"),
            AckError::Decode(e) => write!(f, "ack arguments: {e}"),
            AckError::Send(e) => write!(f, "emit failed: {e}"),
        }
    }
}

impl std::error::Error for AckError {}

//! The crate's one error type, its typed sub-enums, and the mapping of a refused
//! request to the status and JSON body the reference server sends.

use std::fmt;

/// Every way the `engineio` crate can fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A packet or payload sent by the peer could not be decoded.
    Decode(DecodeError),
    /// An HTTP request was refused before it reached a session.
    Handshake(HandshakeError),
    /// The session's outbound queue would pass its hard limit; nothing was
    /// queued and the session is being closed (see
    /// [`EngineConfig::max_buffered_bytes`](crate::EngineConfig::max_buffered_bytes)).
    QueueFull,
    /// The session is closed; nothing more can be sent on it.
    Closed,
    /// The configuration is invalid; the message says which field and why.
    InvalidConfig(&'static str),
    /// An I/O error from the listener or a connection.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(e) => write!(f, "decode error: {e}"),
            Error::Handshake(e) => write!(f, "request refused: {e}"),
            Error::QueueFull => f.write_str("outbound queue full"),
            Error::Closed => f.write_str("session closed"),
            Error::InvalidConfig(why) => write!(f, "invalid config: {why}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Decode(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Why a packet or a polling payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet has no bytes at all (not even a type digit).
    Empty,
    /// The first byte is not a packet type digit `0`..=`6` (nor `b` in a polling payload).
    UnknownType(u8),
    /// A `b`-prefixed polling item is not valid standard base64.
    InvalidBase64,
    /// Text data is not valid UTF-8.
    InvalidUtf8,
    /// The packet or payload is larger than the configured limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An Engine.IO v3 payload's length prefix is malformed: not decimal
    /// digits, too many digits, missing its terminator, or a length that does
    /// not match the data that follows (see [`PayloadV3`](crate::PayloadV3)).
    BadLength,
    /// An Engine.IO v3 binary packet whose type is not a message (`4`), or a
    /// v3 binary payload item that is neither a string (`0`) nor binary (`1`).
    UnsupportedBinary(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty packet"),
            DecodeError::UnknownType(b) => write!(f, "unknown packet type byte 0x{b:02x}"),
            DecodeError::InvalidBase64 => f.write_str("invalid base64 in binary packet"),
            DecodeError::InvalidUtf8 => f.write_str("text packet is not valid UTF-8"),
            DecodeError::TooLarge { limit } => write!(f, "larger than the limit of {limit} bytes"),
            DecodeError::BadLength => f.write_str("malformed v3 length prefix"),
            DecodeError::UnsupportedBinary(b) => {
                write!(f, "unsupported v3 binary packet or item type 0x{b:02x}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why an HTTP request to the Engine.IO endpoint was refused. Each variant is
/// one of the reference server's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Code 0: the `transport` query parameter is missing or not supported.
    UnknownTransport,
    /// Code 1: the `sid` is not a live session.
    UnknownSid,
    /// Code 2: a handshake (no `sid`) that is not a `GET`.
    BadHandshakeMethod,
    /// Code 3: anything else that is malformed (transport mismatch, WebSocket
    /// transport without an upgrade, ...).
    BadRequest,
    /// Code 4: the `allow_request` hook refused the handshake.
    Forbidden,
    /// Code 5: `EIO` is missing or not `4`.
    UnsupportedProtocolVersion,
}

impl HandshakeError {
    /// The numeric code the reference server puts in the JSON body.
    pub fn code(self) -> u8 {
        match self {
            HandshakeError::UnknownTransport => 0,
            HandshakeError::UnknownSid => 1,
            HandshakeError::BadHandshakeMethod => 2,
            HandshakeError::BadRequest => 3,
            HandshakeError::Forbidden => 4,
            HandshakeError::UnsupportedProtocolVersion => 5,
        }
    }

    /// The message the reference server puts in the JSON body.
    pub fn message(self) -> &'static str {
        match self {
            HandshakeError::UnknownTransport => "Transport unknown",
            HandshakeError::UnknownSid => "Session ID unknown",
            HandshakeError::BadHandshakeMethod => "Bad handshake method",
            HandshakeError::BadRequest => "Bad request",
            HandshakeError::Forbidden => "Forbidden",
            HandshakeError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status the reference server answers with: 403 for
    /// [`Forbidden`](Self::Forbidden), 400 otherwise.
    pub fn status(self) -> http::StatusCode {
        match self {
            HandshakeError::Forbidden => http::StatusCode::FORBIDDEN,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The exact JSON body, e.g. `{"code":1,"message":"Session ID unknown"}`.
    pub fn json_body(self) -> String {
        format!(
            r#"{{"code":{},"message":"{}"}}"#,
            self.code(),
            self.message()
        )
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message(), self.code())
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_match_reference() {
        assert_eq!(
            HandshakeError::UnknownSid.json_body(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(HandshakeError::Forbidden.status(), 403);
        assert_eq!(HandshakeError::UnsupportedProtocolVersion.code(), 5);
    }
}

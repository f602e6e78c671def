//! The crate's one error type.

use std::fmt;

/// Every way the Redis adapter can fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Redis refused or dropped a connection or a command.
    Redis(redis::RedisError),
    /// Redis did not answer in time.
    Timeout(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Redis(e) => write!(f, "redis: {e}"),
            Error::Timeout(what) => write!(f, "redis: no answer in time to {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis(e) => Some(e),
            Error::Timeout(_) => None,
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Redis(e)
    }
}

impl From<Error> for socketio::Error {
    fn from(e: Error) -> Self {
        socketio::Error::Adapter(e.to_string())
    }
}

//! The handshake of a namespace connection, in the shape the reference server
//! gives `socket.handshake`.

use std::net::SocketAddr;

use http::HeaderMap;
use serde_json::Value;

/// What the server knows of a client when it connects to a namespace.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Handshake {
    /// Headers of the HTTP request that opened the Engine.IO session.
    pub headers: HeaderMap,
    /// When that request arrived, in milliseconds since the Unix epoch.
    pub issued: u64,
    /// The peer's address, if known.
    pub address: Option<SocketAddr>,
    /// Whether the request carried an `Origin` header (a cross-domain request).
    pub xdomain: bool,
    /// Whether the connection was over TLS (always false: TLS terminates in front of us).
    pub secure: bool,
    /// The request URL (path and query).
    pub url: String,
    /// The decoded query of the Engine.IO handshake request.
    pub query: Vec<(String, String)>,
    /// The CONNECT packet's auth payload (`{}` if none).
    pub auth: Value,
}

impl Handshake {
    pub(crate) fn new(req: &engineio::HandshakeRequest, auth: Value) -> Self {
        let issued = req
            .issued
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Handshake {
            headers: req.headers.clone(),
            issued,
            address: req.remote_addr,
            xdomain: req.headers.contains_key(http::header::ORIGIN),
            secure: false,
            url: req.uri.to_string(),
            query: req.query_pairs().to_vec(),
            auth,
        }
    }

    /// The first value of a handshake query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

//! The handshake of a namespace connection, in the shape the reference server
//! gives `socket.handshake`.

pub(crate) mod date;

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

/// What the server knows of a client when it connects to a namespace.
///
/// The fields are the raw material; [`Handshake::to_json`] renders them as
/// the reference server's `socket.handshake` object.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Handshake {
    /// Headers of the HTTP request that opened the Engine.IO session.
    pub headers: std::sync::Arc<HeaderMap>,
    /// When that request arrived, in milliseconds since the Unix epoch.
    pub issued: u64,
    /// The peer's address, if known.
    pub address: Option<SocketAddr>,
    /// Whether the request carried a non-empty `Origin` header (a
    /// cross-domain request), as the reference's `!!headers.origin`.
    pub xdomain: bool,
    /// Whether the connection was over TLS (always false: TLS terminates in front of us).
    pub secure: bool,
    /// The request URL (path and query).
    pub url: String,
    /// The decoded query of the Engine.IO handshake request, every pair in order.
    pub query: Vec<(String, String)>,
    /// The CONNECT packet's auth payload (`{}` if none). For a Socket.IO v2
    /// client (Engine.IO v3), the query of its namespace CONNECT as an object
    /// of strings (`{}` for `/`, which it joins without a CONNECT).
    pub auth: Value,
    /// The Engine.IO revision of the client's connection:
    /// [`Protocol::V3`](engineio::Protocol::V3) for Socket.IO v2 clients
    /// (served with [`EngineConfig::allow_eio3`](engineio::EngineConfig::allow_eio3)),
    /// [`Protocol::V4`](engineio::Protocol::V4) otherwise.
    pub protocol: engineio::Protocol,
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
            xdomain: node_truthy_origin(&req.headers),
            secure: false,
            url: req.uri.to_string(),
            query: req.query_pairs().to_vec(),
            auth,
            protocol: engineio::Protocol::V4,
        }
    }

    /// The first value of a handshake query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// [`issued`](Handshake::issued) as the reference's `time` field:
    /// JavaScript's `new Date().toString()` in a process whose time zone is
    /// UTC, e.g. `Thu Nov 26 2026 01:55:10 GMT+0000 (Coordinated Universal Time)`.
    pub fn time(&self) -> String {
        date::node_string(self.issued)
    }

    /// The handshake exactly as the reference server's `socket.handshake`
    /// serializes: `{headers, time, address, xdomain, secure, issued, url,
    /// query, auth}`, in that order.
    ///
    /// - `headers` is Node's `req.headers`: lower-case names in order of first
    ///   arrival, values decoded as latin1, repeated headers joined with `, `
    ///   (`; ` for `cookie`), kept as an array for `set-cookie`, and only the
    ///   first kept for those Node allows once (`host`, `user-agent`,
    ///   `content-type`, `authorization`, ...).
    /// - `time` is [`Handshake::time`]; `issued` the milliseconds.
    /// - `address` is the peer's IP as Node's `remoteAddress` prints it
    ///   (`127.0.0.1`, `::1`, `::ffff:127.0.0.1`, no port); absent when
    ///   unknown, as `undefined` vanishes from JSON. A link-local IPv6 scope
    ///   is written as its number, where Node writes the interface name.
    /// - `query` is `Object.fromEntries(searchParams)` of the Engine.IO
    ///   handshake URL: for a repeated key the *last* value wins, at the place
    ///   of its first occurrence.
    /// - `auth` is the CONNECT payload.
    ///
    /// Object keys that are array indices (`"0"`, `"17"`) come first in
    /// ascending order, as in every JavaScript object.
    ///
    /// ```no_run
    /// use socketio::{Socket, SocketIo, SocketIoConfig};
    ///
    /// # fn main() -> Result<(), socketio::Error> {
    /// let io = SocketIo::new(SocketIoConfig::default())?;
    /// io.on_connection(|socket: Socket| async move {
    ///     let json = socket.handshake().to_json();
    ///     // e.g. {"headers":{"host":"localhost:3000",...},"time":"Thu Nov 26 2026 ...",
    ///     //       "address":"127.0.0.1","xdomain":false,"secure":false,"issued":1795658110123,
    ///     //       "url":"/socket.io/?EIO=4&transport=polling&t=P1a","query":{"EIO":"4",...},
    ///     //       "auth":{}}
    ///     let _ = socket.emit("handshake", &json);
    /// });
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_json(&self) -> Value {
        let mut query = Map::new();
        for (k, v) in &self.query {
            // With `preserve_order`, an existing key keeps its place.
            query.insert(k.clone(), Value::String(v.clone()));
        }
        let mut out = Map::new();
        out.insert("headers".to_owned(), Handshake::node_headers(&self.headers));
        out.insert("time".to_owned(), Value::String(self.time()));
        if let Some(address) = &self.address {
            out.insert("address".to_owned(), Value::String(node_address(address)));
        }
        out.insert("xdomain".to_owned(), Value::Bool(self.xdomain));
        out.insert("secure".to_owned(), Value::Bool(self.secure));
        out.insert("issued".to_owned(), Value::from(self.issued));
        out.insert("url".to_owned(), Value::String(self.url.clone()));
        out.insert("query".to_owned(), Value::Object(js_key_order(query)));
        out.insert("auth".to_owned(), self.auth.clone());
        Value::Object(out)
    }

    /// Node's `req.headers` for any header map (see [`Handshake::to_json`]).
    /// Not a stable API: for the conformance server.
    #[doc(hidden)]
    pub fn node_headers(headers: &HeaderMap) -> Value {
        let mut out = Map::new();
        for name in headers.keys() {
            let key = name.as_str();
            // `dest["__proto__"] = value` sets no property in Node.
            if key == "__proto__" {
                continue;
            }
            let mut values = headers.get_all(name).iter().map(latin1);
            let value = if key == "set-cookie" {
                Value::Array(values.map(Value::String).collect())
            } else if NODE_SINGLE_HEADERS.contains(&key) {
                Value::String(values.next().unwrap_or_default())
            } else {
                let sep = if key == "cookie" { "; " } else { ", " };
                Value::String(values.collect::<Vec<_>>().join(sep))
            };
            out.insert(key.to_owned(), value);
        }
        Value::Object(js_key_order(out))
    }

    /// JavaScript's `new Date(ms).toUTCString()` (an HTTP date).
    /// Not a stable API: for the conformance server.
    #[doc(hidden)]
    pub fn http_date(ms: u64) -> String {
        date::http_date(ms)
    }

    /// JavaScript's `new Date(ms).toISOString()` (what `JSON.stringify`
    /// writes for a `Date`), `None` past the range of a `Date`.
    /// Not a stable API: for the conformance server.
    #[doc(hidden)]
    pub fn iso_date(ms: u64) -> Option<String> {
        date::iso(ms)
    }
}

/// Headers whose duplicates Node drops (keeps the first), from
/// `matchKnownFields` in `_http_incoming.js`.
const NODE_SINGLE_HEADERS: [&str; 18] = [
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
];

/// A header value as Node decodes it (latin1).
fn latin1(v: &HeaderValue) -> String {
    v.as_bytes().iter().map(|&b| char::from(b)).collect()
}

/// `!!req.headers.origin`: the joined `Origin` value is non-empty.
fn node_truthy_origin(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(http::header::ORIGIN).iter();
    match (values.next(), values.next()) {
        (None, _) => false,
        (Some(first), None) => !first.is_empty(),
        // Joined with ", ": never empty.
        (Some(_), Some(_)) => true,
    }
}

/// The peer's IP as Node's `socket.remoteAddress` (libuv's `inet_ntop`).
fn node_address(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => {
            let ip = a.ip();
            let [s0, s1, s2, s3, s4, s5, s6, _] = ip.segments();
            let mut text = if [s0, s1, s2, s3, s4, s5] == [0; 6] && s6 != 0 {
                // An IPv4-compatible address: libuv writes `::1.2.3.4`
                // where Rust writes `::102:304`. (IPv4-mapped ones,
                // `::ffff:1.2.3.4`, print the same in both.)
                let [.., a, b, c, d] = ip.octets();
                format!("::{}", std::net::Ipv4Addr::new(a, b, c, d))
            } else {
                IpAddr::V6(*ip).to_string()
            };
            // Node names the interface of a link-local address.
            if s0 & 0xffc0 == 0xfe80 && a.scope_id() != 0 {
                text.push('%');
                text.push_str(&a.scope_id().to_string());
            }
            text
        }
    }
}

/// The canonical array index a JavaScript property key denotes, if any.
fn array_index(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n != u32::MAX && n.to_string() == key).then_some(n)
}

/// An object's keys in JavaScript's order: array indices ascending, then the
/// other keys in insertion order.
fn js_key_order(map: Map<String, Value>) -> Map<String, Value> {
    if !map.keys().any(|k| array_index(k).is_some()) {
        return map;
    }
    let (mut indices, names): (Vec<_>, Vec<_>) =
        map.into_iter().partition(|(k, _)| array_index(k).is_some());
    indices.sort_by_key(|(k, _)| array_index(k));
    indices.into_iter().chain(names).collect()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV6};

    use serde_json::json;

    use super::*;

    fn handshake() -> Handshake {
        let mut headers = HeaderMap::new();
        headers.append("host", HeaderValue::from_static("localhost:3000"));
        Handshake {
            headers: std::sync::Arc::new(headers),
            issued: 1_795_658_110_123,
            address: Some(SocketAddr::from(([127, 0, 0, 1], 51_000))),
            xdomain: false,
            secure: false,
            url: "/socket.io/?EIO=4&transport=polling&b=1&a=2&b=3&7=x".to_owned(),
            query: [
                ("EIO", "4"),
                ("transport", "polling"),
                ("b", "1"),
                ("a", "2"),
            ]
            .into_iter()
            .chain([("b", "3"), ("7", "x")])
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            auth: json!({"token": "abc"}),
            protocol: engineio::Protocol::V4,
        }
    }

    #[test]
    fn time_is_node_date_string() {
        assert_eq!(
            handshake().time(),
            "Thu Nov 26 2026 01:55:10 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn json_as_node() {
        let v = handshake().to_json();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            concat!(
                r#"{"headers":{"host":"localhost:3000"},"#,
                r#""time":"Thu Nov 26 2026 01:55:10 GMT+0000 (Coordinated Universal Time)","#,
                r#""address":"127.0.0.1","xdomain":false,"secure":false,"issued":1795658110123,"#,
                r#""url":"/socket.io/?EIO=4&transport=polling&b=1&a=2&b=3&7=x","#,
                r#""query":{"7":"x","EIO":"4","transport":"polling","b":"3","a":"2"},"#,
                r#""auth":{"token":"abc"}}"#
            )
        );
    }

    #[test]
    fn unknown_address_is_left_out() {
        let mut h = handshake();
        h.address = None;
        let v = h.to_json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "headers", "time", "xdomain", "secure", "issued", "url", "query", "auth"
            ]
        );
    }

    #[test]
    fn headers_as_node() {
        let mut h = HeaderMap::new();
        h.append("host", HeaderValue::from_static("a"));
        h.append("host", HeaderValue::from_static("b"));
        h.append("cookie", HeaderValue::from_static("1=1"));
        h.append("cookie", HeaderValue::from_static("2=2"));
        h.append("accept", HeaderValue::from_static("x"));
        h.append("accept", HeaderValue::from_static("y"));
        h.append("set-cookie", HeaderValue::from_static("z=1"));
        h.append("user-agent", HeaderValue::from_static("first"));
        h.append("user-agent", HeaderValue::from_static("second"));
        h.append("date", HeaderValue::from_static("d1"));
        h.append("date", HeaderValue::from_static("d2"));
        h.append("x-latin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        h.append("__proto__", HeaderValue::from_static("p"));
        h.append("10", HeaderValue::from_static("ten"));
        h.append("2", HeaderValue::from_static("two"));
        assert_eq!(
            serde_json::to_string(&Handshake::node_headers(&h)).unwrap(),
            concat!(
                r#"{"2":"two","10":"ten","host":"a","cookie":"1=1; 2=2","accept":"x, y","#,
                r#""set-cookie":["z=1"],"user-agent":"first","date":"d1, d2","x-latin":"café"}"#
            )
        );
    }

    #[test]
    fn origin_truthiness() {
        let mut h = HeaderMap::new();
        assert!(!node_truthy_origin(&h));
        h.append("origin", HeaderValue::from_static(""));
        assert!(!node_truthy_origin(&h));
        h.append("origin", HeaderValue::from_static(""));
        assert!(node_truthy_origin(&h));
        let mut h = HeaderMap::new();
        h.append("origin", HeaderValue::from_static("http://x"));
        assert!(node_truthy_origin(&h));
    }

    #[test]
    fn addresses_as_node() {
        let v6 = |ip: &str, scope: u32| {
            SocketAddr::V6(SocketAddrV6::new(
                ip.parse::<Ipv6Addr>().unwrap(),
                1,
                0,
                scope,
            ))
        };
        assert_eq!(
            node_address(&SocketAddr::from(([10, 0, 0, 1], 1))),
            "10.0.0.1"
        );
        assert_eq!(node_address(&v6("::1", 0)), "::1");
        assert_eq!(node_address(&v6("::", 0)), "::");
        assert_eq!(node_address(&v6("::ffff:127.0.0.1", 0)), "::ffff:127.0.0.1");
        assert_eq!(node_address(&v6("::1.2.3.4", 0)), "::1.2.3.4");
        assert_eq!(node_address(&v6("::2", 0)), "::2");
        assert_eq!(
            node_address(&v6("2001:db8:0:0:1:0:0:1", 0)),
            "2001:db8::1:0:0:1"
        );
        assert_eq!(node_address(&v6("2001:db8::1", 7)), "2001:db8::1");
        assert_eq!(node_address(&v6("fe80::1", 3)), "fe80::1%3");
        assert_eq!(node_address(&v6("fe80::1", 0)), "fe80::1");
    }

    #[test]
    fn array_indices() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        for not in ["4294967295", "01", "+1", "-1", "1.0", "", "a"] {
            assert_eq!(array_index(not), None, "{not}");
        }
    }
}

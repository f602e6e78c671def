//! The shapes the Admin UI reads, as `@socket.io/admin-ui` 0.5 writes them
//! (`lib/index.ts`: `serialize`, `serializeData`, `emitStats`). Pure.

use serde_json::{Map, Value};

use crate::adapter::Room;

/// The key under which a socket's admin details travel inside its `data`
/// across a cluster (the reference keeps them in `socket.data._admin`).
pub(crate) const ADMIN_KEY: &str = "_admin";

/// What the UI calls a client id: the first 12 characters of the Engine.IO
/// session id ("this information is quite sensitive", says the reference).
pub(crate) fn client_id(sid: &str) -> String {
    sid.chars().take(12).collect()
}

/// A socket's `data` as the UI sees it: without the admin details; a socket
/// with no data shows `{}` (Node's `socket.data` starts as `{}`).
pub(crate) fn public_data(data: &Value) -> Value {
    match data {
        Value::Null => Value::Object(Map::new()),
        Value::Object(m) => {
            let mut m = m.clone();
            m.shift_remove(ADMIN_KEY);
            Value::Object(m)
        }
        other => other.clone(),
    }
}

/// A socket's `data` with its admin details added, for another node's
/// dashboard: `{...data, _admin: {clientId, transport}}` (non-object data is
/// left as it is).
pub(crate) fn data_with_admin(data: Value, client_id: &str, transport: &str) -> Value {
    let mut m = match data {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        other => return other,
    };
    let mut admin = Map::new();
    admin.insert("clientId".to_owned(), Value::from(client_id));
    admin.insert("transport".to_owned(), Value::from(transport));
    m.insert(ADMIN_KEY.to_owned(), Value::Object(admin));
    Value::Object(m)
}

/// The admin details another node put in a socket's data:
/// `(clientId, transport)`, each `None` if absent.
pub(crate) fn admin_details(data: &Value) -> (Option<String>, Option<String>) {
    let admin = data.get(ADMIN_KEY);
    let field = |k: &str| {
        admin
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    (field("clientId"), field("transport"))
}

/// JavaScript truthiness of a JSON value (for `a || b` and `if (x)`).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The UI's handshake, from the reference's `socket.handshake` JSON (what
/// [`Handshake::to_json`](crate::Handshake::to_json) writes and other nodes
/// send): `{address, headers, query, issued, secure, time, url, xdomain}`,
/// without `auth`; `address` is the `cf-connecting-ip` header, else the
/// `x-forwarded-for` header, else the peer's address (absent if none is).
pub(crate) fn handshake(h: &Value) -> Value {
    let headers = h.get("headers");
    let header = |name: &str| headers.and_then(|hs| hs.get(name)).filter(|v| truthy(v));
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .or_else(|| h.get("address").filter(|v| !v.is_null()));
    let mut out = Map::new();
    if let Some(a) = address {
        out.insert("address".to_owned(), a.clone());
    }
    for key in [
        "headers", "query", "issued", "secure", "time", "url", "xdomain",
    ] {
        if let Some(v) = h.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// What the UI knows of one socket (the reference's `SerializedSocket`).
pub(crate) struct SocketView<'a> {
    pub(crate) id: &'a str,
    /// `None` when another node did not say (the key is then absent, as
    /// `undefined` is in JSON).
    pub(crate) client_id: Option<String>,
    pub(crate) transport: Option<String>,
    pub(crate) nsp: &'a str,
    /// The socket's data, admin details included or not.
    pub(crate) data: &'a Value,
    /// The reference's `socket.handshake` JSON.
    pub(crate) handshake: &'a Value,
    pub(crate) rooms: &'a [Room],
}

impl SocketView<'_> {
    /// `{id, clientId, transport, nsp, data, handshake, rooms}`, the socket's
    /// own room first.
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".to_owned(), Value::from(self.id));
        if let Some(c) = &self.client_id {
            m.insert("clientId".to_owned(), Value::from(c.as_str()));
        }
        if let Some(t) = &self.transport {
            m.insert("transport".to_owned(), Value::from(t.as_str()));
        }
        m.insert("nsp".to_owned(), Value::from(self.nsp));
        m.insert("data".to_owned(), public_data(self.data));
        m.insert("handshake".to_owned(), handshake(self.handshake));
        let mut rooms: Vec<Value> = Vec::with_capacity(self.rooms.len());
        if self.rooms.iter().any(|r| r == self.id) {
            rooms.push(Value::from(self.id));
        }
        rooms.extend(
            self.rooms
                .iter()
                .filter(|r| *r != self.id)
                .map(|r| Value::from(r.as_str())),
        );
        m.insert("rooms".to_owned(), Value::Array(rooms));
        Value::Object(m)
    }
}

/// Now as JavaScript's `new Date().toISOString()`, which is how a `Date`
/// argument reaches the UI: `YYYY-MM-DDTHH:MM:SS.sssZ`.
pub(crate) fn now_iso() -> String {
    crate::handshake::date::iso(now_millis()).unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node_handshake() -> Value {
        json!({
            "headers": {"host": "localhost:3000", "origin": "https://admin.socket.io"},
            "time": "Thu Dec 03 2026 16:38:46 GMT+0000 (Coordinated Universal Time)",
            "address": "::ffff:127.0.0.1",
            "xdomain": true,
            "secure": false,
            "issued": 1_796_315_926_916_u64,
            "url": "/socket.io/?EIO=4&transport=polling&t=s4fup4mz",
            "query": {"EIO": "4", "transport": "polling", "t": "s4fup4mz"},
            "auth": {"token": "kept out"}
        })
    }

    #[test]
    fn handshake_has_the_reference_keys_in_order_without_auth() {
        let h = handshake(&node_handshake());
        let keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "address", "headers", "query", "issued", "secure", "time", "url", "xdomain"
            ]
        );
        assert_eq!(h["address"], "::ffff:127.0.0.1");
    }

    #[test]
    fn forwarded_addresses_win() {
        let mut raw = node_handshake();
        raw["headers"]["x-forwarded-for"] = json!("10.0.0.1");
        assert_eq!(handshake(&raw)["address"], "10.0.0.1");
        raw["headers"]["cf-connecting-ip"] = json!("10.0.0.2");
        assert_eq!(handshake(&raw)["address"], "10.0.0.2");
        // An empty header is falsy in JavaScript.
        raw["headers"]["cf-connecting-ip"] = json!("");
        assert_eq!(handshake(&raw)["address"], "10.0.0.1");
        let mut none = node_handshake();
        none.as_object_mut().unwrap().remove("address");
        assert!(handshake(&none).get("address").is_none());
    }

    #[test]
    fn data_is_shown_without_admin_details() {
        assert_eq!(public_data(&Value::Null), json!({}));
        let with = data_with_admin(json!({"user": "ann"}), "abcdefghijkl", "polling");
        assert_eq!(
            with,
            json!({"user": "ann", "_admin": {"clientId": "abcdefghijkl", "transport": "polling"}})
        );
        assert_eq!(public_data(&with), json!({"user": "ann"}));
        assert_eq!(
            admin_details(&with),
            (Some("abcdefghijkl".to_owned()), Some("polling".to_owned()))
        );
        assert_eq!(admin_details(&json!({})), (None, None));
        assert_eq!(data_with_admin(json!("text"), "c", "t"), json!("text"));
        assert_eq!(
            data_with_admin(Value::Null, "c", "websocket"),
            json!({"_admin": {"clientId": "c", "transport": "websocket"}})
        );
    }

    #[test]
    fn socket_view_matches_the_reference_shape() {
        let hs = node_handshake();
        let rooms = vec!["r1".to_owned(), "ID".to_owned()];
        let v = SocketView {
            id: "ID",
            client_id: Some(client_id("5oyrSsQ1MlAvyyoNAAAA")),
            transport: Some("websocket".to_owned()),
            nsp: "/",
            data: &Value::Null,
            handshake: &hs,
            rooms: &rooms,
        }
        .to_json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "clientId",
                "transport",
                "nsp",
                "data",
                "handshake",
                "rooms"
            ]
        );
        assert_eq!(v["clientId"], "5oyrSsQ1MlAv");
        assert_eq!(v["rooms"], json!(["ID", "r1"]));
        assert_eq!(v["data"], json!({}));
    }

    #[test]
    fn iso_time_shape() {
        let t = now_iso();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn javascript_truthiness() {
        for v in [json!(null), json!(false), json!(0), json!(""), json!(0.0)] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!("x"), json!([]), json!({})] {
            assert!(truthy(&v), "{v}");
        }
    }
}

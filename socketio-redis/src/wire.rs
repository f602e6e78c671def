//! The classic `@socket.io/redis-adapter` 8.x wire format: channel names,
//! the broadcast frame `[uid, packet, opts]`, requests and responses.
//!
//! Pure: no I/O. Broadcast frames and BROADCAST (7) / BROADCAST_ACK (9)
//! messages are MessagePack ([`crate::msgpack`]); every other request and
//! response is JSON text. A receiver tells them apart by the first byte
//! (`{` is JSON), as the reference does.

use std::collections::HashSet;
use std::fmt;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use socketio::{BroadcastOptions, Room};

use crate::msgpack::{self, MsgpackError};

/// Request types (the reference's `RequestType`).
pub mod kind {
    /// Socket ids in rooms.
    pub const SOCKETS: u64 = 0;
    /// Every room.
    pub const ALL_ROOMS: u64 = 1;
    /// Selected sockets join rooms.
    pub const REMOTE_JOIN: u64 = 2;
    /// Selected sockets leave rooms.
    pub const REMOTE_LEAVE: u64 = 3;
    /// Selected sockets are disconnected.
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// Descriptions of the selected sockets.
    pub const REMOTE_FETCH: u64 = 5;
    /// A server-side event.
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// A broadcast with acks.
    pub const BROADCAST: u64 = 7;
    /// How many clients a node sent a broadcast with acks to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// One client's ack to a broadcast.
    pub const BROADCAST_ACK: u64 = 9;
}

/// Why a message from Redis was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Not valid JSON.
    Json(String),
    /// Not valid MessagePack.
    Msgpack(MsgpackError),
    /// A field is missing or has the wrong type.
    Shape(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Json(e) => write!(f, "json: {e}"),
            WireError::Msgpack(e) => e.fmt(f),
            WireError::Shape(what) => write!(f, "unexpected shape: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<MsgpackError> for WireError {
    fn from(e: MsgpackError) -> Self {
        WireError::Msgpack(e)
    }
}

/// The channels of one namespace for a key (default `socket.io`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// `K#N#`: broadcasts (and the prefix of one-room broadcasts).
    pub broadcast: String,
    /// `K#N#*`: the pattern every node subscribes to.
    pub pattern: String,
    /// `K-request#N#`.
    pub request: String,
    /// `K-response#N#`.
    pub response: String,
    /// `K-response#N#<uid>#`.
    pub specific_response: String,
}

impl Channels {
    /// The channels of namespace `nsp` for node `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let response = format!("{key}-response#{nsp}#");
        Channels {
            broadcast: format!("{key}#{nsp}#"),
            pattern: format!("{key}#{nsp}#*"),
            request: format!("{key}-request#{nsp}#"),
            specific_response: format!("{response}{uid}#"),
            response,
        }
    }

    /// Where a broadcast to `opts.rooms` goes: the room's own channel when
    /// it targets exactly one room.
    pub fn for_broadcast(&self, rooms: &HashSet<Room>) -> String {
        match (rooms.len(), rooms.iter().next()) {
            (1, Some(room)) => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }

    /// The room of a channel heard through the pattern (`""` for the
    /// namespace's own channel), or `None` if it is not this namespace's.
    pub fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let rest = channel.strip_prefix(self.broadcast.as_str())?;
        if rest.is_empty() {
            return Some("");
        }
        rest.strip_suffix('#')
    }
}

/// A packet as it travels between nodes: `{type, data, nsp, id?}`, its
/// binary parts as placeholders into `attachments`.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePacket {
    /// 2 (EVENT) or 3 (ACK); the reference never sends the binary types here.
    pub kind: u64,
    /// `[event, ...args]` for an event.
    pub data: Value,
    /// Binary parts of `data`.
    pub attachments: Vec<Bytes>,
    /// The namespace (`/` when absent).
    pub nsp: String,
    /// Ack id, if any.
    pub id: Option<u64>,
}

impl WirePacket {
    pub(crate) fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".to_owned(), Value::from(self.kind));
        m.insert("data".to_owned(), self.data.clone());
        m.insert("nsp".to_owned(), Value::String(self.nsp.clone()));
        if let Some(id) = self.id {
            m.insert("id".to_owned(), Value::from(id));
        }
        Value::Object(m)
    }

    pub(crate) fn from_value(v: &Value, attachments: Vec<Bytes>) -> Result<Self, WireError> {
        let kind = v
            .get("type")
            .and_then(Value::as_u64)
            .ok_or(WireError::Shape("packet.type"))?;
        Ok(WirePacket {
            kind,
            data: v.get("data").cloned().unwrap_or(Value::Null),
            attachments,
            nsp: v
                .get("nsp")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_owned(),
            id: v.get("id").and_then(Value::as_u64),
        })
    }
}

/// Rooms and exceptions as the reference sends them: `{rooms, except}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Target rooms (all sockets when empty).
    pub rooms: Vec<Room>,
    /// Excluded rooms.
    pub except: Vec<Room>,
}

impl Selection {
    /// From broadcast options.
    pub fn from_opts(opts: &BroadcastOptions) -> Self {
        let mut rooms: Vec<Room> = opts.rooms.iter().cloned().collect();
        let mut except: Vec<Room> = opts.except.iter().cloned().collect();
        rooms.sort();
        except.sort();
        Selection { rooms, except }
    }

    /// To broadcast options.
    pub fn to_opts(&self) -> BroadcastOptions {
        let mut o = BroadcastOptions::default();
        o.rooms = self.rooms.iter().cloned().collect();
        o.except = self.except.iter().cloned().collect();
        o
    }

    pub(crate) fn to_value(&self) -> Value {
        json!({ "rooms": self.rooms, "except": self.except })
    }

    pub(crate) fn from_value(v: Option<&Value>) -> Self {
        Selection {
            rooms: rooms(v.and_then(|v| v.get("rooms"))),
            except: rooms(v.and_then(|v| v.get("except"))),
        }
    }
}

/// Room names from a JSON array (numbers as their text, as JavaScript's
/// `Set` of rooms would hold them when sent by a Node node).
pub fn rooms(v: Option<&Value>) -> Vec<Room> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|r| match r {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A broadcast frame `[uid, packet, opts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastFrame {
    /// The sending node (`"emitter"` for `@socket.io/redis-emitter`).
    pub uid: String,
    /// The packet.
    pub packet: WirePacket,
    /// Rooms and exceptions.
    pub selection: Selection,
    /// `flags.volatile`.
    pub volatile: bool,
}

/// The `flags` object of a broadcast.
fn flags_value(opts: &BroadcastOptions) -> Value {
    let mut flags = Map::new();
    if opts.flags.volatile {
        flags.insert("volatile".to_owned(), Value::Bool(true));
    }
    if opts.flags.local {
        flags.insert("local".to_owned(), Value::Bool(true));
    }
    if let Some(t) = opts.timeout {
        flags.insert(
            "timeout".to_owned(),
            Value::from(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    Value::Object(flags)
}

pub(crate) fn opts_value(opts: &BroadcastOptions) -> Value {
    let mut v = Selection::from_opts(opts).to_value();
    if let Value::Object(m) = &mut v {
        m.insert("flags".to_owned(), flags_value(opts));
    }
    v
}

/// Encodes a broadcast frame as the Node adapter's `broadcast` does.
///
/// # Errors
/// If the packet's placeholders do not match its attachments.
pub fn encode_broadcast(
    uid: &str,
    packet: &WirePacket,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, WireError> {
    let frame = Value::Array(vec![
        Value::String(uid.to_owned()),
        packet.to_value(),
        opts_value(opts),
    ]);
    Ok(msgpack::encode(&frame, &packet.attachments)?)
}

/// Decodes a broadcast frame.
///
/// # Errors
/// Malformed MessagePack or an unexpected shape.
pub fn decode_broadcast(bytes: &[u8]) -> Result<BroadcastFrame, WireError> {
    decode_broadcast_with(bytes, &msgpack::DecodeOptions::default())
}

/// [`decode_broadcast`] with MessagePack options: a node whose clients use the
/// msgpack parser keeps `undefined` arguments (as notepack 3 decodes them in
/// the Node adapter, and the msgpack parser writes them back).
///
/// # Errors
/// Malformed MessagePack or an unexpected shape.
pub fn decode_broadcast_with(
    bytes: &[u8],
    options: &msgpack::DecodeOptions,
) -> Result<BroadcastFrame, WireError> {
    let (v, bins) = msgpack::decode_with(bytes, options)?;
    let Value::Array(parts) = v else {
        return Err(WireError::Shape("broadcast frame is not an array"));
    };
    let mut it = parts.into_iter();
    let uid = match it.next() {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let packet = it
        .next()
        .ok_or(WireError::Shape("broadcast frame packet"))?;
    let packet = WirePacket::from_value(&packet, bins)?;
    let opts = it.next().unwrap_or(Value::Null);
    let volatile = opts
        .get("flags")
        .and_then(|f| f.get("volatile"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(BroadcastFrame {
        uid,
        packet,
        selection: Selection::from_value(Some(&opts)),
        volatile,
    })
}

/// A request from another node (or from the emitter, which sends no uid).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// 0: the ids of the sockets in `rooms`.
    Sockets {
        /// Request id.
        request_id: String,
        /// Rooms (all sockets when empty).
        rooms: Vec<Room>,
    },
    /// 1: every room.
    AllRooms {
        /// Request id.
        request_id: String,
    },
    /// 2 / 3 with `opts`: selected sockets join / leave rooms.
    JoinLeave {
        /// Join (2) or leave (3).
        join: bool,
        /// Which sockets.
        selection: Selection,
        /// The rooms to join or leave.
        rooms: Vec<Room>,
    },
    /// 2 / 3 in the legacy form: one socket, one room, answered.
    LegacyJoinLeave {
        /// Join (2) or leave (3).
        join: bool,
        /// The socket id.
        sid: String,
        /// The room.
        room: Room,
        /// Request id to answer.
        request_id: Option<String>,
    },
    /// 4: disconnect selected sockets.
    Disconnect {
        /// Which sockets.
        selection: Selection,
        /// Close their connections too.
        close: bool,
    },
    /// 4 in the legacy form: one socket, answered.
    LegacyDisconnect {
        /// The socket id.
        sid: String,
        /// Close its connection too.
        close: bool,
        /// Request id to answer.
        request_id: Option<String>,
    },
    /// 5: describe the selected sockets.
    Fetch {
        /// Request id.
        request_id: String,
        /// Which sockets.
        selection: Selection,
    },
    /// 6: a server-side event; answered once per node when `request_id` is set.
    ServerSideEmit {
        /// Request id, when the sender waits for answers.
        request_id: Option<String>,
        /// `[event, ...args]`.
        data: Value,
    },
    /// 7: a broadcast with acks.
    Broadcast {
        /// Request id.
        request_id: String,
        /// The packet (without an ack id: each node assigns its own).
        packet: WirePacket,
        /// Rooms and exceptions.
        selection: Selection,
        /// `flags.timeout`, in milliseconds.
        timeout_ms: Option<u64>,
    },
}

/// A decoded request with the uid of its sender (`None` from the emitter).
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming<T> {
    /// The sender's uid, if it gave one.
    pub uid: Option<String>,
    /// The message.
    pub body: T,
}

/// Decodes a JSON (first byte `{`) or MessagePack message into a value and
/// its attachments.
///
/// # Errors
/// Invalid JSON or MessagePack.
pub fn decode_message(bytes: &[u8]) -> Result<(Value, Vec<Bytes>), WireError> {
    if bytes.first() == Some(&b'{') {
        let v = serde_json::from_slice(bytes).map_err(|e| WireError::Json(e.to_string()))?;
        Ok((v, Vec::new()))
    } else {
        Ok(msgpack::decode(bytes)?)
    }
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn required(v: &Value, name: &'static str) -> Result<String, WireError> {
    str_field(v, name).ok_or(WireError::Shape(name))
}

/// Decodes a request.
///
/// # Errors
/// Malformed input, an unknown type, or a missing field. (Unknown types are
/// `Ok(None)`: the reference ignores them too.)
pub fn decode_request(bytes: &[u8]) -> Result<Option<Incoming<Request>>, WireError> {
    let (v, bins) = decode_message(bytes)?;
    let kind = v
        .get("type")
        .and_then(Value::as_u64)
        .ok_or(WireError::Shape("type"))?;
    let uid = str_field(&v, "uid");
    let body = match kind {
        kind::SOCKETS => Request::Sockets {
            request_id: required(&v, "requestId")?,
            rooms: rooms(v.get("rooms")),
        },
        kind::ALL_ROOMS => Request::AllRooms {
            request_id: required(&v, "requestId")?,
        },
        kind::REMOTE_JOIN | kind::REMOTE_LEAVE => {
            let join = kind == kind::REMOTE_JOIN;
            if v.get("opts").is_some_and(|o| !o.is_null()) {
                Request::JoinLeave {
                    join,
                    selection: Selection::from_value(v.get("opts")),
                    rooms: rooms(v.get("rooms")),
                }
            } else {
                Request::LegacyJoinLeave {
                    join,
                    sid: required(&v, "sid")?,
                    room: required(&v, "room")?,
                    request_id: str_field(&v, "requestId"),
                }
            }
        }
        kind::REMOTE_DISCONNECT => {
            let close = v.get("close").and_then(Value::as_bool).unwrap_or(false);
            if v.get("opts").is_some_and(|o| !o.is_null()) {
                Request::Disconnect {
                    selection: Selection::from_value(v.get("opts")),
                    close,
                }
            } else {
                Request::LegacyDisconnect {
                    sid: required(&v, "sid")?,
                    close,
                    request_id: str_field(&v, "requestId"),
                }
            }
        }
        kind::REMOTE_FETCH => Request::Fetch {
            request_id: required(&v, "requestId")?,
            selection: Selection::from_value(v.get("opts")),
        },
        kind::SERVER_SIDE_EMIT => Request::ServerSideEmit {
            request_id: str_field(&v, "requestId"),
            data: match v.get("data") {
                Some(d @ Value::Array(_)) => d.clone(),
                _ => return Err(WireError::Shape("data")),
            },
        },
        kind::BROADCAST => {
            let packet = v.get("packet").ok_or(WireError::Shape("packet"))?;
            let opts = v.get("opts");
            Request::Broadcast {
                request_id: required(&v, "requestId")?,
                packet: WirePacket::from_value(packet, bins)?,
                selection: Selection::from_value(opts),
                timeout_ms: opts
                    .and_then(|o| o.get("flags"))
                    .and_then(|f| f.get("timeout"))
                    .and_then(Value::as_u64),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(Incoming { uid, body }))
}

/// Encodes a request of type 0–6 as JSON text (`data` for 6).
pub fn encode_json(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A SOCKETS (0) request.
pub fn sockets_request(uid: &str, request_id: &str, rooms: &[Room]) -> Vec<u8> {
    encode_json(
        &json!({"uid": uid, "requestId": request_id, "type": kind::SOCKETS, "rooms": rooms}),
    )
}

/// An ALL_ROOMS (1) request.
pub fn all_rooms_request(uid: &str, request_id: &str) -> Vec<u8> {
    encode_json(&json!({"uid": uid, "requestId": request_id, "type": kind::ALL_ROOMS}))
}

/// A REMOTE_JOIN (2) or REMOTE_LEAVE (3) request.
pub fn join_leave_request(
    uid: &str,
    join: bool,
    opts: &BroadcastOptions,
    rooms: &[Room],
) -> Vec<u8> {
    let kind = if join {
        kind::REMOTE_JOIN
    } else {
        kind::REMOTE_LEAVE
    };
    encode_json(&json!({
        "uid": uid,
        "type": kind,
        "opts": Selection::from_opts(opts).to_value(),
        "rooms": rooms,
    }))
}

/// A REMOTE_DISCONNECT (4) request.
pub fn disconnect_request(uid: &str, opts: &BroadcastOptions, close: bool) -> Vec<u8> {
    encode_json(&json!({
        "uid": uid,
        "type": kind::REMOTE_DISCONNECT,
        "opts": Selection::from_opts(opts).to_value(),
        "close": close,
    }))
}

/// A REMOTE_FETCH (5) request.
pub fn fetch_request(uid: &str, request_id: &str, opts: &BroadcastOptions) -> Vec<u8> {
    encode_json(&json!({
        "uid": uid,
        "requestId": request_id,
        "type": kind::REMOTE_FETCH,
        "opts": Selection::from_opts(opts).to_value(),
    }))
}

/// A SERVER_SIDE_EMIT (6) request; `data` is `[event, ...args]` (binary
/// parts already in JSON form).
pub fn server_side_emit_request(uid: &str, request_id: Option<&str>, data: &Value) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("uid".to_owned(), Value::String(uid.to_owned()));
    if let Some(id) = request_id {
        m.insert("requestId".to_owned(), Value::String(id.to_owned()));
    }
    m.insert("type".to_owned(), Value::from(kind::SERVER_SIDE_EMIT));
    m.insert("data".to_owned(), data.clone());
    encode_json(&Value::Object(m))
}

/// A BROADCAST (7) request, MessagePack as the reference sends it.
///
/// # Errors
/// If the packet's placeholders do not match its attachments.
pub fn broadcast_request(
    uid: &str,
    request_id: &str,
    packet: &WirePacket,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, WireError> {
    let v = json!({
        "uid": uid,
        "requestId": request_id,
        "type": kind::BROADCAST,
        "packet": packet.to_value(),
        "opts": opts_value(opts),
    });
    Ok(msgpack::encode(&v, &packet.attachments)?)
}

/// A response to SOCKETS (0).
pub fn sockets_response(request_id: &str, sockets: &[String]) -> Vec<u8> {
    encode_json(&json!({"requestId": request_id, "sockets": sockets}))
}

/// A response to ALL_ROOMS (1).
pub fn all_rooms_response(request_id: &str, rooms: &[Room]) -> Vec<u8> {
    encode_json(&json!({"requestId": request_id, "rooms": rooms}))
}

/// A response to a legacy join / leave / disconnect.
pub fn done_response(request_id: &str) -> Vec<u8> {
    encode_json(&json!({ "requestId": request_id }))
}

/// A response to REMOTE_FETCH (5): `sockets` = `[{id, handshake, rooms, data}]`.
pub fn fetch_response(request_id: &str, sockets: Vec<Value>) -> Vec<u8> {
    encode_json(&json!({"requestId": request_id, "sockets": sockets}))
}

/// A node's answer to a SERVER_SIDE_EMIT (6) with a request id.
pub fn server_side_emit_response(request_id: &str, data: &Value) -> Vec<u8> {
    encode_json(&json!({"type": kind::SERVER_SIDE_EMIT, "requestId": request_id, "data": data}))
}

/// BROADCAST_CLIENT_COUNT (8).
pub fn client_count_response(request_id: &str, count: usize) -> Vec<u8> {
    encode_json(
        &json!({"type": kind::BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count}),
    )
}

/// BROADCAST_ACK (9): one client's ack (its first argument), MessagePack.
///
/// # Errors
/// If the argument's placeholders do not match its attachments.
pub fn broadcast_ack_response(
    request_id: &str,
    arg: &Value,
    attachments: &[Bytes],
) -> Result<Vec<u8>, WireError> {
    let v = json!({"type": kind::BROADCAST_ACK, "requestId": request_id, "packet": arg});
    Ok(msgpack::encode(&v, attachments)?)
}

/// Binary parts of a JSON request's data, as `JSON.stringify` writes a
/// Node Buffer: `{"type":"Buffer","data":[...]}`.
pub fn inline_binary(v: &Value, attachments: &[Bytes]) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| inline_binary(x, attachments)).collect()),
        Value::Object(m) => {
            let num = msgpack::placeholder(m)
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| attachments.get(n));
            match num {
                Some(b) => json!({"type": "Buffer", "data": b.to_vec()}),
                None => Value::Object(
                    m.iter()
                        .map(|(k, x)| (k.clone(), inline_binary(x, attachments)))
                        .collect(),
                ),
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels() {
        let c = Channels::new("socket.io", "/chat", "abc123");
        assert_eq!(c.broadcast, "socket.io#/chat#");
        assert_eq!(c.pattern, "socket.io#/chat#*");
        assert_eq!(c.request, "socket.io-request#/chat#");
        assert_eq!(c.response, "socket.io-response#/chat#");
        assert_eq!(c.specific_response, "socket.io-response#/chat#abc123#");
        assert_eq!(c.room_of("socket.io#/chat#"), Some(""));
        assert_eq!(c.room_of("socket.io#/chat#r1#"), Some("r1"));
        assert_eq!(c.room_of("socket.io#/other#r1#"), None);
        let one: HashSet<Room> = ["r1".to_owned()].into();
        assert_eq!(c.for_broadcast(&one), "socket.io#/chat#r1#");
        assert_eq!(c.for_broadcast(&HashSet::new()), "socket.io#/chat#");
    }

    #[test]
    fn broadcast_frame_round_trip() {
        let packet = WirePacket {
            kind: 2,
            data: json!(["msg", {"_placeholder": true, "num": 0}]),
            attachments: vec![Bytes::from_static(b"\x01\x02")],
            nsp: "/".to_owned(),
            id: None,
        };
        let mut opts = BroadcastOptions::default();
        opts.rooms.insert("r".to_owned());
        opts.except.insert("x".to_owned());
        let bytes = encode_broadcast("uid123", &packet, &opts).unwrap();
        let frame = decode_broadcast(&bytes).unwrap();
        assert_eq!(frame.uid, "uid123");
        assert_eq!(frame.packet, packet);
        assert_eq!(frame.selection.rooms, ["r"]);
        assert_eq!(frame.selection.except, ["x"]);
        assert!(!frame.volatile);
    }

    #[test]
    fn emitter_requests_without_uid() {
        let r = decode_request(br#"{"type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b"]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.uid, None);
        assert_eq!(
            r.body,
            Request::JoinLeave {
                join: true,
                selection: Selection {
                    rooms: vec!["a".into()],
                    except: vec![]
                },
                rooms: vec!["b".into()]
            }
        );
        let r = decode_request(br#"{"uid":"emitter","type":6,"data":["hello",1]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.uid.as_deref(), Some("emitter"));
        assert!(matches!(
            r.body,
            Request::ServerSideEmit {
                request_id: None,
                ..
            }
        ));
        assert_eq!(decode_request(br#"{"type":99}"#).unwrap(), None);
        assert!(decode_request(b"{nope").is_err());
        assert!(decode_request(&[0xc1]).is_err());
    }

    #[test]
    fn broadcast_request_round_trip() {
        let packet = WirePacket {
            kind: 2,
            data: json!(["ask", 1]),
            attachments: vec![],
            nsp: "/custom".to_owned(),
            id: None,
        };
        let mut opts = BroadcastOptions::default();
        opts.timeout = Some(std::time::Duration::from_millis(1500));
        let bytes = broadcast_request("u", "rid", &packet, &opts).unwrap();
        let r = decode_request(&bytes).unwrap().unwrap();
        assert_eq!(
            r.body,
            Request::Broadcast {
                request_id: "rid".into(),
                packet,
                selection: Selection::default(),
                timeout_ms: Some(1500)
            }
        );
    }

    #[test]
    fn inline_binary_as_node_buffer() {
        let v = json!([{"_placeholder": true, "num": 0}, {"a": 1}]);
        assert_eq!(
            inline_binary(&v, &[Bytes::from_static(&[7, 8])]),
            json!([{"type": "Buffer", "data": [7, 8]}, {"a": 1}])
        );
    }
}

//! The `@socket.io/redis-streams-adapter` 0.3 wire format (the
//! `ClusterAdapter` messages of `socket.io-adapter` 2.5): stream entry ids,
//! stream entries, pub/sub envelopes, and the session record of connection
//! state recovery.
//!
//! Pure: no I/O.
//! - A stream entry has the fields `uid, nsp, type, data`: `type` is the
//!   message type in decimal, `data` the message's data as JSON text, or, when
//!   it holds binary, as base64 of its MessagePack.
//! - A pub/sub message (fetch, server-side emit, broadcast with acks, and
//!   every response) is the MessagePack map `{uid, nsp, type, data}`.
//! - A session record (`sio:session:<pid>`) is base64 of the MessagePack map
//!   `{sid, pid, rooms, data}`.

use std::cmp::Ordering;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use socketio::{BroadcastOptions, Room, SessionState, SocketId};

use crate::msgpack::{self, MsgpackError};
use crate::wire::{Selection, WirePacket, rooms};

/// Message types (`MessageType` of `socket.io-adapter`'s cluster adapter).
pub mod kind {
    /// A broadcast (`requestId` set: with acks, over pub/sub).
    pub const BROADCAST: u64 = 3;
    /// Sockets join rooms.
    pub const SOCKETS_JOIN: u64 = 4;
    /// Sockets leave rooms.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// Sockets are disconnected.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// Fetch sockets (pub/sub).
    pub const FETCH_SOCKETS: u64 = 7;
    /// Answer to a fetch.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// Server-side event (pub/sub).
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// Answer to a server-side event with ack.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients a broadcast with acks reached on a node.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's ack to a broadcast with acks.
    pub const BROADCAST_ACK: u64 = 12;
}

/// What does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamWireError {
    /// A stream entry id that is not `<ms>-<seq>`.
    Id,
    /// Invalid MessagePack.
    Msgpack(String),
    /// Invalid JSON.
    Json(String),
    /// Invalid base64.
    Base64,
    /// A required field is missing or has the wrong type.
    Shape(&'static str),
}

impl fmt::Display for StreamWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamWireError::Id => f.write_str("stream id is not <ms>-<seq>"),
            StreamWireError::Msgpack(e) => write!(f, "msgpack: {e}"),
            StreamWireError::Json(e) => write!(f, "json: {e}"),
            StreamWireError::Base64 => f.write_str("invalid base64"),
            StreamWireError::Shape(what) => write!(f, "missing or invalid {what}"),
        }
    }
}

impl std::error::Error for StreamWireError {}

impl From<MsgpackError> for StreamWireError {
    fn from(e: MsgpackError) -> Self {
        StreamWireError::Msgpack(e.to_string())
    }
}

/// A stream entry id `<ms>-<seq>`: the offset of connection state recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// Parses `<ms>-<seq>` (both decimal, as the reference's
    /// `/^[0-9]+-[0-9]+$/`).
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<StreamId, StreamWireError> {
        let (ms, seq) = s.split_once('-').ok_or(StreamWireError::Id)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(StreamWireError::Id);
        }
        Ok(StreamId {
            ms: ms.parse().map_err(|_| StreamWireError::Id)?,
            seq: seq.parse().map_err(|_| StreamWireError::Id)?,
        })
    }

    /// The smallest id after this one (for an exclusive `XRANGE` start).
    pub fn next(self) -> StreamId {
        match self.seq.checked_add(1) {
            Some(seq) => StreamId { ms: self.ms, seq },
            None => StreamId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl Ord for StreamId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ms, self.seq).cmp(&(other.ms, other.seq))
    }
}

impl PartialOrd for StreamId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A broadcast as it travels: the packet, who it is for, and its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The packet (`type` 2 for an event).
    pub packet: WirePacket,
    /// Rooms and exceptions.
    pub selection: Selection,
    /// `flags.volatile`.
    pub volatile: bool,
    /// Set for a broadcast with acks.
    pub request_id: Option<String>,
    /// `flags.timeout` in milliseconds (broadcasts with acks).
    pub timeout_ms: Option<u64>,
}

impl Broadcast {
    /// Whether connection state recovery numbers this broadcast (the
    /// reference's `addOffsetIfNecessary`): an event, without ack, not volatile.
    pub fn takes_offset(&self) -> bool {
        self.packet.kind == 2
            && self.packet.id.is_none()
            && !self.volatile
            && self.request_id.is_none()
    }

    /// Whether a socket in `rooms` is a recipient (`rooms` empty or
    /// intersecting, no room in `except`).
    pub fn selects(&self, socket_rooms: &[Room]) -> bool {
        let included = self.selection.rooms.is_empty()
            || socket_rooms
                .iter()
                .any(|r| self.selection.rooms.contains(r));
        let excluded = socket_rooms
            .iter()
            .any(|r| self.selection.except.contains(r));
        included && !excluded
    }
}

/// A cluster message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// 3.
    Broadcast(Broadcast),
    /// 4 (`join` true) or 5.
    JoinLeave {
        /// Join or leave.
        join: bool,
        /// Which sockets.
        selection: Selection,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// 6.
    Disconnect {
        /// Which sockets.
        selection: Selection,
        /// Close their connections too.
        close: bool,
    },
    /// 7.
    Fetch {
        /// Request id.
        request_id: String,
        /// Which sockets.
        selection: Selection,
    },
    /// 8: socket descriptions `{id, handshake, rooms, data}`.
    FetchResponse {
        /// Request id.
        request_id: String,
        /// The sockets.
        sockets: Vec<Value>,
    },
    /// 9: `data` is `[event, ...args]`, binary as placeholders into `attachments`.
    ServerSideEmit {
        /// Set when an answer is expected.
        request_id: Option<String>,
        /// The event and its arguments.
        data: Vec<Value>,
        /// Binary parts.
        attachments: Vec<Bytes>,
    },
    /// 10.
    ServerSideEmitResponse {
        /// Request id.
        request_id: String,
        /// The answer.
        packet: Value,
        /// Binary parts.
        attachments: Vec<Bytes>,
    },
    /// 11.
    ClientCount {
        /// Request id.
        request_id: String,
        /// Clients reached.
        count: u64,
    },
    /// 12.
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The client's ack argument.
        packet: Value,
        /// Binary parts.
        attachments: Vec<Bytes>,
    },
    /// A type this node does not act on (heartbeats, adapter close, ...).
    Other(u64),
}

/// A message with its sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The sending node (may be empty).
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// The message.
    pub message: Message,
}

fn str_field(v: &Value, name: &'static str) -> Result<String, StreamWireError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(StreamWireError::Shape(name))
}

fn selection_of(v: &Value) -> Selection {
    let opts = v.get("opts");
    Selection {
        rooms: rooms(opts.and_then(|o| o.get("rooms"))),
        except: rooms(opts.and_then(|o| o.get("except"))),
    }
}

/// `v` with only the attachments its placeholders name (renumbered): binary
/// found elsewhere in a message (fuzzing found some under other keys) must
/// not reach clients as attachments that no placeholder refers to.
fn referenced(mut v: Value, attachments: &[Bytes]) -> (Value, Vec<Bytes>) {
    if attachments.is_empty() {
        return (v, Vec::new());
    }
    let kept = msgpack::keep_referenced(&mut v, attachments);
    (v, kept)
}

fn packet_of(v: &Value, attachments: &[Bytes]) -> Result<WirePacket, StreamWireError> {
    let kind = v
        .get("type")
        .and_then(Value::as_u64)
        .ok_or(StreamWireError::Shape("packet.type"))?;
    let (data, attachments) =
        referenced(v.get("data").cloned().unwrap_or(Value::Null), attachments);
    Ok(WirePacket {
        kind,
        data,
        attachments,
        nsp: v
            .get("nsp")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_owned(),
        id: v.get("id").and_then(Value::as_u64),
    })
}

/// Decodes a message's `data` (already parsed) of type `kind`.
///
/// # Errors
/// A missing field.
pub fn decode_data(
    kind: u64,
    data: Value,
    attachments: Vec<Bytes>,
) -> Result<Message, StreamWireError> {
    let d = &data;
    Ok(match kind {
        kind::BROADCAST => {
            let packet = d.get("packet").ok_or(StreamWireError::Shape("packet"))?;
            let flags = d.get("opts").and_then(|o| o.get("flags"));
            Message::Broadcast(Broadcast {
                packet: packet_of(packet, &attachments)?,
                selection: selection_of(d),
                // The reference treats any defined `volatile` as volatile.
                volatile: flags
                    .and_then(|f| f.get("volatile"))
                    .is_some_and(|v| !v.is_null() && v != &Value::Bool(false)),
                request_id: d
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                timeout_ms: flags.and_then(|f| f.get("timeout")).and_then(Value::as_u64),
            })
        }
        kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => Message::JoinLeave {
            join: kind == kind::SOCKETS_JOIN,
            selection: selection_of(d),
            rooms: rooms(d.get("rooms")),
        },
        kind::DISCONNECT_SOCKETS => Message::Disconnect {
            selection: selection_of(d),
            close: d.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
        kind::FETCH_SOCKETS => Message::Fetch {
            request_id: str_field(d, "requestId")?,
            selection: selection_of(d),
        },
        kind::FETCH_SOCKETS_RESPONSE => Message::FetchResponse {
            request_id: str_field(d, "requestId")?,
            sockets: match d.get("sockets") {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            },
        },
        kind::SERVER_SIDE_EMIT => {
            let (data, attachments) = match d.get("packet") {
                Some(a @ Value::Array(_)) => referenced(a.clone(), &attachments),
                _ => return Err(StreamWireError::Shape("packet")),
            };
            Message::ServerSideEmit {
                request_id: d
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                data: match data {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                },
                attachments,
            }
        }
        kind::SERVER_SIDE_EMIT_RESPONSE => {
            let (packet, attachments) = referenced(
                d.get("packet").cloned().unwrap_or(Value::Null),
                &attachments,
            );
            Message::ServerSideEmitResponse {
                request_id: str_field(d, "requestId")?,
                packet,
                attachments,
            }
        }
        kind::BROADCAST_CLIENT_COUNT => Message::ClientCount {
            request_id: str_field(d, "requestId")?,
            count: d.get("clientCount").and_then(Value::as_u64).unwrap_or(0),
        },
        kind::BROADCAST_ACK => {
            let (packet, attachments) = referenced(
                d.get("packet").cloned().unwrap_or(Value::Null),
                &attachments,
            );
            Message::BroadcastAck {
                request_id: str_field(d, "requestId")?,
                packet,
                attachments,
            }
        }
        other => Message::Other(other),
    })
}

/// Decodes a stream entry from its fields (`uid`, `nsp`, `type`, `data`);
/// `Ok(None)` for an entry without `nsp` (the reference ignores those).
///
/// # Errors
/// A malformed type or data.
pub fn decode_entry<'a>(
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Option<Envelope>, StreamWireError> {
    let (mut uid, mut nsp, mut kind, mut data) = (None, None, None, None);
    for (k, v) in fields {
        match k {
            b"uid" => uid = Some(v),
            b"nsp" => nsp = Some(v),
            b"type" => kind = Some(v),
            b"data" => data = Some(v),
            _ => {}
        }
    }
    let Some(nsp) = nsp.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let text = |b: &[u8], what| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| StreamWireError::Shape(what))
    };
    let kind: u64 = std::str::from_utf8(kind.ok_or(StreamWireError::Shape("type"))?)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or(StreamWireError::Shape("type"))?;
    let (value, bins) = match data {
        None => (Value::Null, Vec::new()),
        Some([]) => (Value::Null, Vec::new()),
        Some(d) if d.first() == Some(&b'{') => (
            serde_json::from_slice(d).map_err(|e| StreamWireError::Json(e.to_string()))?,
            Vec::new(),
        ),
        Some(d) => {
            let raw = STANDARD.decode(d).map_err(|_| StreamWireError::Base64)?;
            msgpack::decode(&raw)?
        }
    };
    Ok(Some(Envelope {
        uid: uid.map(|u| text(u, "uid")).transpose()?.unwrap_or_default(),
        nsp: text(nsp, "nsp")?,
        message: decode_data(kind, value, bins)?,
    }))
}

/// Decodes a pub/sub message (MessagePack `{uid, nsp, type, data}`).
///
/// # Errors
/// Invalid MessagePack or a missing field.
pub fn decode_pubsub(bytes: &[u8]) -> Result<Envelope, StreamWireError> {
    let (v, bins) = msgpack::decode(bytes)?;
    let kind = v
        .get("type")
        .and_then(Value::as_u64)
        .ok_or(StreamWireError::Shape("type"))?;
    let uid = v
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let nsp = v
        .get("nsp")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_owned();
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    Ok(Envelope {
        uid,
        nsp,
        message: decode_data(kind, data, bins)?,
    })
}

/// The fields of a stream entry, in the reference's order: `data` is JSON
/// text, or base64 MessagePack when it holds binary.
///
/// # Errors
/// Placeholders that name no attachment.
pub fn encode_entry(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: &Value,
    attachments: &[Bytes],
) -> Result<[(&'static str, String); 4], StreamWireError> {
    let data = if attachments.is_empty() {
        data.to_string()
    } else {
        STANDARD.encode(msgpack::encode(data, attachments)?)
    };
    Ok([
        ("uid", uid.to_owned()),
        ("nsp", nsp.to_owned()),
        ("type", kind.to_string()),
        ("data", data),
    ])
}

/// A pub/sub message: MessagePack `{uid, nsp, type, data}`.
///
/// # Errors
/// Placeholders that name no attachment.
pub fn encode_pubsub(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: &Value,
    attachments: &[Bytes],
) -> Result<Vec<u8>, StreamWireError> {
    let v = json!({"uid": uid, "nsp": nsp, "type": kind, "data": data});
    Ok(msgpack::encode(&v, attachments)?)
}

fn packet_value(p: &WirePacket) -> Value {
    let mut m = Map::new();
    m.insert("type".to_owned(), Value::from(p.kind));
    m.insert("data".to_owned(), p.data.clone());
    m.insert("nsp".to_owned(), Value::String(p.nsp.clone()));
    if let Some(id) = p.id {
        m.insert("id".to_owned(), Value::from(id));
    }
    Value::Object(m)
}

/// `{rooms, except, flags}` as the reference's `encodeOptions`: only the
/// flags that are set (a Node node takes any `volatile` key as volatile).
pub fn opts_value(opts: &BroadcastOptions) -> Value {
    let sel = Selection::from_opts(opts);
    let mut flags = Map::new();
    if opts.flags.volatile {
        flags.insert("volatile".to_owned(), Value::Bool(true));
    }
    if let Some(t) = opts.timeout {
        flags.insert(
            "timeout".to_owned(),
            Value::from(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    json!({"rooms": sel.rooms, "except": sel.except, "flags": flags})
}

/// The data of a BROADCAST: `{packet, opts}` (+ `requestId` with acks).
pub fn broadcast_data(
    packet: &WirePacket,
    opts: &BroadcastOptions,
    request_id: Option<&str>,
) -> Value {
    let mut v = json!({"packet": packet_value(packet), "opts": opts_value(opts)});
    if let (Some(rid), Value::Object(m)) = (request_id, &mut v) {
        m.insert("requestId".to_owned(), Value::String(rid.to_owned()));
    }
    v
}

/// A replayed or delivered event: the packet's data with the entry id
/// appended as its last argument.
pub fn with_offset(mut packet: WirePacket, id: StreamId) -> WirePacket {
    if let Value::Array(a) = &mut packet.data {
        a.push(Value::String(id.to_string()));
    }
    packet
}

/// A session record: base64 of MessagePack `{sid, pid, rooms, data}`.
///
/// # Errors
/// If `data` holds placeholders (binary cannot be kept).
pub fn encode_session(s: &SessionState) -> Result<String, StreamWireError> {
    let v = json!({"sid": s.sid.as_str(), "pid": s.pid, "rooms": s.rooms, "data": s.data});
    Ok(STANDARD.encode(msgpack::encode(&v, &[])?))
}

/// Decodes a session record (ours or a Node node's).
///
/// # Errors
/// Invalid base64 or MessagePack, or a missing `sid` / `pid`.
pub fn decode_session(text: &[u8]) -> Result<SessionState, StreamWireError> {
    let raw = STANDARD
        .decode(text.trim_ascii())
        .map_err(|_| StreamWireError::Base64)?;
    let (v, _bins) = msgpack::decode(&raw)?;
    let sid = v
        .get("sid")
        .and_then(Value::as_str)
        .and_then(SocketId::parse)
        .ok_or(StreamWireError::Shape("sid"))?;
    let pid = str_field(&v, "pid")?;
    Ok(SessionState::new(
        sid,
        pid,
        rooms(v.get("rooms")),
        v.get("data").cloned().unwrap_or(Value::Null),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(data: Value, attachments: Vec<Bytes>) -> WirePacket {
        WirePacket {
            kind: 2,
            data,
            attachments,
            nsp: "/".to_owned(),
            id: None,
        }
    }

    fn as_fields<'a>(f: &'a [(&'static str, String); 4]) -> Vec<(&'a [u8], &'a [u8])> {
        f.iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect()
    }

    #[test]
    fn stream_ids_parse_order_and_step() {
        let a = StreamId::parse("1700000000000-0").unwrap();
        let b = StreamId::parse("1700000000000-1").unwrap();
        let c = StreamId::parse("1700000000001-0").unwrap();
        assert!(a < b && b < c);
        assert_eq!(a.next(), b);
        assert_eq!(b.to_string(), "1700000000000-1");
        for bad in ["", "1", "-1", "1-", "a-1", "1-1-1", "1 -1", "+1-1"] {
            assert_eq!(StreamId::parse(bad), Err(StreamWireError::Id), "{bad:?}");
        }
        let max = StreamId {
            ms: 5,
            seq: u64::MAX,
        };
        assert_eq!(max.next(), StreamId { ms: 6, seq: 0 });
    }

    #[test]
    fn a_node_broadcast_entry_decodes() {
        // The fields a Node node writes for `io.to("r").emit("msg", 1)`.
        let data = r#"{"packet":{"type":2,"data":["msg",1],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}}"#;
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b"uid", b"0123456789abcdef"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", data.as_bytes()),
        ];
        let env = decode_entry(fields).unwrap().unwrap();
        assert_eq!(env.uid, "0123456789abcdef");
        let Message::Broadcast(b) = env.message else {
            panic!("not a broadcast")
        };
        assert_eq!(b.packet.data, json!(["msg", 1]));
        assert_eq!(b.selection.rooms, ["r"]);
        assert!(b.takes_offset());
        assert!(b.selects(&["r".to_owned()]));
        assert!(!b.selects(&["s".to_owned()]));
    }

    #[test]
    fn entries_without_nsp_are_ignored() {
        let fields: Vec<(&[u8], &[u8])> = vec![(b"uid", b"x"), (b"type", b"3")];
        assert_eq!(decode_entry(fields).unwrap(), None);
    }

    #[test]
    fn binary_broadcasts_round_trip_as_base64_msgpack() {
        let packet = event(
            json!(["file", {"_placeholder": true, "num": 0}]),
            vec![Bytes::from_static(b"\x00\x01\xff")],
        );
        let mut opts = BroadcastOptions::default();
        opts.except.insert("x".to_owned());
        opts.flags.volatile = true;
        let data = broadcast_data(&packet, &opts, None);
        let fields = encode_entry("u", "/", kind::BROADCAST, &data, &packet.attachments).unwrap();
        assert_eq!(fields[2].1, "3");
        assert!(!fields[3].1.starts_with('{'));
        let env = decode_entry(as_fields(&fields)).unwrap().unwrap();
        let Message::Broadcast(b) = env.message else {
            panic!("not a broadcast")
        };
        assert_eq!(b.packet, packet);
        assert_eq!(b.selection.except, ["x"]);
        assert!(b.volatile && !b.takes_offset());
    }

    #[test]
    fn pubsub_messages_round_trip() {
        let v = json!({"requestId": "r1", "packet": ["ev", {"_placeholder": true, "num": 0}]});
        let bytes = encode_pubsub(
            "me",
            "/chat",
            kind::SERVER_SIDE_EMIT,
            &v,
            &[Bytes::from_static(b"hi")],
        )
        .unwrap();
        let env = decode_pubsub(&bytes).unwrap();
        assert_eq!((env.uid.as_str(), env.nsp.as_str()), ("me", "/chat"));
        assert_eq!(
            env.message,
            Message::ServerSideEmit {
                request_id: Some("r1".to_owned()),
                data: vec![json!("ev"), json!({"_placeholder": true, "num": 0})],
                attachments: vec![Bytes::from_static(b"hi")],
            }
        );
        let count = encode_pubsub(
            "n",
            "/",
            kind::BROADCAST_CLIENT_COUNT,
            &json!({"requestId": "q", "clientCount": 3}),
            &[],
        )
        .unwrap();
        assert_eq!(
            decode_pubsub(&count).unwrap().message,
            Message::ClientCount {
                request_id: "q".to_owned(),
                count: 3
            }
        );
    }

    #[test]
    fn a_node_session_record_decodes() {
        // `Buffer.from(encode({sid, pid, rooms, data})).toString("base64")`
        // with @msgpack/msgpack 2.8 for
        // {sid:"AAAAAAAAAAAAAAAAAAAA", pid:"p", rooms:["AAAAAAAAAAAAAAAAAAAA","r"], data:{n:1}}.
        let mut raw = vec![0x84, 0xa3];
        raw.extend_from_slice(b"sid");
        raw.push(0xb4);
        raw.extend_from_slice(&[b'A'; 20]);
        raw.push(0xa3);
        raw.extend_from_slice(b"pid");
        raw.push(0xa1);
        raw.push(b'p');
        raw.push(0xa5);
        raw.extend_from_slice(b"rooms");
        raw.push(0x92);
        raw.push(0xb4);
        raw.extend_from_slice(&[b'A'; 20]);
        raw.push(0xa1);
        raw.push(b'r');
        raw.push(0xa4);
        raw.extend_from_slice(b"data");
        raw.extend_from_slice(&[0x81, 0xa1, b'n', 0x01]);
        let s = decode_session(STANDARD.encode(&raw).as_bytes()).unwrap();
        assert_eq!(s.sid.as_str(), "AAAAAAAAAAAAAAAAAAAA");
        assert_eq!(s.pid, "p");
        assert_eq!(s.rooms, ["AAAAAAAAAAAAAAAAAAAA", "r"]);
        assert_eq!(s.data, json!({"n": 1}));
        // Ours encodes to the same bytes.
        assert_eq!(encode_session(&s).unwrap(), STANDARD.encode(&raw));
    }

    /// Records written by `@msgpack/msgpack` 2.8 itself (what a Node node's
    /// `persistSession` stores), for
    /// `{sid, pid, rooms, data}` sessions: we read them and write the same text.
    #[test]
    fn records_are_byte_exact_with_node() {
        for (text, data) in [
            (
                "hKNzaWS0QUFBQUFBQUFBQUFBQUFBQUFBQUGjcGlkoXClcm9vbXOStEFBQUFBQUFBQUFBQUFBQUFBQUFBoXKkZGF0YYGhbgE=",
                json!({"n": 1}),
            ),
            (
                "hKNzaWS0WG43LXY5X2FhYWFhYWFhYWFhYWGjcGlkpXBpZC14pXJvb21zkbRYbjctdjlfYWFhYWFhYWFhYWFhYaRkYXRhg6RuYW1losOppGxpc3SUyz/4AAAAAAAA/cDDpm5lc3RlZIGjYmlnzwAAAAEAAAAA",
                json!({"name": "é", "list": [1.5, -3, null, true], "nested": {"big": 4_294_967_296_u64}}),
            ),
        ] {
            let s = decode_session(text.as_bytes()).unwrap();
            assert_eq!(s.data, data);
            assert_eq!(s.rooms.first().map(String::as_str), Some(s.sid.as_str()));
            assert_eq!(encode_session(&s).unwrap(), text);
        }
    }

    /// Found by the `redis_stream` fuzz target (kept in
    /// `fuzz/artifacts-found/redis_stream-unreferenced-binary`): binary under a
    /// key other than the packet's `data` became an attachment of a packet
    /// whose data names none.
    #[test]
    fn binary_outside_the_packet_data_is_not_an_attachment() {
        // {packet: {type: 2, "\x04ata": ["f", <bin 00 01 ff>]}, opts: {...}}
        let raw = STANDARD
            .decode("gqZwYWNrZXSCpHR5cGUCpARhdGGSoWbEAwAB/6RvcHRzg6Vyb29tc/CmZXhjZXL5kaF4pWZsYWdzgah2b2xhdGlsZcM=")
            .unwrap();
        let (v, bins) = msgpack::decode(&raw).unwrap();
        assert_eq!(bins.len(), 1);
        let Message::Broadcast(b) = decode_data(kind::BROADCAST, v, bins).unwrap() else {
            panic!("not a broadcast")
        };
        assert_eq!(b.packet.data, Value::Null);
        assert!(b.packet.attachments.is_empty());
        // Referenced binary stays, renumbered.
        let v = json!({"requestId": "r", "packet": {"x": {"_placeholder": true, "num": 1}}});
        let bins = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let Message::BroadcastAck {
            packet,
            attachments,
            ..
        } = decode_data(kind::BROADCAST_ACK, v, bins).unwrap()
        else {
            panic!("not an ack")
        };
        assert_eq!(packet, json!({"x": {"_placeholder": true, "num": 0}}));
        assert_eq!(attachments, [Bytes::from_static(b"b")]);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(decode_session(b"!!!").is_err());
        assert!(decode_session(STANDARD.encode([0x80]).as_bytes()).is_err());
        assert!(decode_pubsub(&[0xc1]).is_err());
        let fields: Vec<(&[u8], &[u8])> = vec![(b"nsp", b"/"), (b"type", b"x")];
        assert!(decode_entry(fields).is_err());
        let fields: Vec<(&[u8], &[u8])> = vec![(b"nsp", b"/"), (b"type", b"3"), (b"data", b"{")];
        assert!(decode_entry(fields).is_err());
    }

    proptest! {
        #[test]
        fn entry_decoding_never_panics(uid in proptest::collection::vec(any::<u8>(), 0..20),
                                       kind in proptest::collection::vec(any::<u8>(), 0..4),
                                       data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let fields: Vec<(&[u8], &[u8])> = vec![
                (b"uid", &uid), (b"nsp", b"/"), (b"type", &kind), (b"data", &data)];
            let _ = decode_entry(fields);
            let _ = decode_pubsub(&data);
            let _ = decode_session(&data);
        }

        #[test]
        fn broadcasts_round_trip(event_name in "[a-z]{1,8}", n in any::<i64>(), text in ".{0,16}",
                                 rooms in proptest::collection::vec("[a-z]{1,4}", 0..3),
                                 bin in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))) {
            let mut data = vec![json!(event_name), json!(n), json!(text)];
            let mut attachments = Vec::new();
            if let Some(b) = bin {
                data.push(json!({"_placeholder": true, "num": 0}));
                attachments.push(Bytes::from(b));
            }
            let packet = event(Value::Array(data), attachments);
            let mut opts = BroadcastOptions::default();
            opts.rooms = rooms.iter().cloned().collect();
            let v = broadcast_data(&packet, &opts, None);
            let fields = encode_entry("u", "/", kind::BROADCAST, &v, &packet.attachments).unwrap();
            let env = decode_entry(as_fields(&fields)).unwrap().unwrap();
            let Message::Broadcast(b) = env.message else { panic!("not a broadcast") };
            prop_assert_eq!(b.packet, packet);
            let mut want: Vec<String> = opts.rooms.iter().cloned().collect();
            want.sort();
            prop_assert_eq!(b.selection.rooms, want);
        }
    }
}

//! The envelope of the reference `ClusterAdapter` (`socket.io-adapter`),
//! as `@socket.io/redis-adapter`'s sharded adapter puts it on Redis:
//! `{uid, nsp, type, data}`.
//!
//! Pure: no I/O. A message is JSON text unless it carries binary, then the
//! whole envelope is MessagePack as notepack.io writes it (binary values as
//! `bin`); a receiver tells them apart by the first byte (`{` is JSON), as
//! the reference does.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use socketio::{BroadcastOptions, Room};

use crate::msgpack;
use crate::wire::{Selection, WireError, WirePacket, opts_value, rooms};

/// Message types (the reference's `MessageType`).
pub mod kind {
    /// A node announces itself (heartbeat adapters only; ignored here).
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// A node is alive (heartbeat adapters only; ignored here).
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast; with a request id, a broadcast with acks.
    pub const BROADCAST: u64 = 3;
    /// Selected sockets join rooms.
    pub const SOCKETS_JOIN: u64 = 4;
    /// Selected sockets leave rooms.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// Selected sockets are disconnected.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// Describe the selected sockets.
    pub const FETCH_SOCKETS: u64 = 7;
    /// A node's answer to FETCH_SOCKETS.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// A server-side event; answered when it has a request id.
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// A node's answer to a SERVER_SIDE_EMIT with a request id.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients a node sent a broadcast with acks to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's ack to a broadcast with acks.
    pub const BROADCAST_ACK: u64 = 12;
    /// A node's adapter closed (heartbeat adapters only; ignored here).
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// The `data` of a message, by type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// 3: a broadcast (`requestId` set: with acks).
    Broadcast {
        /// The packet: type 2 (event) with `[event, ...args]`.
        packet: WirePacket,
        /// Rooms and exceptions.
        selection: Selection,
        /// `flags.volatile`.
        volatile: bool,
        /// `flags.timeout` in milliseconds (broadcasts with acks).
        timeout_ms: Option<u64>,
        /// The request id of a broadcast with acks.
        request_id: Option<String>,
    },
    /// 4 / 5: selected sockets join / leave rooms.
    JoinLeave {
        /// Join (4) or leave (5).
        join: bool,
        /// Which sockets.
        selection: Selection,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// 6: disconnect the selected sockets.
    Disconnect {
        /// Which sockets.
        selection: Selection,
        /// Close their connections too.
        close: bool,
    },
    /// 7: describe the selected sockets.
    FetchSockets {
        /// Which sockets.
        selection: Selection,
        /// Request id.
        request_id: String,
    },
    /// 8: `[{id, handshake, rooms, data}]` of one node.
    FetchSocketsResponse {
        /// Request id.
        request_id: String,
        /// The sockets.
        sockets: Vec<Value>,
    },
    /// 9: a server-side event `[event, ...args]`.
    ServerSideEmit {
        /// Set when the sender waits for one answer per node.
        request_id: Option<String>,
        /// `[event, ...args]`.
        packet: Vec<Value>,
    },
    /// 10: one node's answer to a server-side event (the first argument
    /// its handler acknowledged with).
    ServerSideEmitResponse {
        /// Request id.
        request_id: String,
        /// The answer.
        packet: Value,
    },
    /// 11: how many clients a node sent a broadcast with acks to.
    BroadcastClientCount {
        /// Request id.
        request_id: String,
        /// The number of clients.
        client_count: u64,
    },
    /// 12: one client's ack (its first argument).
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The ack.
        packet: Value,
    },
    /// 1, 2, 13 and unknown types: nothing to do for this adapter.
    Ignored(u64),
}

impl Body {
    /// The message type.
    pub fn kind(&self) -> u64 {
        match self {
            Body::Broadcast { .. } => kind::BROADCAST,
            Body::JoinLeave { join: true, .. } => kind::SOCKETS_JOIN,
            Body::JoinLeave { join: false, .. } => kind::SOCKETS_LEAVE,
            Body::Disconnect { .. } => kind::DISCONNECT_SOCKETS,
            Body::FetchSockets { .. } => kind::FETCH_SOCKETS,
            Body::FetchSocketsResponse { .. } => kind::FETCH_SOCKETS_RESPONSE,
            Body::ServerSideEmit { .. } => kind::SERVER_SIDE_EMIT,
            Body::ServerSideEmitResponse { .. } => kind::SERVER_SIDE_EMIT_RESPONSE,
            Body::BroadcastClientCount { .. } => kind::BROADCAST_CLIENT_COUNT,
            Body::BroadcastAck { .. } => kind::BROADCAST_ACK,
            Body::Ignored(k) => *k,
        }
    }

    /// The request id this message answers, for the response types.
    pub fn response_to(&self) -> Option<&str> {
        match self {
            Body::FetchSocketsResponse { request_id, .. }
            | Body::ServerSideEmitResponse { request_id, .. }
            | Body::BroadcastClientCount { request_id, .. }
            | Body::BroadcastAck { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    fn data_value(&self) -> Value {
        match self {
            Body::Broadcast {
                packet,
                selection,
                volatile,
                timeout_ms,
                request_id,
            } => {
                let mut opts = selection.to_opts();
                opts.flags.volatile = *volatile;
                opts.timeout = timeout_ms.map(std::time::Duration::from_millis);
                let mut m = Map::new();
                m.insert("packet".to_owned(), packet.to_value());
                m.insert("opts".to_owned(), opts_value(&opts));
                if let Some(id) = request_id {
                    m.insert("requestId".to_owned(), Value::String(id.clone()));
                }
                Value::Object(m)
            }
            Body::JoinLeave {
                selection, rooms, ..
            } => json!({"opts": selection_value(selection), "rooms": rooms}),
            Body::Disconnect { selection, close } => {
                json!({"opts": selection_value(selection), "close": close})
            }
            Body::FetchSockets {
                selection,
                request_id,
            } => json!({"opts": selection_value(selection), "requestId": request_id}),
            Body::FetchSocketsResponse {
                request_id,
                sockets,
            } => json!({"requestId": request_id, "sockets": sockets}),
            Body::ServerSideEmit { request_id, packet } => {
                let mut m = Map::new();
                if let Some(id) = request_id {
                    m.insert("requestId".to_owned(), Value::String(id.clone()));
                }
                m.insert("packet".to_owned(), Value::Array(packet.clone()));
                Value::Object(m)
            }
            Body::ServerSideEmitResponse { request_id, packet }
            | Body::BroadcastAck { request_id, packet } => {
                json!({"requestId": request_id, "packet": packet})
            }
            Body::BroadcastClientCount {
                request_id,
                client_count,
            } => json!({"requestId": request_id, "clientCount": client_count}),
            Body::Ignored(_) => Value::Null,
        }
    }
}

/// `{rooms, except, flags: {}}` as the reference's `encodeOptions`.
fn selection_value(s: &Selection) -> Value {
    opts_value(&s.to_opts())
}

/// One message between nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The sending node's uid (`"emitter"` or absent from emitters).
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// What it says.
    pub body: Body,
    /// The binary values the body's placeholders (`{_placeholder, num}`)
    /// refer to; empty for a JSON message.
    pub attachments: Vec<Bytes>,
}

impl Envelope {
    /// A message without binary.
    pub fn new(uid: &str, nsp: &str, body: Body) -> Self {
        Envelope {
            uid: uid.to_owned(),
            nsp: nsp.to_owned(),
            body,
            attachments: Vec::new(),
        }
    }

    /// The same message carrying binary values.
    pub fn with_attachments(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self
    }

    /// Encodes it as the reference does: MessagePack when it carries
    /// binary, JSON text otherwise.
    ///
    /// # Errors
    /// If the placeholders do not match the attachments.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let v = json!({
            "uid": self.uid,
            "nsp": self.nsp,
            "type": self.body.kind(),
            "data": self.body.data_value(),
        });
        if self.attachments.is_empty() {
            Ok(v.to_string().into_bytes())
        } else {
            Ok(msgpack::encode(&v, &self.attachments)?)
        }
    }

    /// Decodes a message (JSON when the first byte is `{`, MessagePack
    /// otherwise). Unknown types decode as [`Body::Ignored`].
    ///
    /// # Errors
    /// Malformed JSON / MessagePack, or a missing or mistyped field.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
        let (v, attachments) = crate::wire::decode_message(bytes)?;
        let kind = v
            .get("type")
            .and_then(Value::as_u64)
            .ok_or(WireError::Shape("type"))?;
        let uid = str_field(&v, "uid").unwrap_or_default();
        // The reference compares `nsp` with its own name: a message without
        // one is for no namespace.
        let nsp = str_field(&v, "nsp").unwrap_or_default();
        let data = v.get("data").unwrap_or(&Value::Null);
        let body = decode_body(kind, data, &attachments)?;
        Ok(Envelope {
            uid,
            nsp,
            body,
            attachments,
        })
    }
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn required(v: &Value, name: &'static str) -> Result<String, WireError> {
    str_field(v, name).ok_or(WireError::Shape(name))
}

fn decode_body(kind: u64, data: &Value, attachments: &[Bytes]) -> Result<Body, WireError> {
    let opts = data.get("opts");
    Ok(match kind {
        kind::BROADCAST => {
            let packet = data.get("packet").ok_or(WireError::Shape("packet"))?;
            let flags = opts.and_then(|o| o.get("flags"));
            Body::Broadcast {
                packet: WirePacket::from_value(packet, attachments.to_vec())?,
                selection: Selection::from_value(opts),
                volatile: flags
                    .and_then(|f| f.get("volatile"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                timeout_ms: flags.and_then(|f| f.get("timeout")).and_then(Value::as_u64),
                request_id: str_field(data, "requestId"),
            }
        }
        kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => Body::JoinLeave {
            join: kind == kind::SOCKETS_JOIN,
            selection: Selection::from_value(opts),
            rooms: rooms(data.get("rooms")),
        },
        kind::DISCONNECT_SOCKETS => Body::Disconnect {
            selection: Selection::from_value(opts),
            close: data.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
        kind::FETCH_SOCKETS => Body::FetchSockets {
            selection: Selection::from_value(opts),
            request_id: required(data, "requestId")?,
        },
        kind::FETCH_SOCKETS_RESPONSE => Body::FetchSocketsResponse {
            request_id: required(data, "requestId")?,
            sockets: match data.get("sockets") {
                Some(Value::Array(a)) => a.clone(),
                _ => return Err(WireError::Shape("sockets")),
            },
        },
        kind::SERVER_SIDE_EMIT => Body::ServerSideEmit {
            request_id: str_field(data, "requestId"),
            packet: match data.get("packet") {
                Some(Value::Array(a)) => a.clone(),
                _ => return Err(WireError::Shape("packet")),
            },
        },
        kind::SERVER_SIDE_EMIT_RESPONSE => Body::ServerSideEmitResponse {
            request_id: required(data, "requestId")?,
            packet: data.get("packet").cloned().unwrap_or(Value::Null),
        },
        kind::BROADCAST_CLIENT_COUNT => Body::BroadcastClientCount {
            request_id: required(data, "requestId")?,
            client_count: data
                .get("clientCount")
                .and_then(Value::as_u64)
                .ok_or(WireError::Shape("clientCount"))?,
        },
        kind::BROADCAST_ACK => Body::BroadcastAck {
            request_id: required(data, "requestId")?,
            packet: data.get("packet").cloned().unwrap_or(Value::Null),
        },
        other => Body::Ignored(other),
    })
}

/// The channels of one namespace: `K#N#` (every node), `K#N#<uid>#` (this
/// node's responses), `K#N#<room>#` (one room's broadcasts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    /// `K#N#`.
    pub main: String,
    /// `K#N#<uid>#`.
    pub response: String,
}

impl ShardedChannels {
    /// The channels of namespace `nsp` for node `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let main = format!("{key}#{nsp}#");
        ShardedChannels {
            response: format!("{main}{uid}#"),
            main,
        }
    }

    /// The response channel of another node.
    pub fn response_of(&self, uid: &str) -> String {
        format!("{}{uid}#", self.main)
    }

    /// The channel of one room.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }
}

/// How the reference's `computeChannel` picks where a broadcast goes: the
/// room's channel for a broadcast without acks to exactly one room (in
/// `dynamic` mode only when the room does not look like a socket id, 20
/// characters), the namespace's channel otherwise.
pub fn broadcast_room(
    opts: &BroadcastOptions,
    with_ack: bool,
    mode: super::SubscriptionMode,
) -> Option<&str> {
    use super::SubscriptionMode;
    if with_ack || opts.rooms.len() != 1 {
        return None;
    }
    let room = opts.rooms.iter().next()?;
    match mode {
        SubscriptionMode::Dynamic if room.chars().count() != 20 => Some(room),
        SubscriptionMode::DynamicPrivate => Some(room),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(data: Value, attachments: Vec<Bytes>) -> WirePacket {
        WirePacket {
            kind: 2,
            data,
            attachments,
            nsp: "/".to_owned(),
            id: None,
        }
    }

    #[test]
    fn decodes_what_node_sends() {
        // JSON.stringify of a ClusterAdapter message (type, data, then uid and nsp).
        let raw = br#"{"type":3,"data":{"packet":{"type":2,"data":["msg",{"a":1}],"nsp":"/"},"opts":{"rooms":["red"],"except":["x"],"flags":{}}},"uid":"0123456789abcdef","nsp":"/"}"#;
        let e = Envelope::decode(raw).unwrap();
        assert_eq!(e.uid, "0123456789abcdef");
        assert_eq!(e.nsp, "/");
        match e.body {
            Body::Broadcast {
                packet,
                selection,
                volatile,
                request_id,
                ..
            } => {
                assert_eq!(packet.data, json!(["msg", {"a": 1}]));
                assert_eq!(selection.rooms, ["red"]);
                assert_eq!(selection.except, ["x"]);
                assert!(!volatile);
                assert_eq!(request_id, None);
            }
            other => panic!("{other:?}"),
        }
        let raw = br#"{"type":9,"data":{"requestId":"r1","packet":["sse-ack",{"x":1}]},"uid":"u","nsp":"/custom"}"#;
        let e = Envelope::decode(raw).unwrap();
        assert_eq!(
            e.body,
            Body::ServerSideEmit {
                request_id: Some("r1".into()),
                packet: vec![json!("sse-ack"), json!({"x": 1})]
            }
        );
        let raw = br#"{"type":11,"data":{"requestId":"r","clientCount":3},"uid":"u","nsp":"/"}"#;
        assert_eq!(
            Envelope::decode(raw).unwrap().body,
            Body::BroadcastClientCount {
                request_id: "r".into(),
                client_count: 3
            }
        );
        assert_eq!(
            Envelope::decode(br#"{"type":2,"uid":"u","nsp":"/"}"#)
                .unwrap()
                .body,
            Body::Ignored(2)
        );
    }

    #[test]
    fn malformed_is_an_error() {
        for raw in [
            &b"{nope"[..],
            b"{}",
            br#"{"type":"3"}"#,
            br#"{"type":3,"data":{}}"#,
            br#"{"type":7,"data":{"opts":{}}}"#,
            br#"{"type":9,"data":{"packet":"x"}}"#,
            br#"{"type":11,"data":{"requestId":"r"}}"#,
            &[0xc1],
            &[0x92, 0x01],
        ] {
            assert!(Envelope::decode(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn binary_makes_msgpack() {
        let bin = vec![Bytes::from_static(&[0, 1, 0xff])];
        let e = Envelope::new(
            "u",
            "/",
            Body::Broadcast {
                packet: packet(json!(["m", {"_placeholder": true, "num": 0}]), bin.clone()),
                selection: Selection::default(),
                volatile: true,
                timeout_ms: None,
                request_id: None,
            },
        )
        .with_attachments(bin);
        let bytes = e.encode().unwrap();
        assert_ne!(bytes.first(), Some(&b'{'));
        // notepack: a map of 4 keys, binary as `bin 8`.
        assert_eq!(bytes.first(), Some(&0x84));
        assert!(bytes.windows(5).any(|w| w == [0xc4, 3, 0, 1, 0xff]));
        assert_eq!(Envelope::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn channels_and_routing() {
        let c = ShardedChannels::new("socket.io", "/chat", "0123456789abcdef");
        assert_eq!(c.main, "socket.io#/chat#");
        assert_eq!(c.response, "socket.io#/chat#0123456789abcdef#");
        assert_eq!(c.room("red"), "socket.io#/chat#red#");
        use super::super::SubscriptionMode::*;
        let mut o = BroadcastOptions::default();
        assert_eq!(broadcast_room(&o, false, Dynamic), None);
        o.rooms.insert("red".into());
        assert_eq!(broadcast_room(&o, false, Dynamic), Some("red"));
        assert_eq!(broadcast_room(&o, true, Dynamic), None);
        assert_eq!(broadcast_room(&o, false, Static), None);
        let mut id = BroadcastOptions::default();
        id.rooms.insert("abcdefghijklmnopqrst".into());
        assert_eq!(broadcast_room(&id, false, Dynamic), None);
        assert_eq!(
            broadcast_room(&id, false, DynamicPrivate),
            Some("abcdefghijklmnopqrst")
        );
        o.rooms.insert("blue".into());
        assert_eq!(broadcast_room(&o, false, DynamicPrivate), None);
    }

    fn room() -> impl Strategy<Value = String> {
        "[a-z0-9#]{0,12}"
    }

    fn body() -> impl Strategy<Value = Body> {
        let sel = || {
            (
                proptest::collection::vec(room(), 0..3),
                proptest::collection::vec(room(), 0..3),
            )
                .prop_map(|(mut rooms, mut except)| {
                    rooms.sort();
                    rooms.dedup();
                    except.sort();
                    except.dedup();
                    Selection { rooms, except }
                })
        };
        let rid = "[0-9a-f]{16}";
        prop_oneof![
            (
                sel(),
                any::<bool>(),
                proptest::option::of(0u64..100_000),
                proptest::option::of(rid),
                ".{0,8}",
                any::<i64>()
            )
                .prop_map(|(selection, volatile, timeout_ms, request_id, ev, n)| {
                    Body::Broadcast {
                        packet: packet(json!([ev, n]), Vec::new()),
                        selection,
                        volatile,
                        timeout_ms,
                        request_id,
                    }
                }),
            (
                sel(),
                any::<bool>(),
                proptest::collection::vec(room(), 0..3)
            )
                .prop_map(|(selection, join, rooms)| Body::JoinLeave {
                    join,
                    selection,
                    rooms
                }),
            (sel(), any::<bool>())
                .prop_map(|(selection, close)| Body::Disconnect { selection, close }),
            (sel(), rid).prop_map(|(selection, request_id)| Body::FetchSockets {
                selection,
                request_id
            }),
            (rid, ".{0,8}").prop_map(|(request_id, id)| Body::FetchSocketsResponse {
                request_id,
                sockets: vec![json!({"id": id, "rooms": [id], "data": null})]
            }),
            (proptest::option::of(rid), ".{0,8}").prop_map(|(request_id, ev)| {
                Body::ServerSideEmit {
                    request_id,
                    packet: vec![json!(ev), json!({"k": [1, 2.5, null]})],
                }
            }),
            (rid, any::<u32>()).prop_map(|(request_id, n)| Body::ServerSideEmitResponse {
                request_id,
                packet: json!({"n": n})
            }),
            (rid, any::<u32>()).prop_map(|(request_id, n)| Body::BroadcastClientCount {
                request_id,
                client_count: u64::from(n)
            }),
            (rid, ".{0,8}").prop_map(|(request_id, s)| Body::BroadcastAck {
                request_id,
                packet: json!(s)
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(uid in "[0-9a-f]{16}", nsp in "/[a-z]{0,6}", body in body()) {
            let e = Envelope::new(&uid, &nsp, body);
            let bytes = e.encode().unwrap();
            prop_assert_eq!(bytes.first(), Some(&b'{'));
            prop_assert_eq!(Envelope::decode(&bytes).unwrap(), e);
        }

        #[test]
        fn round_trip_binary(body in body(), bin in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Any type with a binary value in its data goes as MessagePack.
            let att = vec![Bytes::from(bin)];
            let ph = json!({"_placeholder": true, "num": 0});
            let body = match body {
                Body::ServerSideEmit { request_id, mut packet } => {
                    packet.push(ph);
                    Body::ServerSideEmit { request_id, packet }
                }
                Body::BroadcastAck { request_id, .. } => Body::BroadcastAck { request_id, packet: ph },
                _ => return Ok(()),
            };
            let e = Envelope::new("u", "/", body).with_attachments(att);
            let bytes = e.encode().unwrap();
            prop_assert_eq!(Envelope::decode(&bytes).unwrap(), e);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Envelope::decode(&bytes);
        }
    }
}

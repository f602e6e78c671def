//! The adapter of one namespace: rooms and local delivery in a
//! [`MemoryAdapter`], plus what crosses Redis: broadcasts published and
//! heard, requests to other nodes and their answers, and the answers this
//! node owes to theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use socketio::packet::BinaryPacket;
use socketio::{
    Adapter, AdapterFuture, Args, BroadcastOptions, EncodedPacket, LocalNamespace, MemoryAdapter,
    RemoteAcks, Room, ServerAck, SocketId, SocketInfo,
};
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Driver, uid6};
use crate::wire::{self, Channels, Request, WirePacket, kind};

/// A request of ours that waits for other nodes' answers.
struct Pending {
    kind: u64,
    /// Answers needed (other nodes).
    need: usize,
    got: usize,
    items: Vec<Value>,
    done: Option<oneshot::Sender<Vec<Value>>>,
}

/// What other nodes report about a broadcast with acks of ours.
enum AckEvent {
    ClientCount(usize),
    Ack(Args),
}

pub(crate) struct NsAdapter {
    local: MemoryAdapter,
    ns: LocalNamespace,
    nsp: String,
    driver: Arc<Driver>,
    channels: Channels,
    requests: Mutex<HashMap<String, Pending>>,
    ack_requests: Mutex<HashMap<String, mpsc::UnboundedSender<AckEvent>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// JavaScript's `!isNaN(str) && !isNaN(parseFloat(str))`, close enough for
/// room names: a decimal number, as a Node node's numeric rooms arrive.
pub(crate) fn numeric_room(room: &str) -> Option<String> {
    let f: f64 = room.trim().parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    Some(if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    })
}

impl Drop for NsAdapter {
    fn drop(&mut self) {
        self.driver.unregister(&self.nsp);
    }
}

impl NsAdapter {
    pub(crate) fn create(ns: LocalNamespace, driver: Arc<Driver>) -> Arc<NsAdapter> {
        let nsp = ns.name();
        if ns.recovery_config().is_some() {
            tracing::warn!(%nsp, "connection state recovery is not supported with the Redis adapter (as with Node's); sockets will not be recovered");
        }
        let channels = Channels::new(&driver.config.key, &nsp, &driver.uid);
        let adapter = Arc::new(NsAdapter {
            local: MemoryAdapter::new(ns.clone()),
            ns,
            nsp: nsp.clone(),
            driver: driver.clone(),
            channels: channels.clone(),
            requests: Mutex::new(HashMap::new()),
            ack_requests: Mutex::new(HashMap::new()),
        });
        driver.register(&nsp, channels, Arc::downgrade(&adapter));
        adapter
    }

    fn uid(&self) -> &str {
        &self.driver.uid
    }

    fn publish_request(&self, payload: Vec<u8>) -> bool {
        self.driver.publish(self.channels.request.clone(), payload)
    }

    fn publish_response(&self, requester: Option<&str>, payload: Vec<u8>) {
        let channel = match requester {
            Some(uid) if self.driver.config.publish_on_specific_response_channel => {
                format!("{}{uid}#", self.channels.response)
            }
            _ => self.channels.response.clone(),
        };
        self.driver.publish(channel, payload);
    }

    // ----- what we hear ---------------------------------------------------

    /// A broadcast frame on `K#N#` or `K#N#<room>#`.
    pub(crate) fn on_broadcast(&self, channel: &str, payload: &[u8]) {
        let Some(room) = self.channels.room_of(channel) else {
            return;
        };
        if !room.is_empty()
            && !self.local.has_room(room)
            && !numeric_room(room).is_some_and(|r| self.local.has_room(&r))
        {
            return;
        }
        let parser = self.ns.parser();
        let options = socketio::msgpack::DecodeOptions::default()
            .keep_undefined(parser == socketio::Parser::Msgpack);
        let frame = match wire::decode_broadcast_with(payload, &options) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, error = %e, "malformed broadcast from redis ignored");
                return;
            }
        };
        if frame.uid == self.uid() || frame.packet.nsp != self.nsp {
            return;
        }
        let Some(packet) = encode_for_clients(frame.packet, parser) else {
            return;
        };
        let mut opts = frame.selection.to_opts();
        opts.flags.volatile = frame.volatile;
        let n = self.local.broadcast(&packet, &opts);
        tracing::trace!(nsp = %self.nsp, from = %frame.uid, recipients = n, "broadcast from another node");
    }

    /// A request on `K-request#N#`.
    pub(crate) fn on_request(self: &Arc<Self>, payload: &[u8]) {
        let req = match wire::decode_request(payload) {
            Ok(Some(r)) => r,
            Ok(None) => {
                tracing::debug!(nsp = %self.nsp, "request of unknown type ignored");
                return;
            }
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, error = %e, "malformed request from redis ignored");
                return;
            }
        };
        if req.uid.as_deref() == Some(self.uid()) {
            // Our own request: the local part was done when it was made.
            return;
        }
        let from = req.uid.as_deref();
        match req.body {
            Request::Sockets { request_id, rooms } => {
                let mut opts = BroadcastOptions::default();
                opts.rooms = rooms.into_iter().collect();
                let ids: Vec<String> = self
                    .local
                    .sockets(&opts)
                    .iter()
                    .map(|id| id.to_string())
                    .collect();
                self.publish_response(from, wire::sockets_response(&request_id, &ids));
            }
            Request::AllRooms { request_id } => {
                let rooms = self.local.rooms();
                self.publish_response(from, wire::all_rooms_response(&request_id, &rooms));
            }
            Request::JoinLeave {
                join,
                selection,
                rooms,
            } => {
                let opts = selection.to_opts();
                if join {
                    self.ns.add_sockets(&opts, rooms);
                } else {
                    self.ns.del_sockets(&opts, rooms);
                }
            }
            Request::LegacyJoinLeave {
                join,
                sid,
                room,
                request_id,
            } => {
                let Some(socket) = SocketId::parse(&sid).and_then(|id| self.ns.get(&id)) else {
                    return;
                };
                if join {
                    socket.join(room);
                } else {
                    socket.leave(room);
                }
                if let Some(rid) = request_id {
                    self.publish_response(from, wire::done_response(&rid));
                }
            }
            Request::Disconnect { selection, close } => {
                let ns = self.ns.clone();
                tokio::spawn(async move {
                    ns.disconnect_sockets(&selection.to_opts(), close).await;
                });
            }
            Request::LegacyDisconnect {
                sid,
                close,
                request_id,
            } => {
                let Some(socket) = SocketId::parse(&sid).and_then(|id| self.ns.get(&id)) else {
                    return;
                };
                let this = self.clone();
                let from = from.map(str::to_owned);
                tokio::spawn(async move {
                    socket.disconnect(close).await;
                    if let Some(rid) = request_id {
                        this.publish_response(from.as_deref(), wire::done_response(&rid));
                    }
                });
            }
            Request::Fetch {
                request_id,
                selection,
            } => {
                let sockets = self
                    .ns
                    .local_sockets(&selection.to_opts())
                    .into_iter()
                    .map(|s| {
                        json!({"id": s.id.to_string(), "handshake": s.handshake, "rooms": s.rooms, "data": s.data})
                    })
                    .collect();
                self.publish_response(from, wire::fetch_response(&request_id, sockets));
            }
            Request::ServerSideEmit { request_id, data } => {
                let values = match data {
                    Value::Array(a) => a,
                    _ => return,
                };
                let args = Args::from_parts(values, Vec::new());
                let Some(request_id) = request_id else {
                    self.ns.dispatch_server_event(args, ServerAck::none());
                    return;
                };
                let (tx, rx) = oneshot::channel();
                self.ns.dispatch_server_event(args, ServerAck::new(tx));
                let this = self.clone();
                let timeout = self.driver.config.requests_timeout;
                tokio::spawn(async move {
                    // A handler that never answers: the requester times out, as with Node.
                    if let Ok(Ok(answer)) = tokio::time::timeout(timeout, rx).await {
                        let arg = answer
                            .values()
                            .first()
                            .map(|v| wire::inline_binary(v, answer.binary()))
                            .unwrap_or(Value::Null);
                        // Always the shared channel, as the reference.
                        this.driver.publish(
                            this.channels.response.clone(),
                            wire::server_side_emit_response(&request_id, &arg),
                        );
                    }
                });
            }
            Request::Broadcast {
                request_id,
                packet,
                selection,
                timeout_ms,
            } => {
                if lock(&self.ack_requests).contains_key(&request_id) {
                    return;
                }
                if packet.nsp != self.nsp {
                    return;
                }
                let values = match packet.data {
                    Value::Array(a) => a,
                    _ => return,
                };
                let data = Args::from_parts(values, packet.attachments);
                let timeout = timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(self.driver.config.requests_timeout);
                let mut pending = self
                    .ns
                    .broadcast_with_ack(data, &selection.to_opts(), timeout);
                self.publish_response(
                    from,
                    wire::client_count_response(&request_id, pending.recipients()),
                );
                let this = self.clone();
                let from = from.map(str::to_owned);
                tokio::spawn(async move {
                    while let Some((_, answer)) = pending.next().await {
                        let Some(args) = answer else { continue };
                        let arg = args.values().first().cloned().unwrap_or(Value::Null);
                        match wire::broadcast_ack_response(&request_id, &arg, args.binary()) {
                            Ok(bytes) => this.publish_response(from.as_deref(), bytes),
                            Err(e) => tracing::warn!(error = %e, "ack not forwarded"),
                        }
                    }
                });
            }
        }
    }

    /// An answer on `K-response#N#` (or our own response channel).
    pub(crate) fn on_response(&self, payload: &[u8]) {
        let (v, bins) = match wire::decode_message(payload) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, error = %e, "malformed response from redis ignored");
                return;
            }
        };
        let Some(request_id) = v.get("requestId").and_then(Value::as_str) else {
            return;
        };
        if let Some(tx) = lock(&self.ack_requests).get(request_id) {
            match v.get("type").and_then(Value::as_u64) {
                Some(kind::BROADCAST_CLIENT_COUNT) => {
                    let n = v.get("clientCount").and_then(Value::as_u64).unwrap_or(0);
                    let _ = tx.send(AckEvent::ClientCount(usize::try_from(n).unwrap_or(0)));
                }
                Some(kind::BROADCAST_ACK) => {
                    let arg = v.get("packet").cloned().unwrap_or(Value::Null);
                    let _ = tx.send(AckEvent::Ack(Args::from_parts(vec![arg], bins)));
                }
                _ => {}
            }
            return;
        }
        let mut requests = lock(&self.requests);
        let Some(p) = requests.get_mut(request_id) else {
            return;
        };
        p.got += 1;
        match p.kind {
            kind::SOCKETS | kind::REMOTE_FETCH => {
                if let Some(Value::Array(a)) = v.get("sockets") {
                    p.items.extend(a.iter().cloned());
                }
            }
            kind::ALL_ROOMS => {
                if let Some(Value::Array(a)) = v.get("rooms") {
                    p.items.extend(a.iter().cloned());
                }
            }
            kind::SERVER_SIDE_EMIT => p.items.push(v.get("data").cloned().unwrap_or(Value::Null)),
            _ => {}
        }
        if p.got >= p.need {
            if let Some(p) = requests.remove(request_id) {
                if let Some(done) = p.done {
                    let _ = done.send(p.items);
                }
            }
        }
    }

    // ----- what we ask ------------------------------------------------------

    /// How many other nodes serve this namespace.
    async fn others(&self) -> Result<usize, socketio::Error> {
        let n = self.driver.numsub(&self.channels.request).await?;
        Ok(n.saturating_sub(1))
    }

    /// Asks every other node (one answer each); nothing to ask when alone.
    async fn ask_others(
        &self,
        kind: u64,
        what: &str,
        build: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<Vec<Value>, socketio::Error> {
        let need = self.others().await?;
        if need == 0 {
            return Ok(Vec::new());
        }
        self.ask(kind, need, what, build).await
    }

    /// Publishes a request and waits for `need` answers.
    async fn ask(
        &self,
        kind: u64,
        need: usize,
        what: &str,
        build: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<Vec<Value>, socketio::Error> {
        let request_id = uid6();
        let (tx, rx) = oneshot::channel();
        lock(&self.requests).insert(
            request_id.clone(),
            Pending {
                kind,
                need,
                got: 0,
                items: Vec::new(),
                done: Some(tx),
            },
        );
        if !self.publish_request(build(&request_id)) {
            lock(&self.requests).remove(&request_id);
            return Err(socketio::Error::Adapter(format!(
                "could not publish the {what} request"
            )));
        }
        match tokio::time::timeout(self.driver.config.requests_timeout, rx).await {
            Ok(Ok(items)) => Ok(items),
            _ => {
                let p = lock(&self.requests).remove(&request_id);
                let msg = match (kind, p) {
                    (kind::SERVER_SIDE_EMIT, Some(p)) => format!(
                        "timeout reached: only {} responses received out of {}",
                        p.got, p.need
                    ),
                    _ => format!("timeout reached while waiting for {what} response"),
                };
                Err(socketio::Error::Timeout(msg))
            }
        }
    }
}

/// A packet from another node, encoded for this node's clients.
pub(crate) fn encode_for_clients(p: WirePacket, parser: socketio::Parser) -> Option<EncodedPacket> {
    let bp = match p.kind {
        2 | 5 => BinaryPacket::event(p.nsp, p.data, p.attachments, p.id),
        3 | 6 => BinaryPacket::ack(p.nsp, p.data, p.attachments, p.id?),
        other => {
            tracing::debug!(
                kind = other,
                "broadcast of an unexpected packet type ignored"
            );
            return None;
        }
    };
    Some(EncodedPacket::from_binary_packet(&bp, parser))
}

/// Our packet as other nodes expect it: type 2 or 3, binary in `bin`, no ack id.
pub(crate) fn to_wire(packet: &EncodedPacket, nsp: &str) -> Option<WirePacket> {
    let bp = match packet.to_binary_packet() {
        Ok(bp) => bp,
        Err(e) => {
            tracing::warn!(error = %e, "packet not published");
            return None;
        }
    };
    use socketio::packet::PacketType;
    let kind = match bp.packet.kind {
        PacketType::Event | PacketType::BinaryEvent => 2,
        PacketType::Ack | PacketType::BinaryAck => 3,
        _ => return None,
    };
    Some(WirePacket {
        kind,
        data: bp.packet.data.unwrap_or(Value::Null),
        attachments: bp.attachments,
        nsp: nsp.to_owned(),
        id: if kind == 3 { bp.packet.id } else { None },
    })
}

pub(crate) fn socket_info(v: &Value) -> Option<SocketInfo> {
    let id = SocketId::parse(v.get("id")?.as_str()?)?;
    Some(SocketInfo::new(
        id,
        v.get("handshake").cloned().unwrap_or(Value::Null),
        wire::rooms(v.get("rooms")),
        v.get("data").cloned().unwrap_or(Value::Null),
    ))
}

impl Adapter for NsAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        self.local.add_all(id, rooms);
    }

    fn del(&self, id: &SocketId, room: &str) {
        self.local.del(id, room);
    }

    fn del_all(&self, id: &SocketId) {
        self.local.del_all(id);
    }

    fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        self.local.socket_rooms(id)
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.local.sockets(opts)
    }

    fn rooms(&self) -> Vec<Room> {
        self.local.rooms()
    }

    fn broadcast(&self, packet: &EncodedPacket, opts: &BroadcastOptions) -> usize {
        if !opts.flags.local {
            if let Some(wp) = to_wire(packet, &self.nsp) {
                match wire::encode_broadcast(self.uid(), &wp, opts) {
                    Ok(bytes) => {
                        self.driver
                            .publish(self.channels.for_broadcast(&opts.rooms), bytes);
                    }
                    Err(e) => tracing::warn!(error = %e, "broadcast not published"),
                }
            }
        }
        self.local.broadcast(packet, opts)
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, socketio::Error>> {
        Box::pin(async move { Ok(self.driver.numsub(&self.channels.request).await?) })
    }

    fn remote_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, socketio::Error>> {
        Box::pin(async move {
            let uid = self.uid().to_owned();
            let items = self
                .ask_others(kind::ALL_ROOMS, "allRooms", |rid| {
                    wire::all_rooms_request(&uid, rid)
                })
                .await?;
            Ok(wire::rooms(Some(&Value::Array(items))))
        })
    }

    fn remote_fetch_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
    ) -> AdapterFuture<'a, Result<Vec<SocketInfo>, socketio::Error>> {
        Box::pin(async move {
            let uid = self.uid().to_owned();
            let items = self
                .ask_others(kind::REMOTE_FETCH, "fetchSockets", |rid| {
                    wire::fetch_request(&uid, rid, opts)
                })
                .await?;
            Ok(items.iter().filter_map(socket_info).collect())
        })
    }

    fn remote_add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.publish_request(wire::join_leave_request(self.uid(), true, opts, rooms));
    }

    fn remote_del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.publish_request(wire::join_leave_request(self.uid(), false, opts, rooms));
    }

    fn remote_disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.publish_request(wire::disconnect_request(self.uid(), opts, close));
    }

    fn remote_broadcast_with_ack<'a>(
        &'a self,
        packet: &'a EncodedPacket,
        opts: &'a BroadcastOptions,
        timeout: Duration,
    ) -> AdapterFuture<'a, RemoteAcks> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let Some(mut wp) = to_wire(packet, &self.nsp) else {
                return RemoteAcks::new(Vec::new(), true);
            };
            wp.id = None;
            let others = match tokio::time::timeout_at(deadline, self.others()).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::error!(nsp = %self.nsp, error = %e, "broadcast with acks stays local");
                    return RemoteAcks::new(Vec::new(), true);
                }
                Err(_) => return RemoteAcks::new(Vec::new(), false),
            };
            if others == 0 {
                return RemoteAcks::new(Vec::new(), true);
            }
            let request_id = uid6();
            let mut opts = opts.clone();
            opts.timeout = Some(timeout);
            let bytes = match wire::broadcast_request(self.uid(), &request_id, &wp, &opts) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "broadcast with acks not published");
                    return RemoteAcks::new(Vec::new(), true);
                }
            };
            let (tx, mut rx) = mpsc::unbounded_channel();
            lock(&self.ack_requests).insert(request_id.clone(), tx);
            let mut responses = Vec::new();
            let mut complete = false;
            if self.publish_request(bytes) {
                let (mut servers, mut expected) = (0usize, 0usize);
                while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    match ev {
                        AckEvent::ClientCount(n) => {
                            servers += 1;
                            expected += n;
                        }
                        AckEvent::Ack(a) => responses.push(a),
                    }
                    if servers >= others && responses.len() >= expected {
                        complete = true;
                        break;
                    }
                }
            }
            lock(&self.ack_requests).remove(&request_id);
            RemoteAcks::new(responses, complete)
        })
    }

    fn server_side_emit(&self, data: &Args) -> Result<(), socketio::Error> {
        let v = wire::inline_binary(&Value::Array(data.values().to_vec()), data.binary());
        if self.publish_request(wire::server_side_emit_request(self.uid(), None, &v)) {
            Ok(())
        } else {
            Err(socketio::Error::Adapter(
                "could not publish the server-side event".to_owned(),
            ))
        }
    }

    fn server_side_emit_with_ack<'a>(
        &'a self,
        data: &'a Args,
    ) -> AdapterFuture<'a, Result<Vec<Args>, socketio::Error>> {
        Box::pin(async move {
            let v = wire::inline_binary(&Value::Array(data.values().to_vec()), data.binary());
            let uid = self.uid().to_owned();
            let items = self
                .ask_others(kind::SERVER_SIDE_EMIT, "serverSideEmit", |rid| {
                    wire::server_side_emit_request(&uid, Some(rid), &v)
                })
                .await?;
            Ok(items
                .into_iter()
                .map(|v| Args::from_parts(vec![v], Vec::<Bytes>::new()))
                .collect())
        })
    }
}

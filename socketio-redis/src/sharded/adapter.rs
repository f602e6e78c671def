//! The sharded adapter of one namespace: rooms and local delivery in a
//! [`MemoryAdapter`], the room channels it subscribes while the rooms have
//! local members, and the `ClusterAdapter` messages it publishes, hears and
//! answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use socketio::{
    Adapter, AdapterFuture, Args, BroadcastOptions, EncodedPacket, LocalNamespace, MemoryAdapter,
    RemoteAcks, Room, ServerAck, SocketId, SocketInfo,
};
use tokio::sync::{mpsc, oneshot};

use super::SubscriptionMode;
use super::driver::{Driver, RouteKind, uid16};
use super::wire::{Body, Envelope, ShardedChannels, broadcast_room};
use crate::adapter::{encode_for_clients, socket_info, to_wire};
use crate::wire::Selection;

/// One answer: a value and the binary its placeholders refer to.
type Answer = (Value, Vec<Bytes>);

/// A request of ours that waits for one answer per other node.
struct Pending {
    need: usize,
    got: usize,
    items: Vec<Answer>,
    done: Option<oneshot::Sender<Vec<Answer>>>,
}

/// What other nodes report about a broadcast with acks of ours.
enum AckEvent {
    ClientCount(usize),
    Ack(Args),
}

pub(crate) struct ShardedNs {
    me: std::sync::Weak<ShardedNs>,
    local: MemoryAdapter,
    ns: LocalNamespace,
    nsp: String,
    driver: Arc<Driver>,
    channels: ShardedChannels,
    /// The rooms whose channel this node subscribes (`dynamic` modes).
    /// Also serializes membership changes, so that "created" and "deleted"
    /// are decided on a consistent view.
    room_channels: Mutex<std::collections::HashSet<Room>>,
    requests: Mutex<HashMap<String, Pending>>,
    ack_requests: Mutex<HashMap<String, mpsc::UnboundedSender<AckEvent>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for ShardedNs {
    fn drop(&mut self) {
        self.unsubscribe_all();
    }
}

impl ShardedNs {
    pub(crate) fn create(ns: LocalNamespace, driver: Arc<Driver>) -> Arc<ShardedNs> {
        let nsp = ns.name();
        if ns.recovery_config().is_some() {
            tracing::warn!(%nsp, "connection state recovery is not supported with the sharded Redis adapter (as with Node's); sockets will not be recovered");
        }
        let channels = ShardedChannels::new(&driver.config.key, &nsp, &driver.uid);
        let adapter = Arc::new_cyclic(|me| ShardedNs {
            me: me.clone(),
            local: MemoryAdapter::new(ns.clone()),
            ns,
            nsp,
            driver: driver.clone(),
            channels: channels.clone(),
            room_channels: Mutex::new(Default::default()),
            requests: Mutex::new(HashMap::new()),
            ack_requests: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&adapter);
        driver.add_route(channels.main, RouteKind::Message, weak.clone());
        driver.add_route(channels.response, RouteKind::Response, weak);
        adapter
    }

    /// The channels that must be live before other nodes' messages reach us.
    pub(crate) fn fixed_channels(&self) -> [String; 2] {
        [self.channels.main.clone(), self.channels.response.clone()]
    }

    fn unsubscribe_all(&self) {
        for room in lock(&self.room_channels).drain() {
            self.driver.remove_route(&self.channels.room(&room));
        }
        self.driver.remove_route(&self.channels.main);
        self.driver.remove_route(&self.channels.response);
    }

    fn uid(&self) -> &str {
        &self.driver.uid
    }

    fn mode(&self) -> SubscriptionMode {
        self.driver.config.subscription_mode
    }

    /// The reference's `shouldUseASeparateNamespace`, decided when a room
    /// is created by `id` joining it.
    fn room_gets_channel(&self, id: &SocketId, room: &str) -> bool {
        match self.mode() {
            SubscriptionMode::Static => false,
            SubscriptionMode::DynamicPrivate => true,
            SubscriptionMode::Dynamic => {
                // Private: the id room of a socket of this node.
                room != id.as_str()
                    && SocketId::parse(room)
                        .is_none_or(|sid| self.local.socket_rooms(&sid).is_empty())
            }
        }
    }

    fn subscribe_room(&self, subs: &mut std::collections::HashSet<Room>, room: &str) {
        if subs.insert(room.to_owned()) {
            self.driver.add_route(
                self.channels.room(room),
                RouteKind::Message,
                self.me.clone(),
            );
        }
    }

    fn unsubscribe_room(&self, subs: &mut std::collections::HashSet<Room>, room: &str) {
        if subs.remove(room) {
            self.driver.remove_route(&self.channels.room(room));
        }
    }

    fn publish(&self, body: Body, attachments: Vec<Bytes>, channel: String) -> bool {
        let env = Envelope::new(self.uid(), &self.nsp, body).with_attachments(attachments);
        match env.encode() {
            Ok(bytes) => self.driver.publish(channel, bytes),
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, error = %e, "message not published");
                false
            }
        }
    }

    fn publish_main(&self, body: Body, attachments: Vec<Bytes>) -> bool {
        self.publish(body, attachments, self.channels.main.clone())
    }

    fn respond(&self, requester: &str, body: Body, attachments: Vec<Bytes>) {
        self.publish(body, attachments, self.channels.response_of(requester));
    }

    // ----- what we hear ---------------------------------------------------

    /// A message on the namespace's channel or a room's.
    pub(crate) fn on_message(self: &Arc<Self>, payload: &[u8]) {
        let env = match Envelope::decode(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, error = %e, "malformed message from redis ignored");
                return;
            }
        };
        if env.uid == self.uid() || env.nsp != self.nsp {
            return;
        }
        if env.body.response_to().is_some() {
            self.handle_response(env);
            return;
        }
        let from = env.uid;
        match env.body {
            Body::Broadcast {
                mut packet,
                selection,
                volatile,
                timeout_ms,
                request_id,
            } => match request_id {
                None => {
                    // Node's ClusterAdapter publishes the packet before it
                    // sets `packet.nsp`: the envelope's namespace is the one.
                    packet.nsp.clone_from(&self.nsp);
                    let Some(packet) = encode_for_clients(packet, self.ns.parser()) else {
                        return;
                    };
                    let mut opts = selection.to_opts();
                    opts.flags.volatile = volatile;
                    self.local.broadcast(&packet, &opts);
                }
                Some(request_id) => {
                    self.answer_broadcast_with_ack(from, request_id, packet, selection, timeout_ms)
                }
            },
            Body::JoinLeave {
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
            Body::Disconnect { selection, close } => {
                let ns = self.ns.clone();
                tokio::spawn(async move {
                    ns.disconnect_sockets(&selection.to_opts(), close).await;
                });
            }
            Body::FetchSockets {
                selection,
                request_id,
            } => {
                let sockets = self
                    .ns
                    .local_sockets(&selection.to_opts())
                    .into_iter()
                    .map(|s| {
                        json!({"id": s.id.to_string(), "handshake": s.handshake, "rooms": s.rooms, "data": s.data})
                    })
                    .collect();
                self.respond(
                    &from,
                    Body::FetchSocketsResponse {
                        request_id,
                        sockets,
                    },
                    Vec::new(),
                );
            }
            Body::ServerSideEmit { request_id, packet } => {
                let args = Args::from_parts(packet, env.attachments);
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
                        let arg = answer.values().first().cloned().unwrap_or(Value::Null);
                        this.respond(
                            &from,
                            Body::ServerSideEmitResponse {
                                request_id,
                                packet: arg,
                            },
                            answer.binary().to_vec(),
                        );
                    }
                });
            }
            _ => {}
        }
    }

    fn answer_broadcast_with_ack(
        self: &Arc<Self>,
        from: String,
        request_id: String,
        packet: crate::wire::WirePacket,
        selection: Selection,
        timeout_ms: Option<u64>,
    ) {
        let Value::Array(values) = packet.data else {
            return;
        };
        let data = Args::from_parts(values, packet.attachments);
        let timeout = timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.driver.config.requests_timeout);
        let mut pending = self
            .ns
            .broadcast_with_ack(data, &selection.to_opts(), timeout);
        self.respond(
            &from,
            Body::BroadcastClientCount {
                request_id: request_id.clone(),
                client_count: pending.recipients() as u64,
            },
            Vec::new(),
        );
        let this = self.clone();
        tokio::spawn(async move {
            while let Some((_, answer)) = pending.next().await {
                let Some(args) = answer else { continue };
                let arg = args.values().first().cloned().unwrap_or(Value::Null);
                this.respond(
                    &from,
                    Body::BroadcastAck {
                        request_id: request_id.clone(),
                        packet: arg,
                    },
                    args.binary().to_vec(),
                );
            }
        });
    }

    /// A message on this node's response channel.
    pub(crate) fn on_response(&self, payload: &[u8]) {
        match Envelope::decode(payload) {
            Ok(env) => self.handle_response(env),
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, error = %e, "malformed response from redis ignored")
            }
        }
    }

    fn handle_response(&self, env: Envelope) {
        let Envelope {
            body, attachments, ..
        } = env;
        match body {
            Body::BroadcastClientCount {
                request_id,
                client_count,
            } => {
                if let Some(tx) = lock(&self.ack_requests).get(&request_id) {
                    let n = usize::try_from(client_count).unwrap_or(usize::MAX);
                    let _ = tx.send(AckEvent::ClientCount(n));
                }
            }
            Body::BroadcastAck { request_id, packet } => {
                if let Some(tx) = lock(&self.ack_requests).get(&request_id) {
                    let _ = tx.send(AckEvent::Ack(Args::from_parts(vec![packet], attachments)));
                }
            }
            Body::FetchSocketsResponse {
                request_id,
                sockets,
            } => {
                let items = sockets.into_iter().map(|s| (s, Vec::new())).collect();
                self.add_answer(&request_id, items);
            }
            Body::ServerSideEmitResponse { request_id, packet } => {
                self.add_answer(&request_id, vec![(packet, attachments)]);
            }
            _ => {}
        }
    }

    fn add_answer(&self, request_id: &str, items: Vec<(Value, Vec<Bytes>)>) {
        let mut requests = lock(&self.requests);
        let Some(p) = requests.get_mut(request_id) else {
            return;
        };
        p.got += 1;
        p.items.extend(items);
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
        let n = self.driver.shard_numsub(&self.channels.main).await?;
        Ok(n.saturating_sub(1))
    }

    /// Publishes a request and waits for one answer per other node.
    async fn ask(
        &self,
        timeout: Duration,
        build: impl FnOnce(String) -> (Body, Vec<Bytes>),
    ) -> Result<Vec<(Value, Vec<Bytes>)>, socketio::Error> {
        let need = self.others().await?;
        if need == 0 {
            return Ok(Vec::new());
        }
        let request_id = uid16();
        let (tx, rx) = oneshot::channel();
        lock(&self.requests).insert(
            request_id.clone(),
            Pending {
                need,
                got: 0,
                items: Vec::new(),
                done: Some(tx),
            },
        );
        let (body, attachments) = build(request_id.clone());
        if !self.publish_main(body, attachments) {
            lock(&self.requests).remove(&request_id);
            return Err(socketio::Error::Adapter(
                "could not publish the request".to_owned(),
            ));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(items)) => Ok(items),
            _ => {
                let (got, need) = lock(&self.requests)
                    .remove(&request_id)
                    .map_or((0, need), |p| (p.got, p.need));
                Err(socketio::Error::Timeout(format!(
                    "timeout reached: only {got} responses received out of {need}"
                )))
            }
        }
    }
}

impl Adapter for ShardedNs {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        if self.mode() == SubscriptionMode::Static {
            self.local.add_all(id, rooms);
            return;
        }
        let mut subs = lock(&self.room_channels);
        let created: Vec<&Room> = rooms
            .iter()
            .filter(|r| !self.local.has_room(r) && self.room_gets_channel(id, r))
            .collect();
        self.local.add_all(id, rooms);
        for r in created {
            self.subscribe_room(&mut subs, r);
        }
    }

    fn del(&self, id: &SocketId, room: &str) {
        if self.mode() == SubscriptionMode::Static {
            self.local.del(id, room);
            return;
        }
        let mut subs = lock(&self.room_channels);
        self.local.del(id, room);
        if !self.local.has_room(room) {
            self.unsubscribe_room(&mut subs, room);
        }
    }

    fn del_all(&self, id: &SocketId) {
        if self.mode() == SubscriptionMode::Static {
            self.local.del_all(id);
            return;
        }
        let mut subs = lock(&self.room_channels);
        let rooms = self.local.socket_rooms(id);
        self.local.del_all(id);
        for r in rooms {
            if !self.local.has_room(&r) {
                self.unsubscribe_room(&mut subs, &r);
            }
        }
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
                let channel = match broadcast_room(opts, false, self.mode()) {
                    Some(room) => self.channels.room(room),
                    None => self.channels.main.clone(),
                };
                let attachments = wp.attachments.clone();
                self.publish(
                    Body::Broadcast {
                        packet: wp,
                        selection: Selection::from_opts(opts),
                        volatile: opts.flags.volatile,
                        timeout_ms: None,
                        request_id: None,
                    },
                    attachments,
                    channel,
                );
            }
        }
        self.local.broadcast(packet, opts)
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, socketio::Error>> {
        Box::pin(async move { Ok(self.driver.shard_numsub(&self.channels.main).await?) })
    }

    fn remote_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, socketio::Error>> {
        Box::pin(async move {
            Err(socketio::Error::Adapter(
                "allRooms is not part of the sharded adapter's protocol (nor of Node's)".to_owned(),
            ))
        })
    }

    fn remote_fetch_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
    ) -> AdapterFuture<'a, Result<Vec<SocketInfo>, socketio::Error>> {
        Box::pin(async move {
            let timeout = opts.timeout.unwrap_or(self.driver.config.requests_timeout);
            let items = self
                .ask(timeout, |request_id| {
                    (
                        Body::FetchSockets {
                            selection: Selection::from_opts(opts),
                            request_id,
                        },
                        Vec::new(),
                    )
                })
                .await?;
            Ok(items.iter().filter_map(|(v, _)| socket_info(v)).collect())
        })
    }

    fn remote_add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.publish_main(
            Body::JoinLeave {
                join: true,
                selection: Selection::from_opts(opts),
                rooms: rooms.to_vec(),
            },
            Vec::new(),
        );
    }

    fn remote_del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.publish_main(
            Body::JoinLeave {
                join: false,
                selection: Selection::from_opts(opts),
                rooms: rooms.to_vec(),
            },
            Vec::new(),
        );
    }

    fn remote_disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.publish_main(
            Body::Disconnect {
                selection: Selection::from_opts(opts),
                close,
            },
            Vec::new(),
        );
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
            let request_id = uid16();
            let (tx, mut rx) = mpsc::unbounded_channel();
            lock(&self.ack_requests).insert(request_id.clone(), tx);
            let attachments = wp.attachments.clone();
            let published = self.publish_main(
                Body::Broadcast {
                    packet: wp,
                    selection: Selection::from_opts(opts),
                    volatile: opts.flags.volatile,
                    timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
                    request_id: Some(request_id.clone()),
                },
                attachments,
            );
            let mut responses = Vec::new();
            let mut complete = false;
            if published {
                let (mut servers, mut expected) = (0usize, 0usize);
                while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    match ev {
                        AckEvent::ClientCount(n) => {
                            servers += 1;
                            expected = expected.saturating_add(n);
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
        let body = Body::ServerSideEmit {
            request_id: None,
            packet: data.values().to_vec(),
        };
        if self.publish_main(body, data.binary().to_vec()) {
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
            let items = self
                .ask(self.driver.config.requests_timeout, |request_id| {
                    (
                        Body::ServerSideEmit {
                            request_id: Some(request_id),
                            packet: data.values().to_vec(),
                        },
                        data.binary().to_vec(),
                    )
                })
                .await?;
            Ok(items
                .into_iter()
                .map(|(v, bins)| Args::from_parts(vec![v], bins))
                .collect())
        })
    }

    fn close(&self) -> AdapterFuture<'_, ()> {
        self.unsubscribe_all();
        Box::pin(std::future::ready(()))
    }
}

//! The Streams adapter of one namespace: rooms and delivery in a
//! [`MemoryAdapter`]; broadcasts and join / leave / disconnect through the
//! stream; fetch, server-side emits and broadcasts with acks over pub/sub;
//! connection state recovery from the stream and session records in Redis.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use socketio::packet::{BinaryPacket, PacketType};
use socketio::{
    Adapter, AdapterFuture, Args, BroadcastOptions, EncodedPacket, LocalNamespace, MemoryAdapter,
    RecoveryConfig, RemoteAcks, RestoredSession, Room, ServerAck, SessionState, SocketId,
    SocketInfo,
};
use tokio::sync::{Notify, mpsc, oneshot};

use super::driver::{Driver, RawEntry, private_channel, public_channel, random_id};
use super::wire::{self, Broadcast, Envelope, Message, StreamId, kind};
use crate::wire::{WirePacket, inline_binary};

/// Compare-and-set of a session record: written if absent or still the
/// value this node wrote last.
const SET_IF_OURS: &str = "local v = redis.call('GET', KEYS[1]) \
if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end \
return 0";

/// Deletes a session record only if it is still the value this node wrote.
const DEL_IF_OURS: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('DEL', KEYS[1]) end return 0";

/// A request of ours that waits for other nodes' answers.
struct Pending {
    need: usize,
    got: usize,
    items: Vec<Args>,
    done: Option<oneshot::Sender<Vec<Args>>>,
}

enum AckEvent {
    ClientCount(usize),
    Ack(Args),
}

/// Events of this namespace delivered from the stream, newest last, for
/// sockets that recover while the stream moves on (`missed_after`).
struct ReplayCache {
    entries: VecDeque<(StreamId, Broadcast, EncodedPacket)>,
    /// Entries up to this id are not (or no longer) here.
    floor: StreamId,
    cap: usize,
}

/// The session record of a connected local socket: what we wrote last.
struct Record {
    key: String,
    last: Option<String>,
}

pub(crate) struct StreamsNsAdapter {
    local: MemoryAdapter,
    ns: LocalNamespace,
    nsp: String,
    driver: Arc<Driver>,
    public: String,
    recovery: Option<RecoveryConfig>,
    cache: Mutex<ReplayCache>,
    requests: Mutex<HashMap<String, Pending>>,
    ack_requests: Mutex<HashMap<String, mpsc::UnboundedSender<AckEvent>>>,
    /// Session records of connected local sockets (with recovery).
    records: Mutex<HashMap<SocketId, Record>>,
    /// Sockets whose rooms changed since their record was written.
    dirty: Mutex<HashSet<SocketId>>,
    wake_writer: Arc<Notify>,
    writer: Mutex<Option<tokio::task::AbortHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Drop for StreamsNsAdapter {
    fn drop(&mut self) {
        self.driver.unregister(&self.nsp);
        if let Some(w) = lock(&self.writer).take() {
            w.abort();
        }
    }
}

/// Our packet as other nodes expect it: type 2 or 3, binary in `bin`.
fn to_wire(packet: &EncodedPacket, nsp: &str) -> Option<WirePacket> {
    let bp = match packet.to_binary_packet() {
        Ok(bp) => bp,
        Err(e) => {
            tracing::warn!(error = %e, "packet not published");
            return None;
        }
    };
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
        id: bp.packet.id,
    })
}

/// A packet from the stream, encoded for this node's clients.
fn for_clients(p: WirePacket, parser: socketio::Parser) -> Option<EncodedPacket> {
    let bp = match p.kind {
        2 | 5 => BinaryPacket::event(p.nsp, p.data, p.attachments, p.id),
        3 | 6 => BinaryPacket::ack(p.nsp, p.data, p.attachments, p.id?),
        _ => return None,
    };
    Some(EncodedPacket::from_binary_packet(&bp, parser))
}

fn socket_info(v: &Value) -> Option<SocketInfo> {
    let id = SocketId::parse(v.get("id")?.as_str()?)?;
    Some(SocketInfo::new(
        id,
        v.get("handshake").cloned().unwrap_or(Value::Null),
        crate::wire::rooms(v.get("rooms")),
        v.get("data").cloned().unwrap_or(Value::Null),
    ))
}

impl StreamsNsAdapter {
    pub(crate) fn create(ns: LocalNamespace, driver: Arc<Driver>) -> Arc<StreamsNsAdapter> {
        let nsp = ns.name();
        let recovery = ns.recovery_config();
        let floor = driver.position().unwrap_or_default();
        let adapter = Arc::new(StreamsNsAdapter {
            local: MemoryAdapter::new(ns.clone()),
            ns,
            public: public_channel(&driver.config.channel_prefix, &nsp),
            nsp: nsp.clone(),
            driver: driver.clone(),
            recovery,
            cache: Mutex::new(ReplayCache {
                entries: VecDeque::new(),
                floor,
                cap: driver.config.replay_cache_len,
            }),
            requests: Mutex::new(HashMap::new()),
            ack_requests: Mutex::new(HashMap::new()),
            records: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            wake_writer: Arc::new(Notify::new()),
            writer: Mutex::new(None),
        });
        driver.register(&nsp, Arc::downgrade(&adapter));
        if adapter.recovery.is_some() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let task = rt.spawn(session_writer(
                    Arc::downgrade(&adapter),
                    adapter.wake_writer.clone(),
                ));
                *lock(&adapter.writer) = Some(task.abort_handle());
            }
        }
        adapter
    }

    fn uid(&self) -> &str {
        &self.driver.uid
    }

    fn publish(&self, channel: String, kind: u64, data: &Value, bins: &[Bytes]) -> bool {
        match wire::encode_pubsub(self.uid(), &self.nsp, kind, data, bins) {
            Ok(bytes) => self.driver.publish(channel, bytes),
            Err(e) => {
                tracing::warn!(error = %e, "message not published");
                false
            }
        }
    }

    fn respond(&self, requester: &str, kind: u64, data: &Value, bins: &[Bytes]) {
        let channel = private_channel(&self.driver.config.channel_prefix, &self.nsp, requester);
        self.publish(channel, kind, data, bins);
    }

    fn append(&self, kind: u64, data: &Value, bins: &[Bytes]) -> bool {
        match wire::encode_entry(self.uid(), &self.nsp, kind, data, bins) {
            Ok(fields) => self.driver.xadd(&fields),
            Err(e) => {
                tracing::warn!(error = %e, "message not added to the stream");
                false
            }
        }
    }

    fn session_key(&self, pid: &str) -> String {
        format!("{}{pid}", self.driver.config.session_key_prefix)
    }

    // ----- what we hear ---------------------------------------------------

    /// An entry of the stream (reader task, in stream order).
    pub(crate) fn on_entry(self: &Arc<Self>, entry: &RawEntry) {
        let fields = entry
            .fields
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()));
        match wire::decode_entry(fields) {
            Ok(Some(env)) => self.handle(env, Some(entry.id)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(nsp = %self.nsp, id = %entry.id, error = %e, "malformed stream entry ignored");
            }
        }
    }

    /// A pub/sub message on `K#N#` or `K#N#<uid>#`.
    pub(crate) fn on_pubsub(self: &Arc<Self>, payload: &[u8]) {
        match wire::decode_pubsub(payload) {
            Ok(env) => self.handle(env, None),
            Err(e) => {
                tracing::debug!(nsp = %self.nsp, error = %e, "malformed pub/sub message ignored");
            }
        }
    }

    fn handle(self: &Arc<Self>, env: Envelope, offset: Option<StreamId>) {
        tracing::trace!(nsp = %self.nsp, ?env, ?offset, "cluster message");
        if env.nsp != self.nsp {
            return;
        }
        let own = env.uid == self.uid();
        match env.message {
            Message::Broadcast(b) if b.request_id.is_none() => {
                // With recovery, this node's own events reach its sockets from
                // the stream too (numbered and in stream order).
                let numbered = self.recovery.is_some() && b.takes_offset();
                if own && !(numbered && offset.is_some()) {
                    return;
                }
                self.deliver(b, offset.filter(|_| numbered));
            }
            _ if own => {}
            Message::Broadcast(b) => self.answer_broadcast_with_ack(&env.uid, b),
            Message::JoinLeave {
                join,
                selection,
                rooms,
            } => {
                if join {
                    self.ns.add_sockets(&selection.to_opts(), rooms);
                } else {
                    self.ns.del_sockets(&selection.to_opts(), rooms);
                }
            }
            Message::Disconnect { selection, close } => {
                let ns = self.ns.clone();
                tokio::spawn(async move {
                    ns.disconnect_sockets(&selection.to_opts(), close).await;
                });
            }
            Message::Fetch {
                request_id,
                selection,
            } => {
                let sockets: Vec<Value> = self
                    .ns
                    .local_sockets(&selection.to_opts())
                    .into_iter()
                    .map(|s| json!({"id": s.id.to_string(), "handshake": s.handshake, "rooms": s.rooms, "data": s.data}))
                    .collect();
                self.respond(
                    &env.uid,
                    kind::FETCH_SOCKETS_RESPONSE,
                    &json!({"requestId": request_id, "sockets": sockets}),
                    &[],
                );
            }
            Message::ServerSideEmit {
                request_id,
                data,
                attachments,
            } => self.answer_server_side_emit(&env.uid, request_id, data, attachments),
            Message::FetchResponse {
                request_id,
                sockets,
            } => self.collect(
                &request_id,
                sockets
                    .into_iter()
                    .map(|s| Args::from_parts(vec![s], Vec::new()))
                    .collect(),
            ),
            Message::ServerSideEmitResponse {
                request_id,
                packet,
                attachments,
            } => self.collect(
                &request_id,
                vec![Args::from_parts(vec![packet], attachments)],
            ),
            Message::ClientCount { request_id, count } => {
                if let Some(tx) = lock(&self.ack_requests).get(&request_id) {
                    let _ = tx.send(AckEvent::ClientCount(usize::try_from(count).unwrap_or(0)));
                }
            }
            Message::BroadcastAck {
                request_id,
                packet,
                attachments,
            } => {
                if let Some(tx) = lock(&self.ack_requests).get(&request_id) {
                    let _ = tx.send(AckEvent::Ack(Args::from_parts(vec![packet], attachments)));
                }
            }
            Message::Other(_) => {}
        }
    }

    /// Delivers a broadcast to this node's sockets; a numbered one carries
    /// its entry id and is remembered for recovering sockets, both under the
    /// namespace's delivery order.
    fn deliver(&self, b: Broadcast, offset: Option<StreamId>) {
        let opts = {
            let mut o = b.selection.to_opts();
            o.flags.volatile = b.volatile;
            o
        };
        let parser = self.ns.parser();
        // A Node node's packet carries no `nsp` (its adapter sets it when it
        // encodes): the envelope's namespace, which is ours, is the one.
        let mut packet = match offset {
            Some(id) => wire::with_offset(b.packet.clone(), id),
            None => b.packet.clone(),
        };
        packet.nsp.clone_from(&self.nsp);
        let Some(encoded) = for_clients(packet, parser) else {
            return;
        };
        self.ns.in_delivery_order(|| {
            self.local.broadcast(&encoded, &opts);
            if let Some(id) = offset {
                let mut cache = lock(&self.cache);
                if cache.cap == 0 {
                    cache.floor = id;
                    return;
                }
                while cache.entries.len() >= cache.cap {
                    if let Some((old, _, _)) = cache.entries.pop_front() {
                        cache.floor = old;
                    }
                }
                cache.entries.push_back((id, b, encoded.clone()));
            }
        });
    }

    fn answer_broadcast_with_ack(self: &Arc<Self>, from: &str, b: Broadcast) {
        let Some(request_id) = b.request_id.clone() else {
            return;
        };
        if lock(&self.ack_requests).contains_key(&request_id) {
            return;
        }
        let values = match b.packet.data {
            Value::Array(a) => a,
            _ => return,
        };
        let data = Args::from_parts(values, b.packet.attachments);
        let timeout = b
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.driver.config.requests_timeout);
        let mut pending = self
            .ns
            .broadcast_with_ack(data, &b.selection.to_opts(), timeout);
        self.respond(
            from,
            kind::BROADCAST_CLIENT_COUNT,
            &json!({"requestId": request_id, "clientCount": pending.recipients()}),
            &[],
        );
        let this = self.clone();
        let from = from.to_owned();
        tokio::spawn(async move {
            while let Some((_, answer)) = pending.next().await {
                let Some(args) = answer else { continue };
                let arg = args.values().first().cloned().unwrap_or(Value::Null);
                this.respond(
                    &from,
                    kind::BROADCAST_ACK,
                    &json!({"requestId": request_id, "packet": arg}),
                    args.binary(),
                );
            }
        });
    }

    fn answer_server_side_emit(
        self: &Arc<Self>,
        from: &str,
        request_id: Option<String>,
        data: Vec<Value>,
        attachments: Vec<Bytes>,
    ) {
        let args = Args::from_parts(data, attachments);
        let Some(request_id) = request_id else {
            self.ns.dispatch_server_event(args, ServerAck::none());
            return;
        };
        let (tx, rx) = oneshot::channel();
        self.ns.dispatch_server_event(args, ServerAck::new(tx));
        let this = self.clone();
        let from = from.to_owned();
        let timeout = self.driver.config.requests_timeout;
        tokio::spawn(async move {
            if let Ok(Ok(answer)) = tokio::time::timeout(timeout, rx).await {
                let arg = answer.values().first().cloned().unwrap_or(Value::Null);
                this.respond(
                    &from,
                    kind::SERVER_SIDE_EMIT_RESPONSE,
                    &json!({"requestId": request_id, "packet": arg}),
                    answer.binary(),
                );
            }
        });
    }

    fn collect(&self, request_id: &str, items: Vec<Args>) {
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

    async fn others(&self) -> Result<usize, socketio::Error> {
        Ok(self.driver.numsub(&self.public).await?.saturating_sub(1))
    }

    /// Publishes a request on `K#N#` and waits for one answer per other node.
    async fn ask(
        &self,
        kind: u64,
        what: &str,
        build: impl FnOnce(&str) -> (Value, Vec<Bytes>),
    ) -> Result<Vec<Args>, socketio::Error> {
        let need = self.others().await?;
        if need == 0 {
            return Ok(Vec::new());
        }
        let request_id = random_id();
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
        let (data, bins) = build(&request_id);
        if !self.publish(self.public.clone(), kind, &data, &bins) {
            lock(&self.requests).remove(&request_id);
            return Err(socketio::Error::Adapter(format!(
                "could not publish the {what} request"
            )));
        }
        match tokio::time::timeout(self.driver.config.requests_timeout, rx).await {
            Ok(Ok(items)) => Ok(items),
            _ => {
                let p = lock(&self.requests).remove(&request_id);
                let (got, need) = p.map_or((0, need), |p| (p.got, p.need));
                Err(socketio::Error::Timeout(format!(
                    "timeout reached: only {got} responses received out of {need}"
                )))
            }
        }
    }

    // ----- session records ----------------------------------------------------

    fn ttl_connected(&self) -> Option<Duration> {
        let r = self.recovery.as_ref()?;
        Some(r.max_disconnection_duration + self.refresh_interval()?)
    }

    fn refresh_interval(&self) -> Option<Duration> {
        let r = self.recovery.as_ref()?;
        Some(
            self.driver
                .config
                .session_refresh_interval
                .min(r.max_disconnection_duration / 2)
                .max(Duration::from_millis(100)),
        )
    }

    /// Queues the write of a record (under the `records` lock, so that it
    /// stays ordered with `persist_session` / `del_all`).
    fn write_record(&self, session: &SessionState, ttl: Duration, refresh: bool) {
        let encoded = match wire::encode_session(session) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(id = %session.sid, error = %e, "session record not written");
                return;
            }
        };
        let mut records = lock(&self.records);
        let Some(rec) = records.get_mut(&session.sid) else {
            return;
        };
        let mut cmd;
        match &rec.last {
            Some(last) if *last == encoded && refresh => {
                cmd = redis::cmd("PEXPIRE");
                cmd.arg(&rec.key).arg(millis(ttl));
            }
            Some(last) => {
                cmd = redis::cmd("EVAL");
                cmd.arg(SET_IF_OURS)
                    .arg(1)
                    .arg(&rec.key)
                    .arg(last.as_str())
                    .arg(encoded.as_str())
                    .arg(millis(ttl));
            }
            None => {
                cmd = redis::cmd("SET");
                cmd.arg(&rec.key)
                    .arg(encoded.as_str())
                    .arg("PX")
                    .arg(millis(ttl));
            }
        }
        if self.driver.run(cmd) {
            rec.last = Some(encoded);
        }
    }

    fn write_dirty(&self, all: bool) {
        let Some(ttl) = self.ttl_connected() else {
            return;
        };
        let ids: Vec<SocketId> = if all {
            lock(&self.dirty).clear();
            lock(&self.records).keys().copied().collect()
        } else {
            lock(&self.dirty).drain().collect()
        };
        for id in ids {
            if let Some(session) = self.ns.session_of(&id) {
                self.write_record(&session, ttl, all);
            }
        }
    }

    async fn restore(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        let offset = StreamId::parse(offset).ok()?;
        // Everything up to `mark` has been delivered here: the replay goes
        // up to it, and `missed_after(mark)` gives what comes after.
        let mark = self.driver.position()?;
        let raw = match self.driver.take(&self.session_key(pid)).await {
            Ok(Some(raw)) => raw,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "session not restored");
                return None;
            }
        };
        let session = match wire::decode_session(&raw) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "session record not understood");
                return None;
            }
        };
        if session.pid != pid {
            return None;
        }
        // The client's offset must still be in the stream (else events after
        // it may have been trimmed away).
        let at = offset.to_string();
        match self.driver.xrange(&at, &at, 1).await {
            Ok(e) if !e.is_empty() => {}
            Ok(_) => {
                tracing::debug!(%offset, "recovery offset no longer in the stream");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "session not restored");
                return None;
            }
        }
        let parser = self.ns.parser();
        let mut missed = Vec::new();
        let mut cursor = offset;
        let end = mark.to_string();
        while cursor < mark {
            let entries = match self
                .driver
                .xrange(
                    &cursor.next().to_string(),
                    &end,
                    self.driver.config.read_count,
                )
                .await
            {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "session not restored");
                    return None;
                }
            };
            let Some(last) = entries.last().map(|e| e.id) else {
                break;
            };
            for entry in &entries {
                let fields = entry
                    .fields
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice()));
                let Ok(Some(env)) = wire::decode_entry(fields) else {
                    continue;
                };
                if env.nsp != self.nsp {
                    continue;
                }
                if let Message::Broadcast(b) = env.message {
                    if b.takes_offset() && b.selects(&session.rooms) {
                        let mut packet = wire::with_offset(b.packet, entry.id);
                        packet.nsp.clone_from(&self.nsp);
                        if let Some(p) = for_clients(packet, parser) {
                            missed.push(p);
                        }
                    }
                }
            }
            cursor = last;
        }
        let mark = mark.max(offset);
        tracing::debug!(id = %session.sid, missed = missed.len(), %mark, "session restored from redis");
        Some(RestoredSession::new(session, missed, mark.to_string()))
    }
}

/// Writes the records of sockets whose rooms changed, at once, and of every
/// connected socket each refresh interval.
/// Holds no strong reference while it waits: the adapter's drop ends it.
async fn session_writer(adapter: std::sync::Weak<StreamsNsAdapter>, wake: Arc<Notify>) {
    let Some(every) = adapter.upgrade().and_then(|a| a.refresh_interval()) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let all = tokio::select! {
            _ = wake.notified() => false,
            _ = tick.tick() => true,
        };
        let Some(a) = adapter.upgrade() else { return };
        a.write_dirty(all);
    }
}

impl Adapter for StreamsNsAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        self.local.add_all(id, rooms);
        if self.recovery.is_some() {
            if let Some(session) = self.ns.session_of(id) {
                lock(&self.records).entry(*id).or_insert_with(|| Record {
                    key: self.session_key(&session.pid),
                    last: None,
                });
                lock(&self.dirty).insert(*id);
                self.wake_writer.notify_one();
            }
        }
    }

    fn del(&self, id: &SocketId, room: &str) {
        self.local.del(id, room);
        if self.recovery.is_some() && lock(&self.records).contains_key(id) {
            lock(&self.dirty).insert(*id);
            self.wake_writer.notify_one();
        }
    }

    fn del_all(&self, id: &SocketId) {
        self.local.del_all(id);
        lock(&self.dirty).remove(id);
        // Left for good (a recoverable leave took the record already, in
        // `persist_session`): its record goes, unless another node wrote it since.
        let mut records = lock(&self.records);
        if let Some(rec) = records.remove(id) {
            if let Some(last) = rec.last {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(DEL_IF_OURS).arg(1).arg(&rec.key).arg(last);
                self.driver.run(cmd);
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
        if opts.flags.local {
            return self.local.broadcast(packet, opts);
        }
        let Some(wp) = to_wire(packet, &self.nsp) else {
            return self.local.broadcast(packet, opts);
        };
        let numbered =
            self.recovery.is_some() && wp.kind == 2 && wp.id.is_none() && !opts.flags.volatile;
        let data = wire::broadcast_data(&wp, opts, None);
        let added = self.append(kind::BROADCAST, &data, &wp.attachments);
        if numbered {
            // Delivered here too once read back from the stream, with its id.
            if !added {
                tracing::warn!(nsp = %self.nsp, "event not added to the stream; not delivered");
            }
            return 0;
        }
        self.local.broadcast(packet, opts)
    }

    fn server_count(&self) -> AdapterFuture<'_, Result<usize, socketio::Error>> {
        Box::pin(async move { Ok(self.driver.numsub(&self.public).await?) })
    }

    fn remote_fetch_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
    ) -> AdapterFuture<'a, Result<Vec<SocketInfo>, socketio::Error>> {
        Box::pin(async move {
            let items = self
                .ask(kind::FETCH_SOCKETS, "fetchSockets", |rid| {
                    (
                        json!({"opts": wire::opts_value(opts), "requestId": rid}),
                        Vec::new(),
                    )
                })
                .await?;
            Ok(items
                .iter()
                .filter_map(|a| a.values().first().and_then(socket_info))
                .collect())
        })
    }

    fn remote_add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.append(
            kind::SOCKETS_JOIN,
            &json!({"opts": wire::opts_value(opts), "rooms": rooms}),
            &[],
        );
    }

    fn remote_del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.append(
            kind::SOCKETS_LEAVE,
            &json!({"opts": wire::opts_value(opts), "rooms": rooms}),
            &[],
        );
    }

    fn remote_disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.append(
            kind::DISCONNECT_SOCKETS,
            &json!({"opts": wire::opts_value(opts), "close": close}),
            &[],
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
            let request_id = random_id();
            let mut opts = opts.clone();
            opts.timeout = Some(timeout);
            let data = wire::broadcast_data(&wp, &opts, Some(&request_id));
            let (tx, mut rx) = mpsc::unbounded_channel();
            lock(&self.ack_requests).insert(request_id.clone(), tx);
            let mut responses = Vec::new();
            let mut complete = false;
            if self.publish(self.public.clone(), kind::BROADCAST, &data, &wp.attachments) {
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
        let v = json!({"packet": data.values()});
        if self.publish(
            self.public.clone(),
            kind::SERVER_SIDE_EMIT,
            &v,
            data.binary(),
        ) {
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
                .ask(kind::SERVER_SIDE_EMIT, "serverSideEmit", |rid| {
                    (
                        json!({"requestId": rid, "packet": data.values()}),
                        data.binary().to_vec(),
                    )
                })
                .await?;
            Ok(items
                .into_iter()
                .map(|a| {
                    // Binary answers come back inline, as the classic adapter gives them.
                    let v = a
                        .values()
                        .first()
                        .map(|v| inline_binary(v, a.binary()))
                        .unwrap_or(Value::Null);
                    Args::from_parts(vec![v], Vec::<Bytes>::new())
                })
                .collect())
        })
    }

    fn assigns_offsets(&self) -> bool {
        self.recovery.is_some()
    }

    fn persist_session(&self, session: SessionState) {
        let Some(r) = &self.recovery else { return };
        // The socket left for a recoverable reason: its record is kept for
        // the maximum disconnection duration (as a Node node writes it).
        let encoded = match wire::encode_session(&session) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(id = %session.sid, error = %e, "session not kept");
                return;
            }
        };
        let ttl = millis(r.max_disconnection_duration);
        let mut records = lock(&self.records);
        let last = records.remove(&session.sid).and_then(|rec| rec.last);
        let key = self.session_key(&session.pid);
        let mut cmd;
        match last {
            Some(last) => {
                cmd = redis::cmd("EVAL");
                cmd.arg(SET_IF_OURS)
                    .arg(1)
                    .arg(key)
                    .arg(last)
                    .arg(encoded)
                    .arg(ttl);
            }
            None => {
                cmd = redis::cmd("SET");
                cmd.arg(key).arg(encoded).arg("PX").arg(ttl);
            }
        }
        self.driver.run(cmd);
    }

    fn restore_session_async<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
    ) -> Option<AdapterFuture<'a, Option<RestoredSession>>> {
        self.recovery.as_ref()?;
        Some(Box::pin(self.restore(pid, offset)))
    }

    fn missed_after(&self, offset: &str, rooms: &[Room]) -> Option<Vec<EncodedPacket>> {
        let mark = StreamId::parse(offset).ok()?;
        let cache = lock(&self.cache);
        if mark < cache.floor {
            return None;
        }
        Some(
            cache
                .entries
                .iter()
                .filter(|(id, b, _)| *id > mark && b.selects(rooms))
                .map(|(_, _, p)| p.clone())
                .collect(),
        )
    }

    fn kept_packets(&self) -> usize {
        lock(&self.cache).entries.len()
    }

    fn close(&self) -> AdapterFuture<'_, ()> {
        Box::pin(async move {
            if let Some(w) = lock(&self.writer).take() {
                w.abort();
            }
            self.local.close().await;
            // Session records of the sockets that just left go out first.
            self.driver.flush().await;
        })
    }
}

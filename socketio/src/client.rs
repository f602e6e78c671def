//! One Engine.IO connection seen from the Socket.IO layer: decodes its
//! packets, runs namespace connects and event handlers in order, resolves
//! acks at once, enforces the connect timeout, and disconnects its sockets
//! when the connection ends.
//!
//! Ordering: every packet but ACK becomes a job; jobs of one connection run
//! one at a time, in arrival order. ACKs are resolved as they arrive, so a
//! running handler may await an ack from its own client. At most
//! `max_queued_events` jobs wait; then reading pauses (backpressure).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use engineio::Message;
use serde_json::Value;

use crate::adapter::SessionState;
use crate::config::Parser;
use crate::encoded::{Args, EncodedPacket};
use crate::handshake::Handshake;
use crate::io::IoInner;
use crate::ns::NsInner;
use crate::packet::{
    BinaryPacket, Decoder, Limits, Packet, PacketType, ParseError, decode_msgpack,
};
use crate::socket::{BoxFuture, DisconnectReason, Socket, SocketId};

pub(crate) struct Client {
    pub(crate) esock: engineio::Socket,
    io: Arc<IoInner>,
    /// One socket per joined namespace (at most `max_namespaces_per_client`,
    /// usually one): a list sized exactly, searched by namespace name.
    sockets: Mutex<Vec<Socket>>,
    joined: AtomicBool,
}

impl Client {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Socket>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, nsp: &str) -> Option<Socket> {
        self.lock().iter().find(|s| s.ns_name() == nsp).cloned()
    }

    fn all(&self) -> Vec<Socket> {
        self.lock().clone()
    }

    fn insert(&self, socket: Socket) {
        let mut list = self.lock();
        list.retain(|s| s.ns_name() != socket.ns_name());
        list.reserve_exact(1);
        list.push(socket);
    }

    pub(crate) fn remove_socket(&self, nsp: &str, id: &SocketId) {
        let removed = {
            let mut list = self.lock();
            let at = list
                .iter()
                .position(|s| s.ns_name() == nsp && s.id() == *id);
            let removed = at.map(|i| list.swap_remove(i));
            if list.is_empty() {
                *list = Vec::new();
            }
            removed
        };
        if let Some(s) = removed {
            self.io.remove_if_empty_dynamic(&s.inner_ns());
        }
    }

    /// `disconnect(true)`: every namespace gets a DISCONNECT, then the
    /// connection closes.
    pub(crate) async fn disconnect_all(&self) {
        for s in self.all() {
            s.close(DisconnectReason::ServerNamespaceDisconnect, true)
                .await;
        }
        self.esock.close();
    }

    async fn close_all(&self, reason: DisconnectReason) {
        for s in self.all() {
            s.close(reason, false).await;
        }
    }
}

enum Job {
    Connect {
        nsp: String,
        auth: Value,
    },
    Disconnect {
        nsp: String,
    },
    Event {
        nsp: String,
        event: String,
        args: Args,
        id: Option<u64>,
    },
}

/// What the reader decided for a decoded packet.
enum Decision {
    Queue(Job),
    Done,
    /// A protocol violation: the connection is closed with `parse error`.
    Invalid(&'static str),
}

/// Splits a Socket.IO v2 client's namespace into its path and its query as
/// an object: `/custom?token=abc&n=1` → `/custom`, `{"token":"abc","n":"1"}`.
///
/// The reference (`packages/socket.io/lib/client.ts`, `ondecoded`) runs
/// `url.parse(packet.nsp, true)` on every packet of a protocol 3 connection
/// and takes the query as the CONNECT's auth; a key given twice becomes an
/// array of its values, as Node's `querystring` does.
fn split_v3_nsp(nsp: String) -> (String, Value) {
    let Some((path, query)) = nsp.split_once('?') else {
        return (nsp, Value::Object(Default::default()));
    };
    let mut auth = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = Value::String(v.into_owned());
        match auth.get_mut(k.as_ref()) {
            Some(Value::Array(values)) => values.push(v),
            Some(first) => {
                let first = first.take();
                auth.insert(k.into_owned(), Value::Array(vec![first, v]));
            }
            None => {
                auth.insert(k.into_owned(), v);
            }
        }
    }
    (path.to_owned(), Value::Object(auth))
}

fn decide(client: &Client, bp: BinaryPacket) -> Decision {
    let BinaryPacket {
        packet,
        attachments,
    } = bp;
    let Packet {
        kind,
        nsp,
        id,
        data,
        ..
    } = packet;
    let (nsp, v3_auth) = if client.esock.protocol() == engineio::Protocol::V3 {
        let (nsp, auth) = split_v3_nsp(nsp);
        (nsp, Some(auth))
    } else {
        (nsp, None)
    };
    match kind {
        // A v2 CONNECT has no payload: its auth is the namespace's query.
        PacketType::Connect => Decision::Queue(Job::Connect {
            nsp,
            auth: v3_auth
                .or(data)
                .unwrap_or_else(|| Value::Object(Default::default())),
        }),
        PacketType::Disconnect => Decision::Queue(Job::Disconnect { nsp }),
        PacketType::Event | PacketType::BinaryEvent => {
            let Some(Value::Array(mut items)) = data else {
                return Decision::Invalid("event payload is not an array");
            };
            if items.is_empty() {
                return Decision::Invalid("event without a name");
            }
            let event = match items.remove(0) {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => return Decision::Invalid("event name is not a string"),
            };
            Decision::Queue(Job::Event {
                nsp,
                event,
                args: Args::from_parts(items, attachments),
                id,
            })
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let Some(Value::Array(items)) = data else {
                return Decision::Invalid("ack payload is not an array");
            };
            // An ACK without an id answers nothing; ignored, as the reference does.
            let Some(id) = id else {
                return Decision::Done;
            };
            if let Some(socket) = client.get(&nsp) {
                socket.resolve_ack(id, Args::from_parts(items, attachments));
            }
            Decision::Done
        }
        _ => Decision::Invalid("packet type not allowed from a client"),
    }
}

fn run_job(client: Arc<Client>, job: Job) -> BoxFuture<()> {
    Box::pin(async move {
        match job {
            Job::Connect { nsp, auth } => connect(&client, nsp, auth).await,
            Job::Disconnect { nsp } => match client.get(&nsp) {
                Some(s) => {
                    s.close(DisconnectReason::ClientNamespaceDisconnect, false)
                        .await
                }
                None => protocol_error(&client, "disconnect from a namespace not joined").await,
            },
            Job::Event {
                nsp,
                event,
                args,
                id,
            } => match client.get(&nsp) {
                Some(s) => s.dispatch(event, args, id).await,
                None => protocol_error(&client, "event for a namespace not joined").await,
            },
        }
    })
}

/// The session kept for `pid`, the events it missed after `offset` and the
/// log position they go up to, or `None`.
async fn restore(
    ns: &NsInner,
    pid: &str,
    offset: &str,
) -> Option<(SessionState, Vec<EncodedPacket>, String)> {
    match ns.adapter().restore_session_async(pid, offset) {
        // A store outside this process (e.g. Redis): the adapter gives the mark.
        Some(restoring) => restoring.await.map(|r| (r.session, r.missed, r.mark)),
        None => {
            let _order = ns.recovery_order();
            let (session, missed) = ns.adapter().restore_session(pid, offset)?;
            let mark = ns
                .adapter()
                .last_offset()
                .unwrap_or_else(|| offset.to_owned());
            Some((session, missed, mark))
        }
    }
}

async fn protocol_error(client: &Client, why: &str) {
    tracing::warn!(sid = %client.esock.sid(), why, "protocol error; closing connection");
    client.close_all(DisconnectReason::ParseError).await;
    client.esock.close();
}

fn send_packet(client: &Client, packet: Packet) {
    let packet = EncodedPacket::packet(client.io.config.parser, packet);
    let _ = client.esock.send_slice(packet.messages());
}

async fn connect(client: &Arc<Client>, nsp: String, auth: Value) {
    if client.get(&nsp).is_some() {
        return protocol_error(client, "CONNECT to a namespace already joined").await;
    }
    let io = &client.io;
    if client.lock().len() >= io.config.max_namespaces_per_client {
        tracing::warn!(sid = %client.esock.sid(), %nsp, "too many namespaces on one connection");
        return send_packet(
            client,
            Packet::connect_error(&nsp, "Too many namespaces", None),
        );
    }
    let Some(ns) = io.namespace_for(&nsp) else {
        tracing::info!(sid = %client.esock.sid(), %nsp, "CONNECT to an unknown namespace");
        return send_packet(
            client,
            Packet::connect_error(&nsp, "Invalid namespace", None),
        );
    };
    // Cleans up on every path that does not join, cancellation included
    // (a restore from an external store is awaited below).
    let mut connecting = Connecting {
        io: io.clone(),
        ns: ns.clone(),
        id: None,
        joined: false,
    };
    let v3 = client.esock.protocol() == engineio::Protocol::V3;
    // Connection state recovery: a `pid` and an `offset` of a kept session
    // (v2 clients get no pid, so they cannot recover). Taken under the
    // ordering lock, with the log's newest offset at that moment (`mark`):
    // what is emitted from then until the socket joins is read after the
    // mark when it joins (see `join`).
    let recovery = io.config.connection_state_recovery.clone().filter(|_| !v3);
    let credentials = recovery.as_ref().and_then(|_| {
        let pid = auth.get("pid")?.as_str()?;
        let offset = auth.get("offset")?.as_str()?;
        Some((pid.to_owned(), offset.to_owned()))
    });
    let restored = match &credentials {
        None => None,
        Some((pid, offset)) => match restore(&ns, pid, offset).await {
            Some(r) => Some(r),
            // Nothing kept yet: the session's socket may still be leaving
            // this node, its connection closed an instant ago (the client
            // reconnected without waiting for the server): wait for it, then
            // look again.
            None if ns.wait_pid_left(pid, io.config.connect_timeout).await => {
                restore(&ns, pid, offset).await
            }
            None => None,
        },
    };
    if let Some((session, _, _)) = &restored {
        // With a shared session store, the session's socket may still be here:
        // its old connection is dead but not yet detected. It goes first
        // (without being kept again), so that its leaving cannot undo the
        // recovered socket's rooms.
        if let Some(old) = ns.get(&session.sid) {
            tracing::debug!(id = %session.sid, "recovered session's old socket still here; closing it");
            old.close(DisconnectReason::ServerNamespaceDisconnect, false)
                .await;
        }
    }
    let mut handshake = Handshake::new(client.esock.handshake(), auth);
    handshake.protocol = client.esock.protocol();
    // A v2 client computes its socket's id itself: the Engine.IO sid on `/`,
    // `<nsp>#<sid>` elsewhere (the reference's socket.ts constructor, for
    // `client.conn.protocol === 3`). Our socket ids are session-id shaped, so
    // a v3 socket's id is the Engine.IO sid on every namespace, and on a
    // custom namespace it also joins the room `<nsp>#<sid>`: rooms the client
    // addresses by its own `socket.id` reach it.
    let id = if v3 {
        client.esock.sid()
    } else {
        SocketId::generate()
    };
    let (socket, recovered) = match restored {
        Some((session, missed, mark)) => (
            Socket::restored(ns.clone(), client.clone(), handshake, &session),
            Some(Recovered {
                rooms: session.rooms,
                missed,
                mark,
            }),
        ),
        None => (Socket::new(ns.clone(), client.clone(), handshake, id), None),
    };
    connecting.id = Some(socket.id());
    let skip_middlewares = recovered.is_some() && recovery.is_some_and(|r| r.skip_middlewares);
    let middlewares: Vec<_> = if skip_middlewares {
        Vec::new()
    } else {
        io.server_middlewares()
            .into_iter()
            .chain(ns.handlers.middlewares())
            .collect()
    };
    for mw in middlewares {
        if let Err(e) = mw(socket.clone()).await {
            tracing::info!(sid = %client.esock.sid(), %nsp, message = %e.message, "connection refused by middleware");
            let mut refusal = Packet::connect_error(&nsp, &e.message, e.data);
            if v3 {
                // Protocol v4's ERROR carries `err.data || err.message`
                // (the reference's namespace.ts `_add`, protocol 3).
                refusal.data = Some(e_data_or_message(refusal.data.take()));
            }
            return send_packet(client, refusal);
        }
    }
    let Some((missed, rooms)) = join(client, &ns, &socket, recovered.as_ref()) else {
        return;
    };
    connecting.joined = true;
    drop(connecting);
    // Told here, out of `join`'s ordering lock (an observer emits, and may
    // emit on this very namespace): the rooms first, as the reference's
    // adapter reports them before its `connection` event.
    if let Some(o) = ns.observer() {
        for room in &rooms {
            o.room_joined(&ns.name, room, &socket.id());
        }
        o.socket_connected(&socket);
    }
    tracing::debug!(
        sid = %client.esock.sid(),
        id = %socket.id(),
        %nsp,
        recovered = socket.recovered(),
        missed,
        "socket connected"
    );
    if let Some(handler) = ns.handlers.on_connect() {
        handler(socket).await;
    }
}

/// What a recovering socket gets back: its rooms, the events it missed up to
/// the restore, and the log's newest offset then.
struct Recovered {
    rooms: Vec<crate::adapter::Room>,
    missed: Vec<EncodedPacket>,
    mark: String,
}

/// Joins `socket` to its namespace and rooms, and queues the CONNECT reply
/// then, for a recovering socket, the events it missed. With recovery, all of
/// it under the namespace's ordering lock, so that each event emitted
/// meanwhile is in the replay or delivered live, exactly once and in order.
/// Returns the number of replayed events and the rooms joined, or `None` if
/// the connection closed.
/// Synchronous on purpose: the lock is never held across an await.
fn join(
    client: &Arc<Client>,
    ns: &Arc<crate::ns::NsInner>,
    socket: &Socket,
    recovered: Option<&Recovered>,
) -> Option<(usize, Vec<crate::adapter::Room>)> {
    let _order = ns.recovery_order();
    if !client.esock.is_open() {
        return None;
    }
    // The events of the time between the restore and now (middlewares).
    let tail = recovered.map(|r| {
        ns.adapter()
            .missed_after(&r.mark, &r.rooms)
            .unwrap_or_else(|| {
                tracing::warn!(id = %socket.id(), "recovery log moved past the restore point; events emitted meanwhile cannot be replayed");
                Vec::new()
            })
    });
    socket.set_connected();
    ns.insert_socket(socket.clone());
    let v3 = client.esock.protocol() == engineio::Protocol::V3;
    let mut rooms = vec![socket.id().as_str().to_owned()];
    if v3 && ns.name != "/" {
        rooms.push(format!("{}#{}", ns.name, socket.id()));
    }
    if let Some(r) = recovered {
        rooms.extend(r.rooms.iter().cloned());
    }
    ns.adapter().add_all(&socket.id(), &rooms);
    client.insert(socket.clone());
    client.joined.store(true, Ordering::Release);
    let reply = match socket.pid() {
        // Protocol v4 (v2 clients): a plain `40` / `40/nsp,` (the
        // reference's socket.ts `_onconnect`).
        _ if v3 => None,
        Some(pid) => Some(serde_json::json!({ "sid": socket.id().as_str(), "pid": pid })),
        // socket.io `lib/socket.ts` `_onconnect`: `{ sid, pid }` with `pid` undefined
        // without recovery, which JSON drops and the msgpack parser writes (d4 00 00).
        None if client.io.config.parser == crate::config::Parser::Msgpack => {
            Some(serde_json::json!({
                "sid": socket.id().as_str(),
                "pid": crate::msgpack::undefined()
            }))
        }
        None => Some(serde_json::json!({ "sid": socket.id().as_str() })),
    };
    send_packet(client, Packet::connect(ns.name.as_str(), reply));
    let mut replayed = 0;
    if let Some(r) = recovered {
        for packet in r.missed.iter().chain(tail.iter().flatten()) {
            let _ = client.esock.send_slice(packet.messages());
            replayed += 1;
        }
    }
    Some((replayed, rooms))
}

/// The v3 ERROR payload of a middleware refusal: the error's data if it is
/// truthy in JavaScript's sense, its message (a JSON string) otherwise
/// (`err.data || err.message`); `body` is the v5 `{"message", "data"?}` object.
fn e_data_or_message(body: Option<Value>) -> Value {
    let truthy = |v: &Value| match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    };
    match body {
        Some(Value::Object(mut m)) => match m.remove("data") {
            Some(data) if truthy(&data) => data,
            _ => m.remove("message").unwrap_or(Value::Null),
        },
        other => other.unwrap_or(Value::Null),
    }
}

/// A socket between CONNECT and joining (see `IoInner::namespace_for`).
/// Unless it joined, the rooms its middlewares joined are left.
struct Connecting {
    io: Arc<IoInner>,
    ns: Arc<crate::ns::NsInner>,
    /// Set once the socket exists (a restore may be awaited before).
    id: Option<SocketId>,
    joined: bool,
}

impl Drop for Connecting {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.joined, &self.id) {
            self.ns.leave_all_rooms(id);
        }
        self.io.connect_done(&self.ns);
    }
}

/// Serves one Engine.IO connection until it closes.
pub(crate) async fn run(
    io: Arc<IoInner>,
    esock: engineio::Socket,
    mut incoming: engineio::Incoming,
) {
    let limits = Limits {
        max_attachments: io.config.max_attachments,
        max_nsp_len: io.config.max_namespace_len,
        ..Limits::default()
    };
    let parser = io.config.parser;
    let max_queued = io.config.max_queued_events;
    let connect_timeout = io.config.connect_timeout;
    let client = Arc::new(Client {
        esock,
        io,
        sockets: Mutex::new(Vec::new()),
        joined: AtomicBool::new(false),
    });
    let mut decoder = Decoder::new(limits);
    // Jobs wait here only while another runs: an idle connection keeps no
    // queue allocation.
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut current: Option<BoxFuture<()>> = None;
    // Boxed, and dropped once a namespace is joined: most of a connection's
    // life needs no connect timer.
    let mut connect_deadline = Some(Box::pin(tokio::time::sleep(connect_timeout)));
    // A Socket.IO v2 client sends no CONNECT for `/`: the reference connects
    // it as soon as the Engine.IO handshake is done, with auth `{}`
    // (`packages/socket.io/lib/index.ts`, `onconnection`: `if (conn.protocol
    // === 3) client.connect("/")`).
    if client.esock.protocol() == engineio::Protocol::V3 {
        queue.push_back(Job::Connect {
            nsp: "/".to_owned(),
            auth: Value::Object(Default::default()),
        });
    }
    let mut invalid = false;
    let mut close_now = false;

    loop {
        if current.is_none() {
            current = queue.pop_front().map(|job| run_job(client.clone(), job));
            if queue.is_empty() {
                queue = VecDeque::new();
            }
        }
        if connect_deadline.is_some() && client.joined.load(Ordering::Acquire) {
            connect_deadline = None;
        }
        tokio::select! {
            () = async {
                match current.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if current.is_some() => {
                current = None;
            }
            msg = incoming.recv(), if queue.len() < max_queued && !invalid => {
                let Some(msg) = msg else { break };
                let decoded = match (parser, msg) {
                    (Parser::Json, Message::Text(t)) => decoder.feed_text(t.as_str()),
                    (Parser::Json, Message::Binary(b)) => decoder.feed_binary(b),
                    // socket.io-msgpack-parser: every packet is one binary message.
                    (Parser::Msgpack, Message::Binary(b)) => decode_msgpack(&b, &limits).map(Some),
                    (Parser::Msgpack, Message::Text(_)) => Err(ParseError::TextWithMsgpack),
                };
                let why = match decoded {
                    Ok(None) => continue,
                    Ok(Some(bp)) => match decide(&client, bp) {
                        Decision::Queue(job) if current.is_none() && queue.is_empty() => {
                            current = Some(run_job(client.clone(), job));
                            continue
                        }
                        Decision::Queue(job) => { queue.push_back(job); continue }
                        Decision::Done => continue,
                        Decision::Invalid(why) => why.to_owned(),
                    },
                    Err(e) => e.to_string(),
                };
                tracing::warn!(sid = %client.esock.sid(), error = %why, "invalid packet; closing connection");
                invalid = true;
                close_now = true;
                queue = VecDeque::new();
                current = None;
            }
            () = async {
                match connect_deadline.as_mut() {
                    Some(d) => d.await,
                    None => std::future::pending().await,
                }
            }, if connect_deadline.is_some() => {
                connect_deadline = None;
                tracing::info!(sid = %client.esock.sid(), "no namespace joined within connect_timeout; closing");
                client.esock.close();
            }
        }
        if close_now {
            // Outside the `select!` (whose temporaries would otherwise be
            // kept across this wait in every connection's task), and boxed:
            // this rare state takes no room in the task.
            close_now = false;
            Box::pin(client.close_all(DisconnectReason::ParseError)).await;
            client.esock.close();
        }
        if invalid && current.is_none() && queue.is_empty() {
            // Wait for the engine to finish closing.
            while incoming.recv().await.is_some() {}
            break;
        }
    }
    // The connection is gone: disconnect everyone while the running handler
    // finishes (concurrently: it may be awaiting an ack from this client,
    // which only the disconnect resolves).
    let reason = client
        .esock
        .close_reason()
        .map(DisconnectReason::from_engine)
        .unwrap_or(DisconnectReason::TransportClose);
    let close = Box::pin(client.close_all(reason));
    match current.take() {
        Some(f) => {
            tokio::join!(f, close);
        }
        None => close.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v3_namespace_query_is_the_auth() {
        assert_eq!(
            split_v3_nsp("/custom?token=abc&n=1".to_owned()),
            ("/custom".to_owned(), json!({"token": "abc", "n": "1"}))
        );
        assert_eq!(
            split_v3_nsp("/a?k=1&k=2&k=3&e=%C3%A9+x".to_owned()),
            ("/a".to_owned(), json!({"k": ["1", "2", "3"], "e": "é x"}))
        );
        assert_eq!(split_v3_nsp("/".to_owned()), ("/".to_owned(), json!({})));
        assert_eq!(split_v3_nsp("/b?".to_owned()), ("/b".to_owned(), json!({})));
    }

    #[test]
    fn v3_refusal_carries_data_or_message() {
        let refusal = |data| Packet::connect_error("/mw", "Not authorized", data).data;
        assert_eq!(
            e_data_or_message(refusal(Some(json!({"reason": "x"})))),
            json!({"reason": "x"})
        );
        assert_eq!(e_data_or_message(refusal(None)), json!("Not authorized"));
        for falsy in [json!(0), json!(""), json!(false), Value::Null] {
            assert_eq!(
                e_data_or_message(refusal(Some(falsy))),
                json!("Not authorized")
            );
        }
    }
}

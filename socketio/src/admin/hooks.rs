//! What the admin hears and does: the engine's counts (both modes), the
//! sockets' connects, disconnects, rooms and events (development mode), the
//! login of the UI, and the UI's commands.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::buckets::{Kind, Reason};
use super::serialize::{
    SocketView, admin_details, client_id, data_with_admin, now_iso, public_data, truthy,
};
use super::{Admin, AdminAuth, auth};
use crate::encoded::{Args, EncodedPacket};
use crate::ns::{ConnectError, Namespace};
use crate::observe::SocketObserver;
use crate::remote::RemoteSocket;
use crate::socket::{DisconnectReason, Socket, SocketId};

impl engineio::EngineObserver for Admin {
    fn session_opened(&self, _sid: engineio::Sid, transport: engineio::Transport) {
        self.buckets.add(self.second(), Kind::RawConnection, 1);
        if transport == engineio::Transport::Polling {
            self.polling.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn session_upgraded(&self, sid: engineio::Sid) {
        self.polling.fetch_sub(1, Ordering::Relaxed);
        if !self.is_dev() || !self.watched() {
            return;
        }
        let sockets = self.clients.get(&sid).map(|l| l.value().clone());
        for (nsp, id) in sockets.unwrap_or_default() {
            self.emit(
                "socket_updated",
                vec![json!({"id": id.as_str(), "nsp": nsp, "transport": "websocket"})],
                Vec::new(),
            );
        }
    }

    fn session_closed(
        &self,
        sid: engineio::Sid,
        reason: engineio::CloseReason,
        transport: engineio::Transport,
    ) {
        self.buckets.add(
            self.second(),
            Kind::RawDisconnection(Reason::from_engine(reason)),
            1,
        );
        if transport == engineio::Transport::Polling {
            self.polling.fetch_sub(1, Ordering::Relaxed);
        }
        self.clients.remove(&sid);
    }

    fn message_received(&self, message: &engineio::Message) {
        let s = self.second();
        self.buckets.add(s, Kind::PacketsIn, 1);
        self.buckets.add(s, Kind::BytesIn, message.len() as u64);
    }

    fn messages_sent(&self, messages: usize, bytes: usize) {
        let s = self.second();
        self.buckets.add(s, Kind::PacketsOut, messages as u64);
        self.buckets.add(s, Kind::BytesOut, bytes as u64);
    }
}

/// A connected socket of this node as the UI shows it.
fn local_view(socket: &Socket, handshake: &Value, rooms: &[String], data: &Value) -> Value {
    let id = socket.id();
    SocketView {
        id: id.as_str(),
        client_id: Some(client_id(socket.engine_socket().sid().as_str())),
        transport: Some(socket.transport().as_str().to_owned()),
        nsp: socket.ns_name(),
        data,
        handshake,
        rooms,
    }
    .to_json()
}

/// A socket from `fetch_sockets` (this node's or another's) as the UI shows it.
pub(super) fn remote_view(nsp: &str, s: &RemoteSocket) -> Value {
    if let Some(local) = s.as_local() {
        return local_view(local, s.handshake(), s.rooms(), s.data_value());
    }
    let (client_id, transport) = admin_details(s.data_value());
    let id = s.id();
    SocketView {
        id: id.as_str(),
        client_id,
        transport,
        nsp,
        data: s.data_value(),
        handshake: s.handshake(),
        rooms: s.rooms(),
    }
    .to_json()
}

impl Admin {
    fn is_admin_ns(&self, nsp: &str) -> bool {
        nsp == self.config.namespace
    }

    /// `event_received` / `event_sent`: `(nsp, id, [event, ...args], date)`,
    /// binary arguments kept.
    fn emit_event(&self, name: &str, nsp: &str, id: &SocketId, event: &str, args: &Args) {
        let mut data = Vec::with_capacity(args.values.len() + 1);
        data.push(Value::from(event));
        data.extend(args.values.iter().cloned());
        self.emit(
            name,
            vec![
                Value::from(nsp),
                Value::from(id.as_str()),
                Value::Array(data),
                Value::from(now_iso()),
            ],
            args.bins.clone(),
        );
    }

    fn emit_room(&self, name: &str, nsp: &str, room: &str, id: &SocketId) {
        self.emit(
            name,
            vec![
                Value::from(nsp),
                Value::from(room),
                Value::from(id.as_str()),
                Value::from(now_iso()),
            ],
            Vec::new(),
        );
    }
}

impl SocketObserver for Admin {
    fn socket_connected(&self, socket: &Socket) {
        if self.is_admin_ns(socket.ns_name()) {
            self.local_admins.fetch_add(1, Ordering::Relaxed);
        }
        self.clients
            .entry(socket.engine_socket().sid())
            .or_default()
            .push((socket.ns_name().to_owned(), socket.id()));
        if !self.watched() {
            return;
        }
        let view = local_view(
            socket,
            &socket.handshake().to_json(),
            &socket.rooms(),
            &socket.data_value(),
        );
        self.emit(
            "socket_connected",
            vec![view, Value::from(now_iso())],
            Vec::new(),
        );
    }

    fn socket_disconnected(&self, socket: &Socket, reason: DisconnectReason) {
        if self.is_admin_ns(socket.ns_name()) {
            self.local_admins.fetch_sub(1, Ordering::Relaxed);
        }
        let sid = socket.engine_socket().sid();
        let id = socket.id();
        let emptied = self.clients.get_mut(&sid).is_some_and(|mut l| {
            l.retain(|(_, s)| *s != id);
            l.is_empty()
        });
        if emptied {
            self.clients.remove_if(&sid, |_, l| l.is_empty());
        }
        if !self.watched() {
            return;
        }
        self.emit(
            "socket_disconnected",
            vec![
                Value::from(socket.ns_name()),
                Value::from(id.as_str()),
                Value::from(reason.as_str()),
                Value::from(now_iso()),
            ],
            Vec::new(),
        );
    }

    fn room_joined(&self, nsp: &str, room: &str, id: &SocketId) {
        self.emit_room("room_joined", nsp, room, id);
    }

    fn room_left(&self, nsp: &str, room: &str, id: &SocketId) {
        self.emit_room("room_left", nsp, room, id);
    }

    fn wants_events(&self) -> bool {
        self.watched()
    }

    fn event_received(&self, socket: &Socket, event: &str, args: &Args) {
        if !self.is_admin_ns(socket.ns_name()) {
            self.emit_event(
                "event_received",
                socket.ns_name(),
                &socket.id(),
                event,
                args,
            );
        }
    }

    fn event_sent(&self, nsp: &str, id: &SocketId, event: &str, args: &Args) {
        if !self.is_admin_ns(nsp) {
            self.emit_event("event_sent", nsp, id, event, args);
        }
    }

    fn data_changed(&self, socket: &Socket) {
        if !self.watched() {
            return;
        }
        self.emit(
            "socket_updated",
            vec![json!({
                "id": socket.id().as_str(),
                "nsp": socket.ns_name(),
                "data": public_data(&socket.data_value()),
            })],
            Vec::new(),
        );
    }

    fn shared_data(&self, socket: &Socket, data: Value) -> Value {
        data_with_admin(
            data,
            &client_id(socket.engine_socket().sid().as_str()),
            socket.transport().as_str(),
        )
    }
}

/// The admin namespace's middleware with basic auth: a session id issued
/// before, or the username and the password (then a new session id goes to
/// the UI as `session`, before the CONNECT reply, as the reference sends it);
/// anything else is refused with `invalid credentials`.
pub(super) async fn authenticate(admin: Arc<Admin>, socket: Socket) -> Result<(), ConnectError> {
    let AdminAuth::Basic {
        username,
        password_hash,
    } = &admin.config.auth
    else {
        return Ok(());
    };
    let given = &socket.handshake().auth;
    if let Some(id) = given.get("sessionId").and_then(Value::as_str) {
        if admin.sessions.contains(id, Instant::now()) {
            tracing::debug!("admin: authenticated by session id");
            return Ok(());
        }
    }
    let user_ok = given.get("username").and_then(Value::as_str) == Some(username.as_str());
    if let (true, Some(password)) = (user_ok, given.get("password").and_then(Value::as_str)) {
        let ok = {
            let _permit = admin.verifying.acquire().await;
            let (p, h) = (password.to_owned(), password_hash.clone());
            tokio::task::spawn_blocking(move || auth::verify(&p, &h))
                .await
                .unwrap_or(false)
        };
        if ok {
            let id = SocketId::generate().as_str().to_owned();
            admin.sessions.insert(id.clone(), Instant::now());
            if let Ok(args) = Args::one(&id) {
                let packet =
                    EncodedPacket::event(socket.parser(), socket.ns_name(), "session", args, None);
                let _ = socket.engine_socket().send_slice(packet.messages());
            }
            tracing::debug!("admin: authenticated by credentials");
            return Ok(());
        }
    }
    tracing::info!("admin: invalid credentials");
    Err(ConnectError::new("invalid credentials"))
}

/// Event names a Socket.IO server refuses to emit (the reference's
/// `RESERVED_EVENTS`).
const RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

impl Admin {
    fn namespace(&self, args: &Args) -> Option<Namespace> {
        let name = args.values.first()?.as_str()?;
        let found = self.io.upgrade()?.namespace_by_name(name);
        if found.is_none() {
            tracing::debug!(
                nsp = name,
                "admin: command for an unknown namespace ignored"
            );
        }
        found
    }

    /// The `filter` argument: a room (a socket id is one), when truthy.
    fn filter(args: &Args, at: usize) -> Option<String> {
        args.values
            .get(at)
            .filter(|v| truthy(v))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// `emit(nsp, filter, event, ...args)`.
    fn command_emit(&self, args: &Args) {
        let (Some(ns), Some(event)) = (
            self.namespace(args),
            args.values.get(2).and_then(Value::as_str),
        ) else {
            return;
        };
        if RESERVED.contains(&event) {
            tracing::debug!(event, "admin: reserved event name; not emitted");
            return;
        }
        let rest = Args::from_parts(
            args.values.get(3..).unwrap_or_default().to_vec(),
            args.bins.clone(),
        );
        let op = match Self::filter(args, 1) {
            Some(room) => ns.to(room),
            None => ns.all(),
        };
        let _ = op.emit_args(event, rest);
    }

    /// `join(nsp, room, filter?)` and `leave(nsp, room, filter?)`.
    fn command_rooms(&self, args: &Args, join: bool) {
        let (Some(ns), Some(room)) = (
            self.namespace(args),
            args.values.get(1).and_then(Value::as_str),
        ) else {
            return;
        };
        let op = match Self::filter(args, 2) {
            Some(f) => ns.to(f),
            None => ns.all(),
        };
        if join {
            op.sockets_join(room);
        } else {
            op.sockets_leave(room);
        }
    }

    /// `_disconnect(nsp, close, filter?)`.
    async fn command_disconnect(&self, args: &Args) {
        let Some(ns) = self.namespace(args) else {
            return;
        };
        let close = args.values.get(1).is_some_and(truthy);
        let op = match Self::filter(args, 2) {
            Some(f) => ns.to(f),
            None => ns.all(),
        };
        op.disconnect_sockets(close).await;
    }
}

/// The UI's commands on one admin socket (not in read-only mode). They are
/// sent without ack and answered by nothing but their effect.
pub(super) fn register_commands(admin: &Arc<Admin>, socket: &Socket) {
    let a = admin.clone();
    socket.on("emit", move |_s: Socket, args: Args| {
        let a = a.clone();
        async move { a.command_emit(&args) }
    });
    let a = admin.clone();
    socket.on("join", move |_s: Socket, args: Args| {
        let a = a.clone();
        async move { a.command_rooms(&args, true) }
    });
    let a = admin.clone();
    socket.on("leave", move |_s: Socket, args: Args| {
        let a = a.clone();
        async move { a.command_rooms(&args, false) }
    });
    let a = admin.clone();
    socket.on("_disconnect", move |_s: Socket, args: Args| {
        let a = a.clone();
        async move { a.command_disconnect(&args).await }
    });
}

/// The machine's host name (Node's `os.hostname()`).
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Seconds since this process started (Node's `process.uptime()`), from
/// `/proc` (Linux, with the kernel's usual 100 ticks per second); `None`
/// elsewhere.
pub(super) fn process_uptime() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    // Field 22 (`starttime`); the fields after the name start at field 3.
    let start_ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let system_up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let up = system_up - start_ticks / 100.0;
    (up >= 0.0).then_some(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_and_hostname_are_read() {
        assert!(!hostname().is_empty());
        if cfg!(target_os = "linux") {
            let up = process_uptime().unwrap();
            assert!((0.0..86_400.0 * 365.0).contains(&up), "{up}");
        }
    }
}

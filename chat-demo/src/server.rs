//! The Socket.IO wiring: the nickname middleware, the events the page sends,
//! and the emits that follow from what [`Chat`] answers.
//!
//! Client → server (every one answered through its ack with
//! `{ok: true, ...}` or `{ok: false, error}`):
//! - `join {room, create}` → `{ok, room, epoch, history, users}`
//! - `leave room` → `{ok, room}`
//! - `message {room, text}` → `{ok, message}` or, for `/msg`, `{ok, dm}`
//! - `typing {room, typing}` (no ack; forwarded as a volatile emit)
//!
//! Server → client: `welcome {nick, epoch}`, `rooms [{name, count}]` (to everyone on
//! every change), `users {room, users}`, `message`, `dm`, `notice {room, text}`,
//! `typing {room, nick, typing}`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use socketio::{AckSender, Args, ConnectError, Namespace, Socket, SocketIo};

use crate::chat::{Chat, ChatError, Sent, validate_room};

/// The chat state shared by every handler. The lock is never held across an
/// `.await` or while emitting.
#[derive(Debug)]
struct State {
    chat: Mutex<Chat>,
    /// Start time of this server (ms): message ids restart with the server,
    /// so clients tell messages apart by `epoch:id`.
    epoch: u64,
}

impl State {
    fn chat(&self) -> MutexGuard<'_, Chat> {
        self.chat.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Deserialize)]
struct JoinReq {
    room: String,
    #[serde(default)]
    create: bool,
}

#[derive(Debug, Deserialize)]
struct MessageReq {
    room: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct TypingReq {
    room: String,
    typing: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The first argument as `T`, or the error to ack.
fn first_arg<T: DeserializeOwned>(args: &Args) -> Result<T, String> {
    args.get::<T>(0).map_err(|_| "Malformed request".to_owned())
}

fn ack_ok(ack: AckSender, body: Value) {
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.insert("ok".into(), Value::Bool(true));
    }
    let _ = ack.send(&body);
}

fn ack_err(ack: AckSender, error: &str) {
    let _ = ack.send(&json!({ "ok": false, "error": error }));
}

/// Pushes the room list to everyone.
fn push_rooms(ns: &Namespace, state: &State) {
    let rooms = state.chat().rooms();
    if let Err(e) = ns.emit("rooms", &rooms) {
        tracing::warn!(error = %e, "room list not sent");
    }
}

/// Pushes the user list of `room` to its members.
fn push_users(ns: &Namespace, room: &str, users: &[String]) {
    let _ = ns
        .to(room)
        .emit("users", &json!({ "room": room, "users": users }));
}

/// Builds the chat on `io`: middleware and connection handler of `/`.
pub(crate) fn install(io: &SocketIo) {
    let state = Arc::new(State {
        chat: Mutex::new(Chat::new()),
        epoch: now_ms(),
    });

    let mw_state = state.clone();
    io.of("/").use_middleware(move |socket: Socket| {
        let state = mw_state.clone();
        async move {
            let auth = &socket.handshake().auth;
            let nick = auth.get("nick").and_then(Value::as_str).unwrap_or("");
            let key = auth.get("key").and_then(Value::as_str).unwrap_or("");
            let result = state
                .chat()
                .reserve(socket.id().as_str(), nick, key, Instant::now());
            result.map_err(|e| {
                tracing::info!(nick, error = %e, "nickname refused");
                ConnectError::new(e.to_string())
            })
        }
    });

    let ns = io.of("/");
    io.of("/").on_connection(move |socket: Socket| {
        let state = state.clone();
        let ns = ns.clone();
        async move { on_connection(socket, state, ns).await }
    });
}

async fn on_connection(socket: Socket, state: Arc<State>, ns: Namespace) {
    let id = socket.id().as_str().to_owned();
    let (connected, online) = {
        let mut chat = state.chat();
        (chat.connect(&id), chat.online())
    };
    let connected = match connected {
        Ok(c) => c,
        Err(e) => {
            // The reservation expired and someone else took the name.
            let _ = socket.emit("fatal", &e.to_string());
            socket.disconnect(false).await;
            return;
        }
    };
    // Registered before any `.await`, so a socket that completed its
    // connection always releases its nickname.
    {
        let state = state.clone();
        let ns = ns.clone();
        socket.on_disconnect(move |socket, reason| {
            let state = state.clone();
            let ns = ns.clone();
            async move { on_disconnect(&socket, &state, &ns, reason) }
        });
    }
    tracing::info!(nick = %connected.nick, id = %id, transport = ?socket.transport(), online, "user online");
    register_events(&socket, &state, &ns);
    if let Some((old_id, rooms)) = connected.replaced {
        // The same tab reconnected before its old connection timed out: the
        // new socket inherits the rooms, the old one is dropped quietly.
        socket.join(rooms);
        ns.to(old_id).disconnect_sockets(false).await;
    }
    let _ = socket.emit(
        "welcome",
        &json!({ "nick": connected.nick, "epoch": state.epoch }),
    );
    let rooms = state.chat().rooms();
    let _ = socket.emit("rooms", &rooms);
}

fn on_disconnect(
    socket: &Socket,
    state: &State,
    ns: &Namespace,
    reason: socketio::DisconnectReason,
) {
    let departed = state.chat().disconnect(socket.id().as_str());
    let Some(departed) = departed else {
        return;
    };
    tracing::info!(nick = %departed.nick, %reason, "user offline");
    for room in &departed.rooms {
        let users = state.chat().users_in(room);
        let _ = ns.to(room.as_str()).emit(
            "notice",
            &json!({ "room": room, "text": format!("{} left", departed.nick) }),
        );
        let _ = ns.to(room.as_str()).emit(
            "typing",
            &json!({ "room": room, "nick": departed.nick, "typing": false }),
        );
        push_users(ns, room, &users);
    }
    if !departed.rooms.is_empty() {
        push_rooms(ns, state);
    }
}

fn register_events(socket: &Socket, state: &Arc<State>, ns: &Namespace) {
    let (st, n) = (state.clone(), ns.clone());
    socket.on_args("join", move |socket, args, ack| {
        on_join(socket, args, ack, st.clone(), n.clone());
        async {}
    });
    let (st, n) = (state.clone(), ns.clone());
    socket.on_args("leave", move |socket, args, ack| {
        on_leave(socket, args, ack, st.clone(), n.clone());
        async {}
    });
    let (st, n) = (state.clone(), ns.clone());
    socket.on_args("message", move |socket, args, ack| {
        on_message(socket, args, ack, st.clone(), n.clone());
        async {}
    });
    let st = state.clone();
    socket.on_args("typing", move |socket, args, _ack| {
        on_typing(socket, args, st.clone());
        async {}
    });
}

fn on_join(socket: Socket, args: Args, ack: AckSender, state: Arc<State>, ns: Namespace) {
    let req = match first_arg::<JoinReq>(&args) {
        Ok(r) => r,
        Err(e) => return ack_err(ack, &e),
    };
    let id = socket.id();
    let joined = state
        .chat()
        .join(id.as_str(), &req.room, req.create, Instant::now());
    let joined = match joined {
        Ok(j) => j,
        Err(e) => return ack_err(ack, &e.to_string()),
    };
    let room = req.room;
    if !joined.already {
        socket.join(room.as_str());
        tracing::debug!(nick = %joined.nick, %room, created = joined.created, "joined");
        let _ = socket.to(room.as_str()).emit(
            "notice",
            &json!({ "room": room, "text": format!("{} joined", joined.nick) }),
        );
        push_users(&ns, &room, &joined.users);
        push_rooms(&ns, &state);
    }
    ack_ok(
        ack,
        json!({
            "room": room,
            "epoch": state.epoch,
            "history": joined.history,
            "users": joined.users,
        }),
    );
}

fn on_leave(socket: Socket, args: Args, ack: AckSender, state: Arc<State>, ns: Namespace) {
    let room = match first_arg::<String>(&args) {
        Ok(r) => r,
        Err(e) => return ack_err(ack, &e),
    };
    let left = state
        .chat()
        .leave(socket.id().as_str(), &room, Instant::now());
    let (nick, users) = match left {
        Ok(l) => l,
        Err(e) => return ack_err(ack, &e.to_string()),
    };
    socket.leave(&room);
    let _ = socket.to(room.as_str()).emit(
        "notice",
        &json!({ "room": room, "text": format!("{nick} left") }),
    );
    let _ = socket.to(room.as_str()).emit(
        "typing",
        &json!({ "room": room, "nick": nick, "typing": false }),
    );
    push_users(&ns, &room, &users);
    push_rooms(&ns, &state);
    ack_ok(ack, json!({ "room": room }));
}

fn on_message(socket: Socket, args: Args, ack: AckSender, state: Arc<State>, ns: Namespace) {
    let req = match first_arg::<MessageReq>(&args) {
        Ok(r) => r,
        Err(e) => return ack_err(ack, &e),
    };
    let sent = state.chat().send(
        socket.id().as_str(),
        &req.room,
        &req.text,
        Instant::now(),
        now_ms(),
    );
    match sent {
        Ok(Sent::Room(message)) => {
            // Everyone else in the room; the sender gets it in the ack.
            let _ = socket.to(message.room.as_str()).emit("message", &message);
            ack_ok(ack, json!({ "message": message }));
        }
        Ok(Sent::Direct { to_id, message }) => {
            let _ = ns.to(to_id).emit("dm", &message);
            ack_ok(ack, json!({ "dm": message }));
        }
        Err(e) => {
            if e == ChatError::RateLimited {
                tracing::debug!(id = %socket.id(), "message rate-limited");
            }
            ack_err(ack, &e.to_string());
        }
    }
}

fn on_typing(socket: Socket, args: Args, state: Arc<State>) {
    let Ok(req) = first_arg::<TypingReq>(&args) else {
        return;
    };
    if validate_room(&req.room).is_err() {
        return;
    }
    let Some(nick) = state.chat().typing_nick(socket.id().as_str(), &req.room) else {
        return;
    };
    // Volatile: a lost typing notice is harmless, so a busy client drops it.
    let _ = socket.to(req.room.as_str()).volatile().emit(
        "typing",
        &json!({ "room": req.room, "nick": nick, "typing": req.typing }),
    );
}

//! The chat as a pure state machine: users, rooms, history and rate limits.
//! No sockets and no clock: callers pass `now` (for rate limits and expiry)
//! and `ts` (wall-clock milliseconds, only shown to users), and turn the
//! returned values into emits (see `server.rs`).
//!
//! Users are keyed by their socket id (a string here, so this module knows
//! nothing of Socket.IO). A nickname is first *reserved* by the connect
//! middleware, then *claimed* when the connection completes; a reservation
//! whose connection never completed expires after [`PENDING_TTL`].
//!
//! A client may present a secret reconnect key with its nickname. If the
//! nickname is held by a connection with the same key (the same browser tab
//! whose old connection the server has not noticed dropping yet), the new
//! connection takes the nickname and the rooms over.

mod rate;
mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

pub(crate) use rate::RateLimiter;
pub(crate) use rules::{ChatError, MAX_KEY_LEN, validate_room};
use rules::{Command, nick_key, parse_command, validate_nick};

/// The room that always exists and that clients join first.
pub(crate) const DEFAULT_ROOM: &str = "#general";
/// Messages kept per room and sent on join.
pub(crate) const HISTORY_LEN: usize = 100;
/// Rooms the server holds at most (empty ones are evicted to make space).
pub(crate) const MAX_ROOMS: usize = 100;
/// Rooms one user may be in at once.
pub(crate) const MAX_ROOMS_PER_USER: usize = 20;
/// How long a nickname reserved by the middleware waits for its connection.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(10);
/// Messages (room or direct) per user: a burst of 10, refilled over 5 s.
pub(crate) const MESSAGE_BURST: u32 = 10;
/// See [`MESSAGE_BURST`].
pub(crate) const MESSAGE_PERIOD: Duration = Duration::from_secs(5);
/// Room operations (join, leave, create) per user: 30 per 10 s, enough to
/// rejoin every room after a reconnect.
pub(crate) const ROOM_OP_BURST: u32 = 30;
/// See [`ROOM_OP_BURST`].
pub(crate) const ROOM_OP_PERIOD: Duration = Duration::from_secs(10);

/// A message said in a room, as clients receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RoomMessage {
    pub(crate) id: u64,
    pub(crate) room: String,
    pub(crate) from: String,
    pub(crate) text: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) ts: u64,
}

/// A direct message, as its two parties receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DirectMessage {
    pub(crate) id: u64,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) text: String,
    pub(crate) ts: u64,
}

/// One entry of the room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RoomInfo {
    pub(crate) name: String,
    pub(crate) count: usize,
}

/// A connection that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connected {
    pub(crate) nick: String,
    /// The connection this one replaced (same nickname and key), and the
    /// rooms taken over from it.
    pub(crate) replaced: Option<(String, Vec<String>)>,
}

/// A user who left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Departed {
    pub(crate) nick: String,
    pub(crate) rooms: Vec<String>,
}

/// A successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) nick: String,
    /// The user was in the room already (a rejoin): nothing changed.
    pub(crate) already: bool,
    /// The room was created by this join.
    pub(crate) created: bool,
    /// Rooms evicted to make space for a new one.
    pub(crate) evicted: Option<String>,
    pub(crate) history: Vec<RoomMessage>,
    pub(crate) users: Vec<String>,
}

/// What a line sent by a user became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    /// A message for everyone in its room.
    Room(RoomMessage),
    /// A direct message for the socket `to_id`.
    Direct {
        to_id: String,
        message: DirectMessage,
    },
}

#[derive(Debug)]
struct User {
    nick: String,
    key: String,
    rooms: BTreeSet<String>,
    messages: RateLimiter,
    room_ops: RateLimiter,
}

#[derive(Debug)]
struct Pending {
    nick: String,
    key: String,
    since: Instant,
}

#[derive(Debug, Default)]
struct Room {
    /// Socket ids.
    members: BTreeSet<String>,
    history: VecDeque<RoomMessage>,
    /// Value of [`Chat::clock`] at the last message or join: eviction order.
    last_active: u64,
}

/// The whole chat. See the module docs.
#[derive(Debug)]
pub(crate) struct Chat {
    users: HashMap<String, User>,
    /// `nick_key(nick)` → socket id of the online user.
    nicks: HashMap<String, String>,
    /// Socket id → reservation made by the middleware.
    pending: HashMap<String, Pending>,
    rooms: BTreeMap<String, Room>,
    next_id: u64,
    clock: u64,
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

impl Chat {
    /// A chat with only [`DEFAULT_ROOM`].
    pub(crate) fn new() -> Self {
        let mut rooms = BTreeMap::new();
        rooms.insert(DEFAULT_ROOM.to_owned(), Room::default());
        Chat {
            users: HashMap::new(),
            nicks: HashMap::new(),
            pending: HashMap::new(),
            rooms,
            next_id: 1,
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    // ----- connections -------------------------------------------------------

    /// Reserves `nick` for the connecting socket `id` (the middleware step).
    pub(crate) fn reserve(
        &mut self,
        id: &str,
        nick: &str,
        key: &str,
        now: Instant,
    ) -> Result<(), ChatError> {
        validate_nick(nick)?;
        let key = if key.len() <= MAX_KEY_LEN { key } else { "" };
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.since) < PENDING_TTL);
        let wanted = nick_key(nick);
        // Another connection of the same tab may replace a reservation or an
        // online user; anyone else is refused.
        let same_tab = |other_key: &str| !key.is_empty() && other_key == key;
        if let Some(user) = self.nicks.get(&wanted).and_then(|i| self.users.get(i)) {
            if !same_tab(&user.key) {
                return Err(ChatError::NickTaken(user.nick.clone()));
            }
        }
        let mut stale = None;
        for (pid, p) in &self.pending {
            if pid != id && nick_key(&p.nick) == wanted {
                if !same_tab(&p.key) {
                    return Err(ChatError::NickTaken(p.nick.clone()));
                }
                stale = Some(pid.clone());
            }
        }
        if let Some(pid) = stale {
            self.pending.remove(&pid);
        }
        self.pending.insert(
            id.to_owned(),
            Pending {
                nick: nick.to_owned(),
                key: key.to_owned(),
                since: now,
            },
        );
        Ok(())
    }

    /// The connection of socket `id` completed: its reservation becomes a user.
    pub(crate) fn connect(&mut self, id: &str) -> Result<Connected, ChatError> {
        let Some(p) = self.pending.remove(id) else {
            return Err(ChatError::NotConnected);
        };
        let wanted = nick_key(&p.nick);
        let mut rooms = BTreeSet::new();
        let mut replaced = None;
        if let Some(old_id) = self.nicks.get(&wanted).cloned() {
            match self.users.get(&old_id) {
                Some(old) if p.key.is_empty() || old.key != p.key => {
                    return Err(ChatError::NickTaken(old.nick.clone()));
                }
                _ => {}
            }
            if let Some(old) = self.users.remove(&old_id) {
                for room in &old.rooms {
                    if let Some(r) = self.rooms.get_mut(room) {
                        r.members.remove(&old_id);
                        r.members.insert(id.to_owned());
                    }
                }
                rooms = old.rooms;
                replaced = Some((old_id, rooms.iter().cloned().collect()));
            }
        }
        self.nicks.insert(wanted, id.to_owned());
        self.users.insert(
            id.to_owned(),
            User {
                nick: p.nick.clone(),
                key: p.key,
                rooms,
                messages: RateLimiter::new(MESSAGE_BURST, MESSAGE_PERIOD),
                room_ops: RateLimiter::new(ROOM_OP_BURST, ROOM_OP_PERIOD),
            },
        );
        Ok(Connected {
            nick: p.nick,
            replaced,
        })
    }

    /// Socket `id` is gone: frees its nickname and leaves its rooms. `None`
    /// if it had no user (refused, or replaced by a newer connection).
    pub(crate) fn disconnect(&mut self, id: &str) -> Option<Departed> {
        self.pending.remove(id);
        let user = self.users.remove(id)?;
        let key = nick_key(&user.nick);
        if self.nicks.get(&key).is_some_and(|owner| owner == id) {
            self.nicks.remove(&key);
        }
        for room in &user.rooms {
            if let Some(r) = self.rooms.get_mut(room) {
                r.members.remove(id);
            }
        }
        Some(Departed {
            nick: user.nick,
            rooms: user.rooms.into_iter().collect(),
        })
    }

    // ----- rooms -------------------------------------------------------------

    /// Joins `room`, creating it if `create` (rejoining is not an error).
    pub(crate) fn join(
        &mut self,
        id: &str,
        room: &str,
        create: bool,
        now: Instant,
    ) -> Result<Joined, ChatError> {
        validate_room(room)?;
        let user = self.users.get_mut(id).ok_or(ChatError::NotConnected)?;
        let nick = user.nick.clone();
        if user.rooms.contains(room) {
            let (history, users) = (self.history(room), self.users_in(room));
            return Ok(Joined {
                nick,
                already: true,
                created: false,
                evicted: None,
                history,
                users,
            });
        }
        if user.rooms.len() >= MAX_ROOMS_PER_USER {
            return Err(ChatError::TooManyJoined);
        }
        if !user.room_ops.check(now) {
            return Err(ChatError::RateLimited);
        }
        let mut created = false;
        let mut evicted = None;
        if !self.rooms.contains_key(room) {
            if !create {
                return Err(ChatError::UnknownRoom(room.to_owned()));
            }
            if self.rooms.len() >= MAX_ROOMS {
                let victim = self
                    .rooms
                    .iter()
                    .filter(|(name, r)| r.members.is_empty() && name.as_str() != DEFAULT_ROOM)
                    .min_by_key(|(_, r)| r.last_active)
                    .map(|(name, _)| name.clone())
                    .ok_or(ChatError::TooManyRooms)?;
                self.rooms.remove(&victim);
                evicted = Some(victim);
            }
            created = true;
        }
        let tick = self.tick();
        let r = self.rooms.entry(room.to_owned()).or_default();
        r.members.insert(id.to_owned());
        r.last_active = tick;
        if let Some(user) = self.users.get_mut(id) {
            user.rooms.insert(room.to_owned());
        }
        Ok(Joined {
            nick,
            already: false,
            created,
            evicted,
            history: self.history(room),
            users: self.users_in(room),
        })
    }

    /// Leaves `room`; returns the nickname and the users left in it.
    pub(crate) fn leave(
        &mut self,
        id: &str,
        room: &str,
        now: Instant,
    ) -> Result<(String, Vec<String>), ChatError> {
        validate_room(room)?;
        let user = self.users.get_mut(id).ok_or(ChatError::NotConnected)?;
        if !user.rooms.contains(room) {
            return Err(ChatError::NotInRoom(room.to_owned()));
        }
        if !user.room_ops.check(now) {
            return Err(ChatError::RateLimited);
        }
        user.rooms.remove(room);
        let nick = user.nick.clone();
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.remove(id);
        }
        Ok((nick, self.users_in(room)))
    }

    // ----- messages ----------------------------------------------------------

    /// A line typed by user `id` while looking at `room`: a room message or
    /// a `/msg`. Refused when rate-limited, invalid, or not in the room.
    pub(crate) fn send(
        &mut self,
        id: &str,
        room: &str,
        line: &str,
        now: Instant,
        ts: u64,
    ) -> Result<Sent, ChatError> {
        let user = self.users.get_mut(id).ok_or(ChatError::NotConnected)?;
        if !user.messages.check(now) {
            return Err(ChatError::RateLimited);
        }
        let from = user.nick.clone();
        match parse_command(line)? {
            Command::Say(text) => {
                if !user.rooms.contains(room) {
                    return Err(if self.rooms.contains_key(room) {
                        ChatError::NotInRoom(room.to_owned())
                    } else {
                        ChatError::UnknownRoom(room.chars().take(40).collect())
                    });
                }
                let message = RoomMessage {
                    id: self.next_id(),
                    room: room.to_owned(),
                    from,
                    text: text.to_owned(),
                    ts,
                };
                let tick = self.tick();
                if let Some(r) = self.rooms.get_mut(room) {
                    if r.history.len() >= HISTORY_LEN {
                        r.history.pop_front();
                    }
                    r.history.push_back(message.clone());
                    r.last_active = tick;
                }
                Ok(Sent::Room(message))
            }
            Command::Msg { to, text } => {
                let Some((to_id, to_user)) = self
                    .nicks
                    .get(&nick_key(to))
                    .and_then(|i| Some((i.clone(), self.users.get(i)?)))
                else {
                    return Err(ChatError::UnknownUser(to.chars().take(40).collect()));
                };
                if to_id == id {
                    return Err(ChatError::MsgSelf);
                }
                let to = to_user.nick.clone();
                let message = DirectMessage {
                    id: self.next_id(),
                    from,
                    to,
                    text: text.to_owned(),
                    ts,
                };
                Ok(Sent::Direct { to_id, message })
            }
        }
    }

    /// The nickname of `id` if it may show typing in `room` (is a member).
    pub(crate) fn typing_nick(&self, id: &str, room: &str) -> Option<String> {
        let user = self.users.get(id)?;
        user.rooms.contains(room).then(|| user.nick.clone())
    }

    // ----- views -------------------------------------------------------------

    /// Every room with its member count, by name.
    pub(crate) fn rooms(&self) -> Vec<RoomInfo> {
        self.rooms
            .iter()
            .map(|(name, r)| RoomInfo {
                name: name.clone(),
                count: r.members.len(),
            })
            .collect()
    }

    /// Nicknames in `room`, sorted case-insensitively.
    pub(crate) fn users_in(&self, room: &str) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .rooms
            .get(room)
            .map(|r| {
                r.members
                    .iter()
                    .filter_map(|id| self.users.get(id).map(|u| u.nick.clone()))
                    .collect()
            })
            .unwrap_or_default();
        nicks.sort_by_key(|n| nick_key(n));
        nicks
    }

    /// The kept messages of `room`, oldest first.
    pub(crate) fn history(&self, room: &str) -> Vec<RoomMessage> {
        self.rooms
            .get(room)
            .map(|r| r.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of online users.
    pub(crate) fn online(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests;

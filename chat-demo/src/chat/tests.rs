use super::*;

fn t0() -> Instant {
    Instant::now()
}

/// Reserves and connects `nick` as socket `id` with key `key`.
fn online(chat: &mut Chat, id: &str, nick: &str, key: &str, now: Instant) -> Connected {
    chat.reserve(id, nick, key, now).unwrap();
    chat.connect(id).unwrap()
}

#[test]
fn nicknames_are_unique_case_insensitively() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "s1", "Alice", "k1", now);
    assert_eq!(
        chat.reserve("s2", "alice", "k2", now),
        Err(ChatError::NickTaken("Alice".into()))
    );
    assert_eq!(
        chat.reserve("s2", "ALICE", "", now),
        Err(ChatError::NickTaken("Alice".into()))
    );
    assert_eq!(
        chat.reserve("s2", "", "k2", now),
        Err(ChatError::NickLength)
    );
    assert_eq!(
        chat.reserve("s2", "a\u{1}", "k2", now),
        Err(ChatError::NickChars)
    );
    // Freed on disconnect.
    let gone = chat.disconnect("s1").unwrap();
    assert_eq!(gone.nick, "Alice");
    online(&mut chat, "s2", "alice", "k2", now);
    assert_eq!(chat.online(), 1);
}

#[test]
fn a_pending_reservation_blocks_the_nick_until_it_expires() {
    let now = t0();
    let mut chat = Chat::new();
    chat.reserve("s1", "bob", "k1", now).unwrap();
    assert_eq!(
        chat.reserve("s2", "bob", "k2", now + Duration::from_secs(1)),
        Err(ChatError::NickTaken("bob".into()))
    );
    // s1's connection never completed: after the TTL the name is free.
    chat.reserve("s2", "bob", "k2", now + PENDING_TTL).unwrap();
    assert_eq!(chat.connect("s1"), Err(ChatError::NotConnected));
    assert_eq!(chat.connect("s2").unwrap().nick, "bob");
}

#[test]
fn the_same_tab_takes_its_nick_and_rooms_over() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "old", "carol", "secret", now);
    chat.join("old", "#general", false, now).unwrap();
    chat.join("old", "#dev", true, now).unwrap();
    // A stranger without the key is refused; the same key is let in.
    assert!(chat.reserve("x", "carol", "other", now).is_err());
    assert!(chat.reserve("x", "carol", "", now).is_err());
    chat.reserve("new", "carol", "secret", now).unwrap();
    let c = chat.connect("new").unwrap();
    assert_eq!(
        c.replaced,
        Some(("old".into(), vec!["#dev".into(), "#general".into()]))
    );
    assert_eq!(chat.users_in("#dev"), vec!["carol"]);
    // The replaced connection's disconnect changes nothing.
    assert_eq!(chat.disconnect("old"), None);
    assert_eq!(chat.users_in("#general"), vec!["carol"]);
    assert!(chat.join("new", "#general", false, now).unwrap().already);
    // An empty key never matches.
    online(&mut chat, "d1", "dave", "", now);
    assert!(chat.reserve("d2", "dave", "", now).is_err());
}

#[test]
fn joins_leaves_and_room_list() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "ka", now);
    online(&mut chat, "b", "bob", "kb", now);
    let j = chat.join("a", "#general", false, now).unwrap();
    assert!(!j.already && !j.created);
    assert_eq!(j.users, vec!["alice"]);
    chat.join("b", "#general", false, now).unwrap();
    assert_eq!(
        chat.join("b", "#nope", false, now),
        Err(ChatError::UnknownRoom("#nope".into()))
    );
    assert_eq!(
        chat.join("b", "#Bad Name", true, now),
        Err(ChatError::InvalidRoom)
    );
    assert!(chat.join("b", "#random", true, now).unwrap().created);
    assert_eq!(
        chat.rooms(),
        vec![
            RoomInfo {
                name: "#general".into(),
                count: 2
            },
            RoomInfo {
                name: "#random".into(),
                count: 1
            },
        ]
    );
    let (nick, left) = chat.leave("a", "#general", now).unwrap();
    assert_eq!((nick.as_str(), left), ("alice", vec!["bob".to_owned()]));
    assert_eq!(
        chat.leave("a", "#general", now),
        Err(ChatError::NotInRoom("#general".into()))
    );
    let gone = chat.disconnect("b").unwrap();
    assert_eq!(gone.rooms, vec!["#general", "#random"]);
    assert!(chat.rooms().iter().all(|r| r.count == 0));
    assert_eq!(
        chat.join("zz", "#general", false, now),
        Err(ChatError::NotConnected)
    );
}

#[test]
fn room_count_is_bounded_and_empty_rooms_are_evicted() {
    let now = t0();
    let mut chat = Chat::new();
    // Enough users that no one hits the per-user room limit.
    let mut rooms = 1;
    let mut user = 0;
    while rooms < MAX_ROOMS {
        let id = format!("u{user}");
        online(&mut chat, &id, &id, "", now);
        for _ in 0..MAX_ROOMS_PER_USER {
            if rooms == MAX_ROOMS {
                break;
            }
            chat.join(&id, &format!("#r{rooms}"), true, now).unwrap();
            rooms += 1;
        }
        user += 1;
    }
    assert_eq!(chat.rooms().len(), MAX_ROOMS);
    online(&mut chat, "x", "x", "", now);
    assert_eq!(
        chat.join("x", "#one-more", true, now),
        Err(ChatError::TooManyRooms)
    );
    // Joining an existing room still works at the cap.
    chat.join("x", "#r1", false, now).unwrap();
    // Once u0 leaves, its oldest empty room makes space.
    chat.disconnect("u0");
    let j = chat.join("x", "#one-more", true, now).unwrap();
    assert_eq!(j.evicted.as_deref(), Some("#r2"));
    assert_eq!(chat.rooms().len(), MAX_ROOMS);
}

#[test]
fn a_user_is_in_a_bounded_number_of_rooms() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "", now);
    for i in 0..MAX_ROOMS_PER_USER {
        chat.join("a", &format!("#r{i}"), true, now).unwrap();
    }
    assert_eq!(
        chat.join("a", "#general", false, now),
        Err(ChatError::TooManyJoined)
    );
}

#[test]
fn room_operations_are_rate_limited() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "", now);
    let mut refused = 0;
    for i in 0..(ROOM_OP_BURST + 5) {
        let room = format!("#r{}", i % 2);
        let r = if i % 2 == 0 {
            chat.join("a", &room, true, now).map(drop)
        } else {
            chat.join("a", "#r0", true, now)
                .map(drop)
                .and_then(|()| chat.leave("a", "#r0", now).map(drop))
        };
        if r == Err(ChatError::RateLimited) {
            refused += 1;
        }
    }
    assert!(refused > 0);
    // The bucket refills.
    chat.join("a", "#later", true, now + ROOM_OP_PERIOD)
        .unwrap();
}

#[test]
fn history_is_capped_at_100_and_sent_on_join() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "", now);
    chat.join("a", "#general", false, now).unwrap();
    // 250 messages, slowly enough for the rate limiter.
    for i in 0..250u32 {
        let t = now + MESSAGE_PERIOD / MESSAGE_BURST * i;
        chat.send("a", "#general", &format!("m{i}"), t, u64::from(i))
            .unwrap();
    }
    let h = chat.history("#general");
    assert_eq!(h.len(), HISTORY_LEN);
    assert_eq!(h.first().map(|m| m.text.as_str()), Some("m150"));
    assert_eq!(h.last().map(|m| m.text.as_str()), Some("m249"));
    online(&mut chat, "b", "bob", "", now);
    let j = chat.join("b", "#general", false, now).unwrap();
    assert_eq!(j.history, h);
}

#[test]
fn messages_are_validated_and_rate_limited() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "", now);
    chat.join("a", "#general", false, now).unwrap();
    let mut step = 0u32;
    let mut send = |chat: &mut Chat, room: &str, text: &str| {
        step += 1;
        // Spaced out so only the last loop below hits the limiter.
        chat.send(
            "a",
            room,
            text,
            now + Duration::from_secs(u64::from(step)),
            0,
        )
    };
    assert_eq!(
        send(&mut chat, "#general", "  "),
        Err(ChatError::EmptyMessage)
    );
    assert_eq!(
        send(&mut chat, "#general", &"x".repeat(2001)),
        Err(ChatError::MessageTooLong)
    );
    assert_eq!(
        send(&mut chat, "#nowhere", "hi"),
        Err(ChatError::UnknownRoom("#nowhere".into()))
    );
    chat.join("a", "#other", true, now).unwrap();
    chat.leave("a", "#other", now).unwrap();
    assert_eq!(
        send(&mut chat, "#other", "hi"),
        Err(ChatError::NotInRoom("#other".into()))
    );
    match send(&mut chat, "#general", "<script>x</script>") {
        Ok(Sent::Room(m)) => {
            assert_eq!(
                (m.from.as_str(), m.text.as_str()),
                ("alice", "<script>x</script>")
            );
        }
        other => panic!("{other:?}"),
    }
    // A burst of 10 at one instant, then refused.
    let t = now + Duration::from_secs(100);
    let results: Vec<_> = (0..12)
        .map(|i| chat.send("a", "#general", &format!("f{i}"), t, 0).is_ok())
        .collect();
    assert_eq!(results.iter().filter(|ok| **ok).count(), 10);
    assert_eq!(
        chat.send("a", "#general", "again", t, 0),
        Err(ChatError::RateLimited)
    );
    assert!(
        chat.send("a", "#general", "again", t + MESSAGE_PERIOD, 0)
            .is_ok()
    );
}

#[test]
fn direct_messages_reach_only_their_target() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "", now);
    online(&mut chat, "b", "Bob", "", now);
    // No room needed, any case for the nickname.
    match chat.send("a", "#general", "/msg bob psst", now, 7) {
        Ok(Sent::Direct { to_id, message }) => {
            assert_eq!(to_id, "b");
            assert_eq!(
                (
                    message.from.as_str(),
                    message.to.as_str(),
                    message.text.as_str()
                ),
                ("alice", "Bob", "psst")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        chat.send("a", "#general", "/msg carol hi", now, 0),
        Err(ChatError::UnknownUser("carol".into()))
    );
    assert_eq!(
        chat.send("a", "#general", "/msg alice hi", now, 0),
        Err(ChatError::MsgSelf)
    );
    assert_eq!(
        chat.send("a", "#general", "/msg bob", now, 0),
        Err(ChatError::MsgUsage)
    );
    assert!(matches!(
        chat.send("a", "#general", "/kick bob", now, 0),
        Err(ChatError::UnknownCommand(_))
    ));
}

#[test]
fn typing_needs_membership() {
    let now = t0();
    let mut chat = Chat::new();
    online(&mut chat, "a", "alice", "", now);
    assert_eq!(chat.typing_nick("a", "#general"), None);
    chat.join("a", "#general", false, now).unwrap();
    assert_eq!(chat.typing_nick("a", "#general").as_deref(), Some("alice"));
    assert_eq!(chat.typing_nick("nobody", "#general"), None);
}

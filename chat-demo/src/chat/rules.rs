//! What the chat accepts from a client: nicknames, room names, message text
//! and the `/msg` command. Pure functions; every refusal is a [`ChatError`]
//! whose text is shown to the user as is.

/// Longest nickname, in characters.
pub(crate) const MAX_NICK_CHARS: usize = 32;
/// Longest room name after the `#`, in characters.
pub(crate) const MAX_ROOM_CHARS: usize = 32;
/// Longest message, in characters (after trimming).
pub(crate) const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest reconnect key a client may present, in bytes.
pub(crate) const MAX_KEY_LEN: usize = 64;

/// Why the chat refused something. `Display` is the message the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChatError {
    /// No nickname, or not 1..=32 characters.
    NickLength,
    /// A nickname with control characters or white space.
    NickChars,
    /// Someone online already uses this nickname (case-insensitively).
    NickTaken(String),
    /// A room name not of the form `#` + 1..=32 of `[a-z0-9-_]`.
    InvalidRoom,
    /// A room that does not exist (and was not to be created).
    UnknownRoom(String),
    /// The server holds as many rooms as it may, none of them empty.
    TooManyRooms,
    /// This user is in as many rooms as one may be.
    TooManyJoined,
    /// This user is not in that room.
    NotInRoom(String),
    /// Nothing but white space.
    EmptyMessage,
    /// Over [`MAX_MESSAGE_CHARS`].
    MessageTooLong,
    /// Control characters other than tab and newline.
    MessageChars,
    /// `/something` that is not a command we know.
    UnknownCommand(String),
    /// `/msg` without a nickname or a text.
    MsgUsage,
    /// `/msg` to a nickname nobody online uses.
    UnknownUser(String),
    /// `/msg` to oneself.
    MsgSelf,
    /// Too many messages or room operations in a short time.
    RateLimited,
    /// The socket has no user (its connection was not completed or is gone).
    NotConnected,
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::NickLength => {
                write!(f, "Nickname must be 1 to {MAX_NICK_CHARS} characters long")
            }
            ChatError::NickChars => {
                f.write_str("Nickname must not contain spaces or control characters")
            }
            ChatError::NickTaken(n) => write!(f, "Nickname {n} is already taken"),
            ChatError::InvalidRoom => write!(
                f,
                "Room names are # followed by 1 to {MAX_ROOM_CHARS} of a-z, 0-9, - and _"
            ),
            ChatError::UnknownRoom(r) => write!(f, "No room named {r}"),
            ChatError::TooManyRooms => f.write_str("Too many rooms on this server"),
            ChatError::TooManyJoined => f.write_str("You are in too many rooms"),
            ChatError::NotInRoom(r) => write!(f, "You are not in {r}"),
            ChatError::EmptyMessage => f.write_str("Message is empty"),
            ChatError::MessageTooLong => write!(
                f,
                "Message is too long (at most {MAX_MESSAGE_CHARS} characters)"
            ),
            ChatError::MessageChars => f.write_str("Message contains control characters"),
            ChatError::UnknownCommand(c) => {
                write!(f, "Unknown command {c} (try /msg <nick> <text>)")
            }
            ChatError::MsgUsage => f.write_str("Usage: /msg <nick> <text>"),
            ChatError::UnknownUser(n) => write!(f, "Nobody named {n} is online"),
            ChatError::MsgSelf => f.write_str("You cannot send a direct message to yourself"),
            ChatError::RateLimited => f.write_str("You are sending too fast; slow down"),
            ChatError::NotConnected => f.write_str("Not connected"),
        }
    }
}

impl std::error::Error for ChatError {}

/// A nickname: 1..=32 characters, no control characters and no white space
/// (so that `/msg <nick> <text>` can name anyone).
pub(crate) fn validate_nick(nick: &str) -> Result<(), ChatError> {
    let len = nick.chars().count();
    if len == 0 || len > MAX_NICK_CHARS {
        return Err(ChatError::NickLength);
    }
    if nick.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ChatError::NickChars);
    }
    Ok(())
}

/// The key under which nicknames are unique: case-insensitive.
pub(crate) fn nick_key(nick: &str) -> String {
    nick.to_lowercase()
}

/// A room name: `#` then 1..=32 of `[a-z0-9-_]`.
pub(crate) fn validate_room(room: &str) -> Result<(), ChatError> {
    let Some(name) = room.strip_prefix('#') else {
        return Err(ChatError::InvalidRoom);
    };
    let ok_len = (1..=MAX_ROOM_CHARS).contains(&name.len());
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(ChatError::InvalidRoom)
    }
}

/// Message text, trimmed: not empty, at most 2000 characters, no control
/// characters but tab and newline.
pub(crate) fn validate_text(text: &str) -> Result<&str, ChatError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ChatError::EmptyMessage);
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ChatError::MessageTooLong);
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ChatError::MessageChars);
    }
    Ok(text)
}

/// What a line typed in the message box asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// Say this (validated) text in the current room.
    Say(&'a str),
    /// `/msg <nick> <text>`: a direct message.
    Msg {
        /// The recipient's nickname.
        to: &'a str,
        /// The validated text.
        text: &'a str,
    },
}

/// Parses a line: `/msg <nick> <text>` is a direct message, any other line
/// starting with `/` an unknown command, everything else plain text.
pub(crate) fn parse_command(line: &str) -> Result<Command<'_>, ChatError> {
    let trimmed = line.trim_start();
    let Some(rest) = trimmed.strip_prefix('/') else {
        return validate_text(line).map(Command::Say);
    };
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name != "msg" {
        let shown: String = name.chars().take(MAX_NICK_CHARS).collect();
        return Err(ChatError::UnknownCommand(format!("/{shown}")));
    }
    let args = args.trim_start();
    let Some((to, text)) = args.split_once(char::is_whitespace) else {
        return Err(ChatError::MsgUsage);
    };
    if to.is_empty() {
        return Err(ChatError::MsgUsage);
    }
    let text = match validate_text(text) {
        Ok(t) => t,
        Err(ChatError::EmptyMessage) => return Err(ChatError::MsgUsage),
        Err(e) => return Err(e),
    };
    Ok(Command::Msg { to, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        assert_eq!(validate_nick("alice"), Ok(()));
        assert_eq!(validate_nick("Zoë_42"), Ok(()));
        assert_eq!(validate_nick(&"x".repeat(32)), Ok(()));
        assert_eq!(validate_nick("日本語"), Ok(()));
        assert_eq!(validate_nick(""), Err(ChatError::NickLength));
        assert_eq!(validate_nick(&"x".repeat(33)), Err(ChatError::NickLength));
        // Length counts characters, not bytes.
        assert_eq!(validate_nick(&"é".repeat(32)), Ok(()));
        assert_eq!(validate_nick("a\u{7}b"), Err(ChatError::NickChars));
        assert_eq!(validate_nick("a\nb"), Err(ChatError::NickChars));
        assert_eq!(validate_nick("a b"), Err(ChatError::NickChars));
        assert_eq!(validate_nick("\u{85}"), Err(ChatError::NickChars));
        assert_eq!(nick_key("Alice"), nick_key("aLICE"));
    }

    #[test]
    fn rooms() {
        for ok in [
            "#general",
            "#a",
            "#dev-ops_2",
            &format!("#{}", "z".repeat(32)),
        ] {
            assert_eq!(validate_room(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "#",
            "general",
            "#General",
            "#with space",
            "#é",
            "##x",
            "#a.b",
            "#<b>",
            &format!("#{}", "z".repeat(33)),
        ] {
            assert_eq!(validate_room(bad), Err(ChatError::InvalidRoom), "{bad:?}");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(validate_text("  hi  "), Ok("hi"));
        assert_eq!(validate_text("a\tb\nc"), Ok("a\tb\nc"));
        assert_eq!(validate_text(""), Err(ChatError::EmptyMessage));
        assert_eq!(validate_text(" \n\t "), Err(ChatError::EmptyMessage));
        assert_eq!(validate_text(&"x".repeat(2000)).map(str::len), Ok(2000));
        assert_eq!(
            validate_text(&"x".repeat(2001)),
            Err(ChatError::MessageTooLong)
        );
        assert_eq!(
            validate_text(&"é".repeat(2000)).map(|t| t.chars().count()),
            Ok(2000)
        );
        assert_eq!(validate_text("a\u{0}b"), Err(ChatError::MessageChars));
        assert_eq!(validate_text("a\u{1b}[31m"), Err(ChatError::MessageChars));
        // HTML is just text; the page renders it with textContent.
        assert_eq!(validate_text("<b>x</b>"), Ok("<b>x</b>"));
    }

    #[test]
    fn commands() {
        assert_eq!(parse_command("hello"), Ok(Command::Say("hello")));
        assert_eq!(parse_command("  hello "), Ok(Command::Say("hello")));
        assert_eq!(
            parse_command("/msg bob hi there"),
            Ok(Command::Msg {
                to: "bob",
                text: "hi there"
            })
        );
        assert_eq!(
            parse_command("  /msg   bob    hi  "),
            Ok(Command::Msg {
                to: "bob",
                text: "hi"
            })
        );
        assert_eq!(
            parse_command("/msg\tbob\thi"),
            Ok(Command::Msg {
                to: "bob",
                text: "hi"
            })
        );
        assert_eq!(parse_command("/msg"), Err(ChatError::MsgUsage));
        assert_eq!(parse_command("/msg bob"), Err(ChatError::MsgUsage));
        assert_eq!(parse_command("/msg bob   "), Err(ChatError::MsgUsage));
        assert_eq!(
            parse_command(&format!("/msg bob {}", "x".repeat(2001))),
            Err(ChatError::MessageTooLong)
        );
        assert_eq!(
            parse_command("/me waves"),
            Err(ChatError::UnknownCommand("/me".into()))
        );
        assert_eq!(
            parse_command("/MSG bob hi"),
            Err(ChatError::UnknownCommand("/MSG".into()))
        );
        assert_eq!(
            parse_command("/"),
            Err(ChatError::UnknownCommand("/".into()))
        );
        assert_eq!(parse_command("   "), Err(ChatError::EmptyMessage));
        // A slash later in the line is plain text.
        assert_eq!(parse_command("a/msg b c"), Ok(Command::Say("a/msg b c")));
    }

    #[test]
    fn messages_for_users() {
        assert_eq!(
            ChatError::NickTaken("alice".into()).to_string(),
            "Nickname alice is already taken"
        );
        assert!(ChatError::RateLimited.to_string().contains("slow down"));
    }
}

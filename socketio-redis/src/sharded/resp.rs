//! A bounded RESP2 reader for the replies a subscriber connection gets
//! (`ssubscribe` / `sunsubscribe` confirmations, `smessage` pushes, errors).
//!
//! Pure: `parse` answers `Ok(None)` while more bytes are needed. Every
//! declared length is checked against a limit before anything is kept.

use bytes::Bytes;

/// One RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:1`.
    Int(i64),
    /// `$3 abc` (`None`: `$-1`).
    Bulk(Option<Bytes>),
    /// `*2 ...` (`None`: `*-1`).
    Array(Option<Vec<Frame>>),
}

/// Why the bytes are not RESP the way a subscriber expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RespError {
    /// An unknown type byte.
    Type(u8),
    /// A length or integer that does not parse.
    Number,
    /// A declared length over its limit.
    TooLong,
    /// Arrays nested deeper than allowed.
    TooDeep,
    /// A bulk string not followed by CRLF.
    Terminator,
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::Type(b) => write!(f, "resp: unknown type byte {b:#04x}"),
            RespError::Number => f.write_str("resp: bad number"),
            RespError::TooLong => f.write_str("resp: length over the limit"),
            RespError::TooDeep => f.write_str("resp: arrays nested too deep"),
            RespError::Terminator => f.write_str("resp: missing CRLF"),
        }
    }
}

/// Longest simple string / error / number line.
const MAX_LINE: usize = 64 * 1024;
/// Most elements in one array (a pub/sub reply has 3).
const MAX_ARRAY: usize = 64;
/// Deepest array nesting.
const MAX_DEPTH: usize = 4;

/// Parses one frame from the start of `buf`: `Ok(Some((frame, used)))`, or
/// `Ok(None)` if `buf` holds only part of it. Bulk strings longer than
/// `max_bulk` are an error.
pub(crate) fn parse(buf: &[u8], max_bulk: usize) -> Result<Option<(Frame, usize)>, RespError> {
    let mut pos = 0;
    match frame(buf, &mut pos, max_bulk, 0)? {
        Some(f) => Ok(Some((f, pos))),
        None => Ok(None),
    }
}

/// The line starting at `*pos` (without CRLF); advances past it.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, RespError> {
    let rest = buf.get(*pos..).unwrap_or_default();
    let window = rest.get(..MAX_LINE.min(rest.len())).unwrap_or_default();
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            *pos += end + 2;
            Ok(window.get(..end))
        }
        None if rest.len() > MAX_LINE => Err(RespError::TooLong),
        None => Ok(None),
    }
}

fn number(l: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::Number)
}

fn frame(
    buf: &[u8],
    pos: &mut usize,
    max_bulk: usize,
    depth: usize,
) -> Result<Option<Frame>, RespError> {
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(l) = line(buf, pos)? else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some(Frame::Simple(String::from_utf8_lossy(l).into_owned()))),
        b'-' => Ok(Some(Frame::Error(String::from_utf8_lossy(l).into_owned()))),
        b':' => Ok(Some(Frame::Int(number(l)?))),
        b'$' => {
            let n = number(l)?;
            if n < 0 {
                return Ok(Some(Frame::Bulk(None)));
            }
            let n = usize::try_from(n).map_err(|_| RespError::TooLong)?;
            if n > max_bulk {
                return Err(RespError::TooLong);
            }
            let end = pos.checked_add(n).ok_or(RespError::TooLong)?;
            let Some(data) = buf.get(*pos..end) else {
                return Ok(None);
            };
            match buf.get(end..end + 2) {
                None => Ok(None),
                Some(b"\r\n") => {
                    *pos = end + 2;
                    Ok(Some(Frame::Bulk(Some(Bytes::copy_from_slice(data)))))
                }
                Some(_) => Err(RespError::Terminator),
            }
        }
        b'*' => {
            let n = number(l)?;
            if n < 0 {
                return Ok(Some(Frame::Array(None)));
            }
            let n = usize::try_from(n).map_err(|_| RespError::TooLong)?;
            if n > MAX_ARRAY {
                return Err(RespError::TooLong);
            }
            if depth >= MAX_DEPTH {
                return Err(RespError::TooDeep);
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                match frame(buf, pos, max_bulk, depth + 1)? {
                    Some(f) => items.push(f),
                    None => return Ok(None),
                }
            }
            Ok(Some(Frame::Array(Some(items))))
        }
        other => Err(RespError::Type(other)),
    }
}

/// A pub/sub reply: `[kind, channel, payload-or-count]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PubSubReply {
    /// `smessage` (or `message`) on a channel.
    Message {
        /// The channel.
        channel: String,
        /// The payload.
        payload: Bytes,
    },
    /// `ssubscribe` confirmed for a channel.
    Subscribed(String),
    /// `sunsubscribe` confirmed for a channel.
    Unsubscribed(String),
    /// Anything else (a PONG, an OK).
    Other,
}

fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Bulk(Some(b)) => std::str::from_utf8(b).ok().map(str::to_owned),
        Frame::Simple(s) => Some(s.clone()),
        _ => None,
    }
}

/// What a frame on a subscriber connection means; `Err` carries a server
/// error message.
pub(crate) fn pubsub_reply(f: Frame) -> Result<PubSubReply, String> {
    let items = match f {
        Frame::Error(e) => return Err(e),
        Frame::Array(Some(items)) => items,
        _ => return Ok(PubSubReply::Other),
    };
    let mut it = items.into_iter();
    let (Some(kind), Some(channel), Some(third)) = (it.next(), it.next(), it.next()) else {
        return Ok(PubSubReply::Other);
    };
    let (Some(kind), Some(channel)) = (text(&kind), text(&channel)) else {
        return Ok(PubSubReply::Other);
    };
    Ok(match (kind.as_str(), third) {
        ("smessage" | "message", Frame::Bulk(Some(payload))) => {
            PubSubReply::Message { channel, payload }
        }
        ("ssubscribe", _) => PubSubReply::Subscribed(channel),
        ("sunsubscribe", _) => PubSubReply::Unsubscribed(channel),
        _ => PubSubReply::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pubsub_frames() {
        let raw = b"*3\r\n$10\r\nssubscribe\r\n$3\r\nch1\r\n:1\r\n*3\r\n$8\r\nsmessage\r\n$3\r\nch1\r\n$5\r\nhe\r\nl\r\n";
        let (f, n) = parse(raw, 1024).unwrap().unwrap();
        assert_eq!(
            pubsub_reply(f).unwrap(),
            PubSubReply::Subscribed("ch1".into())
        );
        let (f, m) = parse(&raw[n..], 1024).unwrap().unwrap();
        assert_eq!(n + m, raw.len());
        assert_eq!(
            pubsub_reply(f).unwrap(),
            PubSubReply::Message {
                channel: "ch1".into(),
                payload: Bytes::from_static(b"he\r\nl")
            }
        );
        // Every strict prefix needs more bytes.
        for i in 0..n {
            assert_eq!(parse(&raw[..i], 1024).unwrap(), None, "prefix {i}");
        }
        assert_eq!(
            pubsub_reply(parse(b"-ERR nope\r\n", 8).unwrap().unwrap().0),
            Err("ERR nope".into())
        );
        assert_eq!(
            parse(b"+OK\r\n", 8).unwrap().unwrap().0,
            Frame::Simple("OK".into())
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse(b"$9\r\n", 8), Err(RespError::TooLong));
        assert_eq!(parse(b"*65\r\n", 8), Err(RespError::TooLong));
        assert_eq!(
            parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n", 8),
            Err(RespError::TooDeep)
        );
        assert_eq!(parse(b"$2\r\nabXY", 8), Err(RespError::Terminator));
        assert_eq!(parse(b"?\r\n", 8), Err(RespError::Type(b'?')));
        assert_eq!(parse(b":x\r\n", 8), Err(RespError::Number));
        assert_eq!(
            parse(&vec![b'+'; MAX_LINE + 10], 8),
            Err(RespError::TooLong)
        );
        assert_eq!(parse(b"$-1\r\n", 8).unwrap().unwrap().0, Frame::Bulk(None));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(Some((_, n))) = parse(&bytes, 64) {
                prop_assert!(n <= bytes.len());
            }
        }

        #[test]
        fn messages_round_trip(ch in "[a-z#/]{1,20}", payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut raw = format!("*3\r\n$8\r\nsmessage\r\n${}\r\n{}\r\n${}\r\n", ch.len(), ch, payload.len()).into_bytes();
            raw.extend_from_slice(&payload);
            raw.extend_from_slice(b"\r\n");
            let (f, n) = parse(&raw, 1000).unwrap().unwrap();
            prop_assert_eq!(n, raw.len());
            prop_assert_eq!(pubsub_reply(f).unwrap(), PubSubReply::Message { channel: ch, payload: Bytes::from(payload) });
        }
    }
}

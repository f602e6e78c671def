//! RFC 6455 framing, server side: a sans-IO decoder of what a client sends
//! (masked frames, fragmented messages, control frames between fragments)
//! and the encoder of what the server sends (unmasked frames).
//!
//! [`Decoder::decode`] takes bytes as they came from the socket and answers
//! `Ok(None)` while a frame is incomplete; every rule a client can break is a
//! [`CloseError`] that names the close code the server answers with (1002
//! protocol error, 1007 invalid UTF-8, 1009 too big).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Longest payload of a control frame (§5.5: "125 bytes or less").
pub(crate) const MAX_CONTROL: usize = 125;

/// Frame opcodes (§5.2, §11.8).
pub(crate) mod opcode {
    /// Continuation of a fragmented message.
    pub(crate) const CONTINUATION: u8 = 0x0;
    /// First frame of a text message.
    pub(crate) const TEXT: u8 = 0x1;
    /// First frame of a binary message.
    pub(crate) const BINARY: u8 = 0x2;
    /// Connection close.
    pub(crate) const CLOSE: u8 = 0x8;
    /// Ping.
    pub(crate) const PING: u8 = 0x9;
    /// Pong.
    pub(crate) const PONG: u8 = 0xA;
}

/// Close status codes the server sends (§7.4.1).
pub(crate) mod code {
    /// Normal closure.
    pub(crate) const NORMAL: u16 = 1000;
    /// A frame broke the protocol.
    pub(crate) const PROTOCOL: u16 = 1002;
    /// A text message (or close reason) was not UTF-8.
    pub(crate) const INVALID_DATA: u16 = 1007;
    /// A message was bigger than `max_payload`.
    pub(crate) const TOO_BIG: u16 = 1009;
}

/// Why a client's bytes end the connection, with the close code to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseError {
    /// 1002: a frame broke a rule of RFC 6455 (or RFC 7692); the rule is named.
    Protocol(&'static str),
    /// 1007: a text message or close reason that is not UTF-8, or a
    /// compressed message that does not inflate.
    InvalidData,
    /// 1009: a message (compressed or inflated) longer than `max_payload`.
    TooBig,
}

impl CloseError {
    /// The close code sent for this error.
    pub(crate) fn code(self) -> u16 {
        match self {
            CloseError::Protocol(_) => code::PROTOCOL,
            CloseError::InvalidData => code::INVALID_DATA,
            CloseError::TooBig => code::TOO_BIG,
        }
    }
}

impl std::fmt::Display for CloseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseError::Protocol(rule) => write!(f, "protocol error: {rule}"),
            CloseError::InvalidData => f.write_str("invalid UTF-8 or compressed data"),
            CloseError::TooBig => f.write_str("message over max_payload"),
        }
    }
}

/// A close frame's body (§5.5.1): a status code and a UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseBody {
    /// The status code.
    pub(crate) code: u16,
    /// The reason (valid UTF-8, at most 123 bytes).
    pub(crate) reason: Bytes,
}

/// What a client sent: one whole message, or one control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A text message (reassembled, UTF-8 checked).
    Text(Utf8Bytes),
    /// A binary message (reassembled).
    Binary(Bytes),
    /// A message with RSV1 set (permessage-deflate): the compressed bytes of
    /// all its frames, to inflate (then to check as UTF-8 if `text`).
    Compressed {
        /// The first frame was a text frame.
        text: bool,
        /// The compressed payload, without the `00 00 ff ff` tail.
        data: Bytes,
    },
    /// A ping with its payload.
    Ping(Bytes),
    /// A pong with its payload.
    Pong(Bytes),
    /// A close frame; `None` for an empty body (no status code).
    Close(Option<CloseBody>),
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
    /// Bytes of `data` already checked as UTF-8 (uncompressed text only).
    checked: usize,
}

/// The decoder of one connection's incoming frames.
#[derive(Debug)]
pub(crate) struct Decoder {
    max_payload: usize,
    /// permessage-deflate was negotiated: RSV1 is allowed on a message's first frame.
    deflate: bool,
    partial: Option<Partial>,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header length in bytes (2 to 14).
    header_len: usize,
    /// Payload length as sent.
    len: u64,
}

/// Parses the header at the start of `buf`; `Ok(None)` when incomplete.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, CloseError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    // §5.2: RSV2 and RSV3 MUST be 0 unless an extension defines them (none here).
    if b0 & 0x30 != 0 {
        return Err(CloseError::Protocol("RSV2/RSV3 set"));
    }
    let opcode = b0 & 0x0F;
    // §5.1: "The server MUST close the connection upon receiving a frame that is not masked."
    if b1 & 0x80 == 0 {
        return Err(CloseError::Protocol("unmasked client frame"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => match (buf.get(2), buf.get(3)) {
            (Some(&a), Some(&b)) => (u64::from(u16::from_be_bytes([a, b])), 4),
            _ => return Ok(None),
        },
        127 => {
            let Some(raw) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut b = [0u8; 8];
            b.copy_from_slice(raw);
            let len = u64::from_be_bytes(b);
            // §5.2: "the most significant bit MUST be 0".
            if len >> 63 != 0 {
                return Err(CloseError::Protocol("64-bit length with its top bit set"));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let Some(m) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mut mask = [0u8; 4];
    mask.copy_from_slice(m);
    Ok(Some(Header {
        fin,
        rsv1,
        opcode,
        mask,
        header_len: at + 4,
        len,
    }))
}

/// XORs `data` with the masking key, starting at key offset 0 (§5.3).
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let mut w = [0u8; 4];
        w.copy_from_slice(c);
        let x = u32::from_ne_bytes(w) ^ word;
        c.copy_from_slice(&x.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(mask) {
        *b ^= k;
    }
}

/// Valid status codes in a received close frame: 1000–1014 except 1004,
/// 1005 and 1006 (reserved, never sent in a frame, §7.4.1), and 3000–4999
/// (registered and private use, §7.4.2); as Node's `ws` accepts.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Checks `data[checked..]` as UTF-8, allowing an incomplete sequence at the
/// end when `more` follows; returns how far `data` is now known good.
fn check_utf8(data: &[u8], checked: usize, more: bool) -> Result<usize, CloseError> {
    let rest = data.get(checked..).unwrap_or_default();
    match std::str::from_utf8(rest) {
        Ok(_) => Ok(data.len()),
        // An incomplete sequence at the end of a fragment may continue in
        // the next one; anything else is invalid at once (fail fast).
        Err(e) if more && e.error_len().is_none() => Ok(checked + e.valid_up_to()),
        Err(_) => Err(CloseError::InvalidData),
    }
}

impl Decoder {
    /// A decoder refusing messages over `max_payload` bytes, with RSV1
    /// allowed when permessage-deflate was negotiated.
    pub(crate) fn new(max_payload: usize, deflate: bool) -> Self {
        Decoder {
            max_payload,
            deflate,
            partial: None,
        }
    }

    /// How many more bytes the frame at the start of `buf` needs, when its
    /// header is complete (so that a reader can reserve room for it at once).
    pub(crate) fn missing(&self, buf: &[u8]) -> Option<usize> {
        let h = parse_header(buf).ok().flatten()?;
        let total = (h.header_len as u64).saturating_add(h.len);
        let total = usize::try_from(total).ok()?;
        // Never reserve for a frame that will be refused as too big.
        if h.len > self.max_payload as u64 {
            return None;
        }
        total.checked_sub(buf.len()).filter(|n| *n > 0)
    }

    /// Decodes what `buf` holds: `Ok(Some)` for a whole message or a control
    /// frame (its bytes removed from `buf`), `Ok(None)` when more bytes are
    /// needed (a complete data frame of a fragmented message is consumed and
    /// kept), `Err` when the connection must close with that error's code.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, CloseError> {
        loop {
            let Some(h) = parse_header(buf)? else {
                return Ok(None);
            };
            let is_control = h.opcode & 0x08 != 0;
            if is_control {
                if !matches!(h.opcode, opcode::CLOSE | opcode::PING | opcode::PONG) {
                    return Err(CloseError::Protocol("reserved control opcode"));
                }
                // §5.5: control frames are at most 125 bytes and not fragmented.
                if h.len > MAX_CONTROL as u64 {
                    return Err(CloseError::Protocol("control frame over 125 bytes"));
                }
                if !h.fin {
                    return Err(CloseError::Protocol("fragmented control frame"));
                }
                // RFC 7692 §6: RSV1 only on a data message's first frame.
                if h.rsv1 {
                    return Err(CloseError::Protocol("RSV1 on a control frame"));
                }
            } else {
                match h.opcode {
                    opcode::CONTINUATION => {
                        if self.partial.is_none() {
                            return Err(CloseError::Protocol("continuation without a message"));
                        }
                        if h.rsv1 {
                            return Err(CloseError::Protocol("RSV1 on a continuation frame"));
                        }
                    }
                    opcode::TEXT | opcode::BINARY => {
                        if self.partial.is_some() {
                            return Err(CloseError::Protocol(
                                "new message inside a fragmented one",
                            ));
                        }
                        if h.rsv1 && !self.deflate {
                            return Err(CloseError::Protocol("RSV1 without permessage-deflate"));
                        }
                    }
                    _ => return Err(CloseError::Protocol("reserved data opcode")),
                }
                // §10.4 / maxPayload: the message so far plus this frame.
                let so_far = self.partial.as_ref().map_or(0, |p| p.data.len()) as u64;
                if so_far.saturating_add(h.len) > self.max_payload as u64 {
                    return Err(CloseError::TooBig);
                }
            }
            // Bounded above: control ≤ 125, data ≤ max_payload (a usize).
            let len = usize::try_from(h.len).map_err(|_| CloseError::TooBig)?;
            let total = h.header_len + len;
            if buf.len() < total {
                return Ok(None);
            }
            buf.advance(h.header_len);
            let mut payload = buf.split_to(len);
            apply_mask(&mut payload, h.mask);

            if is_control {
                return self.control(h.opcode, payload.freeze()).map(Some);
            }
            if h.opcode != opcode::CONTINUATION {
                let text = h.opcode == opcode::TEXT;
                if h.fin {
                    return self.whole(text, h.rsv1, payload.freeze()).map(Some);
                }
                let mut p = Partial {
                    text,
                    compressed: h.rsv1,
                    data: payload,
                    checked: 0,
                };
                if p.text && !p.compressed {
                    p.checked = check_utf8(&p.data, 0, true)?;
                }
                self.partial = Some(p);
                continue;
            }
            let Some(mut p) = self.partial.take() else {
                return Err(CloseError::Protocol("continuation without a message"));
            };
            p.data.unsplit(payload);
            if p.text && !p.compressed {
                p.checked = check_utf8(&p.data, p.checked, !h.fin)?;
            }
            if h.fin {
                return self.whole(p.text, p.compressed, p.data.freeze()).map(Some);
            }
            self.partial = Some(p);
        }
    }

    fn whole(&self, text: bool, compressed: bool, data: Bytes) -> Result<Incoming, CloseError> {
        if compressed {
            return Ok(Incoming::Compressed { text, data });
        }
        if text {
            return Utf8Bytes::try_from(data)
                .map(Incoming::Text)
                .map_err(|_| CloseError::InvalidData);
        }
        Ok(Incoming::Binary(data))
    }

    fn control(&self, op: u8, payload: Bytes) -> Result<Incoming, CloseError> {
        match op {
            opcode::PING => Ok(Incoming::Ping(payload)),
            opcode::PONG => Ok(Incoming::Pong(payload)),
            _ => {
                let Some((c, reason)) = payload.split_first_chunk::<2>() else {
                    // §5.5.1: an empty body is allowed; one byte is not a code.
                    return if payload.is_empty() {
                        Ok(Incoming::Close(None))
                    } else {
                        Err(CloseError::Protocol("close body of one byte"))
                    };
                };
                let code = u16::from_be_bytes(*c);
                if !is_valid_close_code(code) {
                    return Err(CloseError::Protocol("invalid close code"));
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(CloseError::InvalidData);
                }
                Ok(Incoming::Close(Some(CloseBody {
                    code,
                    reason: payload.slice(2..),
                })))
            }
        }
    }
}

/// Appends one unmasked server frame with FIN set to `out` (§5.2), its
/// length in the fewest bytes; `rsv1` marks a compressed message (RFC 7692).
pub(crate) fn encode_frame(out: &mut BytesMut, opcode: u8, rsv1: bool, payload: &[u8]) {
    put_header(out, opcode, rsv1, payload.len());
    out.put_slice(payload);
}

/// The header of [`encode_frame`] alone, for a payload written after it.
pub(crate) fn put_header(out: &mut BytesMut, opcode: u8, rsv1: bool, n: usize) {
    out.put_u8(0x80 | if rsv1 { 0x40 } else { 0 } | (opcode & 0x0F));
    if n < 126 {
        out.put_u8(n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        out.put_u8(126);
        out.put_u16(n16);
    } else {
        out.put_u8(127);
        out.put_u64(n as u64);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client frame: masked with `mask`, header bits as given.
    pub(crate) fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u8(first);
        let n = payload.len();
        if n < 126 {
            out.put_u8(0x80 | n as u8);
        } else if let Ok(n16) = u16::try_from(n) {
            out.put_u8(0x80 | 126);
            out.put_u16(n16);
        } else {
            out.put_u8(0x80 | 127);
            out.put_u64(n as u64);
        }
        out.put_slice(&mask);
        let mut body = payload.to_vec();
        apply_mask(&mut body, mask);
        out.put_slice(&body);
        out.to_vec()
    }

    const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Result<Vec<Incoming>, CloseError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut buf)? {
            out.push(m);
        }
        assert!(buf.is_empty(), "left {} bytes", buf.len());
        Ok(out)
    }

    fn one(bytes: &[u8]) -> Result<Incoming, CloseError> {
        let mut d = Decoder::new(1 << 20, false);
        let mut got = decode_all(&mut d, bytes)?;
        assert_eq!(got.len(), 1);
        Ok(got.remove(0))
    }

    #[test]
    fn rfc_examples() {
        // §5.7: a single-frame masked text message "Hello".
        let f = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(one(&f), Ok(Incoming::Text("Hello".into())));
        // §5.7: an unmasked frame from a client is refused.
        assert_eq!(
            one(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
            Err(CloseError::Protocol("unmasked client frame"))
        );
        // Our encoding of "Hello" is the RFC's unmasked example.
        let mut out = BytesMut::new();
        encode_frame(&mut out, opcode::TEXT, false, b"Hello");
        assert_eq!(&out[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // §5.7: 256 bytes binary in one frame, 64 KiB in one frame.
        let mut out = BytesMut::new();
        encode_frame(&mut out, opcode::BINARY, false, &[0; 256]);
        assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
        let mut out = BytesMut::new();
        encode_frame(&mut out, opcode::BINARY, false, &[0; 65536]);
        assert_eq!(&out[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn every_length_class_both_ways() {
        for n in [0usize, 1, 125, 126, 127, 65535, 65536, 65537, 200_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let f = client_frame(0x82, &data, M);
            let header = match n {
                0..=125 => 6,
                126..=65535 => 8,
                _ => 14,
            };
            assert_eq!(f.len(), header + n, "client frame of {n}");
            assert_eq!(one(&f), Ok(Incoming::Binary(Bytes::from(data.clone()))));
            let mut out = BytesMut::new();
            encode_frame(&mut out, opcode::BINARY, false, &data);
            assert_eq!(out.len(), header - 4 + n, "minimal header for {n}");
            // Byte by byte: every prefix asks for more.
            let mut d = Decoder::new(1 << 20, false);
            let mut buf = BytesMut::new();
            for (i, b) in f.iter().enumerate() {
                buf.put_u8(*b);
                let got = d.decode(&mut buf).unwrap();
                if i + 1 < f.len() {
                    assert_eq!(got, None);
                    if n > 20 && i > 20 {
                        break; // the rest is the same path; keep the test fast
                    }
                } else {
                    assert_eq!(got, Some(Incoming::Binary(Bytes::from(data.clone()))));
                }
            }
        }
    }

    #[test]
    fn non_minimal_lengths_are_accepted_and_top_bit_refused() {
        // The RFC puts "minimal" on the sender; as Node's ws, we accept a
        // 16-bit length for 5 bytes.
        let mut f = vec![0x81, 0x80 | 126, 0, 5];
        f.extend_from_slice(&M);
        let mut body = b"Hello".to_vec();
        apply_mask(&mut body, M);
        f.extend_from_slice(&body);
        assert_eq!(one(&f), Ok(Incoming::Text("Hello".into())));
        let mut f = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        f.extend_from_slice(&M);
        assert_eq!(
            one(&f),
            Err(CloseError::Protocol("64-bit length with its top bit set"))
        );
    }

    #[test]
    fn fragments_with_pings_between_and_utf8_split_inside_a_sequence() {
        let text = "κόσμε €𝄞 done";
        let bytes = text.as_bytes();
        // Split inside "κ" (2 bytes), "€" (3 bytes) and "𝄞" (4 bytes).
        let cuts = [1, 5, 12, 15, bytes.len()];
        let mut wire = Vec::new();
        let mut at = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            let op = if i == 0 { 0x01 } else { 0x00 };
            let fin = if i + 1 == cuts.len() { 0x80 } else { 0 };
            wire.extend(client_frame(fin | op, &bytes[at..cut], M));
            wire.extend(client_frame(0x89, format!("p{i}").as_bytes(), M));
            at = cut;
        }
        let mut d = Decoder::new(1 << 20, false);
        let got = decode_all(&mut d, &wire).unwrap();
        let mut want: Vec<Incoming> = (0..cuts.len() - 1)
            .map(|i| Incoming::Ping(Bytes::from(format!("p{i}"))))
            .collect();
        want.push(Incoming::Text(text.into()));
        want.push(Incoming::Ping(Bytes::from(format!("p{}", cuts.len() - 1))));
        assert_eq!(got, want);
    }

    #[test]
    fn invalid_utf8_fails_fast_in_a_fragment_and_at_the_end() {
        let mut d = Decoder::new(1 << 20, false);
        // 0xC0 0x80 is never valid: refused in the first fragment already.
        let f = client_frame(0x01, &[b'a', 0xC0, 0x80], M);
        assert_eq!(decode_all(&mut d, &f), Err(CloseError::InvalidData));
        // A sequence cut at the end of the message.
        let mut d = Decoder::new(1 << 20, false);
        let mut wire = client_frame(0x01, &[b'a', 0xE2, 0x82], M);
        wire.extend(client_frame(0x80, &[], M));
        assert_eq!(decode_all(&mut d, &wire), Err(CloseError::InvalidData));
        assert_eq!(
            one(&client_frame(0x81, &[0xff], M)),
            Err(CloseError::InvalidData)
        );
        // Binary is not checked.
        assert_eq!(
            one(&client_frame(0x82, &[0xff], M)),
            Ok(Incoming::Binary(Bytes::from_static(&[0xff])))
        );
    }

    #[test]
    fn protocol_errors_name_their_rule() {
        let p = |first: u8, payload: &[u8]| one(&client_frame(first, payload, M));
        for op in [3u8, 4, 5, 6, 7] {
            assert_eq!(
                p(0x80 | op, b""),
                Err(CloseError::Protocol("reserved data opcode"))
            );
        }
        for op in [0xBu8, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                p(0x80 | op, b""),
                Err(CloseError::Protocol("reserved control opcode"))
            );
        }
        for rsv in [0x20u8, 0x10, 0x30] {
            assert_eq!(
                p(0x81 | rsv, b"x"),
                Err(CloseError::Protocol("RSV2/RSV3 set"))
            );
        }
        assert_eq!(
            p(0xC1, b"x"),
            Err(CloseError::Protocol("RSV1 without permessage-deflate"))
        );
        assert_eq!(
            p(0x89, &[0; 126]),
            Err(CloseError::Protocol("control frame over 125 bytes"))
        );
        assert_eq!(
            p(0x89, &[0; 125]),
            Ok(Incoming::Ping(Bytes::from(vec![0; 125])))
        );
        assert_eq!(
            p(0x09, b""),
            Err(CloseError::Protocol("fragmented control frame"))
        );
        assert_eq!(
            p(0x80, b"x"),
            Err(CloseError::Protocol("continuation without a message"))
        );
        let mut wire = client_frame(0x01, b"a", M);
        wire.extend(client_frame(0x81, b"b", M));
        assert_eq!(
            decode_all(&mut Decoder::new(100, false), &wire),
            Err(CloseError::Protocol("new message inside a fragmented one"))
        );
        // Control frames with RSV1 are refused even with deflate on.
        let mut d = Decoder::new(100, true);
        assert_eq!(
            decode_all(&mut d, &client_frame(0xC9, b"", M)),
            Err(CloseError::Protocol("RSV1 on a control frame"))
        );
        let mut d = Decoder::new(100, true);
        let mut wire = client_frame(0x41, b"a", M);
        wire.extend(client_frame(0xC0, b"b", M));
        assert_eq!(
            decode_all(&mut d, &wire),
            Err(CloseError::Protocol("RSV1 on a continuation frame"))
        );
    }

    #[test]
    fn close_bodies() {
        let c = |body: &[u8]| one(&client_frame(0x88, body, M));
        assert_eq!(c(b""), Ok(Incoming::Close(None)));
        assert_eq!(c(&[3]), Err(CloseError::Protocol("close body of one byte")));
        for ok in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            let mut body = ok.to_be_bytes().to_vec();
            body.extend_from_slice("bye ✓".as_bytes());
            assert_eq!(
                c(&body),
                Ok(Incoming::Close(Some(CloseBody {
                    code: ok,
                    reason: Bytes::from("bye ✓")
                })))
            );
        }
        for bad in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                c(&bad.to_be_bytes()),
                Err(CloseError::Protocol("invalid close code")),
                "{bad}"
            );
        }
        assert_eq!(c(&[0x03, 0xE8, 0xff]), Err(CloseError::InvalidData));
    }

    #[test]
    fn max_payload_counts_the_whole_message_and_is_checked_from_the_header() {
        let mut d = Decoder::new(10, false);
        // Refused from the header alone, before the payload arrived.
        let f = client_frame(0x82, &[0; 11], M);
        let mut buf = BytesMut::from(&f[..6]);
        assert_eq!(d.decode(&mut buf), Err(CloseError::TooBig));
        // Exactly the limit passes; fragments add up.
        assert_eq!(
            decode_all(
                &mut Decoder::new(10, false),
                &client_frame(0x82, &[1; 10], M)
            )
            .map(|v| v.len()),
            Ok(1)
        );
        let mut wire = client_frame(0x02, &[0; 6], M);
        wire.extend(client_frame(0x80, &[0; 5], M));
        assert_eq!(
            decode_all(&mut Decoder::new(10, false), &wire),
            Err(CloseError::TooBig)
        );
        // A huge declared length never allocates.
        let mut f = vec![
            0x82,
            0x80 | 127,
            0x7f,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        f.extend_from_slice(&M);
        assert_eq!(
            Decoder::new(10, false).decode(&mut BytesMut::from(&f[..])),
            Err(CloseError::TooBig)
        );
        assert_eq!(Decoder::new(10, false).missing(&f), None);
    }

    #[test]
    fn compressed_messages_are_returned_whole_with_their_kind() {
        let mut d = Decoder::new(100, true);
        let mut wire = client_frame(0x41, b"ab", M);
        wire.extend(client_frame(0x89, b"", M));
        wire.extend(client_frame(0x80, b"cd", M));
        assert_eq!(
            decode_all(&mut d, &wire),
            Ok(vec![
                Incoming::Ping(Bytes::new()),
                Incoming::Compressed {
                    text: true,
                    data: Bytes::from_static(b"abcd")
                }
            ])
        );
    }

    proptest! {
        /// Any message, split into any fragments with pings between them,
        /// fed in any chunks, comes back whole.
        #[test]
        fn reassembly_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            text in any::<bool>(),
            cuts in proptest::collection::vec(0usize..3000, 0..6),
            chunk in 1usize..700,
            mask in any::<[u8; 4]>(),
        ) {
            let data = if text {
                String::from_utf8_lossy(&data).into_owned().into_bytes()
            } else {
                data
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(data.len());
            let mut wire = Vec::new();
            let mut at = 0;
            for (i, &cut) in cuts.iter().enumerate() {
                let op = if i == 0 { if text { 1 } else { 2 } } else { 0 };
                let fin = if i + 1 == cuts.len() { 0x80 } else { 0 };
                wire.extend(client_frame(fin | op, &data[at..cut], mask));
                if fin == 0 {
                    wire.extend(client_frame(0x8A, b"pong", mask));
                }
                at = cut;
            }
            let mut d = Decoder::new(1 << 16, false);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                buf.extend_from_slice(c);
                while let Some(m) = d.decode(&mut buf).unwrap() {
                    got.push(m);
                }
            }
            let last = got.pop().unwrap();
            prop_assert!(got.iter().all(|m| *m == Incoming::Pong(Bytes::from_static(b"pong"))));
            if text {
                prop_assert_eq!(last, Incoming::Text(Utf8Bytes::try_from(Bytes::from(data)).unwrap()));
            } else {
                prop_assert_eq!(last, Incoming::Binary(Bytes::from(data)));
            }
        }

        /// The fuzz target's property (`fuzzing::check_ws_frame`) over client
        /// frames built from arbitrary header bytes and payloads.
        #[test]
        fn fuzz_property_twin(
            config in any::<u8>(),
            frames in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..6),
        ) {
            let mut data = vec![config];
            for (first, payload) in frames {
                data.extend(client_frame(first, &payload, M));
            }
            crate::fuzzing::check_ws_frame(&data);
        }

        /// Arbitrary bytes never panic, and an error is final.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut d = Decoder::new(256, true);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }

        /// What we encode, a client-side parse reads back (length and bits).
        #[test]
        fn encode_round_trip(len in 0usize..70_000, op in prop_oneof![Just(1u8), Just(2u8)], rsv1 in any::<bool>()) {
            let data = vec![b'x'; len];
            let mut out = BytesMut::new();
            encode_frame(&mut out, op, rsv1, &data);
            // Mask the frame as a client would, then decode it.
            let b0 = out[0];
            prop_assert_eq!(b0, 0x80 | if rsv1 { 0x40 } else { 0 } | op);
            let wire = client_frame(b0, &data, M);
            let mut d = Decoder::new(1 << 20, true);
            let got = d.decode(&mut BytesMut::from(&wire[..])).unwrap().unwrap();
            match (rsv1, op) {
                (true, _) => prop_assert_eq!(got, Incoming::Compressed { text: op == 1, data: Bytes::from(data) }),
                (false, 1) => prop_assert_eq!(got, Incoming::Text(Utf8Bytes::try_from(Bytes::from(data)).unwrap())),
                _ => prop_assert_eq!(got, Incoming::Binary(Bytes::from(data))),
            }
        }
    }
}

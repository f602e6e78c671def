//! One Socket.IO v5 client over a raw Engine.IO v4 WebSocket: the handshake,
//! then text frames in and out with pings (`2`) answered (`3`) on the way.
//!
//! The WebSocket framing (RFC 6455) is done here by hand, on a plain
//! `TcpStream` with one small read buffer per connection, so that the receive
//! path of the broadcast scenarios costs one `read` per batch of frames and a
//! `memcmp` per frame: no allocation, no UTF-8 validation, no JSON parsing.
//! The load generator has to stay much cheaper than the servers it measures.

use std::ops::Range;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What every server sends each socket on connect (`auth` event); ignored.
pub const AUTH_PREFIX: &[u8] = b"42[\"auth\",";

/// Read buffer per connection; grows only for a frame larger than this.
const READ_BUF: usize = 8 * 1024;
/// Largest frame accepted from a server (the servers' own default limit).
const MAX_FRAME: usize = 1 << 20;

#[derive(Debug)]
pub struct Client {
    tcp: TcpStream,
    /// Received bytes `buf[start..end]` not yet parsed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented text message being reassembled (rare: servers send small
    /// messages unfragmented).
    frag: Vec<u8>,
    fragmenting: bool,
    /// Outgoing frames are built here, then written at once.
    out: Vec<u8>,
    /// xorshift state for the client-to-server masking keys.
    mask_state: u32,
}

/// Where the payload of the last text message is.
enum Loc {
    Buf(Range<usize>),
    Frag,
}

/// One parsed frame header at `buf[start..]`.
struct Frame {
    fin: bool,
    opcode: u8,
    /// Payload range in `buf`.
    payload: Range<usize>,
    /// Total frame length (header and payload).
    len: usize,
}

/// What `count` saw.
#[derive(Debug, Default)]
pub struct Counted {
    /// Frames equal to the expected one.
    pub got: usize,
    /// Other frames (the `auth` event excepted).
    pub corrupt: usize,
    /// The first such frame, cut to 200 bytes.
    pub first_bad: Option<String>,
    /// When the last expected frame was read (per read batch).
    pub last: Option<Instant>,
}

static KEY_SEED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0x9e37_79b9);

impl Client {
    /// TCP connect, WebSocket upgrade, read the Engine.IO open packet, send
    /// the Socket.IO CONNECT `40` for `/`, wait for `40{"sid":...}`.
    pub async fn connect(addr: &str) -> Result<Client, String> {
        Client::connect_from(addr, None, READ_BUF).await
    }

    /// [`Client::connect`] from the local address `source` (any port), if
    /// given: one loopback address has ~28 000 ephemeral ports towards one
    /// server address, so C100K spreads its clients over 127.0.0.x. `buf`
    /// is the initial read buffer (it grows for larger frames).
    pub async fn connect_from(
        addr: &str,
        source: Option<std::net::IpAddr>,
        buf: usize,
    ) -> Result<Client, String> {
        let tcp = match source {
            None => TcpStream::connect(addr)
                .await
                .map_err(|e| format!("tcp connect: {e}"))?,
            Some(ip) => {
                let remote: std::net::SocketAddr =
                    addr.parse().map_err(|e| format!("--addr {addr}: {e}"))?;
                let sock = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(|e| format!("socket: {e}"))?;
                // Pick the port at connect time, by the whole 4-tuple: a
                // bind to port 0 alone searches for a port no socket of this
                // address uses (slow with thousands bound, and it limits one
                // source address to the ephemeral range once, not per server).
                bind_address_no_port(&sock);
                sock.bind(std::net::SocketAddr::new(ip, 0))
                    .map_err(|e| format!("bind {ip}: {e}"))?;
                sock.connect(remote)
                    .await
                    .map_err(|e| format!("tcp connect from {ip}: {e}"))?
            }
        };
        let _ = tcp.set_nodelay(true);
        let seed = KEY_SEED.fetch_add(0x6d2b_79f5, std::sync::atomic::Ordering::Relaxed);
        let mut client = Client {
            tcp,
            buf: vec![0; buf.max(64)],
            start: 0,
            end: 0,
            frag: Vec::new(),
            fragmenting: false,
            out: Vec::with_capacity(256),
            mask_state: seed | 1,
        };
        client.upgrade(addr).await?;
        let open = client.recv().await?;
        if !(open.starts_with(b"0{") && contains(open, b"\"sid\"")) {
            return Err(format!(
                "expected an Engine.IO open packet, got {}",
                show(open)
            ));
        }
        client.send("40").await?;
        loop {
            let msg = client.recv().await?;
            if msg.starts_with(b"40{") && contains(msg, b"\"sid\"") {
                return Ok(client);
            }
            if !msg.starts_with(AUTH_PREFIX) {
                return Err(format!("expected a CONNECT ack, got {}", show(msg)));
            }
        }
    }

    /// The HTTP/1.1 upgrade; bytes after the response stay in the buffer.
    async fn upgrade(&mut self, addr: &str) -> Result<(), String> {
        let mut key = [0u8; 16];
        for chunk in key.chunks_mut(4) {
            chunk.copy_from_slice(&self.next_mask());
        }
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            base64(&key)
        );
        self.tcp
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("websocket handshake: {e}"))?;
        loop {
            if let Some(i) = find(&self.buf[..self.end], b"\r\n\r\n") {
                let head = &self.buf[..i];
                if !(head.starts_with(b"HTTP/1.1 101") || head.starts_with(b"HTTP/1.0 101")) {
                    return Err(format!("websocket handshake: got {}", show(head)));
                }
                self.start = i + 4;
                return Ok(());
            }
            if self.end == self.buf.len() {
                return Err("websocket handshake: response head too large".into());
            }
            let n = self
                .tcp
                .read(&mut self.buf[self.end..])
                .await
                .map_err(|e| format!("websocket handshake: {e}"))?;
            if n == 0 {
                return Err("websocket handshake: connection ended".into());
            }
            self.end += n;
        }
    }

    /// Reads more bytes into the buffer, making room first (compacting, or
    /// growing for a frame larger than the buffer).
    async fn fill(&mut self, need: usize) -> Result<(), String> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.start < need {
            // The pending frame does not fit after `start`: move it to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                self.buf.resize(need, 0);
            }
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self
            .tcp
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection ended".into());
        }
        self.end += n;
        Ok(())
    }

    /// Parses the frame at `start`, if complete. Err(need) when more bytes
    /// are needed: the total frame length if known, or a header bound.
    fn parse(&mut self) -> Result<Option<Frame>, String> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        let opcode = b[0] & 0x0f;
        if b[0] & 0x70 != 0 {
            return Err("websocket: reserved bits set".into());
        }
        let masked = b[1] & 0x80 != 0;
        let (len, mut hdr) = match b[1] & 0x7f {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([b[2], b[3]]) as usize, 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let l = u64::from_be_bytes(b[2..10].try_into().unwrap_or_default());
                (usize::try_from(l).unwrap_or(usize::MAX), 10)
            }
            l => (l as usize, 2),
        };
        if len > MAX_FRAME {
            return Err(format!("websocket: frame of {len} bytes"));
        }
        let mask_at = hdr;
        if masked {
            hdr += 4;
        }
        let total = hdr + len;
        if b.len() < total {
            return Ok(None);
        }
        let p = self.start + hdr..self.start + total;
        if masked {
            let key: [u8; 4] = b[mask_at..mask_at + 4].try_into().unwrap_or_default();
            for (i, x) in self.buf[p.clone()].iter_mut().enumerate() {
                *x ^= key[i & 3];
            }
        }
        Ok(Some(Frame {
            fin,
            opcode,
            payload: p,
            len: total,
        }))
    }

    /// How many bytes the frame at `start` needs in all (a lower bound while
    /// its header is incomplete).
    fn needed(&self) -> usize {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return 2;
        }
        let mask = if b[1] & 0x80 != 0 { 4 } else { 0 };
        match b[1] & 0x7f {
            126 if b.len() < 4 => 4,
            126 => 4 + mask + u16::from_be_bytes([b[2], b[3]]) as usize,
            127 if b.len() < 10 => 10,
            127 => {
                let l = u64::from_be_bytes(b[2..10].try_into().unwrap_or_default());
                10 + mask + usize::try_from(l).unwrap_or(usize::MAX).min(MAX_FRAME)
            }
            l => 2 + mask + l as usize,
        }
    }

    /// The next complete text message in the buffer, if any; control frames
    /// and Engine.IO pings are answered on the way (their replies are queued
    /// in `out`, to be flushed by the caller).
    fn next_buffered(&mut self) -> Result<Option<Loc>, String> {
        while let Some(f) = self.parse()? {
            self.start += f.len;
            match f.opcode {
                0x1 if self.fragmenting => {
                    return Err("websocket: new text frame inside a fragmented one".into());
                }
                0x1 if f.fin => {
                    if &self.buf[f.payload.clone()] == b"2" {
                        self.queue_frame(0x1, b"3");
                        continue;
                    }
                    return Ok(Some(Loc::Buf(f.payload)));
                }
                0x1 => {
                    self.fragmenting = true;
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[f.payload]);
                }
                0x0 if self.fragmenting => {
                    self.frag.extend_from_slice(&self.buf[f.payload]);
                    if f.fin {
                        self.fragmenting = false;
                        if self.frag == b"2" {
                            self.queue_frame(0x1, b"3");
                            continue;
                        }
                        return Ok(Some(Loc::Frag));
                    }
                }
                0x9 => {
                    let payload = self.buf[f.payload].to_vec();
                    self.queue_frame(0xA, &payload);
                }
                0xA => {}
                0x2 => return Err("unexpected binary frame".into()),
                0x8 => {
                    let p = &self.buf[f.payload];
                    let code = if p.len() >= 2 {
                        u16::from_be_bytes([p[0], p[1]])
                    } else {
                        1005
                    };
                    return Err(format!(
                        "closed by server: code {code} {:?}",
                        String::from_utf8_lossy(p.get(2..).unwrap_or_default())
                    ));
                }
                op => return Err(format!("websocket: unexpected opcode {op}")),
            }
        }
        Ok(None)
    }

    /// The next text message that is not an Engine.IO ping; a ping is
    /// answered with a pong. An error on close, EOF, a binary frame or a
    /// transport error. The bytes are valid until the next call.
    pub async fn recv(&mut self) -> Result<&[u8], String> {
        loop {
            let next = self.next_buffered()?;
            self.flush_out().await?;
            match next {
                Some(Loc::Buf(r)) => return Ok(&self.buf[r]),
                Some(Loc::Frag) => return Ok(&self.frag),
                None => {
                    let need = self.needed();
                    self.fill(need).await?;
                }
            }
        }
    }

    /// The broadcast receive path: reads until `n` messages equal to
    /// `expected` arrived, counting into `c` (other messages than the `auth`
    /// event count as corrupt). Stamps `c.last` once per read batch. On an
    /// error `c` holds the counts so far.
    pub async fn count(
        &mut self,
        expected: &[u8],
        n: usize,
        c: &mut Counted,
    ) -> Result<(), String> {
        let goal = c.got + n;
        while c.got < goal {
            let before = c.got;
            while c.got < goal {
                let Some(loc) = self.next_buffered()? else {
                    break;
                };
                let m = match loc {
                    Loc::Buf(r) => &self.buf[r],
                    Loc::Frag => &self.frag[..],
                };
                if m == expected {
                    c.got += 1;
                } else if !m.starts_with(AUTH_PREFIX) {
                    c.corrupt += 1;
                    if c.first_bad.is_none() {
                        c.first_bad = Some(show(&m[..m.len().min(200)]));
                    }
                }
            }
            if c.got > before {
                c.last = Some(Instant::now());
            }
            self.flush_out().await?;
            if c.got < goal {
                let need = self.needed();
                self.fill(need).await?;
            }
        }
        Ok(())
    }

    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_ne_bytes()
    }

    /// Appends one masked frame to `out`.
    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        let key = self.next_mask();
        let out = &mut self.out;
        out.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    }

    async fn flush_out(&mut self) -> Result<(), String> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.tcp.write_all(&self.out).await;
        self.out.clear();
        r.map_err(|e| format!("send: {e}"))
    }

    /// Sends one text frame.
    pub async fn send(&mut self, text: &str) -> Result<(), String> {
        self.queue_frame(0x1, text.as_bytes());
        self.flush_out().await
    }

    /// Sends text frames together (one write where possible).
    pub async fn send_all<'a>(
        &mut self,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        for t in texts {
            self.queue_frame(0x1, t.as_bytes());
        }
        self.flush_out().await
    }
}

/// A message for an error line (lossy UTF-8, cut to 200 characters).
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(200).collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(char::from(A[(n >> 18) as usize & 63]));
        s.push(char::from(A[(n >> 12) as usize & 63]));
        s.push(if c.len() > 1 {
            char::from(A[(n >> 6) as usize & 63])
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            char::from(A[n as usize & 63])
        } else {
            '='
        });
    }
    s
}

/// A JSON string literal of `len` printable bytes that starts with `tag`.
pub fn payload(tag: &str, len: usize) -> String {
    const FILL: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(len + 2);
    s.push('"');
    s.push_str(tag);
    let mut i = 0;
    while s.len() < len + 1 {
        s.push(char::from(FILL[i % FILL.len()]));
        i += 1;
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::{Client, Counted, base64};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    /// A fake server: handshake, then frames in odd pieces; the client must
    /// count the good ones, flag the corrupt one, answer the ping with `3`.
    #[tokio::test]
    async fn counts_and_flags_frames() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let big = format!("42[\"msg\",\"{}\"]", "x".repeat(20_000));
        let expected = big.clone();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).await.unwrap();
                req.extend_from_slice(&b[..n]);
            }
            let mut out = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
            out.extend(frame(true, 1, b"0{\"sid\":\"a\"}"));
            s.write_all(&out).await.unwrap();
            // The client's `40`.
            let n = s.read(&mut b).await.unwrap();
            assert_eq!(n, 8);
            let mut out = frame(true, 1, b"40{\"sid\":\"b\"}");
            out.extend(frame(true, 1, b"42[\"auth\",{}]"));
            out.extend(frame(true, 1, big.as_bytes()));
            out.extend(frame(true, 1, b"2"));
            let mut bad = big.clone().into_bytes();
            bad[100] = b'y';
            out.extend(frame(true, 1, &bad));
            out.extend(frame(false, 1, &big.as_bytes()[..10]));
            out.extend(frame(true, 9, b"p"));
            out.extend(frame(true, 0, &big.as_bytes()[10..]));
            out.extend(frame(true, 1, big.as_bytes()));
            for piece in out.chunks(777) {
                s.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            // The pong `3` (masked, 7 bytes) and the WebSocket pong (7 bytes).
            let mut got = Vec::new();
            while got.len() < 14 {
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&b[..n]);
            }
            got
        });
        let mut c = Client::connect(&addr).await.unwrap();
        let mut counted = Counted::default();
        c.count(expected.as_bytes(), 3, &mut counted).await.unwrap();
        assert_eq!((counted.got, counted.corrupt), (3, 1));
        assert!(counted.first_bad.unwrap().starts_with("42[\"msg\",\"xxx"));
        let replies = server.await.unwrap();
        assert_eq!(replies[0], 0x81);
        assert_eq!(replies[1], 0x81);
        assert_eq!(replies[6] ^ replies[2], b'3');
        assert_eq!(replies[7], 0x8A);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
    }
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` (Linux ≥ 4.2) on `sock`; best effort.
fn bind_address_no_port(sock: &tokio::net::TcpSocket) {
    use std::os::fd::AsRawFd;
    const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the
    // size passed.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

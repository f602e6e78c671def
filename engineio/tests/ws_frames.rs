//! The WebSocket data path against the real server, with raw TCP frames:
//! RFC 6455 framing (every length class, fragments split inside a UTF-8
//! sequence, pings between fragments, every refused frame with its close
//! code, the close handshake) and permessage-deflate (RFC 7692: negotiation,
//! compressed messages both ways, threshold, decompression bomb), as
//! Autobahn's fuzzing client checks them.

// The raw client's helpers are outside `#[test]` functions (not covered by
// clippy.toml's allow-*-in-tests); a failed helper fails its test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::io::Write;

use bytes::Bytes;
use engineio::{EngineConfig, PerMessageDeflate};
use support::{Server, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASK: [u8; 4] = [0x1f, 0x8b, 0x55, 0xe1];

/// A raw WebSocket client: frames written and read by hand.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// The response's `Sec-WebSocket-Extensions`, if any.
    extensions: Option<String>,
    /// The session id from the open packet.
    sid: String,
}

/// One frame from the server.
#[derive(Debug, PartialEq)]
struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Raw deflate with a sync flush, the `00 00 ff ff` tail removed (RFC 7692 §7.2.1).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.flush().unwrap();
    let mut out = z.get_ref().clone();
    assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut z = flate2::write::DeflateDecoder::new(Vec::new());
    z.write_all(&input).unwrap();
    z.flush().unwrap();
    z.get_ref().clone()
}

impl Raw {
    /// Opens an Engine.IO WebSocket session (offering `extensions`) and
    /// reads its open packet.
    async fn open(server: &Server, extensions: Option<&str>) -> Raw {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            server.url("transport=websocket")
        );
        if let Some(e) = extensions {
            req.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = within("the 101", async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i;
                }
                let mut chunk = [0u8; 1024];
                let n = tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "EOF before the 101");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        let extensions = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| v.trim().to_owned())
        });
        let rest = buf[end + 4..].to_vec();
        let mut raw = Raw {
            tcp,
            buf: rest,
            extensions,
            sid: String::new(),
        };
        let open = raw.recv().await;
        assert_eq!(open.opcode, 1);
        let open = if open.rsv1 {
            inflate(&open.payload)
        } else {
            open.payload
        };
        assert_eq!(open[0], b'0');
        let v: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
        raw.sid = v["sid"].as_str().unwrap().to_owned();
        raw
    }

    async fn send(&mut self, first: u8, payload: &[u8]) {
        self.send_raw(&client_frame(first, payload, MASK)).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = vec![0u8; 64 * 1024];
            match self.tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        true
    }

    /// The next frame; `None` at EOF. Checks that server frames are unmasked
    /// and their length minimal.
    async fn next(&mut self) -> Option<Frame> {
        within("a frame", async {
            if !self.fill(2).await {
                return None;
            }
            let (b0, b1) = (self.buf[0], self.buf[1]);
            assert_eq!(b1 & 0x80, 0, "server frames are not masked");
            let (len, at) = match b1 & 0x7f {
                126 => {
                    assert!(self.fill(4).await);
                    let n = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                    assert!(n >= 126, "minimal length");
                    (n, 4)
                }
                127 => {
                    assert!(self.fill(10).await);
                    let n = u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize;
                    assert!(n > 0xFFFF, "minimal length");
                    (n, 10)
                }
                n => (n as usize, 2),
            };
            assert!(self.fill(at + len).await, "EOF inside a frame");
            let payload = self.buf[at..at + len].to_vec();
            self.buf.drain(..at + len);
            Some(Frame {
                fin: b0 & 0x80 != 0,
                rsv1: b0 & 0x40 != 0,
                opcode: b0 & 0x0f,
                payload,
            })
        })
        .await
    }

    async fn recv(&mut self) -> Frame {
        self.next().await.expect("a frame, got EOF")
    }

    /// Expects a close frame (skipping data frames before it) and returns
    /// its code; then expects the server to end the TCP connection.
    async fn expect_close(&mut self) -> Option<u16> {
        loop {
            let f = self.recv().await;
            if f.opcode == 8 {
                // Answer it, as a client does, then the server ends TCP.
                self.send(0x88, &f.payload).await;
                assert_eq!(self.next().await, None, "TCP closed after the close");
                return (f.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
            }
        }
    }
}

fn deflate_config() -> EngineConfig {
    EngineConfig::default().per_message_deflate(Some(PerMessageDeflate::default().threshold(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_length_class_echoes_with_minimal_headers() {
    let server = Server::start(EngineConfig::default()).await;
    let mut ws = Raw::open(&server, None).await;
    for n in [1usize, 2, 125, 126, 127, 65535, 65536, 65537, 300_000] {
        let mut text = vec![b'4'];
        text.extend((1..n).map(|i| b'a' + (i % 26) as u8));
        ws.send(0x81, &text).await;
        let f = ws.recv().await;
        assert_eq!((f.fin, f.rsv1, f.opcode), (true, false, 1));
        assert_eq!(f.payload, text, "text of {n}");
        let data: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
        ws.send(0x82, &data).await;
        let f = ws.recv().await;
        assert_eq!((f.opcode, f.payload.len()), (2, n));
        assert_eq!(f.payload, data);
    }
    // An empty binary message too.
    ws.send(0x82, b"").await;
    assert_eq!(ws.recv().await.payload, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_split_inside_utf8_with_pings_between() {
    let server = Server::start(EngineConfig::default()).await;
    let mut ws = Raw::open(&server, None).await;
    let text = "4κόσμε €𝄞!";
    let b = text.as_bytes();
    // Cuts inside "κ", "€" and "𝄞".
    let cuts = [2, 12, 17, b.len()];
    let mut at = 0;
    for (i, &cut) in cuts.iter().enumerate() {
        let op = if i == 0 { 0x01 } else { 0x00 };
        let fin = if i + 1 == cuts.len() { 0x80 } else { 0 };
        ws.send(fin | op, &b[at..cut]).await;
        at = cut;
        if fin == 0 {
            let ping = format!("ping {i}");
            ws.send(0x89, ping.as_bytes()).await;
            let pong = ws.recv().await;
            assert_eq!((pong.opcode, pong.payload), (0xA, ping.into_bytes()));
        }
    }
    let echo = ws.recv().await;
    assert_eq!((echo.opcode, echo.payload.as_slice()), (1, b));
    // A pong from the client is ignored; the connection goes on.
    ws.send(0x8A, b"unsolicited").await;
    ws.send(0x81, b"4still").await;
    assert_eq!(ws.recv().await.payload, b"4still");
}

/// Each refused frame gets its close code, then the TCP connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_frames_get_their_close_codes() {
    let server = Server::start(EngineConfig::default().max_payload(1000)).await;
    let mut big = vec![b'4'];
    big.extend(std::iter::repeat_n(b'x', 1000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("reserved data opcode", client_frame(0x83, b"", MASK), 1002),
        (
            "reserved control opcode",
            client_frame(0x8B, b"", MASK),
            1002,
        ),
        ("RSV2", client_frame(0xA1, b"4x", MASK), 1002),
        ("RSV3", client_frame(0x91, b"4x", MASK), 1002),
        (
            "RSV1 without deflate",
            client_frame(0xC1, b"4x", MASK),
            1002,
        ),
        (
            "ping over 125 bytes",
            client_frame(0x89, &[0; 126], MASK),
            1002,
        ),
        ("fragmented ping", client_frame(0x09, b"", MASK), 1002),
        ("unmasked", vec![0x81, 0x02, b'4', b'x'], 1002),
        ("continuation first", client_frame(0x80, b"4x", MASK), 1002),
        (
            "invalid UTF-8",
            client_frame(0x81, &[b'4', 0xff], MASK),
            1007,
        ),
        ("over max_payload", client_frame(0x81, &big, MASK), 1009),
        (
            "close code 1005",
            client_frame(0x88, &1005u16.to_be_bytes(), MASK),
            1002,
        ),
        (
            "close body of one byte",
            client_frame(0x88, &[3], MASK),
            1002,
        ),
        (
            "close reason not UTF-8",
            client_frame(0x88, &[3, 232, 0xC0], MASK),
            1007,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut ws = Raw::open(&server, None).await;
        ws.send_raw(&bytes).await;
        assert_eq!(ws.expect_close().await, Some(code), "{what}");
    }
    // Exactly max_payload is fine.
    let mut ws = Raw::open(&server, None).await;
    ws.send(0x81, &big[..1000]).await;
    assert_eq!(ws.recv().await.payload.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_close_is_echoed_and_the_server_close_is_1000() {
    let server = Server::start(EngineConfig::default()).await;
    let mut ws = Raw::open(&server, None).await;
    let mut body = 1001u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"going away");
    ws.send(0x88, &body).await;
    let f = ws.recv().await;
    assert_eq!((f.opcode, f.payload), (8, 1001u16.to_be_bytes().to_vec()));
    assert_eq!(ws.next().await, None);
    // An empty close is answered with an empty close.
    let mut ws = Raw::open(&server, None).await;
    ws.send(0x88, b"").await;
    assert_eq!(
        ws.recv().await,
        Frame {
            fin: true,
            rsv1: false,
            opcode: 8,
            payload: vec![]
        }
    );
    assert_eq!(ws.next().await, None);
    // The application closes: 1000, after what was queued.
    let mut ws = Raw::open(&server, None).await;
    let mut text = vec![b'4'];
    text.extend_from_slice(support::SERVER_CLOSE.as_bytes());
    ws.send(0x81, &text).await;
    assert_eq!(ws.expect_close().await, Some(1000));
}

/// Regression for the direct writer of 314118e: a batch half written when the
/// client's close arrived was cut, and the close frame went out in the middle
/// of a frame. The close now comes after the rest of the frame in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_during_a_large_write_comes_after_whole_frames() {
    let config = EngineConfig::default()
        .high_water_mark(64 << 20)
        .max_buffered_bytes(64 << 20);
    let server = Server::start(config).await;
    let mut ws = Raw::open(&server, None).await;
    ws.send(0x81, b"4hello").await;
    assert_eq!(ws.recv().await.payload, b"4hello");
    let socket = server.engine.socket(&ws.sid).unwrap();
    let chunk = Bytes::from(vec![0x5A; 1 << 20]);
    // 24 MiB for a client that does not read: more than the socket buffers take.
    for _ in 0..24 {
        socket.send_binary(chunk.clone()).unwrap();
    }
    // Wait until the writer is inside the first frame (its header and some
    // of its payload arrived); it then blocks on the full socket buffers.
    // (A close sent before the writer started would be answered at once,
    // with no frame: valid, but not the case under test.)
    within("the first frame to start", ws.fill(10 + 4096)).await;
    ws.send(0x88, &1000u16.to_be_bytes()).await;
    let mut whole = 0;
    loop {
        let f = ws.recv().await;
        match f.opcode {
            2 => {
                assert!(f.payload == chunk[..], "a binary frame was cut");
                whole += 1;
            }
            8 => {
                assert_eq!(f.payload, 1000u16.to_be_bytes());
                break;
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert!((1..=24).contains(&whole), "{whole}");
    assert_eq!(ws.next().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_is_negotiated_only_when_on_and_offered_acceptably() {
    let off = Server::start(EngineConfig::default()).await;
    let ws = Raw::open(&off, Some("permessage-deflate; client_max_window_bits")).await;
    assert_eq!(ws.extensions, None);
    let on = Server::start(deflate_config()).await;
    let ws = Raw::open(&on, None).await;
    assert_eq!(ws.extensions, None);
    let ws = Raw::open(&on, Some("permessage-deflate; client_max_window_bits")).await;
    assert_eq!(
        ws.extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    // A smaller window for the server is taken and answered.
    let ws = Raw::open(&on, Some("permessage-deflate; server_max_window_bits=10")).await;
    assert_eq!(
        ws.extensions.as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        )
    );
    // An invalid offer is declined: no compression.
    let ws = Raw::open(&on, Some("permessage-deflate; server_max_window_bits=16")).await;
    assert_eq!(ws.extensions, None);
    // Without the extension, RSV1 is a protocol error even on a deflate server.
    let mut ws = Raw::open(&on, None).await;
    ws.send(0xC1, &deflate(b"4x")).await;
    assert_eq!(ws.expect_close().await, Some(1002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_messages_both_ways() {
    let server = Server::start(deflate_config()).await;
    let mut ws = Raw::open(&server, Some("permessage-deflate")).await;
    for n in [1usize, 100, 5000, 200_000] {
        let mut text = vec![b'4'];
        text.extend((1..n).map(|i| b"abcab"[i % 5]));
        ws.send(0xC1, &deflate(&text)).await;
        let f = ws.recv().await;
        assert!(f.rsv1, "threshold 0: compressed");
        assert_eq!(f.opcode, 1);
        assert_eq!(inflate(&f.payload), text, "text of {n}");
        // Uncompressed from the client is fine too (RSV1 is per message).
        ws.send(0x81, &text).await;
        let f = ws.recv().await;
        assert_eq!(inflate(&f.payload), text);
        let data: Vec<u8> = (0..n).map(|i| (i % 7) as u8).collect();
        ws.send(0xC2, &deflate(&data)).await;
        let f = ws.recv().await;
        assert!(f.rsv1);
        assert_eq!((f.opcode, inflate(&f.payload)), (2, data));
    }
    // A compressed message in fragments, with a ping between them.
    let c = deflate(b"4fragmented and compressed");
    let (a, b) = c.split_at(c.len() / 2);
    ws.send(0x41, a).await;
    ws.send(0x89, b"p").await;
    assert_eq!(ws.recv().await.opcode, 0xA);
    ws.send(0x80, b).await;
    assert_eq!(
        inflate(&ws.recv().await.payload),
        b"4fragmented and compressed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_leaves_small_messages_uncompressed() {
    let server = Server::start(
        EngineConfig::default().per_message_deflate(Some(PerMessageDeflate::default())),
    )
    .await;
    let mut ws = Raw::open(&server, Some("permessage-deflate")).await;
    ws.send(0x81, b"4small").await;
    let f = ws.recv().await;
    assert_eq!((f.rsv1, f.payload.as_slice()), (false, &b"4small"[..]));
    let big = vec![b'4'; 1024];
    ws.send(0x81, &big).await;
    let f = ws.recv().await;
    assert!(f.rsv1);
    assert_eq!(inflate(&f.payload), big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_or_bad_data_closes_with_its_code() {
    let server = Server::start(deflate_config().max_payload(100_000)).await;
    let mut ws = Raw::open(&server, Some("permessage-deflate")).await;
    // 10 MB of zeros compress to ~10 KB: far under max_payload compressed.
    let bomb = deflate(&vec![b'4'; 10_000_000]);
    assert!(bomb.len() < 100_000);
    ws.send(0xC1, &bomb).await;
    assert_eq!(ws.expect_close().await, Some(1009));
    let mut ws = Raw::open(&server, Some("permessage-deflate")).await;
    ws.send(0xC1, &[0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(ws.expect_close().await, Some(1007));
    // Inflated text must be UTF-8.
    let mut ws = Raw::open(&server, Some("permessage-deflate")).await;
    ws.send(0xC1, &deflate(&[b'4', 0xff])).await;
    assert_eq!(ws.expect_close().await, Some(1007));
    // The server still serves others.
    let mut ws = Raw::open(&server, Some("permessage-deflate")).await;
    ws.send(0xC1, &deflate(b"4ok")).await;
    assert_eq!(inflate(&ws.recv().await.payload), b"4ok");
}

//! The WebSocket transport: one Engine.IO packet per message, text frames for
//! text packets, binary frames for binary messages.
//!
//! The frames are ours both ways ([`crate::ws::frame`]): reads go through
//! [`BatchedRead`] into a buffer that exists only while a frame is partly
//! read; writes encode a whole batch of packets into one buffer, written with
//! as few `write` calls as the socket allows, and dropped after it.
//!
//! # Invariants
//! - **One writer.** Every byte sent on the socket (packets, pongs, the close
//!   frame) is written by this connection's task from one buffer whose
//!   written prefix is consumed as it goes: when the reader or the watchdog
//!   ends the connection while a batch is half written, the close frame is
//!   appended after the rest of that batch, never in the middle of a frame.
//! - **Close, then FIN, then linger.** A close frame is flushed before the
//!   write side is shut down (FIN); when the server started the close, the
//!   connection then reads and discards until the client's close or EOF
//!   (at most [`LINGER`]) before it is dropped, so that unread client bytes
//!   cannot turn the end into a reset that could destroy the close frame
//!   in the client's buffers.
//! - **An upgrade probe is closed by the session only**: its writer closes it
//!   when the session says so (`WsOutput::Close`), which a graceful close does
//!   not do before the session is closed (see `Session::close_gracefully`).
//!   The race that once lost the close of a probe is written there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::batched_read::{BatchedRead, CHUNK};
use crate::config::PerMessageDeflate;
use crate::packet::{Message, Packet, Str};
use crate::payload_v3::{binary_frame_v3, decode_binary_packet_v3, decode_packet_v3};
use crate::proto::{CloseReason, Conn, Protocol, WsOutput};
use crate::socket::{Received, Shared, now, run_timer};
use crate::tasks::TaskSet;
use crate::ws::deflate;
use crate::ws::frame::{CloseError, Decoder, Incoming, code, encode_frame, opcode};

/// How long a closed session's WebSocket may take to flush before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long the close frame (and what was queued before it) may take to be written.
const CLOSE_WRITE: Duration = Duration::from_secs(5);

/// How long a server-started close waits for the client's close frame (or
/// EOF) before the connection is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// A batch is written out once its buffer reaches this size.
const WRITE_BATCH: usize = 64 * 1024;

/// What a WebSocket connection was negotiated with.
#[derive(Debug)]
pub(crate) struct WsLink {
    /// Largest message accepted (compressed or inflated); 1009 over it.
    pub(crate) max_payload: usize,
    /// permessage-deflate, when the client offered it and the server has it on.
    pub(crate) deflate: Option<DeflateLink>,
    /// Held while the connection may keep its own zlib state (context
    /// takeover); freed when the connection ends.
    pub(crate) takeover: Option<deflate::TakeoverSlot>,
}

/// permessage-deflate on one connection: the server's options and what
/// the handshake negotiated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeflateLink {
    pub(crate) config: PerMessageDeflate,
    pub(crate) negotiated: deflate::Negotiated,
}

/// The read side: a decoder over bytes taken in batches.
struct Reader<R> {
    io: BatchedRead<R>,
    /// Bytes read and not yet decoded: empty, and unallocated, between frames.
    buf: BytesMut,
    decoder: Decoder,
}

/// Why reading stopped.
enum ReadFail {
    /// The socket failed or ended.
    Io,
    /// The client broke a rule: close with this error's code.
    Close(CloseError),
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// The next message or control frame; `Ok(None)` at EOF.
    async fn next(&mut self) -> Result<Option<Incoming>, ReadFail> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(m)) => {
                    if self.buf.is_empty() {
                        // Let go of the batch's buffer (messages may still
                        // share it); an idle connection holds none.
                        self.buf = BytesMut::new();
                    }
                    return Ok(Some(m));
                }
                Ok(None) => {}
                Err(e) => return Err(ReadFail::Close(e)),
            }
            let n = match self.decoder.missing(&self.buf) {
                // A large frame: room for all of it, read straight into it.
                Some(missing) if missing >= CHUNK => {
                    self.buf.reserve(missing);
                    self.io.read_buf(&mut self.buf).await
                }
                _ => self.io.read_batch(&mut self.buf).await,
            }
            .map_err(|_| ReadFail::Io)?;
            if n == 0 {
                return Ok(None);
            }
        }
    }
}

/// The write side: frames encoded into `out`, written from its front.
struct Writer<W> {
    io: W,
    out: BytesMut,
    protocol: Protocol,
    b64: bool,
    /// Boxed: most connections have no deflate, and the task keeps this
    /// for its whole life.
    deflate: Option<Box<WriteDeflate>>,
}

/// The write side's permessage-deflate.
struct WriteDeflate {
    link: DeflateLink,
    /// This connection's own compressor, with server-to-client context
    /// takeover (made on its first compressed message).
    context: Option<flate2::Compress>,
}

/// The read side's own inflater, with client-to-server context takeover
/// (boxed in the connection's task, which most connections do without).
struct InflateContext {
    window_bits: u8,
    inflater: Option<flate2::Decompress>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    fn new(io: W, protocol: Protocol, b64: bool, deflate: Option<DeflateLink>) -> Self {
        Writer {
            io,
            out: BytesMut::new(),
            protocol,
            b64,
            deflate: deflate.map(|link| {
                Box::new(WriteDeflate {
                    link,
                    context: None,
                })
            }),
        }
    }

    /// Writes what `out` holds. Cancel-safe: written bytes leave `out` as
    /// they go, so a later call continues where this one stopped.
    async fn flush(&mut self) -> std::io::Result<()> {
        while !self.out.is_empty() {
            if self.io.write_buf(&mut self.out).await? == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
        }
        // An idle connection keeps no write buffer.
        self.out = BytesMut::new();
        Ok(())
    }

    /// Appends a message frame, compressed when the link has deflate and
    /// the frame reaches its threshold.
    fn put_message(&mut self, op: u8, payload: &[u8], text: Option<&Str>) {
        let deflate = self.deflate.as_deref_mut();
        if let Some(d) = deflate.filter(|d| payload.len() >= d.link.config.threshold) {
            let level = d.link.config.level;
            let bits = deflate::compress_window(d.link.negotiated.server_max_window_bits);
            let compressed = match text {
                // Context takeover: this connection's own history, so its
                // own bytes (a broadcast frame cannot be shared).
                _ if d.link.negotiated.server_takeover => {
                    deflate::compress_with(&mut d.context, payload, level, bits)
                }
                Some(t) => t.deflated_frame(level, bits, |b| deflate::compress(b, level, bits)),
                None => deflate::compress(payload, level, bits),
            };
            if let Some(c) = compressed {
                encode_frame(&mut self.out, op, true, &c);
                return;
            }
        }
        encode_frame(&mut self.out, op, false, payload);
    }

    /// Appends the frame of `p` (v3: binary with its type byte, or as
    /// `b4<base64>` text for a `b64` client, as `encodePacket` of the
    /// reference's `packages/engine.io/lib/parser-v3/index.ts`).
    fn put_packet(&mut self, p: Packet) {
        match p {
            Packet::Message(Message::Binary(b)) if self.protocol == Protocol::V3 && self.b64 => {
                let t = crate::payload_v3::base64_text_v3(&b);
                self.put_message(opcode::TEXT, t.as_bytes(), None);
            }
            Packet::Message(Message::Binary(b)) if self.protocol == Protocol::V3 => {
                let f = binary_frame_v3(&b);
                self.put_message(opcode::BINARY, &f, None);
            }
            Packet::Message(Message::Binary(b)) => self.put_message(opcode::BINARY, &b, None),
            Packet::Message(Message::Text(t)) if self.deflate.is_some() => {
                let f = t.message_frame_bytes();
                self.put_message(opcode::TEXT, f.as_bytes(), Some(&t));
            }
            other => {
                let f = other.to_text_frame();
                self.put_message(opcode::TEXT, f.as_bytes(), None);
            }
        }
    }

    /// Flushes what is queued, then sends a close frame and shuts the write
    /// side down (FIN), within [`CLOSE_WRITE`].
    async fn close(&mut self, body: &[u8]) -> bool {
        let sent = tokio::time::timeout(CLOSE_WRITE, async {
            self.flush().await?;
            encode_frame(&mut self.out, opcode::CLOSE, false, body);
            self.flush().await?;
            self.io.shutdown().await
        })
        .await;
        matches!(sent, Ok(Ok(())))
    }
}

/// An upgraded connection split in halves: the plain TCP stream when the
/// server is ours (the HTTP layer's buffers are then freed), any hyper
/// upgrade otherwise.
enum Halves {
    Tcp(
        tokio::net::tcp::OwnedReadHalf,
        tokio::net::tcp::OwnedWriteHalf,
        BytesMut,
    ),
    Other(
        tokio::io::ReadHalf<TokioIo<hyper::upgrade::Upgraded>>,
        tokio::io::WriteHalf<TokioIo<hyper::upgrade::Upgraded>>,
    ),
}

async fn upgrade(on: OnUpgrade) -> Option<Halves> {
    let upgraded = match on.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return None;
        }
    };
    Some(match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            // Bytes the client sent after its request are kept; hyper's read
            // buffer is released.
            let early = BytesMut::from(parts.read_buf.as_ref());
            let (r, w) = parts.io.into_inner().into_split();
            Halves::Tcp(r, w, early)
        }
        Err(upgraded) => {
            let (r, w) = tokio::io::split(TokioIo::new(upgraded));
            Halves::Other(r, w)
        }
    })
}

/// Completes an upgrade that cannot join its session, then closes it at once
/// (a second WebSocket for a session that is upgrading or upgraded).
pub(crate) async fn refuse(on: OnUpgrade) {
    match upgrade(on).await {
        Some(Halves::Tcp(_, w, _)) => {
            Writer::new(w, Protocol::V4, false, None).close(&[]).await;
        }
        Some(Halves::Other(_, w)) => {
            Writer::new(w, Protocol::V4, false, None).close(&[]).await;
        }
        None => {}
    }
}

/// What a WebSocket connection does besides moving packets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsRole {
    /// This task also drives the session's timers (a session opened on a
    /// WebSocket, which has no other task for them).
    pub(crate) timers: bool,
    /// v3 only: the WebSocket's request asked for `b64=1` (a client with
    /// `forceBase64`), so binary goes as `b4<base64>` text frames: the
    /// reference decides `supportsBinary` per transport from the query of
    /// the request that made it (`packages/engine.io/lib/transport.ts`).
    pub(crate) b64: bool,
}

/// Decodes a received message in the session's protocol: in v3 a text
/// message may be `b4<base64>` and a binary one starts with the type byte.
fn decode_message(
    text: Option<Utf8Bytes>,
    binary: Option<Bytes>,
    protocol: Protocol,
) -> Option<Result<Packet, crate::DecodeError>> {
    match (text, binary, protocol) {
        (Some(t), _, Protocol::V3) => Some(decode_packet_v3(Str::from_utf8_bytes(t).into_bytes())),
        // `b<base64>` is a binary message in a text frame too (what a
        // client with `forceBase64` sends), as in a polling payload.
        (Some(t), _, _) => Some(Packet::decode_polling_item(
            Str::from_utf8_bytes(t).into_bytes(),
        )),
        (None, Some(b), Protocol::V3) => Some(decode_binary_packet_v3(b)),
        (None, Some(b), _) => Some(Ok(Packet::decode_binary(b))),
        (None, None, _) => None,
    }
}

struct CountGuard(Arc<AtomicUsize>);

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a WebSocket connection ends.
enum Finish {
    /// The server closes: send a close frame with this code, then linger.
    Close(u16),
    /// The client sent a close frame: answer it (with its code), then drop.
    Answer(Option<u16>),
    /// The socket is gone, or the peer does not read: just drop it.
    Drop,
}

enum ReadEnd {
    /// The socket ended or failed.
    Gone,
    /// The client sent a close frame with this code (or none).
    Closed(Option<u16>),
    /// The client broke the protocol (or a limit): close with this code.
    Refused(u16),
}

/// Runs WebSocket `conn` of a session until it is closed (see [`WsRole`]).
#[allow(clippy::too_many_arguments)] // two call sites, both in service.rs
pub(crate) async fn run(
    shared: Arc<Shared>,
    conn: u64,
    on: OnUpgrade,
    link: WsLink,
    open: Arc<AtomicUsize>,
    headers: Arc<http::HeaderMap>,
    role: WsRole,
    tasks: TaskSet,
) {
    let timers = role.timers;
    let upgrading = upgrade(on);
    tokio::pin!(upgrading);
    let halves = if timers {
        tokio::select! {
            h = &mut upgrading => h,
            // The session closed first; the connection still gets its close.
            () = run_timer(shared.clone()) => upgrading.await,
        }
    } else {
        upgrading.await
    };
    let decoder = Decoder::new(link.max_payload, link.deflate.is_some());
    let (protocol, b64, deflate) = (shared.protocol, role.b64, link.deflate);
    // The connection then lives in a task of its own, sized for `drive`
    // alone: this one's state (the handshake) is several times larger and
    // would otherwise be kept for the connection's whole life.
    match halves {
        Some(Halves::Tcp(r, w, early)) => {
            let reader = Reader {
                io: BatchedRead::new(r),
                buf: early,
                decoder,
            };
            let w = Writer::new(w, protocol, b64, deflate);
            tasks.spawn(drive(shared, conn, reader, w, link, open, headers, timers));
        }
        Some(Halves::Other(r, w)) => {
            let reader = Reader {
                io: BatchedRead::new(r),
                buf: BytesMut::new(),
                decoder,
            };
            let w = Writer::new(w, protocol, b64, deflate);
            tasks.spawn(drive(shared, conn, reader, w, link, open, headers, timers));
        }
        None => {
            shared
                .with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
        }
    }
}

/// Moves packets between the WebSocket and the session until either ends.
///
/// Its state is the connection's task for the connection's whole life: it is
/// kept small (see ARCHITECTURE.md, memory per connection). A plain `fn`
/// returning an `async move` block, as an `async fn` would hold its
/// arguments twice; the rare end-of-life steps (close, linger) are boxed.
#[allow(clippy::too_many_arguments)] // the two halves of `run`
#[allow(clippy::manual_async_fn)] // on purpose, see above
fn drive<R, W>(
    shared: Arc<Shared>,
    conn: u64,
    mut rd: Reader<R>,
    mut wr: Writer<W>,
    link: WsLink,
    open: Arc<AtomicUsize>,
    headers: Arc<http::HeaderMap>,
    timers: bool,
) -> impl std::future::Future<Output = ()> + Send
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Only what the task needs is moved into it.
    let WsLink {
        max_payload,
        deflate,
        takeover,
    } = link;
    let deflate_on = deflate.is_some();
    let mut client_context = deflate.filter(|d| d.negotiated.client_takeover).map(|d| {
        Box::new(InflateContext {
            window_bits: d
                .negotiated
                .client_max_window_bits
                .unwrap_or(deflate::MAX_WINDOW_BITS),
            inflater: None,
        })
    });
    async move {
        tracing::debug!(sid = %shared.sid, conn, deflate = deflate_on, "websocket open");
        // A context takeover slot is held until this connection ends.
        let _takeover = takeover;
        open.fetch_add(1, Ordering::Relaxed);
        let _count = CountGuard(open);
        let tx = shared.incoming_sender();
        // The payload of the last ping the client sent and we have not answered
        // (RFC 6455 §5.5.3: answering the most recent one is enough).
        let ping: Mutex<Option<Bytes>> = Mutex::new(None);

        let reader = async {
            let end = |reason| {
                shared.with_wake(|s| s.handle_transport_end(Conn::Ws(conn), reason));
            };
            loop {
                let (text, binary) = match rd.next().await {
                    Ok(Some(Incoming::Text(t))) => (Some(t), None),
                    Ok(Some(Incoming::Binary(b))) => (None, Some(b)),
                    Ok(Some(Incoming::Compressed { text, data })) => {
                        let inflated = match client_context.as_deref_mut() {
                            Some(c) => deflate::inflate_with(
                                &mut c.inflater,
                                &data,
                                max_payload,
                                c.window_bits,
                            ),
                            None => deflate::inflate(&data, max_payload),
                        };
                        let inflated = inflated.and_then(|b| {
                            if text {
                                Utf8Bytes::try_from(b)
                                    .map(|t| (Some(t), None))
                                    .map_err(|_| CloseError::InvalidData)
                            } else {
                                Ok((None, Some(b)))
                            }
                        });
                        match inflated {
                            Ok(m) => m,
                            Err(e) => {
                                tracing::warn!(sid = %shared.sid, error = %e, "bad compressed websocket message; closing");
                                end(CloseReason::TransportError);
                                return ReadEnd::Refused(e.code());
                            }
                        }
                    }
                    Ok(Some(Incoming::Ping(payload))) => {
                        *ping.lock().unwrap_or_else(PoisonError::into_inner) = Some(payload);
                        shared.wake();
                        continue;
                    }
                    Ok(Some(Incoming::Pong(_))) => continue,
                    Ok(Some(Incoming::Close(body))) => {
                        end(CloseReason::TransportClose);
                        return ReadEnd::Closed(body.map(|b| b.code));
                    }
                    Ok(None) => {
                        end(CloseReason::TransportClose);
                        return ReadEnd::Gone;
                    }
                    Err(ReadFail::Io) => {
                        tracing::debug!(sid = %shared.sid, "websocket read error");
                        end(CloseReason::TransportError);
                        return ReadEnd::Gone;
                    }
                    Err(ReadFail::Close(e)) => {
                        tracing::warn!(sid = %shared.sid, error = %e, "websocket frame refused; closing");
                        end(CloseReason::TransportError);
                        return ReadEnd::Refused(e.code());
                    }
                };
                // The message the inbox had no room for. Every temporary of
                // this match ends before the wait below, which is boxed: the
                // connection's task keeps neither across it.
                let blocked = match decode_message(text, binary, shared.protocol) {
                    Some(Ok(p)) => {
                        let upgrade = matches!(p, Packet::Upgrade);
                        let (msg, upgraded) = shared.with(|s| {
                            let before = s.transport();
                            let msg = s.handle_packet(now(), Conn::Ws(conn), p);
                            (msg, upgrade && before != s.transport())
                        });
                        if upgraded {
                            if let Some(o) = &shared.observer {
                                o.session_upgraded(shared.sid);
                            }
                        }
                        match (msg, tx.as_ref()) {
                            (Some(message), Some(tx)) => tx
                                .try_send(Received {
                                    message,
                                    headers: headers.clone(),
                                })
                                .map(|received| Box::pin(tx.send(received))),
                            (Some(_), None) => None,
                            // Not handed to the application: a control packet, or a
                            // message that aborted a probe; the writers must look again.
                            (None, _) => {
                                shared.wake();
                                None
                            }
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(sid = %shared.sid, error = %e, "undecodable websocket message");
                        shared.with_wake(|s| s.handle_decode_error(Conn::Ws(conn)));
                        None
                    }
                    None => None,
                };
                // Waits while the application's inbox is full (backpressure).
                if let Some(wait) = blocked {
                    wait.await;
                }
            }
        };

        let writer = async {
            loop {
                let changed = shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let pong = ping.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(payload) = &pong {
                    encode_frame(&mut wr.out, opcode::PONG, false, payload);
                }
                let (packets, close) = match shared.with(|s| s.take_ws(now(), conn)) {
                    WsOutput::Idle if pong.is_none() => {
                        changed.await;
                        continue;
                    }
                    WsOutput::Idle => (Vec::new(), false),
                    WsOutput::Packets(p) => (p, false),
                    WsOutput::Close(p) => (p, true),
                };
                // Not a `for` loop: its `Option<Packet>` would be kept across
                // the flush, in every connection's task.
                let mut packets = packets.into_iter();
                loop {
                    let Some(p) = packets.next() else { break };
                    wr.put_packet(p);
                    if wr.out.len() >= WRITE_BATCH && wr.flush().await.is_err() {
                        return false;
                    }
                }
                if wr.flush().await.is_err() {
                    return false;
                }
                if close {
                    return true;
                }
            }
        };

        // Once the session is closed, the writer gets a grace period to deliver
        // what is left; a client that does not read is then dropped, so that its
        // connection and buffers do not outlive the session. When this task owns
        // the session's timers, they run until it is closed.
        let watchdog = async {
            if timers {
                run_timer(shared.clone()).await;
            } else {
                shared.wait_closed().await;
            }
            tokio::time::sleep(CLOSE_GRACE).await;
        };

        let finish = {
            tokio::pin!(reader);
            tokio::pin!(writer);
            tokio::pin!(watchdog);
            tokio::select! {
                () = &mut watchdog => {
                    tracing::debug!(sid = %shared.sid, conn, "websocket not drained after close; dropping it");
                    Finish::Drop
                }
                end = &mut reader => match end {
                    ReadEnd::Gone => Finish::Drop,
                    ReadEnd::Closed(code) => Finish::Answer(code),
                    ReadEnd::Refused(code) => Finish::Close(code),
                },
                ok = &mut writer => {
                    if ok {
                        Finish::Close(code::NORMAL)
                    } else {
                        shared.with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
                        Finish::Drop
                    }
                }
            }
        };
        drop(tx);
        match finish {
            Finish::Close(code) => {
                if Box::pin(wr.close(&code.to_be_bytes())).await {
                    Box::pin(linger(&mut rd)).await;
                }
            }
            Finish::Answer(code) => {
                // RFC 6455 §5.5.1: the reply typically echoes the code.
                let body = code.map(u16::to_be_bytes);
                Box::pin(wr.close(body.as_ref().map_or(&[][..], |b| b.as_slice()))).await;
            }
            Finish::Drop => {}
        }
        tracing::debug!(sid = %shared.sid, conn, "websocket closed");
    }
}

/// After a server-started close: reads (and drops) what the client still
/// sends until its close frame or EOF, for at most [`LINGER`].
async fn linger<R: AsyncRead + Unpin>(rd: &mut Reader<R>) {
    let _ = tokio::time::timeout(LINGER, async {
        loop {
            match rd.next().await {
                Ok(Some(Incoming::Close(_))) | Ok(None) | Err(ReadFail::Io) => return,
                Ok(Some(_)) => {}
                // Past a refused frame, the rest is raw bytes to skip.
                Err(ReadFail::Close(_)) => {
                    rd.buf = BytesMut::new();
                    let mut sink = [0u8; 1024];
                    while matches!(rd.io.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression test: a WebSocket connection's task lives as long as the
    /// connection, so its state is what every idle connection costs. As an
    /// `async fn` with the close and linger steps inline it was 1.9 KiB, and
    /// 1.2 KiB with temporaries kept across the inbox wait and the flush.
    #[test]
    fn the_connection_state_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let (shared, _incoming, conn) = crate::socket::tests::ws_shared();
        let (a, b) = tokio::io::duplex(64);
        let (r, _) = tokio::io::split(a);
        let (_, w) = tokio::io::split(b);
        let link = WsLink {
            max_payload: 1 << 20,
            deflate: None,
            takeover: None,
        };
        let reader = Reader {
            io: BatchedRead::new(r),
            buf: BytesMut::new(),
            decoder: Decoder::new(link.max_payload, false),
        };
        let writer = Writer::new(w, Protocol::V4, false, None);
        let fut = drive(
            shared,
            conn,
            reader,
            writer,
            link,
            Arc::default(),
            Arc::default(),
            true,
        );
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 1150, "{size} bytes");
    }
}

//! The WebSocket transport: one Engine.IO packet per frame, text frames for
//! text packets, binary frames for binary messages.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::batched_read::BatchedRead;
use crate::packet::{Message, Packet, Str};
use crate::proto::{CloseReason, Conn, WsOutput};
use crate::socket::{Received, Shared, now, run_timer};

/// An upgraded connection: the plain TCP stream when the server is ours (the
/// HTTP layer's buffers are then freed; tungstenite decodes what the client
/// sends, and we write our frames to the socket ourselves), any hyper
/// upgrade otherwise (tungstenite both ways).
enum Ws {
    Tcp(WebSocketStream<ReadOnly>, OwnedWriteHalf),
    Other(WebSocketStream<BatchedRead<TokioIo<hyper::upgrade::Upgraded>>>),
}

/// The read half of a TCP connection, for tungstenite. What tungstenite
/// writes by itself (pong and close replies) is dropped: the connection's
/// writer sends those (see [`RawWriter`]).
struct ReadOnly(BatchedRead<OwnedReadHalf>);

impl AsyncRead for ReadOnly {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadOnly {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Appends one unmasked server frame (FIN set) to `out` (RFC 6455 §5.2).
fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let n = payload.len();
    if n < 126 {
        out.push(n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        out.push(126);
        out.extend_from_slice(&n16.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Frames written in one `write` at most (a larger batch takes several).
const WRITE_BATCH: usize = 64 * 1024;

/// Writes our frames straight to the socket: every frame of a batch is
/// encoded into one buffer (built per batch and dropped after it, so an idle
/// connection holds none) and sent with one write.
struct RawWriter {
    tcp: OwnedWriteHalf,
}

impl RawWriter {
    async fn write_packets(&mut self, packets: Vec<Packet>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(packets.len().saturating_mul(64).min(WRITE_BATCH));
        for p in packets {
            match p {
                Packet::Message(Message::Binary(b)) => put_frame(&mut buf, 0x2, &b),
                other => put_frame(&mut buf, 0x1, other.to_text_frame().as_str().as_bytes()),
            }
            if buf.len() >= WRITE_BATCH {
                self.tcp.write_all(&buf).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            self.tcp.write_all(&buf).await?;
        }
        Ok(())
    }

    async fn write_control(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(payload.len() + 4);
        put_frame(&mut buf, opcode, payload);
        self.tcp.write_all(&buf).await
    }
}

/// Where a connection's frames go.
enum Out<S> {
    Raw(RawWriter),
    Tung(futures_util::stream::SplitSink<WebSocketStream<S>, WsMessage>),
}

impl<S> Out<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn write_packets(&mut self, packets: Vec<Packet>) -> Result<(), ()> {
        match self {
            Out::Raw(w) => w.write_packets(packets).await.map_err(drop),
            Out::Tung(sink) => {
                let n = packets.len();
                for p in packets {
                    sink.feed(frame(p)).await.map_err(drop)?;
                }
                if n > 0 {
                    sink.flush().await.map_err(drop)?;
                }
                Ok(())
            }
        }
    }

    /// Answers a ping (tungstenite does it by itself on its own sink).
    async fn pong(&mut self, payload: &[u8]) -> Result<(), ()> {
        match self {
            Out::Raw(w) => w.write_control(0xA, payload).await.map_err(drop),
            Out::Tung(_) => Ok(()),
        }
    }

    async fn finish(&mut self, how: Finish) {
        let secs = std::time::Duration::from_secs;
        match (self, how) {
            (_, Finish::Drop) => {}
            (Out::Raw(w), Finish::Frame(code)) => {
                let body = u16::from(code).to_be_bytes();
                let _ = tokio::time::timeout(secs(5), async {
                    w.write_control(0x8, &body).await?;
                    w.tcp.shutdown().await
                })
                .await;
            }
            (Out::Raw(w), Finish::Polite(code)) => {
                // Echo the client's close code, as RFC 6455 §5.5.1 suggests
                // (not one that must never be sent in a frame).
                let body = code
                    .filter(|c| c.is_allowed())
                    .map(|c| u16::from(c).to_be_bytes());
                let _ = tokio::time::timeout(secs(1), async {
                    w.write_control(0x8, body.as_ref().map_or(&[][..], |b| &b[..]))
                        .await?;
                    w.tcp.shutdown().await
                })
                .await;
            }
            (Out::Tung(sink), Finish::Frame(code)) => {
                let frame = CloseFrame {
                    code,
                    reason: "".into(),
                };
                let _ =
                    tokio::time::timeout(secs(5), sink.send(WsMessage::Close(Some(frame)))).await;
            }
            (Out::Tung(sink), Finish::Polite(_)) => {
                let _ = tokio::time::timeout(secs(1), sink.close()).await;
            }
        }
    }
}

/// How long a closed session's WebSocket may take to flush before it is dropped.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Socket buffers sized for many idle connections: tungstenite grows its read
/// buffer as needed up to the message limit (reads themselves are batched by
/// [`BatchedRead`]). Written frames collect in a buffer and go out in one
/// write per batch (`flush`) or per 16 KiB.
pub(crate) fn ws_config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(max_payload.saturating_mul(2).max(1 << 20))
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

async fn upgrade(on: OnUpgrade, max_payload: usize) -> Option<Ws> {
    let upgraded = match on.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return None;
        }
    };
    let config = Some(ws_config(max_payload));
    Some(match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            // Bytes the client sent after its request are kept; hyper's read
            // buffer is released.
            let early = parts.read_buf.to_vec();
            let (read, write) = parts.io.into_inner().into_split();
            let read = ReadOnly(BatchedRead::new(read));
            let ws = WebSocketStream::from_partially_read(read, early, Role::Server, config).await;
            Ws::Tcp(ws, write)
        }
        Err(upgraded) => {
            let io = BatchedRead::new(TokioIo::new(upgraded));
            Ws::Other(WebSocketStream::from_raw_socket(io, Role::Server, config).await)
        }
    })
}

/// Completes an upgrade that cannot join its session, then closes it at once
/// (a second WebSocket for a session that is upgrading or upgraded).
pub(crate) async fn refuse(on: OnUpgrade, max_payload: usize) {
    match upgrade(on, max_payload).await {
        Some(Ws::Tcp(_, write)) => {
            let mut w = RawWriter { tcp: write };
            let _ = w.write_control(0x8, &[]).await;
            let _ = w.tcp.shutdown().await;
        }
        Some(Ws::Other(mut ws)) => {
            let _ = ws.close(None).await;
        }
        None => {}
    }
}

fn frame(p: Packet) -> WsMessage {
    match p {
        Packet::Message(Message::Binary(b)) => WsMessage::Binary(b),
        other => WsMessage::Text(other.to_text_frame()),
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
    /// Send a close frame with this code.
    Frame(CloseCode),
    /// Complete the closing handshake if the peer started it (with its code).
    Polite(Option<CloseCode>),
    /// The peer does not read: just drop the connection.
    Drop,
}

enum ReadEnd {
    /// The session or this connection is finished; the writer decides what to
    /// send (the client's close code, if it sent a close frame).
    Done(Option<CloseCode>),
    /// A message over `max_payload`: close with 1009.
    TooBig,
}

/// Runs WebSocket `conn` of a session until it is closed. With `timers`,
/// this task also drives the session's timers (a session opened on a
/// WebSocket, which has no other task for them).
pub(crate) async fn run(
    shared: Arc<Shared>,
    conn: u64,
    on: OnUpgrade,
    max_payload: usize,
    open: Arc<AtomicUsize>,
    headers: Arc<http::HeaderMap>,
    timers: bool,
) {
    let upgrading = upgrade(on, max_payload);
    tokio::pin!(upgrading);
    let ws = if timers {
        tokio::select! {
            ws = &mut upgrading => ws,
            // The session closed first; the connection still gets its close.
            () = run_timer(shared.clone()) => upgrading.await,
        }
    } else {
        upgrading.await
    };
    // The connection then lives in a task of its own, sized for `drive`
    // alone: this one's state (the handshake) is several times larger and
    // would otherwise be kept for the connection's whole life.
    match ws {
        Some(Ws::Tcp(ws, write)) => {
            let out: Out<ReadOnly> = Out::Raw(RawWriter { tcp: write });
            tokio::spawn(drive(shared, conn, ws, out, open, headers, timers));
        }
        Some(Ws::Other(ws)) => {
            let (sink, stream) = ws.split();
            tokio::spawn(drive(
                shared,
                conn,
                stream,
                Out::Tung(sink),
                open,
                headers,
                timers,
            ));
        }
        None => {
            shared
                .with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
        }
    }
}

/// Moves packets between the WebSocket and the session until either ends.
async fn drive<St, S>(
    shared: Arc<Shared>,
    conn: u64,
    mut stream: St,
    mut out: Out<S>,
    open: Arc<AtomicUsize>,
    headers: Arc<http::HeaderMap>,
    timers: bool,
) where
    St: Stream<Item = Result<WsMessage, WsError>> + Unpin + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    futures_util::stream::SplitSink<WebSocketStream<S>, WsMessage>: Sink<WsMessage> + Send,
{
    tracing::debug!(sid = %shared.sid, conn, "websocket open");
    open.fetch_add(1, Ordering::Relaxed);
    let _count = CountGuard(open);
    let tx = shared.incoming_sender();
    // The payload of the last ping the client sent and we have not answered
    // (RFC 6455 §5.5.3: answering only the most recent one is enough).
    let ping: Mutex<Option<Bytes>> = Mutex::new(None);

    let reader = async {
        loop {
            let packet = match stream.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    // `b<base64>` is a binary message in a text frame too (what a
                    // client with `forceBase64` sends), as in a polling payload.
                    let text = Str::from_utf8_bytes(t);
                    Packet::decode_polling_item(text.into_bytes())
                }
                Some(Ok(WsMessage::Binary(b))) => Ok(Packet::decode_binary(b)),
                Some(Ok(WsMessage::Ping(payload))) => {
                    *ping.lock().unwrap_or_else(PoisonError::into_inner) = Some(payload);
                    shared.changed.notify_waiters();
                    continue;
                }
                Some(Ok(WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                Some(Ok(WsMessage::Close(frame))) => {
                    shared.with_wake(|s| {
                        s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportClose)
                    });
                    return ReadEnd::Done(frame.map(|f| f.code));
                }
                None => {
                    shared.with_wake(|s| {
                        s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportClose)
                    });
                    return ReadEnd::Done(None);
                }
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    tracing::warn!(sid = %shared.sid, size, max_size, "websocket message over max_payload; closing");
                    shared.with_wake(|s| {
                        s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError)
                    });
                    return ReadEnd::TooBig;
                }
                Some(Err(e)) => {
                    tracing::debug!(sid = %shared.sid, error = %e, "websocket read error");
                    shared.with_wake(|s| {
                        s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError)
                    });
                    return ReadEnd::Done(None);
                }
            };
            match packet {
                Ok(p) => {
                    let msg = shared.with(|s| s.handle_packet(now(), Conn::Ws(conn), p));
                    match (msg, tx.as_ref()) {
                        (Some(message), Some(tx)) => {
                            let received = Received {
                                message,
                                headers: headers.clone(),
                            };
                            // Waits while the application's inbox is full
                            // (backpressure); boxed, so that this rare wait
                            // takes no room in the connection's task.
                            if let Some(received) = tx.try_send(received) {
                                Box::pin(tx.send(received)).await;
                            }
                        }
                        (Some(_), None) => {}
                        // Not handed to the application: a control packet, or a
                        // message that aborted a probe; the writers must look again.
                        (None, _) => shared.wake(),
                    }
                }
                Err(e) => {
                    tracing::warn!(sid = %shared.sid, error = %e, "undecodable websocket frame");
                    shared.with_wake(|s| s.handle_decode_error(Conn::Ws(conn)));
                }
            }
        }
    };

    let writer = async {
        loop {
            let changed = shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let pong = ping.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(payload) = pong {
                if out.pong(&payload).await.is_err() {
                    return None;
                }
            }
            let next = shared.with(|s| s.take_ws(conn));
            let (packets, close) = match next {
                WsOutput::Idle => {
                    changed.await;
                    continue;
                }
                WsOutput::Packets(p) => (p, false),
                WsOutput::Close(p) => (p, true),
            };
            if out.write_packets(packets).await.is_err() {
                return None;
            }
            if close {
                return Some(());
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

    let close_code = {
        tokio::pin!(reader);
        tokio::pin!(writer);
        tokio::pin!(watchdog);
        tokio::select! {
            () = &mut watchdog => {
                tracing::debug!(sid = %shared.sid, conn, "websocket not drained after close; dropping it");
                Finish::Drop
            }
            end = &mut reader => match end {
                ReadEnd::TooBig => Finish::Frame(CloseCode::Size),
                ReadEnd::Done(code) => Finish::Polite(code),
            },
            w = &mut writer => {
                if w.is_none() {
                    shared.with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
                }
                Finish::Frame(CloseCode::Normal)
            }
        }
    };
    drop(tx);
    out.finish(close_code).await;
    tracing::debug!(sid = %shared.sid, conn, "websocket closed");
}

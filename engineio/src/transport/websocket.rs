//! The WebSocket transport: one Engine.IO packet per frame, text frames for
//! text packets, binary frames for binary messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::batched_read::BatchedRead;
use crate::packet::{Message, Packet, Str};
use crate::payload_v3::{binary_frame_v3, decode_binary_packet_v3, decode_packet_v3};
use crate::proto::{CloseReason, Conn, Protocol, WsOutput};
use crate::socket::{Received, Shared, now, run_timer};
use crate::tasks::TaskSet;

/// An upgraded connection: the plain TCP stream when the server is ours (the
/// HTTP layer's buffers are then freed), any hyper upgrade otherwise.
enum Ws {
    Tcp(WebSocketStream<BatchedRead<TcpStream>>),
    Other(WebSocketStream<BatchedRead<TokioIo<hyper::upgrade::Upgraded>>>),
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
            let tcp = parts.io.into_inner();
            let tcp = BatchedRead::new(tcp);
            Ws::Tcp(WebSocketStream::from_partially_read(tcp, early, Role::Server, config).await)
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
        Some(Ws::Tcp(mut ws)) => {
            let _ = ws.close(None).await;
        }
        Some(Ws::Other(mut ws)) => {
            let _ = ws.close(None).await;
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

/// The frame of a packet: v4 binary messages as raw binary frames, v3 ones
/// with their leading type byte `0x04`, or as `b4<base64>` text for a `b64`
/// client (`encodePacket` of the reference's
/// `packages/engine.io/lib/parser-v3/index.ts`); text packets alike in both.
fn frame(p: Packet, protocol: Protocol, b64: bool) -> WsMessage {
    match p {
        Packet::Message(Message::Binary(b)) if protocol == Protocol::V3 && b64 => {
            WsMessage::Text(crate::payload_v3::base64_text_v3(&b))
        }
        Packet::Message(Message::Binary(b)) if protocol == Protocol::V3 => {
            WsMessage::Binary(binary_frame_v3(&b))
        }
        Packet::Message(Message::Binary(b)) => WsMessage::Binary(b),
        other => WsMessage::Text(other.to_text_frame()),
    }
}

/// Decodes a received frame in the session's protocol: in v3 a text frame
/// may be `b4<base64>` and a binary frame starts with the type byte.
fn decode_frame(msg: WsMessage, protocol: Protocol) -> Option<Result<Packet, crate::DecodeError>> {
    match (msg, protocol) {
        (WsMessage::Text(t), Protocol::V3) => {
            Some(decode_packet_v3(Str::from_utf8_bytes(t).into_bytes()))
        }
        // `b<base64>` is a binary message in a text frame too (what a
        // client with `forceBase64` sends), as in a polling payload.
        (WsMessage::Text(t), _) => Some(Packet::decode_polling_item(
            Str::from_utf8_bytes(t).into_bytes(),
        )),
        (WsMessage::Binary(b), Protocol::V3) => Some(decode_binary_packet_v3(b)),
        (WsMessage::Binary(b), _) => Some(Ok(Packet::decode_binary(b))),
        _ => None,
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
    /// Complete the closing handshake if the peer started it.
    Polite,
    /// The peer does not read: just drop the connection.
    Drop,
}

enum ReadEnd {
    /// The session or this connection is finished; the writer decides what to send.
    Done,
    /// A message over `max_payload`: close with 1009.
    TooBig,
}

/// Runs WebSocket `conn` of a session until it is closed (see [`WsRole`]).
#[allow(clippy::too_many_arguments)] // two call sites, both in service.rs
pub(crate) async fn run(
    shared: Arc<Shared>,
    conn: u64,
    on: OnUpgrade,
    max_payload: usize,
    open: Arc<AtomicUsize>,
    headers: Arc<http::HeaderMap>,
    role: WsRole,
    tasks: TaskSet,
) {
    let timers = role.timers;
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
        Some(Ws::Tcp(ws)) => {
            tasks.spawn(drive(shared, conn, ws, open, headers, role));
        }
        Some(Ws::Other(ws)) => {
            tasks.spawn(drive(shared, conn, ws, open, headers, role));
        }
        None => {
            shared
                .with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
        }
    }
}

/// Moves packets between the WebSocket and the session until either ends.
async fn drive<S>(
    shared: Arc<Shared>,
    conn: u64,
    ws: WebSocketStream<S>,
    open: Arc<AtomicUsize>,
    headers: Arc<http::HeaderMap>,
    role: WsRole,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let WsRole { timers, b64 } = role;
    tracing::debug!(sid = %shared.sid, conn, "websocket open");
    open.fetch_add(1, Ordering::Relaxed);
    let _count = CountGuard(open);
    let (mut sink, mut stream) = ws.split();
    let tx = shared.incoming_sender();

    let reader = async {
        loop {
            let packet = match stream.next().await {
                Some(Ok(m @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                    match decode_frame(m, shared.protocol) {
                        Some(p) => p,
                        None => continue,
                    }
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                Some(Ok(WsMessage::Close(_))) | None => {
                    shared.with_wake(|s| {
                        s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportClose)
                    });
                    return ReadEnd::Done;
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
                    return ReadEnd::Done;
                }
            };
            match packet {
                Ok(p) => {
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
            let out = shared.with(|s| s.take_ws(now(), conn));
            let (packets, close) = match out {
                WsOutput::Idle => {
                    changed.await;
                    continue;
                }
                WsOutput::Packets(p) => (p, false),
                WsOutput::Close(p) => (p, true),
            };
            let n = packets.len();
            for p in packets {
                if sink.feed(frame(p, shared.protocol, b64)).await.is_err() {
                    return None;
                }
            }
            if n > 0 && sink.flush().await.is_err() {
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
                ReadEnd::Done => Finish::Polite,
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
    match close_code {
        Finish::Frame(code) => {
            let frame = CloseFrame {
                code,
                reason: "".into(),
            };
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                sink.send(WsMessage::Close(Some(frame))),
            )
            .await;
        }
        Finish::Polite => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.close()).await;
        }
        Finish::Drop => {}
    }
    tracing::debug!(sid = %shared.sid, conn, "websocket closed");
}

//! The WebSocket transport: one Engine.IO packet per frame, text frames for
//! text packets, binary frames for binary messages.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::packet::{Message, Packet, Str};
use crate::proto::{CloseReason, Conn, WsOutput};
use crate::socket::{Shared, now};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Socket buffers sized for many idle connections: tungstenite grows its read
/// buffer as needed up to the message limit.
pub(crate) fn ws_config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(max_payload.saturating_mul(2).max(1 << 20))
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

async fn upgrade(on: OnUpgrade, max_payload: usize) -> Option<Ws> {
    match on.await {
        Ok(upgraded) => Some(
            WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(ws_config(max_payload)),
            )
            .await,
        ),
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            None
        }
    }
}

/// Completes an upgrade that cannot join its session, then closes it at once
/// (a second WebSocket for a session that is upgrading or upgraded).
pub(crate) async fn refuse(on: OnUpgrade, max_payload: usize) {
    if let Some(mut ws) = upgrade(on, max_payload).await {
        let _ = ws.close(None).await;
    }
}

fn frame(p: Packet) -> WsMessage {
    match p {
        Packet::Message(Message::Binary(b)) => WsMessage::Binary(b),
        other => WsMessage::Text(other.to_text_frame()),
    }
}

enum ReadEnd {
    /// The session or this connection is finished; the writer decides what to send.
    Done,
    /// A message over `max_payload`: close with 1009.
    TooBig,
}

/// Runs WebSocket `conn` of a session until it is closed.
pub(crate) async fn run(shared: Arc<Shared>, conn: u64, on: OnUpgrade, max_payload: usize) {
    let Some(ws) = upgrade(on, max_payload).await else {
        shared.with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
        return;
    };
    tracing::debug!(sid = %shared.sid, conn, "websocket open");
    let (mut sink, mut stream) = ws.split();
    let tx = shared.incoming_sender();

    let reader = async {
        loop {
            let packet = match stream.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    let text = Str::from_utf8_bytes(t);
                    Packet::decode_text(text.into_bytes())
                }
                Some(Ok(WsMessage::Binary(b))) => Ok(Packet::decode_binary(b)),
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
                    let msg = shared.with(|s| s.handle_packet(now(), Conn::Ws(conn), p));
                    match (msg, tx.as_ref()) {
                        (Some(m), Some(tx)) => {
                            // Waits while the application's inbox is full (backpressure).
                            let _ = tx.send(m).await;
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
            let out = shared.with(|s| s.take_ws(conn));
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
                if sink.feed(frame(p)).await.is_err() {
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

    let close_code = {
        tokio::pin!(reader);
        tokio::pin!(writer);
        tokio::select! {
            end = &mut reader => match end {
                ReadEnd::TooBig => Some(CloseCode::Size),
                ReadEnd::Done => None,
            },
            w = &mut writer => {
                if w.is_none() {
                    shared.with_wake(|s| s.handle_transport_end(Conn::Ws(conn), CloseReason::TransportError));
                }
                Some(CloseCode::Normal)
            }
        }
    };
    drop(tx);
    if let Some(code) = close_code {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sink.send(WsMessage::Close(Some(frame))),
        )
        .await;
    } else {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.close()).await;
    }
    tracing::debug!(sid = %shared.sid, conn, "websocket closed");
}

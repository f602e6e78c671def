//! HTTP long-polling: a GET waits for queued packets, a POST carries a payload.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::error::HandshakeError;
use crate::packet::Packet;
use crate::payload::{Payload, encode_payload};
use crate::payload_v3::{BINARY_CONTENT_TYPE, PayloadV3, PayloadV3Format, encode_payload_v3};
use crate::proto::{CloseReason, Conn, GetError, PostError, Protocol};
use crate::service::{ResponseBody, error_response, plain_response};
use crate::socket::{Received, Shared, now};

/// Ends the pending GET if the request future is dropped (client gone).
struct GetGuard<'a> {
    shared: &'a Shared,
    active: bool,
}

impl Drop for GetGuard<'_> {
    fn drop(&mut self) {
        if self.active {
            self.shared.with(|s| s.end_get());
        }
    }
}

struct PostGuard<'a>(&'a Shared);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.with(|s| s.end_post());
    }
}

/// The body of a GET: the packets, as one payload.
pub(crate) fn payload_response(packets: &[Packet]) -> Response<ResponseBody> {
    let body = encode_payload(packets);
    let mut res = Response::new(Full::new(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The body of a GET in the session's protocol: v4 as [`payload_response`];
/// v3 length-prefixed, in the XHR2 binary framing (`application/octet-stream`)
/// when it holds binary and the client did not ask for `b64`
/// (`doWrite` in the reference's `packages/engine.io/lib/transports/polling.ts`
/// picks the content type from the encoded payload's type).
pub(crate) fn respond(shared: &Shared, packets: &[Packet]) -> Response<ResponseBody> {
    if shared.protocol == Protocol::V4 {
        return payload_response(packets);
    }
    let (body, format) = encode_payload_v3(packets, shared.b64);
    let mut res = Response::new(Full::new(body));
    let h = res.headers_mut();
    let content_type = match format {
        PayloadV3Format::Binary => HeaderValue::from_static(BINARY_CONTENT_TYPE),
        _ => HeaderValue::from_static("text/plain; charset=UTF-8"),
    };
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The packets of a POST body, decoded lazily in the session's framing.
enum Items {
    V4(Payload),
    V3(PayloadV3),
}

impl Iterator for Items {
    type Item = Result<Packet, crate::error::DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::V4(p) => p.next(),
            Items::V3(p) => p.next(),
        }
    }
}

/// A GET on an existing polling session: holds until there is something to send.
pub(crate) async fn get(shared: Arc<Shared>) -> Response<ResponseBody> {
    match shared.with(|s| s.begin_get()) {
        Ok(()) => {}
        Err(GetError::Overlap) => {
            // The session is closed; the first GET gets `1`.
            shared.wake();
            tracing::warn!(sid = %shared.sid, "refused overlapping GET");
            return error_response(HandshakeError::BadRequest);
        }
        Err(GetError::Closed) => return error_response(HandshakeError::UnknownSid),
    }
    let mut guard = GetGuard {
        shared: &shared,
        active: true,
    };
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if let Some(packets) = shared.with(|s| s.take_get(now())) {
            guard.active = false;
            // Draining may have finished a close or freed the queue.
            shared.wake();
            return respond(&shared, &packets);
        }
        changed.await;
    }
}

/// A POST on an existing polling session.
/// How long a session lives on after a POST over `max_payload` got its 413
/// (the client closes it itself on the 413; this bounds a client that does not).
const TOO_LARGE_CLOSE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) async fn post<B>(
    shared: Arc<Shared>,
    req: http::Request<B>,
    max_payload: usize,
    body_timeout: std::time::Duration,
) -> Response<ResponseBody>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match shared.with(|s| s.begin_post()) {
        Ok(()) => {}
        Err(PostError::Overlap) => {
            shared.wake();
            tracing::warn!(sid = %shared.sid, "refused overlapping POST");
            return error_response(HandshakeError::BadRequest);
        }
        Err(PostError::Closed) => return error_response(HandshakeError::UnknownSid),
    }
    let _guard = PostGuard(&shared);
    // v4 bodies are text; a binary content type is refused (as the reference
    // does). v3 bodies with it are XHR2 binary payloads (`isBinary` in the
    // reference's polling.ts `onDataRequest`).
    let binary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(BINARY_CONTENT_TYPE.as_bytes()));
    if binary && shared.protocol == Protocol::V4 {
        tracing::warn!(sid = %shared.sid, "binary content type on a v4 POST; closing");
        shared.with_wake(|s| s.close_now(CloseReason::TransportError));
        return error_response(HandshakeError::BadRequest);
    }
    let (parts, body) = req.into_parts();
    let headers = Arc::new(parts.headers);
    let read = tokio::time::timeout(body_timeout, Limited::new(body, max_payload).collect()).await;
    let Ok(read) = read else {
        tracing::warn!(sid = %shared.sid, timeout = ?body_timeout, "POST body not received in time; closing");
        shared.with_wake(|s| s.close_now(CloseReason::TransportError));
        return plain_response(StatusCode::REQUEST_TIMEOUT, "");
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if too_large {
                tracing::warn!(sid = %shared.sid, limit = max_payload, "POST body over max_payload; closing");
                // The session closes a moment after this 413 goes out, not
                // before: closing at once would answer the client's pending
                // GET first, and the official client then reports that (or
                // the 400 of its next GET) instead of the 413.
                let later = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(TOO_LARGE_CLOSE_DELAY).await;
                    later.with_wake(|s| s.close_now(CloseReason::TransportError));
                });
                return plain_response(StatusCode::PAYLOAD_TOO_LARGE, "");
            }
            shared.with_wake(|s| s.close_now(CloseReason::TransportError));
            tracing::warn!(sid = %shared.sid, error = %e, "POST body read failed; closing");
            return error_response(HandshakeError::BadRequest);
        }
    };
    let tx = shared.incoming_sender();
    let items = match shared.protocol {
        Protocol::V3 if binary => Items::V3(PayloadV3::new(body, PayloadV3Format::Binary)),
        Protocol::V3 => Items::V3(PayloadV3::new(body, PayloadV3Format::Text)),
        _ => Items::V4(Payload::new(body)),
    };
    for item in items {
        match item {
            Ok(packet) => {
                let msg = shared.with(|s| s.handle_packet(now(), Conn::Polling, packet));
                if let (Some(message), Some(tx)) = (msg, tx.as_ref()) {
                    // Waits while the application's inbox is full (backpressure).
                    let received = Received {
                        message,
                        headers: headers.clone(),
                    };
                    tx.send(received).await;
                }
            }
            // The session closes with a parse error. (For v3 the reference
            // answers such a POST 200 `ok` after closing, `onDataRequest` in
            // its polling.ts; we answer 400 for both revisions, so the client
            // learns of it from this response rather than from its next one.)
            Err(e) => {
                tracing::warn!(sid = %shared.sid, error = %e, "undecodable polling payload; closing");
                shared.with_wake(|s| s.handle_decode_error(Conn::Polling));
                return error_response(HandshakeError::BadRequest);
            }
        }
    }
    // Give the application a chance to take what this POST carried before
    // answering (its task is usually scheduled next), so that replies it
    // queues at once tend to make the client's next GET. Bounded.
    if let Some(tx) = tx.as_ref() {
        for _ in 0..8 {
            if tx.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    drop(tx);
    shared.wake();
    let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res
}

//! A small accept loop: HTTP/1.1 with upgrades, the peer address in the
//! request extensions, a header read timeout against slow-drip clients.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::error::Error;
use crate::service::{ConnectInfo, ResponseBody};

/// How long a client may take to send a request's headers, by default.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of the accept loop.
///
/// ```
/// let opts = engineio::ServeOptions::default().header_read_timeout(std::time::Duration::from_secs(5));
/// assert_eq!(opts.header_read_timeout.as_secs(), 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (slow-drip
    /// clients are disconnected). Default [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted, in bytes
    /// (min 8 192). The handshake's URI and headers are kept for the session's
    /// life, so this bounds that memory per session. Default 32 KiB (Node
    /// allows 16 KiB of headers); larger heads get 431.
    pub max_header_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_header_bytes: 32 * 1024,
        }
    }
}

impl ServeOptions {
    /// Sets [`max_header_bytes`](Self::max_header_bytes) (at least 8 192).
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n.max(8192);
        self
    }

    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }
}

/// Serves `service` on every connection accepted from `listener`, until
/// `shutdown` completes. Each request carries a [`ConnectInfo`] extension.
///
/// Any hyper service with our body type fits: an [`EngineIo`](crate::EngineIo),
/// or your own router that calls [`EngineIo::handle`](crate::EngineIo::handle)
/// for Engine.IO paths.
///
/// # Errors
/// None today: accept errors (e.g. out of file descriptors) are retried after
/// a pause that grows from 10 ms to 1 s while they last (the loop neither
/// spins nor ends; existing connections are unaffected), logged once per
/// episode with a warning and once more when accepting works again; the
/// `Result` leaves room for fatal ones.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_with(listener, service, shutdown, ServeOptions::default()).await
}

/// As [`serve`], with options.
///
/// # Errors
/// As [`serve`].
pub async fn serve_with<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> Result<(), Error>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let header_timeout = options.header_read_timeout;
    let max_head = options.max_header_bytes.max(8192);
    tokio::pin!(shutdown);
    // Consecutive accept failures of the current episode.
    let mut failures: u64 = 0;
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %e, "accept failed (out of file descriptors?); pausing new connections, retrying");
                    } else {
                        tracing::trace!(error = %e, failures, "accept failed again");
                    }
                    let pause = Duration::from_millis(10u64.saturating_mul(1 << failures.min(7)).min(1000));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = &mut shutdown => break,
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if failures > 0 {
            tracing::info!(failures, "accepting connections again");
            failures = 0;
        }
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(addr));
                svc.call(req)
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(max_head)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
            }
        });
    }
    Ok(())
}

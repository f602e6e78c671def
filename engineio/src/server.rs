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

/// After `shutdown_timeout`, the time left for answers to requests that the
/// server's own close just released.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

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
    /// Once `shutdown` completes, how long open connections get to finish
    /// (idle keep-alive connections close at once, a request in progress
    /// gets its response) before they are aborted. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_header_bytes: 32 * 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServeOptions {
    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

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
/// Shutdown: the listener is closed at once, every open connection is told
/// to finish (idle keep-alive connections close, a request in progress gets
/// its response first), and this returns when all have ended, or after
/// [`ServeOptions::shutdown_timeout`] (plus half a second for answers that a
/// `close` released at that bound) with the rest aborted.
///
/// If your service routes to an [`EngineIo`](crate::EngineIo) (or a
/// `socketio::SocketIo`), serve with [`serve_with_close`] and its `close()`:
/// otherwise its long-polling requests stay pending until the bound. No connection
/// task outlives it (dropping this future aborts them too).
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

/// As [`serve_with`], running `close` once `shutdown` completes, beside the
/// connections' draining: give it the server's graceful close (as
/// [`EngineIo::serve`](crate::EngineIo::serve) does with
/// [`EngineIo::close`](crate::EngineIo::close)) so that long-polling requests
/// waiting on sessions get their answer and WebSocket sessions their close.
///
/// # Errors
/// As [`serve`].
pub async fn serve_with_close<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
    close: impl Future<Output = ()>,
) -> Result<(), Error>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_inner(listener, service, shutdown, options, close).await
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
    serve_inner(listener, service, shutdown, options, std::future::ready(())).await
}

async fn serve_inner<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
    close: impl Future<Output = ()>,
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
    let bound = options.shutdown_timeout;
    // Once `shutdown` fires, the server's own close runs while connections
    // are still accepted and served as usual: its clients' last requests (the
    // poll that takes the goodbye, the client's close packet) must get
    // through; new handshakes are refused by the server itself. Resolves with
    // the instant the shutdown began.
    let stopping = async {
        shutdown.await;
        let at = tokio::time::Instant::now();
        tracing::info!(timeout = ?bound, "shutting down: closing the server");
        close.await;
        at
    };
    tokio::pin!(stopping);
    let began;
    // Consecutive accept failures of the current episode.
    let mut failures: u64 = 0;
    // Every connection's task: reaped as they end, drained on shutdown.
    let mut conns = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        let (stream, addr) = tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
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
                        at = &mut stopping => { began = at; break }
                    }
                    continue;
                }
            },
            at = &mut stopping => { began = at; break }
        };
        if failures > 0 {
            tracing::info!(failures, "accepting connections again");
            failures = 0;
        }
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
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
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // `close` may cut sessions at the bound itself; their pending polls then
    // get answered within the margin, not aborted.
    let deadline = began + bound + ANSWER_MARGIN;
    let _ = stop_tx.send(true);
    tracing::info!(
        connections = conns.len(),
        "no longer accepting; draining connections"
    );
    let drained = {
        let drain = async { while conns.join_next().await.is_some() {} };
        tokio::time::timeout_at(deadline, drain).await.is_ok()
    };
    if !drained {
        tracing::warn!(
            connections = conns.len(),
            "connections still open after shutdown_timeout; aborting them"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
    Ok(())
}

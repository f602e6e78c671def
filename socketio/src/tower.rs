//! tower integration (cargo feature `tower`, on by default): [`SocketIo`] as
//! a `tower::Service`, and [`SocketIo::layer`] to put Socket.IO in front of
//! any tower service (an axum `Router`, a tower-http stack...).

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio::ResponseBody;
use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Body;

use crate::io::SocketIo;
use crate::socket::BoxFuture;

/// Answers every request as [`SocketIo::handle`] does (use it where only
/// Socket.IO requests arrive, e.g. axum's `route_service("/socket.io/", io)`
/// or `fallback_service(io)`); never fails and is always ready.
impl<B> tower_service::Service<Request<B>> for SocketIo
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl SocketIo {
    /// A `tower::Layer` whose service answers the Socket.IO path (the
    /// protocol, WebSocket upgrades included, and the client bundle if
    /// [`serve_client`](crate::SocketIoConfig::serve_client) is set) and hands
    /// every other request to the inner service untouched.
    ///
    /// With axum 0.8, add it after the routes (`Router::layer` wraps the
    /// routes and the fallback that exist when it is called):
    ///
    /// ```no_run
    /// use axum::{Router, routing::get};
    /// use socketio::{Socket, SocketIo, SocketIoConfig};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::new(SocketIoConfig::default())?;
    /// io.on_connection(|socket: Socket| async move {
    ///     socket.on("ping", |socket: Socket| async move {
    ///         let _ = socket.emit("pong", &());
    ///     });
    /// });
    /// let app = Router::new()
    ///     .route("/", get(|| async { "hello" }))
    ///     .layer(io.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, app).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # With tower-http
    /// Order matters only for layers that act on the Socket.IO answers:
    /// - **Trace** (`TraceLayer`): outermost, to see every request.
    /// - **CORS**: either tower-http's `CorsLayer` *outside* `io.layer()`
    ///   (it answers preflights and adds headers to every response, ours
    ///   included; leave [`EngineConfig::cors`](engineio::EngineConfig::cors)
    ///   unset so headers are not doubled), or the engine's own CORS option
    ///   with tower-http's CORS only on your routes (inside).
    /// - **Compression** (`CompressionLayer`): polling responses are already
    ///   compressed by the engine ([`EngineConfig::http_compression`](engineio::EngineConfig::http_compression));
    ///   a tower-http compression layer outside skips responses that carry a
    ///   `Content-Encoding` and bodies under its own threshold, and never
    ///   touches a `101` upgrade, so either order works; inside (on the routes
    ///   only) is the simplest.
    ///
    /// A tested stack (`tests/tower.rs`): `TraceLayer` → `CorsLayer` →
    /// `io.layer()` → `CompressionLayer` → routes.
    ///
    /// The peer address of a connection ([`Handshake::address`](crate::Handshake::address))
    /// comes from the [`engineio::ConnectInfo`] request extension, which axum
    /// does not set; serve with `into_make_service_with_connect_info::<SocketAddr>()`
    /// and copy it outside `io.layer()` (as the `axum` example does):
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use axum::extract::{ConnectInfo, Request};
    ///
    /// async fn peer_address(mut req: Request) -> Request {
    ///     if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
    ///         req.extensions_mut().insert(engineio::ConnectInfo(addr));
    ///     }
    ///     req
    /// }
    /// # fn app(io: socketio::SocketIo) -> axum::Router {
    /// axum::Router::new()
    ///     .layer(io.layer())
    ///     .layer(axum::middleware::map_request(peer_address))
    /// # }
    /// ```
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer { io: self.clone() }
    }
}

/// The `tower::Layer` of [`SocketIo::layer`].
#[derive(Debug, Clone)]
pub struct SocketIoLayer {
    io: SocketIo,
}

impl<S> tower_layer::Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> SocketIoService<S> {
        SocketIoService {
            io: self.io.clone(),
            inner,
        }
    }
}

/// The service of [`SocketIo::layer`]: Socket.IO requests are answered,
/// others go to `S`. Its response body is an [`Either`]: `Left` for
/// Socket.IO's answers, `Right` for the inner service's.
#[derive(Debug, Clone)]
pub struct SocketIoService<S> {
    io: SocketIo,
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for SocketIoService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<Either<ResponseBody, ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.io.matches(&req) {
            let io = self.io.clone();
            return Box::pin(async move { Ok(io.handle(req).await.map(Either::Left)) });
        }
        // The clone that was made ready handles the request (tower's rule);
        // the fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let fut = inner.call(req);
        Box::pin(async move { Ok(fut.await?.map(Either::Right)) })
    }
}

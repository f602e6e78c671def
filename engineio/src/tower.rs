//! `tower::Service` for [`EngineIo`] (cargo feature `tower`, on by default).

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Body;

use crate::service::{BoxFuture, EngineIo, ResponseBody};

/// Answers every request as [`EngineIo::handle`] does; never fails and is
/// always ready. For a server that also has other routes, see `socketio`'s
/// `SocketIo::layer`, or check [`EngineIo::matches`] yourself.
impl<B> tower_service::Service<Request<B>> for EngineIo
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

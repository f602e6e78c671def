//! Request bodies of any type, read as [`Bytes`].

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

/// A body whose data chunks are [`Bytes`], whatever `B`'s chunk type is
/// (hyper's and axum's are `Bytes` already: then this copies nothing).
pub(crate) type BytesBody<B> =
    http_body_util::combinators::MapFrame<B, fn(Frame<<B as Body>::Data>) -> Frame<Bytes>>;

pub(crate) fn bytes_body<B: Body>(body: B) -> BytesBody<B> {
    body.map_frame(to_bytes_frame::<B::Data> as fn(Frame<B::Data>) -> Frame<Bytes>)
}

fn to_bytes_frame<D: Buf>(frame: Frame<D>) -> Frame<Bytes> {
    frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
}

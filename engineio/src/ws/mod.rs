//! WebSocket data path, sans-IO: RFC 6455 framing ([`frame`]) and
//! permessage-deflate, RFC 7692 ([`deflate`]). The tokio glue that drives them
//! is `transport/websocket.rs`; the HTTP upgrade handshake is `service.rs`.

pub(crate) mod deflate;
pub(crate) mod frame;

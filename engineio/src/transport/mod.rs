//! Transports: the tokio/hyper glue that moves bytes between HTTP requests or a
//! WebSocket and a session's state machine.

pub(crate) mod batched_read;
pub(crate) mod polling;
pub(crate) mod websocket;

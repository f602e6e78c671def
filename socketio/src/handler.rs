//! Event handler shapes, per-event middlewares and the errors they report.
//!
//! [`Socket::on`](crate::Socket::on) takes a closure of one of these shapes,
//! chosen by its signature (annotate the parameters):
//!
//! | closure | gets |
//! |---|---|
//! | `\|socket: Socket\| async {}` | nothing of the arguments |
//! | `\|socket: Socket, data: T\| async {}` | the arguments as `T: DeserializeOwned` |
//! | `\|socket: Socket, data: T, ack: AckSender\| async {}` | the arguments and the ack responder |
//! | `\|socket: Socket, args: Args\| async {}` | the raw [`Args`] (JSON values and binary parts) |
//! | `\|socket: Socket, args: Args, ack: AckSender\| async {}` | the raw arguments and the ack responder |
//!
//! Each shape is one `Arc` per registration and one boxed future per call, as
//! before.

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ack::{AckSender, parse_args};
use crate::encoded::Args;
use crate::socket::{BoxFuture, Socket};

/// Why an incoming event did not reach its handler; given to the
/// [`Socket::on_error`](crate::Socket::on_error) listeners (Node's server-side
/// `socket.on("error")`) and logged with `tracing` at `warn`.
///
/// If the client asked for an acknowledgement, it is answered with one
/// argument, `{"error": "<this error's message>"}`, so that a client that
/// awaits the ack without a timeout is not left waiting forever.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventError {
    /// The arguments do not deserialize into the handler's type.
    InvalidArgs {
        /// The event's name.
        event: String,
        /// What serde said.
        error: serde_json::Error,
    },
    /// A per-event middleware ([`Socket::use_middleware`](crate::Socket::use_middleware)) refused it.
    Rejected {
        /// The event's name.
        event: String,
        /// The middleware's refusal.
        rejection: EventRejection,
    },
}

impl EventError {
    /// The event's name.
    pub fn event(&self) -> &str {
        match self {
            EventError::InvalidArgs { event, .. } | EventError::Rejected { event, .. } => event,
        }
    }

    /// The message the client's ack gets (`{"error": message}`).
    pub fn message(&self) -> String {
        match self {
            EventError::InvalidArgs { error, .. } => format!("invalid arguments: {error}"),
            EventError::Rejected { rejection, .. } => rejection.message.clone(),
        }
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::InvalidArgs { event, error } => {
                write!(
                    f,
                    "arguments of event {event:?} do not fit its handler: {error}"
                )
            }
            EventError::Rejected { event, rejection } => {
                write!(f, "event {event:?} rejected: {}", rejection.message)
            }
        }
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EventError::InvalidArgs { error, .. } => Some(error),
            EventError::Rejected { .. } => None,
        }
    }
}

/// A per-event middleware's refusal (Node's `next(new Error(message))`).
///
/// ```
/// let r = socketio::EventRejection::new("unauthorized event");
/// assert_eq!(r.message, "unauthorized event");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventRejection {
    /// Why; the error listeners and the client's ack (if any) see it.
    pub message: String,
}

impl EventRejection {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        EventRejection {
            message: message.into(),
        }
    }
}

impl From<&str> for EventRejection {
    fn from(message: &str) -> Self {
        EventRejection::new(message)
    }
}

impl From<String> for EventRejection {
    fn from(message: String) -> Self {
        EventRejection::new(message)
    }
}

/// An incoming event as per-event middlewares see it: its name and
/// arguments, both of which a middleware may change before handing it on.
#[derive(Debug)]
#[non_exhaustive]
pub struct Event {
    /// The event's name.
    pub name: String,
    /// Its arguments.
    pub args: Args,
    pub(crate) ack_id: Option<u64>,
}

impl Event {
    /// Whether the client asked for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack_id.is_some()
    }
}

pub(crate) type ErasedHandler =
    Arc<dyn Fn(Socket, &str, Args, AckSender) -> BoxFuture<()> + Send + Sync>;
pub(crate) type EventMiddleware =
    Arc<dyn Fn(Socket, Event) -> BoxFuture<Result<Event, EventRejection>> + Send + Sync>;
pub(crate) type ErrorListener = Arc<dyn Fn(&Socket, &EventError) + Send + Sync>;

/// A closure [`Socket::on`](crate::Socket::on) accepts, implemented for
/// these shapes (annotate the closure's parameters; `M` tells the shapes
/// apart and is inferred: you never name it):
///
/// | closure | gets |
/// |---|---|
/// | `\|socket: Socket\| async {}` | nothing of the arguments |
/// | `\|socket: Socket, data: T\| async {}` | the arguments as `T: DeserializeOwned` |
/// | `\|socket: Socket, data: T, ack: AckSender\| async {}` | the arguments and the ack responder |
/// | `\|socket: Socket, args: Args\| async {}` | the raw [`Args`] (JSON values and binary parts) |
/// | `\|socket: Socket, args: Args, ack: AckSender\| async {}` | the raw arguments and the ack responder |
///
/// Each shape costs one `Arc` per registration and one boxed future per call.
pub trait EventHandler<M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn into_erased(self) -> ErasedHandlerBox;
}

/// The type-erased form of an [`EventHandler`] (not for direct use).
#[doc(hidden)]
pub struct ErasedHandlerBox(pub(crate) ErasedHandler);

impl std::fmt::Debug for ErasedHandlerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasedHandlerBox")
    }
}

/// Marker types of the handler shapes.
#[doc(hidden)]
pub mod shape {
    /// `(Socket)`
    #[derive(Debug)]
    pub enum SocketOnly {}
    /// `(Socket, T)`
    #[derive(Debug)]
    pub enum Data {}
    /// `(Socket, T, AckSender)`
    #[derive(Debug)]
    pub enum DataAck {}
    /// `(Socket, Args)`
    #[derive(Debug)]
    pub enum Raw {}
    /// `(Socket, Args, AckSender)`
    #[derive(Debug)]
    pub enum RawAck {}
}

/// Parses the arguments, or reports the failure (and answers the ack).
fn parse_or_report<T: DeserializeOwned>(
    socket: &Socket,
    event: &str,
    args: &Args,
    ack: AckSender,
) -> Option<(T, AckSender)> {
    match parse_args::<T>(args) {
        Ok(v) => Some((v, ack)),
        Err(error) => {
            let error = EventError::InvalidArgs {
                event: event.to_owned(),
                error,
            };
            socket.report_event_error(&error, ack);
            None
        }
    }
}

impl<F, Fut> EventHandler<(shape::SocketOnly,)> for F
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn into_erased(self) -> ErasedHandlerBox {
        ErasedHandlerBox(Arc::new(move |socket, _event, _args, _ack| {
            Box::pin(self(socket))
        }))
    }
}

impl<F, Fut, T> EventHandler<(shape::Data, T)> for F
where
    F: Fn(Socket, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
{
    fn into_erased(self) -> ErasedHandlerBox {
        ErasedHandlerBox(Arc::new(
            move |socket, event, args, ack| match parse_or_report::<T>(&socket, event, &args, ack) {
                Some((v, _ack)) => Box::pin(self(socket, v)),
                None => Box::pin(async {}),
            },
        ))
    }
}

impl<F, Fut, T> EventHandler<(shape::DataAck, T)> for F
where
    F: Fn(Socket, T, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
{
    fn into_erased(self) -> ErasedHandlerBox {
        ErasedHandlerBox(Arc::new(
            move |socket, event, args, ack| match parse_or_report::<T>(&socket, event, &args, ack) {
                Some((v, ack)) => Box::pin(self(socket, v, ack)),
                None => Box::pin(async {}),
            },
        ))
    }
}

impl<F, Fut> EventHandler<(shape::Raw,)> for F
where
    F: Fn(Socket, Args) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn into_erased(self) -> ErasedHandlerBox {
        ErasedHandlerBox(Arc::new(move |socket, _event, args, _ack| {
            Box::pin(self(socket, args))
        }))
    }
}

impl<F, Fut> EventHandler<(shape::RawAck,)> for F
where
    F: Fn(Socket, Args, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn into_erased(self) -> ErasedHandlerBox {
        ErasedHandlerBox(Arc::new(move |socket, _event, args, ack| {
            Box::pin(self(socket, args, ack))
        }))
    }
}

/// The ack answer for an event that did not reach its handler.
pub(crate) fn error_ack_value(error: &EventError) -> Value {
    serde_json::json!({ "error": error.message() })
}

//! Server-side events: messages between the nodes of a cluster
//! (`server_side_emit` on one node, `on_server_event` handlers on the others),
//! carried by the adapter. With a single node they go nowhere.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::encoded::Args;
use crate::error::Error;
use crate::socket::BoxFuture;

pub(crate) type ServerEventHandler = Arc<dyn Fn(Args, ServerAck) -> BoxFuture<()> + Send + Sync>;

/// The handlers of one namespace, by event name.
#[derive(Default)]
pub(crate) struct ServerEventHandlers {
    map: HashMap<String, ServerEventHandler>,
}

impl ServerEventHandlers {
    pub(crate) fn insert<F, Fut>(&mut self, event: String, f: F)
    where
        F: Fn(Args, ServerAck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.map
            .insert(event, Arc::new(move |a, ack| Box::pin(f(a, ack))));
    }

    pub(crate) fn get(&self, event: &str) -> Option<ServerEventHandler> {
        self.map.get(event).cloned()
    }
}

/// Answers a server-side event that another node sent with
/// `server_side_emit_with_ack`; a no-op when it asked for no answer. Only the
/// first answer counts (it is consumed).
///
/// ```no_run
/// # fn f(io: socketio::SocketIo) {
/// io.of("/").on_server_event("ping", |_args, ack: socketio::ServerAck| async move {
///     let _ = ack.send(&"pong");
/// });
/// # }
/// ```
#[derive(Debug)]
pub struct ServerAck {
    tx: Option<oneshot::Sender<Args>>,
}

impl ServerAck {
    /// An answer that goes nowhere (the sender asked for none).
    pub fn none() -> Self {
        ServerAck { tx: None }
    }

    /// An answer delivered to `tx` (for adapters).
    pub fn new(tx: oneshot::Sender<Args>) -> Self {
        ServerAck { tx: Some(tx) }
    }

    /// Whether the sender waits for an answer.
    pub fn is_requested(&self) -> bool {
        self.tx.is_some()
    }

    /// Answers with one value.
    ///
    /// # Errors
    /// If the value does not serialize.
    pub fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.send_args(Args::one(value)?);
        Ok(())
    }

    /// Answers with raw arguments (only the first one travels, as in the reference).
    pub fn send_args(self, args: Args) {
        if let Some(tx) = self.tx {
            let _ = tx.send(args);
        }
    }
}

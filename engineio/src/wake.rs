//! Wake-ups deferred to the end of a task's poll.
//!
//! A broadcast queues one message on each recipient's session and must wake
//! each recipient's writer. Woken at once, a writer on another worker thread
//! runs while the broadcast loop is still queueing and writes that one
//! message in a syscall of its own; the next broadcast of the same burst wakes
//! it again. With one worker thread this cannot happen (the writers only run
//! once the emitting task yields, and then find the whole burst queued), so
//! a second worker thread made every delivered message cost more CPU.
//!
//! Every task the engine spawns (a WebSocket connection, a session's timer,
//! the application's handler: see `tasks.rs`) is polled inside a [`Scope`]:
//! while it runs, the wake-ups of writers (a session's outbound queue went
//! from empty to not empty) and of inboxes (the application has a message to
//! take) are collected on the thread, and fired when the poll returns. A
//! burst handled in one poll — a read batch of 100 `bcast` events, each one
//! broadcast to 1 000 sessions — thus wakes each writer once, and each writer
//! writes the whole burst in one batch, whatever the number of threads.
//!
//! Invariants:
//! - A wake-up is only ever late by the rest of the poll it was made in (a
//!   poll is synchronous and bounded by tokio's cooperative budget); the
//!   [`Scope`] fires them when dropped, on unwind too. Outside any scope
//!   (a task the application spawned itself, a polling request's connection)
//!   wake-ups are immediate, as before.
//! - Bound: one entry per session whose outbound queue (or inbox) went from
//!   empty to not empty during the poll, so at most two per live session.
//! - Wake-ups are hints to look at shared state again; firing one late or
//!   twice changes no outcome, only when the writer runs.

use std::cell::{Cell, RefCell};
#[cfg(test)]
use std::future::Future;
#[cfg(test)]
use std::pin::pin;
use std::sync::Arc;

use crate::socket::Shared;

/// Which of a session's waiters to wake.
enum Pending {
    /// Its transports' writers (`Shared::changed`).
    Writer(Arc<Shared>),
    /// The application reading its inbox (`Shared::inbox_ready`).
    Inbox(Arc<Shared>),
}

impl Pending {
    fn fire(self) {
        match self {
            Pending::Writer(s) => s.changed.notify_waiters(),
            Pending::Inbox(s) => s.notify_inbox(),
        }
    }
}

thread_local! {
    /// How many scopes are open on this thread (nested polls join the outer one).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The wake-ups collected by the open scope.
    static PENDING: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
}

/// The collected list keeps at most this much capacity between polls.
const KEEP_CAPACITY: usize = 1024;

/// Open while a task is polled: wake-ups made meanwhile fire when it drops.
pub(crate) struct Scope(());

impl Scope {
    pub(crate) fn enter() -> Scope {
        DEPTH.with(|d| d.set(d.get() + 1));
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            n
        });
        if depth > 0 {
            return;
        }
        // Waking only schedules tasks (none runs here), but take the list
        // out first anyway: nothing is borrowed while waking.
        let mut batch = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if batch.is_empty() {
            return;
        }
        for p in batch.drain(..) {
            p.fire();
        }
        if batch.capacity() <= KEEP_CAPACITY {
            PENDING.with(|p| {
                let mut p = p.borrow_mut();
                if p.is_empty() && p.capacity() == 0 {
                    *p = batch;
                }
            });
        }
    }
}

/// Polls `fut` with every wake-up it makes deferred to the end of each poll
/// (tests; the engine's tasks open their scope in `tasks.rs`).
#[cfg(test)]
pub(crate) async fn batched<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        let _scope = Scope::enter();
        fut.as_mut().poll(cx)
    })
    .await
}

/// Whether a scope is open on this thread.
fn in_scope() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Wakes the session's writers, at the end of the current poll when in a scope.
pub(crate) fn writer(shared: &Arc<Shared>) {
    if in_scope() {
        PENDING.with(|q| q.borrow_mut().push(Pending::Writer(shared.clone())));
    } else {
        shared.changed.notify_waiters();
    }
}

/// Wakes the session's inbox reader, at the end of the current poll when in a scope.
pub(crate) fn inbox(shared: &Arc<Shared>) {
    if in_scope() {
        PENDING.with(|q| q.borrow_mut().push(Pending::Inbox(shared.clone())));
    } else {
        shared.notify_inbox();
    }
}

/// How many wake-ups the open scope holds (tests).
#[cfg(test)]
pub(crate) fn pending() -> usize {
    PENDING.with(|q| q.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_is_open_only_inside_the_poll() {
        assert!(!in_scope());
        let inside = batched(async {
            let a = in_scope();
            tokio::task::yield_now().await;
            a && in_scope()
        })
        .await;
        assert!(inside);
        assert!(!in_scope());
    }
}

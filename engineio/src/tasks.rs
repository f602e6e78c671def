//! The tasks a server spawns (per session: its timer, its WebSocket, the
//! application's handler; per connection: the HTTP connection), registered so
//! that a graceful shutdown can wait for all of them and abort the ones that
//! outlive its deadline. Nothing here is on a per-message path: one map
//! insert and one remove per task.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// A set of live tasks: cheap to clone, shared by everything that spawns.
#[derive(Clone, Default)]
pub(crate) struct TaskSet {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    live: Mutex<HashMap<u64, AbortHandle>>,
    idle: Notify,
}

impl Inner {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, id: u64) {
        let mut live = self.live();
        live.remove(&id);
        if live.is_empty() {
            self.idle.notify_waiters();
        }
    }
}

/// Lives inside the task's future: however the task ends (done, panicked,
/// aborted, dropped unpolled), its entry goes.
struct Guard {
    set: Arc<Inner>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.set.remove(self.id);
    }
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSet")
            .field("live", &self.len())
            .finish()
    }
}

/// What a task runs: `fut`, its registration guard, and the deferred
/// wake-ups scope (`wake.rs`) around each poll.
///
/// The future is boxed and polled from a plain closure: an async block
/// around it (or an async fn taking it) would keep a second copy of its
/// state in the task for its whole life (a WebSocket connection's task was
/// 5.6 KiB instead of 1.2 KiB that way).
fn tracked<F>(fut: F, guard: Guard) -> impl Future<Output = ()> + Send + 'static
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    std::future::poll_fn(move |cx| {
        let _guard = &guard;
        let _scope = crate::wake::Scope::enter();
        fut.as_mut().poll(cx)
    })
}

impl TaskSet {
    /// Spawns `fut` on the current runtime and registers it.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let guard = Guard {
            set: self.inner.clone(),
            id,
        };
        let handle = tokio::spawn(tracked(fut, guard));
        // The task may already have ended (its guard found nothing to remove):
        // the handle says so once its future is dropped, so check after the
        // insert and undo it then.
        self.inner.live().insert(id, handle.abort_handle());
        if handle.is_finished() {
            self.inner.remove(id);
        }
    }

    /// Tasks still running.
    pub(crate) fn len(&self) -> usize {
        self.inner.live().len()
    }

    /// Waits until no task is left.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Aborts every task still running; returns how many there were. Their
    /// entries go as the runtime drops them (await [`idle`](Self::idle)).
    pub(crate) fn abort_all(&self) -> usize {
        let live = self.inner.live();
        for h in live.values() {
            h.abort();
        }
        live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Regression test: the task holds the boxed future, not a copy of it.
    #[test]
    fn a_task_holds_its_future_once() {
        let big = async {
            let buf = [0u8; 4096];
            tokio::task::yield_now().await;
            std::hint::black_box(&buf);
        };
        assert!(std::mem::size_of_val(&big) >= 4096);
        let guard = Guard {
            set: Arc::default(),
            id: 0,
        };
        let task = tracked(big, guard);
        assert!(
            std::mem::size_of_val(&task) <= 32,
            "{} bytes",
            std::mem::size_of_val(&task)
        );
    }

    #[tokio::test]
    async fn finished_tasks_leave_and_idle_wakes() {
        let set = TaskSet::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        set.spawn(async move {
            let _ = rx.await;
        });
        for _ in 0..100 {
            set.spawn(async {});
        }
        assert!(set.len() >= 1);
        let _ = tx.send(());
        tokio::time::timeout(Duration::from_secs(10), set.idle())
            .await
            .unwrap();
        assert_eq!(set.len(), 0);
    }

    #[tokio::test]
    async fn abort_all_ends_tasks_that_never_finish() {
        let set = TaskSet::default();
        for _ in 0..10 {
            set.spawn(std::future::pending());
        }
        assert_eq!(set.len(), 10);
        assert_eq!(set.abort_all(), 10);
        tokio::time::timeout(Duration::from_secs(10), set.idle())
            .await
            .unwrap();
        assert_eq!(set.len(), 0);
    }
}

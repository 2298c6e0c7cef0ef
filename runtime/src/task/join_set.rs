//! `JoinSet`: a collection of tasks, joined in the order they complete (tokio's `JoinSet`).
//!
//! # Design: a ready list fed by per-member wakers
//!
//! The set keeps its join handles in a slab. Each member has its own waker (an
//! [`EntryWaker`]: the member's slab key, a `queued` flag, a weak pointer to the set's
//! [`ReadyList`]), registered as the member's join waker when it is inserted. The runtime
//! wakes a join waker only when the task completes, so each member is woken once: its waker
//! pushes itself onto the ready list (unless already queued) and wakes whoever waits in
//! `join_next`. `join_next` pops one entry and polls only that member's handle. A completion
//! therefore costs O(1): one push, one pop, one poll; nothing scans the set. tokio gets the
//! same bound with an intrusive "idle / notified" list pair; a queue of `Arc`s is simpler and
//! costs one small allocation per member.
//!
//! # Invariants
//!
//! * A member is on the ready list at most once: `queued` is set by the push and cleared by
//!   the pop, before the member's handle is polled (so a wake during that poll queues it
//!   again).
//! * A popped waker whose member is gone (joined or detached, its slab key reused since) is
//!   recognised by pointer identity and skipped.
//! * Wakers hold the list weakly: a wake after the set is dropped does nothing, and no `Arc`
//!   cycle (list → waker → list) can leak.
//! * A member's handle answers `Pending` after a wake only when the cooperative budget is
//!   spent (the handle then woke the member's waker again); `join_next` yields then, as
//!   tokio's does, instead of spinning.

use super::coop;
use super::{AbortHandle, Id, JoinError, JoinHandle};
use slab::Slab;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};

/// A set of tasks spawned on a runtime, awaited in the order they complete, like tokio's
/// `JoinSet`.
///
/// Every task of the set is aborted when the set is dropped. Tasks can be removed from the
/// set without aborting them with [`JoinSet::detach_all`].
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
/// rt.block_on(async {
///     let mut set = gpm::task::JoinSet::new();
///     for i in 0..10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut total = 0;
///     while let Some(result) = set.join_next().await {
///         total += result.unwrap();
///     }
///     assert_eq!(total, 285);
/// });
/// ```
pub struct JoinSet<T> {
    entries: Slab<Entry<T>>,
    ready: Arc<ReadyList>,
}

/// One member: its join handle, its waker, and that waker's shared state.
struct Entry<T> {
    handle: JoinHandle<T>,
    notify: Arc<EntryWaker>,
    waker: Waker,
}

/// Members whose tasks completed, and the waker of the task waiting in `join_next`.
#[derive(Default)]
struct ReadyList {
    inner: Mutex<ReadyInner>,
}

#[derive(Default)]
struct ReadyInner {
    queue: VecDeque<Arc<EntryWaker>>,
    waiter: Option<Waker>,
}

/// The join waker of one member.
struct EntryWaker {
    key: usize,
    queued: AtomicBool,
    list: Weak<ReadyList>,
}

impl ReadyList {
    fn lock(&self) -> MutexGuard<'_, ReadyInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next queued member, registering `waiter` to be woken by the next push if none.
    fn pop(&self, waiter: Option<&Waker>) -> Option<Arc<EntryWaker>> {
        let mut inner = self.lock();
        let next = inner.queue.pop_front();
        if let (None, Some(waiter)) = (&next, waiter) {
            match &inner.waiter {
                Some(current) if current.will_wake(waiter) => {}
                _ => inner.waiter = Some(waiter.clone()),
            }
        }
        next
    }
}

impl EntryWaker {
    /// Queues this member (its `queued` flag is already set) and wakes the waiting
    /// `join_next`, if any.
    fn push(self: Arc<Self>) {
        let Some(list) = self.list.upgrade() else {
            return;
        };
        let waiter = {
            let mut inner = list.lock();
            inner.queue.push_back(self);
            inner.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl Wake for EntryWaker {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.push();
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            Arc::clone(self).push();
        }
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            ready: Arc::new(ReadyList::default()),
        }
    }

    /// How many tasks are in the set (running, or completed and not yet joined).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Aborts every task of the set. They stay in the set: joining them then gives a
    /// cancellation error (or their output, if they completed first).
    pub fn abort_all(&mut self) {
        for (_, entry) in &self.entries {
            entry.handle.abort();
        }
    }

    /// Removes every task from the set without aborting it: the tasks keep running, and
    /// their outputs are dropped when they complete.
    pub fn detach_all(&mut self) {
        self.entries.clear();
        self.ready.lock().queue.clear();
    }

    /// Adds a spawned task to the set; returns a handle that can abort it.
    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let slot = self.entries.vacant_entry();
        let notify = Arc::new(EntryWaker {
            key: slot.key(),
            queued: AtomicBool::new(false),
            list: Arc::downgrade(&self.ready),
        });
        let waker = Waker::from(Arc::clone(&notify));
        if handle.register_waker(&waker) {
            // Already complete: nothing was registered, so queue it now.
            waker.wake_by_ref();
        }
        slot.insert(Entry {
            handle,
            notify,
            waker,
        });
        abort
    }

    /// Whether `notify` still names a member (its key may have been reused since).
    fn is_member(&self, notify: &Arc<EntryWaker>) -> bool {
        self.entries
            .get(notify.key)
            .is_some_and(|entry| Arc::ptr_eq(&entry.notify, notify))
    }

    /// Polls the member behind `notify` once, with its own waker; removes it when done.
    fn poll_member(&mut self, notify: &Arc<EntryWaker>) -> Poll<Result<(Id, T), JoinError>> {
        notify.queued.store(false, Ordering::Release);
        let entry = &mut self.entries[notify.key];
        let id = entry.handle.id();
        let mut cx = Context::from_waker(&entry.waker);
        let polled = Pin::new(&mut entry.handle).poll(&mut cx);
        if polled.is_ready() {
            self.entries.remove(notify.key);
        }
        polled.map(|result| result.map(|output| (id, output)))
    }

    /// Waits for one task of the set to complete and returns its output, or `None` if the
    /// set is empty. Cancel-safe: if the future is dropped, no output is lost.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// As [`JoinSet::join_next`], with the task's id.
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// The polling form of [`JoinSet::join_next`]: `Ready(None)` when the set is empty;
    /// `Pending` (with `cx`'s waker registered) while no task has completed.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|next| next.map(|result| result.map(|(_, output)| output)))
    }

    /// The polling form of [`JoinSet::join_next_with_id`].
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        loop {
            let Some(notify) = self.ready.pop(Some(cx.waker())) else {
                return match self.entries.is_empty() {
                    true => Poll::Ready(None),
                    false => Poll::Pending,
                };
            };
            if !self.is_member(&notify) {
                continue;
            }
            if let Poll::Ready(result) = self.poll_member(&notify) {
                return Poll::Ready(Some(result));
            }
            // The budget is spent (the handle queued the member again): yield.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
    }

    /// The output of a task that has completed, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.try_join_next_with_id()
            .map(|result| result.map(|(_, output)| output))
    }

    /// As [`JoinSet::try_join_next`], with the task's id.
    pub fn try_join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        loop {
            let notify = self.ready.pop(None)?;
            if !self.is_member(&notify) {
                continue;
            }
            // Not async, so it cannot yield: check readiness without spending budget.
            if let Poll::Ready(result) = coop::with_unlimited_budget(|| self.poll_member(&notify)) {
                return Some(result);
            }
        }
    }

    /// Aborts every task and waits for all of them to finish; the set is then empty.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs in completion order.
    ///
    /// # Panics
    /// If a task panicked (the panic is resumed here) or was cancelled. Every other task
    /// is aborted then, as the set is dropped.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut output = Vec::with_capacity(self.len());
        while let Some(result) = self.join_next().await {
            match result {
                Ok(value) => output.push(value),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => panic!("{error}"),
            }
        }
        output
    }
}

#[cfg(not(gpm_loom))]
impl<T: Send + 'static> JoinSet<T> {
    /// Spawns `future` on the current runtime (like [`crate::spawn`]) and adds it to the set.
    ///
    /// # Panics
    /// Outside a runtime context.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(crate::spawn(future))
    }

    /// Spawns `future` on the runtime of `handle` and adds it to the set.
    pub fn spawn_on<F>(&mut self, future: F, handle: &crate::Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(handle.spawn(future))
    }

    /// Runs `func` on the current runtime's blocking pool (like
    /// [`spawn_blocking`](super::spawn_blocking)) and adds it to the set.
    ///
    /// # Panics
    /// Outside a runtime context.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, func: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(super::spawn_blocking(func))
    }

    /// Runs `func` on the blocking pool of `handle`'s runtime and adds it to the set.
    pub fn spawn_blocking_on<F>(&mut self, func: F, handle: &crate::Handle) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(handle.spawn_blocking(func))
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns `future`, which need not be `Send`, on the [`LocalSet`](super::LocalSet)
    /// this thread is running (like [`spawn_local`](super::spawn_local)) and adds it to the
    /// set, as tokio's `JoinSet::spawn_local`.
    ///
    /// # Panics
    /// Outside a `LocalSet`'s context.
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
    /// let local = gpm::task::LocalSet::new();
    /// local.block_on(&rt, async {
    ///     let mut set = gpm::task::JoinSet::new();
    ///     for i in 0..3 {
    ///         let value = std::rc::Rc::new(i);
    ///         set.spawn_local(async move { *value });
    ///     }
    ///     let mut sum = 0;
    ///     while let Some(joined) = set.join_next().await {
    ///         sum += joined.unwrap();
    ///     }
    ///     assert_eq!(sum, 3);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(super::spawn_local(future))
    }

    /// Spawns `future` on `local_set` and adds it to the set; the task runs once the
    /// `LocalSet` is driven.
    pub fn spawn_local_on<F>(&mut self, future: F, local_set: &super::LocalSet) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(local_set.spawn_local(future))
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

/// Collects futures into a set, spawning each on the current runtime.
#[cfg(not(gpm_loom))]
impl<T, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> JoinSet<T> {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}

/// Spawns each future on the current runtime and adds it to the set.
#[cfg(not(gpm_loom))]
impl<T, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for future in iter {
            self.spawn(future);
        }
    }
}

//! `LocalSet` and `spawn_local`: tasks whose futures are not `Send`, run on one thread.
//!
//! # Design
//!
//! A local task is an ordinary gpm task (`core::Cell`, the harness, the state word) whose
//! scheduler is the set's [`Shared`] instead of the runtime's: the same [`JoinHandle`],
//! [`AbortHandle`](super::AbortHandle), [`JoinSet`](super::JoinSet), panic capture, task
//! ids and `task_local!` as for `gpm::spawn`. What differs is where notifications go and
//! who runs them:
//!
//! ```text
//!   any thread                                the set's thread
//!   waker.wake() / abort() ──► schedule ──► Mutex<Queue> ──► tick: pop, run (≤ 61 per poll)
//!                                  │ takes the registered waker      ▲
//!                                  └──► outer waker.wake() ──► run_until / LocalSet polled
//! ```
//!
//! * **The tasks stay on the set's thread.** `LocalSet` is `!Send` and `!Sync`, and only
//!   its own methods (`tick`, `Drop`) run notifications or shut tasks down, so every poll,
//!   cancellation and drop of a local future happens on the thread that created the set.
//!   That is the contract of `task::new_local_task`, which builds the cell without `F: Send`.
//! * **Wakes come from anywhere.** A waker is `Send + Sync`: its wake reaches
//!   `Schedule::schedule` of `Arc<Shared>` on whatever thread, which pushes the
//!   notification (a pointer and a counted reference, never the future) on a mutex-guarded
//!   queue and wakes the waker of whoever last polled the set (`run_until`, or the set as
//!   a future). Aborts are wakes with `CANCELLED` set, so cancellation also happens on the
//!   set's thread.
//! * **No lost wake-up.** A poll of the set registers its waker in the queue's mutex
//!   *before* it pops; `schedule` pushes and takes the waker under the same mutex. A push
//!   after the last pop of a tick therefore finds the waker of that poll and wakes it. The
//!   waker is taken, not cloned: one wake per poll is enough, since the next poll
//!   registers again before it looks at the queue (loom models in `local/loom_tests.rs`).
//! * **Budget.** A tick runs at most [`MAX_TASKS_PER_TICK`] notifications (tokio's 61),
//!   each with a fresh cooperative budget; if work is left, the set wakes itself and
//!   returns `Pending`, so the task or `block_on` that drives it yields to its executor now
//!   and then. The `run_until` future is polled within its caller's budget (tokio's rule).
//! * **Drop cancels.** Dropping the set closes the queue (a later wake drops its
//!   notification at once: a no-op), closes the owned-task list and shuts every task down
//!   on this thread (each future dropped exactly once; `JoinHandle`s see a cancelled
//!   `JoinError`), then drops the notifications still queued. A `spawn_local` while this
//!   runs (from a future's `Drop`) gets a task that is cancelled at once. Each task's cell
//!   holds an `Arc` of the `Shared`, so a wake after the set is gone touches live memory
//!   and does nothing.
//!
//! # Invariants
//!
//! 1. A notification of a local task is run only by `LocalSet::tick` on the set's thread;
//!    the owned list's references are shut down only by `Drop for LocalSet` on that thread.
//! 2. A local task's output is dropped on the set's thread (completion without a join
//!    handle) or by its `JoinHandle`, which is `Send` only when the output is.
//! 3. After `Drop for LocalSet`, the queue is closed and empty and the owned list closed and
//!    empty: no task of the set holds a future any more, so a reference dropped on another
//!    thread (a late waker's) frees a cell without a future in it.
//! 4. No user code (the outer waker's clone, wake or drop, task code, the drop of a
//!    notification that frees a cell) runs while the queue's mutex is held.
//!
//! In debug builds, the entry points that rely on invariant 1 (`tick`, spawning) assert
//! that they run on the set's thread.
//!
//! # Rejected options
//!
//! * A separate executor for local futures (its own cell type and join handle): a local
//!   task's handles must be gpm's, so that `JoinSet`, `abort` and `await` work the same;
//!   reusing the harness costs one `unsafe` constructor.
//! * A lock-free queue or a second, owner-only queue (tokio has both): one mutex per wake,
//!   uncontended unless other threads wake the set's tasks, is simpler; nothing has been
//!   measured yet (no benchmark covers `LocalSet`).
//! * Forbidding `block_in_place` inside a set (tokio does): gpm's hand-off keeps the local
//!   tasks on this thread (the M finishes its poll without a P), so it is allowed.

use super::coop;
use super::list::OwnedTasks;
use super::{is_large_future, new_local_task, Id, JoinHandle, Notified, Schedule, Task};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;

#[cfg(all(test, gpm_loom))]
mod loom_tests;

/// Notifications one poll of a set runs at most before it yields (tokio's number).
pub(crate) const MAX_TASKS_PER_TICK: usize = 61;

thread_local! {
    /// The set whose context this thread is in (`run_until`, a poll of the set, `enter`):
    /// where [`spawn_local`] spawns.
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// A set of tasks that run on the current thread, for futures that are not `Send`, like
/// tokio's `LocalSet`.
///
/// Spawn with [`LocalSet::spawn_local`], or with [`spawn_local`] from inside the set
/// ([`run_until`](LocalSet::run_until), its tasks, or an [`enter`](LocalSet::enter) guard).
/// The tasks run while the set is driven: by `run_until` (which also drives a future of
/// yours), by [`block_on`](LocalSet::block_on), or by awaiting the set itself, which
/// completes once every task in it has. Dropping the set cancels the tasks it still holds;
/// their [`JoinHandle`]s then give a cancelled [`JoinError`](crate::JoinError).
///
/// Local tasks may call `gpm::spawn`, `gpm::time` and `gpm::net` as other tasks do when the
/// set is driven inside a runtime (`Runtime::block_on`, or `block_in_place` plus
/// `Handle::block_on` from a task).
///
/// ```
/// use std::rc::Rc;
///
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let local = gpm::task::LocalSet::new();
/// let shared = Rc::new(41); // not Send
/// let answer = local.block_on(&rt, async move {
///     let again = Rc::clone(&shared);
///     gpm::task::spawn_local(async move { *again + 1 }).await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct LocalSet {
    shared: Arc<Shared>,
    /// `!Send` and `!Sync`: the tasks' futures live on this thread (invariant 1).
    _not_send: PhantomData<*const ()>,
}

/// What the tasks of one set share with the wakers: the queue and the owned list. This is
/// the tasks' scheduler (`Schedule for Arc<Shared>`).
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    owned: OwnedTasks<Arc<Shared>>,
    /// The thread of the set (checked in debug builds where invariant 1 is relied on).
    owner: ThreadId,
}

struct Queue {
    tasks: VecDeque<Notified<Arc<Shared>>>,
    /// The waker of the last poll of the set; taken by the first wake after it.
    waker: Option<Waker>,
    /// Set when the set is dropped: later notifications are dropped at once.
    closed: bool,
}

impl Default for LocalSet {
    fn default() -> LocalSet {
        LocalSet::new()
    }
}

impl LocalSet {
    /// An empty set, owned by the current thread.
    pub fn new() -> LocalSet {
        LocalSet {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    tasks: VecDeque::new(),
                    waker: None,
                    closed: false,
                }),
                owned: OwnedTasks::new(1),
                owner: std::thread::current().id(),
            }),
            _not_send: PhantomData,
        }
    }

    /// Makes this set the one [`spawn_local`] spawns on, until the guard drops (tokio's
    /// `LocalSet::enter`). The tasks still run only while the set is driven.
    ///
    /// ```
    /// let local = gpm::task::LocalSet::new();
    /// let _guard = local.enter();
    /// let task = gpm::task::spawn_local(async { true });
    /// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
    /// local.block_on(&rt, async move { assert!(task.await.unwrap()) });
    /// ```
    pub fn enter(&self) -> LocalEnterGuard {
        LocalEnterGuard::new(&self.shared)
    }

    /// Spawns `future` on this set and returns its join handle. The future need not be
    /// `Send`; it runs on this thread once the set is driven.
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
    /// let local = gpm::task::LocalSet::new();
    /// let task = local.spawn_local(async { std::rc::Rc::new(5) });
    /// let five = local.block_on(&rt, async { task.await.unwrap() });
    /// assert_eq!(*five, 5);
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_boxed_if_large(&self.shared, future)
    }

    /// Runs `future` to completion on `rt`, driving this set's tasks meanwhile: the same as
    /// `rt.block_on(self.run_until(future))`.
    ///
    /// # Panics
    /// Where [`Runtime::block_on`](crate::Runtime::block_on) panics (on a worker thread, or
    /// inside another `block_on`).
    #[cfg(not(gpm_loom))]
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &crate::Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }

    /// Drives `future` and this set's tasks on the current thread until `future` completes;
    /// tasks left unfinished stay in the set (to run at its next drive, or be cancelled with
    /// it). Inside, [`spawn_local`] spawns on this set.
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    /// rt.block_on(async {
    ///     let local = gpm::task::LocalSet::new();
    ///     let total = local
    ///         .run_until(async {
    ///             let cell = std::rc::Rc::new(std::cell::Cell::new(0));
    ///             let tasks: Vec<_> = (1..=4)
    ///                 .map(|i| {
    ///                     let cell = cell.clone();
    ///                     gpm::task::spawn_local(async move { cell.set(cell.get() + i) })
    ///                 })
    ///                 .collect();
    ///             for task in tasks {
    ///                 task.await.unwrap();
    ///             }
    ///             cell.get()
    ///         })
    ///         .await;
    ///     assert_eq!(total, 10);
    /// });
    /// ```
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        RunUntil {
            set: self,
            future: std::pin::pin!(future),
        }
        .await
    }

    /// Registers `waker` as the one to wake when a notification arrives. Before any pop of
    /// the same poll (the no-lost-wake-up rule in the module documentation).
    fn register(&self, waker: &Waker) {
        // `will_wake` compares pointers; cloning and dropping a waker are user code, done
        // outside the lock (invariant 4). A wake between the two locks takes the old waker
        // (or none): the poll that called this is running, so nothing is lost.
        let registered = matches!(&self.shared.lock().waker, Some(w) if w.will_wake(waker));
        if !registered {
            let new = waker.clone();
            let old = self.shared.lock().waker.replace(new);
            drop(old);
        }
    }

    /// Runs up to [`MAX_TASKS_PER_TICK`] notifications. Returns true if it stopped for the
    /// budget with work possibly left (the caller then wakes itself), false once the queue
    /// was found empty.
    fn tick(&self) -> bool {
        debug_assert_eq!(std::thread::current().id(), self.shared.owner);
        for _ in 0..MAX_TASKS_PER_TICK {
            let next = self.shared.lock().tasks.pop_front();
            match next {
                // Invariant 1: run here, on the set's thread; a fresh budget per task.
                Some(task) => {
                    // The set's scheduler queues its yielded tasks itself
                    // (`Schedule::yield_now`): nothing comes back.
                    let ran = coop::with_budget(|| task.run());
                    debug_assert!(!matches!(ran, super::Ran::Yielded(_)));
                }
                None => return false,
            }
        }
        true
    }

    /// Number of tasks of this set not yet completed.
    fn live_tasks(&self) -> usize {
        self.shared.owned.len()
    }
}

impl Future for LocalSet {
    type Output = ();

    /// Runs the set's tasks; ready once no task is left (tokio's `impl Future for LocalSet`).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let _enter = LocalEnterGuard::new(&self.shared);
        self.register(cx.waker());
        if self.tick() {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else if self.live_tasks() == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for LocalSet {
    fn drop(&mut self) {
        // Inside the set's context, so a `spawn_local` from a future's `Drop` finds the set
        // (closed: that task is cancelled at once) instead of panicking.
        let _enter = LocalEnterGuard::try_new(&self.shared);
        let waker = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            queue.waker.take()
        };
        drop(waker);
        // Invariant 1: shut down on this thread. Dropping a future may wake (the wake is
        // dropped: the queue is closed) or spawn (cancelled at once) other local tasks.
        for task in self.shared.owned.close_and_take_all() {
            task.shutdown();
        }
        let queued = std::mem::take(&mut self.shared.lock().tasks);
        drop(queued);
        debug_assert_eq!(self.live_tasks(), 0, "a local task survived its set");
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("tasks", &self.live_tasks())
            .finish()
    }
}

/// The future of [`LocalSet::run_until`].
struct RunUntil<'a, F> {
    set: &'a LocalSet,
    future: Pin<&'a mut F>,
}

impl<F: Future> Future for RunUntil<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let set = self.set;
        let _enter = LocalEnterGuard::new(&set.shared);
        set.register(cx.waker());
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if set.tick() {
            // Work is left: come back after the executor had its turn.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `future` on the set. Only on the set's thread (invariant 1): callers are
    /// `LocalSet::spawn_local` (the set is `!Send`) and [`spawn_local`] (the thread-local
    /// `CURRENT` is set only by the set's own methods, on its thread).
    fn spawn<F>(this: &Arc<Shared>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        debug_assert_eq!(std::thread::current().id(), this.owner);
        // SAFETY: the task's notifications are run only by `LocalSet::tick` and its owned
        // reference shut down only by `Drop for LocalSet`, both on the set's thread, which
        // is this one (the set is `!Send`; see the callers above); other threads only push
        // notifications into the queue or drop them (`schedule`), and the join handle is
        // `Send` only for a `Send` output.
        let (task, notified, join) =
            unsafe { new_local_task(future, Arc::clone(this), Id::next()) };
        match this.owned.bind(task) {
            Ok(()) => this.schedule(notified),
            Err(task) => {
                // The set is being dropped: the task never runs.
                drop(notified);
                task.shutdown();
            }
        }
        join
    }
}

impl Schedule for Arc<Shared> {
    /// Any thread: queue the notification for the set's thread and wake whoever drives the
    /// set; once the set is gone, drop it (a reference, never the future: invariant 3).
    fn schedule(&self, task: Notified<Self>) {
        let mut queue = self.lock();
        if queue.closed {
            drop(queue);
            drop(task);
            return;
        }
        queue.tasks.push_back(task);
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            // The driver's waker is another executor's code: a panic in it must not unwind
            // into whoever woke the task (a worker M, the I/O driver).
            let _ = catch_unwind(AssertUnwindSafe(|| waker.wake()));
        }
    }

    fn release(&self, task: &Task<Self>, _: super::CompletedIn) -> Option<Task<Self>> {
        self.owned.remove(task)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("tasks", &self.owned.len())
            .finish()
    }
}

/// Spawns `future` on the [`LocalSet`] this thread is running (inside
/// [`LocalSet::run_until`], a task of the set, a poll of the set, or a
/// [`LocalSet::enter`] guard), like tokio's `task::spawn_local`.
///
/// # Panics
/// Outside a `LocalSet`'s context, with tokio's message: "`spawn_local` called from outside
/// of a `task::LocalSet`".
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let local = gpm::task::LocalSet::new();
/// local.block_on(&rt, async {
///     let name = std::rc::Rc::new("local");
///     let task = gpm::task::spawn_local(async move { name.len() });
///     assert_eq!(task.await.unwrap(), 5);
/// });
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let current = CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten();
    match current {
        Some(shared) => spawn_boxed_if_large(&shared, future),
        None => panic!("`spawn_local` called from outside of a `task::LocalSet`"),
    }
}

/// Boxes a large future before it is moved into its cell (as `gpm::spawn` does).
fn spawn_boxed_if_large<F>(shared: &Arc<Shared>, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    if is_large_future::<F>() {
        Shared::spawn(shared, Box::pin(future))
    } else {
        Shared::spawn(shared, future)
    }
}

/// The context of a [`LocalSet`] on this thread until dropped ([`LocalSet::enter`]): where
/// [`spawn_local`] spawns. Restores the previous context on drop, so guards nest.
#[must_use = "the LocalSet's context is left when the guard is dropped"]
pub struct LocalEnterGuard {
    previous: Option<Arc<Shared>>,
    /// Whether the thread-local was reachable when entering (not during thread exit).
    entered: bool,
    _not_send: PhantomData<*const ()>,
}

impl LocalEnterGuard {
    fn new(shared: &Arc<Shared>) -> LocalEnterGuard {
        let guard = LocalEnterGuard::try_new(shared);
        assert!(guard.entered, "LocalSet used while its thread was exiting");
        guard
    }

    /// As `new`, but a no-op when the thread-local is already destroyed (a set dropped by
    /// another thread-local's destructor).
    fn try_new(shared: &Arc<Shared>) -> LocalEnterGuard {
        let previous = CURRENT.try_with(|current| current.replace(Some(Arc::clone(shared))));
        LocalEnterGuard {
            entered: previous.is_ok(),
            previous: previous.ok().flatten(),
            _not_send: PhantomData,
        }
    }
}

impl Drop for LocalEnterGuard {
    fn drop(&mut self) {
        if self.entered {
            let previous = self.previous.take();
            let replaced = CURRENT.try_with(|current| current.replace(previous));
            // The set's own `Arc` is dropped outside the thread-local's borrow.
            drop(replaced);
        }
    }
}

impl fmt::Debug for LocalEnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEnterGuard").finish_non_exhaustive()
    }
}

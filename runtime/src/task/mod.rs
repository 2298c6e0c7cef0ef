//! G: the task, its state machine, its handles, and the task-level user API.
//!
//! # Design
//!
//! A task is one heap allocation (`core::Cell`) holding a header with an atomic state word
//! (`state`), the future and later its output, and the join waker. Every handle is a
//! pointer to the header plus a reference in the state word's count:
//!
//! | handle | references | who holds it |
//! |---|---|---|
//! | `Task` | 1 | the runtime's owned-task list, so shutdown can reach every live task |
//! | `Notified` | 1 | a run queue: "poll me"; at most one exists per task at a time |
//! | [`JoinHandle`] | 1 | the spawner |
//! | [`AbortHandle`] | 1 each | whoever may cancel the task (never reads the output) |
//! | `Waker` | 1 each | whoever will wake the task |
//!
//! The state machine guarantees: a wake reschedules a task at most once (the `NOTIFIED`
//! flag); a wake during a poll makes the poller reschedule it (no second queue entry); two
//! polls never overlap (`RUNNING`); the future is dropped exactly once, by whoever holds
//! `RUNNING` when it completes or is cancelled; the output is dropped by the join handle, or
//! by the runtime at completion if the join handle is already gone.
//!
//! The scheduler is a type parameter `S: Schedule`, so the same task code serves the worker
//! Ps and the blocking pool, and a model scheduler in the loom tests.
//!
//! # Rejected options
//!
//! * Separate allocations for the future and the header (`Arc<Header>` + `Box<dyn Future>`):
//!   two allocations per spawn and an indirection per poll.
//! * A mutex around the future: simple, but costs a lock per poll and does not give
//!   "reschedule exactly once" by itself.

mod abort;
pub mod coop;
pub(crate) mod core;
mod current;
mod harness;
mod join;
mod join_set;
pub(crate) mod list;
mod local;
pub(crate) mod state;
mod task_local;
mod waker;
mod yield_now;

#[cfg(all(test, gpm_loom))]
mod loom_tests;

pub use abort::AbortHandle;
pub use coop::{consume_budget, unconstrained, Unconstrained};
pub use current::{id, try_id};
pub(crate) use join::panic_payload_message;
pub use join::{JoinError, JoinHandle};
pub use join_set::JoinSet;
pub use local::{spawn_local, LocalEnterGuard, LocalSet};
pub use task_local::{AccessError, LocalKey, TaskLocalFuture};
pub use yield_now::yield_now;

#[cfg(not(gpm_loom))]
pub use crate::rt::{block_in_place, spawn_blocking};

/// Futures larger than this many bytes are boxed at the public entry points (`spawn`,
/// `block_on`) before they are moved any further. Building a task moves the future a few
/// times on the way into its cell, and each move of a big future is a stack copy: a 1 MiB
/// future spawned from a worker would overflow the worker's stack. tokio boxes above the
/// same 16 KiB (its PR #6826) in optimised builds and above 2 KiB in unoptimised ones; gpm
/// uses 16 KiB in both, so that task cells between the slab's largest class (4 KiB) and
/// 16 KiB take the same path (the global allocator) in every build and its tests.
pub(crate) const BOX_FUTURE_THRESHOLD: usize = 16 * 1024;

/// Whether a future of type `F` is boxed by the entry points (see [`BOX_FUTURE_THRESHOLD`]).
pub(crate) const fn is_large_future<F>() -> bool {
    std::mem::size_of::<F>() > BOX_FUTURE_THRESHOLD
}

use self::core::{Cell, Header};
use crate::alloc::SizeClass;
use std::alloc::Layout;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// A task's identity, unique within the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(u64);

impl Id {
    pub(crate) fn next() -> Id {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a task needs from whoever runs it.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// Queues a notification: the task must be polled.
    fn schedule(&self, task: Notified<Self>);

    /// Queues a task that woke itself during its own poll (a yield): behind other work.
    fn yield_now(&self, task: Notified<Self>) {
        self.schedule(task);
    }

    /// Whether a task woken during its own poll is handed back to whoever ran it
    /// ([`Ran::Yielded`]) instead of going through [`Schedule::yield_now`]: the runtime's
    /// Ms queue it on the P they hold, without looking up their context (the harness does
    /// not know who runs it). Only for schedulers whose tasks are run by a runner that
    /// takes them back. Default: no.
    fn yields_to_runner(&self) -> bool {
        false
    }

    /// The task completed (`at`: in a poll, whose runner then gets [`Ran::Completed`], or
    /// at shutdown): remove it from the owned list, returning that list's reference.
    fn release(&self, task: &Task<Self>, at: CompletedIn) -> Option<Task<Self>>;

    /// Memory for a new task cell of `layout` (whose slab size class is `class`). Default:
    /// the global allocator.
    fn allocate_task(&self, layout: Layout, class: Option<SizeClass>) -> NonNull<u8> {
        let _ = class;
        // SAFETY: a task cell is never zero-sized (its header is not).
        let ptr = unsafe { std::alloc::alloc(layout) };
        NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
    }

    /// Frees a cell's memory. `self` is the scheduler read out of that cell, so it is
    /// still alive (and keeps the allocator alive) during the call.
    ///
    /// # Safety
    /// `ptr` came from `allocate_task(layout, class)` of a scheduler of the same runtime,
    /// its contents are already dropped, and it is not used after this call.
    unsafe fn deallocate_task(&self, ptr: NonNull<u8>, layout: Layout, class: Option<SizeClass>) {
        let _ = class;
        // SAFETY: allocated by the default `allocate_task` with `layout` (caller's contract).
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
    }
}

/// A type-erased, non-owning pointer to a task.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawTask {
    ptr: NonNull<Header>,
}

// SAFETY: a task is shared between threads only through its atomic state word and the
// protocol documented in `state.rs`. The future and output it holds are `Send` (`new_task`),
// or, for a local task (`new_local_task`), reached only from its `LocalSet`'s thread: what
// another thread may do through a `RawTask` (wake, abort, drop a reference) touches the
// state word and the scheduler handle, never the future, and dealloc finds no future left.
unsafe impl Send for RawTask {}
// SAFETY: as above; every `&RawTask` operation goes through that protocol.
unsafe impl Sync for RawTask {}

/// One counted reference to a task (the owned list's).
pub(crate) struct Task<S: 'static> {
    raw: RawTask,
    _scheduler: PhantomData<fn() -> S>,
}

/// One counted reference that means "poll this task". At most one exists per task.
#[repr(transparent)]
pub(crate) struct Notified<S: 'static>(Task<S>);

/// Where a task completed, for [`Schedule::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompletedIn {
    /// In a poll (its future returned or panicked, or it was found cancelled): the runner
    /// learns it from [`Ran::Completed`] once the poll returns.
    Poll,
    /// Cancelled outside any poll, at shutdown.
    Shutdown,
}

/// What running a notification did ([`Notified::run`]).
#[must_use = "a yielded task must be queued"]
pub(crate) enum Ran<S: 'static> {
    /// Nothing for the runner: the task is pending (or the notification was stale).
    Idle,
    /// The task completed in this poll (and has left its owned list: the runner may count
    /// it, not touch it).
    Completed,
    /// The task woke itself during the poll (a yield) and its scheduler hands the new
    /// notification to the runner ([`Schedule::yields_to_runner`]) to queue behind other
    /// work.
    Yielded(Notified<S>),
}

/// [`Ran`] through the type-erased vtable.
pub(crate) enum RanRaw {
    Idle,
    Completed,
    Yielded(RawTask),
}

/// Allocates a task for `future` and returns its three initial handles.
pub(crate) fn new_task<F, S>(
    future: F,
    scheduler: S,
    id: Id,
) -> (Task<S>, Notified<S>, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: `F` and its output are `Send`: any thread may poll, cancel or drop them.
    unsafe { new_local_task(future, scheduler, id) }
}

/// [`new_task`] for a future that need not be `Send` (`LocalSet`'s tasks).
///
/// # Safety
/// The caller confines the task to the thread that calls this, unless `F` and its output
/// are `Send`: every notification of the task is run, and its owned-list reference shut
/// down, on that thread only (so the future is polled and dropped there), and the output is
/// read or dropped there or through the `JoinHandle` (which is `Send` only for a `Send`
/// output). Wakes, aborts and reference drops may come from any thread: they reach the
/// scheduler's `schedule` (which must then hand the notification to that thread or drop it)
/// but never the future.
pub(crate) unsafe fn new_local_task<F, S>(
    future: F,
    scheduler: S,
    id: Id,
) -> (Task<S>, Notified<S>, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    let memory = scheduler
        .allocate_task(Layout::new::<Cell<F, S>>(), Cell::<F, S>::CLASS)
        .cast::<Cell<F, S>>();
    let cell = Cell::new(future, scheduler, id, harness::vtable::<F, S>());
    // SAFETY: fresh memory with the layout of `Cell<F, S>`, owned by this call.
    unsafe { memory.as_ptr().write(cell) };
    let raw = RawTask { ptr: memory.cast() };
    // SAFETY: the new state word counts exactly these three references.
    unsafe {
        (
            Task::from_raw(raw),
            Notified(Task::from_raw(raw)),
            JoinHandle::from_raw(raw),
        )
    }
}

impl RawTask {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a RawTask is only built from a live allocation and used while some
        // counted reference keeps it alive.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    /// # Safety
    /// `ptr` points to a live task header.
    pub(crate) unsafe fn from_header(ptr: NonNull<Header>) -> RawTask {
        RawTask { ptr }
    }

    /// Runs the notification whose reference the caller transfers.
    fn poll(self) -> RanRaw {
        // SAFETY: the vtable matches the cell; the caller gives up a counted reference.
        unsafe { (self.header().vtable.poll)(self.ptr) }
    }

    pub(crate) fn schedule(self) {
        // SAFETY: as above; the reference for the new notification is already counted.
        unsafe { (self.header().vtable.schedule)(self.ptr) }
    }

    pub(crate) fn dealloc(self) {
        // SAFETY: the caller observed the reference count reach zero.
        unsafe { (self.header().vtable.dealloc)(self.ptr) }
    }

    fn shutdown(self) {
        // SAFETY: the caller transfers one counted reference.
        unsafe { (self.header().vtable.shutdown)(self.ptr) }
    }

    /// Drops one reference, freeing the task if it was the last.
    pub(crate) fn drop_reference(self) {
        if self.header().state.ref_dec(1) {
            self.dealloc();
        }
    }
}

impl<S: 'static> Task<S> {
    /// # Safety
    /// The caller transfers one counted reference to the returned handle, and the task's
    /// scheduler type is `S`.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Task<S> {
        Task {
            raw,
            _scheduler: PhantomData,
        }
    }

    pub(crate) fn raw(&self) -> RawTask {
        self.raw
    }

    pub(crate) fn header(&self) -> &Header {
        self.raw.header()
    }

    pub(crate) fn id(&self) -> Id {
        self.header().id
    }

    /// Cancels the task because the runtime shuts down; consumes this reference.
    pub(crate) fn shutdown(self) {
        let this = ManuallyDrop::new(self);
        this.raw.shutdown();
    }
}

impl<S: 'static> Notified<S> {
    /// Polls the task (or cancels it, or finds it already done); consumes the notification.
    pub(crate) fn run(self) -> Ran<S> {
        let this = ManuallyDrop::new(self);
        match this.0.raw.poll() {
            RanRaw::Idle => Ran::Idle,
            RanRaw::Completed => Ran::Completed,
            // SAFETY: the harness hands back the notification of the task it ran, which is
            // this one, so its scheduler is `S`; the transition to idle made the poll's
            // reference the notification's (`PollRef::Transfer`), so it is counted.
            RanRaw::Yielded(raw) => Ran::Yielded(unsafe { Notified::from_raw(raw) }),
        }
    }

    pub(crate) fn header(&self) -> &Header {
        self.0.header()
    }

    /// Cancels a task whose notification will never run (an unowned task at shutdown).
    pub(crate) fn shutdown(self) {
        let this = ManuallyDrop::new(self);
        this.0.raw.shutdown();
    }

    /// # Safety
    /// As for [`Task::from_raw`], and the reference is a notification's.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Notified<S> {
        // SAFETY: forwarded contract.
        Notified(unsafe { Task::from_raw(raw) })
    }
}

impl<S: 'static> Drop for Task<S> {
    fn drop(&mut self) {
        self.raw.drop_reference();
    }
}

impl<S: 'static> fmt::Debug for Task<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id())
            .field("state", &self.header().state)
            .finish()
    }
}

impl<S: 'static> fmt::Debug for Notified<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Notified").field(&self.0).finish()
    }
}

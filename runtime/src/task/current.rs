//! The id of the task this thread is running: [`id`] and [`try_id`], as tokio's.
//!
//! # Design
//!
//! One thread-local word holds the id of the task whose code runs on this thread now, or 0
//! (ids start at 1). The harness sets it with an [`IdGuard`] for the span of each poll, each
//! cancellation, and each drop of a task's future or output that the runtime does (the join
//! handle's drop of an unread output included), exactly where tokio sets it; the guard
//! restores the previous value on drop, unwinding included. That makes nested polls right:
//! a task that calls `block_in_place` and, inside it, `block_on` with a spawn of another
//! runtime sees its own id again once the inner task's poll returns.
//!
//! # Cost
//!
//! A poll pays one thread-local swap on entry and one store on exit, on a `const`-initialised
//! `Cell<u64>` without a destructor (no lazy-init check, no registration): no atomics, no
//! branch on the hot path. The future polled by `block_on` is not a task and sees the id
//! of whatever task (if any) called it, as in tokio.

use super::Id;
use std::cell::Cell;

thread_local! {
    /// The running task's id as a raw number; 0: no task.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Makes `id` the current task id until the guard drops, then restores the previous one.
pub(crate) struct IdGuard {
    previous: u64,
}

impl IdGuard {
    #[inline]
    pub(crate) fn enter(id: Id) -> IdGuard {
        IdGuard {
            previous: CURRENT.replace(id.as_u64()),
        }
    }
}

impl Drop for IdGuard {
    #[inline]
    fn drop(&mut self) {
        CURRENT.set(self.previous);
    }
}

/// The id of the task running this code, like `tokio::task::id`.
///
/// Inside a task's poll, and inside the drop of its future or output when the runtime drops
/// them, this is the task's [`Id`] (the one [`JoinHandle::id`](super::JoinHandle::id)
/// reports).
///
/// # Panics
/// Outside a task (for instance in the future given to `block_on`); use [`try_id`] there.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let handle = rt.spawn(async { gpm::task::id() });
/// let id = handle.id();
/// assert_eq!(rt.block_on(handle).unwrap(), id);
/// ```
#[track_caller]
pub fn id() -> Id {
    try_id().expect("can't get a task id when not inside a task")
}

/// The id of the task running this code, or `None` outside a task, like
/// `tokio::task::try_id`.
///
/// ```
/// assert_eq!(gpm::task::try_id(), None);
/// ```
pub fn try_id() -> Option<Id> {
    match CURRENT.try_with(Cell::get) {
        Ok(0) | Err(_) => None,
        Ok(raw) => Some(Id(raw)),
    }
}

//! What the current thread is to the runtime: the handle for `Handle::current`, the worker
//! context of an M running its loop, and whether `block_on` may be called here.
//!
//! Each piece is set by a guard that restores the previous value on drop, so contexts nest
//! (a runtime entered inside `block_in_place` of another runtime) and unwind cleanly.
//!
//! The worker context has a thread-local of its own: a pointer, which needs no destructor,
//! so reading it is one load relative to the thread pointer, with no check of whether the
//! thread-local was initialised or already destroyed (every wake-up, spawn and completion
//! asks for it).

use super::handle::Handle;
use super::worker::WorkerContext;
use std::cell::{Cell, RefCell};
use std::ptr;

struct Context {
    handle: RefCell<Option<Handle>>,
    /// How many [`EnterGuard`]s are alive on this thread (to catch out-of-order drops).
    handle_depth: Cell<usize>,
    blocking_forbidden: Cell<bool>,
}

thread_local! {
    /// The worker context of the M running its loop on this thread (null: none).
    static WORKER: Cell<*const WorkerContext> = const { Cell::new(ptr::null()) };
    static CONTEXT: Context = const {
        Context {
            handle: RefCell::new(None),
            handle_depth: Cell::new(0),
            blocking_forbidden: Cell::new(false),
        }
    };
}

/// Calls `f` with the current handle, if any, without cloning it.
pub(crate) fn with_handle<R>(f: impl FnOnce(Option<&Handle>) -> R) -> R {
    match CONTEXT.try_with(|cx| f(cx.handle.borrow().as_ref())) {
        Ok(result) => result,
        // Thread-local already destroyed (a waker dropped during thread exit).
        Err(_) => unreachable_context(),
    }
}

/// [`with_handle`], or `None` instead of a panic when the thread-locals are already
/// destroyed (a call from another thread-local's destructor).
pub(crate) fn try_with_handle<R>(f: impl FnOnce(Option<&Handle>) -> R) -> Option<R> {
    CONTEXT.try_with(|cx| f(cx.handle.borrow().as_ref())).ok()
}

#[cold]
fn unreachable_context() -> ! {
    panic!("the gpm thread context was used while the thread was exiting")
}

/// A clone of the current handle: `Ok(None)` outside any runtime, `Err` when the
/// thread-locals are already destroyed (a call from another thread-local's destructor).
pub(crate) fn try_current_handle() -> Result<Option<Handle>, std::thread::AccessError> {
    CONTEXT.try_with(|cx| cx.handle.borrow().clone())
}

/// Calls `f` with the worker context of the M running on this thread, if any.
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerContext>) -> R) -> R {
    let worker = WORKER.with(Cell::get);
    // SAFETY: the pointer is set by `WorkerGuard` from a reference that outlives the guard,
    // and cleared when the guard drops; this thread is the only one that reads it.
    f(unsafe { worker.as_ref() })
}

/// Restores the previous handle on drop. Returned by `Runtime::enter`.
///
/// Guards nest: they must be dropped in the reverse order of their creation. Dropping one
/// out of order panics (as tokio does) rather than silently restoring a stale handle.
#[must_use = "the runtime context is left when the guard is dropped"]
#[derive(Debug)]
pub struct EnterGuard {
    previous: Option<Handle>,
    /// The thread's guard depth with this guard alive.
    depth: usize,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Makes `handle` the current handle until the guard drops.
pub(crate) fn set_handle(handle: Handle) -> EnterGuard {
    let (previous, depth) = CONTEXT.with(|cx| {
        let depth = cx.handle_depth.get() + 1;
        cx.handle_depth.set(depth);
        (cx.handle.replace(Some(handle)), depth)
    });
    EnterGuard {
        previous,
        depth,
        _not_send: std::marker::PhantomData,
    }
}

/// [`set_handle`], or `None` when the thread-locals are already destroyed (a runtime dropped
/// by another thread-local's destructor).
pub(crate) fn try_set_handle(handle: Handle) -> Option<EnterGuard> {
    CONTEXT.try_with(|_| ()).ok()?;
    Some(set_handle(handle))
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let in_order = CONTEXT.try_with(|cx| {
            if cx.handle_depth.get() != self.depth {
                return false;
            }
            cx.handle_depth.set(self.depth - 1);
            cx.handle.replace(previous);
            true
        });
        if in_order == Ok(false) && !std::thread::panicking() {
            panic!(
                "`EnterGuard`s dropped out of order: guards returned by `Runtime::enter` and \
                 `Handle::enter` must be dropped in the reverse order of their creation"
            );
        }
    }
}

/// Marks this thread as an M running `worker`'s loop until the guard drops.
pub(crate) struct WorkerGuard {
    previous: *const WorkerContext,
    previous_forbidden: bool,
}

pub(crate) fn enter_worker(worker: &WorkerContext) -> WorkerGuard {
    WorkerGuard {
        previous: WORKER.with(|current| current.replace(worker)),
        previous_forbidden: CONTEXT.with(|cx| cx.blocking_forbidden.replace(true)),
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        WORKER.with(|current| current.set(self.previous));
        let _ = CONTEXT.try_with(|cx| cx.blocking_forbidden.set(self.previous_forbidden));
    }
}

/// Inside `block_on`: a nested `block_on` would block a thread that drives a future.
pub(crate) struct BlockOnGuard {
    previous_forbidden: bool,
}

/// Enters `block_on`, or panics with an explanation where blocking is not allowed.
#[track_caller]
pub(crate) fn enter_block_on() -> BlockOnGuard {
    let forbidden = CONTEXT.with(|cx| cx.blocking_forbidden.get());
    if forbidden {
        panic!(
            "Cannot call block_on from inside a gpm runtime (a worker thread polling tasks, \
             or another block_on): it would block the thread that drives them. Use `.await`, \
             or move the blocking call into `gpm::task::spawn_blocking` or \
             `gpm::task::block_in_place`."
        );
    }
    CONTEXT.with(|cx| BlockOnGuard {
        previous_forbidden: cx.blocking_forbidden.replace(true),
    })
}

impl Drop for BlockOnGuard {
    fn drop(&mut self) {
        let _ = CONTEXT.try_with(|cx| cx.blocking_forbidden.set(self.previous_forbidden));
    }
}

/// Lifts the worker marking for the body of `block_in_place`: the P is gone, so the thread
/// is an ordinary blocking thread and may even call `block_on`.
pub(crate) struct BlockingRegion {
    previous: *const WorkerContext,
    previous_forbidden: bool,
}

pub(crate) fn enter_blocking_region() -> BlockingRegion {
    BlockingRegion {
        previous: WORKER.with(|current| current.replace(ptr::null())),
        previous_forbidden: CONTEXT.with(|cx| cx.blocking_forbidden.replace(false)),
    }
}

impl Drop for BlockingRegion {
    fn drop(&mut self) {
        WORKER.with(|current| current.set(self.previous));
        let _ = CONTEXT.try_with(|cx| cx.blocking_forbidden.set(self.previous_forbidden));
    }
}

/// Whether blocking here would stall a runtime (for `Drop for Runtime`).
pub(crate) fn blocking_forbidden() -> bool {
    CONTEXT
        .try_with(|cx| cx.blocking_forbidden.get())
        .unwrap_or(false)
}

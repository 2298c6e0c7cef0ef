//! The memory of one task (a G): header, core, trailer, in a single allocation.
//!
//! ```text
//! Cell<F, S> (#[repr(C)])
//! +--------------------------------------------+
//! | Header  state word, vtable, id, last P,     |  <- every type-erased handle points here
//! |         owned-list slot                     |
//! | Core    scheduler handle S, stage of F      |  <- touched only by the holder of RUNNING
//! | Trailer join waker                          |  <- owned as the JOIN_WAKER flag says
//! +--------------------------------------------+
//! ```
//!
//! The memory comes from the task's scheduler (`Schedule::allocate_task`): the runtime's
//! slab (`crate::alloc`) or the global allocator.
//!
//! Handles (`RawTask`, `Task`, `Notified`, `JoinHandle`, wakers) hold a pointer to the header
//! and reach the typed parts through the vtable, whose functions are instantiated for the
//! concrete `F` and `S`. `#[repr(C)]` puts the header at offset 0, so a header pointer is also
//! a cell pointer.

use super::join::JoinError;
use super::state::State;
use super::Id;
use crate::alloc::{class_of, SizeClass};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::alloc::Layout;
use std::future::Future;
use std::ptr::NonNull;
use std::task::{Poll, Waker};

/// Type-erased operations on a task, instantiated per future and scheduler type.
pub(crate) struct Vtable {
    /// Runs a notification: poll, cancel, or drop the reference (see `Harness::poll`), and
    /// says what the runner is left with.
    pub(crate) poll: unsafe fn(NonNull<Header>) -> super::RanRaw,
    /// Hands a new notification (whose reference is already counted) to the scheduler.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Frees the allocation; the reference count is zero.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// Moves the output into `*mut Poll<Result<T, JoinError>>` if complete, else registers
    /// the waker.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Registers the join waker without reading the output; true if the task is complete
    /// (nothing was registered then).
    pub(crate) register_join_waker: unsafe fn(NonNull<Header>, &Waker) -> bool,
    /// The join handle is gone.
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Cancels the task on runtime shutdown, consuming one reference.
    pub(crate) shutdown: unsafe fn(NonNull<Header>),
}

/// Processor index meaning "never polled".
pub(crate) const NO_PROCESSOR: u32 = u32::MAX;

/// The type-erased head of every task.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static Vtable,
    pub(crate) id: Id,
    /// The P that last polled the task (Go's "last P"), or [`NO_PROCESSOR`].
    pub(crate) last_processor: AtomicU32,
    /// Index in the owned-task list shard; written and read under that shard's lock.
    pub(crate) owned_slot: AtomicUsize,
    /// Timestamps of sampled tasks, for the latency history and the probes.
    pub(crate) times: TaskTimes,
}

/// When a sampled task was spawned and last enqueued, as stamps of the runtime's clock
/// (`rt::stamp`: ticks, never 0); 0 means "not sampled". The runtime samples one task
/// schedule in `rt::stamp::SAMPLE_INTERVAL` (reading even the cheapest clock costs a tenth
/// of a short task's life).
///
/// `spawned` is written once, before the task is first scheduled, and never cleared: a
/// probe reads it at completion for the spawn-to-completion sojourn. `enqueued` is
/// written by whoever schedules the task (before the push that publishes it) and taken
/// (read and cleared) by the poller when the poll starts, which gives the enqueue-to-poll
/// wait. Relaxed ordering suffices: the queue push/pop orders the write before the read.
pub(crate) struct TaskTimes {
    pub(crate) spawned: AtomicU64,
    pub(crate) enqueued: AtomicU64,
}

impl TaskTimes {
    fn new() -> TaskTimes {
        TaskTimes {
            spawned: AtomicU64::new(0),
            enqueued: AtomicU64::new(0),
        }
    }

    /// Records a spawn (and its first enqueue) at stamp `now` (0: not sampled).
    pub(crate) fn set_spawned(&self, now: u64) {
        if now != 0 {
            self.spawned.store(now, Ordering::Relaxed);
            self.enqueued.store(now, Ordering::Relaxed);
        }
    }

    /// Records an enqueue at stamp `now`; a no-op for 0, so an unsampled wake-up costs one
    /// branch.
    pub(crate) fn set_enqueued(&self, now: u64) {
        if now != 0 {
            self.enqueued.store(now, Ordering::Relaxed);
        }
    }

    /// Takes the enqueue stamp (0 if the enqueue was not sampled) and clears it.
    pub(crate) fn take_enqueued(&self) -> u64 {
        let stamp = self.enqueued.load(Ordering::Relaxed);
        if stamp != 0 {
            self.enqueued.store(0, Ordering::Relaxed);
        }
        stamp
    }

    /// When the task was spawned, if sampled.
    pub(crate) fn spawned(&self) -> Option<u64> {
        Some(self.spawned.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }
}

/// What the core holds over the task's life.
pub(crate) enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// The typed part that only the holder of `RUNNING` (or the owner of the output) touches.
pub(crate) struct Core<F: Future, S> {
    pub(crate) scheduler: S,
    pub(crate) stage: UnsafeCell<Stage<F>>,
}

/// The join waker slot; see `JOIN_WAKER` in `state.rs` for who owns it when.
pub(crate) struct Trailer {
    pub(crate) waker: UnsafeCell<Option<Waker>>,
}

/// The whole allocation.
#[repr(C)]
pub(crate) struct Cell<F: Future, S> {
    pub(crate) header: Header,
    pub(crate) core: Core<F, S>,
    pub(crate) trailer: Trailer,
}

impl<F: Future, S> Cell<F, S> {
    /// The size class of this cell type, computed at compile time (`None`: too big for
    /// the slab).
    pub(crate) const CLASS: Option<SizeClass> = class_of(Layout::new::<Self>());

    /// A new cell, to be written into memory from `Schedule::allocate_task`.
    pub(crate) fn new(future: F, scheduler: S, id: Id, vtable: &'static Vtable) -> Self {
        Cell {
            header: Header {
                state: State::new(),
                vtable,
                id,
                last_processor: AtomicU32::new(NO_PROCESSOR),
                owned_slot: AtomicUsize::new(usize::MAX),
                times: TaskTimes::new(),
            },
            core: Core {
                scheduler,
                stage: UnsafeCell::new(Stage::Running(future)),
            },
            trailer: Trailer {
                waker: UnsafeCell::new(None),
            },
        }
    }
}

impl Header {
    pub(crate) fn set_last_processor(&self, index: usize) {
        self.last_processor.store(index as u32, Ordering::Relaxed);
    }

    /// The P that last polled the task, if any.
    #[allow(dead_code)] // not used under the loom model
    pub(crate) fn last_processor(&self) -> Option<usize> {
        match self.last_processor.load(Ordering::Relaxed) {
            NO_PROCESSOR => None,
            index => Some(index as usize),
        }
    }
}

impl<F: Future, S> Core<F, S> {
    /// Polls the future.
    ///
    /// # Safety
    /// The caller holds `RUNNING` (exclusive access to the stage) and the stage is `Running`.
    pub(crate) unsafe fn poll(&self, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        self.stage.with_mut(|stage| {
            // SAFETY: RUNNING gives this thread exclusive access to the stage (caller's
            // contract); the future is never moved out of the heap cell while `Running`, so
            // pinning it in place is sound.
            let stage = unsafe { &mut *stage };
            match stage {
                Stage::Running(future) => {
                    // SAFETY: see above; the cell is never moved after allocation.
                    let future = unsafe { std::pin::Pin::new_unchecked(future) };
                    future.poll(cx)
                }
                _ => unreachable!("polling a task whose future is gone"),
            }
        })
    }

    /// Replaces the stage, dropping what was there.
    ///
    /// # Safety
    /// The caller has exclusive access to the stage: it holds `RUNNING`, or the task is
    /// complete and the caller owns the output (join handle, or completion without interest).
    pub(crate) unsafe fn set_stage(&self, stage: Stage<F>) {
        // SAFETY: exclusive access per the caller's contract.
        self.stage.with_mut(|slot| unsafe { *slot = stage });
    }

    /// Drops what the stage holds (the future or the output), catching a panic from its
    /// `Drop`: that is user code, and it must not unwind into the runtime. Returns the
    /// panic, if any.
    ///
    /// # Safety
    /// As for [`Core::set_stage`].
    pub(crate) unsafe fn drop_stage_contained(&self) -> std::thread::Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: forwarded contract.
            unsafe { self.set_stage(Stage::Consumed) }
        }))
    }

    /// Takes the output out, leaving `Consumed`.
    ///
    /// # Safety
    /// As for [`Core::set_stage`], and the stage is `Finished`.
    pub(crate) unsafe fn take_output(&self) -> Result<F::Output, JoinError> {
        self.stage.with_mut(|slot| {
            // SAFETY: exclusive access per the caller's contract.
            let stage = unsafe { std::ptr::replace(slot, Stage::Consumed) };
            match stage {
                Stage::Finished(output) => output,
                _ => unreachable!("join handle read an output that is not there"),
            }
        })
    }
}

impl Trailer {
    /// # Safety
    /// The caller owns the slot (see `JOIN_WAKER`).
    pub(crate) unsafe fn set_waker(&self, waker: Option<Waker>) {
        // SAFETY: the caller owns the slot.
        self.waker.with_mut(|slot| unsafe { *slot = waker });
    }

    /// # Safety
    /// The slot is not being written: `JOIN_WAKER` is set, so only readers exist.
    pub(crate) unsafe fn will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: per the caller's contract no one writes the slot now.
        self.waker.with(|slot| match unsafe { &*slot } {
            Some(stored) => stored.will_wake(waker),
            None => false,
        })
    }

    /// # Safety
    /// `JOIN_WAKER` is set and the task is complete: the runtime side reads the slot.
    pub(crate) unsafe fn wake_join(&self) {
        // SAFETY: per the caller's contract no one writes the slot now.
        self.waker.with(|slot| match unsafe { &*slot } {
            Some(waker) => waker.wake_by_ref(),
            None => unreachable!("JOIN_WAKER set with an empty slot"),
        })
    }
}

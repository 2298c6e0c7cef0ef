//! `Handle`: a cloneable reference to a runtime, usable from any thread.

use super::context::{self, EnterGuard};
use super::worker::Shared;
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// A cheap, cloneable reference to a runtime (`Clone + Send + Sync`), like tokio's `Handle`.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// `Handle::try_current` found no runtime on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError {
    _private: (),
}

impl TryCurrentError {
    pub(crate) fn new_missing() -> TryCurrentError {
        TryCurrentError { _private: () }
    }

    /// Always true: the only reason is that this thread is not in a runtime context.
    pub fn is_missing_context(&self) -> bool {
        true
    }
}

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "there is no gpm runtime on this thread: call from a task, a blocking closure, \
             Runtime::block_on, or after Runtime::enter()",
        )
    }
}

impl std::error::Error for TryCurrentError {}

impl Handle {
    /// The handle of the runtime this thread is in.
    ///
    /// # Panics
    /// Outside a runtime context (not a task, a blocking closure, `block_on` or `enter`),
    /// with a message saying so. [`Handle::try_current`] does not panic.
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(handle) => handle,
            Err(error) => panic!("{error}"),
        }
    }

    /// The handle of the runtime this thread is in, or an error outside any.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::with_handle(|handle| handle.cloned()).ok_or_else(TryCurrentError::new_missing)
    }

    /// Spawns `future` on the runtime; it starts running at once on some worker.
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    /// let handle = rt.handle().clone();
    /// let join = std::thread::spawn(move || handle.spawn(async { 1 + 1 }));
    /// assert_eq!(rt.block_on(join.join().unwrap()).unwrap(), 2);
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn(future)
    }

    /// Runs `func` on the runtime's blocking pool.
    pub fn spawn_blocking<F, R>(&self, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.shared.spawn_blocking(func)
    }

    /// Runs `future` to completion on the current thread, inside this runtime's context.
    ///
    /// # Panics
    /// On a worker thread or inside another `block_on`: blocking there would stall the
    /// tasks that thread drives. Use `.await`, or `block_in_place` / `spawn_blocking` first.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        super::block_on::block_on(self, future)
    }

    /// Makes this runtime the current one on this thread until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        context::set_handle(self.clone())
    }

    /// Number of Ps (worker threads).
    pub fn num_workers(&self) -> usize {
        self.shared.scheduler.num_processors()
    }

    /// Number of tasks spawned and not yet completed.
    pub fn num_alive_tasks(&self) -> usize {
        self.shared.owned.len()
    }

    /// Counters of the task allocator: per P (cache hits, refills, flushes, frees) and per
    /// NUMA node pool (live bytes, remote frees, mapped bytes), plus large tasks. Relaxed
    /// reads, cheap enough for probes; with [`crate::TaskAllocator::System`] only the
    /// `allocator` field is set.
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    /// rt.block_on(async { gpm::spawn(async {}).await.unwrap() });
    /// let stats = rt.handle().task_allocator_stats();
    /// assert_eq!(stats.allocator, gpm::TaskAllocator::Slab);
    /// assert_eq!(stats.processors.len(), 2);
    /// ```
    pub fn task_allocator_stats(&self) -> crate::TaskAllocatorStats {
        self.shared.task_allocator_stats()
    }

    /// The scavenger: gives the pages of task-memory spans with no live task back to the
    /// OS (blocks cached by Ps count as in use). Returns the number of 64 KiB spans
    /// released. The runtime also does this at shutdown.
    pub fn release_idle_task_memory(&self) -> usize {
        self.shared.release_idle_task_memory()
    }

    /// Number of OS threads the runtime has right now (Ms and blocking threads).
    pub fn num_threads(&self) -> usize {
        self.shared.blocking.live_threads()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shared", &self.shared)
            .finish()
    }
}

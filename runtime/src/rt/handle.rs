//! `Handle`: a cloneable reference to a runtime, usable from any thread.

use super::context::{self, EnterGuard};
use super::probes::{Probes, StoppedWorld, StwReport};
use super::shared::Shared;
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::sync::Arc;

/// A runtime's identity, unique within the process, like tokio's `runtime::Id`: `Display`
/// shows the number, `Debug` shows `Id(n)`.
///
/// ```
/// let a = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let b = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// assert_ne!(a.handle().id(), b.handle().id());
/// assert_eq!(a.block_on(async { gpm::Handle::current().id() }), a.handle().id());
/// ```
#[derive(Clone, Copy, Debug, Hash, Eq, PartialEq)]
pub struct Id(NonZeroU64);

impl Id {
    pub(crate) fn next() -> Id {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Id(NonZeroU64::new(id).expect("runtime id counter wrapped around"))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A cheap, cloneable reference to a runtime (`Clone + Send + Sync`), like tokio's `Handle`.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// `Handle::try_current` found no runtime on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError {
    kind: TryCurrentErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TryCurrentErrorKind {
    NoContext,
    ThreadLocalDestroyed,
}

impl TryCurrentError {
    pub(crate) fn new_missing() -> TryCurrentError {
        TryCurrentError {
            kind: TryCurrentErrorKind::NoContext,
        }
    }

    pub(crate) fn new_thread_local_destroyed() -> TryCurrentError {
        TryCurrentError {
            kind: TryCurrentErrorKind::ThreadLocalDestroyed,
        }
    }

    /// True when this thread is not in a runtime context.
    pub fn is_missing_context(&self) -> bool {
        self.kind == TryCurrentErrorKind::NoContext
    }

    /// True when the call came while the thread was exiting, after gpm's thread-local
    /// context was destroyed (from another thread-local's destructor).
    pub fn is_thread_local_destroyed(&self) -> bool {
        self.kind == TryCurrentErrorKind::ThreadLocalDestroyed
    }
}

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            TryCurrentErrorKind::NoContext => {
                "there is no gpm runtime on this thread: call from a task, a blocking closure, \
                 Runtime::block_on, or after Runtime::enter()"
            }
            TryCurrentErrorKind::ThreadLocalDestroyed => {
                "the gpm runtime context was used while this thread was exiting (its \
                 thread-local storage is already destroyed)"
            }
        })
    }
}

impl std::error::Error for TryCurrentError {}

impl Handle {
    /// The runtime's id: the same for every handle of one runtime, different between
    /// runtimes.
    pub fn id(&self) -> Id {
        self.shared.id
    }

    /// The runtime's name ([`Builder::name`](crate::Builder::name)), if it was given one,
    /// as tokio's `Handle::name`.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

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
        match context::try_current_handle() {
            Ok(Some(handle)) => Ok(handle),
            Ok(None) => Err(TryCurrentError::new_missing()),
            Err(_) => Err(TryCurrentError::new_thread_local_destroyed()),
        }
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
        if crate::task::is_large_future::<F>() {
            self.shared.spawn(Box::pin(future))
        } else {
            self.shared.spawn(future)
        }
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
        match (
            self.shared.current_thread,
            crate::task::is_large_future::<F>(),
        ) {
            (true, true) => super::current_thread::block_on(self, Box::pin(future)),
            (true, false) => super::current_thread::block_on(self, future),
            (false, true) => super::block_on::block_on(self, Box::pin(future)),
            (false, false) => super::block_on::block_on(self, future),
        }
    }

    /// Makes this runtime the current one on this thread until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        context::set_handle(self.clone())
    }

    /// Which runtime this is, as tokio's `Handle::runtime_flavor`.
    pub fn runtime_flavor(&self) -> RuntimeFlavor {
        if self.shared.current_thread {
            RuntimeFlavor::CurrentThread
        } else {
            RuntimeFlavor::MultiThread
        }
    }

    /// Number of Ps (worker threads).
    pub fn num_workers(&self) -> usize {
        self.shared.scheduler.num_processors()
    }

    /// Number of tasks spawned and not yet completed.
    pub fn num_alive_tasks(&self) -> usize {
        self.shared.owned.len()
    }

    /// A snapshot of the scheduler: queue depths, counters, latency quantiles, Little's law
    /// and the knee (see [`Probes`]). Reads relaxed counters and briefly locks each P's
    /// histogram; never stops a P. Each call also adds a point to the sliding windows that
    /// `lambda` and the knee come from, so call it periodically (e.g. once a second).
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(2).probe_sampling(1).build().unwrap();
    /// rt.block_on(async { gpm::spawn(async { 1 }).await.unwrap() });
    /// let probes = rt.handle().probes();
    /// assert_eq!(probes.processors.len(), 2);
    /// assert_eq!(probes.spawns, 1);
    /// assert!(probes.to_prometheus().contains("gpm_tasks_alive"));
    /// ```
    pub fn probes(&self) -> Probes {
        self.shared.probes()
    }

    /// Stops every P at its next safepoint (between two polls), runs `inspect` with a
    /// consistent view of every run queue, resumes, and returns `inspect`'s result with a
    /// [`StwReport`]: each P's time to safepoint, the pause, and the P that was late.
    ///
    /// Idle Ps count as stopped without being woken; a thread inside `spawn_blocking` or
    /// `block_in_place` holds no P and does not delay the stop; a long poll delays it until
    /// it returns. Concurrent calls are served one after the other. Called from a task, the
    /// task's own P counts as stopped, for this call and for every call it waits behind,
    /// and reports its queues as the task's thread reads them. `inspect` must not wait for
    /// tasks of this runtime (none runs until it returns).
    ///
    /// # Panics
    /// When called from inside `inspect` of a stop of this same runtime (it would wait for
    /// itself).
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    /// let (runnable, report) = rt.handle().stop_the_world(|world| world.runnable());
    /// assert_eq!(runnable, 0);
    /// assert!(report.pause >= report.time_to_stop);
    /// ```
    #[track_caller]
    pub fn stop_the_world<R>(&self, inspect: impl FnOnce(&StoppedWorld) -> R) -> (R, StwReport) {
        self.shared.stop_the_world(inspect)
    }

    /// Every P's steal counters (attempts, successes and tasks stolen, by relation to the
    /// victim: same L3, same node, other node) and latency averages, plus the policy's
    /// name. Relaxed reads of the steal rows of the Ps' event tables (the same counts
    /// [`Handle::probes`] shows): cheap, and each counter only grows. With
    /// [`Builder::enable_probes(false)`](crate::Builder::enable_probes) nothing is counted.
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    /// let stats = rt.handle().steal_stats();
    /// assert_eq!(stats.processors.len(), 2);
    /// ```
    pub fn steal_stats(&self) -> gpm_scheduler::StealStats {
        self.shared.scheduler.steal_stats()
    }

    /// The stealing policy this runtime uses.
    pub fn steal_policy(&self) -> gpm_scheduler::StealPolicy {
        self.shared.scheduler.steal_policy()
    }

    /// Where the Ps sit (PU, L3 domain, node), as the stealing policies see it.
    pub fn steal_topology(&self) -> &gpm_scheduler::StealTopology {
        self.shared.scheduler.steal_topology()
    }

    /// Number of timers alive in the runtime's wheel: registered [`crate::time::Sleep`]s that
    /// have neither completed nor been dropped. Drops back to 0 when they are all gone.
    pub fn num_active_timers(&self) -> usize {
        self.shared.driver.time.live_timers()
    }

    /// Number of sockets registered with the runtime's reactor.
    pub fn num_registered_sockets(&self) -> usize {
        self.shared.driver.io.registered()
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

    /// The blocking pool's adaptive size now, the `ceil(lambda * S)` of
    /// [`Builder::blocking_pool_sizing`](crate::Builder::blocking_pool_sizing); `None`
    /// when the pool is capped by `max_blocking_threads` instead.
    ///
    /// ```
    /// use gpm::overload::PoolSizingConfig;
    ///
    /// let rt = gpm::Runtime::builder()
    ///     .worker_threads(1)
    ///     .blocking_pool_sizing(PoolSizingConfig::new(2, 8))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.handle().blocking_pool_size(), Some(2));
    /// let plain = gpm::Runtime::builder().worker_threads(1).build().unwrap();
    /// assert_eq!(plain.handle().blocking_pool_size(), None);
    /// ```
    pub fn blocking_pool_size(&self) -> Option<usize> {
        self.shared.blocking.sized()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shared", &self.shared)
            .finish()
    }
}

/// The kind of runtime a [`Handle`] belongs to ([`Handle::runtime_flavor`]), as tokio's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuntimeFlavor {
    /// `Builder::new_current_thread`: one P, run by the thread in `block_on`.
    CurrentThread,
    /// `Builder::new_multi_thread` (the default): Ps run by worker threads.
    MultiThread,
}

//! gpm: a work-stealing async runtime built on Go's G-P-M model, with tokio's API habits.
//!
//! * **G** — a task: one allocation with a header (atomic state word, vtable, last P) and the
//!   future, later its output. See [`task`].
//! * **P** — a processor: a bounded local run queue, a `runnext` slot, statistics. There are
//!   exactly `worker_threads` of them (GOMAXPROCS). See `gpm_scheduler`.
//! * **M** — an OS thread holding a P while it runs Gs. An M that blocks in
//!   [`task::block_in_place`] hands its P to another M.
//!
//! ```
//! let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
//! let total = rt.block_on(async {
//!     let handles: Vec<_> = (0..10u64).map(|i| gpm::spawn(async move { i * i })).collect();
//!     let mut total = 0;
//!     for handle in handles {
//!         total += handle.await.unwrap();
//!     }
//!     total
//! });
//! assert_eq!(total, 285);
//! ```
//!
//! The design, with its invariants and the options we rejected, is in `docs/ARCHITECTURE.md`
//! and in the documentation of each module.
#![warn(missing_docs)]
// Under the loom model only the task core is compiled; the runtime around it is not.
#![cfg_attr(gpm_loom, allow(dead_code, unused_imports))]

mod alloc;
#[cfg(not(gpm_loom))]
pub mod compat;
mod driver;
#[cfg(not(gpm_loom))]
pub mod io;
pub(crate) mod loom;
#[cfg(not(gpm_loom))]
pub mod net;
#[cfg(all(feature = "probes-server", not(gpm_loom)))]
pub mod probes_server;
#[cfg(not(gpm_loom))]
mod rt;
#[cfg(all(unix, not(gpm_loom)))]
pub mod signal;
pub mod task;
#[cfg(not(gpm_loom))]
pub mod time;

pub use alloc::{NodeAllocStats, ProcessorAllocStats, TaskAllocator, TaskAllocatorStats};
#[cfg(not(gpm_loom))]
pub use rt::{BuildError, Builder, EnterGuard, Handle, Runtime, TryCurrentError};
pub use task::{JoinError, JoinHandle};

/// Runs `async fn main` on a gpm runtime, like `#[tokio::main]`.
///
/// Arguments: `worker_threads = N` (default: one P per core), `steal_policy = "random" |
/// "affinity" | "hierarchical"` (default: `GPM_STEAL`, else the cargo feature), and for
/// tokio's lines `flavor = "multi_thread" | "current_thread"` (gpm has no current-thread
/// runtime yet: `current_thread` means one worker) and `crate = "path"`. A bad argument is a
/// compile error pointing at it.
///
/// ```
/// #[gpm::main(worker_threads = 2, steal_policy = "hierarchical")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let answer = gpm::spawn(async { 42 }).await?;
///     assert_eq!(answer, 42);
///     assert_eq!(gpm::Handle::current().num_workers(), 2);
///     Ok(())
/// }
/// ```
#[cfg(not(gpm_loom))]
pub use gpm_macros::main;

/// Runs an `async fn` test on a fresh gpm runtime, like `#[tokio::test]`; takes the
/// arguments of [`macro@main`]. The runtime is built for the test and dropped after it.
///
/// ```no_run
/// #[gpm::test(worker_threads = 1)]
/// async fn adds() {
///     assert_eq!(gpm::spawn(async { 1 + 1 }).await.unwrap(), 2);
/// }
/// ```
#[cfg(not(gpm_loom))]
pub use gpm_macros::test;

/// Compile-failure checks of the attribute macros' arguments (doc tests only).
///
/// ```compile_fail
/// #[gpm::main(worker_threads = 0)]
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[gpm::main(steal_policy = "greedy")]
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[gpm::main(workers = 2)]
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[gpm::main]
/// fn main() {}
/// ```
///
/// ```compile_fail
/// #[gpm::test(start_paused = true, worker_threads = 2)]
/// async fn paused() {}
/// ```
///
/// ```compile_fail
/// #[gpm::main(worker_threads = 2, worker_threads = 3)]
/// async fn main() {}
/// ```
#[cfg(doctest)]
pub struct MacroErrors;

#[cfg(not(gpm_loom))]
pub mod overload;

/// Machine topology, placement and pinning (the `gpm-numa` crate), re-exported so that
/// [`Builder::topology`] and [`Builder::placement`] need no extra dependency.
#[cfg(not(gpm_loom))]
pub use gpm_numa as numa;

/// Stealing policies and their statistics (from `gpm-scheduler`); see [`Builder`] for how
/// a runtime picks its policy.
#[cfg(not(gpm_loom))]
pub mod steal {
    pub use gpm_scheduler::steal::{
        AffinityWeights, ByRelation, ParsePolicyError, ProcessorStealStats, Relation, StealPolicy,
        StealStats, StealTopology, WeightError, STEAL_ENV,
    };
}

/// Runtime settings and limits (`gpm::runtime::Builder` is the same type as
/// `gpm::Builder`, for code written against tokio's paths).
#[cfg(not(gpm_loom))]
pub mod runtime {
    pub use crate::rt::{
        BuildError, Builder, EnterGuard, Handle, Id, Runtime, RuntimeFlavor, TryCurrentError,
        MAX_BLOCKING_THREADS, MAX_WORKER_THREADS, MIN_STACK_SIZE,
    };
}

/// What the scheduler is doing: [`Handle::probes`] snapshots (queue depths, counters, latency
/// quantiles, Little's law, the knee) and [`Handle::stop_the_world`] reports. The pure parts
/// (knee detector, Little's-law window) are re-exported from `gpm_scheduler::probe` for
/// offline analysis of recorded series; the steal counts by relation ([`probe::ByRelation`])
/// and how each P stopped ([`probe::StopKind`]) are the scheduler's own types.
#[cfg(not(gpm_loom))]
pub mod probe {
    pub use crate::rt::{
        KneeProbe, LatencyProbe, LittleProbe, Probes, ProcessorProbe, QueueSnapshot, StoppedWorld,
        StwReport, TaskMemoryProbe,
    };
    pub use gpm_scheduler::probe::knee::{find_knee, Knee, KneeDetector, LoadPoint};
    pub use gpm_scheduler::probe::little::{LittleWindow, LittlesLaw, Totals};
    pub use gpm_scheduler::probe::{Event, EventCounts, EventInfo};
    pub use gpm_scheduler::steal::ByRelation;
    pub use gpm_scheduler::stw::StopKind;

    // The names this module gave the same types before it used the scheduler's; kept so
    // that code written against them still compiles, hidden so the docs show one name.
    #[doc(hidden)]
    pub use gpm_scheduler::steal::ByRelation as RelationProbe;
    #[doc(hidden)]
    pub use gpm_scheduler::stw::StopKind as StopReason;
}

/// Spawns `future` on the current runtime, like `tokio::spawn`.
///
/// # Panics
/// Outside a runtime context; use [`Handle::spawn`] from other threads.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// assert_eq!(rt.block_on(async { gpm::spawn(async { "done" }).await.unwrap() }), "done");
/// ```
#[cfg(not(gpm_loom))]
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    if task::is_large_future::<F>() {
        spawn_on_current(Box::pin(future))
    } else {
        spawn_on_current(future)
    }
}

#[cfg(not(gpm_loom))]
#[track_caller]
fn spawn_on_current<F>(future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt::context::with_handle(|handle| match handle {
        Some(handle) => handle.spawn(future),
        None => panic!("{}", TryCurrentError::new_missing()),
    })
}

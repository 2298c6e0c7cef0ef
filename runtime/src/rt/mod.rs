//! The runtime: Builder, Runtime, Handle, the Ms and the blocking pool.

mod block_on;
pub(crate) mod blocking;
mod builder;
pub(crate) mod context;
mod current_thread;
mod handle;
pub(crate) mod probes;
mod runtime;
pub(crate) mod shared;
pub(crate) mod stamp;
mod task_memory;
pub(crate) mod worker;

pub use blocking::{block_in_place, spawn_blocking};
pub use builder::{BuildError, Builder, MAX_BLOCKING_THREADS, MAX_WORKER_THREADS, MIN_STACK_SIZE};
pub use context::EnterGuard;
pub use handle::{Handle, Id, RuntimeFlavor, TryCurrentError};
pub use probes::{
    KneeProbe, LatencyProbe, LittleProbe, Probes, ProcessorProbe, QueueSnapshot, StoppedWorld,
    StwReport, TaskMemoryProbe,
};
pub use runtime::Runtime;

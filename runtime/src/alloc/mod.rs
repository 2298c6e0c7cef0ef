//! Task memory: NUMA-aware per-P slab caches (Go's mcache -> mcentral -> spans).
//!
//! Every spawn allocates one task cell and every completed task frees it. With
//! [`TaskAllocator::Slab`] that memory comes from this module instead of the global
//! allocator:
//!
//! ```text
//!  P0 cache   P1 cache   ...        per P, per size class: a free list, no atomics
//!     \          |                   (refill / flush one batch of ~16 KiB at a time)
//!   node pool 0 (central)   node pool 1 ...   per node, per class: batches under a mutex,
//!     |                                      + a lock-free remote-free list
//!   spans (64 KiB, aligned)                   carved from 1 MiB chunks mmap'd and
//!                                             mbind'd to the node (gpm-numa NodeMemory)
//! ```
//!
//! # Size classes
//! 20 classes from 64 B to 4 KiB ([`size_class`]); the class of a task type is a constant
//! computed at compile time from `Layout::new::<Cell<F, S>>()`. A task bigger than 4 KiB
//! (or aligned to more than its class gives) uses the global allocator and is counted in
//! [`TaskAllocatorStats::large_allocations`].
//!
//! # The per-P cache and who may touch it
//! The runtime keeps one cache per P in the allocator (a boxed slice indexed by P index,
//! each slot cache-padded), not in the scheduler's `Processor`, so the scheduler crate
//! knows nothing of memory. A cache is an `UnsafeCell` reached only through a `LocalCache`,
//! made by the unsafe `Slab::local(index)`: its contract is exclusive use of P `index`. In
//! the runtime the proof is holding the `Box<Processor>` with that index: the M borrows it
//! out of its `WorkerContext` (a `RefCell`, so a nested borrow fails and falls back to the
//! central path instead of aliasing) for the duration of one allocation or free
//! (`rt::task_memory::with_local_cache`). A P handed off by `block_in_place` takes its
//! cache with it, because the cache follows the P index, not the thread.
//!
//! Hot paths: allocation pops the class's list; a free pushes onto it. The only shared
//! memory they touch is the P's own counters, written with a relaxed load + store (plain
//! moves: no locked instruction) because only the P's holder writes them; other threads
//! read them (probes, [`crate::Handle::task_allocator_stats`]).
//!
//! # Frees, home nodes, threads without a P
//! A span starts with a header (node pool, class); masking a block's address with
//! `!(SPAN_SIZE - 1)` finds it. A free on a P whose pool is the block's home goes to that
//! P's cache, whichever P allocated it. A free from a P of another node, or from a thread
//! without a P (the `block_on` thread, the blocking pool, a foreign thread dropping the
//! last `JoinHandle`), pushes the block onto its home pool's remote list (one CAS).
//! Allocation without a P takes one block from the first pool's unowned cache: a batch
//! per class under a mutex that the Ps never take (they meet it only in the class pool,
//! once per batch), so a `block_on` thread spawning in a loop does not contend with the
//! Ps' flushes block by block.
//! Refill order: central batches, then the whole remote list, then a new span.
//!
//! # Lifetime
//! The slab lives in the runtime's `Shared`, and every task holds an `Arc<Shared>` (its
//! scheduler handle). The task's dealloc reads that `Arc` out of the cell, drops the rest
//! of the cell, returns the block, and only then drops the `Arc`. So a `JoinHandle` that
//! outlives the `Runtime` still frees into live memory, and the last task freed may drop
//! the slab, which unmaps every chunk: nothing leaks, whatever the P caches hold.
//!
//! # Returning memory
//! [`crate::Handle::release_idle_task_memory`] (the scavenger) gives the pages of every span
//! whose blocks are all free in its central pool back to the OS (`madvise(MADV_DONTNEED)`:
//! the mapping and its node binding stay, the span is reused first). At the latest the
//! chunks are unmapped when the runtime's last task is gone.
//!
//! # Node placement
//! `Builder::processor_nodes(vec)` gives the OS NUMA node of each P; one pool is made per
//! distinct node. Without it, every P uses one pool bound to the first online node when
//! the machine has one node, and unbound memory (first touch) when it has several, since
//! unpinned Ms move between nodes. The steal-placement work can pass its P -> node map here.
//!
//! # Checking it
//! Unit tests (this module's `tests`) drive the allocator with explicit P caches on plain
//! threads, including a stress test of 4 threads x 1e6 blocks freed on other threads, half
//! of them across node pools, with every block stamped (thread, sequence) and checked
//! before its free, so a block handed out twice is caught. Two memory checkers:
//!
//! * **valgrind memcheck** (`scripts/memcheck.sh`, run by CI because it works offline):
//!   these unit tests (stress scaled down by `GPM_SLAB_STRESS_SCALE`, default 20) and
//!   `tests/tests/task_allocator.rs`. Memcheck sees the spans as one mapped region, so it
//!   catches accesses outside live mappings, uninitialised reads and leaks, not a block
//!   handed out twice inside a span: that is the stamp check's job.
//! * **Miri** with Tree Borrows (`scripts/miri.sh`): the nightly toolchain here had no
//!   `miri` component, `rustup component add --toolchain nightly miri` installed it; CI does
//!   not depend on it (a fresh machine may have no network). Under `cfg(miri)` chunks come
//!   from the global allocator and `madvise` is skipped; the code uses strict provenance
//!   (span and header pointers derived with `map_addr`, no integer-to-pointer casts).
//!
//! # Rejected options
//! * Caches inside `gpm_scheduler::Processor`: the scheduler crate would have to know
//!   memory, and its stealing code is being rewritten.
//! * Thread-local caches (tcmalloc): an M hands its P off in `block_in_place`; per-P caches
//!   stay bounded by GOMAXPROCS, not by the number of threads.
//! * A home-node field in the task header: the aligned span header serves any block, is
//!   testable without tasks, and costs one mask.
//! * A per-span live count updated on every free (for eager release): an atomic on the
//!   hot path; the scavenger counts free blocks per span instead, off the hot path.
//! * A thread-local cache for threads without a P (so `block_on` spawns skip the class
//!   mutex): the cache would have to keep the runtime's memory alive until that thread
//!   exits (the main thread: for ever), or check a `Weak` on every use (two atomic RMWs,
//!   more than the uncontended mutex it saves). Such spawns take the unowned cache's mutex,
//!   uncontended unless several threads without a P spawn at once.

mod central;
pub(crate) mod size_class;
mod slab;
mod span;
#[cfg(test)]
mod tests;

pub(crate) use size_class::{class_of, SizeClass};
pub(crate) use slab::{LocalCache, Slab, SlabConfig};

/// Which allocator a runtime takes task memory from (see [`crate::Builder::task_allocator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskAllocator {
    /// Per-P slab caches over per-NUMA-node pools (the default).
    #[default]
    Slab,
    /// The global allocator (`Box`), for comparison.
    System,
}

/// Counters of one P's cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessorAllocStats {
    /// Index of the node pool the P uses (into [`TaskAllocatorStats::nodes`]).
    pub node_pool: usize,
    /// Allocations served from the cache.
    pub hits: u64,
    /// Batches taken from the node pool.
    pub refills: u64,
    /// Batches given back to the node pool.
    pub flushes: u64,
    /// Frees into this cache.
    pub local_frees: u64,
    /// Frees on this P of blocks whose home is another node.
    pub remote_frees: u64,
    /// Bytes allocated minus bytes freed through this cache (may be negative: a block
    /// allocated here and freed elsewhere counts there).
    pub live_bytes: i64,
}

/// Counters of one node pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeAllocStats {
    /// The OS NUMA node the pool's memory is bound to (`None`: unbound).
    pub os_node: Option<usize>,
    /// Bytes of task memory from this node in use right now.
    pub live_bytes: i64,
    /// Frees of this node's blocks pushed onto its remote lists (no P, or another node).
    pub remote_frees: u64,
    /// Allocations from threads without a P.
    pub unowned_allocations: u64,
    /// Free bytes held in the central batches.
    pub central_free_bytes: usize,
    /// Bytes of chunks mapped.
    pub mapped_bytes: usize,
    /// Spans carved into blocks (including reuses of released spans).
    pub spans_carved: u64,
    /// Spans whose pages were given back to the OS.
    pub spans_released: u64,
    /// Released spans not reused yet.
    pub released_spans_now: usize,
    /// Chunks that could not be bound to the node.
    pub unbound_chunks: usize,
}

/// A snapshot of a runtime's task-allocator counters (relaxed reads from any thread).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskAllocatorStats {
    /// The allocator in use. With `System` every other field is zero.
    pub allocator: TaskAllocator,
    /// One entry per P.
    pub processors: Vec<ProcessorAllocStats>,
    /// One entry per node pool.
    pub nodes: Vec<NodeAllocStats>,
    /// Tasks too big (or too aligned) for the slab, given to the global allocator.
    pub large_allocations: u64,
    /// Bytes of those large tasks alive now.
    pub large_live_bytes: i64,
}

impl TaskAllocatorStats {
    /// Task bytes alive now, slab and large together.
    pub fn live_bytes(&self) -> i64 {
        self.nodes.iter().map(|n| n.live_bytes).sum::<i64>() + self.large_live_bytes
    }

    /// Allocations served from P caches without touching a pool.
    pub fn hits(&self) -> u64 {
        self.processors.iter().map(|p| p.hits).sum()
    }
}

//! Task memory: where the runtime's task cells live (`Builder::task_allocator`).
//!
//! With the slab (`crate::alloc`), a spawn or a free on an M uses the cache of the P it
//! holds: `with_local_cache` borrows the `Box<Processor>` out of the M's context (the
//! proof of exclusive use of that P's cache) for the length of one allocation or free. No
//! P, a P of another runtime, or a P already borrowed (the M draining its queues): the
//! node pool's shared paths. An M leaving with its P flushes the P's cache
//! ([`TaskMemory::flush`]).

use super::context;
use super::shared::{Proc, Shared};
use crate::alloc::{LocalCache, SizeClass, Slab, TaskAllocatorStats};
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

/// Where the runtime's task cells live (`Builder::task_allocator`).
pub(crate) enum TaskMemory {
    /// The global allocator.
    System,
    /// The slab, with one cache per P (indexed like the Ps).
    Slab(Slab),
}

impl TaskMemory {
    /// A task cell for `layout`; `owner` is the runtime this memory belongs to.
    pub(super) fn allocate(
        &self,
        owner: &Shared,
        layout: Layout,
        class: Option<SizeClass>,
    ) -> NonNull<u8> {
        match self {
            TaskMemory::System => system_allocate(layout),
            TaskMemory::Slab(slab) => {
                with_local_cache(owner, slab, |cache| slab.allocate(cache, layout, class))
            }
        }
    }

    /// Frees a task cell.
    ///
    /// # Safety
    /// As for `Schedule::deallocate_task`, with memory from [`TaskMemory::allocate`] of
    /// this same memory.
    pub(super) unsafe fn deallocate(
        &self,
        owner: &Shared,
        ptr: NonNull<u8>,
        layout: Layout,
        class: Option<SizeClass>,
    ) {
        match self {
            // SAFETY: allocated by `system_allocate(layout)` (caller's contract).
            TaskMemory::System => unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) },
            TaskMemory::Slab(slab) => with_local_cache(owner, slab, |cache| {
                // SAFETY: forwarded contract.
                unsafe { slab.deallocate(cache, ptr, layout, class) }
            }),
        }
    }

    /// Gives the cached blocks of `processor` back to its node pool (the P is leaving).
    pub(super) fn flush(&self, processor: &mut Proc) {
        if let TaskMemory::Slab(slab) = self {
            local_cache(slab, processor).flush_all();
        }
    }

    /// The scavenger: releases the pages of every span whose blocks are all free in its
    /// node pool. Returns the number of spans (0 with the system allocator).
    pub(super) fn release_idle(&self) -> usize {
        match self {
            TaskMemory::Slab(slab) => slab.release_idle_spans(),
            TaskMemory::System => 0,
        }
    }

    pub(super) fn stats(&self) -> TaskAllocatorStats {
        match self {
            TaskMemory::Slab(slab) => slab.stats(),
            TaskMemory::System => TaskAllocatorStats {
                allocator: crate::TaskAllocator::System,
                ..TaskAllocatorStats::default()
            },
        }
    }
}

/// Calls `f` with the cache of the P this thread holds, if it is an M of runtime `owner`
/// holding its P right now (and not already inside a borrow of it); else with `None`.
fn with_local_cache<R>(
    owner: &Shared,
    slab: &Slab,
    f: impl FnOnce(Option<&mut LocalCache<'_>>) -> R,
) -> R {
    context::with_worker(|worker| {
        let Some(worker) = worker.filter(|w| std::ptr::eq(Arc::as_ptr(&w.shared), owner)) else {
            return f(None);
        };
        let Ok(mut slot) = worker.processor.try_borrow_mut() else {
            return f(None);
        };
        match slot.as_mut() {
            Some(processor) => f(Some(&mut local_cache(slab, processor))),
            None => f(None),
        }
    })
}

/// The cache of the P `processor`. Safe because the `&mut Box<Processor>` is the proof of
/// exclusive use that `Slab::local` asks for: `Scheduler::new` makes exactly one
/// `Processor` per index, it is never cloned, and whoever holds `&mut` to it (the M running
/// it, or the shutting-down thread that took it from a hand-off slot) is the only one who
/// can reach that index's cache for the borrow's lifetime. The caller passes the slab of
/// the runtime the P belongs to.
fn local_cache<'a>(slab: &'a Slab, processor: &'a mut Proc) -> LocalCache<'a> {
    debug_assert!(processor.index() < slab.num_processors());
    // SAFETY: see above: `processor` is borrowed mutably for 'a, so no other LocalCache
    // for its index can be made meanwhile.
    unsafe { slab.local(processor.index()) }
}

fn system_allocate(layout: Layout) -> NonNull<u8> {
    // SAFETY: task cells are never zero-sized.
    let ptr = unsafe { std::alloc::alloc(layout) };
    NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

//! The allocator proper: per-P caches in front of per-node central pools.

use super::central::{split_front, Batch, NodePool};
use super::size_class::{SizeClass, NUM_CLASSES};
use super::span::{header_of, FreeBlock};
use super::{NodeAllocStats, ProcessorAllocStats, TaskAllocator, TaskAllocatorStats};
use crossbeam_utils::CachePadded;
use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Where the pools get their memory and which pool each P uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlabConfig {
    /// One entry per node pool: the OS NUMA node its spans are bound to, or `None` for
    /// unbound memory from the global allocator.
    pub(crate) pools: Vec<Option<usize>>,
    /// One entry per P: the index of its node pool.
    pub(crate) processor_pool: Vec<usize>,
}

impl SlabConfig {
    /// Pools for the distinct OS nodes of `processor_nodes` (the OS node of each P).
    pub(crate) fn for_processor_nodes(processor_nodes: &[usize]) -> SlabConfig {
        let mut distinct: Vec<usize> = processor_nodes.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let processor_pool = processor_nodes
            .iter()
            .map(|node| distinct.binary_search(node).unwrap_or(0))
            .collect();
        SlabConfig {
            pools: distinct.into_iter().map(Some).collect(),
            processor_pool,
        }
    }
}

/// Counters of one P, written only by the holder of that P (see [`bump`]).
#[derive(Debug, Default)]
struct ProcessorCounters {
    hits: AtomicU64,
    refills: AtomicU64,
    flushes: AtomicU64,
    local_frees: AtomicU64,
    remote_frees: AtomicU64,
    live_bytes: AtomicI64,
}

/// Adds one to a counter that only one thread writes: a relaxed load and store, which are
/// plain moves (no locked instruction), yet readable from any thread.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

fn add_single_writer(counter: &AtomicI64, delta: i64) {
    counter.store(counter.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
}

/// The free lists of one P, one per size class.
struct CacheLists {
    lists: [Batch; NUM_CLASSES],
}

/// One P's cache and counters.
struct ProcessorSlot {
    /// Touched only through a [`LocalCache`], of which at most one exists per P at a time.
    lists: UnsafeCell<CacheLists>,
    counters: ProcessorCounters,
    pool: usize,
}

/// The slab allocator for task memory. Testable without a runtime: Ps are plain indices,
/// and [`Slab::local`] hands out a P's cache to whoever holds that P.
pub(crate) struct Slab {
    pools: Box<[NodePool]>,
    os_nodes: Box<[Option<usize>]>,
    processors: Box<[CachePadded<ProcessorSlot>]>,
    large_allocations: AtomicU64,
    large_live_bytes: AtomicI64,
}

// SAFETY: the only non-Sync part is each P's `lists`, reached only through a `LocalCache`,
// whose creation requires exclusive use of that P (`Slab::local`'s contract). The free
// blocks the lists link are plain memory owned by the allocator.
unsafe impl Sync for Slab {}
// SAFETY: as above; nothing in the slab is tied to a thread.
unsafe impl Send for Slab {}

/// Exclusive use of one P's cache. `!Send`: it lives on the thread holding the P.
pub(crate) struct LocalCache<'a> {
    slab: &'a Slab,
    slot: &'a ProcessorSlot,
    _not_send: PhantomData<*mut ()>,
}

impl Slab {
    /// # Panics
    /// If `config` has no pool, or a P names a pool that does not exist (programming
    /// errors: the builder validates user input first).
    pub(crate) fn new(config: &SlabConfig) -> Slab {
        assert!(
            !config.pools.is_empty(),
            "a slab needs at least one node pool"
        );
        let processors = config
            .processor_pool
            .iter()
            .map(|&pool| {
                assert!(pool < config.pools.len(), "P mapped to missing pool {pool}");
                CachePadded::new(ProcessorSlot {
                    lists: UnsafeCell::new(CacheLists {
                        lists: [const { Batch::EMPTY }; NUM_CLASSES],
                    }),
                    counters: ProcessorCounters::default(),
                    pool,
                })
            })
            .collect();
        Slab {
            pools: (config.pools.iter().enumerate())
                .map(|(index, &os_node)| NodePool::new(index, os_node))
                .collect(),
            os_nodes: config.pools.clone().into_boxed_slice(),
            processors,
            large_allocations: AtomicU64::new(0),
            large_live_bytes: AtomicI64::new(0),
        }
    }

    pub(crate) fn num_processors(&self) -> usize {
        self.processors.len()
    }

    /// The cache of P `index`.
    ///
    /// # Safety
    /// The caller has exclusive use of P `index` for the lifetime of the result: no other
    /// `LocalCache` for `index` exists meanwhile, on any thread. (In the runtime, holding
    /// the `Box<Processor>` with that index is the proof; see `rt::worker`.)
    ///
    /// # Panics
    /// If `index` is not a P of this slab.
    pub(crate) unsafe fn local(&self, index: usize) -> LocalCache<'_> {
        LocalCache {
            slab: self,
            slot: &self.processors[index],
            _not_send: PhantomData,
        }
    }

    /// Memory for `layout`, whose class is `class` (`class_of(layout)`, passed in so it is
    /// computed at compile time), from `cache` if given, else from the central pool.
    pub(crate) fn allocate(
        &self,
        cache: Option<&mut LocalCache<'_>>,
        layout: Layout,
        class: Option<SizeClass>,
    ) -> NonNull<u8> {
        let Some(class) = class else {
            return self.allocate_large(layout);
        };
        debug_assert!(class.size() >= layout.size() && class.align() >= layout.align());
        let block = match cache {
            Some(cache) => cache.allocate(class),
            None => self.allocate_unowned(class),
        };
        block.unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
    }

    /// Returns memory from [`Slab::allocate`].
    ///
    /// # Safety
    /// `ptr` came from `allocate` on this slab with the same `layout` and `class`, and is
    /// not used after this call.
    pub(crate) unsafe fn deallocate(
        &self,
        cache: Option<&mut LocalCache<'_>>,
        ptr: NonNull<u8>,
        layout: Layout,
        class: Option<SizeClass>,
    ) {
        let Some(class) = class else {
            // SAFETY: forwarded: large blocks come from the global allocator with `layout`.
            return unsafe { self.deallocate_large(ptr, layout) };
        };
        match cache {
            // SAFETY: forwarded contract.
            Some(cache) => unsafe { cache.deallocate(ptr, class) },
            // SAFETY: forwarded contract.
            None => unsafe { self.deallocate_unowned(ptr, class) },
        }
    }

    fn allocate_large(&self, layout: Layout) -> NonNull<u8> {
        // SAFETY: task layouts are never zero-sized (the header alone is not).
        let ptr = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        self.large_allocations.fetch_add(1, Ordering::Relaxed);
        self.large_live_bytes
            .fetch_add(layout.size() as i64, Ordering::Relaxed);
        ptr
    }

    /// # Safety
    /// `ptr` came from `allocate_large(layout)`.
    unsafe fn deallocate_large(&self, ptr: NonNull<u8>, layout: Layout) {
        self.large_live_bytes
            .fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
    }

    /// The home pool of a block. With one pool that is pool 0 and the span header is not
    /// read (one load less per free); debug builds check it all the same.
    ///
    /// # Safety
    /// `ptr` is a live block of class `class` from this slab.
    unsafe fn home_of(&self, ptr: NonNull<u8>, class: SizeClass) -> usize {
        if self.pools.len() == 1 && !cfg!(debug_assertions) {
            return 0;
        }
        // SAFETY: a live block of this slab (caller's contract): its span is in use.
        let (home, span_class) = unsafe { header_of(ptr) };
        debug_assert_eq!(span_class, class, "block freed with the wrong size class");
        home
    }

    /// One block for a thread without a P: from the first pool's central lists.
    fn allocate_unowned(&self, class: SizeClass) -> Option<NonNull<u8>> {
        let pool = &self.pools[0];
        Some(pool.alloc_one(class)?.cast())
    }

    /// A free from a thread without a P (or a P on another node): to the home pool's
    /// remote list.
    ///
    /// # Safety
    /// `ptr` is a block of class `class` from this slab, not used after this call.
    unsafe fn deallocate_unowned(&self, ptr: NonNull<u8>, class: SizeClass) {
        // SAFETY: forwarded contract.
        let home = unsafe { self.home_of(ptr, class) };
        let pool = &self.pools[home];
        // SAFETY: the caller gives the block up; it belongs to `home` and `class`.
        unsafe { pool.remote(class).push(ptr.cast()) };
    }

    /// Gives the pages of idle spans back to the OS; returns how many spans.
    pub(crate) fn release_idle_spans(&self) -> usize {
        self.pools.iter().map(NodePool::release_idle_spans).sum()
    }

    /// A snapshot of the counters (relaxed reads: each number is exact, the set is not
    /// one instant).
    pub(crate) fn stats(&self) -> TaskAllocatorStats {
        let processors = self
            .processors
            .iter()
            .map(|slot| {
                let c = &slot.counters;
                ProcessorAllocStats {
                    node_pool: slot.pool,
                    hits: c.hits.load(Ordering::Relaxed),
                    refills: c.refills.load(Ordering::Relaxed),
                    flushes: c.flushes.load(Ordering::Relaxed),
                    local_frees: c.local_frees.load(Ordering::Relaxed),
                    remote_frees: c.remote_frees.load(Ordering::Relaxed),
                    live_bytes: c.live_bytes.load(Ordering::Relaxed),
                }
            })
            .collect::<Vec<_>>();
        let nodes = self
            .pools
            .iter()
            .enumerate()
            .map(|(index, pool)| self.node_stats(index, pool, &processors))
            .collect();
        TaskAllocatorStats {
            allocator: TaskAllocator::Slab,
            processors,
            nodes,
            large_allocations: self.large_allocations.load(Ordering::Relaxed),
            large_live_bytes: self.large_live_bytes.load(Ordering::Relaxed),
        }
    }

    fn node_stats(
        &self,
        index: usize,
        pool: &NodePool,
        processors: &[ProcessorAllocStats],
    ) -> NodeAllocStats {
        let c = &pool.counters;
        let cached: i64 = processors
            .iter()
            .filter(|p| p.node_pool == index)
            .map(|p| p.live_bytes)
            .sum();
        let traffic = pool.off_cache_traffic();
        NodeAllocStats {
            os_node: self.os_nodes[index],
            live_bytes: cached + traffic.net_bytes,
            remote_frees: traffic.remote_frees,
            unowned_allocations: traffic.unowned_allocs,
            central_free_bytes: pool.free_bytes(),
            mapped_bytes: pool.mapped_bytes(),
            spans_carved: c.spans_carved.load(Ordering::Relaxed),
            spans_released: c.spans_released.load(Ordering::Relaxed),
            released_spans_now: pool.released_spans(),
            unbound_chunks: pool.unbound_chunks(),
        }
    }
}

impl LocalCache<'_> {
    fn lists(&mut self) -> &mut CacheLists {
        // SAFETY: a LocalCache is the only way to the lists and at most one exists per P
        // (`Slab::local`'s contract); `&mut self` makes this borrow unique.
        unsafe { &mut *self.slot.lists.get() }
    }

    fn pool(&self) -> &NodePool {
        &self.slab.pools[self.slot.pool]
    }

    /// The hot path: pop from the class's list; refill a batch when it is empty.
    fn allocate(&mut self, class: SizeClass) -> Option<NonNull<u8>> {
        let slot = self.slot;
        let list = &mut self.lists().lists[class.index()];
        let block = match list.pop() {
            Some(block) => {
                bump(&slot.counters.hits);
                block
            }
            None => self.refill(class)?,
        };
        add_single_writer(&slot.counters.live_bytes, class.size() as i64);
        Some(block.cast())
    }

    #[cold]
    fn refill(&mut self, class: SizeClass) -> Option<NonNull<FreeBlock>> {
        bump(&self.slot.counters.refills);
        let batch = self.pool().refill(class);
        let list = &mut self.lists().lists[class.index()];
        debug_assert_eq!(list.len, 0);
        *list = batch;
        list.pop()
    }

    /// The hot path of a free: push onto the class's list if the block's home is this P's
    /// node; flush a batch when the list is full.
    ///
    /// # Safety
    /// `ptr` is a block of class `class` from this slab, not used after this call.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, class: SizeClass) {
        // SAFETY: forwarded contract.
        let home = unsafe { self.slab.home_of(ptr, class) };
        if home != self.slot.pool {
            bump(&self.slot.counters.remote_frees);
            // SAFETY: forwarded contract.
            return unsafe { self.slab.deallocate_unowned(ptr, class) };
        }
        bump(&self.slot.counters.local_frees);
        add_single_writer(&self.slot.counters.live_bytes, -(class.size() as i64));
        let block = ptr.cast::<FreeBlock>();
        let list = &mut self.lists().lists[class.index()];
        // SAFETY: the caller gives the block up; it becomes a free block of this list.
        unsafe { block.as_ptr().write(FreeBlock { next: list.head }) };
        if list.len == 0 {
            list.tail = block.as_ptr();
        }
        list.head = block.as_ptr();
        list.len += 1;
        if list.len >= 2 * class.batch() {
            self.flush(class);
        }
    }

    /// Keeps the `batch` most recently freed (cache-warm) blocks, gives the rest back.
    #[cold]
    fn flush(&mut self, class: SizeClass) {
        bump(&self.slot.counters.flushes);
        let list = &mut self.lists().lists[class.index()];
        let mut kept = split_front(list, class.batch());
        let flushed = std::mem::replace(list, Batch::EMPTY);
        std::mem::swap(list, &mut kept);
        if flushed.len > 0 {
            self.pool().flush(class, flushed);
        }
    }

    /// Gives every cached block back to the central pool (a P going away, or a test).
    pub(crate) fn flush_all(&mut self) {
        for class in SizeClass::all() {
            let list = std::mem::replace(&mut self.lists().lists[class.index()], Batch::EMPTY);
            if list.len > 0 {
                bump(&self.slot.counters.flushes);
                self.pool().flush(class, list);
            }
        }
    }
}

impl std::fmt::Debug for Slab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("pools", &self.pools)
            .field("processors", &self.processors.len())
            .finish()
    }
}

impl std::fmt::Debug for LocalCache<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("pool", &self.slot.pool)
            .finish()
    }
}

//! The central pool of one NUMA node (Go's mcentral): free blocks by size class, in batches,
//! plus a lock-free remote-free list per class, plus the node's spans.
//!
//! * Ps refill and flush whole batches under the class's mutex: one lock per
//!   `class.batch()` blocks, so the lock is off the per-task path.
//! * A free that cannot go to a P cache of this node (a thread without a P, or a P on
//!   another node) pushes the block onto the class's [`RemoteList`] with one CAS. The list
//!   is only ever emptied whole (`swap(null)`), never popped one by one, so the CAS loop
//!   has no ABA problem.
//! * Threads without a P allocate from an unowned cache per class (its own mutex, refilled
//!   a batch at a time like a P cache), so they do not take the class mutex per block.
//! * A refill takes a batch, else the whole remote list, else carves a new span.

use super::size_class::{SizeClass, NUM_CLASSES, SPAN_SIZE};
use super::span::{FreeBlock, SpanSource};
use crate::loom::sync::atomic::AtomicPtr;
use crossbeam_utils::CachePadded;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A singly linked list of free blocks with its length; moved between caches and pools.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) head: *mut FreeBlock,
    pub(crate) tail: *mut FreeBlock,
    pub(crate) len: usize,
}

// SAFETY: a batch exclusively owns the free blocks it links; they are plain memory.
unsafe impl Send for Batch {}

impl Batch {
    pub(crate) const EMPTY: Batch = Batch {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };

    /// A list of `len` blocks from `head` to `tail`.
    fn new(head: NonNull<FreeBlock>, tail: NonNull<FreeBlock>, len: usize) -> Batch {
        Batch {
            head: head.as_ptr(),
            tail: tail.as_ptr(),
            len,
        }
    }

    /// Walks a null-terminated list to find its tail and length.
    ///
    /// # Safety
    /// `head` is null or starts a well-formed list of free blocks owned by the caller.
    unsafe fn from_list(head: *mut FreeBlock) -> Batch {
        let mut batch = Batch::EMPTY;
        let mut block = head;
        while !block.is_null() {
            batch.len += 1;
            batch.tail = block;
            // SAFETY: every block of an owned list is a valid FreeBlock.
            block = unsafe { (*block).next };
        }
        batch.head = head;
        batch
    }

    /// Takes the first block.
    pub(crate) fn pop(&mut self) -> Option<NonNull<FreeBlock>> {
        let block = NonNull::new(self.head)?;
        // SAFETY: the batch owns its blocks; the head is a valid FreeBlock.
        self.head = unsafe { block.as_ref().next };
        self.len -= 1;
        if self.len == 0 {
            self.tail = ptr::null_mut();
        }
        Some(block)
    }
}

/// Blocks freed from elsewhere, pushed with a CAS and taken all at once.
#[derive(Debug, Default)]
pub(crate) struct RemoteList {
    head: AtomicPtr<FreeBlock>,
    /// Blocks ever pushed (stats). Next to `head`, whose cache line the push owns anyway.
    pushed: AtomicU64,
}

impl RemoteList {
    /// Pushes a free block.
    ///
    /// # Safety
    /// `block` is a free block of this list's node and class, owned by the caller.
    pub(crate) unsafe fn push(&self, block: NonNull<FreeBlock>) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller owns the block until the CAS publishes it.
            unsafe { (*block.as_ptr()).next = head };
            // Release: the link (and the block's last use) happen-before the taker.
            match self.head.compare_exchange_weak(
                head,
                block.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        self.pushed.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes every block pushed so far.
    pub(crate) fn take_all(&self) -> Batch {
        // Acquire: pairs with the Release of every push in the list.
        let head = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: the swap made this thread the only owner of the list.
        unsafe { Batch::from_list(head) }
    }
}

/// Free blocks of one class on one node.
#[derive(Debug, Default)]
struct ClassPool {
    batches: Vec<Batch>,
    /// Free blocks in `batches`.
    free: usize,
}

/// Blocks for threads without a P, shared by them under one mutex per class.
#[derive(Debug)]
struct UnownedCache {
    list: Batch,
    /// Blocks handed out (counted under the lock: no extra atomic).
    allocs: u64,
}

impl Default for UnownedCache {
    fn default() -> Self {
        UnownedCache {
            list: Batch::EMPTY,
            allocs: 0,
        }
    }
}

/// Counters of one node pool (relaxed; read by stats).
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    pub(crate) spans_carved: AtomicU64,
    pub(crate) spans_released: AtomicU64,
}

/// Traffic of a node pool that bypassed the P caches.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OffCacheTraffic {
    /// Blocks handed to threads without a P.
    pub(crate) unowned_allocs: u64,
    /// Blocks pushed onto the remote lists.
    pub(crate) remote_frees: u64,
    /// Bytes of the former minus bytes of the latter: the node's live bytes that the P
    /// caches' counters do not see.
    pub(crate) net_bytes: i64,
}

/// The central pool of one node.
pub(crate) struct NodePool {
    classes: Box<[CachePadded<Mutex<ClassPool>>]>,
    remote: Box<[CachePadded<RemoteList>]>,
    unowned: Box<[CachePadded<Mutex<UnownedCache>>]>,
    spans: Mutex<SpanSource>,
    pub(crate) counters: NodeCounters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The pools hold no invariant a panic could break half-way (no user code runs inside).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl NodePool {
    /// The pool of node `node`, mapping spans on OS node `os_node` (heap if `None`).
    pub(crate) fn new(node: usize, os_node: Option<usize>) -> NodePool {
        NodePool {
            classes: (0..NUM_CLASSES).map(|_| CachePadded::default()).collect(),
            remote: (0..NUM_CLASSES).map(|_| CachePadded::default()).collect(),
            unowned: (0..NUM_CLASSES).map(|_| CachePadded::default()).collect(),
            spans: Mutex::new(SpanSource::new(node, os_node)),
            counters: NodeCounters::default(),
        }
    }

    pub(crate) fn remote(&self, class: SizeClass) -> &RemoteList {
        &self.remote[class.index()]
    }

    /// A batch of about `class.batch()` free blocks for a P cache (never empty unless out
    /// of memory).
    pub(crate) fn refill(&self, class: SizeClass) -> Batch {
        let mut pool = lock(&self.classes[class.index()]);
        if let Some(batch) = pool.batches.pop() {
            pool.free -= batch.len;
            return batch;
        }
        drop(pool);
        let remote = self.remote(class).take_all();
        if remote.len > 0 {
            return remote;
        }
        self.carve_into_pool(class)
    }

    /// One block for a thread without a P cache, from the node's shared unowned cache
    /// (its own mutex, which the Ps never take: they only meet it in the class pool once
    /// per batch, when the unowned cache refills).
    pub(crate) fn alloc_one(&self, class: SizeClass) -> Option<NonNull<FreeBlock>> {
        let mut cache = lock(&self.unowned[class.index()]);
        let block = match cache.list.pop() {
            Some(block) => block,
            None => {
                cache.list = self.refill(class);
                cache.list.pop()?
            }
        };
        cache.allocs += 1;
        Some(block)
    }

    /// Empties the unowned cache (for the scavenger). Lock order: the unowned mutex is
    /// taken before a class mutex (as in `alloc_one` -> `refill`), never while holding one.
    fn take_unowned(&self, class: SizeClass) -> Batch {
        std::mem::replace(&mut lock(&self.unowned[class.index()]).list, Batch::EMPTY)
    }

    /// Takes back a batch flushed by a P cache.
    pub(crate) fn flush(&self, class: SizeClass, batch: Batch) {
        debug_assert!(batch.len > 0);
        let mut pool = lock(&self.classes[class.index()]);
        pool.free += batch.len;
        pool.batches.push(batch);
    }

    /// Carves a span and keeps all but one batch of it in the pool.
    fn carve_into_pool(&self, class: SizeClass) -> Batch {
        let Some((head, tail)) = lock(&self.spans).carve(class) else {
            return Batch::EMPTY;
        };
        self.counters.spans_carved.fetch_add(1, Ordering::Relaxed);
        let mut rest = Batch::new(head, tail, class.blocks_per_span());
        let mut pieces = Vec::new();
        while rest.len > 0 {
            pieces.push(split_front(&mut rest, class.batch()));
        }
        let first = pieces.pop().unwrap_or(Batch::EMPTY);
        if !pieces.is_empty() {
            let mut pool = lock(&self.classes[class.index()]);
            pool.free += pieces.iter().map(|b| b.len).sum::<usize>();
            pool.batches.extend(pieces);
        }
        first
    }

    /// Free blocks held in the batches (not counting the remote lists), in bytes.
    pub(crate) fn free_bytes(&self) -> usize {
        SizeClass::all()
            .map(|class| lock(&self.classes[class.index()]).free * class.size())
            .sum()
    }

    /// Allocations and frees that went around the P caches, per the class counters.
    pub(crate) fn off_cache_traffic(&self) -> OffCacheTraffic {
        let mut traffic = OffCacheTraffic::default();
        for class in SizeClass::all() {
            let allocs = lock(&self.unowned[class.index()]).allocs;
            let frees = self.remote(class).pushed.load(Ordering::Relaxed);
            traffic.unowned_allocs += allocs;
            traffic.remote_frees += frees;
            traffic.net_bytes += (allocs as i64 - frees as i64) * class.size() as i64;
        }
        traffic
    }

    pub(crate) fn mapped_bytes(&self) -> usize {
        lock(&self.spans).mapped_bytes()
    }

    pub(crate) fn unbound_chunks(&self) -> usize {
        lock(&self.spans).unbound_chunks()
    }

    pub(crate) fn released_spans(&self) -> usize {
        lock(&self.spans).released_spans()
    }

    /// Gives every span whose blocks are all free here back to the OS (the scavenger).
    /// Blocks in P caches count as in use. Returns the spans released.
    pub(crate) fn release_idle_spans(&self) -> usize {
        let mut released = 0;
        for class in SizeClass::all() {
            // Fold the remote list and the unowned cache in first, so their blocks count
            // as free.
            let remote = self.remote(class).take_all();
            let unowned = self.take_unowned(class);
            let mut pool = lock(&self.classes[class.index()]);
            for list in [remote, unowned] {
                if list.len > 0 {
                    pool.free += list.len;
                    pool.batches.push(list);
                }
            }
            let idle = idle_spans(&pool, class);
            if idle.is_empty() {
                continue;
            }
            let kept = drain_blocks(&mut pool, |block| {
                idle.binary_search_by_key(&span_of(block), |&span| span.addr())
                    .is_err()
            });
            pool.batches.clear();
            pool.free = 0;
            for batch in rebatch(kept, class.batch()) {
                pool.free += batch.len;
                pool.batches.push(batch);
            }
            drop(pool);
            let mut spans = lock(&self.spans);
            for span in idle {
                // SAFETY: every block of the span was in this pool and has just been
                // dropped from it: none is in use or listed anywhere.
                unsafe { spans.release(span) };
                released += 1;
            }
        }
        self.counters
            .spans_released
            .fetch_add(released as u64, Ordering::Relaxed);
        released
    }
}

fn span_of(block: *mut FreeBlock) -> usize {
    block.addr() & !(SPAN_SIZE - 1)
}

/// Spans all of whose blocks are in `pool`: their start pointers (derived from a block
/// pointer, so they keep the chunk's provenance), sorted by address. O(n log n).
fn idle_spans(pool: &ClassPool, class: SizeClass) -> Vec<*mut u8> {
    let mut blocks = Vec::with_capacity(pool.free);
    for batch in &pool.batches {
        let mut block = batch.head;
        while !block.is_null() {
            blocks.push(block);
            // SAFETY: the pool owns the blocks of its batches.
            block = unsafe { (*block).next };
        }
    }
    blocks.sort_unstable_by_key(|&block| span_of(block));
    blocks
        .chunk_by(|&a, &b| span_of(a) == span_of(b))
        .filter(|run| run.len() == class.blocks_per_span())
        .map(|run| run[0].cast::<u8>().map_addr(|addr| addr & !(SPAN_SIZE - 1)))
        .collect()
}

/// The blocks of the pool for which `keep` is true (the pool's batches are left dangling:
/// the caller clears them).
fn drain_blocks(
    pool: &mut ClassPool,
    keep: impl Fn(*mut FreeBlock) -> bool,
) -> Vec<*mut FreeBlock> {
    let mut kept = Vec::with_capacity(pool.free);
    for batch in &pool.batches {
        let mut block = batch.head;
        while !block.is_null() {
            // SAFETY: the pool owns the blocks of its batches.
            let next = unsafe { (*block).next };
            if keep(block) {
                kept.push(block);
            }
            block = next;
        }
    }
    kept
}

/// Links `blocks` into batches of at most `size`.
fn rebatch(blocks: Vec<*mut FreeBlock>, size: usize) -> Vec<Batch> {
    blocks
        .chunks(size)
        .map(|chunk| {
            for pair in chunk.windows(2) {
                // SAFETY: the caller owns every block in `blocks`.
                unsafe { (*pair[0]).next = pair[1] };
            }
            let tail = chunk[chunk.len() - 1];
            // SAFETY: as above.
            unsafe { (*tail).next = ptr::null_mut() };
            Batch {
                head: chunk[0],
                tail,
                len: chunk.len(),
            }
        })
        .collect()
}

/// Splits the first `count` blocks (or all) off `list`.
pub(crate) fn split_front(list: &mut Batch, count: usize) -> Batch {
    if count >= list.len {
        return std::mem::replace(list, Batch::EMPTY);
    }
    let head = list.head;
    let mut tail = head;
    for _ in 1..count {
        // SAFETY: the list owns at least `count` blocks.
        tail = unsafe { (*tail).next };
    }
    // SAFETY: `tail` is the count-th block; the list continues after it.
    let rest = unsafe { std::mem::replace(&mut (*tail).next, ptr::null_mut()) };
    list.head = rest;
    list.len -= count;
    Batch {
        head,
        tail,
        len: count,
    }
}

impl std::fmt::Debug for NodePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePool")
            .field("free_bytes", &self.free_bytes())
            .field("mapped_bytes", &self.mapped_bytes())
            .finish()
    }
}

/// Loom model of the remote-free list: pushes racing a take lose and duplicate nothing.
#[cfg(all(test, gpm_loom))]
mod loom_tests {
    use super::{FreeBlock, RemoteList};
    use crate::loom::sync::Arc;
    use crate::loom::thread;
    use std::ptr::{self, NonNull};

    fn new_block() -> usize {
        Box::into_raw(Box::new(FreeBlock {
            next: ptr::null_mut(),
        })) as usize
    }

    fn push(list: &RemoteList, block: usize) {
        // SAFETY: each block is pushed once, by the thread that owns it.
        unsafe { list.push(NonNull::new(block as *mut FreeBlock).unwrap()) };
    }

    fn addresses(list: &RemoteList) -> Vec<usize> {
        let mut batch = list.take_all();
        let mut out = Vec::new();
        while let Some(block) = batch.pop() {
            out.push(block.as_ptr() as usize);
        }
        out
    }

    #[test]
    fn pushes_racing_a_take_lose_nothing() {
        loom::model(|| {
            let list = Arc::new(RemoteList::default());
            let blocks: Vec<usize> = (0..3).map(|_| new_block()).collect();
            let pushers: Vec<_> = [vec![blocks[0], blocks[1]], vec![blocks[2]]]
                .into_iter()
                .map(|mine| {
                    let list = Arc::clone(&list);
                    thread::spawn(move || mine.into_iter().for_each(|b| push(&list, b)))
                })
                .collect();
            let mut seen = addresses(&list);
            pushers.into_iter().for_each(|t| t.join().unwrap());
            seen.extend(addresses(&list));
            seen.sort_unstable();
            let mut expected = blocks.clone();
            expected.sort_unstable();
            assert_eq!(seen, expected, "a block was lost or taken twice");
            for block in blocks {
                // SAFETY: made by `new_block`, freed once, no longer listed.
                drop(unsafe { Box::from_raw(block as *mut FreeBlock) });
            }
        });
    }
}

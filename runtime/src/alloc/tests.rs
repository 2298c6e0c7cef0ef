//! The allocator alone: explicit P caches on plain threads, no runtime.

use super::size_class::{class_of, SizeClass, SPAN_SIZE};
use super::{LocalCache, Slab, SlabConfig};
use std::alloc::Layout;
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::mpsc;

/// `count` scaled down by `GPM_SLAB_STRESS_SCALE` (memcheck) and under Miri.
fn scaled(count: usize) -> usize {
    let scale: usize = std::env::var("GPM_SLAB_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(if cfg!(miri) { 4000 } else { 1 });
    (count / scale).max(1)
}

/// One pool (unbound heap memory under Miri, node 0 otherwise) shared by `ps` Ps.
fn one_pool(ps: usize) -> Slab {
    Slab::new(&SlabConfig {
        pools: vec![Some(0)],
        processor_pool: vec![0; ps],
    })
}

/// Two pools (both on OS node 0: this machine has one node) with Ps split between them.
fn two_pools(ps_per_pool: usize) -> Slab {
    let mut processor_pool = vec![0; ps_per_pool];
    processor_pool.extend(vec![1; ps_per_pool]);
    Slab::new(&SlabConfig {
        pools: vec![Some(0), Some(0)],
        processor_pool,
    })
}

fn layout(size: usize) -> (Layout, Option<SizeClass>) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    (layout, class_of(layout))
}

fn local(slab: &Slab, p: usize) -> LocalCache<'_> {
    // SAFETY: each test uses P `p` from one thread only, one LocalCache at a time.
    unsafe { slab.local(p) }
}

fn alloc(slab: &Slab, cache: &mut LocalCache<'_>, size: usize) -> NonNull<u8> {
    let (layout, class) = layout(size);
    slab.allocate(Some(cache), layout, class)
}

/// # Safety
/// `ptr` came from `alloc(.., size)` on `slab` and is not used again.
unsafe fn free(slab: &Slab, cache: Option<&mut LocalCache<'_>>, ptr: NonNull<u8>, size: usize) {
    let (layout, class) = layout(size);
    // SAFETY: forwarded contract.
    unsafe { slab.deallocate(cache, ptr, layout, class) };
}

#[test]
fn a_freed_block_is_the_next_one_handed_out() {
    let slab = one_pool(1);
    let mut cache = local(&slab, 0);
    let a = alloc(&slab, &mut cache, 100);
    // SAFETY: `a` is not used again.
    unsafe { free(&slab, Some(&mut cache), a, 100) };
    let b = alloc(&slab, &mut cache, 100);
    assert_eq!(a, b, "LIFO reuse keeps the cache warm");
    // SAFETY: `b` is not used again.
    unsafe { free(&slab, Some(&mut cache), b, 100) };
    assert_eq!(slab.stats().live_bytes(), 0);
}

#[test]
fn blocks_are_distinct_aligned_and_writable_in_every_class() {
    let slab = one_pool(1);
    let mut cache = local(&slab, 0);
    for class in SizeClass::all() {
        // Three spans' worth; under Miri (slow) one span and a bit, checking fewer bytes.
        let (count, checked) = if cfg!(miri) {
            (class.blocks_per_span() + 1, 64)
        } else {
            (3 * class.blocks_per_span(), class.size())
        };
        let blocks: Vec<_> = (0..count)
            .map(|_| alloc(&slab, &mut cache, class.size()))
            .collect();
        let distinct: HashSet<_> = blocks.iter().collect();
        assert_eq!(
            distinct.len(),
            count,
            "{class:?}: a block was handed out twice"
        );
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(block.as_ptr().addr() % class.align(), 0, "{class:?}");
            // Never the header slot, always inside a span.
            assert!(block.as_ptr().addr() % SPAN_SIZE >= class.size());
            // SAFETY: a live block of `class.size()` bytes owned by this test.
            unsafe { block.as_ptr().write_bytes(i as u8, class.size()) };
        }
        for (i, block) in blocks.iter().enumerate() {
            // SAFETY: as above; the bytes were written just before.
            let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), checked) };
            assert!(
                bytes.iter().all(|&b| b == i as u8),
                "{class:?}: blocks overlap"
            );
        }
        for block in blocks {
            // SAFETY: each block is freed once and not used again.
            unsafe { free(&slab, Some(&mut cache), block, class.size()) };
        }
    }
    assert_eq!(slab.stats().live_bytes(), 0);
}

#[test]
fn refills_and_flushes_move_whole_batches() {
    let slab = one_pool(1);
    let mut cache = local(&slab, 0);
    let class = class_of(Layout::from_size_align(64, 8).unwrap()).unwrap();
    let count = 5 * class.batch();
    let blocks: Vec<_> = (0..count).map(|_| alloc(&slab, &mut cache, 64)).collect();
    for block in blocks {
        // SAFETY: freed once, not used again.
        unsafe { free(&slab, Some(&mut cache), block, 64) };
    }
    let stats = slab.stats();
    let p = &stats.processors[0];
    assert_eq!(
        p.hits + p.refills,
        count as u64,
        "every allocation is a hit or a refill"
    );
    assert!(p.refills >= 1);
    // The cache holds at most 2 batches: the rest was flushed in batches.
    assert!(p.flushes >= 3, "{p:?}");
    assert_eq!(p.local_frees, count as u64);
    assert_eq!(stats.live_bytes(), 0);
    assert!(stats.nodes[0].central_free_bytes >= 3 * class.batch() * 64);
}

#[test]
fn large_and_over_aligned_tasks_use_the_global_allocator() {
    let slab = one_pool(1);
    let mut cache = local(&slab, 0);
    for layout in [
        Layout::from_size_align(10_000, 8).unwrap(),
        Layout::from_size_align(64, 8192).unwrap(),
    ] {
        let class = class_of(layout);
        assert_eq!(class, None);
        let ptr = slab.allocate(Some(&mut cache), layout, class);
        assert_eq!(ptr.as_ptr().addr() % layout.align(), 0);
        // SAFETY: a live allocation of `layout`.
        unsafe { ptr.as_ptr().write_bytes(0xAB, layout.size()) };
        assert_eq!(slab.stats().large_live_bytes, layout.size() as i64);
        // SAFETY: freed once with its layout.
        unsafe { slab.deallocate(Some(&mut cache), ptr, layout, class) };
    }
    let stats = slab.stats();
    assert_eq!(stats.large_allocations, 2);
    assert_eq!(stats.live_bytes(), 0);
}

#[test]
fn a_free_on_another_node_goes_home_through_the_remote_list() {
    let slab = two_pools(1);
    let block = {
        let mut p0 = local(&slab, 0);
        alloc(&slab, &mut p0, 256)
    };
    {
        let mut p1 = local(&slab, 1);
        // SAFETY: freed once, not used again.
        unsafe { free(&slab, Some(&mut p1), block, 256) };
    }
    let stats = slab.stats();
    assert_eq!(stats.processors[1].remote_frees, 1);
    assert_eq!(stats.processors[1].local_frees, 0);
    assert_eq!(stats.nodes[0].remote_frees, 1);
    assert_eq!(stats.nodes[0].live_bytes, 0);
    assert_eq!(stats.nodes[1].live_bytes, 0);
    // Node 0 gets it back: once P0's cache and the central batches run dry, the refill
    // takes the remote list.
    let mut p0 = local(&slab, 0);
    let class = class_of(Layout::from_size_align(256, 8).unwrap()).unwrap();
    let again: Vec<_> = (0..class.blocks_per_span())
        .map(|_| alloc(&slab, &mut p0, 256))
        .collect();
    assert!(again.contains(&block), "the remotely freed block was lost");
    for b in again {
        // SAFETY: freed once.
        unsafe { free(&slab, Some(&mut p0), b, 256) };
    }
    assert_eq!(slab.stats().live_bytes(), 0);
}

/// A block handed to another thread.
struct SendBlock(NonNull<u8>);
// SAFETY: the block is plain memory; each is used by one thread at a time.
unsafe impl Send for SendBlock {}
// SAFETY: as above: shared references only hand the pointer to one freeing thread.
unsafe impl Sync for SendBlock {}

#[test]
fn threads_without_a_p_allocate_and_free_through_the_pool() {
    let slab = one_pool(1);
    let (layout, class) = layout(512);
    let blocks: Vec<_> = (0..1000)
        .map(|_| slab.allocate(None, layout, class))
        .collect();
    assert_eq!(blocks.iter().collect::<HashSet<_>>().len(), 1000);
    assert_eq!(slab.stats().nodes[0].unowned_allocations, 1000);
    assert_eq!(slab.stats().live_bytes(), 512 * 1000);
    let blocks: Vec<SendBlock> = blocks.into_iter().map(SendBlock).collect();
    let (half_a, half_b) = blocks.split_at(500);
    std::thread::scope(|s| {
        s.spawn(|| {
            for b in half_a {
                // SAFETY: freed once, by this thread only.
                unsafe { slab.deallocate(None, b.0, layout, class) };
            }
        });
        s.spawn(|| {
            let mut p0 = local(&slab, 0);
            for b in half_b {
                // SAFETY: freed once, by this thread only.
                unsafe { slab.deallocate(Some(&mut p0), b.0, layout, class) };
            }
        });
    });
    let stats = slab.stats();
    assert_eq!(stats.nodes[0].remote_frees, 500);
    assert_eq!(stats.processors[0].local_frees, 500);
    assert_eq!(stats.live_bytes(), 0);
}

#[test]
fn idle_spans_go_back_to_the_os_and_are_reused() {
    let slab = one_pool(1);
    let mut cache = local(&slab, 0);
    let class = class_of(Layout::from_size_align(1024, 8).unwrap()).unwrap();
    let count = 4 * class.blocks_per_span();
    let blocks: Vec<_> = (0..count).map(|_| alloc(&slab, &mut cache, 1024)).collect();
    // One block stays live: its span must not be released.
    let (kept, rest) = blocks.split_first().unwrap();
    for &b in rest {
        // SAFETY: freed once.
        unsafe { free(&slab, Some(&mut cache), b, 1024) };
    }
    cache.flush_all();
    let released = slab.release_idle_spans();
    assert!(released >= 1, "no idle span released");
    assert!(released < 4 + 1, "released more spans than were carved");
    let stats = slab.stats();
    assert_eq!(stats.nodes[0].spans_released, released as u64);
    assert_eq!(stats.nodes[0].released_spans_now, released);
    // The live block is untouched (its span was kept): write and read it.
    // SAFETY: `kept` is live.
    unsafe { kept.as_ptr().write_bytes(7, 1024) };
    // Released spans are reused, and their memory is usable again.
    let again: Vec<_> = (0..count).map(|_| alloc(&slab, &mut cache, 1024)).collect();
    for &b in &again {
        // SAFETY: live blocks of 1024 bytes.
        unsafe { b.as_ptr().write_bytes(1, 1024) };
    }
    assert_eq!(slab.stats().nodes[0].released_spans_now, 0);
    for b in again.into_iter().chain([*kept]) {
        // SAFETY: freed once.
        unsafe { free(&slab, Some(&mut cache), b, 1024) };
    }
    assert_eq!(slab.stats().live_bytes(), 0);
}

/// A block in flight in the stress test: its address, size, and the stamp written in it.
struct Stamped {
    ptr: NonNull<u8>,
    size: usize,
    stamp: u64,
}

// SAFETY: the block is plain memory owned by whoever holds the message.
unsafe impl Send for Stamped {}

fn stamp_size(seq: usize) -> usize {
    // Mostly small tasks, every 64th a big one.
    if seq % 64 == 63 {
        4096
    } else {
        64 * (1 + seq % 8)
    }
}

fn write_stamp(block: &Stamped) {
    let words = block.size / 8;
    // SAFETY: a live block of `size` bytes, 64-aligned, owned by this thread.
    let slice = unsafe { std::slice::from_raw_parts_mut(block.ptr.as_ptr().cast::<u64>(), words) };
    slice.fill(block.stamp);
}

fn check_stamp(block: &Stamped) {
    let words = block.size / 8;
    // SAFETY: as above; the sender wrote every word before sending.
    let slice = unsafe { std::slice::from_raw_parts(block.ptr.as_ptr().cast::<u64>(), words) };
    if let Some(bad) = slice.iter().position(|&w| w != block.stamp) {
        panic!(
            "block {:p} (stamp {:#x}) was overwritten at word {bad} with {:#x}: handed out twice",
            block.ptr, block.stamp, slice[bad]
        );
    }
}

/// 4 threads, each holding one P, allocate 1e6 blocks each, stamp them with (thread, seq),
/// and send them to the next thread, which checks the stamp and frees them on its own P.
/// Two node pools, so half the frees cross nodes. A block handed out twice is caught by
/// the stamp check (and by memcheck).
#[test]
fn stress_four_threads_free_each_others_blocks() {
    const THREADS: usize = 4;
    const BATCH: usize = 256;
    let per_thread = scaled(1_000_000).next_multiple_of(BATCH);
    let slab = two_pools(THREADS / 2);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| mpsc::channel::<Vec<Stamped>>())
        .unzip();
    std::thread::scope(|s| {
        for (p, rx) in receivers.into_iter().enumerate() {
            let tx = senders[(p + 1) % THREADS].clone();
            let slab = &slab;
            s.spawn(move || stress_thread(slab, p, per_thread, BATCH, &tx, &rx));
        }
        drop(senders);
    });
    let stats = slab.stats();
    assert_eq!(stats.live_bytes(), 0, "{stats:#?}");
    let frees: u64 = stats
        .processors
        .iter()
        .map(|p| p.local_frees + p.remote_frees)
        .sum();
    assert_eq!(frees, (THREADS * per_thread) as u64);
    assert!(stats.nodes.iter().all(|n| n.remote_frees > 0));
}

fn stress_thread(
    slab: &Slab,
    p: usize,
    count: usize,
    batch: usize,
    tx: &mpsc::Sender<Vec<Stamped>>,
    rx: &mpsc::Receiver<Vec<Stamped>>,
) {
    let mut cache = local(slab, p);
    let mut received = 0;
    for start in (0..count).step_by(batch) {
        let blocks: Vec<Stamped> = (start..start + batch)
            .map(|seq| {
                let size = stamp_size(seq);
                let block = Stamped {
                    ptr: alloc(slab, &mut cache, size),
                    size,
                    stamp: ((p as u64) << 48) | seq as u64,
                };
                write_stamp(&block);
                block
            })
            .collect();
        tx.send(blocks)
            .expect("the next thread is alive until it got everything");
        while let Ok(blocks) = rx.try_recv() {
            received += check_and_free(slab, &mut cache, blocks);
        }
    }
    // Exactly `count` blocks come from the neighbour: wait for them (not for a disconnect,
    // which would make the ring of threads wait on each other).
    while received < count {
        let blocks = rx.recv().expect("the previous thread sends all its blocks");
        received += check_and_free(slab, &mut cache, blocks);
    }
    assert_eq!(
        received, count,
        "P{p} got more blocks than its neighbour sent"
    );
}

fn check_and_free(slab: &Slab, cache: &mut LocalCache<'_>, blocks: Vec<Stamped>) -> usize {
    let count = blocks.len();
    for block in blocks {
        check_stamp(&block);
        // SAFETY: the block came from `alloc(.., block.size)` and is freed once.
        unsafe { free(slab, Some(cache), block.ptr, block.size) };
    }
    count
}

//! Spans: [`SPAN_SIZE`]-aligned runs of memory carved into blocks of one size class, taken
//! from chunks mapped on one NUMA node.
//!
//! A chunk is `SPANS_PER_CHUNK` spans mapped at once ([`gpm_numa::NodeMemory`]: `mmap` +
//! `mbind` to the node). `mmap` only promises page alignment, so a chunk maps one span more
//! than it needs and uses the aligned part (the unused pages are never touched, so they cost
//! address space, not memory). When the kernel refuses the binding, or under Miri, chunks
//! come from the global allocator instead, with the same alignment ([`ChunkMemory::Heap`]),
//! and [`SpanSource::unbound_chunks`] counts them.
//!
//! Every span starts with a [`SpanHeader`] in its first block-sized slot: the node and class
//! of its blocks. Masking a block address with `!(SPAN_SIZE - 1)` finds it, which is how a
//! free finds a block's home node without a field in the block.
//!
//! Idle spans (every block free in the central pool) are given back to the OS with
//! `madvise(MADV_DONTNEED)` (the pages are freed, the mapping and its node policy stay) and
//! kept in a list for reuse; chunks are unmapped when the allocator is dropped.

use super::size_class::{SizeClass, SPAN_SIZE};
use std::alloc::Layout;
use std::ptr::NonNull;

/// Spans mapped per chunk (1 MiB).
const SPANS_PER_CHUNK: usize = 16;

/// Marks a live span header (debug checks only).
const SPAN_MAGIC: u32 = 0x5ab5_1ab5;

/// The first bytes of every span.
#[repr(C)]
pub(crate) struct SpanHeader {
    magic: u32,
    /// Index of the allocator's node pool the blocks belong to.
    node: u32,
    class: u32,
}

/// A free block: the first word links to the next free block.
#[repr(C)]
pub(crate) struct FreeBlock {
    pub(crate) next: *mut FreeBlock,
}

/// The span header of the span containing `block`.
///
/// # Safety
/// `block` points into a span carved by a [`SpanSource`] that is still alive, and the span
/// is in use (its header was written before the block was handed out, and happens-before
/// this call through whatever handed the block to this thread).
pub(crate) unsafe fn header_of(block: NonNull<u8>) -> (usize, SizeClass) {
    let base = block
        .as_ptr()
        .map_addr(|addr| addr & !(SPAN_SIZE - 1))
        .cast::<SpanHeader>();
    // SAFETY: per the contract, `base` is the live header of the block's span.
    let header = unsafe { &*base };
    debug_assert_eq!(
        header.magic, SPAN_MAGIC,
        "freeing a block not from the slab"
    );
    (
        header.node as usize,
        SizeClass::from_index(header.class as usize),
    )
}

/// Where a chunk's memory came from.
enum ChunkMemory {
    /// Bound to a NUMA node.
    #[cfg(not(miri))]
    Node(gpm_numa::NodeMemory),
    /// The global allocator, already aligned to `SPAN_SIZE`.
    Heap(NonNull<u8>),
}

/// One mapping and the spans it holds.
struct Chunk {
    memory: ChunkMemory,
    /// First span-aligned address (with the provenance of the whole chunk).
    first_span: *mut u8,
}

// SAFETY: a chunk exclusively owns its memory; the raw pointers inside are just addresses.
unsafe impl Send for Chunk {}
// SAFETY: the span source owns its chunks; its raw pointers point into them.
unsafe impl Send for SpanSource {}

fn heap_chunk_layout() -> Layout {
    // SPAN_SIZE is a power of two and the size a small multiple of it: always valid.
    Layout::from_size_align(SPANS_PER_CHUNK * SPAN_SIZE, SPAN_SIZE)
        .unwrap_or_else(|_| unreachable!("constant layout"))
}

impl Chunk {
    /// Maps a chunk on OS node `os_node`, or on the heap if that is `None` or refused.
    fn map(os_node: Option<usize>) -> Option<Chunk> {
        #[cfg(not(miri))]
        if let Some(node) = os_node {
            if let Ok(memory) = gpm_numa::NodeMemory::map(node, (SPANS_PER_CHUNK + 1) * SPAN_SIZE) {
                let base = memory.as_ptr();
                let first_span = base.wrapping_add(base.align_offset(SPAN_SIZE));
                return Some(Chunk {
                    memory: ChunkMemory::Node(memory),
                    first_span,
                });
            }
        }
        #[cfg(miri)]
        let _ = os_node;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc(heap_chunk_layout()) })?;
        Some(Chunk {
            first_span: ptr.as_ptr(),
            memory: ChunkMemory::Heap(ptr),
        })
    }

    fn is_bound(&self) -> bool {
        match &self.memory {
            #[cfg(not(miri))]
            ChunkMemory::Node(memory) => memory.is_bound(),
            ChunkMemory::Heap(_) => false,
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        match &self.memory {
            #[cfg(not(miri))]
            ChunkMemory::Node(_) => {} // NodeMemory unmaps itself.
            // SAFETY: allocated in `Chunk::map` with this layout, freed once, here.
            ChunkMemory::Heap(ptr) => unsafe {
                std::alloc::dealloc(ptr.as_ptr(), heap_chunk_layout())
            },
        }
    }
}

/// The spans of one node pool: chunks, the next never-used span, released spans.
pub(crate) struct SpanSource {
    node: u32,
    os_node: Option<usize>,
    chunks: Vec<Chunk>,
    /// The last chunk's first span, and how many of its spans are handed out.
    fresh_base: *mut u8,
    fresh_used: usize,
    /// Spans given back by the scavenger (their pages released to the OS).
    released: Vec<*mut u8>,
    unbound_chunks: usize,
}

impl SpanSource {
    /// A source for node pool `node`, mapping on OS node `os_node` (heap memory if `None`).
    pub(crate) fn new(node: usize, os_node: Option<usize>) -> SpanSource {
        SpanSource {
            node: u32::try_from(node).unwrap_or(u32::MAX),
            os_node,
            chunks: Vec::new(),
            fresh_base: std::ptr::null_mut(),
            fresh_used: SPANS_PER_CHUNK,
            released: Vec::new(),
            unbound_chunks: 0,
        }
    }

    /// Bytes mapped (or taken from the heap) for spans.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.chunks.len() * SPANS_PER_CHUNK * SPAN_SIZE
    }

    /// Chunks that could not be bound to the node (heap or refused policy).
    pub(crate) fn unbound_chunks(&self) -> usize {
        self.unbound_chunks
    }

    /// Spans whose pages were released to the OS and not reused yet.
    pub(crate) fn released_spans(&self) -> usize {
        self.released.len()
    }

    /// Carves a span for `class` and returns its blocks as a linked list `(head, tail)` of
    /// `class.blocks_per_span()` blocks, or `None` when no memory can be had.
    pub(crate) fn carve(
        &mut self,
        class: SizeClass,
    ) -> Option<(NonNull<FreeBlock>, NonNull<FreeBlock>)> {
        let span = self.take_span()?;
        let header = span.cast::<SpanHeader>();
        // SAFETY: `span` is the start of a span-sized, span-aligned region owned by this
        // source and not in use (fresh or released): nobody else reads or writes it.
        unsafe {
            header.write(SpanHeader {
                magic: SPAN_MAGIC,
                node: self.node,
                class: class.index() as u32,
            });
        }
        let size = class.size();
        let count = class.blocks_per_span();
        // In bounds: slot i + 1 < SPAN_SIZE / size.
        let block_at = |i: usize| span.wrapping_add((i + 1) * size).cast::<FreeBlock>();
        for i in 0..count {
            let next = if i + 1 < count {
                block_at(i + 1)
            } else {
                std::ptr::null_mut()
            };
            // SAFETY: slot i+1 lies inside the span (count + 1 slots fit in SPAN_SIZE), is
            // aligned for a pointer (size is a multiple of 64), and is unused.
            unsafe { block_at(i).write(FreeBlock { next }) };
        }
        // SAFETY: both addresses are inside the span, hence non-null.
        unsafe {
            Some((
                NonNull::new_unchecked(block_at(0)),
                NonNull::new_unchecked(block_at(count - 1)),
            ))
        }
    }

    fn take_span(&mut self) -> Option<*mut u8> {
        if let Some(span) = self.released.pop() {
            return Some(span);
        }
        if self.fresh_used == SPANS_PER_CHUNK {
            let chunk = Chunk::map(self.os_node)?;
            if !chunk.is_bound() {
                self.unbound_chunks += 1;
            }
            self.fresh_base = chunk.first_span;
            self.fresh_used = 0;
            self.chunks.push(chunk);
        }
        // In bounds: the chunk holds SPANS_PER_CHUNK spans from `fresh_base`.
        let span = self.fresh_base.wrapping_add(self.fresh_used * SPAN_SIZE);
        self.fresh_used += 1;
        Some(span)
    }

    /// Gives an idle span back: its pages return to the OS, the span to the reuse list.
    ///
    /// # Safety
    /// `span` was carved by this source and none of its blocks is in use or in any list.
    pub(crate) unsafe fn release(&mut self, span: *mut u8) {
        #[cfg(not(miri))]
        {
            // SAFETY: the span is a whole number of pages of a mapping this source owns,
            // and nothing references its contents (caller's contract). Zeroed pages are
            // fine: `carve` rewrites header and links.
            let rc = unsafe { libc::madvise(span.cast(), SPAN_SIZE, libc::MADV_DONTNEED) };
            debug_assert_eq!(rc, 0, "madvise: {}", std::io::Error::last_os_error());
        }
        self.released.push(span);
    }
}

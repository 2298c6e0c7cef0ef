//! Size classes: the block sizes the slab hands out, and the lookup from a `Layout`.
//!
//! Classes go from 64 B to 4 KiB in steps that keep the worst internal waste near 20 %
//! (64-byte steps up to 512 B, then quarter-powers of two). Every class is a multiple of 64,
//! so blocks never share a cache line. A block's address is `span + k * size` with the span
//! aligned to [`SPAN_SIZE`], so its alignment is the largest power of two dividing `size`
//! ([`SizeClass::align`]); a layout asking for more alignment moves up to a class that gives
//! it, or to the global allocator.
//!
//! The lookup is a `const fn`, evaluated once per task type at compile time
//! ([`class_of`] behind an associated constant in `slab.rs`).

use std::alloc::Layout;

/// Bytes of one span: the unit carved into blocks of one class. Spans are aligned to their
/// size, so masking a block's address gives its span header.
pub(crate) const SPAN_SIZE: usize = 64 * 1024;

/// The block sizes, ascending.
const SIZES: [usize; NUM_CLASSES] = [
    64, 128, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072,
    3584, 4096,
];

/// `SizeClass::batch` of each class, computed once.
const BATCHES: [usize; NUM_CLASSES] = {
    let mut batches = [0; NUM_CLASSES];
    let mut index = 0;
    while index < NUM_CLASSES {
        let blocks = 16 * 1024 / SIZES[index];
        batches[index] = if blocks < 4 {
            4
        } else if blocks > 64 {
            64
        } else {
            blocks
        };
        index += 1;
    }
    batches
};

/// Number of size classes.
pub(crate) const NUM_CLASSES: usize = 20;

/// Largest block the slab serves; bigger tasks go to the global allocator.
pub(crate) const MAX_BLOCK: usize = SIZES[NUM_CLASSES - 1];

/// One size class, by index into the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeClass(u8);

impl SizeClass {
    /// The class with index `index`.
    ///
    /// # Panics
    /// If `index >= NUM_CLASSES`.
    pub(crate) const fn from_index(index: usize) -> SizeClass {
        assert!(index < NUM_CLASSES, "size class index out of range");
        SizeClass(index as u8)
    }

    pub(crate) const fn index(self) -> usize {
        self.0 as usize
    }

    /// Block size in bytes.
    pub(crate) const fn size(self) -> usize {
        SIZES[self.0 as usize]
    }

    /// Alignment every block of this class has: the largest power of two dividing its size.
    pub(crate) const fn align(self) -> usize {
        1 << self.size().trailing_zeros()
    }

    /// Blocks in one span. The first block-sized slot holds the span header.
    pub(crate) const fn blocks_per_span(self) -> usize {
        SPAN_SIZE / self.size() - 1
    }

    /// Blocks moved per refill from, or flush to, the central pool: about 16 KiB, at least
    /// 4 and at most 64 blocks. A table lookup: this is on the free path.
    pub(crate) const fn batch(self) -> usize {
        BATCHES[self.0 as usize]
    }

    /// Every class, ascending.
    pub(crate) fn all() -> impl Iterator<Item = SizeClass> {
        (0..NUM_CLASSES).map(SizeClass::from_index)
    }
}

/// The smallest class whose blocks fit `layout` (size and alignment), or `None` when the
/// global allocator must serve it (too big, zero-sized, or over-aligned).
pub(crate) const fn class_of(layout: Layout) -> Option<SizeClass> {
    if layout.size() == 0 || layout.size() > MAX_BLOCK {
        return None;
    }
    let mut index = 0;
    while index < NUM_CLASSES {
        let class = SizeClass(index as u8);
        if class.size() >= layout.size() && class.align() >= layout.align() {
            return Some(class);
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_a_multiple_of_64_and_ascending() {
        let mut previous = 0;
        for class in SizeClass::all() {
            assert_eq!(class.size() % 64, 0, "{class:?}");
            assert!(class.size() > previous);
            assert!(class.blocks_per_span() >= 4, "{class:?}");
            previous = class.size();
        }
        assert_eq!(previous, MAX_BLOCK);
    }

    #[test]
    fn lookup_picks_the_smallest_fitting_class() {
        let fit = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(fit(1, 1).map(SizeClass::size), Some(64));
        assert_eq!(fit(64, 8).map(SizeClass::size), Some(64));
        assert_eq!(fit(65, 8).map(SizeClass::size), Some(128));
        assert_eq!(fit(513, 8).map(SizeClass::size), Some(640));
        assert_eq!(fit(4096, 8).map(SizeClass::size), Some(4096));
        assert_eq!(fit(4097, 8), None);
        assert_eq!(fit(0, 1), None);
    }

    #[test]
    fn over_aligned_layouts_get_an_aligned_class_or_none() {
        let fit = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        // 192 is only 64-aligned: a 128-aligned 150-byte layout needs 256.
        assert_eq!(fit(150, 128).map(SizeClass::size), Some(256));
        assert_eq!(fit(600, 128).map(SizeClass::size), Some(640));
        assert_eq!(fit(100, 8192), None);
        for class in SizeClass::all() {
            let layout = Layout::from_size_align(class.size(), class.align()).unwrap();
            assert_eq!(class_of(layout), Some(class));
        }
    }

    #[test]
    fn waste_stays_bounded() {
        for size in 1..=MAX_BLOCK {
            let class = class_of(Layout::from_size_align(size, 8).unwrap()).unwrap();
            let waste = class.size() - size;
            assert!(
                waste < 64 || waste * 5 <= class.size(),
                "{size} -> {class:?}"
            );
        }
    }
}

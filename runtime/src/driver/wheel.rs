//! A hierarchical timing wheel: six levels of 64 slots, one tick per millisecond.
//!
//! # Layout
//!
//! Level `l` has 64 slots of `64^l` ticks each, so level 0 covers the next 64 ms, level 1 the
//! next 4 s, ..., level 5 about 2.2 years; a later deadline is clamped to the last level's
//! range and re-filed when it comes near. An entry whose deadline is `d` is filed at the
//! level of the highest 6-bit digit in which `d` and the wheel's current tick `elapsed`
//! differ, in the slot given by that digit of `d`. Hence (invariant): every entry of level
//! `l` agrees with `elapsed` on all digits above `l`, and its slot lies strictly after the
//! slot of `elapsed` at that level. So the first occupied slot of the lowest occupied level
//! holds the earliest deadlines, and finding it is a bit scan of that level's 64-bit
//! occupancy mask: no tick-by-tick walking, even after a long sleep.
//!
//! Advancing to `now` repeatedly takes the earliest slot whose start is `<= now`, sets
//! `elapsed` to that start, and re-files each of its entries: it either fires (deadline
//! reached) or drops to a lower level. Each entry is re-filed at most once per level.
//!
//! # Storage
//!
//! Entries live in a [`Slab`]; each slot is a bucket: a vector of the keys of its entries,
//! and each entry records its position in its bucket. Insert is a push, cancel a
//! `swap_remove` (which re-points the one entry moved into the hole), so insert, cancel and
//! reset are O(1) and need no `unsafe`.
//!
//! Buckets are arrays rather than lists threaded through the entries because firing a slot
//! touches each of its entries, and with many timers nearly every entry is a cache miss: a
//! list makes each miss wait for the one before it (the next key is inside the entry), an
//! array of keys lets the CPU overlap them. Under 50k concurrent timers the list walk was
//! 86% of the driver's firing time. (Tokio threads an intrusive list through the `Sleep`
//! futures themselves, which saves the slab but needs pinned, unsafe list code and walks
//! a list.) An entry is 32 bytes, two per cache line.
//!
//! A fired entry stays in the slab, unlinked, until its owner observes it or is dropped:
//! the owner's key stays valid for exactly its own lifetime, so cancelling is always
//! "remove my key" and nothing leaks.
//!
//! The wheel itself is not synchronised; [`super::time::TimeDriver`] keeps one per P, each
//! behind its own mutex.

use slab::Slab;
use std::task::Waker;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Largest distance from `elapsed` the levels can represent.
const MAX_SPAN: u64 = (1 << (SLOT_BITS * LEVELS as u32)) - 1;

/// A key to one timer entry, valid until [`Wheel::remove`].
pub(crate) type Key = usize;

/// A key as stored in a bucket: narrowed to 32 bits, which keeps buckets and entries small.
type Link = u32;

/// Where an entry is filed: a level (an enum, so that the slab's own tag fits in its
/// spare values and an entry stays 32 bytes) or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Place {
    Level0,
    Level1,
    Level2,
    Level3,
    Level4,
    Level5,
    /// Fired, or taken out of its bucket to be re-filed.
    Unlinked,
}

const PLACES: [Place; LEVELS] = [
    Place::Level0,
    Place::Level1,
    Place::Level2,
    Place::Level3,
    Place::Level4,
    Place::Level5,
];

#[derive(Debug)]
struct Entry {
    deadline: u64,
    waker: Option<Waker>,
    /// Position of this entry's key in its bucket.
    index: u32,
    place: Place,
    slot: u8,
}

#[derive(Debug)]
struct Level {
    occupied: u64,
    buckets: [Vec<Link>; SLOTS],
}

/// The wheel. Ticks are milliseconds since the driver started.
#[derive(Debug)]
pub(crate) struct Wheel {
    entries: Slab<Entry>,
    levels: [Level; LEVELS],
    elapsed: u64,
    linked: usize,
}

impl Wheel {
    pub(crate) fn new() -> Wheel {
        Wheel {
            entries: Slab::new(),
            levels: std::array::from_fn(|_| Level {
                occupied: 0,
                buckets: std::array::from_fn(|_| Vec::new()),
            }),
            elapsed: 0,
            linked: 0,
        }
    }

    /// The tick the wheel last turned to: every deadline up to it has fired.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Entries alive (waiting or fired but not yet observed).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a timer for tick `deadline`. A deadline already reached fires at once (no wake:
    /// the caller is polling it).
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> Key {
        assert!(
            self.entries.len() < Link::MAX as usize,
            "gpm: more than {} timers in one timer shard",
            Link::MAX
        );
        let key = self.entries.insert(Entry {
            deadline,
            waker: Some(waker),
            index: 0,
            place: Place::Unlinked,
            slot: 0,
        });
        if deadline > self.elapsed {
            self.link(key);
        }
        key
    }

    /// Whether `key` has fired. If it has not, stores `waker` to be woken when it does.
    pub(crate) fn poll(&mut self, key: Key, waker: &Waker) -> bool {
        let entry = &mut self.entries[key];
        if entry.place == Place::Unlinked {
            return true;
        }
        match &entry.waker {
            Some(old) if old.will_wake(waker) => {}
            _ => entry.waker = Some(waker.clone()),
        }
        false
    }

    /// Moves `key` to a new deadline (fired or not). A deadline the wheel has already
    /// turned past fires the entry at once: its waker is returned, for the caller to wake.
    pub(crate) fn reset(&mut self, key: Key, deadline: u64) -> Option<Waker> {
        self.unlink(key);
        let entry = &mut self.entries[key];
        entry.deadline = deadline;
        if deadline <= self.elapsed {
            return entry.waker.take();
        }
        self.link(key);
        None
    }

    /// Cancels and frees `key`.
    pub(crate) fn remove(&mut self, key: Key) {
        self.unlink(key);
        self.entries.remove(key);
    }

    /// The earliest pending deadline, if any entry is waiting.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, start)| start)
    }

    /// Fires every entry whose deadline is `<= now`, pushing their wakers to `fired`.
    pub(crate) fn advance(&mut self, now: u64, fired: &mut Vec<Waker>) {
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            self.refile_slot(level, slot, fired);
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// Fires every entry at once (shutdown).
    pub(crate) fn fire_all(&mut self, fired: &mut Vec<Waker>) {
        for level in &mut self.levels {
            level.occupied = 0;
            for bucket in &mut level.buckets {
                for link in bucket.drain(..) {
                    let entry = &mut self.entries[link as Key];
                    entry.place = Place::Unlinked;
                    fired.extend(entry.waker.take());
                }
            }
        }
        self.linked = 0;
    }

    /// Empties one slot: each of its entries fires or drops to a lower level. The bucket's
    /// memory goes back to the slot for reuse.
    fn refile_slot(&mut self, level: usize, slot: usize, fired: &mut Vec<Waker>) {
        let mut bucket = std::mem::take(&mut self.levels[level].buckets[slot]);
        self.levels[level].occupied &= !(1 << slot);
        self.linked -= bucket.len();
        for &link in &bucket {
            let entry = &mut self.entries[link as Key];
            entry.place = Place::Unlinked;
            if entry.deadline <= self.elapsed {
                fired.extend(entry.waker.take());
            } else {
                self.link(link as Key);
            }
        }
        bucket.clear();
        let home = &mut self.levels[level].buckets[slot];
        if home.is_empty() {
            *home = bucket;
        }
    }

    /// (level, slot, tick at which the slot starts) of the earliest occupied slot.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        if self.linked == 0 {
            return None;
        }
        let (level, occupied) = self
            .levels
            .iter()
            .enumerate()
            .find(|(_, level)| level.occupied != 0)
            .map(|(index, level)| (index, level.occupied))?;
        let shift = SLOT_BITS * level as u32;
        let current = ((self.elapsed >> shift) & SLOT_MASK) as u32;
        // The invariant puts every occupied slot after `current`; rotate so the scan starts there.
        let slot = (occupied.rotate_right(current).trailing_zeros() + current) as usize % SLOTS;
        let window = SLOT_BITS * (level as u32 + 1);
        let base = if window >= 64 {
            0
        } else {
            self.elapsed >> window << window
        };
        let mut start = base + ((slot as u64) << shift);
        if start <= self.elapsed {
            // Only the top level wraps (a clamped deadline in the next window of level 5).
            start += 1 << window;
        }
        Some((level, slot, start))
    }

    fn link(&mut self, key: Key) {
        let deadline = self.entries[key]
            .deadline
            .min(self.elapsed.saturating_add(MAX_SPAN));
        let (level, slot) = level_and_slot(self.elapsed, deadline);
        let bucket = &mut self.levels[level].buckets[slot];
        let index = bucket.len() as u32;
        bucket.push(key as Link);
        self.levels[level].occupied |= 1 << slot;
        let entry = &mut self.entries[key];
        entry.place = PLACES[level];
        entry.slot = slot as u8;
        entry.index = index;
        self.linked += 1;
    }

    fn unlink(&mut self, key: Key) {
        let entry = &mut self.entries[key];
        let level = match entry.place {
            Place::Unlinked => return,
            // `Place`'s levels are numbered 0..LEVELS (`repr(u8)`, declared in order).
            place => place as usize,
        };
        let (slot, index) = (entry.slot as usize, entry.index as usize);
        entry.place = Place::Unlinked;
        let bucket = &mut self.levels[level].buckets[slot];
        bucket.swap_remove(index);
        if let Some(&moved) = bucket.get(index) {
            self.entries[moved as Key].index = index as u32;
        } else if bucket.is_empty() {
            self.levels[level].occupied &= !(1 << slot);
        }
        self.linked -= 1;
    }
}

/// The level of the highest 6-bit digit where `elapsed` and `deadline` differ, and that
/// digit of `deadline`.
fn level_and_slot(elapsed: u64, deadline: u64) -> (usize, usize) {
    let differing = (elapsed ^ deadline) | SLOT_MASK;
    let highest_bit = 63 - differing.leading_zeros();
    let level = (highest_bit / SLOT_BITS) as usize;
    let level = level.min(LEVELS - 1);
    let slot = ((deadline >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize;
    (level, slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn fired_ticks(wheel: &mut Wheel, deadlines: &[u64], step: u64, until: u64) -> Vec<u64> {
        let keys: Vec<Key> = deadlines
            .iter()
            .map(|&d| wheel.insert(d, Waker::noop().clone()))
            .collect();
        let mut order = Vec::new();
        let mut now = 0;
        while now <= until {
            let mut fired = Vec::new();
            wheel.advance(now, &mut fired);
            for (i, &key) in keys.iter().enumerate() {
                if wheel.poll(key, Waker::noop()) && !order.iter().any(|&(j, _)| j == i) {
                    order.push((i, now));
                }
            }
            now += step;
        }
        order.sort();
        order.into_iter().map(|(_, tick)| tick).collect()
    }

    #[test]
    fn an_entry_fits_in_32_bytes_in_the_slab() {
        assert!(std::mem::size_of::<Entry>() <= 32);
        assert!(std::mem::size_of::<slab::Slab<Entry>>() > 0);
        assert!(
            std::mem::size_of::<Option<Entry>>() <= 32,
            "no niche left for a tag"
        );
    }

    #[test]
    fn cancelling_from_the_middle_of_a_bucket_keeps_the_others() {
        let mut wheel = Wheel::new();
        let keys: Vec<Key> = (0..5)
            .map(|_| wheel.insert(10, Waker::noop().clone()))
            .collect();
        wheel.remove(keys[1]);
        wheel.remove(keys[4]);
        let mut fired = Vec::new();
        wheel.advance(10, &mut fired);
        assert_eq!(fired.len(), 3);
        for &key in [keys[0], keys[2], keys[3]].iter() {
            assert!(wheel.poll(key, Waker::noop()));
        }
    }

    #[test]
    fn fires_each_deadline_at_its_tick_never_early() {
        let deadlines = [1, 5, 63, 64, 65, 100, 4095, 4096, 4097, 300_000];
        let mut wheel = Wheel::new();
        let fired = fired_ticks(&mut wheel, &deadlines, 1, 300_001);
        assert_eq!(fired, deadlines.to_vec());
    }

    #[test]
    fn long_jumps_fire_everything_due() {
        let mut wheel = Wheel::new();
        let fired = fired_ticks(
            &mut wheel,
            &[10, 1000, 70_000, 5_000_000],
            999_983,
            6_000_000,
        );
        assert_eq!(fired, vec![999_983, 999_983, 999_983, 5_999_898]);
    }

    #[test]
    fn next_deadline_is_the_earliest() {
        let mut wheel = Wheel::new();
        for d in [5000, 70, 3, 1 << 30] {
            wheel.insert(d, Waker::noop().clone());
        }
        assert_eq!(wheel.next_deadline(), Some(3));
        wheel.advance(3, &mut Vec::new());
        // Level-1 slot starts at 64; entries re-file from there.
        assert!(wheel.next_deadline().unwrap() <= 70);
        wheel.advance(70, &mut Vec::new());
        assert!(wheel.next_deadline().unwrap() <= 5000);
    }

    #[test]
    fn cancel_and_reset() {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut wheel = Wheel::new();
        let a = wheel.insert(10, waker.clone());
        let b = wheel.insert(10, waker.clone());
        let c = wheel.insert(20, waker.clone());
        wheel.remove(b);
        wheel.reset(c, 5);
        let mut fired = Vec::new();
        wheel.advance(9, &mut fired);
        assert_eq!(fired.len(), 1);
        assert!(wheel.poll(c, &waker));
        wheel.advance(10, &mut fired);
        assert_eq!(fired.len(), 2);
        fired.drain(..).for_each(Waker::wake);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(wheel.poll(a, &waker));
        wheel.remove(a);
        wheel.remove(c);
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn past_deadline_fires_on_insert() {
        let mut wheel = Wheel::new();
        wheel.advance(100, &mut Vec::new());
        let key = wheel.insert(50, Waker::noop().clone());
        assert!(wheel.poll(key, Waker::noop()));
    }

    #[test]
    fn far_deadline_is_clamped_then_refiled() {
        let mut wheel = Wheel::new();
        let key = wheel.insert(u64::MAX / 2, Waker::noop().clone());
        assert!(wheel.next_deadline().unwrap() <= MAX_SPAN);
        wheel.advance(MAX_SPAN + 10, &mut Vec::new());
        assert!(!wheel.poll(key, Waker::noop()));
    }

    #[test]
    fn many_random_deadlines_fire_in_order() {
        let mut rng = 0x1234_5678_u64;
        let mut deadlines: Vec<u64> = (0..2000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                1 + rng % 200_000
            })
            .collect();
        let mut wheel = Wheel::new();
        let keys: Vec<Key> = deadlines
            .iter()
            .map(|&d| wheel.insert(d, Waker::noop().clone()))
            .collect();
        let mut now = 0;
        let mut seen = vec![false; keys.len()];
        while let Some(next) = wheel.next_deadline() {
            now = next.max(now);
            wheel.advance(now, &mut Vec::new());
            for (i, &key) in keys.iter().enumerate() {
                if !seen[i] && wheel.poll(key, Waker::noop()) {
                    seen[i] = true;
                    assert_eq!(deadlines[i], now, "entry {i} fired at the wrong tick");
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
        deadlines.clear();
    }
}

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
//! Entries live in a [`Slab`]; each slot is a doubly linked list threaded through the slab by
//! index, so insert, cancel and reset are O(1) and need no `unsafe` (tokio threads an
//! intrusive list through the `Sleep` futures themselves, which saves the slab but needs
//! pinned, unsafe list code). A fired entry stays in the slab, unlinked, until its owner
//! observes it or is dropped: the owner's key stays valid for exactly its own lifetime, so
//! cancelling is always "remove my key" and nothing leaks.
//!
//! The wheel itself is not synchronised; [`super::TimeDriver`] keeps it behind a mutex.

use slab::Slab;
use std::task::Waker;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Largest distance from `elapsed` the levels can represent.
const MAX_SPAN: u64 = (1 << (SLOT_BITS * LEVELS as u32)) - 1;
/// A link between entries: a slab key narrowed to 32 bits, which keeps an entry in 40 bytes
/// (a slot's list is walked entry by entry, so each byte saved is cache saved).
type Link = u32;
const NIL: Link = Link::MAX;
/// `Entry::level` of an entry not linked in any slot (fired, or waiting to be re-filed).
const UNLINKED: u8 = u8::MAX;

/// A key to one timer entry, valid until [`Wheel::remove`].
pub(crate) type Key = usize;

#[derive(Debug)]
struct Entry {
    deadline: u64,
    waker: Option<Waker>,
    prev: Link,
    next: Link,
    /// The level of the slot the entry is linked in, or [`UNLINKED`] once fired.
    level: u8,
    slot: u8,
}

impl Entry {
    fn is_linked(&self) -> bool {
        self.level != UNLINKED
    }
}

#[derive(Debug)]
struct Level {
    occupied: u64,
    heads: [Link; SLOTS],
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
                heads: [NIL; SLOTS],
            }),
            elapsed: 0,
            linked: 0,
        }
    }

    /// Entries alive (waiting or fired but not yet observed).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a timer for tick `deadline`. A deadline already reached fires at once (no wake:
    /// the caller is polling it).
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> Key {
        assert!(
            self.entries.len() < NIL as usize,
            "gpm: more than {NIL} timers in one timer shard"
        );
        let key = self.entries.insert(Entry {
            deadline,
            waker: Some(waker),
            prev: NIL,
            next: NIL,
            level: UNLINKED,
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
        if !entry.is_linked() {
            return true;
        }
        match &entry.waker {
            Some(old) if old.will_wake(waker) => {}
            _ => entry.waker = Some(waker.clone()),
        }
        false
    }

    /// Moves `key` to a new deadline (fired or not).
    pub(crate) fn reset(&mut self, key: Key, deadline: u64) {
        self.unlink(key);
        self.entries[key].deadline = deadline;
        if deadline > self.elapsed {
            self.link(key);
        }
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
            let mut link = self.take_slot(level, slot);
            while link != NIL {
                let key = link as Key;
                link = self.entries[key].next;
                self.linked -= 1;
                self.refile(key, fired);
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// Fires every entry at once (shutdown).
    pub(crate) fn fire_all(&mut self, fired: &mut Vec<Waker>) {
        let keys: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_linked())
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.unlink(key);
            fired.extend(self.entries[key].waker.take());
        }
    }

    fn refile(&mut self, key: Key, fired: &mut Vec<Waker>) {
        let entry = &mut self.entries[key];
        entry.level = UNLINKED;
        entry.prev = NIL;
        entry.next = NIL;
        if entry.deadline <= self.elapsed {
            fired.extend(entry.waker.take());
        } else {
            self.link(key);
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
        let link = key as Link;
        let head = self.levels[level].heads[slot];
        if head != NIL {
            self.entries[head as Key].prev = link;
        }
        let entry = &mut self.entries[key];
        entry.level = level as u8;
        entry.slot = slot as u8;
        entry.prev = NIL;
        entry.next = head;
        self.levels[level].heads[slot] = link;
        self.levels[level].occupied |= 1 << slot;
        self.linked += 1;
    }

    fn unlink(&mut self, key: Key) {
        let entry = &mut self.entries[key];
        if !entry.is_linked() {
            return;
        }
        let (level, slot) = (entry.level as usize, entry.slot as usize);
        let (prev, next) = (entry.prev, entry.next);
        entry.level = UNLINKED;
        if prev == NIL {
            self.levels[level].heads[slot] = next;
            if next == NIL {
                self.levels[level].occupied &= !(1 << slot);
            }
        } else {
            self.entries[prev as Key].next = next;
        }
        if next != NIL {
            self.entries[next as Key].prev = prev;
        }
        self.linked -= 1;
    }

    /// Detaches a whole slot's list and returns its head. The caller unlinks each entry
    /// (one pass over the list: each entry is a likely cache miss).
    fn take_slot(&mut self, level: usize, slot: usize) -> Link {
        let head = std::mem::replace(&mut self.levels[level].heads[slot], NIL);
        self.levels[level].occupied &= !(1 << slot);
        head
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
    fn an_entry_fits_in_40_bytes() {
        assert!(std::mem::size_of::<Entry>() <= 40);
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

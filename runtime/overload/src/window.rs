//! A sliding window of time buckets, the building block of the error-rate and P99 windows.
//!
//! The window `span` is cut into `buckets` equal slots; a slot is reused (reset) when the
//! clock has moved a whole span past it, so the window covers the last `span` to within one
//! slot. Memory is fixed; no per-event allocation.

use std::time::Duration;

/// `buckets` slots of `T` covering the last `span`.
#[derive(Debug, Clone)]
pub(crate) struct Buckets<T> {
    slot: Duration,
    /// `(index of the slot since the epoch, value)`.
    slots: Vec<(u64, T)>,
}

impl<T: Default> Buckets<T> {
    /// `span` must be positive and `buckets` at least 1 (callers validate).
    pub(crate) fn new(span: Duration, buckets: usize) -> Buckets<T> {
        let buckets = buckets.max(1);
        let slot = (span / buckets as u32).max(Duration::from_nanos(1));
        Buckets {
            slot,
            slots: (0..buckets).map(|_| (u64::MAX, T::default())).collect(),
        }
    }

    fn index(&self, now: Duration) -> u64 {
        (now.as_nanos() / self.slot.as_nanos()) as u64
    }

    /// The slot for time `now`, reset if it last held an older period.
    pub(crate) fn current(&mut self, now: Duration) -> &mut T {
        let index = self.index(now);
        let len = self.slots.len() as u64;
        let entry = &mut self.slots[(index % len) as usize];
        if entry.0 != index {
            *entry = (index, T::default());
        }
        &mut entry.1
    }

    /// The slots that belong to the window ending at `now`.
    pub(crate) fn live(&self, now: Duration) -> impl Iterator<Item = &T> {
        let index = self.index(now);
        let len = self.slots.len() as u64;
        self.slots
            .iter()
            .filter(move |(i, _)| *i != u64::MAX && *i <= index && index - *i < len)
            .map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_slots_leave_the_window() {
        let ms = Duration::from_millis;
        let mut window: Buckets<u32> = Buckets::new(ms(100), 10);
        *window.current(ms(0)) += 1;
        *window.current(ms(55)) += 2;
        assert_eq!(window.live(ms(99)).sum::<u32>(), 3);
        // At 100 ms the first slot (0..10 ms) is a whole span old.
        assert_eq!(window.live(ms(100)).sum::<u32>(), 2);
        assert_eq!(window.live(ms(300)).sum::<u32>(), 0);
        // Reusing a slot resets it.
        *window.current(ms(1000)) += 5;
        assert_eq!(window.live(ms(1000)).sum::<u32>(), 5);
    }
}

//! Per-P latency history: exponentially weighted moving averages of how long this P's tasks
//! waited in its queues (enqueue to first poll) and how long their polls took.
//!
//! # Writers and readers
//!
//! The M holding the P is the only writer: it loads, blends and stores with relaxed
//! atomics, no read-modify-write. Thieves read with relaxed loads, without locks. A reader
//! sees some recent value of each average, never a torn one (each is one `AtomicU64`), which
//! is all a steering heuristic needs. During a `block_in_place` hand-off the old M may
//! finish its poll and record it while the new M records its own: one of the two updates can
//! be lost, which only makes the average a little staler.
//!
//! # The averages
//!
//! `new = old + (sample - old) / 8` (weight 1/8 per sample, about the last 8 to 16 samples),
//! in integer nanoseconds. The first sample replaces the initial 0 outright so a fresh P
//! does not need 8 samples to leave zero.

use std::sync::atomic::{AtomicU64, Ordering};

/// Shift of the EWMA weight: each sample counts for `1 / 2^EWMA_SHIFT`.
pub const EWMA_SHIFT: u32 = 3;

/// One P's latency history. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct LatencyHistory {
    queue_wait_ns: AtomicU64,
    poll_ns: AtomicU64,
}

impl LatencyHistory {
    /// A history with no samples (both averages 0).
    pub const fn new() -> LatencyHistory {
        LatencyHistory {
            queue_wait_ns: AtomicU64::new(0),
            poll_ns: AtomicU64::new(0),
        }
    }

    /// Records that a task waited `nanos` between its enqueue and its first poll. Only the
    /// holder of the P calls it.
    pub fn record_queue_wait(&self, nanos: u64) {
        blend(&self.queue_wait_ns, nanos);
    }

    /// Records that a poll took `nanos`. Only the holder of the P calls it.
    pub fn record_poll(&self, nanos: u64) {
        blend(&self.poll_ns, nanos);
    }

    /// The average queue wait, in nanoseconds (0: no sample yet).
    pub fn queue_wait_ns(&self) -> u64 {
        self.queue_wait_ns.load(Ordering::Relaxed)
    }

    /// The average poll duration, in nanoseconds (0: no sample yet).
    pub fn poll_ns(&self) -> u64 {
        self.poll_ns.load(Ordering::Relaxed)
    }
}

fn blend(average: &AtomicU64, sample: u64) {
    let old = average.load(Ordering::Relaxed);
    let new = if old == 0 {
        sample
    } else {
        // old + (sample - old) / 8 without going negative: (7 * old + sample) / 8.
        let weighted = old.saturating_mul((1 << EWMA_SHIFT) - 1);
        weighted.saturating_add(sample) >> EWMA_SHIFT
    };
    average.store(new, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_is_taken_as_is_then_blended() {
        let history = LatencyHistory::new();
        history.record_queue_wait(800);
        assert_eq!(history.queue_wait_ns(), 800);
        history.record_queue_wait(0);
        assert_eq!(history.queue_wait_ns(), 700);
        history.record_queue_wait(1500);
        assert_eq!(history.queue_wait_ns(), (7 * 700 + 1500) / 8);
        assert_eq!(history.poll_ns(), 0);
        history.record_poll(40);
        assert_eq!(history.poll_ns(), 40);
    }

    #[test]
    fn converges_to_a_constant_input() {
        let history = LatencyHistory::new();
        history.record_poll(1);
        for _ in 0..200 {
            history.record_poll(10_000);
        }
        assert!(history.poll_ns() > 9_900, "{}", history.poll_ns());
    }
}

//! Timestamps of sampled schedules, for the latency probes: nanoseconds since a
//! process-wide epoch.
//!
//! Reading the clock (`Instant::now`, a vDSO call) costs tens of nanoseconds here, about a
//! third of a trivial task's whole spawn-poll-complete cycle, so only one schedule in
//! [`SAMPLE_INTERVAL`] per thread is stamped. A stamped task's first poll is timed too
//! (queue wait and poll duration feed the P's `LatencyHistory`); the other polls read no
//! clock at all. The EWMAs only need a steady trickle of samples, and a P running many
//! tasks gets them.
//!
//! Stamps are never 0 (0 means "not sampled" in the task header), so the clock starts at 1.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

/// One schedule in this many (per thread) gets a timestamp, unless the runtime's builder
/// says otherwise (`Builder::probe_sampling`).
pub(crate) const SAMPLE_INTERVAL: u32 = 16;

/// Nanoseconds since the runtime epoch, plus one (never 0).
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

/// `now_ns()` for one call in `every` on this thread, else 0 (always 0 when `every` is 0).
pub(crate) fn sample_ns(every: u32) -> u64 {
    thread_local! {
        /// Schedules to skip before the next sample (a countdown: no division per call).
        static LEFT: Cell<u32> = const { Cell::new(0) };
    }
    if every == 0 {
        return 0;
    }
    let due = LEFT.with(|left| match left.get() {
        0 => {
            left.set(every - 1);
            true
        }
        n => {
            left.set(n - 1);
            false
        }
    });
    if due {
        now_ns()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_non_zero_and_monotonic() {
        let a = now_ns();
        let b = now_ns();
        assert!(a >= 1 && b >= a);
    }

    #[test]
    fn one_call_in_the_interval_is_sampled() {
        let sampled = (0..SAMPLE_INTERVAL * 4)
            .filter(|_| sample_ns(SAMPLE_INTERVAL) != 0)
            .count();
        assert_eq!(sampled, 4);
        assert!((0..100).all(|_| sample_ns(0) == 0));
        assert!((0..100).all(|_| sample_ns(1) != 0));
    }
}

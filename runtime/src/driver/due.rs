//! Whether a new timer's deadline has already passed, mostly without reading the precise
//! clock.
//!
//! A timer registers on its first poll, and one whose deadline has passed completes at
//! once instead of waiting for the next turn of the wheel. Asking `Instant::now()` costs a
//! precise clock read (about 23 ns here, a `rdtsc` through the vDSO), which on a timeout
//! per request was a sixth of the runtime's CPU time under many timers (every iteration read
//! the clock six times, tokio four). Linux's `CLOCK_MONOTONIC_COARSE` is the same clock as
//! `Instant`'s, read from the vDSO data page without `rdtsc` (about 3 ns), but it lags the
//! precise clock by up to its resolution (one scheduler tick, 4 ms here). So:
//!
//! * deadline tick `<=` the coarse tick: due (the coarse clock never runs ahead);
//! * deadline tick more than the resolution (plus two ticks of rounding) past the coarse
//!   tick: not due;
//! * in between: ask the precise clock.
//!
//! Only the answer "due" must never be wrong (a timer must not complete early), and it
//! comes from a clock that lags. "Not due" when it was due (a coarse clock lagging more
//! than its resolution, say on a `nohz_full` CPU) only delays the timer to the next turn of
//! the wheel, as tokio always does (it compares with the wheel's last turn, never the
//! clock).

use std::time::Instant;

/// The due check of one runtime's timers; ticks are milliseconds since `start`.
#[derive(Debug)]
pub(crate) struct DueCheck {
    /// `CLOCK_MONOTONIC` read just after the runtime's `start` instant: never earlier than
    /// `start`, so coarse ticks computed from it never run ahead of `start`'s ticks.
    start_ns: u64,
    /// How far (ticks) a deadline must lie past the coarse tick to be surely not due.
    slack: u64,
}

impl DueCheck {
    /// The check for ticks counted from `start` (call right after reading `start`).
    pub(crate) fn new() -> DueCheck {
        let resolution_ms = coarse_resolution_ns().div_ceil(1_000_000);
        DueCheck {
            start_ns: precise_ns(),
            slack: resolution_ms + 2,
        }
    }

    /// Whether `deadline`, whose tick (rounded up) is `tick`, has passed.
    pub(crate) fn is_due(&self, tick: u64, deadline: Instant) -> bool {
        let coarse = coarse_ns().saturating_sub(self.start_ns) / 1_000_000;
        if tick <= coarse {
            return true;
        }
        if tick > coarse.saturating_add(self.slack) {
            return false;
        }
        deadline <= Instant::now()
    }
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; clock_gettime only writes into it, and
    // with a clock id the kernel supports (both used here exist since Linux 2.6.32) it
    // cannot fail.
    unsafe { libc::clock_gettime(clock, &mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

fn precise_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

fn coarse_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

fn coarse_resolution_ns() -> u64 {
    let mut resolution = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as in `read`; clock_getres only writes into `resolution`.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut resolution) };
    if rc != 0 {
        // Unknown resolution: a slack of a second still answers "not due" for most
        // timeouts and asks the precise clock for the rest.
        return 1_000_000_000;
    }
    u64::try_from(resolution.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(resolution.tv_nsec).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tick_of(start: Instant, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(start);
        since.as_millis() as u64 + u64::from(!since.subsec_nanos().is_multiple_of(1_000_000))
    }

    #[test]
    fn past_deadlines_are_due_and_far_ones_are_not() {
        let start = Instant::now();
        let due = DueCheck::new();
        let now = Instant::now();
        assert!(due.is_due(tick_of(start, start), start));
        assert!(
            due.is_due(tick_of(start, now), now),
            "a deadline of now is due"
        );
        let far = now + Duration::from_secs(5);
        assert!(!due.is_due(tick_of(start, far), far));
        let soon = now + Duration::from_millis(2);
        assert!(
            !due.is_due(tick_of(start, soon), soon),
            "2 ms ahead is not due yet"
        );
    }

    #[test]
    fn the_coarse_clock_never_runs_ahead_of_instant() {
        let start = Instant::now();
        let due = DueCheck::new();
        for _ in 0..10_000 {
            let coarse = coarse_ns().saturating_sub(due.start_ns) / 1_000_000;
            let precise = start.elapsed().as_millis() as u64;
            assert!(coarse <= precise, "coarse tick {coarse} ahead of {precise}");
        }
    }
}

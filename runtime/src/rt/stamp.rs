//! Timestamps of sampled schedules, for the latency probes: ticks of the cheapest monotonic
//! clock the machine has, converted to nanoseconds only when a difference is recorded.
//!
//! # The clock
//!
//! Measured on the project's 2-core KVM machine (AMD EPYC, kernel clocksource `tsc`), one
//! read in a loop of 10 M, best of 5 (`bench/examples/clock_cost.rs`, docs/BENCHMARKS.md):
//! `Instant::now` about 30 ns, `clock_gettime(CLOCK_MONOTONIC)` 25 ns, the TSC (`rdtsc`)
//! 9-13 ns, `CLOCK_MONOTONIC_COARSE` 4-8 ns but at a 4 ms resolution (a queue wait is
//! microseconds: useless here). So:
//!
//! * **TSC** when it is a clock: x86-64, the CPU says `constant_tsc` and `nonstop_tsc` (it
//!   ticks at one rate through frequency changes and sleep states), and the kernel chose
//!   `tsc` as its clocksource (it checked that the cores' counters agree; on a machine where
//!   they do not, the kernel falls back to another source and so do we). Calibrated once
//!   per process against `Instant` over [`CALIBRATION`] of spinning: the error of the two
//!   reads at each end, well under a microsecond, is under 0.1% of the rate.
//! * **`clock_gettime(CLOCK_MONOTONIC)`** otherwise (and under Miri): the clock `Instant`
//!   reads, without `Instant`'s conversions.
//!
//! Reading even the TSC costs about a tenth of a trivial task's spawn-poll-complete cycle,
//! so only one schedule in [`SAMPLE_INTERVAL`] per thread is stamped. A stamped task's first
//! poll is timed too (queue wait and poll duration feed the P's `LatencyHistory`); the other
//! polls read no clock at all. The EWMAs only need a steady trickle of samples, and a P
//! running many tasks gets them.
//!
//! Stamps are never 0 (0 means "not sampled" in the task header): ticks count from the
//! process's first stamp, plus one. Two stamps taken on different cores may be a few ticks
//! out of order; differences saturate at 0.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One schedule in this many (per thread) gets a timestamp, unless the runtime's builder
/// says otherwise (`Builder::probe_sampling`). At 1 in 32 the probes cost at most 2% more
/// instructions than probes off on tokio's scheduler workloads (1 in 16: up to 3%; Go times
/// 1 in 8 goroutine transitions); a P running 100k schedules a second still takes 3k
/// samples a second (docs/BENCHMARKS.md, "Probes at the floor").
pub(crate) const SAMPLE_INTERVAL: u32 = 32;

/// How long the TSC is timed against `Instant` at the process's first stamp.
const CALIBRATION: Duration = Duration::from_micros(500);

/// The clock chosen for this process.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Whether ticks are the TSC's (else nanoseconds of `CLOCK_MONOTONIC`).
    tsc: bool,
    /// The raw reading at the epoch.
    origin: u64,
    /// Nanoseconds per tick in 32.32 fixed point (a multiply and a shift per conversion;
    /// `u64 <-> f64` conversions cost a dozen instructions each on x86-64).
    ns_per_tick: u64,
}

/// 1.0 in [`Clock::ns_per_tick`]'s fixed point.
const ONE: u64 = 1 << 32;

fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(Clock::choose)
}

impl Clock {
    fn choose() -> Clock {
        match tsc_is_a_clock() {
            true => Clock::calibrated_tsc(),
            false => Clock {
                tsc: false,
                origin: monotonic_ns(),
                ns_per_tick: ONE,
            },
        }
    }

    /// Times the TSC against `Instant` for [`CALIBRATION`].
    fn calibrated_tsc() -> Clock {
        let (start, origin) = (Instant::now(), read_tsc());
        let (elapsed, ticks) = loop {
            let (elapsed, ticks) = (start.elapsed(), read_tsc().wrapping_sub(origin));
            if elapsed >= CALIBRATION {
                break (elapsed, ticks);
            }
            std::hint::spin_loop();
        };
        Clock {
            tsc: true,
            origin,
            ns_per_tick: (elapsed.as_nanos() as f64 / ticks.max(1) as f64 * ONE as f64) as u64,
        }
    }

    #[inline]
    fn raw(&self) -> u64 {
        if self.tsc {
            read_tsc()
        } else {
            monotonic_ns()
        }
    }
}

/// Whether the TSC ticks at a constant rate, in sleep states too, and the kernel trusts it
/// across cores (module docs).
fn tsc_is_a_clock() -> bool {
    if cfg!(miri) || !cfg!(target_arch = "x86_64") {
        return false;
    }
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo");
    match (source, cpuinfo) {
        (Ok(source), Ok(cpuinfo)) => {
            let flags = cpuinfo
                .lines()
                .find(|line| line.starts_with("flags"))
                .unwrap_or("");
            let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
            source.trim() == "tsc" && has("constant_tsc") && has("nonstop_tsc")
        }
        _ => false,
    }
}

#[inline]
fn read_tsc() -> u64 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: `rdtsc` has no preconditions; every x86-64 CPU has it (it is only called
        // once `tsc_is_a_clock` said the TSC is usable as a clock, but reading it is sound
        // regardless).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        monotonic_ns()
    }
}

#[inline]
fn monotonic_ns() -> u64 {
    #[cfg(not(miri))]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC exists on every
        // platform gpm builds on, so the call cannot fail (it would leave `now` at 0).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        (now.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(now.tv_nsec as u64)
    }
    #[cfg(miri)]
    {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// A stamp: ticks since the epoch, plus one (never 0).
#[inline]
pub(crate) fn now() -> u64 {
    let clock = clock();
    clock.raw().wrapping_sub(clock.origin).wrapping_add(1)
}

/// Nanoseconds from stamp `earlier` to stamp `later` (0 if they are out of order).
#[inline]
pub(crate) fn ns_between(earlier: u64, later: u64) -> u64 {
    let ticks = later.saturating_sub(earlier) as u128;
    ((ticks * clock().ns_per_tick as u128) >> 32) as u64
}

/// Nanoseconds since stamp `earlier`.
#[inline]
pub(crate) fn ns_since(earlier: u64) -> u64 {
    ns_between(earlier, now())
}

/// `now()` for one call in `every` on this thread, else 0 (always 0 when `every` is 0).
/// An M counts down in its own [`Countdown`] instead (no thread-local lookup).
#[inline]
pub(crate) fn sample(every: u32) -> u64 {
    thread_local! {
        static LEFT: Countdown = const { Countdown::new() };
    }
    LEFT.with(|left| left.sample(every))
}

/// With sampling off, how many calls a countdown skips before it reads `every` again.
const OFF_RECHECK: u32 = 1024;

/// Calls left until the next sample: a countdown, no division per call. An unsampled call
/// is a load, a compare and a store; `every` is only read when the count runs out.
#[derive(Debug)]
pub(crate) struct Countdown(Cell<u32>);

impl Countdown {
    pub(crate) const fn new() -> Countdown {
        Countdown(Cell::new(0))
    }

    /// `now()` for one call in `every`, else 0 (always 0 when `every` is 0).
    #[inline]
    pub(crate) fn sample(&self, every: u32) -> u64 {
        let left = self.0.get();
        if left > 1 {
            self.0.set(left - 1);
            return 0;
        }
        self.restart(every)
    }

    /// The count ran out: this call is the sample, and the next one is `every` calls away
    /// (with sampling off, [`OFF_RECHECK`] calls away, to ask again then: the thread-local
    /// countdown of a thread that is not an M serves whichever runtime it enters, so a
    /// change of `every` is followed within the old interval).
    #[cold]
    fn restart(&self, every: u32) -> u64 {
        if every == 0 {
            self.0.set(OFF_RECHECK);
            return 0;
        }
        self.0.set(every);
        now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_countdown_samples_one_call_in_every() {
        for every in [1, 2, 16] {
            let countdown = Countdown::new();
            let sampled: Vec<bool> = (0..every * 4)
                .map(|_| countdown.sample(every) != 0)
                .collect();
            let expected: Vec<bool> = (0..every * 4).map(|i| i % every == 0).collect();
            assert_eq!(sampled, expected, "every {every}");
        }
        let off = Countdown::new();
        assert!((0..1000).all(|_| off.sample(0) == 0));
    }

    #[test]
    fn stamps_are_non_zero_and_monotonic_on_one_thread() {
        let a = now();
        let b = now();
        assert!(a >= 1 && b >= a);
    }

    #[test]
    fn differences_are_nanoseconds_of_the_monotonic_clock() {
        // A stamp difference over a measured span agrees with `Instant` within 5% (the
        // calibration is within 0.1%; the margin is for the reads around the span).
        // `Instant` reads bracket each stamp, so a preemption anywhere widens the bounds
        // instead of failing the test.
        let (outer, stamp, inner) = (Instant::now(), now(), Instant::now());
        while inner.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let shortest = inner.elapsed().as_nanos() as f64;
        let stamped = ns_since(stamp) as f64;
        let longest = outer.elapsed().as_nanos() as f64;
        assert!(
            (0.95 * shortest..=1.05 * longest).contains(&stamped),
            "{stamped} ns, not within [{shortest}, {longest}] ns"
        );
        assert_eq!(ns_between(stamp + 10, stamp), 0, "out of order saturates");
    }

    #[test]
    fn one_call_in_the_interval_is_sampled() {
        let sampled = (0..SAMPLE_INTERVAL * 4)
            .filter(|_| sample(SAMPLE_INTERVAL) != 0)
            .count();
        assert_eq!(sampled, 4);
        assert!((0..100).all(|_| sample(0) == 0));
        // Sampling switched on: followed within the countdown's re-check interval.
        let calls = 2 * OFF_RECHECK as usize;
        let sampled = (0..calls).filter(|_| sample(1) != 0).count();
        assert!(sampled >= calls - OFF_RECHECK as usize, "{sampled}");
    }
}

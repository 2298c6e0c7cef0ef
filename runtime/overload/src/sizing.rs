//! Sizing a pool of threads by Little's law: `ceil(lambda * S)` threads, with hysteresis.
//!
//! # The rule
//!
//! Jobs arrive at `lambda` per second and each keeps a thread for `S` seconds on average,
//! so `lambda * S` threads are busy on average (Little's law applied to the threads). The
//! sizer measures both over each `window` and sets the size to
//!
//! ```text
//! target = clamp(ceil(lambda * S), min, max)
//! ```
//!
//! * `lambda` is the *arrival* rate, not the completion rate: at its size a pool completes
//!   no more than the size allows, so a completion rate would never let it grow. Jobs
//!   still waiting from earlier windows count as arrivals again (a backlog is demand not
//!   yet served): otherwise a burst that arrived in one window would let the pool shrink
//!   while most of it still queues.
//! * `S` is the mean time jobs held a thread, counting the jobs still running at the end
//!   of the window with the time they have run so far (a lower bound of theirs). Without
//!   them, a pool whose threads are all stuck in long jobs would see no completion, keep its
//!   old `S` and never grow, and the jobs queued behind would wait for ever.
//! * A window with arrivals but nothing run yet keeps the last known `S`.
//!
//! # Hysteresis
//!
//! Grow at once, shrink late. A target above the size applies immediately, at the end of
//! the window, and even within it: each arrival checks the arrivals so far against the
//! last `S` (a lower bound of this window's `lambda`). A target below the size applies only
//! after every window of a whole `shrink_after` has asked for less, and then to the largest
//! of those targets: a pool that sheds threads in a lull must start them again when the
//! lull ends, which costs more than keeping them for a while.
//!
//! # Pure logic
//!
//! The sizer holds no clock and no lock: every call takes the time (a `Duration` since any
//! fixed origin, e.g. [`Clock::now`](crate::Clock::now)) and the caller serialises the
//! calls (gpm's blocking pool calls it under the pool's lock). Tests drive it with a
//! [`ManualClock`](crate::ManualClock).

use super::limiter::servers_needed;
use super::ConfigError;
use std::time::Duration;

/// The sizer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSizingConfig {
    /// The smallest size (at least 1: a pool of none would never run a job to measure).
    pub min: usize,
    /// The largest size (at least `min`).
    pub max: usize,
    /// Measurement window (positive).
    pub window: Duration,
    /// How long every window must ask for less before the pool shrinks (0: at once).
    pub shrink_after: Duration,
}

impl PoolSizingConfig {
    /// Sizes within `[min, max]`, 100 ms windows, shrinking after 1 s of lower targets.
    pub fn new(min: usize, max: usize) -> PoolSizingConfig {
        PoolSizingConfig {
            min,
            max,
            window: Duration::from_millis(100),
            shrink_after: Duration::from_secs(1),
        }
    }

    /// Checks the settings; the error names the field.
    ///
    /// ```
    /// use gpm_overload::PoolSizingConfig;
    ///
    /// assert!(PoolSizingConfig::new(1, 8).validate().is_ok());
    /// assert_eq!(PoolSizingConfig::new(4, 2).validate().unwrap_err().field, "min/max");
    /// assert_eq!(PoolSizingConfig::new(0, 0).validate().unwrap_err().field, "max");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max == 0 {
            return Err(ConfigError::new("max", "must be at least 1"));
        }
        if self.min == 0 {
            return Err(ConfigError::new(
                "min",
                "must be at least 1 (a pool of no thread never runs a job)",
            ));
        }
        if self.min > self.max {
            return Err(ConfigError::new("min/max", "need min <= max"));
        }
        if self.window.is_zero() {
            return Err(ConfigError::new("window", "must be positive"));
        }
        Ok(())
    }
}

/// The state machine of the module docs.
///
/// ```
/// use gpm_overload::{Clock, ManualClock, PoolSizer, PoolSizingConfig};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let mut sizer = PoolSizer::new(PoolSizingConfig::new(1, 64), clock.now()).unwrap();
/// // 40 jobs in 100 ms (400/s), four at a time, each holding a thread 10 ms: 4 threads.
/// for _ in 0..10 {
///     let started = clock.now();
///     for _ in 0..4 {
///         sizer.arrival(started);
///         sizer.started(started);
///     }
///     clock.advance(Duration::from_millis(10));
///     for _ in 0..4 {
///         sizer.finished(clock.now(), started);
///     }
/// }
/// assert_eq!(sizer.update(clock.now()), 4);
/// ```
#[derive(Debug, Clone)]
pub struct PoolSizer {
    config: PoolSizingConfig,
    size: usize,
    /// The last window's target, if one ended.
    target: Option<usize>,
    window_start: Duration,
    arrivals: u64,
    completions: u64,
    /// Service of the jobs completed in this window.
    service: Duration,
    /// Jobs arrived and not started, now and when this window began.
    waiting: usize,
    backlog: usize,
    /// Jobs running now, and the sum of their start times (their ages in O(1)).
    running: usize,
    running_starts: Duration,
    /// The last window's mean service, seconds.
    mean_service_s: Option<f64>,
    /// Since when every window asked for less than the size, and the most they asked.
    lower: Option<(Duration, usize)>,
}

impl PoolSizer {
    /// A sizer at `config.min`, its first window starting at `now`.
    pub fn new(config: PoolSizingConfig, now: Duration) -> Result<PoolSizer, ConfigError> {
        config.validate()?;
        Ok(PoolSizer {
            size: config.min,
            config,
            target: None,
            window_start: now,
            arrivals: 0,
            completions: 0,
            service: Duration::ZERO,
            waiting: 0,
            backlog: 0,
            running: 0,
            running_starts: Duration::ZERO,
            mean_service_s: None,
            lower: None,
        })
    }

    /// The size now.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The target of the last window that ended (`None` before the first).
    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// Jobs running (started and not finished).
    pub fn running(&self) -> usize {
        self.running
    }

    /// The settings.
    pub fn config(&self) -> &PoolSizingConfig {
        &self.config
    }

    /// A job arrived at `now`; returns the size (grown at once if the arrivals of this
    /// window already need more at the last known `S`).
    pub fn arrival(&mut self, now: Duration) -> usize {
        self.update(now);
        self.arrivals += 1;
        self.waiting += 1;
        if let Some(service_s) = self.mean_service_s {
            let offered = self.arrivals + self.backlog as u64;
            let lambda = offered as f64 / self.config.window.as_secs_f64();
            let wanted = servers_needed(lambda * service_s, self.config.min, self.config.max);
            if wanted > self.size {
                self.size = wanted;
                self.lower = None;
            }
        }
        self.size
    }

    /// A job started running at `now` (pass the same `now` to [`finished`](Self::finished)).
    pub fn started(&mut self, now: Duration) -> usize {
        self.update(now);
        self.waiting = self.waiting.saturating_sub(1);
        self.running += 1;
        self.running_starts += now;
        self.size
    }

    /// The job that started at `started` finished at `now`.
    pub fn finished(&mut self, now: Duration, started: Duration) -> usize {
        self.update(now);
        self.running = self.running.saturating_sub(1);
        self.running_starts = self.running_starts.saturating_sub(started);
        self.completions += 1;
        self.service += now.saturating_sub(started);
        self.size
    }

    /// Closes every window that ended by `now`; returns the size.
    pub fn update(&mut self, now: Duration) -> usize {
        let window = self.config.window;
        let Some(end) = self.window_start.checked_add(window) else {
            return self.size;
        };
        if now < end {
            return self.size;
        }
        self.close_window(end);
        // Windows wholly inside the gap had no event: with nothing waiting each asks for
        // `min`, and they are judged together (a long idle gap costs one step, not one
        // per window).
        let idle = now.saturating_sub(end);
        let idle_windows = idle.as_nanos() / window.as_nanos();
        if idle_windows > 0 && self.waiting > 0 {
            // Nothing happened, yet jobs wait (none could start): each of those windows
            // offered the backlog again. One more window judges it; the rest are skipped.
            self.window_start = end;
            self.close_window(end + window);
            self.window_start = now.saturating_sub(Duration::from_nanos(
                u64::try_from(idle.as_nanos() % window.as_nanos()).unwrap_or(0),
            ));
        } else if idle_windows > 0 {
            let last_end =
                end + window.saturating_mul(u32::try_from(idle_windows).unwrap_or(u32::MAX));
            self.judge(self.config.min, end + window, last_end);
            self.window_start = last_end;
        } else {
            self.window_start = end;
        }
        self.size
    }

    /// Ends the window at `end`: the target from its arrivals and service.
    fn close_window(&mut self, end: Duration) {
        let running_age = (end.saturating_mul(u32::try_from(self.running).unwrap_or(u32::MAX)))
            .saturating_sub(self.running_starts);
        let jobs = self.completions + self.running as u64;
        if jobs > 0 {
            self.mean_service_s = Some((self.service + running_age).as_secs_f64() / jobs as f64);
        }
        let offered = self.arrivals + self.backlog as u64;
        let lambda = offered as f64 / self.config.window.as_secs_f64();
        let target = servers_needed(
            lambda * self.mean_service_s.unwrap_or(0.0),
            self.config.min,
            self.config.max,
        );
        self.arrivals = 0;
        self.backlog = self.waiting;
        self.completions = 0;
        self.service = Duration::ZERO;
        self.judge(target, end, end);
    }

    /// Applies `target`, asked for by the windows that ended from `first_end` to
    /// `last_end`.
    fn judge(&mut self, target: usize, first_end: Duration, last_end: Duration) {
        self.target = Some(target);
        if target >= self.size {
            self.size = target;
            self.lower = None;
            return;
        }
        let (since, most) = match self.lower {
            Some((since, most)) => (since, most.max(target)),
            // The first lower window began one window before it ended.
            None => (first_end.saturating_sub(self.config.window), target),
        };
        if last_end.saturating_sub(since) >= self.config.shrink_after {
            self.size = most;
            self.lower = None;
        } else {
            self.lower = Some((since, most));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, ManualClock};

    const MS: Duration = Duration::from_millis(1);

    /// min 1, max 32, 100 ms windows, shrink after 300 ms.
    fn sizer(clock: &ManualClock) -> PoolSizer {
        let config = PoolSizingConfig {
            shrink_after: 300 * MS,
            ..PoolSizingConfig::new(1, 32)
        };
        PoolSizer::new(config, clock.now()).unwrap()
    }

    /// One 100 ms window of `n` jobs, each arriving, running `s` and finishing in turn
    /// (one after the other, so `s * n` must fit in the window); returns the size after.
    fn window(sizer: &mut PoolSizer, clock: &ManualClock, n: u32, s: Duration) -> usize {
        let start = clock.now();
        for _ in 0..n {
            sizer.arrival(clock.now());
            let started = clock.now();
            sizer.started(started);
            clock.advance(s);
            sizer.finished(clock.now(), started);
        }
        clock.advance((start + 100 * MS).saturating_sub(clock.now()));
        sizer.update(clock.now())
    }

    #[test]
    fn the_size_is_ceil_lambda_s_clamped() {
        let clock = ManualClock::new();
        let mut sizer = sizer(&clock);
        assert_eq!(sizer.size(), 1);
        assert_eq!(sizer.target(), None);
        // 20 jobs in 100 ms (200/s) of 2 ms: 0.4 -> 1; 45 of 2 ms: 0.9 -> 1.
        assert_eq!(window(&mut sizer, &clock, 20, 2 * MS), 1);
        assert_eq!(window(&mut sizer, &clock, 45, 2 * MS), 1);
        assert_eq!(sizer.target(), Some(1));
        // Arrivals that queue, not run: 10^5/s at S = 2 ms wants 200 threads, max is 32.
        for _ in 0..10_000 {
            sizer.arrival(clock.now());
        }
        assert_eq!(sizer.size(), 32);
    }

    #[test]
    fn it_grows_at_once_within_the_window() {
        let clock = ManualClock::new();
        let mut sizer = sizer(&clock);
        // Learn S = 10 ms (5 jobs in a window: 50/s * 10 ms = 0.5 -> 1).
        assert_eq!(window(&mut sizer, &clock, 5, 10 * MS), 1);
        // A burst: the 21st arrival in this window means >= 210/s * 10 ms = 2.1: 3 threads,
        // before the window ends.
        for arrival in 1..=40u32 {
            let size = sizer.arrival(clock.now());
            let expected = (f64::from(arrival) * 10.0 / 100.0).ceil().max(1.0) as usize;
            assert_eq!(size, expected, "after {arrival} arrivals");
        }
        assert_eq!(sizer.size(), 4);
    }

    #[test]
    fn it_shrinks_only_after_every_window_of_the_hold_asked_for_less() {
        let clock = ManualClock::new();
        let mut sizer = sizer(&clock);
        // 8 threads: 80 jobs of 10 ms per 100 ms, i.e. 800/s * 10 ms. Jobs overlap here:
        // start 8, finish 8, ten times.
        let busy = |sizer: &mut PoolSizer, clock: &ManualClock, k: usize| {
            let start = clock.now();
            for _ in 0..10 {
                let begun: Vec<_> = (0..k)
                    .map(|_| {
                        sizer.arrival(clock.now());
                        sizer.started(clock.now());
                        clock.now()
                    })
                    .collect();
                clock.advance(10 * MS);
                for started in begun {
                    sizer.finished(clock.now(), started);
                }
            }
            clock.advance((start + 100 * MS).saturating_sub(clock.now()));
            sizer.update(clock.now())
        };
        assert_eq!(busy(&mut sizer, &clock, 8), 8);
        // Half the load: 4 wanted, but the size holds for 300 ms ...
        assert_eq!(busy(&mut sizer, &clock, 4), 8);
        assert_eq!(busy(&mut sizer, &clock, 4), 8);
        // ... a window that wants 8 again resets the hold ...
        assert_eq!(busy(&mut sizer, &clock, 8), 8);
        assert_eq!(busy(&mut sizer, &clock, 2), 8);
        assert_eq!(busy(&mut sizer, &clock, 3), 8);
        // ... and after three lower windows in a row it shrinks to the most they asked for.
        assert_eq!(busy(&mut sizer, &clock, 2), 3);
        assert_eq!(sizer.target(), Some(2));
        // Growing is at once again.
        assert_eq!(busy(&mut sizer, &clock, 6), 6);
    }

    #[test]
    fn a_backlog_keeps_the_size_up_until_it_is_served() {
        let clock = ManualClock::new();
        // No hold: only the backlog keeps the size up.
        let config = PoolSizingConfig {
            shrink_after: Duration::ZERO,
            ..PoolSizingConfig::new(1, 8)
        };
        let mut sizer = PoolSizer::new(config, clock.now()).unwrap();
        // 300 jobs of 10 ms arrive at once, then none; the pool runs `size` at a time.
        for _ in 0..300 {
            sizer.arrival(clock.now());
        }
        let (mut waiting, mut sizes) = (300, Vec::new());
        while waiting > 0 {
            let n = sizer.size().min(waiting);
            let started = clock.now();
            for _ in 0..n {
                sizer.started(started);
            }
            clock.advance(10 * MS);
            for _ in 0..n {
                sizer.finished(clock.now(), started);
            }
            waiting -= n;
            sizes.push(sizer.size());
        }
        // One at a time for the first window; then 300 offered x 10 ms wants 30: max 8.
        // The later windows have no arrival, but 290, 210, 130 jobs still wait: they are
        // offered again, and the pool stays at 8 until the backlog is served.
        assert_eq!(sizes[..9], [1; 9]);
        assert!(sizes[9..].iter().all(|&size| size == 8), "{sizes:?}");
        assert_eq!(sizes.len(), 10 + 37);
        // Served: the window that began with the last 50 waiting asks for 5; the next
        // offers nothing and the size drops to min.
        clock.advance(200 * MS);
        assert_eq!(sizer.update(clock.now()), 1);
    }

    #[test]
    fn an_idle_gap_counts_as_windows_asking_for_min() {
        let clock = ManualClock::new();
        let mut sizer = sizer(&clock);
        for _ in 0..12 {
            sizer.arrival(clock.now());
            sizer.started(clock.now());
        }
        clock.advance(100 * MS);
        // 12 jobs still running for 100 ms: S >= 100 ms, 120/s -> 12.
        assert_eq!(sizer.update(clock.now()), 12);
        // 10 s of nothing (the jobs finish at once): one step, shrunk to min.
        let started = clock.now() - 100 * MS;
        for _ in 0..12 {
            sizer.finished(clock.now(), started);
        }
        clock.advance(Duration::from_secs(10));
        assert_eq!(sizer.update(clock.now()), 1);
    }

    #[test]
    fn jobs_stuck_running_make_it_grow() {
        let clock = ManualClock::new();
        let mut sizer = sizer(&clock);
        // Jobs that never end, one arriving every 10 ms; the pool starts waiting jobs while
        // it runs fewer than its size. No job ever completes: only the running jobs' ages
        // tell the sizer what S is (without them it would stay at 1 and the queue would
        // wait for ever behind the first job).
        let mut waiting = 0;
        let mut sizes = Vec::new();
        for step in 1..=60 {
            sizer.arrival(clock.now());
            waiting += 1;
            while waiting > 0 && sizer.running() < sizer.size() {
                sizer.started(clock.now());
                waiting -= 1;
            }
            clock.advance(10 * MS);
            if step % 10 == 0 {
                sizes.push(sizer.update(clock.now()));
            }
        }
        assert!(sizes[0] > 1, "{sizes:?}");
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
        assert_eq!(sizes.last(), Some(&32), "{sizes:?}");
    }

    #[test]
    fn bad_settings_name_their_field() {
        let field =
            |config: PoolSizingConfig| PoolSizer::new(config, Duration::ZERO).unwrap_err().field;
        assert_eq!(field(PoolSizingConfig::new(3, 2)), "min/max");
        assert_eq!(field(PoolSizingConfig::new(0, 0)), "max");
        assert_eq!(field(PoolSizingConfig::new(0, 4)), "min");
        let no_window = PoolSizingConfig {
            window: Duration::ZERO,
            ..PoolSizingConfig::new(1, 4)
        };
        assert_eq!(field(no_window), "window");
    }
}

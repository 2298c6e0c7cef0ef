//! P99-driven admission: stop taking new work while the tail latency is over its target.
//!
//! Latencies of completed work go into a sliding window of HDR histograms
//! (`window` cut into `buckets` slots; microsecond resolution, 2 significant digits, up to
//! an hour). While the window's P99 is at most `target`, new work is admitted at once.
//!
//! While the window holds fewer than `min_samples` values (too few for a 99th percentile:
//! at start, or after the gate was shut long enough for the window to empty) the controller
//! *probes*: it admits work only while fewer than `min_samples` admitted items have not
//! reported their latency yet. Admitting everything there would be a flood each time the
//! window empties (we measured exactly that: a bang-bang gate with a P99 20 times the
//! target); refusing everything would never refill the window. The price: every admitted
//! item must be [`record`](P99Admission::record)ed, or the probe budget leaks.
//! Above the target, new work waits in a bounded FIFO queue of `queue_capacity` items; when
//! that is full, it is refused with [`Rejected`], which gives the item back with the P99
//! that caused the refusal. Queued items come out of [`P99Admission::drain_ready`] once the
//! P99 is back at or under the target, oldest first, up to `release_batch` per call.
//!
//! The P99 is recomputed (merging the slots) at most once per `refresh`, since merging is
//! the expensive part; decisions in between use the cached value. With a [`ManualClock`]
//! this is exact: the tests move the clock past `refresh` to see a new value.
//!
//! Rejected options: dropping the *oldest* queued item instead of the newest (better for
//! freshness, but the caller then needs a second channel for the dropped item); a token
//! bucket (limits rate, not latency).
//!
//! [`ManualClock`]: super::ManualClock

use super::window::Buckets;
use super::{Clock, ConfigError};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Largest latency recorded, microseconds (one hour); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

/// The admission controller's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionConfig {
    /// The P99 objective.
    pub target_p99: Duration,
    /// The latency window (positive).
    pub window: Duration,
    /// Slots of the window (at least 1).
    pub buckets: usize,
    /// Values needed in the window before the P99 counts (at least 1).
    pub min_samples: u64,
    /// Items that may wait while over target (0: refuse at once).
    pub queue_capacity: usize,
    /// Largest number of items one `drain_ready` call releases (at least 1).
    pub release_batch: usize,
    /// How often the P99 is recomputed.
    pub refresh: Duration,
}

impl AdmissionConfig {
    /// Target `target_p99`, a 1 s window in 10 slots, 100 samples, no queue, released 64 at
    /// a time, refreshed every 10 ms.
    pub fn new(target_p99: Duration) -> AdmissionConfig {
        AdmissionConfig {
            target_p99,
            window: Duration::from_secs(1),
            buckets: 10,
            min_samples: 100,
            queue_capacity: 0,
            release_batch: 64,
            refresh: Duration::from_millis(10),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.window.is_zero() || self.buckets == 0 {
            return Err(ConfigError::new("window/buckets", "must be positive"));
        }
        if self.min_samples == 0 || self.release_batch == 0 {
            return Err(ConfigError::new(
                "min_samples/release_batch",
                "must be at least 1",
            ));
        }
        if self.target_p99.is_zero() {
            return Err(ConfigError::new("target_p99", "must be positive"));
        }
        Ok(())
    }
}

/// What happened to an offered item.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Run it now.
    Run(T),
    /// It waits in the queue; it will come out of `drain_ready`.
    Queued,
}

/// New work refused: P99 over target (or probing, see the module docs) and the queue full.
#[derive(PartialEq, Eq)]
pub struct Rejected<T> {
    /// The refused item, given back.
    pub item: T,
    /// The P99 that caused it; `None` while probing with too few samples.
    pub p99: Option<Duration>,
    /// The target.
    pub target: Duration,
    /// Items waiting.
    pub queued: usize,
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("p99", &self.p99)
            .field("target", &self.target)
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.p99 {
            Some(p99) => write!(
                f,
                "overloaded: P99 latency {p99:?} is over the target {:?} and {} items already wait",
                self.target, self.queued
            ),
            None => write!(
                f,
                "overloaded: probing the latency (too few samples for a P99 against the target \
                 {:?}) and {} items already wait",
                self.target, self.queued
            ),
        }
    }
}

impl<T> std::error::Error for Rejected<T> {}

/// One slot of the latency window.
#[derive(Debug, Clone)]
struct Slot(Histogram<u64>);

impl Default for Slot {
    fn default() -> Slot {
        Slot(Histogram::new_with_bounds(1, MAX_US, 2).expect("static bounds are valid"))
    }
}

#[derive(Debug)]
struct State<T> {
    window: Buckets<Slot>,
    queue: VecDeque<T>,
    /// `(computed at, P99 or None when too few samples)`.
    cached: Option<(Duration, Option<Duration>)>,
    dirty: bool,
    /// Items admitted whose latency has not been recorded yet.
    pending: u64,
}

/// P99-driven admission over a [`Clock`]; `T` is the caller's unit of work.
#[derive(Debug)]
pub struct P99Admission<T, C: Clock> {
    clock: C,
    config: AdmissionConfig,
    state: Mutex<State<T>>,
}

impl<T, C: Clock> P99Admission<T, C> {
    /// A controller with `config` over `clock`.
    pub fn new(config: AdmissionConfig, clock: C) -> Result<P99Admission<T, C>, ConfigError> {
        config.validate()?;
        Ok(P99Admission {
            state: Mutex::new(State {
                window: Buckets::new(config.window, config.buckets),
                queue: VecDeque::with_capacity(config.queue_capacity),
                cached: None,
                dirty: false,
                pending: 0,
            }),
            clock,
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every statement leaves the state consistent; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the latency of a completed unit of work.
    pub fn record(&self, latency: Duration) {
        let now = self.clock.now();
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        let mut state = self.lock();
        state.window.current(now).0.saturating_record(us);
        state.dirty = true;
        state.pending = state.pending.saturating_sub(1);
    }

    /// The window's P99 (cached for `refresh`); `None` with fewer than `min_samples`.
    pub fn p99(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.p99_locked(&mut self.lock(), now)
    }

    fn p99_locked(&self, state: &mut State<T>, now: Duration) -> Option<Duration> {
        if let Some((at, p99)) = state.cached {
            let fresh = now < at + self.config.refresh;
            if fresh || (!state.dirty && now < at + self.config.window / self.config.buckets as u32)
            {
                return p99;
            }
        }
        let mut merged = Slot::default();
        for slot in state.window.live(now) {
            // Same bounds on both sides: adding cannot fail.
            let _ = merged.0.add(&slot.0);
        }
        let p99 = (merged.0.len() >= self.config.min_samples)
            .then(|| Duration::from_micros(merged.0.value_at_quantile(0.99)));
        state.cached = Some((now, p99));
        state.dirty = false;
        p99
    }

    /// Whether new work would run at once.
    pub fn is_open(&self) -> bool {
        self.p99().is_none_or(|p99| p99 <= self.config.target_p99)
    }

    /// Offers one unit of work.
    pub fn offer(&self, item: T) -> Result<Admission<T>, Rejected<T>> {
        let now = self.clock.now();
        let mut state = self.lock();
        let p99 = self.p99_locked(&mut state, now);
        let open = match p99 {
            Some(p99) => p99 <= self.config.target_p99,
            None => state.pending < self.config.min_samples,
        };
        // Queued work goes first: while anything waits, new work joins the tail.
        if open && state.queue.is_empty() {
            state.pending += 1;
            return Ok(Admission::Run(item));
        }
        if state.queue.len() < self.config.queue_capacity {
            state.queue.push_back(item);
            return Ok(Admission::Queued);
        }
        if open {
            // Under target with a full queue: the new item runs, the queue keeps its turn.
            state.pending += 1;
            return Ok(Admission::Run(item));
        }
        Err(Rejected {
            item,
            p99,
            target: self.config.target_p99,
            queued: state.queue.len(),
        })
    }

    /// Queued items that may run now, oldest first, at most `release_batch`: all of them
    /// while the P99 is at or under target, the probe budget while probing, none over target.
    pub fn drain_ready(&self) -> Vec<T> {
        let now = self.clock.now();
        let mut state = self.lock();
        let allowed = match self.p99_locked(&mut state, now) {
            Some(p99) if p99 > self.config.target_p99 => 0,
            Some(_) => usize::MAX,
            None => usize::try_from(self.config.min_samples.saturating_sub(state.pending))
                .unwrap_or(usize::MAX),
        };
        let n = state
            .queue
            .len()
            .min(self.config.release_batch)
            .min(allowed);
        state.pending += n as u64;
        state.queue.drain(..n).collect()
    }

    /// Items waiting.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn admission(queue: usize) -> (P99Admission<u32, ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let config = AdmissionConfig {
            window: 100 * MS,
            buckets: 10,
            min_samples: 10,
            queue_capacity: queue,
            release_batch: 2,
            refresh: MS,
            ..AdmissionConfig::new(10 * MS)
        };
        (P99Admission::new(config, clock.clone()).unwrap(), clock)
    }

    fn record(a: &P99Admission<u32, ManualClock>, fast: usize, slow: usize) {
        for _ in 0..fast {
            a.record(MS);
        }
        for _ in 0..slow {
            a.record(50 * MS);
        }
    }

    #[test]
    fn admission_flips_at_the_target() {
        let (a, clock) = admission(0);
        // Too few samples (even if all slow): admit.
        record(&a, 0, 1);
        assert!(a.p99().is_none());
        assert_eq!(a.offer(1).unwrap(), Admission::Run(1));
        a.record(MS);
        // 200 values, 1 slow (0.5%): P99 is fast.
        clock.advance(MS);
        record(&a, 199, 0);
        clock.advance(MS);
        assert!(a.p99().unwrap() <= 10 * MS, "{:?}", a.p99());
        assert!(a.is_open());
        // 7 of 206 slow (3.4%): P99 is 50 ms > 10 ms.
        record(&a, 0, 6);
        clock.advance(MS);
        let p99 = a.p99().unwrap();
        assert!(p99 >= 49 * MS, "{p99:?}");
        let refused = a.offer(2).unwrap_err();
        assert_eq!(
            (refused.item, refused.target, refused.queued),
            (2, 10 * MS, 0)
        );
        assert!(refused.to_string().contains("over the target"), "{refused}");
        assert!(refused.p99.unwrap() >= 49 * MS);
        // The slow values leave the window: probing again.
        clock.advance(100 * MS);
        assert!(a.is_open());
        assert_eq!(a.offer(3).unwrap(), Admission::Run(3));
    }

    #[test]
    fn with_too_few_samples_it_probes_instead_of_flooding() {
        let (a, clock) = admission(1);
        // min_samples = 10: ten items run, the eleventh waits, the twelfth is refused.
        for i in 0..10 {
            assert_eq!(a.offer(i).unwrap(), Admission::Run(i));
        }
        assert_eq!(a.offer(10).unwrap(), Admission::Queued);
        let refused = a.offer(11).unwrap_err();
        assert_eq!(refused.p99, None);
        assert!(refused.to_string().contains("probing"), "{refused}");
        assert!(a.drain_ready().is_empty());
        // One result frees one probe slot.
        a.record(MS);
        clock.advance(MS);
        assert_eq!(a.drain_ready(), vec![10]);
        assert_eq!(a.offer(12).unwrap(), Admission::Queued);
        // Enough fast results: a P99 under target, admission as usual.
        for _ in 0..10 {
            a.record(MS);
        }
        clock.advance(MS);
        assert_eq!(a.offer(13).unwrap(), Admission::Run(13));
        assert_eq!(a.drain_ready(), vec![12]);
    }

    #[test]
    fn over_target_work_queues_up_to_capacity_then_drains_in_order() {
        let (a, clock) = admission(3);
        record(&a, 0, 20);
        clock.advance(MS);
        assert_eq!(a.offer(1).unwrap(), Admission::Queued);
        assert_eq!(a.offer(2).unwrap(), Admission::Queued);
        assert_eq!(a.offer(3).unwrap(), Admission::Queued);
        assert_eq!(a.offer(4).unwrap_err().queued, 3);
        assert!(a.drain_ready().is_empty());
        // Latency recovers: the window forgets the slow values and sees fast ones.
        clock.advance(100 * MS);
        record(&a, 20, 0);
        clock.advance(MS);
        assert_eq!(a.drain_ready(), vec![1, 2]);
        // New work waits behind the queue while it has room.
        assert_eq!(a.offer(5).unwrap(), Admission::Queued);
        assert_eq!(a.drain_ready(), vec![3, 5]);
        assert!(a.drain_ready().is_empty());
        assert_eq!(a.offer(6).unwrap(), Admission::Run(6));
    }

    #[test]
    fn the_p99_is_cached_for_refresh() {
        let (a, clock) = admission(0);
        record(&a, 20, 0);
        assert!(a.is_open());
        record(&a, 0, 20);
        // Same instant: the cached value stands.
        assert!(a.is_open());
        clock.advance(MS);
        assert!(!a.is_open());
    }

    #[test]
    fn bad_configs_are_errors() {
        let clock = ManualClock::new();
        let zero = AdmissionConfig::new(Duration::ZERO);
        let err = P99Admission::<(), _>::new(zero, clock.clone()).unwrap_err();
        assert_eq!(err.field, "target_p99");
        let no_window = AdmissionConfig {
            buckets: 0,
            ..AdmissionConfig::new(MS)
        };
        assert!(P99Admission::<(), _>::new(no_window, clock).is_err());
    }
}

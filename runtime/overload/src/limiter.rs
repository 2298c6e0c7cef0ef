//! An adaptive concurrency limiter that follows Little's law.
//!
//! # The rule
//!
//! A system that completes `lambda` units of work per second, each busy for `S` seconds,
//! has `lambda * S` of them in service on average (Little's law applied to the servers).
//! Work in flight beyond that is waiting in a queue, adding latency and no throughput. The
//! limiter therefore keeps the number of permits at
//!
//! ```text
//! limit = clamp(ceil(ewma(lambda * S) * headroom), min, max)
//! ```
//!
//! where `lambda` is the *completion* rate (throughput, not the offered rate: under
//! overload the offered rate is unbounded and would open the gate wide) and `S` the mean
//! *service* time the caller reports through [`Permit::record_service`] (or, if it does
//! not, how long the permit was held). Both are measured over each `interval`; the product
//! is smoothed with an exponentially weighted moving average (`alpha` weight on the new
//! value) so one noisy interval does not swing the limit.
//!
//! `headroom > 1` is what lets the limit grow: if the load rises, throughput can reach
//! `headroom` times the current one before permits run out, so the limit climbs by up to
//! that factor per interval until the servers saturate, where `lambda * S` stops growing
//! (it is the number of busy servers). A headroom of 1 would freeze the limit at whatever
//! throughput it first saw. Before the first full interval the limit is `initial`.
//!
//! # Rejected options
//!
//! AIMD on latency (TCP-style): needs a latency target and oscillates by design; gradient
//! limiters (Netflix's): need a no-load latency estimate. Little's law needs neither.

use super::{Clock, ConfigError};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The limiter's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterConfig {
    /// The lowest limit (at least 1).
    pub min: usize,
    /// The highest limit (at least `min`).
    pub max: usize,
    /// The limit before the first measurement (within `[min, max]`).
    pub initial: usize,
    /// Multiplier on `lambda * S` (at least 1).
    pub headroom: f64,
    /// EWMA weight of the newest interval, in (0, 1].
    pub alpha: f64,
    /// Measurement interval (positive).
    pub interval: Duration,
}

impl LimiterConfig {
    /// Limits within `[min, max]`, starting at `min`, headroom 2, alpha 0.5, 100 ms.
    pub fn new(min: usize, max: usize) -> LimiterConfig {
        LimiterConfig {
            min,
            max,
            initial: min,
            headroom: 2.0,
            alpha: 0.5,
            interval: Duration::from_millis(100),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.min == 0 || self.max < self.min {
            return Err(ConfigError::new("min/max", "need 1 <= min <= max"));
        }
        if !(self.min..=self.max).contains(&self.initial) {
            return Err(ConfigError::new("initial", "must be within [min, max]"));
        }
        if !(self.headroom >= 1.0 && self.headroom.is_finite()) {
            return Err(ConfigError::new("headroom", "must be at least 1"));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(ConfigError::new("alpha", "must be in (0, 1]"));
        }
        if self.interval.is_zero() {
            return Err(ConfigError::new("interval", "must be positive"));
        }
        Ok(())
    }
}

/// All permits are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The limit when the caller asked.
    pub limit: usize,
    /// Permits held.
    pub in_flight: usize,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "concurrency limit reached: {} of {} permits in use",
            self.in_flight, self.limit
        )
    }
}

impl std::error::Error for LimitExceeded {}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// `lambda * S` smoothed; `None` before the first interval.
    smoothed: Option<f64>,
    interval_start: Duration,
    completions: u64,
    service_sum: Duration,
}

#[derive(Debug)]
struct Inner<C> {
    clock: C,
    config: LimiterConfig,
    state: Mutex<State>,
}

/// The limiter; clones share it.
#[derive(Debug)]
pub struct AdaptiveLimiter<C: Clock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for AdaptiveLimiter<C> {
    fn clone(&self) -> Self {
        AdaptiveLimiter {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// One unit of work in flight; dropping it returns the permit and records a completion.
#[derive(Debug)]
#[must_use = "dropping the permit at once releases it"]
pub struct Permit<C: Clock> {
    inner: Arc<Inner<C>>,
    acquired: Duration,
    service: Option<Duration>,
}

impl<C: Clock> Permit<C> {
    /// Reports how long the work itself took (excluding waiting), the `S` of the rule.
    pub fn record_service(&mut self, service: Duration) {
        self.service = Some(service);
    }
}

impl<C: Clock> Drop for Permit<C> {
    fn drop(&mut self) {
        let now = self.inner.clock.now();
        let service = self
            .service
            .unwrap_or_else(|| now.saturating_sub(self.acquired));
        let mut state = self.inner.lock();
        self.inner.roll(&mut state, now);
        state.in_flight -= 1;
        state.completions += 1;
        state.service_sum += service;
    }
}

impl<C: Clock> Inner<C> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes every interval that ended by `now`, updating the limit.
    fn roll(&self, state: &mut State, now: Duration) {
        let interval = self.config.interval;
        if now < state.interval_start + interval {
            return;
        }
        let lambda = state.completions as f64 / interval.as_secs_f64();
        let mean_service = if state.completions == 0 {
            0.0
        } else {
            state.service_sum.as_secs_f64() / state.completions as f64
        };
        let sample = lambda * mean_service;
        let alpha = self.config.alpha;
        let smoothed = state
            .smoothed
            .map_or(sample, |s| alpha * sample + (1.0 - alpha) * s);
        state.smoothed = Some(smoothed);
        state.limit = servers_needed(
            smoothed * self.config.headroom,
            self.config.min,
            self.config.max,
        );
        state.completions = 0;
        state.service_sum = Duration::ZERO;
        // Idle intervals in between carried no completions: start afresh at `now`.
        let elapsed = now - state.interval_start;
        state.interval_start = if elapsed < 2 * interval {
            state.interval_start + interval
        } else {
            now
        };
    }
}

/// Little's law for servers: `lambda * S` units of work are in service on average, so
/// `ceil(lambda_s)` servers (permits, threads) carry it, clamped to `[min, max]`. A product
/// within 1e-9 above an integer counts as that integer (`800/s x 10 ms` computes as
/// 8.000000000000002 in floating point; a billionth of a server is no measurement). A
/// value that is not a finite non-negative number (no measurement) gives `min`. Shared by
/// the limiter and the blocking pool's sizer ([`PoolSizer`](crate::PoolSizer)).
pub(crate) fn servers_needed(lambda_s: f64, min: usize, max: usize) -> usize {
    if !(lambda_s.is_finite() && lambda_s >= 0.0) {
        return min;
    }
    // `as` saturates: a huge product clamps to `max`.
    ((lambda_s - 1e-9).ceil() as usize).clamp(min, max)
}

impl<C: Clock> AdaptiveLimiter<C> {
    /// A limiter with `config` over `clock`.
    pub fn new(config: LimiterConfig, clock: C) -> Result<AdaptiveLimiter<C>, ConfigError> {
        config.validate()?;
        let start = clock.now();
        Ok(AdaptiveLimiter {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    limit: config.initial,
                    in_flight: 0,
                    smoothed: None,
                    interval_start: start,
                    completions: 0,
                    service_sum: Duration::ZERO,
                }),
                clock,
                config,
            }),
        })
    }

    /// Takes a permit, or says the limit is reached.
    pub fn try_acquire(&self) -> Result<Permit<C>, LimitExceeded> {
        let now = self.inner.clock.now();
        let mut state = self.inner.lock();
        self.inner.roll(&mut state, now);
        if state.in_flight >= state.limit {
            return Err(LimitExceeded {
                limit: state.limit,
                in_flight: state.in_flight,
            });
        }
        state.in_flight += 1;
        Ok(Permit {
            inner: Arc::clone(&self.inner),
            acquired: now,
            service: None,
        })
    }

    /// The limit now (closing finished intervals first).
    pub fn limit(&self) -> usize {
        let now = self.inner.clock.now();
        let mut state = self.inner.lock();
        self.inner.roll(&mut state, now);
        state.limit
    }

    /// Permits held.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(clock: &ManualClock) -> AdaptiveLimiter<ManualClock> {
        let config = LimiterConfig {
            alpha: 1.0,
            headroom: 1.0,
            ..LimiterConfig::new(1, 64)
        };
        AdaptiveLimiter::new(config, clock.clone()).unwrap()
    }

    /// Completes `n` units of work, each with service time `s`, within the current interval.
    fn complete(l: &AdaptiveLimiter<ManualClock>, n: usize, s: Duration) {
        for _ in 0..n {
            let mut permit = l.try_acquire().unwrap();
            permit.record_service(s);
        }
    }

    /// Completes `n` units of work of 10 ms each within the current interval, then moves
    /// the clock on by the interval (100 ms): the limit for the next one.
    fn limit_after_interval(
        l: &AdaptiveLimiter<ManualClock>,
        clock: &ManualClock,
        n: usize,
    ) -> usize {
        complete(l, n, 10 * MS);
        clock.advance(100 * MS);
        l.limit()
    }

    #[test]
    fn the_limit_follows_lambda_times_s() {
        let clock = ManualClock::new();
        let l = limiter(&clock);
        assert_eq!(l.limit(), 1);
        // 50 completions in 100 ms = 500/s, S = 10 ms: L = 5.
        assert_eq!(limit_after_interval(&l, &clock, 50), 5);
        // Load doubles: 1000/s * 10 ms = 10.
        assert_eq!(limit_after_interval(&l, &clock, 100), 10);
        // ceil: 30/s * 10 ms = 0.3 -> 1.
        assert_eq!(limit_after_interval(&l, &clock, 3), 1);
    }

    #[test]
    fn limit_is_clamped_and_smoothed() {
        let clock = ManualClock::new();
        let config = LimiterConfig {
            alpha: 0.5,
            headroom: 1.0,
            ..LimiterConfig::new(2, 8)
        };
        let l = AdaptiveLimiter::new(config, clock.clone()).unwrap();
        // Sample 4 (400/s * 10 ms): first interval sets it.
        assert_eq!(limit_after_interval(&l, &clock, 40), 4);
        // Sample 0 (nothing completed): EWMA = 2, clamped at min 2.
        assert_eq!(limit_after_interval(&l, &clock, 0), 2);
        // A huge sample (100): EWMA = 0.5*100 + 0.5*2 = 51, clamped to 8.
        assert_eq!(limit_after_interval(&l, &clock, 1000), 8);
    }

    #[test]
    fn permits_run_out_at_the_limit_and_come_back_on_drop() {
        let clock = ManualClock::new();
        let config = LimiterConfig {
            initial: 2,
            ..LimiterConfig::new(1, 4)
        };
        let l = AdaptiveLimiter::new(config, clock).unwrap();
        let a = l.try_acquire().unwrap();
        let _b = l.try_acquire().unwrap();
        let err = l.try_acquire().unwrap_err();
        assert_eq!(
            err,
            LimitExceeded {
                limit: 2,
                in_flight: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "concurrency limit reached: 2 of 2 permits in use"
        );
        drop(a);
        assert_eq!(l.in_flight(), 1);
        assert!(l.try_acquire().is_ok());
    }

    #[test]
    fn headroom_lets_the_limit_climb_to_saturation() {
        // Servers: 4 busy at most, S = 10 ms, so throughput <= 400/s. The offered load
        // would keep 16 busy. With headroom 2 the limit doubles per interval until the
        // servers saturate, then settles at 4 * 2 = 8.
        let clock = ManualClock::new();
        let config = LimiterConfig {
            alpha: 1.0,
            headroom: 2.0,
            ..LimiterConfig::new(1, 100)
        };
        let l = AdaptiveLimiter::new(config, clock.clone()).unwrap();
        let mut limits = Vec::new();
        for _ in 0..6 {
            let busy = l.limit().min(4);
            // `busy` servers each complete 10 units of 10 ms per 100 ms interval.
            complete(&l, busy * 10, 10 * MS);
            clock.advance(100 * MS);
            limits.push(l.limit());
        }
        assert_eq!(limits, vec![2, 4, 8, 8, 8, 8]);
    }

    #[test]
    fn held_time_is_the_default_service_time() {
        let clock = ManualClock::new();
        let l = limiter(&clock);
        let permit = l.try_acquire().unwrap();
        clock.advance(40 * MS);
        drop(permit);
        clock.advance(60 * MS);
        // 1 completion in 100 ms = 10/s, S = 40 ms: 0.4 -> 1.
        assert_eq!(l.limit(), 1);
    }

    #[test]
    fn bad_configs_are_errors() {
        let clock = ManualClock::new();
        for (config, field) in [
            (LimiterConfig::new(0, 4), "min/max"),
            (LimiterConfig::new(5, 4), "min/max"),
            (
                LimiterConfig {
                    initial: 9,
                    ..LimiterConfig::new(1, 4)
                },
                "initial",
            ),
            (
                LimiterConfig {
                    headroom: 0.5,
                    ..LimiterConfig::new(1, 4)
                },
                "headroom",
            ),
            (
                LimiterConfig {
                    alpha: 0.0,
                    ..LimiterConfig::new(1, 4)
                },
                "alpha",
            ),
            (
                LimiterConfig {
                    interval: Duration::ZERO,
                    ..LimiterConfig::new(1, 4)
                },
                "interval",
            ),
        ] {
            assert_eq!(
                AdaptiveLimiter::new(config, clock.clone())
                    .unwrap_err()
                    .field,
                field
            );
        }
    }
}

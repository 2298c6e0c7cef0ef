//! Latency-tiered circuit breakers.
//!
//! A service usually has classes of work with different latency objectives: an interactive
//! read must answer in milliseconds, a report may take a second. Each class is a *tier* with
//! its own P99 bound and its own breaker, so a slow report tier does not trip the
//! interactive one, and vice versa.
//!
//! # States (per tier)
//!
//! ```text
//!            trip                       cool-down over
//! Closed ----------------> Open ----------------------> HalfOpen
//!   ^                        ^                             |
//!   |   `probes` successes   |   any probe fails           |
//!   +------------------------+-----------------------------+
//! ```
//!
//! * **Closed**: calls go through. A call that completes later than the tier's `p99_bound`
//!   is a *timeout*; an [`Outcome::Error`] is an error; both are failures. The breaker
//!   *trips* on `consecutive_timeouts` timeouts in a row, or when failures reach
//!   `error_rate` of the calls completed in the last `window` (once at least `min_calls`
//!   completed there, so two calls do not make a rate).
//! * **Open**: calls are refused with [`BreakerError::Open`] saying when to retry, until
//!   `cool_down` has passed since the trip.
//! * **HalfOpen**: up to `half_open_probes` trial calls go through (others are refused with
//!   [`BreakerError::Probing`]). Any failing probe re-opens the tier for another cool-down;
//!   when all succeed the tier closes with a fresh window.
//!
//! Completions of calls started before the tier last changed state are ignored (each state
//! change starts a new *generation*): a burst of slow calls admitted before a trip must not
//! re-trip the tier as soon as it half-opens.
//!
//! A [`Call`] must be handed back to [`TieredBreaker::complete`]; a probe that is never
//! completed keeps its half-open slot (use [`TieredBreaker::abandon`] when the work is
//! dropped). Rejected: tying the call to a guard that completes on drop, since the breaker
//! cannot know whether dropped work succeeded.

use super::window::Buckets;
use super::{Clock, ConfigError};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Slots of the error-rate window.
const WINDOW_BUCKETS: usize = 10;

/// One tier's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TierConfig {
    /// A name for errors and reports.
    pub name: String,
    /// Calls slower than this are timeouts.
    pub p99_bound: Duration,
    /// Timeouts in a row that trip the tier (at least 1).
    pub consecutive_timeouts: u32,
    /// Failure fraction over `window` that trips the tier, in (0, 1].
    pub error_rate: f64,
    /// The error-rate window (positive).
    pub window: Duration,
    /// Completed calls in the window before the rate counts (at least 1).
    pub min_calls: u32,
    /// How long the tier stays open.
    pub cool_down: Duration,
    /// Trial calls in half-open, all of which must succeed (at least 1).
    pub half_open_probes: u32,
}

impl TierConfig {
    /// A tier with defaults: 5 timeouts in a row or 50% failures over 10 s (at least 20
    /// calls) trip it for 5 s; 3 probes.
    pub fn new(name: impl Into<String>, p99_bound: Duration) -> TierConfig {
        TierConfig {
            name: name.into(),
            p99_bound,
            consecutive_timeouts: 5,
            error_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 20,
            cool_down: Duration::from_secs(5),
            half_open_probes: 3,
        }
    }

    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let field = |f: &str| format!("tiers[{index}].{f}");
        if self.consecutive_timeouts == 0 {
            return Err(ConfigError::new(
                field("consecutive_timeouts"),
                "must be at least 1",
            ));
        }
        if !(self.error_rate > 0.0 && self.error_rate <= 1.0) {
            return Err(ConfigError::new(field("error_rate"), "must be in (0, 1]"));
        }
        if self.window.is_zero() {
            return Err(ConfigError::new(field("window"), "must be positive"));
        }
        if self.min_calls == 0 || self.half_open_probes == 0 {
            return Err(ConfigError::new(
                field("min_calls/half_open_probes"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A tier's state, as [`TieredBreaker::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused for `retry_after` more.
    Open {
        /// Time left in the cool-down.
        retry_after: Duration,
    },
    /// Trial calls go through.
    HalfOpen {
        /// Probes started and not completed.
        in_flight: u32,
        /// Probes that succeeded.
        succeeded: u32,
    },
}

/// How a call ended (its latency is measured by the breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The work succeeded (it is still a timeout if it was too slow).
    Success,
    /// The work failed.
    Error,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError {
    /// The tier is open.
    Open {
        /// The tier's name.
        tier: String,
        /// When the tier will let a probe through.
        retry_after: Duration,
    },
    /// The tier is half-open and all its probe slots are taken.
    Probing {
        /// The tier's name.
        tier: String,
    },
    /// No tier has this index.
    UnknownTier {
        /// The index asked for.
        index: usize,
        /// How many tiers there are.
        tiers: usize,
    },
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open { tier, retry_after } => {
                write!(
                    f,
                    "circuit breaker of tier {tier:?} is open; retry in {retry_after:?}"
                )
            }
            BreakerError::Probing { tier } => {
                write!(
                    f,
                    "circuit breaker of tier {tier:?} is half-open and busy probing"
                )
            }
            BreakerError::UnknownTier { index, tiers } => {
                write!(f, "no breaker tier {index} (there are {tiers})")
            }
        }
    }
}

impl std::error::Error for BreakerError {}

/// A call let through; hand it back to [`TieredBreaker::complete`].
#[derive(Debug)]
#[must_use = "a call must be completed (or abandoned) so the breaker learns its outcome"]
pub struct Call {
    tier: usize,
    started: Duration,
    generation: u64,
    probe: bool,
}

impl Call {
    /// The tier's index.
    pub fn tier(&self) -> usize {
        self.tier
    }

    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Duration },
    HalfOpen { in_flight: u32, succeeded: u32 },
}

#[derive(Debug)]
struct TierState {
    phase: Phase,
    generation: u64,
    consecutive_timeouts: u32,
    window: Buckets<Counts>,
}

/// Circuit breakers, one per latency tier, over a [`Clock`].
#[derive(Debug)]
pub struct TieredBreaker<C: Clock> {
    clock: C,
    configs: Vec<TierConfig>,
    states: Vec<Mutex<TierState>>,
}

impl<C: Clock> TieredBreaker<C> {
    /// Breakers for `tiers` (at least one), all closed.
    pub fn new(tiers: Vec<TierConfig>, clock: C) -> Result<TieredBreaker<C>, ConfigError> {
        if tiers.is_empty() {
            return Err(ConfigError::new("tiers", "at least one tier is needed"));
        }
        for (i, tier) in tiers.iter().enumerate() {
            tier.validate(i)?;
        }
        let states = tiers
            .iter()
            .map(|t| {
                Mutex::new(TierState {
                    phase: Phase::Closed,
                    generation: 0,
                    consecutive_timeouts: 0,
                    window: Buckets::new(t.window, WINDOW_BUCKETS),
                })
            })
            .collect();
        Ok(TieredBreaker {
            clock,
            configs: tiers,
            states,
        })
    }

    /// The index of the tier called `name`.
    pub fn tier(&self, name: &str) -> Option<usize> {
        self.configs.iter().position(|t| t.name == name)
    }

    fn lock(&self, tier: usize) -> Result<std::sync::MutexGuard<'_, TierState>, BreakerError> {
        let state = self.states.get(tier).ok_or(BreakerError::UnknownTier {
            index: tier,
            tiers: self.states.len(),
        })?;
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than refusing all calls would: keep going.
        Ok(state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Asks to start a call in `tier`.
    pub fn try_call(&self, tier: usize) -> Result<Call, BreakerError> {
        let mut state = self.lock(tier)?;
        let now = self.clock.now();
        let config = &self.configs[tier];
        if let Phase::Open { until } = state.phase {
            if now < until {
                return Err(BreakerError::Open {
                    tier: config.name.clone(),
                    retry_after: until - now,
                });
            }
            transition(
                &mut state,
                Phase::HalfOpen {
                    in_flight: 0,
                    succeeded: 0,
                },
                config.window,
            );
        }
        let probe = match &mut state.phase {
            Phase::HalfOpen {
                in_flight,
                succeeded,
            } => {
                if *in_flight + *succeeded >= config.half_open_probes {
                    return Err(BreakerError::Probing {
                        tier: config.name.clone(),
                    });
                }
                *in_flight += 1;
                true
            }
            _ => false,
        };
        Ok(Call {
            tier,
            started: now,
            generation: state.generation,
            probe,
        })
    }

    /// Reports how `call` ended; its latency is the time since [`TieredBreaker::try_call`].
    pub fn complete(&self, call: Call, outcome: Outcome) {
        let Ok(mut state) = self.lock(call.tier) else {
            return;
        };
        if call.generation != state.generation {
            return;
        }
        let now = self.clock.now();
        let config = &self.configs[call.tier];
        let timed_out = now.saturating_sub(call.started) > config.p99_bound;
        let failed = timed_out || outcome == Outcome::Error;
        match &mut state.phase {
            Phase::HalfOpen {
                in_flight,
                succeeded,
            } => {
                *in_flight = in_flight.saturating_sub(1);
                if failed {
                    let until = now + config.cool_down;
                    transition(&mut state, Phase::Open { until }, config.window);
                } else {
                    *succeeded += 1;
                    if *succeeded >= config.half_open_probes {
                        transition(&mut state, Phase::Closed, config.window);
                    }
                }
            }
            Phase::Closed => {
                state.consecutive_timeouts = if timed_out {
                    state.consecutive_timeouts + 1
                } else {
                    0
                };
                let slot = state.window.current(now);
                slot.calls += 1;
                slot.failures += u32::from(failed);
                let (calls, failures) = state
                    .window
                    .live(now)
                    .fold((0, 0), |(c, f), s| (c + s.calls, f + s.failures));
                let rate_tripped = calls >= config.min_calls
                    && f64::from(failures) >= config.error_rate * f64::from(calls);
                if state.consecutive_timeouts >= config.consecutive_timeouts || rate_tripped {
                    let until = now + config.cool_down;
                    transition(&mut state, Phase::Open { until }, config.window);
                }
            }
            Phase::Open { .. } => {}
        }
    }

    /// Gives up on `call` without an outcome: counted as an error.
    pub fn abandon(&self, call: Call) {
        self.complete(call, Outcome::Error);
    }

    /// The state of `tier` now.
    pub fn state(&self, tier: usize) -> Result<BreakerState, BreakerError> {
        let state = self.lock(tier)?;
        let now = self.clock.now();
        Ok(match state.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open {
                retry_after: until - now,
            },
            // The cool-down is over: the next call will be a probe.
            Phase::Open { .. } => BreakerState::HalfOpen {
                in_flight: 0,
                succeeded: 0,
            },
            Phase::HalfOpen {
                in_flight,
                succeeded,
            } => BreakerState::HalfOpen {
                in_flight,
                succeeded,
            },
        })
    }
}

/// Enters `phase`: a new generation, no timeouts in a row, an empty error-rate window.
fn transition(state: &mut TierState, phase: Phase, window: Duration) {
    state.phase = phase;
    state.generation += 1;
    state.consecutive_timeouts = 0;
    state.window = Buckets::new(window, WINDOW_BUCKETS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn breaker() -> (TieredBreaker<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let fast = TierConfig {
            consecutive_timeouts: 3,
            error_rate: 0.5,
            window: 1000 * MS,
            min_calls: 4,
            cool_down: 50 * MS,
            half_open_probes: 2,
            ..TierConfig::new("fast", 10 * MS)
        };
        let slow = TierConfig {
            cool_down: 200 * MS,
            ..TierConfig::new("slow", 500 * MS)
        };
        (
            TieredBreaker::new(vec![fast, slow], clock.clone()).unwrap(),
            clock,
        )
    }

    fn call(
        b: &TieredBreaker<ManualClock>,
        clock: &ManualClock,
        tier: usize,
        took: Duration,
        outcome: Outcome,
    ) {
        let c = b.try_call(tier).unwrap();
        clock.advance(took);
        b.complete(c, outcome);
    }

    #[test]
    fn consecutive_timeouts_trip_only_their_tier() {
        let (b, clock) = breaker();
        // Enough successes that the error rate stays under 50% throughout.
        for _ in 0..10 {
            call(&b, &clock, 0, MS, Outcome::Success);
        }
        for _ in 0..2 {
            call(&b, &clock, 0, 20 * MS, Outcome::Success);
        }
        // A fast call in between resets the run.
        call(&b, &clock, 0, MS, Outcome::Success);
        call(&b, &clock, 0, 20 * MS, Outcome::Success);
        call(&b, &clock, 0, 20 * MS, Outcome::Success);
        assert_eq!(b.state(0).unwrap(), BreakerState::Closed);
        call(&b, &clock, 0, 20 * MS, Outcome::Success);
        assert_eq!(
            b.state(0).unwrap(),
            BreakerState::Open {
                retry_after: 50 * MS
            }
        );
        // 20 ms is within the slow tier's bound.
        assert_eq!(b.state(1).unwrap(), BreakerState::Closed);
        match b.try_call(0) {
            Err(BreakerError::Open { tier, retry_after }) => {
                assert_eq!((tier.as_str(), retry_after), ("fast", 50 * MS));
            }
            other => panic!("expected open, got {other:?}"),
        }
        assert!(b.try_call(1).is_ok());
    }

    #[test]
    fn error_rate_trips_once_enough_calls_are_seen() {
        let (b, clock) = breaker();
        call(&b, &clock, 0, MS, Outcome::Error);
        call(&b, &clock, 0, MS, Outcome::Error);
        call(&b, &clock, 0, MS, Outcome::Success);
        // 2 of 3 failed, but min_calls is 4.
        assert_eq!(b.state(0).unwrap(), BreakerState::Closed);
        call(&b, &clock, 0, MS, Outcome::Success);
        // 2 of 4 = 50%.
        assert!(matches!(b.state(0).unwrap(), BreakerState::Open { .. }));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let (b, clock) = breaker();
        call(&b, &clock, 0, MS, Outcome::Error);
        call(&b, &clock, 0, MS, Outcome::Error);
        clock.advance(2000 * MS);
        call(&b, &clock, 0, MS, Outcome::Success);
        call(&b, &clock, 0, MS, Outcome::Success);
        call(&b, &clock, 0, MS, Outcome::Success);
        call(&b, &clock, 0, MS, Outcome::Error);
        assert_eq!(b.state(0).unwrap(), BreakerState::Closed);
    }

    fn trip(b: &TieredBreaker<ManualClock>, clock: &ManualClock) {
        for _ in 0..3 {
            call(b, clock, 0, 20 * MS, Outcome::Success);
        }
        assert!(matches!(b.state(0).unwrap(), BreakerState::Open { .. }));
    }

    /// [`breaker`] with its fast tier just opened by three timeouts in a row.
    fn tripped_breaker() -> (TieredBreaker<ManualClock>, ManualClock) {
        let (b, clock) = breaker();
        trip(&b, &clock);
        (b, clock)
    }

    /// The fast tier is half-open with these probes in flight and succeeded.
    #[track_caller]
    fn assert_half_open(b: &TieredBreaker<ManualClock>, in_flight: u32, succeeded: u32) {
        assert_eq!(
            b.state(0).unwrap(),
            BreakerState::HalfOpen {
                in_flight,
                succeeded
            }
        );
    }

    #[test]
    fn half_open_probes_close_after_successes() {
        let (b, clock) = tripped_breaker();
        clock.advance(50 * MS);
        let p1 = b.try_call(0).unwrap();
        let p2 = b.try_call(0).unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert_eq!(
            b.try_call(0).unwrap_err(),
            BreakerError::Probing {
                tier: "fast".into()
            }
        );
        b.complete(p1, Outcome::Success);
        assert_half_open(&b, 1, 1);
        b.complete(p2, Outcome::Success);
        assert_eq!(b.state(0).unwrap(), BreakerState::Closed);
        assert!(!b.try_call(0).unwrap().is_probe());
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cool_down() {
        let (b, clock) = tripped_breaker();
        clock.advance(60 * MS);
        let probe = b.try_call(0).unwrap();
        clock.advance(11 * MS);
        b.complete(probe, Outcome::Success); // too slow: a timeout
        assert_eq!(
            b.state(0).unwrap(),
            BreakerState::Open {
                retry_after: 50 * MS
            }
        );
        clock.advance(49 * MS);
        assert!(b.try_call(0).is_err());
        clock.advance(MS);
        assert!(b.try_call(0).unwrap().is_probe());
    }

    #[test]
    fn calls_from_before_a_trip_are_ignored() {
        let (b, clock) = breaker();
        let stale = b.try_call(0).unwrap();
        trip(&b, &clock);
        clock.advance(50 * MS);
        let probe = b.try_call(0).unwrap();
        b.complete(stale, Outcome::Error);
        assert_half_open(&b, 1, 0);
        b.abandon(probe);
        assert!(matches!(b.state(0).unwrap(), BreakerState::Open { .. }));
    }

    #[test]
    fn bad_configs_and_tiers_are_errors() {
        let clock = ManualClock::new();
        assert!(TieredBreaker::new(vec![], clock.clone()).is_err());
        let bad = TierConfig {
            error_rate: 1.5,
            ..TierConfig::new("x", MS)
        };
        let err = TieredBreaker::new(vec![bad], clock.clone()).unwrap_err();
        assert_eq!(err.field, "tiers[0].error_rate");
        let (b, _) = breaker();
        assert_eq!(
            b.try_call(7).unwrap_err(),
            BreakerError::UnknownTier { index: 7, tiers: 2 }
        );
        assert_eq!(b.tier("slow"), Some(1));
        assert!(b.try_call(0).is_ok());
    }
}

//! Overload control: latency-tiered circuit breakers, an adaptive concurrency limiter that
//! follows Little's law, and P99-driven admission.
//!
//! The queueing experiments (`gpm-lab littles-law`, `overload`) show why these exist: past
//! the knee an open-loop load makes the queue, and so every task's latency, grow without
//! bound. Each control here bounds it a different way:
//!
//! | control | watches | acts on | when to use |
//! |---|---|---|---|
//! | [`TieredBreaker`] | per-tier timeouts (latency above the tier's P99 bound) and error rate | stops calling a tier for a cool-down, then probes it | a dependency that fails or slows down |
//! | [`AdaptiveLimiter`] | throughput `lambda` and service time `S` | caps work in flight at `ceil(lambda * S * headroom)` | protecting a pool of workers from queueing |
//! | [`P99Admission`] | the P99 of recent latencies | rejects or queues (bounded) new work while P99 > target | a latency objective stated as a percentile |
//! | [`PoolSizer`] | arrival rate `lambda` and service time `S` of a pool's jobs | sizes the pool to `ceil(lambda * S)` in `[min, max]`, growing at once, shrinking after a hold | a thread pool for blocking work (`Builder::blocking_pool_sizing`) |
//!
//! # Design
//!
//! All three are pure logic over a [`Clock`]: no threads, no timers, no sleeps. Time only
//! moves when the clock says so, which makes the tests exact ([`ManualClock`]) and lets the
//! same code run on [`SystemClock`] in production. Each keeps its state behind one `Mutex`:
//! the critical sections are a few comparisons and additions, far cheaper than the work they
//! guard (a lock-free design was rejected: these decisions read several fields that must
//! agree, and the contention is one lock per admitted unit of work). Every refusal is a
//! typed error the caller can show or match on ([`BreakerError`], [`LimitExceeded`],
//! [`Rejected`]); bad configurations are a [`ConfigError`], never a panic.
//!
//! Nothing here is wired into the scheduler: a server decides where a unit of work begins
//! and ends, so it calls these at its edge (the lab's `overload` experiment does it in its
//! load driver).
//!
//! # The crate
//!
//! `gpm-overload`, re-exported by gpm as `gpm::overload` (either path names the same types).
//! It depends on no gpm crate, and gpm depends on it: it must never import the runtime.
#![warn(missing_docs)]

mod admission;
mod breaker;
mod clock;
mod limiter;
mod sizing;
mod window;

pub use admission::{Admission, AdmissionConfig, P99Admission, Rejected};
pub use breaker::{BreakerError, BreakerState, Call, Outcome, TierConfig, TieredBreaker};
pub use clock::{Clock, ManualClock, SystemClock};
pub use limiter::{AdaptiveLimiter, LimitExceeded, LimiterConfig, Permit};
pub use sizing::{PoolSizer, PoolSizingConfig};

use std::fmt;

/// A configuration value out of range: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, e.g. `"tiers[1].error_rate"`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid overload setting {}: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

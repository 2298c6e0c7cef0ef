//! Overload control: latency-tiered circuit breakers, an adaptive concurrency limiter and
//! P99-driven admission. Everything of the `gpm-overload` crate is re-exported here (either
//! path names the same types); pure logic over a clock, not wired into the scheduler: a
//! server calls it at its edge.
//!
//! | control | watches | acts on | when to use |
//! |---|---|---|---|
//! | [`TieredBreaker`] | per-tier timeouts (latency above the tier's P99 bound) and error rate | stops calling a tier for a cool-down, then probes it | a dependency that fails or slows down |
//! | [`AdaptiveLimiter`] | throughput `lambda` and service time `S` | caps work in flight at `ceil(lambda * S * headroom)` | protecting a pool of workers from queueing |
//! | [`P99Admission`] | the P99 of recent latencies | rejects or queues (bounded) new work while P99 > target | a latency objective stated as a percentile |
//! | [`PoolSizer`] | arrival rate `lambda` and time on a thread `S` of a pool's jobs | sizes the pool to `ceil(lambda * S)` in `[min, max]`, at once up, after a hold down | the blocking pool ([`Builder::blocking_pool_sizing`](crate::Builder::blocking_pool_sizing)) |
//!
//! With the `tower` feature, `gpm::overload::tower` wraps each as a `tower::Layer` whose
//! service refuses with a typed `Overloaded` error, and can add
//! the runtime's own view (`Handle::probes()`: lambda, W, queue wait, the knee) to the
//! latencies measured at the edge. Behind an HTTP server that view is the one that sees
//! the queue (`gpm-lab overload-http`, docs/LAB.md).
//!
//! # Why a module and not `pub use gpm_overload as overload`
//!
//! `gpm-overload` must not depend on gpm (gpm depends on it; the lab uses it alone), but the
//! tower layers' `from_runtime` constructors read a [`Handle`](crate::runtime::Handle). So
//! the controls stay in `gpm-overload` and the parts that need the runtime live here, in
//! gpm, beside a glob re-export that keeps every `gpm::overload::...` path working.
//!
//! ```
//! use gpm::overload::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! clock.advance(Duration::from_millis(5));
//! assert_eq!(clock.now(), Duration::from_millis(5));
//! ```

pub use gpm_overload::*;

#[cfg(feature = "tower")]
pub mod tower;

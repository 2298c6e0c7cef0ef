//! The overload controls as tower middleware (feature `tower`).
//!
//! | layer | control | refuses when | `retry_after` |
//! |---|---|---|---|
//! | [`AdmissionLayer`] | [`P99Admission`] over the latency of each call | the P99 of the last window is over the target (or probing, see the control) | one slot of the window |
//! | [`ConcurrencyLimitLayer`] | [`AdaptiveLimiter`]: `ceil(lambda * S * headroom)` permits | every permit is held | the limiter's interval |
//! | [`BreakerLayer`] | [`TieredBreaker`], a tier per latency class of request | the request's tier is open (or half-open and busy probing) | the cool-down left (the tier's P99 bound while probing) |
//! | [`RuntimeGate`] (`from_runtime` of the admission and limit layers, or their `with_gate`) | `Handle::probes()`, read once per window | the run queues' wait since the last read is over a target (all calls, or a share that follows the wait: [`Shedding`]), or the runtime is past the knee | the gate's window |
//!
//! A refused call never reaches the inner service: its future resolves at once to an
//! [`Overloaded`] error (`reason`, `retry_after`), boxed as tower's `BoxError`, so layers
//! stack in any order and the caller finds the refusal with `downcast_ref::<Overloaded>()`.
//! The inner service's own errors pass through unchanged (boxed).
//!
//! # Readiness: shed, never wait
//!
//! `poll_ready` is the inner service's readiness and nothing else: a layer at its limit
//! still says `Ready`, and its `call` returns the refusal. This is `tower::load_shed`'s
//! convention, not `tower::limit::ConcurrencyLimit`'s (which returns `Pending` until a permit
//! is free): waiting for a permit is a queue in front of a saturated server, the very
//! latency these controls exist to bound, and an HTTP server cannot answer 503 to a request
//! it is still waiting to call. The decision is taken in `call`, where the latency clock
//! starts: nothing is reserved in `poll_ready`, so a service that was polled ready and then
//! dropped holds nothing. An inner service that is not ready still makes the layer
//! `Pending` (put `tower::load_shed` inside to turn that into a refusal too).
//!
//! # Sharing and cost
//!
//! A layer holds its control behind an `Arc`; every service it makes, and every clone of
//! those (tower clones services per connection), shares one control. Per call the layers
//! do what the controls do (one short mutex section to decide, one to record), plus, with
//! a [`RuntimeGate`], one clock read and two atomic loads; the runtime's snapshot
//! is taken by the one call that finds the window over, at most once per window.
//!
//! # Over HTTP: 503 and Retry-After
//!
//! An HTTP server maps [`Overloaded`] to `503 Service Unavailable` with `Retry-After` in
//! whole seconds, rounded up ([`Overloaded::retry_after_secs`]); with the `hyper` feature
//! `Overloaded::http_response` builds it. Everything else stays an error (hyper closes
//! the connection):
//!
//! ```
//! # #[cfg(feature = "hyper")] {
//! use gpm::overload::tower::{BoxError, Overloaded};
//!
//! fn to_http<B: Default>(result: Result<hyper::Response<B>, BoxError>) -> Result<hyper::Response<B>, BoxError> {
//!     match result {
//!         Err(error) => match error.downcast_ref::<Overloaded>() {
//!             Some(overloaded) => Ok(overloaded.http_response(B::default())),
//!             None => Err(error),
//!         },
//!         ok => ok,
//!     }
//! }
//! # }
//! ```
//!
//! `runtime/examples/overload_server.rs` puts the three layers in front of a hyper service
//! that way, and `tests/tests/overload_tower.rs` checks the 503 end to end.
//!
//! # Rejected options
//!
//! * A typed error enum per layer (`Error<E> { Overloaded, Inner(E) }`): three stacked
//!   layers make `Error<Error<Error<E>>>`; tower's own shedding layers box, and so do we.
//! * Deciding in `poll_ready` and keeping the permit in the service (as `ConcurrencyLimit`
//!   does): a clone per connection would then hold a permit between requests.
//! * Reading `Handle::probes()` per request: it merges every P's histograms and takes the
//!   probes' reader lock; once per window is enough for a signal that moves per window.
//!
//! [`P99Admission`]: super::P99Admission
//! [`AdaptiveLimiter`]: super::AdaptiveLimiter
//! [`TieredBreaker`]: super::TieredBreaker

mod admission;
mod breaker;
mod guarded;
mod limit;
mod runtime;

pub use admission::{AdmissionFuture, AdmissionLayer, AdmissionService, LatencyRecord};
pub use breaker::{BreakerFuture, BreakerLayer, BreakerService, Classify, ErrorIsFailure, TierOf};
pub use guarded::GuardedFuture;
pub use limit::{ConcurrencyLimitLayer, ConcurrencyLimitService, LimitFuture};
pub use runtime::{
    RuntimeConfig, RuntimeGate, RuntimeOverload, RuntimeSample, Shedding, MIN_RECENT_WAITS,
};

use super::{BreakerError, LimitExceeded};
use std::fmt;
use std::time::Duration;

/// tower's error type: any error, boxed (the same type as `tower::BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Calls `service` with `request` as a tower caller does (`poll_ready`, then `call`), and
/// answers a refusal with its 503 and `Retry-After` ([`Overloaded::http_response`]), the
/// body made by `refused_body` from the refusal. Other errors are returned as they are
/// (hyper then closes the connection). The glue between the layers and a hyper
/// `service_fn`.
#[cfg(feature = "hyper")]
pub async fn respond_or_refuse<S, Req, B>(
    mut service: S,
    request: Req,
    refused_body: impl FnOnce(&Overloaded) -> B,
) -> Result<hyper::Response<B>, BoxError>
where
    S: tower_service::Service<Req, Response = hyper::Response<B>, Error = BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    match service.call(request).await {
        Err(error) => match error.downcast_ref::<Overloaded>() {
            Some(refused) => Ok(refused.http_response(refused_body(refused))),
            None => Err(error),
        },
        ok => ok,
    }
}

/// A call refused by one of the layers: why, and when to try again.
#[derive(Debug, Clone, PartialEq)]
pub struct Overloaded {
    /// Which control refused, with its numbers.
    pub reason: Reason,
    /// When the refusing control may admit again (a hint, not a promise).
    pub retry_after: Duration,
}

/// Which control refused a call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// [`AdmissionLayer`]: the P99 of the latencies at the edge is over the target.
    Admission {
        /// The P99 that caused it; `None` while probing with too few samples.
        p99: Option<Duration>,
        /// The target.
        target: Duration,
    },
    /// [`ConcurrencyLimitLayer`]: every permit is held.
    ConcurrencyLimit(LimitExceeded),
    /// [`BreakerLayer`]: the request's tier is open or busy probing
    /// ([`BreakerError::Open`] or [`BreakerError::Probing`]).
    Breaker(BreakerError),
    /// A [`RuntimeGate`]: the runtime itself is overloaded.
    Runtime(RuntimeOverload),
}

impl Overloaded {
    /// `retry_after` in whole seconds for an HTTP `Retry-After` header: rounded up, at
    /// least 1 (`Retry-After: 0` would invite an immediate retry storm).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let secs = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        secs.max(1)
    }

    /// `503 Service Unavailable` with `Retry-After` ([`Overloaded::retry_after_secs`]) and
    /// `body`.
    ///
    /// ```
    /// use gpm::overload::tower::{Overloaded, Reason};
    /// use gpm::overload::LimitExceeded;
    /// use std::time::Duration;
    ///
    /// let refused = Overloaded {
    ///     reason: Reason::ConcurrencyLimit(LimitExceeded { limit: 4, in_flight: 4 }),
    ///     retry_after: Duration::from_millis(1500),
    /// };
    /// let response = refused.http_response(());
    /// assert_eq!(response.status(), 503);
    /// assert_eq!(response.headers()["retry-after"], "2");
    /// ```
    #[cfg(feature = "hyper")]
    pub fn http_response<B>(&self, body: B) -> hyper::Response<B> {
        let mut response = hyper::Response::new(body);
        *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(self.retry_after_secs()),
        );
        response
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Admission {
                p99: Some(p99),
                target,
            } => write!(
                f,
                "overloaded: P99 latency {p99:?} is over the target {target:?}"
            )?,
            Reason::Admission { p99: None, target } => write!(
                f,
                "overloaded: probing the latency (too few samples for a P99 against the \
                 target {target:?})"
            )?,
            Reason::ConcurrencyLimit(limit) => write!(f, "overloaded: {limit}")?,
            // It says when to retry already.
            Reason::Breaker(breaker @ BreakerError::Open { .. }) => {
                return write!(f, "overloaded: {breaker}")
            }
            Reason::Breaker(breaker) => write!(f, "overloaded: {breaker}")?,
            Reason::Runtime(runtime) => write!(f, "overloaded: {runtime}")?,
        }
        write!(f, "; retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for Overloaded {}

/// The future of a refused call: resolves at once to the boxed [`Overloaded`].
fn refused<T>(overloaded: Overloaded) -> std::task::Poll<Result<T, BoxError>> {
    std::task::Poll::Ready(Err(Box::new(overloaded)))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A controllable inner service and a poll without a runtime.

    use super::BoxError;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use tower_service::Service;

    /// Answers `Ok(request)`, or `Err("boom")` for a negative request; counts its calls.
    /// Its futures are ready at their first poll, so a test holds a call "in flight" by
    /// not polling its future yet.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Echo {
        pub(crate) calls: Arc<AtomicUsize>,
    }

    impl Service<i32> for Echo {
        type Response = i32;
        type Error = BoxError;
        type Future = std::future::Ready<Result<i32, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: i32) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(if request < 0 {
                Err("boom".into())
            } else {
                Ok(request)
            })
        }
    }

    impl Echo {
        pub(crate) fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    /// Polls `future` once; the test's futures never wait.
    pub(crate) fn now<F: Future>(future: F) -> F::Output {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the future was not ready"),
        }
    }

    /// `poll_ready` then `call`, the way a tower caller does it; returns the future.
    pub(crate) fn call<S: Service<R>, R>(service: &mut S, request: R) -> S::Future
    where
        S::Error: std::fmt::Debug,
    {
        let mut cx = Context::from_waker(Waker::noop());
        match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => service.call(request),
            other => panic!("poll_ready: {other:?}"),
        }
    }

    /// The refusal inside `error`.
    pub(crate) fn overloaded(error: &BoxError) -> &super::Overloaded {
        error
            .downcast_ref::<super::Overloaded>()
            .unwrap_or_else(|| panic!("not a refusal: {error}"))
    }
}

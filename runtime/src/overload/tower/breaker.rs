//! [`BreakerLayer`]: a [`TieredBreaker`] in front of a service, a tier per latency class of
//! request.
//!
//! A [`TierOf`] function puts each request in a tier (an interactive read in a 10 ms tier,
//! a report in a 1 s tier, ...). A call in an open tier, or in a half-open tier whose probe
//! slots are taken, is refused; a call let through is timed from `call` to the end of its
//! future, and its result is judged by a [`Classify`] (by default [`ErrorIsFailure`]: an
//! `Err` is a failure; an HTTP server will usually count a 5xx response as one too). A call
//! dropped before it ends is [abandoned](TieredBreaker::abandon): counted as a failure, as
//! the breaker's contract says (it cannot know whether dropped work would have succeeded).

use super::{refused, BoxError, Overloaded, Reason};
use crate::overload::{BreakerError, Call, Clock, ConfigError, Outcome, TierConfig, TieredBreaker};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// Which tier a request belongs to (an index into the layer's tiers). Any
/// `Fn(&R) -> usize` is one.
pub trait TierOf<R> {
    /// The tier of `request`.
    fn tier_of(&self, request: &R) -> usize;
}

impl<R, F: Fn(&R) -> usize> TierOf<R> for F {
    fn tier_of(&self, request: &R) -> usize {
        self(request)
    }
}

/// Whether a finished call succeeded, for the breaker (its latency is judged separately:
/// a success slower than the tier's bound is still a timeout). Any
/// `Fn(&Result<T, E>) -> Outcome` is one.
pub trait Classify<T, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F: Fn(&Result<T, E>) -> Outcome> Classify<T, E> for F {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default [`Classify`]: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorIsFailure;

impl<T, E> Classify<T, E> for ErrorIsFailure {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Error,
        }
    }
}

/// Circuit breakers by latency class: refuses calls in a tier that is open or busy probing.
///
/// ```
/// use gpm::overload::tower::BreakerLayer;
/// use gpm::overload::{SystemClock, TierConfig};
/// use std::time::Duration;
///
/// let tiers = vec![
///     TierConfig::new("interactive", Duration::from_millis(10)),
///     TierConfig::new("report", Duration::from_secs(1)),
/// ];
/// let by_path = |path: &String| usize::from(path.starts_with("/reports"));
/// let layer = BreakerLayer::new(tiers, SystemClock::new(), by_path).unwrap();
/// assert_eq!(layer.breaker().tier("report"), Some(1));
/// assert_eq!(BreakerLayer::new(vec![], SystemClock::new(), by_path).unwrap_err().field, "tiers");
/// ```
pub struct BreakerLayer<C: Clock, T, K = ErrorIsFailure> {
    breaker: Arc<TieredBreaker<C>>,
    /// Each tier's P99 bound: the `retry_after` of a refusal while it probes.
    probe_retry: Arc<[Duration]>,
    tier_of: T,
    classify: K,
}

impl<C: Clock, T: Clone, K: Clone> Clone for BreakerLayer<C, T, K> {
    fn clone(&self) -> Self {
        BreakerLayer {
            breaker: Arc::clone(&self.breaker),
            probe_retry: Arc::clone(&self.probe_retry),
            tier_of: self.tier_of.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<C: Clock + fmt::Debug, T, K> fmt::Debug for BreakerLayer<C, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<C: Clock, T> BreakerLayer<C, T> {
    /// Breakers for `tiers` (at least one) over `clock`; `tier_of` picks each request's
    /// tier. Results are judged by [`ErrorIsFailure`] until [`classify`](Self::classify).
    pub fn new(
        tiers: Vec<TierConfig>,
        clock: C,
        tier_of: T,
    ) -> Result<BreakerLayer<C, T>, ConfigError> {
        let probe_retry = tiers.iter().map(|tier| tier.p99_bound).collect();
        Ok(BreakerLayer {
            breaker: Arc::new(TieredBreaker::new(tiers, clock)?),
            probe_retry,
            tier_of,
            classify: ErrorIsFailure,
        })
    }
}

impl<C: Clock, T, K> BreakerLayer<C, T, K> {
    /// Judges results with `classify` instead.
    pub fn classify<K2>(self, classify: K2) -> BreakerLayer<C, T, K2> {
        BreakerLayer {
            breaker: self.breaker,
            probe_retry: self.probe_retry,
            tier_of: self.tier_of,
            classify,
        }
    }

    /// The breakers every service of this layer shares.
    pub fn breaker(&self) -> &TieredBreaker<C> {
        &self.breaker
    }
}

impl<S, C: Clock, T: Clone, K: Clone> Layer<S> for BreakerLayer<C, T, K> {
    type Service = BreakerService<S, C, T, K>;

    fn layer(&self, inner: S) -> BreakerService<S, C, T, K> {
        BreakerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`BreakerLayer`]; clones share the breakers.
pub struct BreakerService<S, C: Clock, T, K = ErrorIsFailure> {
    inner: S,
    layer: BreakerLayer<C, T, K>,
}

impl<S: Clone, C: Clock, T: Clone, K: Clone> Clone for BreakerService<S, C, T, K> {
    fn clone(&self) -> Self {
        BreakerService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C: Clock + fmt::Debug, T, K> fmt::Debug for BreakerService<S, C, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, C, T, K, R, U> Service<R> for BreakerService<S, C, T, K>
where
    S: Service<R, Response = U>,
    S::Error: Into<BoxError>,
    C: Clock,
    T: TierOf<R>,
    K: Classify<U, S::Error> + Clone,
{
    type Response = U;
    type Error = BoxError;
    type Future = BreakerFuture<S::Future, C, K>;

    /// The inner service's readiness: this layer never waits (module docs of
    /// [`tower`](super)).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let layer = &self.layer;
        let tier = layer.tier_of.tier_of(&request);
        let refusal = match layer.breaker.try_call(tier) {
            Ok(call) => {
                return BreakerFuture {
                    guard: Some(CallGuard {
                        breaker: Arc::clone(&layer.breaker),
                        call: Some(call),
                    }),
                    inner: Some(self.inner.call(request)),
                    classify: Some(layer.classify.clone()),
                    refusal: None,
                }
            }
            Err(BreakerError::Open { tier, retry_after }) => Refusal::Overloaded(Overloaded {
                reason: Reason::Breaker(BreakerError::Open { tier, retry_after }),
                retry_after,
            }),
            Err(probing @ BreakerError::Probing { .. }) => Refusal::Overloaded(Overloaded {
                reason: Reason::Breaker(probing),
                retry_after: layer.probe_retry.get(tier).copied().unwrap_or_default(),
            }),
            // A `TierOf` bug, not overload: an error of its own (a server's 500).
            Err(unknown) => Refusal::UnknownTier(unknown),
        };
        BreakerFuture {
            inner: None,
            guard: None,
            classify: None,
            refusal: Some(refusal),
        }
    }
}

/// Why a [`BreakerFuture`] resolves without calling the inner service.
#[derive(Debug, Clone)]
enum Refusal {
    Overloaded(Overloaded),
    UnknownTier(BreakerError),
}

/// A call let through; abandoned (a failure) if dropped before it ends.
struct CallGuard<C: Clock> {
    breaker: Arc<TieredBreaker<C>>,
    call: Option<Call>,
}

impl<C: Clock> Drop for CallGuard<C> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            self.breaker.abandon(call);
        }
    }
}

pin_project! {
    /// The future of a [`BreakerService`] call: the refusal, or the inner future whose
    /// result and latency the breaker learns when it ends.
    pub struct BreakerFuture<F, C: Clock, K> {
        #[pin]
        inner: Option<F>,
        guard: Option<CallGuard<C>>,
        classify: Option<K>,
        refusal: Option<Refusal>,
    }
}

impl<F, C: Clock, K> fmt::Debug for BreakerFuture<F, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerFuture")
            .field("refusal", &self.refusal)
            .field("running", &self.inner.is_some())
            .finish()
    }
}

impl<F, T, E, C, K> Future for BreakerFuture<F, C, K>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Clock,
    K: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = match (this.refusal, this.inner.as_pin_mut()) {
            (Some(Refusal::Overloaded(refusal)), _) => return refused(refusal.clone()),
            (Some(Refusal::UnknownTier(error)), _) => {
                return Poll::Ready(Err(Box::new(error.clone())))
            }
            (None, Some(inner)) => inner,
            (None, None) => return Poll::Pending, // never built that way
        };
        let output = std::task::ready!(inner.poll(cx));
        let call = this.guard.as_mut().and_then(|guard| guard.call.take());
        if let (Some(guard), Some(call), Some(classify)) =
            (this.guard.as_ref(), call, this.classify.as_ref())
        {
            guard.breaker.complete(call, classify.classify(&output));
        }
        Poll::Ready(output.map_err(Into::into))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload::tower::test_support::{call, now, overloaded, Echo};
    use crate::overload::{BreakerState, ManualClock};

    const MS: Duration = Duration::from_millis(1);

    type Tiered =
        BreakerService<Echo, ManualClock, fn(&i32) -> usize, fn(&Result<i32, BoxError>) -> Outcome>;

    /// Requests under 1000 are "fast" (10 ms bound, trips on 2 timeouts in a row, 50 ms
    /// cool-down, 2 probes), the others "slow" (500 ms); a response of 13 is a failure.
    fn service(clock: &ManualClock) -> (Tiered, Echo) {
        let fast = TierConfig {
            consecutive_timeouts: 2,
            cool_down: 50 * MS,
            half_open_probes: 2,
            ..TierConfig::new("fast", 10 * MS)
        };
        let slow = TierConfig::new("slow", 500 * MS);
        let tier_of: fn(&i32) -> usize = |request| usize::from(*request >= 1000);
        let classify: fn(&Result<i32, BoxError>) -> Outcome = |result| match result {
            Ok(13) | Err(_) => Outcome::Error,
            Ok(_) => Outcome::Success,
        };
        let layer = BreakerLayer::new(vec![fast, slow], clock.clone(), tier_of)
            .unwrap()
            .classify(classify);
        let echo = Echo::default();
        (layer.layer(echo.clone()), echo)
    }

    fn timed(
        service: &mut Tiered,
        clock: &ManualClock,
        request: i32,
        took: Duration,
    ) -> Result<i32, BoxError> {
        let future = call(service, request);
        clock.advance(took);
        now(future)
    }

    /// The fast tier (0) is open.
    #[track_caller]
    fn assert_fast_tier_open(service: &Tiered) {
        assert!(matches!(
            service.layer.breaker().state(0).unwrap(),
            BreakerState::Open { .. }
        ));
    }

    fn trip(service: &mut Tiered, clock: &ManualClock) {
        timed(service, clock, 1, 20 * MS).unwrap();
        timed(service, clock, 2, 20 * MS).unwrap();
        assert_fast_tier_open(service);
    }

    #[test]
    fn a_slow_tier_opens_alone_then_half_opens_and_closes() {
        let clock = ManualClock::new();
        let (mut service, echo) = service(&clock);
        // Fast calls keep the tier closed.
        for i in 0..5 {
            timed(&mut service, &clock, i, MS).unwrap();
        }
        trip(&mut service, &clock);
        let calls = echo.calls();
        let error = now(call(&mut service, 3)).unwrap_err();
        let refusal = overloaded(&error);
        assert_eq!(
            refusal.reason,
            Reason::Breaker(BreakerError::Open {
                tier: "fast".into(),
                retry_after: 50 * MS
            })
        );
        assert_eq!(refusal.retry_after, 50 * MS);
        assert_eq!(echo.calls(), calls);
        // The slow tier is another breaker: 20 ms is fine there.
        assert_eq!(timed(&mut service, &clock, 1000, 20 * MS).unwrap(), 1000);
        // Cool-down over: two probes go through, a third is refused while they run.
        clock.advance(30 * MS);
        let p1 = call(&mut service, 4);
        let p2 = call(&mut service, 5);
        let error = now(call(&mut service, 6)).unwrap_err();
        let refusal = overloaded(&error);
        assert_eq!(
            refusal.reason,
            Reason::Breaker(BreakerError::Probing {
                tier: "fast".into()
            })
        );
        assert_eq!(refusal.retry_after, 10 * MS);
        now(p1).unwrap();
        now(p2).unwrap();
        assert_eq!(
            service.layer.breaker().state(0).unwrap(),
            BreakerState::Closed
        );
        assert_eq!(timed(&mut service, &clock, 7, MS).unwrap(), 7);
    }

    #[test]
    fn a_failed_or_dropped_probe_reopens() {
        let clock = ManualClock::new();
        let (mut service, _) = service(&clock);
        trip(&mut service, &clock);
        clock.advance(50 * MS);
        // The classifier says 13 is a failure, however fast.
        assert_eq!(timed(&mut service, &clock, 13, MS).unwrap(), 13);
        assert_eq!(
            service.layer.breaker().state(0).unwrap(),
            BreakerState::Open {
                retry_after: 50 * MS
            }
        );
        clock.advance(50 * MS);
        drop(call(&mut service, 1));
        assert_fast_tier_open(&service);
        // Inner errors count as failures and pass through unchanged.
        clock.advance(50 * MS);
        let error = timed(&mut service, &clock, -1, MS).unwrap_err();
        assert_eq!(error.to_string(), "boom");
        assert_fast_tier_open(&service);
    }

    #[test]
    fn an_unknown_tier_is_an_error_not_a_refusal() {
        let clock = ManualClock::new();
        let tier_of = |_: &i32| 7;
        let layer = BreakerLayer::new(vec![TierConfig::new("only", MS)], clock, tier_of).unwrap();
        let echo = Echo::default();
        let mut service = layer.layer(echo.clone());
        let error = now(call(&mut service, 1)).unwrap_err();
        assert!(error.downcast_ref::<Overloaded>().is_none());
        assert_eq!(
            error.downcast_ref::<BreakerError>(),
            Some(&BreakerError::UnknownTier { index: 7, tiers: 1 })
        );
        assert_eq!(echo.calls(), 0);
    }

    #[test]
    fn bad_tiers_name_their_field() {
        let bad = TierConfig {
            half_open_probes: 0,
            ..TierConfig::new("x", MS)
        };
        let error = BreakerLayer::new(vec![bad], ManualClock::new(), |_: &i32| 0).unwrap_err();
        assert_eq!(error.field, "tiers[0].min_calls/half_open_probes");
    }
}

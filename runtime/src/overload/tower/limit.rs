//! [`ConcurrencyLimitLayer`]: [`AdaptiveLimiter`] in front of a service.
//!
//! Each call takes a permit in `call` and holds it until its future ends or is dropped; the
//! time it held the permit is the call's service time `S`, and the limiter keeps the
//! permits at `ceil(lambda * S * headroom)` (see [`AdaptiveLimiter`]). At the limit the call
//! is refused, not queued: `poll_ready` stays the inner service's (module docs of
//! [`tower`](super)).

use super::guarded::GuardedFuture;
use super::runtime::{RuntimeConfig, RuntimeGate};
use super::{BoxError, Overloaded, Reason};
use crate::overload::{AdaptiveLimiter, Clock, ConfigError, LimiterConfig, Permit};
use crate::runtime::Handle;
use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// Refuses calls beyond `ceil(lambda * S * headroom)` in flight (and, with
/// [`from_runtime`](ConcurrencyLimitLayer::from_runtime), while the runtime's queues are
/// over their target).
///
/// ```
/// use gpm::overload::tower::ConcurrencyLimitLayer;
/// use gpm::overload::{LimiterConfig, SystemClock};
///
/// let layer = ConcurrencyLimitLayer::new(LimiterConfig::new(4, 256), SystemClock::new()).unwrap();
/// assert_eq!(layer.limiter().limit(), 4);
/// let error = ConcurrencyLimitLayer::new(LimiterConfig::new(0, 4), SystemClock::new()).unwrap_err();
/// assert_eq!(error.field, "min/max");
/// ```
pub struct ConcurrencyLimitLayer<C: Clock> {
    limiter: AdaptiveLimiter<C>,
    retry_after: Duration,
    gate: Option<RuntimeGate<C>>,
}

impl<C: Clock> Clone for ConcurrencyLimitLayer<C> {
    fn clone(&self) -> Self {
        ConcurrencyLimitLayer {
            limiter: self.limiter.clone(),
            retry_after: self.retry_after,
            gate: self.gate.clone(),
        }
    }
}

impl<C: Clock + fmt::Debug> fmt::Debug for ConcurrencyLimitLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitLayer")
            .field("limiter", &self.limiter)
            .field("retry_after", &self.retry_after)
            .field("gate", &self.gate)
            .finish()
    }
}

impl<C: Clock> ConcurrencyLimitLayer<C> {
    /// A layer with `config` over `clock`; refusals say to retry after one `interval` (when
    /// the limit is next recomputed).
    pub fn new(config: LimiterConfig, clock: C) -> Result<ConcurrencyLimitLayer<C>, ConfigError> {
        let retry_after = config.interval;
        Ok(ConcurrencyLimitLayer {
            limiter: AdaptiveLimiter::new(config, clock)?,
            retry_after,
            gate: None,
        })
    }

    /// [`new`](ConcurrencyLimitLayer::new) plus a [`RuntimeGate`] over `handle`'s runtime:
    /// calls are also refused while the runtime's run queues are over `runtime`'s targets.
    pub fn from_runtime(
        handle: &Handle,
        config: LimiterConfig,
        runtime: RuntimeConfig,
        clock: C,
    ) -> Result<ConcurrencyLimitLayer<C>, ConfigError>
    where
        C: Clone,
    {
        let gate = RuntimeGate::from_runtime(handle, runtime, clock.clone())?;
        Ok(ConcurrencyLimitLayer::new(config, clock)?.with_gate(gate))
    }

    /// Also consults `gate` (checked first) before each call.
    pub fn with_gate(mut self, gate: RuntimeGate<C>) -> ConcurrencyLimitLayer<C> {
        self.gate = Some(gate);
        self
    }

    /// Sets the refusals' `retry_after`.
    pub fn retry_after(mut self, retry_after: Duration) -> ConcurrencyLimitLayer<C> {
        self.retry_after = retry_after;
        self
    }

    /// The limiter every service of this layer shares.
    pub fn limiter(&self) -> &AdaptiveLimiter<C> {
        &self.limiter
    }
}

impl<S, C: Clock> Layer<S> for ConcurrencyLimitLayer<C> {
    type Service = ConcurrencyLimitService<S, C>;

    fn layer(&self, inner: S) -> ConcurrencyLimitService<S, C> {
        ConcurrencyLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`ConcurrencyLimitLayer`]; clones share the limiter (a clone holds no
/// permit: permits belong to calls).
pub struct ConcurrencyLimitService<S, C: Clock> {
    inner: S,
    layer: ConcurrencyLimitLayer<C>,
}

impl<S: Clone, C: Clock> Clone for ConcurrencyLimitService<S, C> {
    fn clone(&self) -> Self {
        ConcurrencyLimitService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C: Clock + fmt::Debug> fmt::Debug for ConcurrencyLimitService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, C, R> Service<R> for ConcurrencyLimitService<S, C>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = LimitFuture<S::Future, C>;

    /// The inner service's readiness: this layer never waits (see the module docs).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let layer = &self.layer;
        if let Some(Err(refusal)) = layer.gate.as_ref().map(RuntimeGate::check) {
            return LimitFuture::refused(refusal);
        }
        match layer.limiter.try_acquire() {
            Ok(permit) => LimitFuture::running(self.inner.call(request), permit),
            Err(exceeded) => LimitFuture::refused(Overloaded {
                reason: Reason::ConcurrencyLimit(exceeded),
                retry_after: layer.retry_after,
            }),
        }
    }
}

/// The future of a [`ConcurrencyLimitService`] call: the refusal, or the inner future
/// holding its permit until it ends (or is dropped). See [`GuardedFuture`].
pub type LimitFuture<F, C> = GuardedFuture<F, Permit<C>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload::tower::test_support::{call, now, overloaded, Echo};
    use crate::overload::{LimitExceeded, ManualClock};
    use std::task::Waker;

    const MS: Duration = Duration::from_millis(1);

    /// min 1, max 64, starting at 8; no headroom and no smoothing, so the limit is
    /// exactly `ceil(lambda * S)` of the last 100 ms.
    fn layer(clock: &ManualClock) -> ConcurrencyLimitLayer<ManualClock> {
        let config = LimiterConfig {
            initial: 8,
            headroom: 1.0,
            alpha: 1.0,
            ..LimiterConfig::new(1, 64)
        };
        ConcurrencyLimitLayer::new(config, clock.clone()).unwrap()
    }

    /// One 100 ms interval: ten rounds of `k` calls held 9 ms each, then 1 ms idle.
    /// lambda = 10k / 0.1 s, S = 9 ms: lambda * S = 0.9 k.
    fn interval(
        service: &mut ConcurrencyLimitService<Echo, ManualClock>,
        clock: &ManualClock,
        k: usize,
    ) {
        for _ in 0..10 {
            let held: Vec<_> = (0..k).map(|i| call(service, i as i32)).collect();
            clock.advance(9 * MS);
            for future in held {
                now(future).unwrap();
            }
            clock.advance(MS);
        }
    }

    #[test]
    fn the_limit_holds_at_ceil_lambda_s() {
        let clock = ManualClock::new();
        let layer = layer(&clock);
        let echo = Echo::default();
        let mut service = layer.layer(echo.clone());
        // 5 at a time: 500/s * 9 ms = 4.5, so 5 permits.
        interval(&mut service, &clock, 5);
        assert_eq!(layer.limiter().limit(), 5);
        let held: Vec<_> = (0..5).map(|i| call(&mut service, i)).collect();
        let before = echo.calls();
        // At the limit poll_ready still says Ready (shed, never wait); call refuses.
        let mut cx = std::task::Context::from_waker(Waker::noop());
        assert!(matches!(
            Service::<i32>::poll_ready(&mut service, &mut cx),
            Poll::Ready(Ok(()))
        ));
        let error = now(call(&mut service, 5)).unwrap_err();
        let refusal = overloaded(&error);
        assert_eq!(
            refusal.reason,
            Reason::ConcurrencyLimit(LimitExceeded {
                limit: 5,
                in_flight: 5
            })
        );
        assert_eq!(refusal.retry_after, 100 * MS);
        assert_eq!(
            echo.calls(),
            before,
            "a refused call reaches the inner service"
        );
        // One call ends: its permit comes back and the next call is admitted.
        let mut held = held.into_iter();
        now(held.next().unwrap()).unwrap();
        assert_eq!(now(call(&mut service, 6)).unwrap(), 6);
        drop(held);
        assert_eq!(layer.limiter().in_flight(), 0);
    }

    #[test]
    fn the_limit_follows_the_load_through_clones() {
        let clock = ManualClock::new();
        let layer = layer(&clock);
        let mut service = layer.layer(Echo::default());
        let mut clone = service.clone();
        interval(&mut service, &clock, 2);
        // 200/s * 9 ms = 1.8: 2.
        assert_eq!(layer.limiter().limit(), 2);
        let _a = call(&mut service, 0);
        let _b = call(&mut clone, 1);
        assert!(now(call(&mut clone, 2)).is_err());
    }

    #[test]
    fn dropped_calls_return_their_permit() {
        let clock = ManualClock::new();
        let layer = layer(&clock);
        let mut service = layer.layer(Echo::default());
        let held: Vec<_> = (0..8).map(|i| call(&mut service, i)).collect();
        assert!(now(call(&mut service, 8)).is_err());
        drop(held);
        assert_eq!(layer.limiter().in_flight(), 0);
        assert_eq!(now(call(&mut service, 9)).unwrap(), 9);
    }
}

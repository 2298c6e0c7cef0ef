//! [`AdmissionLayer`]: [`P99Admission`] in front of a service.
//!
//! Each call is offered to the controller; an admitted call's latency (from `call` to the
//! end of its future, or to its drop if cancelled) is recorded when it ends, so the
//! controller's probe budget never leaks. The controller's bounded queue is not used: a
//! tower service that refuses should refuse now, so `queue_capacity` must be 0.

use super::guarded::GuardedFuture;
use super::runtime::{RuntimeConfig, RuntimeGate};
use super::{BoxError, Overloaded, Reason};
use crate::overload::{Admission, AdmissionConfig, Clock, ConfigError, P99Admission};
use crate::runtime::Handle;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// Refuses calls while the P99 latency of the last window is over a target (and, with
/// [`from_runtime`](AdmissionLayer::from_runtime), while the runtime's queues are).
///
/// ```
/// use gpm::overload::tower::AdmissionLayer;
/// use gpm::overload::{AdmissionConfig, SystemClock};
/// use std::time::Duration;
///
/// let layer = AdmissionLayer::new(AdmissionConfig::new(Duration::from_millis(50)), SystemClock::new());
/// assert!(layer.is_ok());
/// let queueing = AdmissionConfig { queue_capacity: 8, ..AdmissionConfig::new(Duration::from_millis(50)) };
/// let error = AdmissionLayer::new(queueing, SystemClock::new()).unwrap_err();
/// assert_eq!(error.field, "queue_capacity");
/// ```
pub struct AdmissionLayer<C: Clock> {
    admission: Arc<P99Admission<(), C>>,
    clock: C,
    target: Duration,
    retry_after: Duration,
    gate: Option<RuntimeGate<C>>,
}

impl<C: Clock + Clone> Clone for AdmissionLayer<C> {
    fn clone(&self) -> Self {
        AdmissionLayer {
            admission: Arc::clone(&self.admission),
            clock: self.clock.clone(),
            target: self.target,
            retry_after: self.retry_after,
            gate: self.gate.clone(),
        }
    }
}

impl<C: Clock + fmt::Debug> fmt::Debug for AdmissionLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionLayer")
            .field("target", &self.target)
            .field("retry_after", &self.retry_after)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<C: Clock + Clone> AdmissionLayer<C> {
    /// A layer with `config` (whose `queue_capacity` must be 0) over `clock`; refusals say
    /// to retry after one slot of the window (`window / buckets`).
    pub fn new(config: AdmissionConfig, clock: C) -> Result<AdmissionLayer<C>, ConfigError> {
        if config.queue_capacity != 0 {
            return Err(ConfigError {
                field: "queue_capacity".to_owned(),
                reason: "the tower layer refuses instead of queueing: must be 0".to_owned(),
            });
        }
        let target = config.target_p99;
        let retry_after = config.window / u32::try_from(config.buckets.max(1)).unwrap_or(u32::MAX);
        Ok(AdmissionLayer {
            admission: Arc::new(P99Admission::new(config, clock.clone())?),
            clock,
            target,
            retry_after,
            gate: None,
        })
    }

    /// [`new`](AdmissionLayer::new) plus a [`RuntimeGate`] over `handle`'s runtime: calls
    /// are also refused while the runtime's run queues are over `runtime`'s targets.
    pub fn from_runtime(
        handle: &Handle,
        config: AdmissionConfig,
        runtime: RuntimeConfig,
        clock: C,
    ) -> Result<AdmissionLayer<C>, ConfigError> {
        let gate = RuntimeGate::from_runtime(handle, runtime, clock.clone())?;
        Ok(AdmissionLayer::new(config, clock)?.with_gate(gate))
    }

    /// Also consults `gate` (checked first) before each call.
    pub fn with_gate(mut self, gate: RuntimeGate<C>) -> AdmissionLayer<C> {
        self.gate = Some(gate);
        self
    }

    /// Sets the refusals' `retry_after`.
    pub fn retry_after(mut self, retry_after: Duration) -> AdmissionLayer<C> {
        self.retry_after = retry_after;
        self
    }

    /// The controller every service of this layer shares.
    pub fn admission(&self) -> &P99Admission<(), C> {
        &self.admission
    }
}

impl<S, C: Clock + Clone> Layer<S> for AdmissionLayer<C> {
    type Service = AdmissionService<S, C>;

    fn layer(&self, inner: S) -> AdmissionService<S, C> {
        AdmissionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of an [`AdmissionLayer`]; clones share the controller.
pub struct AdmissionService<S, C: Clock> {
    inner: S,
    layer: AdmissionLayer<C>,
}

impl<S: Clone, C: Clock + Clone> Clone for AdmissionService<S, C> {
    fn clone(&self) -> Self {
        AdmissionService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C: Clock + fmt::Debug> fmt::Debug for AdmissionService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, C, R> Service<R> for AdmissionService<S, C>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    C: Clock + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AdmissionFuture<S::Future, C>;

    /// The inner service's readiness: this layer never waits (see the module docs).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let layer = &self.layer;
        if let Some(Err(refusal)) = layer.gate.as_ref().map(RuntimeGate::check) {
            return AdmissionFuture::refused(refusal);
        }
        match layer.admission.offer(()) {
            Ok(Admission::Run(())) => {
                let record = LatencyRecord {
                    admission: Arc::clone(&layer.admission),
                    started: layer.clock.now(),
                    clock: layer.clock.clone(),
                };
                AdmissionFuture::running(self.inner.call(request), record)
            }
            // `Queued` needs a queue, and `new` allows none; refuse rather than strand it.
            Ok(Admission::Queued) => AdmissionFuture::refused(Overloaded {
                reason: Reason::Admission {
                    p99: None,
                    target: layer.target,
                },
                retry_after: layer.retry_after,
            }),
            Err(rejected) => AdmissionFuture::refused(Overloaded {
                reason: Reason::Admission {
                    p99: rejected.p99,
                    target: rejected.target,
                },
                retry_after: layer.retry_after,
            }),
        }
    }
}

/// What an admitted call holds: records the call's latency (from `call` to the end of its
/// future, or to its drop if cancelled) into the layer's [`P99Admission`] when dropped.
pub struct LatencyRecord<C: Clock> {
    admission: Arc<P99Admission<(), C>>,
    clock: C,
    started: Duration,
}

impl<C: Clock> Drop for LatencyRecord<C> {
    fn drop(&mut self) {
        let latency = self.clock.now().saturating_sub(self.started);
        self.admission.record(latency);
    }
}

impl<C: Clock> fmt::Debug for LatencyRecord<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyRecord")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// The future of an [`AdmissionService`] call: the refusal, or the inner future with its
/// latency recorded when it ends (or is dropped). See [`GuardedFuture`].
pub type AdmissionFuture<F, C> = GuardedFuture<F, LatencyRecord<C>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload::tower::test_support::{call, now, overloaded, Echo};
    use crate::overload::tower::{RuntimeOverload, RuntimeSample};
    use crate::overload::ManualClock;
    use std::sync::Mutex;

    const MS: Duration = Duration::from_millis(1);

    /// Target 10 ms over a 100 ms window of 10 slots, 10 samples, P99 refreshed every ms.
    fn layer(clock: &ManualClock) -> AdmissionLayer<ManualClock> {
        let config = AdmissionConfig {
            window: 100 * MS,
            buckets: 10,
            min_samples: 10,
            refresh: MS,
            ..AdmissionConfig::new(10 * MS)
        };
        AdmissionLayer::new(config, clock.clone()).unwrap()
    }

    /// `n` calls that each take `took` on the clock.
    fn calls(
        service: &mut AdmissionService<Echo, ManualClock>,
        clock: &ManualClock,
        n: usize,
        took: Duration,
    ) {
        for i in 0..n {
            let future = call(service, i as i32);
            clock.advance(took);
            assert_eq!(now(future).unwrap(), i as i32);
        }
    }

    #[test]
    fn admits_under_target_refuses_over_it_and_recovers() {
        let clock = ManualClock::new();
        let echo = Echo::default();
        let mut service = layer(&clock).layer(echo.clone());
        // Fast calls: a P99 under the target.
        calls(&mut service, &clock, 20, MS);
        clock.advance(MS);
        assert!(service.layer.admission().is_open());
        // A slow call pushes the P99 over it (1 of 21 is more than 1%).
        calls(&mut service, &clock, 1, 50 * MS);
        clock.advance(MS);
        let before = echo.calls();
        let error = now(call(&mut service, 1)).unwrap_err();
        let refusal = overloaded(&error);
        match refusal.reason {
            Reason::Admission {
                p99: Some(p99),
                target,
            } => assert!(p99 > target && target == 10 * MS, "{refusal}"),
            ref other => panic!("{other:?}"),
        }
        assert_eq!(refusal.retry_after, 10 * MS);
        assert!(refusal.to_string().contains("over the target"), "{refusal}");
        // The inner service was not called.
        assert_eq!(echo.calls(), before);
        // The slow values leave the window: admitted again.
        clock.advance(100 * MS);
        assert_eq!(now(call(&mut service, 7)).unwrap(), 7);
        assert_eq!(echo.calls(), before + 1);
    }

    #[test]
    fn cancelled_calls_are_recorded_and_clones_share_the_controller() {
        let clock = ManualClock::new();
        let layer = layer(&clock);
        let mut a = layer.layer(Echo::default());
        let mut b = a.clone();
        // min_samples = 10 probes in flight while probing: the eleventh is refused...
        let held: Vec<_> = (0..10)
            .map(|i| call(if i % 2 == 0 { &mut a } else { &mut b }, i))
            .collect();
        let error = now(call(&mut b, 10)).unwrap_err();
        assert_eq!(
            overloaded(&error).reason,
            Reason::Admission {
                p99: None,
                target: 10 * MS
            }
        );
        // ...until calls end, even by being dropped: their latency is recorded.
        drop(held);
        assert_eq!(now(call(&mut a, 11)).unwrap(), 11);
    }

    #[test]
    fn inner_errors_pass_through() {
        let clock = ManualClock::new();
        let mut service = layer(&clock).layer(Echo::default());
        let error = now(call(&mut service, -1)).unwrap_err();
        assert!(error.downcast_ref::<Overloaded>().is_none());
        assert_eq!(error.to_string(), "boom");
    }

    #[test]
    fn a_runtime_gate_refuses_first() {
        let clock = ManualClock::new();
        let sample = Arc::new(Mutex::new(RuntimeSample {
            queue_wait_mean: Some(5 * MS),
            ..RuntimeSample::default()
        }));
        let source = Arc::clone(&sample);
        let gate = RuntimeGate::from_fn(
            RuntimeConfig::new(100 * MS, 2 * MS),
            clock.clone(),
            move || source.lock().unwrap().clone(),
        )
        .unwrap();
        let echo = Echo::default();
        let mut service = layer(&clock).with_gate(gate.clone()).layer(echo.clone());
        let error = now(call(&mut service, 1)).unwrap_err();
        assert!(matches!(
            overloaded(&error).reason,
            Reason::Runtime(RuntimeOverload::QueueWait { .. })
        ));
        assert_eq!(echo.calls(), 0);
        sample.lock().unwrap().queue_wait_mean = Some(MS);
        clock.advance(100 * MS);
        assert_eq!(now(call(&mut service, 1)).unwrap(), 1);
        assert_eq!(gate.reads(), 2);
    }
}

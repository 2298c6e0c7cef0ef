//! The runtime as a signal source: a [`RuntimeGate`] reads [`Handle::probes`] at most once
//! per window and refuses while the runtime itself is overloaded.
//!
//! The layers' own controls see one service's calls from the edge. The runtime sees every
//! task, and the part of their latency that is pure waiting: the run queues. Two signals
//! come from it:
//!
//! * **Queue wait**: `W` of the run queues (the probes' second Little's law: mean enqueue-
//!   to-poll wait over the probes' sliding window). Over `queue_wait_target`, tasks wait
//!   for a P longer than the objective allows, whatever the edge P99 says yet.
//! * **The knee**: once the probes' detector has found the knee of `L(lambda)`, a task
//!   arrival rate at or past it means queues grow faster than throughput.
//!
//! The snapshot also carries `lambda`, `W` of the tasks and the queue-wait P99, for reports
//! ([`RuntimeGate::sample`]). The P99 is not a trigger: the probes' histograms count from
//! the runtime's start, so a bad minute would keep it high (and the gate shut) long after
//! the queues drained; the windowed mean recovers as soon as they do.
//!
//! # Cost per call
//!
//! One clock read and a relaxed-acquire load of the next refresh time; one load of the
//! verdict. The call that finds the window over claims the refresh with a compare-exchange
//! (no other call waits for it) and takes the snapshot inline: `Handle::probes()` merges
//! the Ps' histograms, so one call per window pays some microseconds. The sample and the
//! refusal's details sit behind a mutex that only the refresher and refused calls touch.
//!
//! Each `probes()` call also adds a point to the probes' Little's-law windows and the knee
//! detector (as any reader's call does), which is what keeps `lambda` fresh when nothing
//! else reads the probes.

use super::{Overloaded, Reason};
use crate::overload::{Clock, ConfigError};
use crate::runtime::Handle;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A [`RuntimeGate`]'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// How often the runtime is read (positive); also the refusal's `retry_after`.
    pub window: Duration,
    /// Refuse while the mean run-queue wait over the probes' window is above this
    /// (positive when set).
    pub queue_wait_target: Option<Duration>,
    /// Refuse while the task arrival rate is at or past the knee (once one is found).
    pub refuse_past_knee: bool,
}

impl RuntimeConfig {
    /// Read every `window`, refuse on a mean queue wait over `queue_wait_target`, ignore the
    /// knee.
    pub fn new(window: Duration, queue_wait_target: Duration) -> RuntimeConfig {
        RuntimeConfig {
            window,
            queue_wait_target: Some(queue_wait_target),
            refuse_past_knee: false,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let error = |field: &str, reason: &str| ConfigError {
            field: format!("runtime.{field}"),
            reason: reason.to_owned(),
        };
        if self.window.is_zero() {
            return Err(error("window", "must be positive"));
        }
        match self.queue_wait_target {
            Some(target) if target.is_zero() => {
                Err(error("queue_wait_target", "must be positive when set"))
            }
            None if !self.refuse_past_knee => Err(error(
                "queue_wait_target/refuse_past_knee",
                "the gate needs at least one signal to act on",
            )),
            _ => Ok(()),
        }
    }
}

/// What a [`RuntimeGate`] read from the runtime.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuntimeSample {
    /// Tasks spawned per second over the probes' window (0 before two snapshots).
    pub lambda: f64,
    /// Mean task sojourn `W` over the window; `None` when nothing was sampled.
    pub w: Option<Duration>,
    /// Mean run-queue wait over the window; `None` when nothing was sampled.
    pub queue_wait_mean: Option<Duration>,
    /// Queue-wait P99 since the runtime started (reported, not acted on).
    pub queue_wait_p99: Duration,
    /// The knee's arrival rate, once the detector found one.
    pub knee_lambda: Option<f64>,
}

impl RuntimeSample {
    /// The parts of a [`Probes`](crate::probe::Probes) snapshot the gate uses.
    pub fn from_probes(probes: &crate::probe::Probes) -> RuntimeSample {
        let seconds = |s: f64| (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
        RuntimeSample {
            lambda: probes.little_tasks.map_or(0.0, |law| law.lambda),
            w: probes.little_tasks.and_then(|law| seconds(law.w_s)),
            queue_wait_mean: probes.little_queues.and_then(|law| seconds(law.w_s)),
            queue_wait_p99: Duration::from_nanos(probes.queue_wait.p99_ns),
            knee_lambda: probes.knee.map(|knee| knee.lambda),
        }
    }
}

/// Why a [`RuntimeGate`] refuses.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeOverload {
    /// The mean run-queue wait is over the target.
    QueueWait {
        /// The mean wait over the probes' window.
        mean: Duration,
        /// The target.
        target: Duration,
    },
    /// The task arrival rate is at or past the knee.
    PastKnee {
        /// Tasks spawned per second.
        lambda: f64,
        /// The knee's arrival rate.
        knee: f64,
    },
}

impl fmt::Display for RuntimeOverload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeOverload::QueueWait { mean, target } => write!(
                f,
                "the runtime's mean run-queue wait {mean:?} is over the target {target:?}"
            ),
            RuntimeOverload::PastKnee { lambda, knee } => write!(
                f,
                "the runtime's task arrival rate {lambda:.0}/s is past the knee at {knee:.0}/s"
            ),
        }
    }
}

type Source = Box<dyn Fn() -> RuntimeSample + Send + Sync>;

struct GateInner<C> {
    clock: C,
    config: RuntimeConfig,
    source: Source,
    /// Clock time, ns, when the next snapshot is due (0 at first: the first call reads).
    next_ns: AtomicU64,
    /// Whether the last verdict refuses (the one load on the admitted path).
    refusing: AtomicBool,
    /// The last sample and verdict.
    last: Mutex<Option<(RuntimeSample, Option<RuntimeOverload>)>>,
    /// Snapshots taken.
    reads: AtomicU64,
}

/// The runtime's overload verdict, refreshed at most once per window; clones share it, so
/// one gate can sit in several layers and the runtime is still read once per window.
pub struct RuntimeGate<C: Clock> {
    inner: Arc<GateInner<C>>,
}

impl<C: Clock> Clone for RuntimeGate<C> {
    fn clone(&self) -> Self {
        RuntimeGate {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Clock + fmt::Debug> fmt::Debug for RuntimeGate<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeGate")
            .field("clock", &self.inner.clock)
            .field("config", &self.inner.config)
            .field("refusing", &self.inner.refusing.load(Ordering::Relaxed))
            .field("reads", &self.reads())
            .finish_non_exhaustive()
    }
}

impl<C: Clock> RuntimeGate<C> {
    /// A gate over `handle`'s runtime ([`Handle::probes`]), with `config`, timed by `clock`.
    ///
    /// ```
    /// use gpm::overload::tower::{RuntimeConfig, RuntimeGate};
    /// use gpm::overload::SystemClock;
    /// use std::time::Duration;
    ///
    /// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
    /// let config = RuntimeConfig::new(Duration::from_millis(100), Duration::from_millis(5));
    /// let gate = RuntimeGate::from_runtime(rt.handle(), config, SystemClock::new()).unwrap();
    /// assert!(gate.check().is_ok()); // an idle runtime
    /// assert_eq!(gate.reads(), 1);
    /// ```
    pub fn from_runtime(
        handle: &Handle,
        config: RuntimeConfig,
        clock: C,
    ) -> Result<RuntimeGate<C>, ConfigError> {
        let handle = handle.clone();
        RuntimeGate::from_fn(config, clock, move || {
            RuntimeSample::from_probes(&handle.probes())
        })
    }

    /// A gate over any source of samples (a simulation, a test, another runtime's probes).
    pub fn from_fn(
        config: RuntimeConfig,
        clock: C,
        source: impl Fn() -> RuntimeSample + Send + Sync + 'static,
    ) -> Result<RuntimeGate<C>, ConfigError> {
        config.validate()?;
        Ok(RuntimeGate {
            inner: Arc::new(GateInner {
                clock,
                config,
                source: Box::new(source),
                next_ns: AtomicU64::new(0),
                refusing: AtomicBool::new(false),
                last: Mutex::new(None),
                reads: AtomicU64::new(0),
            }),
        })
    }

    /// `Ok` unless the last verdict (refreshed first if the window is over) refuses.
    pub fn check(&self) -> Result<(), Overloaded> {
        let inner = &*self.inner;
        let now = u64::try_from(inner.clock.now().as_nanos()).unwrap_or(u64::MAX);
        let due = inner.next_ns.load(Ordering::Acquire);
        if now >= due {
            let next = now
                .saturating_add(u64::try_from(inner.config.window.as_nanos()).unwrap_or(u64::MAX));
            // One caller wins the window and reads; the others use the verdict they see.
            if inner
                .next_ns
                .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.refresh();
            }
        }
        if !inner.refusing.load(Ordering::Acquire) {
            return Ok(());
        }
        match &*self.lock() {
            Some((_, Some(overload))) => Err(Overloaded {
                reason: Reason::Runtime(overload.clone()),
                retry_after: inner.config.window,
            }),
            _ => Ok(()),
        }
    }

    fn refresh(&self) {
        let inner = &*self.inner;
        let sample = (inner.source)();
        let verdict = verdict(&inner.config, &sample);
        let refusing = verdict.is_some();
        *self.lock() = Some((sample, verdict));
        inner.refusing.store(refusing, Ordering::Release);
        inner.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Option<(RuntimeSample, Option<RuntimeOverload>)>> {
        // One assignment under the lock: a panic elsewhere cannot leave it half-written.
        self.inner.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last sample read, if any.
    pub fn sample(&self) -> Option<RuntimeSample> {
        self.lock().as_ref().map(|(sample, _)| sample.clone())
    }

    /// How many snapshots the gate has taken.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }
}

fn verdict(config: &RuntimeConfig, sample: &RuntimeSample) -> Option<RuntimeOverload> {
    if let (Some(target), Some(mean)) = (config.queue_wait_target, sample.queue_wait_mean) {
        if mean > target {
            return Some(RuntimeOverload::QueueWait { mean, target });
        }
    }
    match sample.knee_lambda {
        Some(knee) if config.refuse_past_knee && sample.lambda >= knee => {
            Some(RuntimeOverload::PastKnee {
                lambda: sample.lambda,
                knee,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    /// A gate over a sample the test sets; the window is 100 ms.
    fn gate(
        config: RuntimeConfig,
    ) -> (
        RuntimeGate<ManualClock>,
        ManualClock,
        Arc<Mutex<RuntimeSample>>,
    ) {
        let clock = ManualClock::new();
        let sample = Arc::new(Mutex::new(RuntimeSample::default()));
        let source = Arc::clone(&sample);
        let gate = RuntimeGate::from_fn(config, clock.clone(), move || {
            source.lock().unwrap().clone()
        })
        .unwrap();
        (gate, clock, sample)
    }

    #[test]
    fn the_runtime_is_read_once_per_window_and_the_verdict_follows_it() {
        let (gate, clock, sample) = gate(RuntimeConfig::new(100 * MS, 2 * MS));
        sample.lock().unwrap().queue_wait_mean = Some(MS);
        for _ in 0..1000 {
            assert!(gate.check().is_ok());
        }
        assert_eq!(gate.reads(), 1);
        // The runtime's queues fill up: the gate sees it at the next window, not before.
        sample.lock().unwrap().queue_wait_mean = Some(5 * MS);
        clock.advance(99 * MS);
        assert!(gate.check().is_ok());
        clock.advance(MS);
        let refused = gate.check().unwrap_err();
        assert_eq!(
            refused,
            Overloaded {
                reason: Reason::Runtime(RuntimeOverload::QueueWait {
                    mean: 5 * MS,
                    target: 2 * MS
                }),
                retry_after: 100 * MS,
            }
        );
        assert!(refused.to_string().contains("run-queue wait"), "{refused}");
        assert!(gate.check().is_err());
        assert_eq!(gate.reads(), 2);
        // The queues drain: open again one window later.
        sample.lock().unwrap().queue_wait_mean = Some(MS);
        clock.advance(100 * MS);
        assert!(gate.check().is_ok());
        assert_eq!(gate.reads(), 3);
        assert_eq!(gate.sample().unwrap().queue_wait_mean, Some(MS));
    }

    #[test]
    fn past_the_knee_refuses_when_asked_to() {
        let config = RuntimeConfig {
            queue_wait_target: None,
            refuse_past_knee: true,
            ..RuntimeConfig::new(100 * MS, MS)
        };
        let (gate, clock, sample) = gate(config);
        *sample.lock().unwrap() = RuntimeSample {
            lambda: 900.0,
            knee_lambda: Some(1000.0),
            ..RuntimeSample::default()
        };
        assert!(gate.check().is_ok());
        sample.lock().unwrap().lambda = 1200.0;
        clock.advance(100 * MS);
        assert_eq!(
            gate.check().unwrap_err().reason,
            Reason::Runtime(RuntimeOverload::PastKnee {
                lambda: 1200.0,
                knee: 1000.0
            })
        );
    }

    #[test]
    fn bad_configs_name_their_field() {
        let clock = ManualClock::new();
        let bad = |config: RuntimeConfig| {
            RuntimeGate::from_fn(config, clock.clone(), RuntimeSample::default)
                .unwrap_err()
                .field
        };
        assert_eq!(
            bad(RuntimeConfig::new(Duration::ZERO, MS)),
            "runtime.window"
        );
        assert_eq!(
            bad(RuntimeConfig::new(MS, Duration::ZERO)),
            "runtime.queue_wait_target"
        );
        let nothing = RuntimeConfig {
            queue_wait_target: None,
            ..RuntimeConfig::new(MS, MS)
        };
        assert_eq!(bad(nothing), "runtime.queue_wait_target/refuse_past_knee");
    }

    #[test]
    fn a_real_runtime_is_a_source() {
        let rt = crate::Runtime::builder()
            .worker_threads(1)
            .probe_sampling(1)
            .build()
            .unwrap();
        let clock = ManualClock::new();
        let config = RuntimeConfig::new(100 * MS, Duration::from_secs(1));
        let gate = RuntimeGate::from_runtime(rt.handle(), config, clock.clone()).unwrap();
        rt.block_on(async {
            for _ in 0..10 {
                crate::spawn(async {}).await.unwrap();
            }
        });
        assert!(gate.check().is_ok());
        clock.advance(100 * MS);
        assert!(gate.check().is_ok());
        assert_eq!(gate.reads(), 2);
        let sample = gate.sample().unwrap();
        assert!(sample.lambda >= 0.0);
        assert!(sample.queue_wait_p99 > Duration::ZERO, "{sample:?}");
    }
}

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
//! # The queue wait over the gate's own window
//!
//! The probes' Little's-law `W` covers their sliding window (a second), which is too slow
//! for a gate read every few milliseconds: after a burst it keeps the gate shut for up to
//! that second, and it reacts as late. So the gate also keeps the cumulative queue-wait
//! totals of its previous read (count and sum of the sampled waits, from the snapshot's
//! histogram) and judges the mean wait *since that read*
//! ([`RuntimeSample::queue_wait_recent`]). A mean of a handful of waits is noise (one
//! preempted worker makes it), so a read that finds fewer than [`MIN_RECENT_WAITS`] new ones
//! keeps the last decision and leaves the baseline where it was: the next read judges
//! both windows' waits together. Without totals (a source that gives none, or the first
//! read) the gate judges the probes' window mean. Sampling: `Builder::probe_sampling` (1
//! times every schedule).
//!
//! # Refusing all, or a share
//!
//! [`Shedding::All`] refuses every call until a read finds the runtime under its targets:
//! simple, but bang-bang. Behind an HTTP server that is costly: a refused request still
//! costs its parse and its 503, so while the gate is shut the server refuses everything it
//! has queued, even what it could have served, then opens on an empty queue. The measured
//! result (`gpm-lab overload-http`) was a goodput far below capacity.
//! [`Shedding::Proportional`] refuses a share of the calls instead, adjusted at each read:
//! over the queue-wait target the admitted share is multiplied by `target / mean` (at most
//! halved), under it raised by `step x (1 - mean / target)`; never below 1%, so the gate
//! keeps seeing admitted work. Which calls are refused is a deterministic thinning (a Weyl
//! sequence on a call counter: spread evenly, no random generator, one atomic add per call
//! while shedding). The queue wait then settles near its target with the server busy, the
//! refusals paying for themselves in the measurement.
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
    /// How the queue-wait signal refuses (the knee always refuses every call).
    pub shedding: Shedding,
}

/// How a [`RuntimeGate`] refuses when the run-queue wait is over its target (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shedding {
    /// Every call until a read finds the wait under the target.
    All,
    /// A share of the calls that follows the wait; `step` (in (0, 1]) is how much of the
    /// admitted share a read under the target may give back.
    Proportional {
        /// Largest increase of the admitted share per read.
        step: f64,
    },
}

/// The admitted share a proportional gate never goes under.
const MIN_ADMITTED: f64 = 0.01;

/// Fewest queue waits sampled since the baseline for the gate to judge their mean.
pub const MIN_RECENT_WAITS: u64 = 16;

/// What the refreshing call and refused calls share.
#[derive(Default)]
struct GateState {
    /// The last sample and verdict.
    last: Option<(RuntimeSample, Option<RuntimeOverload>)>,
    /// Cumulative queue waits (count, sum in ns) when the wait was last judged.
    baseline: Option<(u64, f64)>,
}

impl RuntimeConfig {
    /// Read every `window`, refuse on a mean queue wait over `queue_wait_target`, ignore the
    /// knee.
    pub fn new(window: Duration, queue_wait_target: Duration) -> RuntimeConfig {
        RuntimeConfig {
            window,
            queue_wait_target: Some(queue_wait_target),
            refuse_past_knee: false,
            shedding: Shedding::All,
        }
    }

    /// [`new`](RuntimeConfig::new) with [`Shedding::Proportional`] (`step` 0.1).
    pub fn proportional(window: Duration, queue_wait_target: Duration) -> RuntimeConfig {
        RuntimeConfig {
            shedding: Shedding::Proportional { step: 0.1 },
            ..RuntimeConfig::new(window, queue_wait_target)
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
        if let Shedding::Proportional { step } = self.shedding {
            if !(step > 0.0 && step <= 1.0) {
                return Err(error("shedding.step", "must be in (0, 1]"));
            }
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
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSample {
    /// Tasks spawned per second over the probes' window (0 before two snapshots).
    pub lambda: f64,
    /// Mean task sojourn `W` over the window; `None` when nothing was sampled.
    pub w: Option<Duration>,
    /// Mean run-queue wait over the probes' window; `None` when nothing was sampled.
    pub queue_wait_mean: Option<Duration>,
    /// Mean run-queue wait since the gate's previous read (filled in by the gate from the
    /// totals below); `None` when nothing was sampled in between, or from a source without
    /// totals.
    pub queue_wait_recent: Option<Duration>,
    /// Queue-wait samples since the runtime started (0 if the source has no totals).
    pub queue_waits: u64,
    /// Their sum, nanoseconds.
    pub queue_wait_sum_ns: f64,
    /// The share of calls a proportional gate admits after this read (1 otherwise).
    pub admitted_share: f64,
    /// Queue-wait P99 since the runtime started (reported, not acted on).
    pub queue_wait_p99: Duration,
    /// The knee's arrival rate, once the detector found one.
    pub knee_lambda: Option<f64>,
}

impl Default for RuntimeSample {
    /// Nothing measured; everything admitted.
    fn default() -> RuntimeSample {
        RuntimeSample {
            lambda: 0.0,
            w: None,
            queue_wait_mean: None,
            queue_wait_recent: None,
            queue_waits: 0,
            queue_wait_sum_ns: 0.0,
            queue_wait_p99: Duration::ZERO,
            knee_lambda: None,
            admitted_share: 1.0,
        }
    }
}

impl RuntimeSample {
    /// The parts of a [`Probes`](crate::probe::Probes) snapshot the gate uses.
    pub fn from_probes(probes: &crate::probe::Probes) -> RuntimeSample {
        let seconds = |s: f64| (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
        RuntimeSample {
            lambda: probes.little_tasks.map_or(0.0, |law| law.lambda),
            w: probes.little_tasks.and_then(|law| seconds(law.w_s)),
            queue_wait_mean: probes.little_queues.and_then(|law| seconds(law.w_s)),
            queue_wait_recent: None,
            queue_waits: probes.queue_wait.count,
            queue_wait_sum_ns: probes.queue_wait.mean_ns * probes.queue_wait.count as f64,
            admitted_share: 1.0,
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
    /// Whether the last verdict refuses every call (the one load on the admitted path).
    refusing: AtomicBool,
    /// Proportional shedding: the admitted share (`f64` bits; 1 when not shedding).
    admitted: AtomicU64,
    /// Proportional shedding: calls seen while shedding (the thinning's sequence).
    ticket: AtomicU64,
    /// The last sample and verdict, and the queue-wait baseline.
    last: Mutex<GateState>,
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
                admitted: AtomicU64::new(1.0f64.to_bits()),
                ticket: AtomicU64::new(0),
                last: Mutex::new(GateState::default()),
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
            let admitted = f64::from_bits(inner.admitted.load(Ordering::Relaxed));
            if admitted >= 1.0 {
                return Ok(());
            }
            // A Weyl sequence: frac(n * golden ratio) spreads the refusals evenly.
            let n = inner.ticket.fetch_add(1, Ordering::Relaxed);
            if (n as f64 * 0.618_033_988_749_894_9).fract() < admitted {
                return Ok(());
            }
        }
        match &self.lock().last {
            Some((_, Some(overload))) => Err(Overloaded {
                reason: Reason::Runtime(overload.clone()),
                retry_after: inner.config.window,
            }),
            _ => Ok(()),
        }
    }

    fn refresh(&self) {
        let inner = &*self.inner;
        let mut sample = (inner.source)();
        let mut state = self.lock();
        // The wait since the baseline, once enough waits were sampled to judge it; until
        // then the baseline stays and the last decision holds.
        let mut held = false;
        match state.baseline {
            Some((waits, sum_ns)) if sample.queue_waits > waits => {
                let count = sample.queue_waits - waits;
                let sum_ns = sample.queue_wait_sum_ns - sum_ns;
                if count < MIN_RECENT_WAITS {
                    held = state.last.is_some();
                } else if sum_ns.is_finite() {
                    let mean_s = (sum_ns / count as f64).max(0.0) * 1e-9;
                    sample.queue_wait_recent = Some(Duration::from_secs_f64(mean_s));
                }
            }
            _ => {}
        }
        if !held {
            state.baseline = Some((sample.queue_waits, sample.queue_wait_sum_ns));
        }
        let previous = state.last.as_ref();
        let share = previous.map_or(1.0, |(previous, _)| previous.admitted_share);
        let (mut verdict, mut admitted) = match previous {
            Some((_, verdict)) if held => (verdict.clone(), share),
            _ => (verdict(&inner.config, &sample), 1.0),
        };
        let mut refusing = verdict.is_some();
        if let (Shedding::Proportional { step }, Some(target)) =
            (inner.config.shedding, inner.config.queue_wait_target)
        {
            if !held {
                admitted = next_share(share, step, sample.queue_wait(), target);
            }
            match &verdict {
                // Over the target, or still recovering from it: refuse a share.
                Some(RuntimeOverload::QueueWait { .. }) => refusing = false,
                None if admitted < 1.0 => {
                    verdict = Some(RuntimeOverload::QueueWait {
                        mean: sample.queue_wait().unwrap_or_default(),
                        target,
                    });
                    refusing = false;
                }
                _ => {}
            }
        }
        sample.admitted_share = admitted;
        state.last = Some((sample, verdict));
        inner.admitted.store(admitted.to_bits(), Ordering::Relaxed);
        inner.refusing.store(refusing, Ordering::Release);
        inner.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Assignments under the lock only: a panic elsewhere cannot leave it half-written.
        self.inner.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last sample read, if any.
    pub fn sample(&self) -> Option<RuntimeSample> {
        self.lock().last.as_ref().map(|(sample, _)| sample.clone())
    }

    /// How many snapshots the gate has taken.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }
}

impl RuntimeSample {
    /// The queue wait the gate judges: since its previous read, else the probes' window.
    pub fn queue_wait(&self) -> Option<Duration> {
        self.queue_wait_recent.or(self.queue_wait_mean)
    }
}

/// A proportional gate's next admitted share (module docs): over `target`, times
/// `target / wait` but at most halved; under it, up by `step x (1 - wait / target)`; with
/// no wait sampled (nothing queued), up by `step`. Within `[MIN_ADMITTED, 1]`.
pub(crate) fn next_share(share: f64, step: f64, wait: Option<Duration>, target: Duration) -> f64 {
    let ratio = wait.map_or(0.0, |wait| wait.as_secs_f64() / target.as_secs_f64());
    let next = if ratio > 1.0 {
        share * (1.0 / ratio).max(0.5)
    } else {
        share + step * (1.0 - ratio)
    };
    next.clamp(MIN_ADMITTED, 1.0)
}

fn verdict(config: &RuntimeConfig, sample: &RuntimeSample) -> Option<RuntimeOverload> {
    if let (Some(target), Some(mean)) = (config.queue_wait_target, sample.queue_wait()) {
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
    fn the_wait_since_the_last_read_is_judged_not_the_probes_window() {
        let (gate, clock, sample) = gate(RuntimeConfig::new(10 * MS, 2 * MS));
        // The probes' one-second window still remembers a burst (10 ms), ...
        *sample.lock().unwrap() = RuntimeSample {
            queue_wait_mean: Some(10 * MS),
            queue_waits: 100,
            queue_wait_sum_ns: 100.0 * 1e6,
            ..RuntimeSample::default()
        };
        // ... and the first read has nothing else to go by.
        assert!(gate.check().is_err());
        // 100 waits of 1 ms since then: under the target, whatever the window says.
        {
            let mut sample = sample.lock().unwrap();
            sample.queue_waits = 200;
            sample.queue_wait_sum_ns = 200.0 * 1e6;
        }
        clock.advance(10 * MS);
        assert!(gate.check().is_ok());
        assert_eq!(gate.sample().unwrap().queue_wait_recent, Some(MS));
        // 100 waits of 5 ms: over it.
        {
            let mut sample = sample.lock().unwrap();
            sample.queue_wait_mean = Some(MS);
            sample.queue_waits = 300;
            sample.queue_wait_sum_ns = 200.0 * 1e6 + 100.0 * 5e6;
        }
        clock.advance(10 * MS);
        assert_eq!(
            gate.check().unwrap_err().reason,
            Reason::Runtime(RuntimeOverload::QueueWait {
                mean: 5 * MS,
                target: 2 * MS
            })
        );
        // 10 waits of nothing: too few to judge, the refusal holds; 10 more are judged
        // together with them.
        sample.lock().unwrap().queue_waits = 310;
        clock.advance(10 * MS);
        assert!(gate.check().is_err());
        sample.lock().unwrap().queue_waits = 320;
        clock.advance(10 * MS);
        assert!(gate.check().is_ok());
        assert_eq!(
            gate.sample().unwrap().queue_wait_recent,
            Some(Duration::ZERO)
        );
    }

    /// Checks `calls` times; how many were refused.
    fn refused_of(gate: &RuntimeGate<ManualClock>, calls: usize) -> usize {
        (0..calls).filter(|_| gate.check().is_err()).count()
    }

    #[test]
    fn proportional_shedding_refuses_a_share_that_follows_the_wait() {
        let (gate, clock, sample) = gate(RuntimeConfig::proportional(10 * MS, MS));
        let read = |wait: Option<Duration>| {
            sample.lock().unwrap().queue_wait_mean = wait;
            clock.advance(10 * MS);
            // The gate reads at the first call of a window.
            let _ = gate.check();
        };
        read(Some(Duration::from_micros(500)));
        assert_eq!(refused_of(&gate, 1000), 0);
        // 4 x the target: the share halves (at most), then halves again.
        read(Some(4 * MS));
        let refused = refused_of(&gate, 1000);
        assert!((480..=520).contains(&refused), "{refused} of 1000 at 1/2");
        assert_eq!(gate.sample().unwrap().admitted_share, 0.5);
        read(Some(4 * MS));
        let refused = refused_of(&gate, 1000);
        assert!((730..=770).contains(&refused), "{refused} of 1000 at 1/4");
        // 1.25 x the target: times 0.8.
        read(Some(Duration::from_micros(1250)));
        assert!((gate.sample().unwrap().admitted_share - 0.2).abs() < 1e-9);
        // Under the target the share comes back by step x (1 - wait / target), and the
        // refusals of a recovering gate still say why.
        read(Some(Duration::from_micros(500)));
        assert!((gate.sample().unwrap().admitted_share - 0.25).abs() < 1e-9);
        let refusal = (0..100).find_map(|_| gate.check().err()).unwrap();
        assert_eq!(
            refusal.reason,
            Reason::Runtime(RuntimeOverload::QueueWait {
                mean: Duration::from_micros(500),
                target: MS
            })
        );
        for _ in 0..8 {
            read(Some(Duration::ZERO));
        }
        assert_eq!(gate.sample().unwrap().admitted_share, 1.0);
        assert_eq!(refused_of(&gate, 1000), 0);
        // However long the wait, a share of 1% stays admitted.
        for _ in 0..20 {
            read(Some(Duration::from_secs(10)));
        }
        let admitted = 1000 - refused_of(&gate, 1000);
        assert!((8..=12).contains(&admitted), "{admitted} of 1000 at 1%");
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
        let no_step = RuntimeConfig {
            shedding: Shedding::Proportional { step: 0.0 },
            ..RuntimeConfig::new(MS, MS)
        };
        assert_eq!(bad(no_step), "runtime.shedding.step");
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

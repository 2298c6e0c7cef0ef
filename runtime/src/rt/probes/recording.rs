//! Hot-path recording: [`ProbeState`], what the Ms write between and around polls (the
//! counters, the gauges a P publishes once per round, the sampled histograms).
//!
//! Every write here is to a P-owned cache line or a `try_lock`ed P-owned histogram (see the
//! cost table in the module above); nothing here reads across Ps.

use super::stw::QueueSnapshot;
use crate::rt::shared::Proc;
use crate::rt::stamp;
use crate::task::core::Header;
use crossbeam_utils::CachePadded;
use gpm_scheduler::probe::knee::KneeDetector;
use gpm_scheduler::probe::latency::LatencyHistograms;
use gpm_scheduler::probe::little::LittleWindow;
use gpm_scheduler::probe::{Counters, Event};
use gpm_scheduler::stw::World;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The span over which `lambda` and `W` are computed.
pub(crate) const LITTLE_WINDOW: Duration = Duration::from_secs(1);
/// Default: timestamp one schedule in 16 per thread (the affinity policy's latency history
/// and the probes share the samples; see `rt::stamp`).
pub(crate) const DEFAULT_SAMPLE_EVERY: u32 = stamp::SAMPLE_INTERVAL;
/// `(lambda, L)` points the knee detector keeps.
const KNEE_POINTS: usize = 32;

/// The runtime's probe state.
pub(crate) struct ProbeState {
    enabled: bool,
    pub(super) started: Instant,
    sample_every: u32,
    pub(super) counters: Counters,
    pub(super) sojourn: LatencyHistograms,
    pub(super) queue_wait: LatencyHistograms,
    pub(super) gauges: Box<[CachePadded<Gauges>]>,
    pub(super) reader: Mutex<ReaderState>,
    pub(crate) world: World<QueueSnapshot>,
}

/// What a P's holder publishes for readers once per round (its queues are owner-only).
#[derive(Default)]
pub(super) struct Gauges {
    pub(super) runnext: AtomicBool,
    pub(super) deferred: AtomicUsize,
}

pub(super) struct ReaderState {
    pub(super) tasks: LittleWindow,
    pub(super) queues: LittleWindow,
    pub(super) knee: KneeDetector,
}

/// Why a task enters a run queue (the probes count the two apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    Spawn,
    Wake,
}

impl ProbeState {
    /// Probe state for `processors` Ps; timestamps on one schedule in `sample_every`
    /// (0: none); counters, gauges and histograms only when `enabled`.
    pub(crate) fn new(processors: usize, enabled: bool, sample_every: u32) -> ProbeState {
        ProbeState {
            enabled,
            started: Instant::now(),
            sample_every,
            counters: Counters::new(processors),
            sojourn: LatencyHistograms::new(processors),
            queue_wait: LatencyHistograms::new(processors),
            gauges: (0..processors).map(|_| CachePadded::default()).collect(),
            reader: Mutex::new(ReaderState {
                tasks: LittleWindow::new(LITTLE_WINDOW),
                queues: LittleWindow::new(LITTLE_WINDOW),
                knee: KneeDetector::new(KNEE_POINTS),
            }),
            world: World::new(processors),
        }
    }

    /// Whether the probes count events (`Builder::enable_probes`).
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// A timestamp for one schedule in `sample_every` on this thread, else 0.
    #[inline]
    pub(crate) fn sample_ns(&self) -> u64 {
        stamp::sample_ns(self.sample_every)
    }

    /// A task entered a run queue (spawn or wake-up) on P `processor` (`None`: off the Ps).
    #[inline]
    pub(crate) fn arrived(&self, processor: Option<usize>, arrival: Arrival) {
        if self.enabled {
            let event = match arrival {
                Arrival::Spawn => Event::Spawn,
                Arrival::Wake => Event::Wake,
            };
            self.counters.count(processor, event);
        }
    }

    /// A poll is about to start on P `processor`.
    #[inline]
    pub(crate) fn polling(&self, processor: usize) {
        if self.enabled {
            self.counters.count(Some(processor), Event::Poll);
        }
    }

    /// A sampled task waited `ns` between its enqueue and this poll on P `processor`.
    pub(crate) fn queue_wait(&self, processor: usize, ns: u64) {
        if self.enabled {
            self.queue_wait.record(Some(processor), ns);
        }
    }

    /// A task completed or was cancelled (the caller checks [`ProbeState::enabled`] first,
    /// so a runtime without probes does not even look up its P).
    pub(crate) fn completed(&self, processor: Option<usize>, header: &Header) {
        self.counters.count(processor, Event::Completion);
        if let Some(spawned) = header.times.spawned() {
            let sojourn = stamp::now_ns().saturating_sub(spawned);
            self.sojourn.record(processor, sojourn);
            self.counters.sojourn(processor, sojourn);
        }
    }

    /// The holder of `processor` between two polls: publish gauges, stop if asked to.
    #[inline]
    pub(crate) fn safepoint(&self, processor: &mut Proc) {
        let index = processor.index();
        let local = processor.local();
        if self.enabled {
            let gauges = &self.gauges[index];
            gauges.runnext.store(local.has_runnext(), Ordering::Relaxed);
            gauges
                .deferred
                .store(local.deferred_len(), Ordering::Relaxed);
        }
        self.world.safepoint(index, || QueueSnapshot::of(local));
    }
}

//! Hot-path recording: [`ProbeState`], what the Ms write between and around polls (the
//! gauges a P publishes on its driver turns, the sampled histograms). The event counters
//! are the scheduler's per-P table (`gpm_scheduler::probe::events`): the holder of a P
//! counts through its `Proc` (`Proc::count`), threads without a P in the table's shared
//! row (`Events::count_shared`).
//!
//! Every write here is to a P-owned cache line or a P-owned histogram's bucket (see the
//! cost table in the module above); nothing here reads across Ps.

use super::stw::QueueSnapshot;
use crate::rt::shared::Proc;
use crate::rt::stamp;
use crate::task::core::Header;
use crossbeam_utils::CachePadded;
use gpm_scheduler::probe::knee::KneeDetector;
use gpm_scheduler::probe::latency::LatencyHistograms;
use gpm_scheduler::probe::little::LittleWindow;
use gpm_scheduler::probe::Event;
use gpm_scheduler::stw::World;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The span over which `lambda` and `W` are computed.
pub(crate) const LITTLE_WINDOW: Duration = Duration::from_secs(1);
/// Default: timestamp one schedule in 32 per thread (the affinity policy's latency history
/// and the probes share the samples; see `rt::stamp`).
pub(crate) const DEFAULT_SAMPLE_EVERY: u32 = stamp::SAMPLE_INTERVAL;
/// `(lambda, L)` points the knee detector keeps.
const KNEE_POINTS: usize = 32;

/// The runtime's probe state.
pub(crate) struct ProbeState {
    enabled: bool,
    pub(super) started: Instant,
    sample_every: u32,
    pub(super) sojourn: LatencyHistograms,
    pub(super) queue_wait: LatencyHistograms,
    pub(super) gauges: Box<[CachePadded<Gauges>]>,
    pub(super) reader: Mutex<ReaderState>,
    pub(crate) world: World<QueueSnapshot>,
}

/// What a P's holder publishes for readers on each driver turn and before it parks (its
/// queues are owner-only).
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

impl Arrival {
    /// Stamps a task's arrival in a run queue (`stamp` 0: not sampled, a no-op): a spawn
    /// starts its sojourn and its first queue wait, a wake-up a queue wait.
    #[inline]
    pub(crate) fn stamp(self, header: &Header, stamp: u64) {
        match self {
            Arrival::Spawn => header.times.set_spawned(stamp),
            Arrival::Wake => header.times.set_enqueued(stamp),
        }
    }

    /// The event it counts as.
    #[inline]
    pub(crate) fn event(self) -> Event {
        match self {
            Arrival::Spawn => Event::Spawn,
            Arrival::Wake => Event::Wake,
        }
    }
}

impl ProbeState {
    /// Probe state for `processors` Ps; timestamps on one schedule in `sample_every`
    /// (0: none); counters, gauges and histograms only when `enabled`.
    pub(crate) fn new(processors: usize, enabled: bool, sample_every: u32) -> ProbeState {
        ProbeState {
            enabled,
            started: Instant::now(),
            sample_every,
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

    /// A stamp (`rt::stamp`) for one schedule in `sample_every` on this thread, else 0.
    #[inline]
    pub(crate) fn sample(&self) -> u64 {
        stamp::sample(self.sample_every)
    }

    /// One schedule in how many is stamped (0: none).
    #[inline]
    pub(crate) fn sample_every(&self) -> u32 {
        self.sample_every
    }

    /// A sampled task waited `ns` between its enqueue and this poll on P `processor`.
    pub(crate) fn queue_wait(&self, processor: usize, ns: u64) {
        if self.enabled {
            self.queue_wait.record(Some(processor), ns);
        }
    }

    /// A sampled task (spawned at stamp `spawned`) completed or was cancelled on P
    /// `processor` (`None`: by a thread without a P): records its sojourn in the histogram
    /// and returns it, in nanoseconds, for the caller's counters
    /// (`Shared::record_sojourn`).
    pub(crate) fn record_sojourn(&self, processor: Option<usize>, spawned: u64) -> u64 {
        let sojourn = stamp::ns_since(spawned);
        self.sojourn.record(processor, sojourn);
        sojourn
    }

    /// The holder of `processor` on a driver turn and before it parks: publishes its gauges
    /// (readers see them at most one maintenance interval old while it runs).
    #[inline]
    pub(crate) fn publish_gauges(&self, processor: &Proc) {
        if self.enabled {
            let local = processor.local();
            let gauges = &self.gauges[processor.index()];
            gauges.runnext.store(local.has_runnext(), Ordering::Relaxed);
            gauges
                .deferred
                .store(local.deferred_len(), Ordering::Relaxed);
        }
    }

    /// The holder of `processor` between two polls: stop if asked to.
    #[inline]
    pub(crate) fn safepoint(&self, processor: &mut Proc) {
        self.world
            .safepoint(processor.index(), || QueueSnapshot::of(processor.local()));
    }
}

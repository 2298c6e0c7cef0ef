//! Probes: queue depths, counters, Little's law with P99, the knee, and stop-the-world.
//!
//! # What is kept, and what it costs
//!
//! | what | written when | cost on the hot path |
//! |---|---|---|
//! | polls, spawns, wakes, completions per P | every event | one relaxed load + store to a P-owned cache line |
//! | `runnext` / deferred gauges per P | once per scheduling round | two relaxed stores to a P-owned line |
//! | spawn and enqueue timestamps | 1 schedule in `sample_every` per thread | a thread-local tick for the others |
//! | sojourn, queue-wait HDR histograms | at completion / poll of a sampled task | `try_lock` of a P-owned histogram |
//! | stop-the-world check | once per scheduling round | one relaxed load |
//!
//! Everything else (sums over Ps, quantiles, Little's law, the knee) is computed by the
//! reader in [`Handle::probes`](super::Handle::probes), which never stops a P.
//!
//! # Little's law, twice
//!
//! * **Tasks**: `lambda` = spawns per second, `W` = spawn-to-completion sojourn of sampled
//!   tasks, `L` = tasks alive now.
//! * **Run queues**: `lambda` = enqueues (spawns + wake-ups) per second, `W` = enqueue-to-
//!   poll wait of sampled tasks, `L` = tasks queued now (local queues, `runnext`, deferred,
//!   injector).
//!
//! Both windows are the span between the oldest and newest snapshot of the reader's last
//! [`LITTLE_WINDOW`]; each call to `probes()` adds a snapshot. The knee detector is fed one
//! `(lambda, L)` point of the task view per call.
//!
//! # Sampling
//!
//! One schedule in `sample_every` per thread ([`Builder::probe_sampling`](super::Builder::probe_sampling),
//! default 16) stamps the task header (`rt::clock`): a stamped spawn gives a sojourn sample
//! at completion, a stamped enqueue a queue-wait sample at the next poll. The same samples
//! feed the affinity policy's latency history. Which schedule is sampled does not depend on
//! what the task does, so sample means and quantiles estimate the population's. `0` turns
//! timing (not counting) off;
//! [`Builder::enable_probes(false)`](super::Builder::enable_probes) turns counting off too
//! (queue depths, thread counts and stop-the-world keep working: they cost nothing until
//! read). The `probes` bench measures what they cost.

use super::clock;
use super::shared::{Proc, Shared};
use crate::alloc::TaskAllocatorStats;
use crate::task::core::Header;
use gpm_scheduler::steal::StealStats;

use crossbeam_utils::CachePadded;
use gpm_scheduler::probe::knee::{Knee, KneeDetector, LoadPoint};
use gpm_scheduler::probe::latency::{LatencyHistograms, Quantiles};
use gpm_scheduler::probe::little::{LittleWindow, LittlesLaw, Totals};
use gpm_scheduler::probe::{Counters, Event, EventTotals};
use gpm_scheduler::stw::{PStop, StopKind, StopReport, World};
use gpm_scheduler::Local;
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The span over which `lambda` and `W` are computed.
pub(crate) const LITTLE_WINDOW: Duration = Duration::from_secs(1);
/// Default: timestamp one schedule in 16 per thread (the affinity policy's latency history
/// and the probes share the samples; see `rt::clock`).
pub(crate) const DEFAULT_SAMPLE_EVERY: u32 = clock::SAMPLE_INTERVAL;
/// `(lambda, L)` points the knee detector keeps.
const KNEE_POINTS: usize = 32;

/// The runtime's probe state.
pub(crate) struct ProbeState {
    enabled: bool,
    started: Instant,
    sample_every: u32,
    counters: Counters,
    sojourn: LatencyHistograms,
    queue_wait: LatencyHistograms,
    gauges: Box<[CachePadded<Gauges>]>,
    reader: Mutex<ReaderState>,
    pub(crate) world: World<QueueSnapshot>,
}

/// What a P's holder publishes for readers once per round (its queues are owner-only).
#[derive(Default)]
struct Gauges {
    runnext: AtomicBool,
    deferred: AtomicUsize,
}

struct ReaderState {
    tasks: LittleWindow,
    queues: LittleWindow,
    knee: KneeDetector,
}

/// One P's queues as its holder saw them when it stopped for the world.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueSnapshot {
    /// Tasks in the local FIFO.
    pub queued: usize,
    /// Whether `runnext` held a task.
    pub runnext: bool,
    /// Tasks that yielded and wait behind the injector.
    pub deferred: usize,
}

impl QueueSnapshot {
    /// What the holder of a P sees in its queues.
    fn of<T>(local: &Local<T>) -> QueueSnapshot {
        QueueSnapshot {
            queued: local.queue_len(),
            runnext: local.has_runnext(),
            deferred: local.deferred_len(),
        }
    }

    fn total(&self) -> usize {
        self.queued + usize::from(self.runnext) + self.deferred
    }
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
        clock::sample_ns(self.sample_every)
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
            let sojourn = clock::now_ns().saturating_sub(spawned);
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

/// One P in a [`Probes`] snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessorProbe {
    /// The P's index.
    pub index: usize,
    /// Tasks in its local FIFO (racy read of the stealer's view).
    pub queue_depth: usize,
    /// Whether its `runnext` slot held a task at its last scheduling round.
    pub runnext: bool,
    /// Yielded tasks waiting behind the injector, at its last round.
    pub deferred: usize,
    /// Whether it is parked.
    pub parked: bool,
    /// Its event counters.
    pub polls: u64,
    /// Tasks spawned by tasks it ran.
    pub spawns: u64,
    /// Wake-ups performed on it.
    pub wakes: u64,
    /// Completions on it.
    pub completions: u64,
    /// Its successful steals, by the victim's relation to it.
    pub steals: RelationProbe,
    /// Its steal attempts (victims visited), by relation.
    pub steal_attempts: RelationProbe,
    /// Tasks it took from victims, by relation.
    pub tasks_stolen: RelationProbe,
    /// Its EWMA of queue wait (the affinity policy's latency term), ns.
    pub queue_wait_ewma_ns: u64,
    /// Task allocations served by its slab cache without a refill.
    pub slab_hits: u64,
    /// Its slab cache's refills from the node pool.
    pub slab_refills: u64,
}

/// A count per relation between a thief and its victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct RelationProbe {
    /// Victim in the thief's L3 domain.
    pub same_l3: u64,
    /// Victim on the thief's NUMA node, other L3.
    pub same_node: u64,
    /// Victim on another node.
    pub other_node: u64,
}

impl RelationProbe {
    fn of(counts: gpm_scheduler::steal::ByRelation) -> RelationProbe {
        RelationProbe {
            same_l3: counts.same_l3,
            same_node: counts.same_node,
            other_node: counts.other_node,
        }
    }

    /// All relations together.
    pub fn total(&self) -> u64 {
        self.same_l3 + self.same_node + self.other_node
    }
}

impl std::ops::Add for RelationProbe {
    type Output = RelationProbe;
    fn add(self, o: RelationProbe) -> RelationProbe {
        RelationProbe {
            same_l3: self.same_l3 + o.same_l3,
            same_node: self.same_node + o.same_node,
            other_node: self.other_node + o.other_node,
        }
    }
}

/// The task allocator in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskMemoryProbe {
    /// `"slab"` or `"system"`.
    pub allocator: &'static str,
    /// Bytes of live task cells (slab and large tasks).
    pub live_bytes: i64,
    /// Bytes of spans mapped for the slab, all nodes.
    pub mapped_bytes: usize,
    /// Cross-node and off-P frees that went back to a node pool.
    pub remote_frees: u64,
    /// Tasks too large for the slab's classes (global allocator).
    pub large_allocations: u64,
}

/// A latency distribution in a snapshot, nanoseconds: count, mean, P50, P99, P999, max.
pub type LatencyProbe = Quantiles;

/// Little's law over the last window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LittleProbe {
    /// Window length, seconds.
    pub window_s: f64,
    /// Arrivals per second.
    pub lambda: f64,
    /// Mean time in the system, seconds (`null`/NaN when nothing was sampled).
    pub w_s: f64,
    /// Measured `L`.
    pub l_measured: f64,
    /// `lambda * W`.
    pub l_predicted: f64,
    /// `(measured - predicted) / max(measured, predicted)`.
    pub deviation: f64,
}

/// A knee flagged by the detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KneeProbe {
    /// Arrival rate at the knee, tasks per second.
    pub lambda: f64,
    /// Tasks in the system there.
    pub l: f64,
    /// Relative curvature `lambda^2 L'' / L` (dimensionless).
    pub curvature: f64,
}

/// A snapshot of the scheduler, from [`Handle::probes`](super::Handle::probes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probes {
    /// Time since the runtime started, seconds.
    pub uptime_s: f64,
    /// Per P.
    pub processors: Vec<ProcessorProbe>,
    /// Tasks in the global queue.
    pub injector_depth: usize,
    /// Closures waiting for a blocking thread.
    pub blocking_queue_depth: usize,
    /// Parked Ps.
    pub parked: usize,
    /// Ps searching for work (Go's spinning Ms).
    pub searching: usize,
    /// OS threads (Ms and blocking threads).
    pub threads: usize,
    /// Tasks spawned and not yet completed.
    pub tasks_alive: usize,
    /// Sums over all Ps and threads without one.
    pub polls: u64,
    /// Spawns.
    pub spawns: u64,
    /// Wake-ups.
    pub wakes: u64,
    /// Completions.
    pub completions: u64,
    /// Spawn-to-completion time of sampled tasks.
    pub sojourn: LatencyProbe,
    /// Enqueue-to-poll time of sampled tasks.
    pub queue_wait: LatencyProbe,
    /// Little's law for tasks (spawns, sojourn, tasks alive); `None` on the first call.
    pub little_tasks: Option<LittleProbe>,
    /// Little's law for the run queues (enqueues, queue wait, tasks queued).
    pub little_queues: Option<LittleProbe>,
    /// The knee, once the points seen so far show one.
    pub knee: Option<KneeProbe>,
    /// Samples lost to a reader holding a histogram.
    pub dropped_samples: u64,
    /// Whether a stop-the-world is being requested or in force.
    pub stw_pending: bool,
    /// The stealing policy in force.
    pub steal_policy: &'static str,
    /// Successful steals of all Ps, by relation.
    pub steals: RelationProbe,
    /// Tasks taken from the injector by a P's fair share.
    pub injector_takes: u64,
    /// The task allocator's totals.
    pub task_memory: TaskMemoryProbe,
}

/// What a stop-the-world closure sees: every P's queues, taken while no P runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoppedWorld {
    /// Per P: its queues (all empty for a P that was idle).
    pub processors: Vec<QueueSnapshot>,
    /// Tasks in the global queue.
    pub injector_depth: usize,
    /// Tasks spawned and not yet completed.
    pub tasks_alive: usize,
}

impl StoppedWorld {
    /// Runnable tasks anywhere (local queues, `runnext`, deferred, injector).
    pub fn runnable(&self) -> usize {
        self.processors
            .iter()
            .map(QueueSnapshot::total)
            .sum::<usize>()
            + self.injector_depth
    }
}

/// How one P stopped, in a [`StwReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// It was running tasks and stopped between two polls.
    Safepoint,
    /// It was idle and counted as stopped without being woken.
    Idle,
    /// Its M had exited (shutdown).
    Exited,
    /// It runs the task that asked for the stop.
    Requester,
}

/// What a stop-the-world cost (Go's `/sched/pauses` figures).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StwReport {
    /// Per P: how it stopped and its time to safepoint.
    pub processors: Vec<(StopReason, Duration)>,
    /// From the request until every P had stopped.
    pub time_to_stop: Duration,
    /// From the request until the world resumed.
    pub pause: Duration,
    /// The P that reached its safepoint last (the one a long poll held up), if any ran.
    pub late: Option<usize>,
}

/// Builds the [`Probes`] snapshot of `shared` (`Shared::probes`).
pub(super) fn snapshot(shared: &Shared) -> Probes {
    let probes = &shared.probes;
    let steal = shared.scheduler.steal_stats();
    let memory = shared.task_allocator_stats();
    let processors: Vec<ProcessorProbe> = (0..shared.scheduler.num_processors())
        .map(|index| processor_probe(shared, index, &steal, &memory))
        .collect();
    let injector_depth = shared.scheduler.injector().len();
    let totals = probes.counters.totals();
    let tasks_alive = shared.owned.len();
    let queued: usize = processors
        .iter()
        .map(|p| p.queue_depth + usize::from(p.runnext) + p.deferred)
        .sum::<usize>()
        + injector_depth;
    let wait = probes.queue_wait.quantiles();
    let (little_tasks, little_queues, knee) =
        little(shared, totals, wait, tasks_alive as f64, queued as f64);
    Probes {
        uptime_s: probes.started.elapsed().as_secs_f64(),
        parked: processors.iter().filter(|p| p.parked).count(),
        injector_depth,
        blocking_queue_depth: shared.blocking.queued(),
        searching: shared.scheduler.idle().num_searching(),
        threads: shared.blocking.live_threads(),
        tasks_alive,
        polls: totals.polls,
        spawns: totals.spawns,
        wakes: totals.wakes,
        completions: totals.completions,
        sojourn: probes.sojourn.quantiles(),
        queue_wait: wait,
        little_tasks,
        little_queues,
        knee,
        dropped_samples: probes.sojourn.dropped() + probes.queue_wait.dropped(),
        stw_pending: probes.world.is_requested(),
        steal_policy: steal.policy,
        steals: processors
            .iter()
            .fold(RelationProbe::default(), |total, p| total + p.steals),
        injector_takes: steal.processors.iter().map(|p| p.injector_takes).sum(),
        task_memory: task_memory_probe(&memory),
        processors,
    }
}

fn processor_probe(
    shared: &Shared,
    index: usize,
    steal: &StealStats,
    memory: &TaskAllocatorStats,
) -> ProcessorProbe {
    let gauges = &shared.probes.gauges[index];
    let counters = shared.probes.counters.processor(index);
    let stolen = steal.processors.get(index).cloned().unwrap_or_default();
    let slab = memory.processors.get(index).cloned().unwrap_or_default();
    ProcessorProbe {
        index,
        queue_depth: shared.scheduler.queue_len(index),
        runnext: gauges.runnext.load(Ordering::Relaxed),
        deferred: gauges.deferred.load(Ordering::Relaxed),
        parked: shared.scheduler.idle().is_parked(index),
        polls: counters.polls,
        spawns: counters.spawns,
        wakes: counters.wakes,
        completions: counters.completions,
        steals: RelationProbe::of(stolen.successes),
        steal_attempts: RelationProbe::of(stolen.attempts),
        tasks_stolen: RelationProbe::of(stolen.tasks_stolen),
        queue_wait_ewma_ns: stolen.queue_wait_ewma_ns,
        slab_hits: slab.hits,
        slab_refills: slab.refills,
    }
}

/// Adds a snapshot to the reader's windows and evaluates both views of the law.
fn little(
    shared: &Shared,
    totals: EventTotals,
    wait: Quantiles,
    alive: f64,
    queued: f64,
) -> (Option<LittleProbe>, Option<LittleProbe>, Option<KneeProbe>) {
    let at = Instant::now();
    let mut reader = shared
        .probes
        .reader
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    reader.tasks.push(Totals {
        at,
        arrivals: totals.spawns,
        sojourn_sum_ns: totals.sojourn_sum_ns,
        sojourn_count: totals.sojourn_count,
    });
    // The histogram keeps the wait sum as count * mean; exact enough for a mean.
    reader.queues.push(Totals {
        at,
        arrivals: totals.spawns + totals.wakes,
        sojourn_sum_ns: (wait.mean_ns * wait.count as f64) as u64,
        sojourn_count: wait.count,
    });
    let tasks = reader.tasks.law(alive);
    let queues = reader.queues.law(queued);
    if let Some(law) = tasks {
        reader.knee.observe(LoadPoint {
            lambda: law.lambda,
            in_system: alive,
        });
    }
    let knee = reader.knee.knee().map(knee_probe);
    (tasks.map(little_probe), queues.map(little_probe), knee)
}

/// Stops the world; see [`Handle::stop_the_world`](super::Handle::stop_the_world).
/// Called from a task, the task's own P is the requester: it counts as stopped, and
/// publishes its queues as this thread reads them (nothing else runs them meanwhile).
///
/// # Panics
/// Called from inside `inspect` of a stop of this same runtime: that stop cannot end
/// before the call returns, so it would wait for itself for ever.
#[track_caller]
pub(super) fn stop_the_world<R>(
    shared: &Arc<Shared>,
    inspect: impl FnOnce(&StoppedWorld) -> R,
) -> (R, StwReport) {
    let world_id = Arc::as_ptr(shared) as usize;
    if INSPECTING.with(|worlds| worlds.borrow().contains(&world_id)) {
        panic!(
            "stop_the_world called from inside the inspect closure of a stop of the same \
             runtime: the world is already stopped, and this call would wait for itself"
        );
    }
    let inspect = |stops: &[PStop<QueueSnapshot>]| {
        let world = StoppedWorld {
            processors: stops.iter().map(|s| s.snapshot).collect(),
            injector_depth: shared.scheduler.injector().len(),
            tasks_alive: shared.owned.len(),
        };
        let _inspecting = Inspecting::enter(world_id);
        inspect(&world)
    };
    let world = &shared.probes.world;
    let (result, report) = match shared.current_processor() {
        Some(p) => world.stop_on(p, || current_queue_snapshot(shared), inspect),
        None => world.stop(inspect),
    };
    (result, stw_report(report))
}

/// The queues of the P this thread holds (empty if it holds none).
fn current_queue_snapshot(shared: &Arc<Shared>) -> QueueSnapshot {
    shared
        .with_current_processor(|processor| QueueSnapshot::of(processor.local()))
        .unwrap_or_default()
}

thread_local! {
    /// The runtimes (their `Shared`'s address) whose stopped world this thread inspects.
    static INSPECTING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks this thread as inside `inspect` of a stop of one runtime, until dropped.
struct Inspecting(usize);

impl Inspecting {
    fn enter(world_id: usize) -> Inspecting {
        INSPECTING.with(|worlds| worlds.borrow_mut().push(world_id));
        Inspecting(world_id)
    }
}

impl Drop for Inspecting {
    fn drop(&mut self) {
        let _ = INSPECTING.try_with(|worlds| {
            let mut worlds = worlds.borrow_mut();
            if let Some(at) = worlds.iter().rposition(|&id| id == self.0) {
                worlds.remove(at);
            }
        });
    }
}

fn task_memory_probe(stats: &TaskAllocatorStats) -> TaskMemoryProbe {
    TaskMemoryProbe {
        allocator: match stats.allocator {
            crate::TaskAllocator::Slab => "slab",
            crate::TaskAllocator::System => "system",
        },
        live_bytes: stats.nodes.iter().map(|n| n.live_bytes).sum::<i64>() + stats.large_live_bytes,
        mapped_bytes: stats.nodes.iter().map(|n| n.mapped_bytes).sum(),
        remote_frees: stats.nodes.iter().map(|n| n.remote_frees).sum(),
        large_allocations: stats.large_allocations,
    }
}

fn little_probe(law: LittlesLaw) -> LittleProbe {
    LittleProbe {
        window_s: law.window.as_secs_f64(),
        lambda: law.lambda,
        w_s: law.mean_sojourn,
        l_measured: law.measured_l,
        l_predicted: law.predicted_l,
        deviation: law.deviation,
    }
}

fn knee_probe(knee: Knee) -> KneeProbe {
    KneeProbe {
        lambda: knee.lambda,
        l: knee.in_system,
        curvature: knee.curvature,
    }
}

fn stw_report(report: StopReport) -> StwReport {
    let reason = |kind| match kind {
        StopKind::Safepoint => StopReason::Safepoint,
        StopKind::Idle => StopReason::Idle,
        StopKind::Exited => StopReason::Exited,
        StopKind::Requester => StopReason::Requester,
    };
    StwReport {
        processors: report
            .processors
            .into_iter()
            .map(|(kind, d)| (reason(kind), d))
            .collect(),
        time_to_stop: report.time_to_stop,
        pause: report.pause,
        late: report.late,
    }
}

impl Probes {
    /// The snapshot as JSON (`serde_json`); non-finite numbers become `null`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("probes contain only serialisable values")
    }

    /// The snapshot in Prometheus' text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        self.write_prometheus(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    fn write_prometheus(&self, out: &mut String) -> fmt::Result {
        self.write_gauges(out)?;
        self.write_per_processor(out)?;
        self.write_steals(out)?;
        self.write_task_memory(out)?;
        summary(
            out,
            "gpm_task_sojourn_seconds",
            "Spawn-to-completion time of sampled tasks.",
            &self.sojourn,
        )?;
        summary(
            out,
            "gpm_queue_wait_seconds",
            "Enqueue-to-poll time of sampled tasks.",
            &self.queue_wait,
        )?;
        self.write_little(out)
    }

    fn write_gauges(&self, out: &mut String) -> fmt::Result {
        let gauges: [(&str, &str, f64); 7] = [
            (
                "gpm_injector_depth",
                "Tasks in the global queue.",
                self.injector_depth as f64,
            ),
            (
                "gpm_blocking_queue_depth",
                "Closures waiting for a blocking thread.",
                self.blocking_queue_depth as f64,
            ),
            ("gpm_parked_processors", "Parked Ps.", self.parked as f64),
            (
                "gpm_searching_processors",
                "Ps searching for work.",
                self.searching as f64,
            ),
            (
                "gpm_threads",
                "OS threads of the runtime.",
                self.threads as f64,
            ),
            (
                "gpm_tasks_alive",
                "Tasks spawned and not completed (L).",
                self.tasks_alive as f64,
            ),
            (
                "gpm_uptime_seconds",
                "Time since the runtime started.",
                self.uptime_s,
            ),
        ];
        for (name, help, value) in gauges {
            metric(out, name, help, "gauge", &[("", value)])?;
        }
        Ok(())
    }

    fn write_per_processor(&self, out: &mut String) -> fmt::Result {
        let labels: Vec<String> = self
            .processors
            .iter()
            .map(|p| format!("processor=\"{}\"", p.index))
            .collect();
        let per_processor: [PerProcessor; 6] = [
            (
                "gpm_processor_queue_depth",
                "Tasks in a P's local queue.",
                "gauge",
                |p| p.queue_depth as f64,
            ),
            (
                "gpm_processor_deferred",
                "Yielded tasks waiting on a P.",
                "gauge",
                |p| p.deferred as f64,
            ),
            (
                "gpm_processor_polls_total",
                "Polls run by a P.",
                "counter",
                |p| p.polls as f64,
            ),
            (
                "gpm_processor_spawns_total",
                "Spawns on a P.",
                "counter",
                |p| p.spawns as f64,
            ),
            (
                "gpm_processor_wakes_total",
                "Wake-ups on a P.",
                "counter",
                |p| p.wakes as f64,
            ),
            (
                "gpm_processor_completions_total",
                "Completions on a P.",
                "counter",
                |p| p.completions as f64,
            ),
        ];
        for (name, help, kind, value) in per_processor {
            let values: Vec<(&str, f64)> = labels
                .iter()
                .zip(&self.processors)
                .map(|(label, p)| (label.as_str(), value(p)))
                .collect();
            metric(out, name, help, kind, &values)?;
        }
        Ok(())
    }

    fn write_steals(&self, out: &mut String) -> fmt::Result {
        let relations: [PerRelation; 3] = [
            (
                "gpm_processor_steals_total",
                "Successful steals by a P, by victim relation.",
                |p| p.steals,
            ),
            (
                "gpm_processor_steal_attempts_total",
                "Victims visited by a P, by relation.",
                |p| p.steal_attempts,
            ),
            (
                "gpm_processor_tasks_stolen_total",
                "Tasks taken by a P from victims, by relation.",
                |p| p.tasks_stolen,
            ),
        ];
        for (name, help, value) in relations {
            let samples: Vec<(String, f64)> = self
                .processors
                .iter()
                .flat_map(|p| {
                    let v = value(p);
                    [
                        ("same_l3", v.same_l3),
                        ("same_node", v.same_node),
                        ("other_node", v.other_node),
                    ]
                    .map(|(r, n)| {
                        (
                            format!("processor=\"{}\",relation=\"{r}\"", p.index),
                            n as f64,
                        )
                    })
                })
                .collect();
            let samples: Vec<(&str, f64)> = samples.iter().map(|(l, v)| (l.as_str(), *v)).collect();
            metric(out, name, help, "counter", &samples)?;
        }
        Ok(())
    }

    fn write_task_memory(&self, out: &mut String) -> fmt::Result {
        let memory = &self.task_memory;
        let label = format!("allocator=\"{}\"", memory.allocator);
        metric(
            out,
            "gpm_task_memory_live_bytes",
            "Bytes of live task cells.",
            "gauge",
            &[(&label, memory.live_bytes as f64)],
        )?;
        metric(
            out,
            "gpm_task_memory_mapped_bytes",
            "Bytes mapped for the slab.",
            "gauge",
            &[(&label, memory.mapped_bytes as f64)],
        )
    }

    fn write_little(&self, out: &mut String) -> fmt::Result {
        let views = [
            ("view=\"tasks\"", self.little_tasks),
            ("view=\"queues\"", self.little_queues),
        ];
        let fields: [LittleField; 4] = [
            (
                "gpm_little_lambda",
                "Arrival rate over the window, per second.",
                |l| l.lambda,
            ),
            (
                "gpm_little_w_seconds",
                "Mean time in the system over the window.",
                |l| l.w_s,
            ),
            (
                "gpm_little_l_measured",
                "Items in the system, measured.",
                |l| l.l_measured,
            ),
            ("gpm_little_l_predicted", "lambda * W.", |l| l.l_predicted),
        ];
        for (name, help, field) in fields {
            let values: Vec<(&str, f64)> = views
                .iter()
                .filter_map(|(label, law)| law.as_ref().map(|law| (*label, field(law))))
                .collect();
            if !values.is_empty() {
                metric(out, name, help, "gauge", &values)?;
            }
        }
        Ok(())
    }
}

/// A per-P metric: name, help, type, value.
type PerProcessor = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ProcessorProbe) -> f64,
);
/// A per-P, per-relation metric: name, help, counts.
type PerRelation = (
    &'static str,
    &'static str,
    fn(&ProcessorProbe) -> RelationProbe,
);
/// A Little's-law metric: name, help, value.
type LittleField = (&'static str, &'static str, fn(&LittleProbe) -> f64);

fn metric(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    values: &[(&str, f64)],
) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")?;
    for (labels, value) in values {
        let value = prometheus_value(*value);
        if labels.is_empty() {
            writeln!(out, "{name} {value}")?;
        } else {
            writeln!(out, "{name}{{{labels}}} {value}")?;
        }
    }
    Ok(())
}

fn summary(out: &mut String, name: &str, help: &str, latency: &LatencyProbe) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} summary")?;
    for (q, ns) in [
        ("0.5", latency.p50_ns),
        ("0.99", latency.p99_ns),
        ("0.999", latency.p999_ns),
    ] {
        writeln!(out, "{name}{{quantile=\"{q}\"}} {}", ns as f64 / 1e9)?;
    }
    let sum = latency.mean_ns * latency.count as f64 / 1e9;
    writeln!(out, "{name}_sum {}", prometheus_value(sum))?;
    writeln!(out, "{name}_count {}", latency.count)
}

fn prometheus_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

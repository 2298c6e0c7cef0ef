//! The snapshot types ([`Probes`] and its parts) and their assembly by the reader: sums over
//! the Ps, quantiles, and Little's law with the knee over the reader's window. Nothing here
//! stops a P; every per-P value is a racy read of what the P last published.

use crate::alloc::TaskAllocatorStats;
use crate::rt::shared::Shared;
use gpm_scheduler::probe::knee::{Knee, LoadPoint};
use gpm_scheduler::probe::latency::Quantiles;
use gpm_scheduler::probe::little::{LittlesLaw, Totals};
use gpm_scheduler::probe::{Event, EventCounts};
use gpm_scheduler::steal::{ByRelation, StealStats};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Instant;

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
    /// Every one of its event counters, by name ([`Event::ALL`]); the fields below repeat
    /// the common ones.
    pub events: EventCounts,
    /// Polls it ran.
    pub polls: u64,
    /// Tasks spawned by tasks it ran.
    pub spawns: u64,
    /// Wake-ups performed on it.
    pub wakes: u64,
    /// Completions on it.
    pub completions: u64,
    /// Its successful steals, by the victim's relation to it.
    pub steals: ByRelation,
    /// Its steal attempts (victims visited), by relation.
    pub steal_attempts: ByRelation,
    /// Tasks it took from victims, by relation.
    pub tasks_stolen: ByRelation,
    /// Its EWMA of queue wait (the affinity policy's latency term), ns.
    pub queue_wait_ewma_ns: u64,
    /// Task allocations served by its slab cache without a refill.
    pub slab_hits: u64,
    /// Its slab cache's refills from the node pool.
    pub slab_refills: u64,
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

/// A snapshot of the scheduler, from [`Handle::probes`](crate::rt::Handle::probes).
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
    /// Every event counter summed over all Ps and threads without one, by name; the
    /// fields below repeat the common ones.
    pub events: EventCounts,
    /// Polls, summed over all Ps. Polls, yields (counted as wake-ups) and completions in
    /// polls are tallied by each M and published on its driver turns (at most 61 polls
    /// apart), when its P parks and when the P leaves it: a snapshot taken while Ms run may
    /// lack up to that many of each per P. Every other count is published when its event
    /// happens.
    pub polls: u64,
    /// Spawns.
    pub spawns: u64,
    /// Wake-ups (yields included).
    pub wakes: u64,
    /// Completions (see `polls` for when those in polls show).
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
    /// Samples lost to a reader holding a histogram: always 0 since the histograms stopped
    /// locking (`gpm_scheduler::probe::latency`); kept so that readers of the snapshot and
    /// its JSON go on working.
    pub dropped_samples: u64,
    /// Whether a stop-the-world is being requested or in force.
    pub stw_pending: bool,
    /// The stealing policy in force.
    pub steal_policy: &'static str,
    /// Successful steals of all Ps, by relation.
    pub steals: ByRelation,
    /// Tasks taken from the injector by a P's fair share.
    pub injector_takes: u64,
    /// The task allocator's totals.
    pub task_memory: TaskMemoryProbe,
}

/// Builds the [`Probes`] snapshot of `shared` (`Shared::probes`).
pub(crate) fn snapshot(shared: &Shared) -> Probes {
    let probes = &shared.probes;
    let steal = shared.scheduler.steal_stats();
    let memory = shared.task_allocator_stats();
    let processors: Vec<ProcessorProbe> = (0..shared.scheduler.num_processors())
        .map(|index| processor_probe(shared, index, &steal, &memory))
        .collect();
    let injector_depth = shared.scheduler.injector().len();
    // The totals from the same reads as the Ps' rows, so the rows add up to them.
    let totals = processors
        .iter()
        .fold(shared.scheduler.events().shared(), |sum, p| sum + p.events);
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
        events: totals,
        polls: totals[Event::Poll],
        spawns: totals[Event::Spawn],
        wakes: totals[Event::Wake],
        completions: totals[Event::Completion],
        sojourn: probes.sojourn.quantiles(),
        queue_wait: wait,
        little_tasks,
        little_queues,
        knee,
        dropped_samples: 0,
        stw_pending: probes.world.is_requested(),
        steal_policy: steal.policy,
        steals: processors
            .iter()
            .fold(ByRelation::default(), |total, p| total + p.steals),
        injector_takes: totals[Event::InjectorTake],
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
    let events = shared.scheduler.events().processor(index);
    let stolen = steal.processors.get(index).cloned().unwrap_or_default();
    let slab = memory.processors.get(index).cloned().unwrap_or_default();
    ProcessorProbe {
        index,
        queue_depth: shared.scheduler.queue_len(index),
        runnext: gauges.runnext.load(Ordering::Relaxed),
        deferred: gauges.deferred.load(Ordering::Relaxed),
        parked: shared.scheduler.idle().is_parked(index),
        events,
        polls: events[Event::Poll],
        spawns: events[Event::Spawn],
        wakes: events[Event::Wake],
        completions: events[Event::Completion],
        steals: events.by_relation(Event::steal),
        steal_attempts: events.by_relation(Event::steal_attempt),
        tasks_stolen: events.by_relation(Event::stolen),
        queue_wait_ewma_ns: stolen.queue_wait_ewma_ns,
        slab_hits: slab.hits,
        slab_refills: slab.refills,
    }
}

/// Adds a snapshot to the reader's windows and evaluates both views of the law.
fn little(
    shared: &Shared,
    totals: EventCounts,
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
        arrivals: totals[Event::Spawn],
        sojourn_sum_ns: totals[Event::SojournNs],
        sojourn_count: totals[Event::Sojourn],
    });
    // The histogram keeps the wait sum as count * mean; exact enough for a mean.
    reader.queues.push(Totals {
        at,
        arrivals: totals[Event::Spawn] + totals[Event::Wake],
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

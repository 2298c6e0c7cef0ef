//! The part of gpm's probes snapshot that gpm-top reads, as the JSON that
//! `serde_json::to_string(&handle.probes())` writes (`gpm::probe::Probes`, defined in
//! `runtime/src/rt/probes/snapshot.rs`).
//!
//! These are gpm-top's own types, not gpm's: gpm-top does not link the runtime it watches.
//! Unknown fields are ignored (serde's default), so a snapshot that grows new fields still
//! parses; a field read here that the snapshot loses or renames is an error naming the field,
//! and `tests/real_snapshot.rs` catches that drift by parsing a snapshot of a real runtime.
//! `serde_json` writes a non-finite `f64` (a `W` with nothing sampled yet) as `null`: every
//! float here reads `null` as NaN.

use serde::{Deserialize, Deserializer};

/// Reads a float that may be `null` (a NaN on gpm's side) as NaN.
fn nullable_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// A count split by the victim's relation to the thief (gpm's `ByRelation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ByRelation {
    /// Victims in the thief's L3 domain.
    pub same_l3: u64,
    /// Victims on the thief's NUMA node, another L3.
    pub same_node: u64,
    /// Victims on other nodes.
    pub other_node: u64,
}

impl ByRelation {
    /// The sum over the relations.
    pub fn total(&self) -> u64 {
        self.same_l3 + self.same_node + self.other_node
    }
}

/// A latency distribution, nanoseconds (gpm's `LatencyProbe`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Quantiles {
    /// Recorded values.
    pub count: u64,
    /// Mean.
    #[serde(deserialize_with = "nullable_f64")]
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest value.
    pub max_ns: u64,
}

/// Little's law over the runtime's last window (gpm's `LittleProbe`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Little {
    /// Window, seconds.
    #[serde(deserialize_with = "nullable_f64")]
    pub window_s: f64,
    /// Arrivals per second.
    #[serde(deserialize_with = "nullable_f64")]
    pub lambda: f64,
    /// Mean time in the system, seconds (NaN when nothing was sampled).
    #[serde(deserialize_with = "nullable_f64")]
    pub w_s: f64,
    /// Measured `L`.
    #[serde(deserialize_with = "nullable_f64")]
    pub l_measured: f64,
    /// `lambda * W`.
    #[serde(deserialize_with = "nullable_f64")]
    pub l_predicted: f64,
    /// `(measured - predicted) / max(measured, predicted)`.
    #[serde(deserialize_with = "nullable_f64")]
    pub deviation: f64,
}

/// The knee of `L(lambda)` (gpm's `KneeProbe`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Knee {
    /// Arrival rate at the knee, tasks per second.
    #[serde(deserialize_with = "nullable_f64")]
    pub lambda: f64,
    /// Tasks in the system there.
    #[serde(deserialize_with = "nullable_f64")]
    pub l: f64,
    /// Relative curvature.
    #[serde(deserialize_with = "nullable_f64")]
    pub curvature: f64,
}

/// The task allocator (gpm's `TaskMemoryProbe`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskMemory {
    /// `"slab"` or `"system"`.
    pub allocator: String,
    /// Bytes of live task cells.
    pub live_bytes: i64,
    /// Bytes of spans mapped for the slab.
    pub mapped_bytes: u64,
    /// Frees that went back to a node pool.
    pub remote_frees: u64,
    /// Tasks too large for the slab.
    pub large_allocations: u64,
}

/// One P (gpm's `ProcessorProbe`). Counters are totals since the runtime started; gpm-top
/// turns them into rates from two snapshots.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Processor {
    /// The P's index.
    pub index: usize,
    /// Tasks in its local FIFO.
    pub queue_depth: u64,
    /// Whether its `runnext` slot held a task.
    pub runnext: bool,
    /// Yielded tasks waiting behind the injector.
    pub deferred: u64,
    /// Whether it is parked.
    pub parked: bool,
    /// Polls.
    pub polls: u64,
    /// Spawns by tasks it ran.
    pub spawns: u64,
    /// Wake-ups performed on it.
    pub wakes: u64,
    /// Completions.
    pub completions: u64,
    /// Successful steals, by relation.
    pub steals: ByRelation,
    /// Steal attempts (victims visited), by relation.
    pub steal_attempts: ByRelation,
    /// Tasks taken from victims, by relation.
    pub tasks_stolen: ByRelation,
    /// EWMA of its queue wait, ns.
    pub queue_wait_ewma_ns: u64,
    /// Task allocations served by its slab cache.
    pub slab_hits: u64,
    /// Refills of its slab cache.
    pub slab_refills: u64,
}

/// A snapshot of the runtime (gpm's `Probes`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Probes {
    /// Time since the runtime started, seconds (the clock rates are computed with).
    #[serde(deserialize_with = "nullable_f64")]
    pub uptime_s: f64,
    /// Per P.
    pub processors: Vec<Processor>,
    /// Tasks in the global queue.
    pub injector_depth: u64,
    /// Closures waiting for a blocking thread.
    pub blocking_queue_depth: u64,
    /// Parked Ps.
    pub parked: u64,
    /// Ps searching for work.
    pub searching: u64,
    /// OS threads.
    pub threads: u64,
    /// Tasks spawned and not completed.
    pub tasks_alive: u64,
    /// Polls, all Ps and threads.
    pub polls: u64,
    /// Spawns.
    pub spawns: u64,
    /// Wake-ups.
    pub wakes: u64,
    /// Completions.
    pub completions: u64,
    /// Spawn-to-completion time of sampled tasks.
    pub sojourn: Quantiles,
    /// Enqueue-to-poll time of sampled tasks.
    pub queue_wait: Quantiles,
    /// Little's law for tasks; absent on the runtime's first snapshot.
    pub little_tasks: Option<Little>,
    /// Little's law for the run queues.
    pub little_queues: Option<Little>,
    /// The knee, once there is one.
    pub knee: Option<Knee>,
    /// Samples lost to a reader holding a histogram.
    pub dropped_samples: u64,
    /// Whether a stop-the-world is requested or in force.
    pub stw_pending: bool,
    /// The stealing policy.
    pub steal_policy: String,
    /// Successful steals of all Ps, by relation.
    pub steals: ByRelation,
    /// Tasks taken from the injector.
    pub injector_takes: u64,
    /// The task allocator.
    pub task_memory: TaskMemory,
}

impl Probes {
    /// Parses the JSON of `GET /probes.json`.
    pub fn from_json(text: &[u8]) -> Result<Probes, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

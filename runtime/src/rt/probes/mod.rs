//! Probes: queue depths, counters, Little's law with P99, the knee, and stop-the-world.
//!
//! # What is kept, and what it costs
//!
//! | what | written when | cost on the hot path |
//! |---|---|---|
//! | the per-P event table (`gpm_scheduler::probe::Event`: polls, spawns, wakes, completions, sampled sojourns, steals by relation, injector takes) | every event; the three an M's own loop sees (polls, yields as wake-ups, completions in its polls) tallied in the M and published on each driver turn (every 61 polls at most), when its P parks and when the P leaves it | one relaxed load + store to a P-owned cache line, through the holder's `Processor`; for the tallied three, an increment of a cell of the M |
//! | `runnext` / deferred gauges per P | on each driver turn (every 61 polls at most) and before parking | two relaxed stores to a P-owned line |
//! | spawn and enqueue timestamps | 1 schedule in `sample_every` per M (other threads: per thread) | a countdown in the M's context: a load, a compare and a store for the others |
//! | sojourn, queue-wait log-linear histograms (`gpm_scheduler::probe::latency`) | at completion / poll of a sampled task | one relaxed load + store to a P-owned bucket |
//! | stop-the-world check | once per scheduling round | one relaxed load |
//!
//! Measured with callgrind (`bench/scripts/instructions.sh`, docs/BENCHMARKS.md "Probes,
//! third pass"): the counters alone cost 0.1-0.8% more instructions than no probes on
//! tokio's tiniest-task workloads, with the default timestamps 1.0-1.8% in all; in wall
//! time (`gpm-lab compare --probes-off`) the difference is within the intervals.
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
//! One schedule in `sample_every` per M (per thread off the Ms;
//! [`Builder::probe_sampling`](super::Builder::probe_sampling), default 32) stamps the task
//! header with the cheapest monotonic clock (`rt::stamp`: the TSC where it is a clock, else
//! `CLOCK_MONOTONIC`; the choice and its measurements are there): a stamped spawn gives a sojourn sample
//! at completion, a stamped enqueue a queue-wait sample at the next poll. The same samples
//! feed the affinity policy's latency history. Which schedule is sampled does not depend on
//! what the task does, so sample means and quantiles estimate the population's. `0` turns
//! timing (not counting) off;
//! [`Builder::enable_probes(false)`](super::Builder::enable_probes) turns counting off too
//! (queue depths, thread counts and stop-the-world keep working: they cost nothing until
//! read). The `probes` bench measures what they cost.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `recording.rs` | `ProbeState`: the hot-path writes (gauges, sampled histograms, arrival stamps) |
//! | `snapshot.rs` | the snapshot types and their assembly, Little's law and the knee |
//! | `prometheus.rs` | JSON and Prometheus text export of a snapshot |
//! | `stw.rs` | the stop-the-world types and the glue to `gpm_scheduler::stw` |

mod prometheus;
mod recording;
mod snapshot;
mod stw;

pub(crate) use recording::{Arrival, ProbeState, DEFAULT_SAMPLE_EVERY};
pub(crate) use snapshot::snapshot;
pub use snapshot::{KneeProbe, LatencyProbe, LittleProbe, Probes, ProcessorProbe, TaskMemoryProbe};
pub(crate) use stw::stop_the_world;
pub use stw::{QueueSnapshot, StoppedWorld, StwReport};

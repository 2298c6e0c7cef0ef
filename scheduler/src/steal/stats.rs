//! Steal counters per P and relation, and their plain snapshots.
//!
//! Each P owns one [`StealCounters`] (cache-padded in the scheduler's per-P array). Only the
//! holder of the P writes it, with relaxed load-then-store (no read-modify-write: there is
//! one writer); anyone reads it with relaxed loads. A snapshot is therefore not atomic
//! across counters, but each counter only grows.

use super::topology::Relation;
use std::sync::atomic::{AtomicU64, Ordering};

/// Owner-written counters of one P's steal attempts.
#[derive(Debug, Default)]
pub struct StealCounters {
    attempts: [AtomicU64; 3],
    successes: [AtomicU64; 3],
    tasks: [AtomicU64; 3],
    injector_takes: AtomicU64,
}

/// A count per [`Relation`] between a thief and its victim: in [`StealStats`], and in the
/// runtime's probe snapshots (`gpm::probe`, serialised by their JSON export).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ByRelation {
    /// Victims in the thief's L3 domain.
    pub same_l3: u64,
    /// Victims on the thief's NUMA node, other L3.
    pub same_node: u64,
    /// Victims on other nodes.
    pub other_node: u64,
}

impl ByRelation {
    /// The count for `relation`.
    pub fn get(&self, relation: Relation) -> u64 {
        match relation {
            Relation::SameL3 => self.same_l3,
            Relation::SameNode => self.same_node,
            Relation::OtherNode => self.other_node,
        }
    }

    /// Sum over the relations.
    pub fn total(&self) -> u64 {
        self.same_l3 + self.same_node + self.other_node
    }

    fn load(counters: &[AtomicU64; 3]) -> ByRelation {
        ByRelation {
            same_l3: counters[0].load(Ordering::Relaxed),
            same_node: counters[1].load(Ordering::Relaxed),
            other_node: counters[2].load(Ordering::Relaxed),
        }
    }
}

/// Relation by relation.
impl std::ops::Add for ByRelation {
    type Output = ByRelation;
    fn add(self, other: ByRelation) -> ByRelation {
        ByRelation {
            same_l3: self.same_l3 + other.same_l3,
            same_node: self.same_node + other.same_node,
            other_node: self.other_node + other.other_node,
        }
    }
}

/// What one P did as a thief, at some moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessorStealStats {
    /// Victims tried (one per victim visited).
    pub attempts: ByRelation,
    /// Tries that took at least one task.
    pub successes: ByRelation,
    /// Tasks taken (the batch moved plus the one run at once).
    pub tasks_stolen: ByRelation,
    /// Searches that found every victim empty and took work from the injector instead.
    pub injector_takes: u64,
    /// This P's average queue wait, nanoseconds (the latency history thieves read).
    pub queue_wait_ewma_ns: u64,
    /// This P's average poll duration, nanoseconds.
    pub poll_ewma_ns: u64,
}

/// Steal statistics of every P of a runtime: `processors[p]` is P `p`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StealStats {
    /// The policy in use (`random`, `affinity` or `hierarchical`).
    pub policy: &'static str,
    /// One entry per P.
    pub processors: Vec<ProcessorStealStats>,
}

impl StealStats {
    /// Sum over all Ps (the latency averages are left at 0).
    pub fn total(&self) -> ProcessorStealStats {
        let mut total = ProcessorStealStats::default();
        for p in &self.processors {
            total.attempts = total.attempts + p.attempts;
            total.successes = total.successes + p.successes;
            total.tasks_stolen = total.tasks_stolen + p.tasks_stolen;
            total.injector_takes += p.injector_takes;
        }
        total
    }
}

impl StealCounters {
    /// Counts one visit of a victim with `relation` that took `tasks` tasks (0: it was
    /// empty). Only the holder of the P calls it.
    pub fn record_attempt(&self, relation: Relation, tasks: u64) {
        let i = relation.index();
        bump(&self.attempts[i], 1);
        if tasks > 0 {
            bump(&self.successes[i], 1);
            bump(&self.tasks[i], tasks);
        }
    }

    /// Counts a search that fell back to the injector and found work there.
    pub fn record_injector_take(&self) {
        bump(&self.injector_takes, 1);
    }

    /// A snapshot of the counters; the latency fields are left at 0 for the caller.
    pub fn snapshot(&self) -> ProcessorStealStats {
        ProcessorStealStats {
            attempts: ByRelation::load(&self.attempts),
            successes: ByRelation::load(&self.successes),
            tasks_stolen: ByRelation::load(&self.tasks),
            injector_takes: self.injector_takes.load(Ordering::Relaxed),
            queue_wait_ewma_ns: 0,
            poll_ewma_ns: 0,
        }
    }
}

/// Single-writer increment: a plain load and store, no locked instruction.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_successes_and_tasks_by_relation() {
        let counters = StealCounters::default();
        counters.record_attempt(Relation::SameL3, 0);
        counters.record_attempt(Relation::SameL3, 4);
        counters.record_attempt(Relation::OtherNode, 2);
        counters.record_injector_take();
        let snap = counters.snapshot();
        assert_eq!(snap.attempts.same_l3, 2);
        assert_eq!(snap.successes.same_l3, 1);
        assert_eq!(snap.tasks_stolen.get(Relation::SameL3), 4);
        assert_eq!(snap.tasks_stolen.other_node, 2);
        assert_eq!(snap.attempts.total(), 3);
        assert_eq!(snap.injector_takes, 1);
        let stats = StealStats {
            policy: "random",
            processors: vec![snap, snap],
        };
        assert_eq!(stats.total().tasks_stolen.total(), 12);
    }
}

//! Steal statistics per P and relation: plain snapshots of the steal rows of the Ps' event
//! tables ([`crate::probe::events`]), with each P's latency averages.

use super::topology::Relation;
use crate::probe::{Event, EventCounts, EventTable};

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

/// Counts one visit of a victim with `relation` that took `tasks` tasks (0: it was empty)
/// in the thief's event table.
pub(crate) fn record_steal_attempt(events: &EventTable, relation: Relation, tasks: u64) {
    events.add(Event::steal_attempt(relation), 1);
    if tasks > 0 {
        events.add(Event::steal(relation), 1);
        events.add(Event::stolen(relation), tasks);
    }
}

impl From<&EventCounts> for ProcessorStealStats {
    /// The steal rows of a P's event counters; the latency fields are left at 0.
    fn from(events: &EventCounts) -> ProcessorStealStats {
        ProcessorStealStats {
            attempts: events.by_relation(Event::steal_attempt),
            successes: events.by_relation(Event::steal),
            tasks_stolen: events.by_relation(Event::stolen),
            injector_takes: events.get(Event::InjectorTake),
            queue_wait_ewma_ns: 0,
            poll_ewma_ns: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_successes_and_tasks_by_relation() {
        let events = crate::probe::Events::new(1, true);
        let table = events.writer(0).unwrap();
        record_steal_attempt(&table, Relation::SameL3, 0);
        record_steal_attempt(&table, Relation::SameL3, 4);
        record_steal_attempt(&table, Relation::OtherNode, 2);
        table.add(Event::InjectorTake, 1);
        let snap = ProcessorStealStats::from(&events.processor(0));
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

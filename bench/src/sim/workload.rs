//! The simulated workloads: spawn-only task trees with a work time per task (closed: they
//! start on P0, or for the pipeline on a few entry Ps, and end when the tree is done), and
//! open-loop servers (requests arrive on their own Poisson schedule whatever the runtime
//! does; judged by P99 sojourn).
//!
//! A workload is a pure description: its initial tasks ([`Workload::initial`]) and, per
//! task, the children its completion spawns ([`Workload::children`]). The simulator and the
//! lab's real runs (`gpm-lab policies --workloads sim-one-spawns-all,...`) walk the same
//! description, so both run the same tasks with the same work times.

use gpm_scheduler::steal::StealTopology;
use gpm_scheduler::FastRand;

/// One task: its index (`0..total_tasks`), its work in nanoseconds at home, and what the
/// workload needs to derive its children.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskSpec {
    pub(crate) id: usize,
    pub(crate) work_ns: u64,
    depth: u32,
}

/// A workload: closed ones start on P0, open ones arrive over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A root task spawns `SPAWN_ALL` tasks of 5 us each.
    OneSpawnsAll,
    /// A binary tree of depth `TREE_DEPTH`; every node works 2 us, then spawns two children.
    ForkJoin,
    /// A root spawns `SPAWN_ALL` tasks, every 32nd of 100 us, the others 2 us.
    Skewed,
    /// Open loop: `REQUESTS` requests, Poisson arrivals at `SERVER_LOAD` of the Ps'
    /// capacity, exponential work of mean `SERVER_MEAN_WORK_NS`; each belongs to a
    /// uniformly random P (its home: its connection's data) and is queued there, or, one
    /// in `INJECTOR_ONE_IN`, in the injector (woken from outside the Ps).
    Server,
    /// As [`Workload::Server`], at the same total rate, but every request belongs to a P
    /// of P0's node: that node is overloaded and the other nodes must help.
    HotNode,
    /// `PIPELINE_ITEMS` items, each a chain of `PIPELINE_STAGES` stage tasks: a stage's
    /// completion spawns the item's next stage (on the P that ran it, as a real spawn
    /// does). Stages work 2 us, every fourth 10 us (a heavy stage, e.g. a parse or a
    /// compression). All items are there at the start, spread round-robin over the entry
    /// Ps, one P in `PIPELINE_ENTRY_EVERY` (P0, P8, P16, ...: a receive queue per few
    /// cores), so every other P must steal to help; judged by makespan.
    Pipeline,
}

/// One request of an open-loop workload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) at_ns: u64,
    pub(crate) spec: TaskSpec,
    pub(crate) home: usize,
    pub(crate) to_injector: bool,
}

const REQUESTS: usize = 40_000;
const SERVER_LOAD: f64 = 0.7;
const SERVER_MEAN_WORK_NS: f64 = 5_000.0;
const INJECTOR_ONE_IN: u32 = 4;

const SPAWN_ALL: usize = 20_000;
const TREE_DEPTH: u32 = 14;

const PIPELINE_ITEMS: usize = 4_096;
const PIPELINE_STAGES: u32 = 8;
const PIPELINE_ENTRY_EVERY: usize = 8;

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 6] = [
        Workload::OneSpawnsAll,
        Workload::ForkJoin,
        Workload::Skewed,
        Workload::Server,
        Workload::HotNode,
        Workload::Pipeline,
    ];

    /// The closed workloads (judged by makespan), which the lab also runs for real.
    pub const CLOSED: [Workload; 4] = [
        Workload::OneSpawnsAll,
        Workload::ForkJoin,
        Workload::Skewed,
        Workload::Pipeline,
    ];

    /// Short name, as the binary accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::OneSpawnsAll => "one-spawns-all",
            Workload::ForkJoin => "fork-join",
            Workload::Skewed => "skewed",
            Workload::Server => "server",
            Workload::HotNode => "hot-node",
            Workload::Pipeline => "pipeline",
        }
    }

    /// Tasks the workload runs in all.
    pub fn total_tasks(self) -> usize {
        match self {
            Workload::OneSpawnsAll | Workload::Skewed => SPAWN_ALL + 1,
            Workload::ForkJoin => (1 << (TREE_DEPTH + 1)) - 1,
            Workload::Server | Workload::HotNode => REQUESTS,
            Workload::Pipeline => PIPELINE_ITEMS * PIPELINE_STAGES as usize,
        }
    }

    /// Work of all tasks at home, nanoseconds (the open workloads' is random: `None`).
    pub fn total_work_ns(self) -> Option<u64> {
        if self.is_open() {
            return None;
        }
        let mut total = 0;
        let mut pending: Vec<TaskSpec> = self.initial(1).into_iter().map(|(t, _)| t).collect();
        while let Some(task) = pending.pop() {
            total += task.work_ns;
            pending.extend(self.children(&task));
        }
        Some(total)
    }

    /// Work on the longest chain of spawns (the critical path), nanoseconds; `None` for the
    /// open workloads.
    pub fn critical_path_ns(self) -> Option<u64> {
        fn longest(workload: Workload, task: &TaskSpec) -> u64 {
            let below = workload
                .children(task)
                .into_iter()
                .map(|c| longest(workload, &c));
            task.work_ns + below.max().unwrap_or(0)
        }
        if self.is_open() {
            return None;
        }
        let initial = self.initial(1);
        initial.iter().map(|(t, _)| longest(self, t)).max()
    }

    /// The closed workload's tasks at the start and the P each is queued on (its home), on
    /// `ps` Ps; empty for an open workload.
    pub(crate) fn initial(self, ps: usize) -> Vec<(TaskSpec, usize)> {
        match self {
            Workload::Server | Workload::HotNode => Vec::new(),
            Workload::Pipeline => {
                let entries = ps.div_ceil(PIPELINE_ENTRY_EVERY);
                (0..PIPELINE_ITEMS)
                    .map(|item| {
                        let home = (item % entries) * PIPELINE_ENTRY_EVERY;
                        (stage(item, 0), home)
                    })
                    .collect()
            }
            _ => vec![(self.root(), 0)],
        }
    }

    /// Whether requests arrive on their own schedule (judged by P99 sojourn, not makespan).
    pub fn is_open(self) -> bool {
        matches!(self, Workload::Server | Workload::HotNode)
    }

    /// The requests of an open workload, by arrival time (empty for a closed one).
    pub(crate) fn arrivals(self, topology: &StealTopology, seed: u64) -> Vec<Arrival> {
        if !self.is_open() {
            return Vec::new();
        }
        let n = topology.num_processors();
        let homes: Vec<usize> = match self {
            Workload::HotNode => (0..n)
                .filter(|&p| topology.node(p) == topology.node(0))
                .collect(),
            _ => (0..n).collect(),
        };
        let mean_gap_ns = SERVER_MEAN_WORK_NS / (SERVER_LOAD * n as f64);
        let mut rng = FastRand::new(seed ^ 0x5E4E_5E4E);
        let mut at = 0.0;
        (0..REQUESTS)
            .map(|id| {
                at += exponential(&mut rng, mean_gap_ns);
                let work = exponential(&mut rng, SERVER_MEAN_WORK_NS).max(100.0);
                Arrival {
                    at_ns: at.round() as u64,
                    spec: leaf(id, work.round() as u64),
                    home: homes[rng.below(homes.len() as u32) as usize],
                    to_injector: rng.below(INJECTOR_ONE_IN) == 0,
                }
            })
            .collect()
    }

    pub(crate) fn root(self) -> TaskSpec {
        TaskSpec {
            id: 0,
            work_ns: 1_000,
            depth: 0,
        }
    }

    /// The tasks `task` spawns when it completes.
    pub(crate) fn children(self, task: &TaskSpec) -> Vec<TaskSpec> {
        match self {
            Workload::OneSpawnsAll if task.id == 0 => {
                (1..=SPAWN_ALL).map(|id| leaf(id, 5_000)).collect()
            }
            Workload::Skewed if task.id == 0 => (1..=SPAWN_ALL)
                .map(|id| leaf(id, if id % 32 == 0 { 100_000 } else { 2_000 }))
                .collect(),
            Workload::ForkJoin if task.depth < TREE_DEPTH => [1, 2]
                .iter()
                .map(|k| TaskSpec {
                    id: 2 * task.id + k,
                    work_ns: 2_000,
                    depth: task.depth + 1,
                })
                .collect(),
            Workload::Pipeline if task.depth + 1 < PIPELINE_STAGES => {
                vec![stage(task.id / PIPELINE_STAGES as usize, task.depth + 1)]
            }
            _ => Vec::new(),
        }
    }
}

/// Stage `stage` of pipeline item `item`: id `item * PIPELINE_STAGES + stage`.
fn stage(item: usize, stage: u32) -> TaskSpec {
    TaskSpec {
        id: item * PIPELINE_STAGES as usize + stage as usize,
        work_ns: if stage % 4 == 3 { 10_000 } else { 2_000 },
        depth: stage,
    }
}

/// An exponentially distributed value of mean `mean` (inverse transform of a uniform in
/// (0, 1]).
fn exponential(rng: &mut FastRand, mean: f64) -> f64 {
    let uniform = (f64::from(rng.below(1 << 30)) + 1.0) / f64::from(1u32 << 30);
    -uniform.ln() * mean
}

fn leaf(id: usize, work_ns: u64) -> TaskSpec {
    TaskSpec {
        id,
        work_ns,
        depth: 1,
    }
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "unknown workload {text:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task of `workload` on `ps` Ps, walking the children from the initial tasks.
    fn all_tasks(workload: Workload, ps: usize) -> Vec<TaskSpec> {
        let mut seen = Vec::new();
        let mut pending: Vec<TaskSpec> = workload.initial(ps).into_iter().map(|t| t.0).collect();
        while let Some(task) = pending.pop() {
            pending.extend(workload.children(&task));
            seen.push(task);
        }
        seen
    }

    #[test]
    fn closed_workloads_reach_every_id_once() {
        for workload in Workload::CLOSED {
            let mut ids: Vec<usize> = all_tasks(workload, 64).iter().map(|t| t.id).collect();
            ids.sort_unstable();
            let expected: Vec<usize> = (0..workload.total_tasks()).collect();
            assert_eq!(ids, expected, "{}", workload.name());
        }
    }

    #[test]
    fn pipeline_items_are_chains_of_stages_spread_over_entry_ps() {
        let initial = Workload::Pipeline.initial(64);
        assert_eq!(initial.len(), PIPELINE_ITEMS);
        let mut homes: Vec<usize> = initial.iter().map(|&(_, home)| home).collect();
        homes.sort_unstable();
        homes.dedup();
        assert_eq!(homes, [0, 8, 16, 24, 32, 40, 48, 56]);
        // Each stage spawns exactly the same item's next stage; the last spawns nothing.
        let (first, _) = initial[5];
        let mut task = first;
        for expected in 1..PIPELINE_STAGES {
            let children = Workload::Pipeline.children(&task);
            assert_eq!(children.len(), 1);
            assert_eq!(children[0].id, task.id + 1);
            assert_eq!(children[0].depth, expected);
            task = children[0];
        }
        assert!(Workload::Pipeline.children(&task).is_empty());
        // 2 us stages, every fourth 10 us: 6 x 2 + 2 x 10 = 32 us per item.
        assert_eq!(Workload::Pipeline.critical_path_ns(), Some(32_000));
        assert_eq!(
            Workload::Pipeline.total_work_ns(),
            Some(32_000 * PIPELINE_ITEMS as u64)
        );
        // Two Ps (this machine): one entry P.
        assert!(Workload::Pipeline
            .initial(2)
            .iter()
            .all(|&(_, home)| home == 0));
    }

    #[test]
    fn names_round_trip() {
        for workload in Workload::ALL {
            assert_eq!(workload.name().parse::<Workload>(), Ok(workload));
        }
        assert!("ring".parse::<Workload>().is_err());
    }
}

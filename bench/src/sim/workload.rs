//! The simulated workloads: spawn-only task trees with a work time per task (closed: they
//! start on P0 and end when the tree is done), and open-loop servers (requests arrive on
//! their own Poisson schedule whatever the runtime does; judged by P99 sojourn).

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

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 5] = [
        Workload::OneSpawnsAll,
        Workload::ForkJoin,
        Workload::Skewed,
        Workload::Server,
        Workload::HotNode,
    ];

    /// Short name, as the binary accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::OneSpawnsAll => "one-spawns-all",
            Workload::ForkJoin => "fork-join",
            Workload::Skewed => "skewed",
            Workload::Server => "server",
            Workload::HotNode => "hot-node",
        }
    }

    /// Tasks the workload runs in all.
    pub fn total_tasks(self) -> usize {
        match self {
            Workload::OneSpawnsAll | Workload::Skewed => SPAWN_ALL + 1,
            Workload::ForkJoin => (1 << (TREE_DEPTH + 1)) - 1,
            Workload::Server | Workload::HotNode => REQUESTS,
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
            _ => Vec::new(),
        }
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
                format!("unknown workload {text:?}: expected one-spawns-all, fork-join, skewed, server or hot-node")
            })
    }
}

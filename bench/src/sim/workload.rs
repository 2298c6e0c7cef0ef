//! The simulated workloads: spawn-only task trees with a work time per task.

/// One task: its index (`0..total_tasks`), its work in nanoseconds at home, and what the
/// workload needs to derive its children.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskSpec {
    pub(crate) id: usize,
    pub(crate) work_ns: u64,
    depth: u32,
}

/// An imbalanced workload: everything starts on P0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A root task spawns `SPAWN_ALL` tasks of 5 us each.
    OneSpawnsAll,
    /// A binary tree of depth `TREE_DEPTH`; every node works 2 us, then spawns two children.
    ForkJoin,
    /// A root spawns `SPAWN_ALL` tasks, every 32nd of 100 us, the others 2 us.
    Skewed,
}

const SPAWN_ALL: usize = 20_000;
const TREE_DEPTH: u32 = 14;

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 3] = [Workload::OneSpawnsAll, Workload::ForkJoin, Workload::Skewed];

    /// Short name, as the binary accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::OneSpawnsAll => "one-spawns-all",
            Workload::ForkJoin => "fork-join",
            Workload::Skewed => "skewed",
        }
    }

    /// Tasks the workload runs in all.
    pub fn total_tasks(self) -> usize {
        match self {
            Workload::OneSpawnsAll | Workload::Skewed => SPAWN_ALL + 1,
            Workload::ForkJoin => (1 << (TREE_DEPTH + 1)) - 1,
        }
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
                format!("unknown workload {text:?}: expected one-spawns-all, fork-join or skewed")
            })
    }
}

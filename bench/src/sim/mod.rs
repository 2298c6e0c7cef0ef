//! A deterministic discrete-event simulator of work stealing on a large machine, driving the
//! real victim-ordering code of `gpm-scheduler` ([`VictimPlanner`], [`LatencyHistory`],
//! [`StealTopology`]) with a cost model taken from the topology.
//!
//! # Model
//!
//! * Closed workloads start with their initial tasks queued on their Ps (P0; the pipeline's
//!   items on its entry Ps). Each P has an unbounded FIFO of tasks (the real bound and
//!   overflow are left out). A free P runs the oldest task of its FIFO; a task's children
//!   join the FIFO of the P that ran it when it completes (spawn-only DAGs: the join of a
//!   fork-join tree costs nothing).
//! * A P with an empty FIFO asks its planner for the victim order and visits victims in
//!   that order; each visit costs time ([`CostModel`]), and the first non-empty victim gives
//!   half its FIFO (rounded up), oldest first: the oldest is the thief's to run next, out of
//!   other thieves' reach (as the runtime's steal returns one task to run at once), the
//!   rest join the thief's FIFO. A P with nothing to run takes its share of the injector
//!   (`len / Ps + 1`) before it steals. A P that finds nothing retries after an exponential
//!   back-off (1 us doubling to 64 us), standing in for parking; it is woken at once when
//!   work appears (the owner of the FIFO that got it if it idles, else the next idle P).
//! * Open workloads ([`Workload::is_open`]) add requests at their arrival times, to their
//!   home P's FIFO or to the injector, and report the P99 sojourn.
//! * The planners see each victim's FIFO length and latency history (a [`FnView`]), as the
//!   runtime's do.
//! * A task runs slower away from the P that spawned it (its data's home): factors by
//!   relation in [`CostModel`]. Queue waits (enqueue to start) and run times feed each P's
//!   real `LatencyHistory`, which the affinity policy reads.
//! * Events are ordered by (time, sequence number); the only randomness is the planners'
//!   `FastRand`, seeded from the run's seed and the P's index, and the open workloads'
//!   arrivals, seeded from the run's seed. Same inputs, same output.
//!
//! # Limits
//!
//! A steal inspects the victim's FIFO at the moment it starts (the cost is paid after), and
//! the batch is stealable from the thief from then on. Before the stolen task to run was
//! kept out of reach (2026-11-30), it sat in the thief's FIFO while the thief paid for the
//! steal, and other thieves stole it back and forth: that alone made the old affinity policy
//! 1.24x random's makespan on one-spawns-all on the EPYC instead of 1.01x (tables in
//! docs/BENCHMARKS.md). Until the pipeline workload came (also 2026-11-30), a task's children
//! joined its P's FIFO when the task started, not when it completed: a thief could take and
//! run a child before its parent had finished (the root's children in one-spawns-all, a
//! node's in fork-join; a pipeline's next stage would have overlapped its own predecessor).
//! They are now released by an event at the parent's completion, and `execute` asserts
//! that no task starts before it was enqueued (the old code fails that assertion at once).
//! The closed workloads' figures moved by a few percent (docs/BENCHMARKS.md).
//!
//! The injector is served only when a P runs dry (no fairness tick), and no P's FIFO ever
//! spills into it; there is no `runnext`, no searcher cap, no cost for reading the victims'
//! state while planning (the affinity policy reads every victim's queue length and wait
//! average), no cost per spawn or poll, wake-ups are instant, and there is no OS noise.
//! Checked against the real runtime with 2 Ps on this one-node machine (the same task DAGs,
//! `gpm-lab policies --simulate`): the real makespans were 1.04-1.18x the simulated ones
//! once scaled for the CPUs the runs got, mostly the per-task cost (0.2-0.4 us) and the
//! wake-ups the model leaves out (docs/BENCHMARKS.md, "The model against this machine").
//! The numbers compare policies with each other under this model; they are not
//! predictions of wall time.

mod workload;

pub use workload::Workload;

use gpm_scheduler::steal::{
    FnView, LatencyHistory, Relation, StealPolicy, StealTopology, VictimPlanner,
};
use gpm_scheduler::FastRand;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use workload::Arrival;
pub(crate) use workload::TaskSpec;

/// Costs in nanoseconds, and slow-down factors of running a task away from its home P.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Visiting a victim in the same L3 (successful steal; an empty victim costs half).
    pub steal_same_l3_ns: f64,
    /// Visiting a victim on the same node, other L3.
    pub steal_same_node_ns: f64,
    /// Visiting a victim on another node at the smallest remote distance; scaled up with
    /// the normalised distance to twice this at the largest.
    pub steal_other_node_ns: f64,
    /// Run-time factor of a task run in its home P's L3 (but not on its home P).
    pub run_same_l3: f64,
    /// Run-time factor on the home node, other L3.
    pub run_same_node: f64,
    /// Run-time factor on another node, scaled like the steal cost (up to `1 + 2 (f - 1)`).
    pub run_other_node: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            steal_same_l3_ns: 150.0,
            steal_same_node_ns: 300.0,
            steal_other_node_ns: 700.0,
            run_same_l3: 1.05,
            run_same_node: 1.15,
            run_other_node: 1.35,
        }
    }
}

impl CostModel {
    /// Every cost times `factor`: steal costs, and each slow-down's excess over 1 (so a
    /// factor of 2 turns 1.35x into 1.7x). The sensitivity runs use 0.5 and 2.
    pub fn scaled(&self, factor: f64) -> CostModel {
        let excess = |f: f64| 1.0 + (f - 1.0) * factor;
        CostModel {
            steal_same_l3_ns: self.steal_same_l3_ns * factor,
            steal_same_node_ns: self.steal_same_node_ns * factor,
            steal_other_node_ns: self.steal_other_node_ns * factor,
            run_same_l3: excess(self.run_same_l3),
            run_same_node: excess(self.run_same_node),
            run_other_node: excess(self.run_other_node),
        }
    }

    fn steal_ns(&self, topology: &StealTopology, thief: usize, victim: usize) -> f64 {
        match topology.relation(thief, victim) {
            Relation::SameL3 => self.steal_same_l3_ns,
            Relation::SameNode => self.steal_same_node_ns,
            Relation::OtherNode => {
                self.steal_other_node_ns * (1.0 + topology.normalised_distance(thief, victim))
            }
        }
    }

    fn run_factor(&self, topology: &StealTopology, runner: usize, home: usize) -> f64 {
        if runner == home {
            return 1.0;
        }
        match topology.relation(runner, home) {
            Relation::SameL3 => self.run_same_l3,
            Relation::SameNode => self.run_same_node,
            Relation::OtherNode => {
                1.0 + (self.run_other_node - 1.0)
                    * (1.0 + topology.normalised_distance(runner, home))
            }
        }
    }
}

/// What one simulated run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The policy's name.
    pub policy: &'static str,
    /// The workload's name.
    pub workload: &'static str,
    /// Time from the start until the last task completed, nanoseconds.
    pub makespan_ns: u64,
    /// 99th percentile of request sojourn (arrival to completion), open workloads only.
    pub p99_sojourn_ns: Option<u64>,
    /// Tasks executed (each exactly once; the simulator checks).
    pub executed: usize,
    /// Victims visited.
    pub steal_attempts: u64,
    /// Visits that took work.
    pub steal_successes: u64,
    /// Successful steals by relation: same L3, same node, other node.
    pub successes_by_relation: [u64; 3],
    /// Tasks run by relation of the runner to the task's home: own P, same L3, same node,
    /// other node.
    pub runs_by_locality: [u64; 4],
}

impl Report {
    /// The figure policies are compared by: P99 sojourn for open workloads, else makespan.
    pub fn primary_ns(&self) -> u64 {
        self.p99_sojourn_ns.unwrap_or(self.makespan_ns)
    }

    /// Requests (tasks) completed per second of simulated time.
    pub fn throughput_per_s(&self) -> f64 {
        ratio(self.executed as u64, self.makespan_ns) * 1e9
    }

    /// Successful visits over all visits.
    pub fn success_rate(&self) -> f64 {
        ratio(self.steal_successes, self.steal_attempts)
    }

    /// Successful steals from another node over all successful steals.
    pub fn remote_steal_ratio(&self) -> f64 {
        ratio(self.successes_by_relation[2], self.steal_successes)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

struct Task {
    spec: TaskSpec,
    home: usize,
    enqueued_ns: u64,
    /// Arrival of an open workload's request (sojourn = completion - arrival).
    arrived_ns: u64,
}

struct Sim<'a> {
    topology: &'a StealTopology,
    costs: CostModel,
    queues: Vec<VecDeque<Task>>,
    /// The task a thief took to run at once (the real steal returns one task besides the
    /// batch); runs at the P's next event, out of other thieves' reach.
    in_hand: Vec<Option<Task>>,
    /// Children of the task a P is running: they join its FIFO when the task completes
    /// (a release event), not when it starts.
    spawned: Vec<Vec<Task>>,
    injector: VecDeque<Task>,
    planners: Vec<VictimPlanner>,
    rngs: Vec<FastRand>,
    histories: Vec<LatencyHistory>,
    backoff_ns: Vec<u64>,
    /// Whether the P is backing off (found no work); such a P is woken when work appears.
    idle: Vec<bool>,
    /// The sequence number of each P's one pending event; older ones are stale.
    pending: Vec<u64>,
    wake_cursor: usize,
    /// (time, sequence, slot): slot `p < Ps` is P `p`'s next step, slot `Ps + p` releases
    /// the children of the task P `p` is running (never stale).
    events: BinaryHeap<Reverse<(u64, u64, usize)>>,
    sequence: u64,
    ran: Vec<u8>,
    sojourns: Vec<u64>,
    report: Report,
}

const BACKOFF_MIN_NS: u64 = 1_000;
const BACKOFF_MAX_NS: u64 = 64_000;

/// Simulates `workload` under `policy` on `topology` with `seed`.
///
/// # Panics
/// If a task would run twice or not at all (a bug of the simulator).
pub fn simulate(
    topology: &StealTopology,
    policy: StealPolicy,
    workload: Workload,
    costs: CostModel,
    seed: u64,
) -> Report {
    let mut sim = Sim::new(topology, policy, workload, costs, seed);
    for (spec, home) in workload.initial(topology.num_processors()) {
        sim.queues[home].push_back(Task {
            spec,
            home,
            enqueued_ns: 0,
            arrived_ns: 0,
        });
    }
    for p in 0..topology.num_processors() {
        sim.schedule(0, p);
    }
    sim.run(workload, workload.arrivals(topology, seed));
    let missing = sim.ran.iter().filter(|&&r| r != 1).count();
    assert_eq!(missing, 0, "{missing} tasks not run exactly once");
    sim.finish()
}

impl<'a> Sim<'a> {
    fn new(
        topology: &'a StealTopology,
        policy: StealPolicy,
        workload: Workload,
        costs: CostModel,
        seed: u64,
    ) -> Sim<'a> {
        let n = topology.num_processors();
        Sim {
            topology,
            costs,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            in_hand: (0..n).map(|_| None).collect(),
            spawned: (0..n).map(|_| Vec::new()).collect(),
            injector: VecDeque::new(),
            planners: (0..n)
                .map(|p| VictimPlanner::new(&policy, topology, p))
                .collect(),
            rngs: (0..n)
                .map(|p| FastRand::new(seed.wrapping_mul(1_000_003).wrapping_add(p as u64)))
                .collect(),
            histories: (0..n).map(|_| LatencyHistory::new()).collect(),
            backoff_ns: vec![BACKOFF_MIN_NS; n],
            idle: vec![false; n],
            pending: vec![0; n],
            wake_cursor: 0,
            events: BinaryHeap::new(),
            sequence: 0,
            ran: vec![0; workload.total_tasks()],
            sojourns: Vec::new(),
            report: Report {
                policy: policy.name(),
                workload: workload.name(),
                makespan_ns: 0,
                p99_sojourn_ns: None,
                executed: 0,
                steal_attempts: 0,
                steal_successes: 0,
                successes_by_relation: [0; 3],
                runs_by_locality: [0; 4],
            },
        }
    }

    fn schedule(&mut self, time: u64, p: usize) {
        self.sequence += 1;
        self.pending[p] = self.sequence;
        self.events.push(Reverse((time, self.sequence, p)));
    }

    fn run(&mut self, workload: Workload, arrivals: Vec<Arrival>) {
        let total = workload.total_tasks();
        let mut arrivals = arrivals.into_iter().peekable();
        while self.report.executed < total {
            let Some(&Reverse((now, sequence, p))) = self.events.peek() else {
                break;
            };
            if let Some(arrival) = arrivals.next_if(|a| a.at_ns <= now) {
                self.arrive(arrival);
                continue;
            }
            self.events.pop();
            let n = self.queues.len();
            if p >= n {
                // The task P `p - n` ran completes now: its children become visible.
                let children = std::mem::take(&mut self.spawned[p - n]);
                self.queues[p - n].extend(children);
                self.wake_one(now, None);
                continue;
            }
            if sequence != self.pending[p] {
                continue; // Superseded by a wake-up.
            }
            let next = match self.in_hand[p]
                .take()
                .or_else(|| self.queues[p].pop_front())
            {
                Some(task) => self.execute(now, p, task, workload),
                None => self.find_work(now, p),
            };
            self.schedule(next, p);
        }
    }

    /// Queues an open workload's request where it arrives, and wakes a P for it.
    fn arrive(&mut self, arrival: Arrival) {
        let task = Task {
            spec: arrival.spec,
            home: arrival.home,
            enqueued_ns: arrival.at_ns,
            arrived_ns: arrival.at_ns,
        };
        if arrival.to_injector {
            self.injector.push_back(task);
            self.wake_one(arrival.at_ns, None);
        } else {
            self.queues[arrival.home].push_back(task);
            self.wake_one(arrival.at_ns, Some(arrival.home));
        }
    }

    /// Work appeared at `now` (in `owner`'s FIFO, or the injector for `None`): wakes the
    /// owner if it is backing off, else the next backing-off P in rotation, if any (the
    /// runtime wakes a parked P when a FIFO holds work to steal or the injector is pushed).
    fn wake_one(&mut self, now: u64, owner: Option<usize>) {
        let n = self.idle.len();
        let chosen = owner.filter(|&p| self.idle[p]).or_else(|| {
            let start = self.wake_cursor;
            (0..n).map(|i| (start + i) % n).find(|&p| self.idle[p])
        });
        if let Some(p) = chosen {
            self.wake_cursor = (p + 1) % n;
            self.idle[p] = false;
            self.schedule(now, p);
        }
    }

    /// Runs `task` on `p` from `now`; returns when `p` is free again.
    fn execute(&mut self, now: u64, p: usize, task: Task, workload: Workload) -> u64 {
        self.backoff_ns[p] = BACKOFF_MIN_NS;
        self.idle[p] = false;
        let id = task.spec.id;
        assert_eq!(self.ran[id], 0, "task {id} ran twice");
        // A child is enqueued when its parent completes: it cannot start earlier.
        assert!(
            task.enqueued_ns <= now,
            "task {id} started before it was spawned"
        );
        self.ran[id] = 1;
        self.report.executed += 1;
        let factor = self.costs.run_factor(self.topology, p, task.home);
        let locality = if p == task.home {
            0
        } else {
            1 + self.topology.relation(p, task.home).index()
        };
        self.report.runs_by_locality[locality] += 1;
        let duration = (task.spec.work_ns as f64 * factor).round() as u64;
        self.histories[p].record_queue_wait(now.saturating_sub(task.enqueued_ns));
        self.histories[p].record_poll(duration);
        let end = now + duration;
        if workload.is_open() {
            self.sojourns.push(end - task.arrived_ns);
        }
        let children = workload.children(&task.spec);
        if !children.is_empty() {
            // Released at `end`, before this P's own next step (scheduled after this, so
            // with a later sequence number at the same time): the P runs the first child,
            // a woken thief can take the rest.
            self.spawned[p].extend(children.into_iter().map(|spec| Task {
                spec,
                home: p,
                enqueued_ns: end,
                arrived_ns: end,
            }));
            self.sequence += 1;
            let release = self.queues.len() + p;
            self.events.push(Reverse((end, self.sequence, release)));
        }
        self.report.makespan_ns = self.report.makespan_ns.max(end);
        end
    }

    /// `p` has nothing to run: its share of the injector, else a steal; returns when `p`
    /// is free again (after a back-off if it found nothing).
    fn find_work(&mut self, now: u64, p: usize) -> u64 {
        if !self.injector.is_empty() {
            // Its fair share, as the runtime's P takes: one to run, the rest to its FIFO.
            let share = self.injector.len() / self.idle.len() + 1;
            let mut batch: VecDeque<Task> = self.injector.drain(..share).collect();
            self.in_hand[p] = batch.pop_front();
            self.queues[p].extend(batch);
            return now + self.costs.steal_same_node_ns.round() as u64;
        }
        match self.steal(p) {
            (true, spent) => now + spent,
            (false, spent) => {
                let backoff = self.backoff_ns[p];
                self.backoff_ns[p] = (backoff * 2).min(BACKOFF_MAX_NS);
                self.idle[p] = true;
                now + spent + backoff
            }
        }
    }

    /// `p` visits victims in its planner's order; returns whether it took work and the
    /// time the visits cost.
    fn steal(&mut self, p: usize) -> (bool, u64) {
        let histories = &self.histories;
        let queues = &self.queues;
        let view = FnView(
            |v: usize| queues[v].len(),
            |v: usize| histories[v].queue_wait_ns(),
        );
        let order = self.planners[p].plan(&view, &mut self.rngs[p]);
        let mut spent = 0.0;
        for &victim in order {
            self.report.steal_attempts += 1;
            let cost = self.costs.steal_ns(self.topology, p, victim);
            let available = self.queues[victim].len();
            if available == 0 {
                spent += cost / 2.0;
                continue;
            }
            spent += cost;
            self.report.steal_successes += 1;
            self.report.successes_by_relation[self.topology.relation(p, victim).index()] += 1;
            let mut batch: VecDeque<Task> =
                self.queues[victim].drain(..available.div_ceil(2)).collect();
            self.in_hand[p] = batch.pop_front();
            self.queues[p].extend(batch);
            return (true, spent.round() as u64);
        }
        (false, spent.round() as u64)
    }

    fn finish(mut self) -> Report {
        if !self.sojourns.is_empty() {
            self.sojourns.sort_unstable();
            let at = (self.sojourns.len() * 99).div_ceil(100) - 1;
            self.report.p99_sojourn_ns = Some(self.sojourns[at]);
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpm_numa::{Placement, Topology};

    fn epyc(ps: usize) -> StealTopology {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../numa/topologies/epyc-1s-4n-8l3.xml"
        );
        let machine = Topology::from_xml_file(path).unwrap();
        let pus = Placement::Compact.assign(&machine, ps).unwrap();
        StealTopology::from_topology(&machine, &pus).unwrap()
    }

    #[test]
    fn same_seed_same_report_and_every_task_once() {
        let topology = epyc(64);
        for workload in Workload::ALL {
            for policy in StealPolicy::ALL {
                let a = simulate(&topology, policy, workload, CostModel::default(), 7);
                let b = simulate(&topology, policy, workload, CostModel::default(), 7);
                assert_eq!(a, b, "{policy} on {}", workload.name());
                assert_eq!(a.executed, workload.total_tasks());
                assert_eq!(a.runs_by_locality.iter().sum::<u64>() as usize, a.executed);
                assert!(a.steal_successes > 0 && a.makespan_ns > 0);
            }
        }
    }

    #[test]
    fn a_different_seed_changes_the_random_policy_run() {
        let topology = epyc(64);
        let workload = Workload::ForkJoin;
        let a = simulate(
            &topology,
            StealPolicy::Random,
            workload,
            CostModel::default(),
            1,
        );
        let b = simulate(
            &topology,
            StealPolicy::Random,
            workload,
            CostModel::default(),
            2,
        );
        assert_ne!(a, b);
    }

    #[test]
    fn open_workloads_report_sojourn_and_keep_up_with_arrivals() {
        let topology = epyc(64);
        for workload in [Workload::Server, Workload::HotNode] {
            let report = simulate(
                &topology,
                StealPolicy::Random,
                workload,
                CostModel::default(),
                3,
            );
            let p99 = report.p99_sojourn_ns.expect("open workloads have a P99");
            assert_eq!(report.primary_ns(), p99);
            // 70% load: the run ends soon after the last arrival, at about the offered rate
            // (64 Ps / 5 us * 0.7 = 8.96 M/s), and no request waits near the whole run.
            let rate = report.throughput_per_s() / 1e6;
            assert!((7.5..9.5).contains(&rate), "{rate} M/s");
            assert!(p99 < report.makespan_ns / 10, "{report:?}");
        }
    }

    #[test]
    fn load_aware_affinity_meets_the_targets_on_the_epyc() {
        // Issue 15's targets on one shipped topology, three seeds: never slower than random
        // (makespan or P99), and on the closed workloads at most a third of its remote
        // steals (the open ones are discussed in docs/BENCHMARKS.md).
        let topology = epyc(64);
        let affinity = StealPolicy::ALL[1];
        for workload in Workload::ALL {
            for seed in 1..=3 {
                let run =
                    |policy| simulate(&topology, policy, workload, CostModel::default(), seed);
                let (mine, random) = (run(affinity), run(StealPolicy::Random));
                let name = workload.name();
                assert!(
                    mine.primary_ns() <= random.primary_ns(),
                    "{name} seed {seed}"
                );
                if !workload.is_open() {
                    let ratio = mine.remote_steal_ratio() / random.remote_steal_ratio();
                    assert!(ratio <= 1.0 / 3.0, "{name} seed {seed}: {ratio}");
                }
            }
        }
    }

    #[test]
    fn pipeline_respects_its_bounds_and_affinity_keeps_stages_near() {
        let topology = epyc(64);
        let workload = Workload::Pipeline;
        let work = workload.total_work_ns().unwrap();
        let run = |policy| simulate(&topology, policy, workload, CostModel::default(), 2);
        let (random, affinity) = (run(StealPolicy::Random), run(StealPolicy::ALL[1]));
        for report in [&random, &affinity] {
            // No schedule beats the work spread evenly, nor the longest chain.
            assert!(report.makespan_ns >= work / 64, "{report:?}");
            assert!(report.makespan_ns >= workload.critical_path_ns().unwrap());
        }
        // One entry P per L3 (compact): an affinity thief finds work in its own L3, so
        // fewer stages run off their node than under random stealing.
        let off_node = |r: &Report| r.runs_by_locality[3];
        assert!(
            off_node(&affinity) < off_node(&random),
            "{affinity:?} vs {random:?}"
        );
    }

    #[test]
    fn scaled_costs() {
        let double = CostModel::default().scaled(2.0);
        assert_eq!(double.steal_same_l3_ns, 300.0);
        assert!((double.run_other_node - 1.7).abs() < 1e-12);
    }

    #[test]
    fn costs_grow_with_distance() {
        let topology = epyc(32);
        let costs = CostModel::default();
        // P0: P1 same L3, P4 same node, P8 node 1 (distance 11), P16 node 2 (distance 12).
        let steal: Vec<f64> = [1, 4, 8, 16]
            .iter()
            .map(|&v| costs.steal_ns(&topology, 0, v))
            .collect();
        assert!(steal.windows(2).all(|w| w[0] < w[1]), "{steal:?}");
        let run: Vec<f64> = [0, 1, 4, 8, 16]
            .iter()
            .map(|&h| costs.run_factor(&topology, 0, h))
            .collect();
        assert!(run.windows(2).all(|w| w[0] < w[1]), "{run:?}");
    }
}

//! `policies`: imbalanced workloads under each stealing policy, with the simulator's
//! columns.
//!
//! Work-stealing policies only matter when work is unevenly spread. The lab's own two
//! workloads create imbalance on purpose, each task busy-spinning for `--service-us`:
//!
//! * `skewed`: one task spawns `--tasks` children in a burst; they all land on its P (its
//!   `runnext`, local queue, then the injector on overflow), so every other P must steal;
//! * `tree`: a binary spawn tree of depth `--depth`: each inner node spawns two children,
//!   each leaf burns; work appears on whichever P runs its parent.
//!
//! The simulator's closed workloads run for real too, as `sim-one-spawns-all`,
//! `sim-fork-join`, `sim-skewed` and `sim-pipeline`: the same tasks, each spinning for its
//! modelled work time and spawning, when it completes, the children the simulator's
//! description gives (`Workload::children`). They spin in the thread's CPU time
//! ([`burn_cpu`]), not in wall time as `skewed` and `tree` do: on a machine shared with
//! other jobs a worker is often descheduled, and a wall-time spin would count the time it
//! was away as work done (a task preempted for 3 ms "does" its 2 us at once), so the run
//! would do less work than the model's, by an amount that depends on the load. With
//! `--simulate` each such row also gets the simulator's makespan for this machine (its
//! topology from hwloc, `--workers` Ps placed compactly, the default cost model, median
//! over seeds 1..=`--sim-seeds`) and the ratio of the measured makespan to it.
//!
//! Per policy and workload: the median makespan over `--runs` runs, the median over runs of
//! each run's per-task sojourn P50 and P99 (spawn to completion; `-` for the simulator's
//! workloads, whose 2-10 us tasks would pay as much for the timing as for their work: they
//! count down completions with one atomic instead), the median share of CPUs the runs got
//! (`cpu_per_wall`), and from [`gpm::Handle::probes`], summed over the runs: successful
//! steals, victims visited and tasks taken, each by the victim's relation to the thief
//! (same L3, same node, other node), and the share of the tasks completed that the busiest
//! P ran (`busiest_p_share`, from the per-P completion counters: 1 / N for an even split).
//! Work also moves between Ps without a steal, through the injector (a full local FIFO
//! spills half into it, and a P with nothing to run takes its share before it steals),
//! which the probes do not count by task; this share shows how evenly it ended up. The runs
//! alternate between the policies (run 1 of every policy, then run 2, ...), so a burst of
//! load from elsewhere on the machine falls on every policy alike, in the balanced orders
//! of `compare` (each policy runs right after each other one equally often), and the runs
//! are split into `--instances` blocks, each on runtimes built for it: a runtime instance
//! has a speed of its own for its whole life (`compare`'s module docs).
//!
//! # Against the simulator's columns
//!
//! `remote_steal_ratio` is the simulator's remote-steal ratio (steals from another node over
//! all steals). The simulator's "tasks run off-node" has no exact counterpart: the runtime
//! does not record where each task was spawned. `stolen_off_node_pct` (tasks taken from a
//! victim on another node, over the tasks run) stands for it: a task stolen across nodes
//! runs off its spawner's node unless it is stolen back, and a task taken from the
//! injector (spawned from outside) has no home to be off.

use super::compare::{block_sizes, round_order};
use super::driver::{self, Recorder};
use super::out::{num, Output, Table};
use super::{parse_policies, policy_name, PolicyChoice, RuntimeConfig};
use crate::sim::{self, CostModel, Workload};
use crate::stats::{ci95_text, median_duration};
use clap::Args;
use gpm::numa::{Placement, Topology};
use gpm::probe::ByRelation;
use gpm::steal::{StealPolicy, StealTopology};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The flags of `policies`.
#[derive(Debug, Clone, Args)]
pub struct PoliciesArgs {
    /// Worker threads N (default: the CPUs available).
    #[arg(long)]
    pub workers: Option<usize>,
    /// gpm stealing policies, comma-separated: default (GPM_STEAL or the cargo feature) or
    /// any of gpm's policies (the default lists them all).
    #[arg(long, default_value_t = super::all_policies())]
    pub policies: String,
    /// Workloads, comma-separated: skewed, tree, and the simulator's closed workloads
    /// sim-one-spawns-all, sim-fork-join, sim-skewed, sim-pipeline.
    #[arg(long, default_value = "skewed,tree")]
    pub workloads: String,
    /// Service time of each task of `skewed` and `tree`, microseconds.
    #[arg(long, default_value_t = 20)]
    pub service_us: u64,
    /// Tasks of the `skewed` burst.
    #[arg(long, default_value_t = 2000)]
    pub tasks: usize,
    /// Depth of the `tree` (2^depth leaves).
    #[arg(long, default_value_t = 11)]
    pub depth: u32,
    /// Runs per policy and workload.
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
    /// Fresh runtimes per policy over the runs: the runs are split into this many blocks,
    /// each on runtimes built for it (two runtimes built alike differ for their whole life;
    /// see `compare`).
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// Also simulate the sim-* workloads on this machine's topology with N Ps.
    #[arg(long)]
    pub simulate: bool,
    /// Seeds of the simulation (1..=N; the median makespan is reported).
    #[arg(long, default_value_t = 5)]
    pub sim_seeds: u64,
}

impl PoliciesArgs {
    /// A run small enough for a test: 2 workers, the default policy, the `skewed` and
    /// `tree` workloads of 200 tasks of 5 us (a tree 5 deep), 2 runs on 2 runtime
    /// instances, no simulation.
    pub fn smoke() -> PoliciesArgs {
        PoliciesArgs {
            workers: Some(2),
            policies: "default".into(),
            workloads: "skewed,tree".into(),
            service_us: 5,
            tasks: 200,
            depth: 5,
            runs: 2,
            instances: 2,
            simulate: false,
            sim_seeds: 1,
        }
    }
}

/// Steal counters of a runtime by the victim's relation to the thief, summed over its Ps,
/// from [`gpm::Handle::probes`]; also what the simulator reports per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StealCounts {
    /// Successful steals.
    pub steals: ByRelation,
    /// Victims visited (successful or not).
    pub attempts: ByRelation,
    /// Tasks taken from victims (a steal takes a batch).
    pub tasks_stolen: ByRelation,
}

impl StealCounts {
    /// The counters of `handle` now.
    pub fn read(handle: &gpm::Handle) -> StealCounts {
        let probes = handle.probes();
        probes
            .processors
            .iter()
            .fold(StealCounts::default(), |total, p| StealCounts {
                steals: total.steals + p.steals,
                attempts: total.attempts + p.steal_attempts,
                tasks_stolen: total.tasks_stolen + p.tasks_stolen,
            })
    }

    /// What happened between `before` and `self` (counters only grow).
    pub fn since(&self, before: &StealCounts) -> StealCounts {
        let minus = |a: ByRelation, b: ByRelation| ByRelation {
            same_l3: a.same_l3.saturating_sub(b.same_l3),
            same_node: a.same_node.saturating_sub(b.same_node),
            other_node: a.other_node.saturating_sub(b.other_node),
        };
        StealCounts {
            steals: minus(self.steals, before.steals),
            attempts: minus(self.attempts, before.attempts),
            tasks_stolen: minus(self.tasks_stolen, before.tasks_stolen),
        }
    }

    /// Steals from another node over all steals (the simulator's remote-steal ratio); 0
    /// without steals.
    pub fn remote_steal_ratio(&self) -> f64 {
        fraction(self.steals.other_node, self.steals.total())
    }

    /// Successful steals over victims visited; 0 without visits.
    pub fn success_rate(&self) -> f64 {
        fraction(self.steals.total(), self.attempts.total())
    }

    /// Tasks taken from another node over `tasks_run`, in percent.
    pub fn stolen_off_node_pct(&self, tasks_run: u64) -> f64 {
        100.0 * fraction(self.tasks_stolen.other_node, tasks_run)
    }

    /// Whether the counters agree with each other for every relation: a steal is a visit
    /// to a victim, and takes at least one task (steals <= attempts, steals <= tasks taken).
    pub fn is_consistent(&self) -> bool {
        let by = |c: ByRelation| [c.same_l3, c.same_node, c.other_node];
        let relations = by(self.steals).into_iter().zip(by(self.attempts));
        let mut relations = relations.zip(by(self.tasks_stolen));
        relations.all(|((steals, attempts), taken)| steals <= attempts && steals <= taken)
    }

    fn add(&self, other: &StealCounts) -> StealCounts {
        StealCounts {
            steals: self.steals + other.steals,
            attempts: self.attempts + other.attempts,
            tasks_stolen: self.tasks_stolen + other.tasks_stolen,
        }
    }
}

/// Tasks completed on each P so far.
fn completions(handle: &gpm::Handle) -> Vec<u64> {
    let probes = handle.probes();
    probes.processors.iter().map(|p| p.completions).collect()
}

fn fraction(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The workloads: the lab's own, then the simulator's closed ones (`sim-` and the
/// simulator's name).
pub const WORKLOADS: &[&str] = &[
    "skewed",
    "tree",
    "sim-one-spawns-all",
    "sim-fork-join",
    "sim-skewed",
    "sim-pipeline",
];

/// The simulator's workload behind a `sim-` name.
pub fn sim_workload(name: &str) -> Option<Workload> {
    let workload: Workload = name.strip_prefix("sim-")?.parse().ok()?;
    (!workload.is_open()).then_some(workload)
}

/// Parses `--workloads` (comma-separated names of [`WORKLOADS`], no duplicates).
pub fn parse_workloads(text: &str) -> Result<Vec<&'static str>, String> {
    let mut chosen = Vec::new();
    for item in text.split(',').map(str::trim) {
        let name = WORKLOADS
            .iter()
            .find(|&&w| w == item)
            .ok_or_else(|| format!("unknown workload {item:?}; known: {}", WORKLOADS.join(", ")))?;
        if chosen.contains(name) {
            return Err(format!("workload {item} is listed twice"));
        }
        chosen.push(*name);
    }
    Ok(chosen)
}

/// Starts the lab workload `name` on `handle`; returns how many tasks will complete.
fn start(
    name: &str,
    handle: &gpm::Handle,
    recorder: &Arc<Recorder>,
    args: &PoliciesArgs,
) -> Result<u64, String> {
    let service = Duration::from_micros(args.service_us);
    match name {
        "skewed" => {
            let (recorder, tasks) = (Arc::clone(recorder), args.tasks);
            drop(handle.spawn(async move {
                for _ in 0..tasks {
                    let (recorder, spawned) = (Arc::clone(&recorder), Instant::now());
                    drop(gpm::spawn(async move {
                        driver::burn(service);
                        recorder.complete(spawned);
                    }));
                }
            }));
            Ok(args.tasks as u64)
        }
        "tree" => {
            if args.depth > 20 {
                return Err("--depth must be at most 20 (2^20 leaves)".to_owned());
            }
            let recorder = Arc::clone(recorder);
            let depth = args.depth;
            drop(handle.spawn(async move { node(depth, recorder, service) }));
            Ok((1u64 << (args.depth + 1)) - 1)
        }
        other => Err(format!(
            "unknown workload {other:?}; known: {}",
            WORKLOADS.join(", ")
        )),
    }
}

/// Starts the simulator's `workload` on `handle` with `workers` Ps: one outer task spawns
/// the initial tasks on its P (the simulator queues them on P0; the pipeline's on its entry
/// Ps, which is P0 alone up to 8 Ps).
fn start_sim(workload: Workload, handle: &gpm::Handle, countdown: &Arc<Countdown>, workers: usize) {
    let initial = workload.initial(workers);
    let countdown = Arc::clone(countdown);
    drop(handle.spawn(async move {
        for (spec, _home) in initial {
            sim_task(workload, spec, Arc::clone(&countdown));
        }
    }));
}

/// Spawns one task of a simulated workload: it spins for its work time, then spawns the
/// children its completion spawns in the simulator.
fn sim_task(workload: Workload, spec: sim::TaskSpec, countdown: Arc<Countdown>) {
    drop(gpm::spawn(async move {
        burn_cpu(Duration::from_nanos(spec.work_ns));
        for child in workload.children(&spec) {
            sim_task(workload, child, Arc::clone(&countdown));
        }
        countdown.tick();
    }));
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is supported on Linux");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// One step of [`burn_cpu`]'s loop.
#[inline(always)]
fn spin_step(x: u64, i: u64) -> u64 {
    std::hint::black_box(x.wrapping_mul(31).wrapping_add(i))
}

/// Steps of [`burn_cpu`]'s loop per nanosecond of CPU time, measured once per process:
/// the fastest of five runs of 2^20 steps, timed in thread CPU time (so time spent
/// descheduled does not count; the fastest run is the one least disturbed by the cache
/// misses and the interrupts of other jobs).
fn spin_steps_per_ns() -> f64 {
    static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *RATE.get_or_init(|| {
        const STEPS: u64 = 1 << 20;
        let fastest = (0..5)
            .map(|_| {
                let start = thread_cpu_time();
                let mut x = 0;
                for i in 0..STEPS {
                    x = spin_step(x, i);
                }
                std::hint::black_box(x);
                thread_cpu_time() - start
            })
            .min()
            .expect("five runs");
        STEPS as f64 / fastest.as_nanos().max(1) as f64
    })
}

/// Spins for `work` of CPU time: a simulated task's work, whatever share of the CPU the
/// thread gets. A calibrated loop (`spin_steps_per_ns`), not a clock read per step: the
/// thread CPU clock is a system call here (about 1 us on this KVM guest: the vDSO serves
/// only the wall clocks), as long as half a 2 us task.
pub fn burn_cpu(work: Duration) {
    let steps = (work.as_nanos() as f64 * spin_steps_per_ns()).round() as u64;
    let mut x = 0;
    for i in 0..steps {
        x = spin_step(x, i);
    }
    std::hint::black_box(x);
}

/// Counts completions down; only the last one takes the lock and wakes the waiter. The
/// simulator's tasks are 2-10 us: [`Recorder`]'s per-task lock and wake-up (it wakes its
/// waiter at every completion) cost the same order and would be measured as scheduling.
struct Countdown {
    left: AtomicU64,
    done: Mutex<bool>,
    done_changed: Condvar,
}

impl Countdown {
    fn new(count: u64) -> Arc<Countdown> {
        Arc::new(Countdown {
            left: AtomicU64::new(count),
            done: Mutex::new(count == 0),
            done_changed: Condvar::new(),
        })
    }

    fn tick(&self) {
        // AcqRel: the last ticker sees every other task's work as done (not needed for the
        // count, but the waiter then reads a finished run).
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.done.lock().expect("countdown lock") = true;
            self.done_changed.notify_all();
        }
    }

    /// Waits until the count reached zero or `timeout` passed; false on time-out.
    fn wait(&self, timeout: Duration) -> bool {
        let done = self.done.lock().expect("countdown lock");
        let (done, _) = self
            .done_changed
            .wait_timeout_while(done, timeout, |done| !*done)
            .expect("countdown lock");
        *done
    }
}

/// Spawns one tree node: a leaf burns, an inner node spawns two children.
fn node(depth: u32, recorder: Arc<Recorder>, service: Duration) {
    let spawned = Instant::now();
    drop(gpm::spawn(async move {
        if depth == 0 {
            driver::burn(service);
        } else {
            node(depth - 1, Arc::clone(&recorder), service);
            node(depth - 1, Arc::clone(&recorder), service);
        }
        recorder.complete(spawned);
    }));
}

/// One policy on one workload: makespans and per-run sojourn quantiles.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// Median makespan.
    pub makespan: Duration,
    /// Median over runs of the per-run P50 sojourn, seconds (not measured on the
    /// simulator's workloads: `None`).
    pub p50_s: Option<f64>,
    /// Median over runs of the per-run P99 sojourn, seconds (`None` as for P50).
    pub p99_s: Option<f64>,
    /// Steal counters over all runs.
    pub steals: StealCounts,
    /// Tasks run over all runs.
    pub tasks_run: u64,
    /// Median over runs of the process's CPU time over the run's wall time: how many CPUs
    /// the run actually got (at most the worker count, less when other jobs share them).
    pub cpu_per_wall: f64,
    /// Share of the runs' completions (all Ps' counters) that the busiest P ran.
    pub busiest_p_share: f64,
    /// Every run's makespan in seconds, by block of runs on the same runtime (run `i` of
    /// block `b` of every policy was in the same round).
    pub makespan_blocks_s: Vec<Vec<f64>>,
}

/// The runs of one policy on one workload so far.
#[derive(Debug, Default)]
struct Runs {
    makespans: Vec<Duration>,
    /// Where each block of runs (one runtime instance) starts in `makespans`.
    block_starts: Vec<usize>,
    p50s: Vec<Duration>,
    p99s: Vec<Duration>,
    steals: StealCounts,
    tasks_run: u64,
    cpu_per_wall: Vec<f64>,
    /// Completions per P over the runs.
    completions: Vec<u64>,
}

impl Runs {
    /// The next runs are on a fresh runtime instance.
    fn begin_block(&mut self) {
        self.block_starts.push(self.makespans.len());
    }

    fn makespan_blocks_s(&self) -> Vec<Vec<f64>> {
        let ends = self.block_starts.iter().skip(1).copied();
        let ends = ends.chain(std::iter::once(self.makespans.len()));
        self.block_starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| {
                let block = &self.makespans[start..end];
                block.iter().map(Duration::as_secs_f64).collect()
            })
            .collect()
    }

    fn result(mut self) -> PolicyResult {
        let quantile =
            |runs: &[Duration]| (!runs.is_empty()).then(|| median_duration(runs).as_secs_f64());
        let makespan_blocks_s = self.makespan_blocks_s();
        PolicyResult {
            makespan_blocks_s,
            p50_s: quantile(&self.p50s),
            p99_s: quantile(&self.p99s),
            makespan: median_duration(&self.makespans),
            steals: self.steals,
            tasks_run: self.tasks_run,
            cpu_per_wall: crate::stats::median(&mut self.cpu_per_wall),
            busiest_p_share: fraction(
                self.completions.iter().copied().max().unwrap_or(0),
                self.completions.iter().sum(),
            ),
        }
    }
}

/// One run of `name` on `handle`, added to `runs`.
fn run_once(
    name: &str,
    handle: &gpm::Handle,
    workers: usize,
    args: &PoliciesArgs,
    runs: &mut Runs,
) -> Result<(), String> {
    let before = StealCounts::read(handle);
    let completions_before = completions(handle);
    let cpu_before = crate::timers::process_cpu_time();
    let timeout = Duration::from_secs(60);
    let late = || format!("{name}: tasks did not finish within 60 s");
    let total = if let Some(workload) = sim_workload(name) {
        let total = workload.total_tasks() as u64;
        let countdown = Countdown::new(total);
        let start_at = Instant::now();
        start_sim(workload, handle, &countdown, workers);
        if !countdown.wait(timeout) {
            return Err(late());
        }
        runs.makespans.push(start_at.elapsed());
        total
    } else {
        let recorder = Recorder::new(Instant::now());
        let start_at = Instant::now();
        let total = start(name, handle, &recorder, args)?;
        if !recorder.wait_for(total, timeout) {
            return Err(late());
        }
        runs.makespans.push(start_at.elapsed());
        let sojourn = recorder.sojourn();
        runs.p50s.push(Duration::from_secs_f64(sojourn.p50_s));
        runs.p99s.push(Duration::from_secs_f64(sojourn.p99_s));
        total
    };
    let wall = runs.makespans.last().expect("pushed above").as_secs_f64();
    let cpu = crate::timers::process_cpu_time().saturating_sub(cpu_before);
    runs.cpu_per_wall.push(cpu.as_secs_f64() / wall);
    runs.steals = runs.steals.add(&StealCounts::read(handle).since(&before));
    let done = completions(handle);
    runs.completions.resize(done.len(), 0);
    for ((total, now), then) in runs
        .completions
        .iter_mut()
        .zip(done)
        .zip(completions_before)
    {
        *total += now.saturating_sub(then);
    }
    runs.tasks_run += total;
    Ok(())
}

/// Runs `name` `args.runs` times under each of `policies`, alternating between the
/// policies run by run, on fresh runtimes for each block of runs (`--instances`); results
/// in the order of `policies`.
pub fn run_policies(
    name: &str,
    policies: &[PolicyChoice],
    workers: usize,
    args: &PoliciesArgs,
) -> Result<Vec<PolicyResult>, String> {
    let build = || -> Result<Vec<gpm::Runtime>, String> {
        policies
            .iter()
            .map(|&policy| {
                RuntimeConfig {
                    policy,
                    ..RuntimeConfig::new(workers)
                }
                .build_gpm()
            })
            .collect()
    };
    let mut runs: Vec<Runs> = policies.iter().map(|_| Runs::default()).collect();
    let mut round = 0;
    for rounds in block_sizes(args.runs, args.instances) {
        let runtimes = build()?;
        runs.iter_mut().for_each(Runs::begin_block);
        for _ in 0..rounds {
            for i in round_order(round, runtimes.len()) {
                run_once(name, runtimes[i].handle(), workers, args, &mut runs[i])?;
            }
            round += 1;
        }
    }
    Ok(runs.into_iter().map(Runs::result).collect())
}

/// Runs `name` `args.runs` times on a runtime built for `policy`.
pub fn run_policy(
    name: &str,
    policy: PolicyChoice,
    workers: usize,
    args: &PoliciesArgs,
) -> Result<PolicyResult, String> {
    let mut results = run_policies(name, &[policy], workers, args)?;
    Ok(results.remove(0))
}

/// The simulator's median makespan (over seeds `1..=seeds`) of `workload` under `policy`
/// on this machine's topology with `workers` Ps placed compactly, and the topology's
/// description.
pub fn simulate_here(
    workload: Workload,
    policy: PolicyChoice,
    workers: usize,
    seeds: u64,
) -> Result<Duration, String> {
    let machine = Topology::detect().map_err(|e| format!("topology: {e}"))?;
    let pus = Placement::Compact
        .assign(&machine, workers)
        .map_err(|e| format!("placing {workers} Ps on this machine: {e}"))?;
    let topology =
        StealTopology::from_topology(&machine, &pus).map_err(|e| format!("topology: {e}"))?;
    let policy = match policy {
        Some(policy) => policy,
        None => StealPolicy::from_env()
            .map_err(|e| e.to_string())?
            .unwrap_or_default(),
    };
    let makespans: Vec<Duration> = (1..=seeds.max(1))
        .map(|seed| {
            let report = sim::simulate(&topology, policy, workload, CostModel::default(), seed);
            Duration::from_nanos(report.makespan_ns)
        })
        .collect();
    Ok(median_duration(&makespans))
}

/// The CSV columns of `policies`. The first eight are those of the first version (steals
/// are successful steals, summed over the runs); the rest were added after them.
pub const COLUMNS: &[&str] = &[
    "workload",
    "policy",
    "makespan_ms",
    "P50_us",
    "P99_us",
    "steals_l3",
    "steals_node",
    "steals_remote",
    "attempts_l3",
    "attempts_node",
    "attempts_remote",
    "stolen_l3",
    "stolen_node",
    "stolen_remote",
    "remote_steal_ratio",
    "success_rate",
    "stolen_off_node_pct",
    "sim_makespan_ms",
    "real_over_sim",
    "cpu_per_wall",
    "busiest_p_share",
    "makespan_over_first",
    "makespan_over_first_ci95",
];

/// The `policies` experiment.
pub fn run(args: &PoliciesArgs, out: &Output) -> Result<String, String> {
    let policies = parse_policies(&args.policies)?;
    let workloads = parse_workloads(&args.workloads)?;
    let workers = args.workers.unwrap_or_else(super::available_cpus);
    let instances = args.instances;
    if workers == 0 || args.service_us == 0 || args.tasks == 0 || args.runs == 0 || instances == 0 {
        return Err(
            "--workers, --service-us, --tasks, --runs and --instances must be positive".into(),
        );
    }
    let mut table = Table::new(COLUMNS);
    let bar = out.progress(workloads.len() as u64, "policies");
    for name in &workloads {
        bar.set_message((*name).to_owned());
        let results = run_policies(name, &policies, workers, args)?;
        for (&policy, r) in policies.iter().zip(&results) {
            let simulated = match sim_workload(name) {
                Some(workload) if args.simulate => {
                    Some(simulate_here(workload, policy, workers, args.sim_seeds)?)
                }
                _ => None,
            };
            let makespan_ms = r.makespan.as_secs_f64() * 1e3;
            let counts =
                |c: ByRelation| [c.same_l3, c.same_node, c.other_node].map(|n| n.to_string());
            let mut row = vec![
                (*name).to_owned(),
                policy_name(policy).to_owned(),
                num(makespan_ms, 2),
                r.p50_s.map_or("-".into(), |s| num(s * 1e6, 0)),
                r.p99_s.map_or("-".into(), |s| num(s * 1e6, 0)),
            ];
            row.extend(counts(r.steals.steals));
            row.extend(counts(r.steals.attempts));
            row.extend(counts(r.steals.tasks_stolen));
            row.push(num(r.steals.remote_steal_ratio(), 3));
            row.push(num(r.steals.success_rate(), 3));
            row.push(num(r.steals.stolen_off_node_pct(r.tasks_run), 1));
            match simulated {
                Some(sim) => {
                    let sim_ms = sim.as_secs_f64() * 1e3;
                    row.push(num(sim_ms, 2));
                    row.push(num(makespan_ms / sim_ms, 3));
                }
                None => row.extend(["-".to_owned(), "-".to_owned()]),
            }
            row.push(num(r.cpu_per_wall, 2));
            row.push(num(r.busiest_p_share, 3));
            row.extend(against_first(r, &results[0]));
            table.push(row);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.csv("policies", &table)?;
    Ok(format!(
        "N = {workers}, S = {} us (skewed, tree), median of {} runs alternating between the \
         policies; steals summed over the runs; load average before: {}\n{}",
        args.service_us,
        args.runs,
        load_average(),
        table.render()
    ))
}

/// A policy's median makespan over the first policy's, and its 95% interval: the runs of
/// a round are paired, the blocks of runs are the runtime instances (`crate::stats`).
fn against_first(result: &PolicyResult, first: &PolicyResult) -> [String; 2] {
    let median_of = |r: &PolicyResult| crate::stats::median(&mut r.makespan_blocks_s.concat());
    let ratio = median_of(result) / median_of(first);
    let (blocks, first_blocks) = (&result.makespan_blocks_s, &first.makespan_blocks_s);
    [num(ratio, 3), ci95_text(blocks, first_blocks)]
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or `?` where it cannot be read.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PoliciesArgs {
        PoliciesArgs::smoke()
    }

    #[test]
    fn makespans_are_grouped_by_the_runtime_instance_they_ran_on() {
        let mut runs = Runs::default();
        let ms = Duration::from_millis;
        runs.begin_block();
        runs.makespans.extend([ms(1), ms(2)]);
        runs.begin_block();
        runs.makespans.push(ms(3));
        assert_eq!(
            runs.result().makespan_blocks_s,
            vec![vec![0.001, 0.002], vec![0.003]]
        );
    }

    #[test]
    fn simulated_workloads_run_for_real_with_their_task_count_and_work() {
        let one = PoliciesArgs { runs: 1, ..args() };
        for workload in [Workload::ForkJoin, Workload::Pipeline] {
            let name = format!("sim-{}", workload.name());
            // Every policy, runs alternating between two runtimes.
            let policies: Vec<PolicyChoice> = StealPolicy::ALL.into_iter().map(Some).collect();
            for r in run_policies(&name, &policies, 2, &one).unwrap() {
                assert_eq!(r.tasks_run, workload.total_tasks() as u64, "{name}");
                // Each task spins for its work time, so two Ps need at least half of it,
                // and at least the longest chain of spawns. The spin is calibrated, not
                // timed: three quarters of the bound leaves room for a calibration run
                // that was slower than the loop runs later (a task that did not spin at
                // all, or a unit error, still fails).
                let work = workload.total_work_ns().unwrap();
                let path = workload.critical_path_ns().unwrap();
                let bound = Duration::from_nanos((work / 2).max(path) * 3 / 4);
                assert!(r.makespan >= bound, "{name}: {r:?} < {bound:?}");
                assert!(r.steals.is_consistent(), "{name}: {r:?}");
            }
        }
    }

    #[test]
    fn the_simulation_of_this_machine_respects_the_work_bound() {
        for workload in Workload::CLOSED {
            let sim = simulate_here(workload, Some(StealPolicy::Random), 2, 2).unwrap();
            let bound = Duration::from_nanos(workload.total_work_ns().unwrap() / 2);
            assert!(sim >= bound, "{}: {sim:?} < {bound:?}", workload.name());
        }
    }

    #[test]
    fn burn_cpu_uses_the_cpu_time_asked_for() {
        spin_steps_per_ns();
        // The wall interval encloses the CPU one. Both starting (and both ending) with the
        // CPU clock, the intervals were shifted by a read, and the CPU time came out a few
        // tens of ns above the wall time about 1 run in 8.
        let wall = Instant::now();
        let cpu = thread_cpu_time();
        burn_cpu(Duration::from_millis(3));
        let used = thread_cpu_time() - cpu;
        let elapsed = wall.elapsed();
        // Calibrated, so not exact: within a factor that catches a unit or rate error
        // (the loop's speed varies with what the other CPU's jobs do to the caches).
        let (low, high) = (Duration::from_micros(1500), Duration::from_millis(9));
        assert!(low <= used && used <= high, "{used:?} of CPU for 3 ms");
        assert!(
            elapsed >= used,
            "CPU time {used:?} <= wall time {elapsed:?}"
        );
    }

    #[test]
    fn counts_subtract_and_give_ratios() {
        let rel = |same_l3, same_node, other_node| ByRelation {
            same_l3,
            same_node,
            other_node,
        };
        let before = StealCounts {
            steals: rel(1, 1, 1),
            attempts: rel(2, 2, 2),
            tasks_stolen: rel(1, 1, 1),
        };
        let after = StealCounts {
            steals: rel(4, 1, 3),
            attempts: rel(10, 2, 6),
            tasks_stolen: rel(9, 1, 21),
        };
        let delta = after.since(&before);
        assert_eq!(delta.steals, rel(3, 0, 2));
        assert!((delta.remote_steal_ratio() - 0.4).abs() < 1e-12);
        assert!((delta.success_rate() - 5.0 / 12.0).abs() < 1e-12);
        assert!((delta.stolen_off_node_pct(40) - 50.0).abs() < 1e-12);
        assert_eq!(StealCounts::default().remote_steal_ratio(), 0.0);
        assert!(delta.is_consistent());
        let unvisited = StealCounts {
            steals: rel(0, 0, 1),
            ..StealCounts::default()
        };
        assert!(!unvisited.is_consistent(), "a steal without a visit");
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = run_policy("ring", None, 2, &args()).unwrap_err();
        assert!(err.contains("unknown workload"), "{err}");
        let deep = PoliciesArgs {
            depth: 30,
            ..args()
        };
        assert!(run_policy("tree", None, 1, &deep)
            .unwrap_err()
            .contains("depth"));
        assert!(parse_workloads("tree,ring").unwrap_err().contains("ring"));
        assert!(parse_workloads("tree,tree").unwrap_err().contains("twice"));
        assert_eq!(
            parse_workloads("sim-pipeline, tree").unwrap(),
            ["sim-pipeline", "tree"]
        );
        assert!(
            sim_workload("sim-server").is_none(),
            "open workloads are not run"
        );
    }
}

//! `policies`: imbalanced workloads under each stealing policy.
//!
//! Work-stealing policies only matter when work is unevenly spread. Two workloads create
//! imbalance on purpose, each task busy-spinning for `--service-us`:
//!
//! * `skewed`: one task spawns `--tasks` children in a burst; they all land on its P (its
//!   `runnext`, local queue, then the injector on overflow), so every other P must steal;
//! * `tree`: a binary spawn tree of depth `--depth`: each inner node spawns two children,
//!   each leaf burns; work appears on whichever P runs its parent.
//!
//! Per policy and workload: the median makespan over `--runs` runs (a fresh runtime per
//! policy, shared by its runs), the median over runs of each run's per-task sojourn P50 and
//! P99 (spawn to completion), and the steals by relation (same L3, same node, remote).
//!
//! The steal counts come from `Handle::steal_stats`.

use super::compare::median;
use super::driver::{self, Recorder};
use super::out::{num, Output, Table};
use super::{parse_policies, policy_name, PolicyChoice, RuntimeConfig};
use clap::Args;
use std::sync::Arc;
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
    /// Service time of each task, microseconds.
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
}

/// Steals by relation between thief and victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StealCounts {
    /// Victim shares the thief's L3.
    pub same_l3: u64,
    /// Same NUMA node, other L3.
    pub same_node: u64,
    /// Other node.
    pub remote: u64,
}

/// The successful steals of `handle` so far, by relation, summed over its Ps.
pub fn steal_counts(handle: &gpm::Handle) -> Option<StealCounts> {
    let stats = handle.steal_stats();
    let counts = stats
        .processors
        .iter()
        .fold(StealCounts::default(), |total, p| StealCounts {
            same_l3: total.same_l3 + p.successes.same_l3,
            same_node: total.same_node + p.successes.same_node,
            remote: total.remote + p.successes.other_node,
        });
    Some(counts)
}

/// The workloads.
pub const WORKLOADS: &[&str] = &["skewed", "tree"];

/// Starts workload `name` on `handle`; returns how many tasks will complete.
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
    /// Median over runs of the per-run P50 sojourn, seconds.
    pub p50_s: f64,
    /// Median over runs of the per-run P99 sojourn, seconds.
    pub p99_s: f64,
    /// Steals during the runs, if the runtime reports them.
    pub steals: Option<StealCounts>,
}

/// Runs `name` `args.runs` times on a runtime built for `policy`.
pub fn run_policy(
    name: &str,
    policy: PolicyChoice,
    workers: usize,
    args: &PoliciesArgs,
) -> Result<PolicyResult, String> {
    let config = RuntimeConfig {
        policy,
        ..RuntimeConfig::new(workers)
    };
    let rt = config.build_gpm()?;
    let handle = rt.handle();
    let (mut makespans, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    let before = steal_counts(handle);
    for _ in 0..args.runs.max(1) {
        let recorder = Recorder::new(Instant::now());
        let start_at = Instant::now();
        let total = start(name, handle, &recorder, args)?;
        if !recorder.wait_for(total, Duration::from_secs(60)) {
            return Err(format!("{name}: tasks did not finish within 60 s"));
        }
        makespans.push(start_at.elapsed());
        let sojourn = recorder.sojourn();
        p50s.push(Duration::from_secs_f64(sojourn.p50_s));
        p99s.push(Duration::from_secs_f64(sojourn.p99_s));
    }
    let steals = steal_counts(handle).zip(before).map(|(a, b)| StealCounts {
        same_l3: a.same_l3 - b.same_l3,
        same_node: a.same_node - b.same_node,
        remote: a.remote - b.remote,
    });
    Ok(PolicyResult {
        makespan: median(&mut makespans),
        p50_s: median(&mut p50s).as_secs_f64(),
        p99_s: median(&mut p99s).as_secs_f64(),
        steals,
    })
}

/// The `policies` experiment.
pub fn run(args: &PoliciesArgs, out: &Output) -> Result<String, String> {
    let policies = parse_policies(&args.policies)?;
    let workers = args.workers.unwrap_or_else(super::available_cpus);
    if workers == 0 || args.service_us == 0 || args.tasks == 0 || args.runs == 0 {
        return Err("--workers, --service-us, --tasks and --runs must be positive".into());
    }
    let mut table = Table::new(&[
        "workload",
        "policy",
        "makespan_ms",
        "P50_us",
        "P99_us",
        "steals_l3",
        "steals_node",
        "steals_remote",
    ]);
    let bar = out.progress((WORKLOADS.len() * policies.len()) as u64, "policies");
    for name in WORKLOADS {
        for &policy in &policies {
            bar.set_message(format!("{name} / {}", policy_name(policy)));
            let r = run_policy(name, policy, workers, args)?;
            let steal = |f: fn(&StealCounts) -> u64| {
                r.steals.as_ref().map_or("-".into(), |s| f(s).to_string())
            };
            table.push(vec![
                (*name).to_owned(),
                policy_name(policy).to_owned(),
                num(r.makespan.as_secs_f64() * 1e3, 2),
                num(r.p50_s * 1e6, 0),
                num(r.p99_s * 1e6, 0),
                steal(|s| s.same_l3),
                steal(|s| s.same_node),
                steal(|s| s.remote),
            ]);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    out.csv("policies", &table)?;
    Ok(format!(
        "N = {workers}, S = {} us, median of {} runs (steals: - until Handle::steal_stats is merged)\n{}",
        args.service_us,
        args.runs,
        table.render()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PoliciesArgs {
        PoliciesArgs {
            workers: Some(2),
            policies: "default".into(),
            service_us: 5,
            tasks: 200,
            depth: 5,
            runs: 2,
        }
    }

    #[test]
    fn both_workloads_complete_every_task() {
        for name in WORKLOADS {
            let r = run_policy(name, None, 2, &args()).unwrap();
            assert!(
                r.makespan > Duration::ZERO && r.p99_s >= r.p50_s,
                "{name}: {r:?}"
            );
            assert!(r.p50_s >= 5e-6, "{name}: every task burns 5 us: {r:?}");
        }
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
    }
}

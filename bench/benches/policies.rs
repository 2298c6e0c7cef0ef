//! Stealing policies compared in one run: imbalanced workloads on gpm under each policy
//! (chosen at run time through `Builder::steal_policy`) and on tokio, in one criterion group
//! per workload. Workers: `GPM_BENCH_WORKERS` (default 2). The `victim_order` group measures
//! the cost of one victim plan for a thief among 64 Ps on the shipped EPYC topology.
//!
//! After each gpm policy's benchmark, a line on stdout gives the simulator's columns for
//! the iterations criterion ran (warm-up included), from `Handle::probes`: successful
//! steals, victims visited and tasks stolen per iteration, each by the victim's relation to
//! the thief (same L3 / same node / other node), the remote-steal ratio, and tasks stolen
//! from another node as a share of the workload's tasks (the runtime does not record where
//! each task was spawned; see `gpm_bench::lab::policies` for what that share stands for).
//! On a one-node machine the last two are 0 by construction; on a multi-node machine they
//! are the real counterparts of `gpm-sim`'s tables.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use gpm::numa::{Placement, Topology};
use gpm::steal::{StealPolicy, StealTopology};
use gpm_bench::imbalanced;
use gpm_bench::lab::policies::StealCounts;
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use gpm_scheduler::steal::{FnView, VictimPlanner};
use gpm_scheduler::FastRand;
use std::time::Duration;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn configure(group: &mut Group<'_>) {
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
}

/// `workload` (`tasks` tasks per iteration) on tokio and on gpm under every policy, in one
/// group; prints gpm's steals by relation per policy.
fn compare(
    c: &mut Criterion,
    name: &str,
    tasks: u64,
    workload: fn(&Gpm),
    tokio_workload: fn(&Tokio),
) {
    let workers = bench_workers();
    let mut group = c.benchmark_group(name);
    configure(&mut group);
    let tokio = Tokio::with_workers(workers);
    group.bench_function("tokio", |b| b.iter(|| tokio_workload(&tokio)));
    drop(tokio);
    for policy in StealPolicy::ALL {
        let gpm = Gpm::with_policy(workers, policy);
        let before = StealCounts::read(gpm.0.handle());
        let mut iterations = 0u64;
        group.bench_function(format!("gpm-{policy}"), |b| {
            b.iter(|| {
                iterations += 1;
                workload(&gpm)
            })
        });
        let steals = StealCounts::read(gpm.0.handle()).since(&before);
        if iterations > 0 {
            // 0 when a filter skipped the benchmark.
            println!("{}", steal_line(name, policy, &steals, iterations, tasks));
        }
    }
    group.finish();
}

/// The simulator's columns for `iterations` iterations of `tasks` tasks.
fn steal_line(
    name: &str,
    policy: StealPolicy,
    steals: &StealCounts,
    iterations: u64,
    tasks: u64,
) -> String {
    let per = |count: u64| count as f64 / iterations.max(1) as f64;
    let rel = |c: gpm::probe::ByRelation| {
        format!(
            "{:.1}/{:.1}/{:.1}",
            per(c.same_l3),
            per(c.same_node),
            per(c.other_node)
        )
    };
    format!(
        "{name}/gpm-{policy}: {iterations} iterations; per iteration, by relation \
         (same L3/same node/other node): steals {}, victims visited {}, tasks stolen {}; \
         remote-steal ratio {:.3}, success rate {:.3}, tasks stolen off-node {:.1}% of {tasks}",
        rel(steals.steals),
        rel(steals.attempts),
        rel(steals.tasks_stolen),
        steals.remote_steal_ratio(),
        steals.success_rate(),
        steals.stolen_off_node_pct(tasks * iterations.max(1)),
    )
}

/// A criterion function comparing gpm and tokio on `imbalanced::$workload`, which runs
/// `$tasks` tasks.
macro_rules! imbalanced_workload {
    ($workload:ident, $tasks:expr) => {
        fn $workload(c: &mut Criterion) {
            compare(
                c,
                stringify!($workload),
                $tasks,
                imbalanced::$workload::<Gpm>,
                imbalanced::$workload::<Tokio>,
            );
        }
    };
}

imbalanced_workload!(one_spawns_all, imbalanced::TASKS as u64);
imbalanced_workload!(fork_join, (1 << (imbalanced::TREE_DEPTH + 1)) - 1);
imbalanced_workload!(skewed_producer, imbalanced::TASKS as u64);

/// One plan (the victim order for one steal) by thief P5 of 64 Ps on the EPYC topology.
fn victim_order(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../numa/topologies/epyc-1s-4n-8l3.xml"
    );
    let machine = Topology::from_xml_file(path).expect("shipped topology");
    let pus = Placement::Compact.assign(&machine, 64).expect("placement");
    let topology = StealTopology::from_topology(&machine, &pus).expect("topology");
    let mut group = c.benchmark_group("victim_order_64ps");
    configure(&mut group);
    for policy in StealPolicy::ALL {
        let mut planner = VictimPlanner::new(&policy, &topology, 5);
        let mut rng = FastRand::new(1);
        // Varying waits, as a running system would show; each plan reads all 64.
        let waits: Vec<u64> = (0..64u64).map(|p| (p * 7919) % 1000).collect();
        let lens: Vec<usize> = (0..64).map(|p| (p * 31) % 7).collect();
        group.bench_function(policy.name(), |b| {
            b.iter(|| {
                planner
                    .plan(&FnView(|p| lens[p], |p| waits[p]), &mut rng)
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(
    policies,
    one_spawns_all,
    fork_join,
    skewed_producer,
    victim_order
);
criterion_main!(policies);

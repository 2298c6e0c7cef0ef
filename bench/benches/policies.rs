//! Stealing policies compared in one run: imbalanced workloads on gpm under each policy
//! (chosen at run time through `Builder::steal_policy`) and on tokio, in one criterion group
//! per workload. Workers: `GPM_BENCH_WORKERS` (default 2). The `victim_order` group measures
//! the cost of one victim plan for a thief among 64 Ps on the shipped EPYC topology.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use gpm::numa::{Placement, Topology};
use gpm::steal::{StealPolicy, StealTopology};
use gpm_bench::imbalanced;
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

/// `workload` on tokio and on gpm under every policy, in one group.
fn compare(c: &mut Criterion, name: &str, workload: fn(&Gpm), tokio_workload: fn(&Tokio)) {
    let workers = bench_workers();
    let mut group = c.benchmark_group(name);
    configure(&mut group);
    let tokio = Tokio::with_workers(workers);
    group.bench_function("tokio", |b| b.iter(|| tokio_workload(&tokio)));
    drop(tokio);
    for policy in StealPolicy::ALL {
        let gpm = Gpm::with_policy(workers, policy);
        group.bench_function(format!("gpm-{policy}"), |b| b.iter(|| workload(&gpm)));
    }
    group.finish();
}

fn one_spawns_all(c: &mut Criterion) {
    compare(
        c,
        "one_spawns_all",
        imbalanced::one_spawns_all::<Gpm>,
        imbalanced::one_spawns_all::<Tokio>,
    );
}

fn fork_join(c: &mut Criterion) {
    compare(
        c,
        "fork_join",
        imbalanced::fork_join::<Gpm>,
        imbalanced::fork_join::<Tokio>,
    );
}

fn skewed_producer(c: &mut Criterion) {
    compare(
        c,
        "skewed_producer",
        imbalanced::skewed_producer::<Gpm>,
        imbalanced::skewed_producer::<Tokio>,
    );
}

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

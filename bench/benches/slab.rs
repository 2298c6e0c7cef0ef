//! Task allocation: gpm with its slab (`TaskAllocator::Slab`), gpm with the global allocator
//! (`TaskAllocator::System`), and tokio as the baseline, in one criterion group per
//! workload. Spawn-heavy workloads (spawn_many_local, chained_spawn, spawn_many_remote_idle)
//! allocate and free one task per spawn; yield_many spawns little and is the control.
//! Workers: `GPM_BENCH_WORKERS` (default 2).

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use gpm::TaskAllocator;
use gpm_bench::workloads::{self, SpawnMany};
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use std::sync::mpsc;
use std::time::Duration;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// One workload, runnable on a given runtime.
trait Workload {
    const NAME: &'static str;
    fn run<R: Rt>(group: &mut Group<'_>, label: &str, rt: R);
}

/// Runs `W` on gpm with the slab, gpm with the system allocator, and tokio, in one group.
fn compare<W: Workload>(c: &mut Criterion) {
    let workers = bench_workers();
    let mut group = c.benchmark_group(format!("slab/{}", W::NAME));
    group.sample_size(40);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    W::run(
        &mut group,
        "gpm-slab",
        Gpm::with_allocator(workers, TaskAllocator::Slab),
    );
    W::run(
        &mut group,
        "gpm-system",
        Gpm::with_allocator(workers, TaskAllocator::System),
    );
    W::run(&mut group, "tokio", Tokio::with_workers(workers));
    group.finish();
}

struct SpawnManyLocal;
impl Workload for SpawnManyLocal {
    const NAME: &'static str = "spawn_many_local";
    fn run<R: Rt>(group: &mut Group<'_>, label: &str, rt: R) {
        let state = SpawnMany::default();
        group.bench_function(label, |b| {
            b.iter(|| workloads::spawn_many_local(&rt, &state))
        });
    }
}

struct ChainedSpawn;
impl Workload for ChainedSpawn {
    const NAME: &'static str = "chained_spawn";
    fn run<R: Rt>(group: &mut Group<'_>, label: &str, rt: R) {
        let state = SpawnMany::default();
        group.bench_function(label, |b| b.iter(|| workloads::chained_spawn(&rt, &state)));
    }
}

struct SpawnManyRemoteIdle;
impl Workload for SpawnManyRemoteIdle {
    const NAME: &'static str = "spawn_many_remote_idle";
    fn run<R: Rt>(group: &mut Group<'_>, label: &str, rt: R) {
        let mut handles = Vec::with_capacity(workloads::NUM_SPAWN);
        group.bench_function(label, |b| {
            b.iter(|| workloads::spawn_many_remote(&rt, &mut handles, workloads::NUM_SPAWN))
        });
    }
}

struct YieldMany;
impl Workload for YieldMany {
    const NAME: &'static str = "yield_many";
    fn run<R: Rt>(group: &mut Group<'_>, label: &str, rt: R) {
        let (tx, rx) = mpsc::sync_channel(workloads::YIELD_TASKS);
        group.bench_function(label, |b| b.iter(|| workloads::yield_many(&rt, &tx, &rx)));
    }
}

criterion_group!(
    slab,
    compare::<SpawnManyLocal>,
    compare::<ChainedSpawn>,
    compare::<SpawnManyRemoteIdle>,
    compare::<YieldMany>,
);
criterion_main!(slab);

//! tokio's runtime benchmarks (`benches/rt_multi_threaded.rs`), each run on tokio and on gpm
//! with the same worker count, in one criterion group per workload so the report shows them
//! side by side. Workers: `GPM_BENCH_WORKERS` (default 2). Pinning: `GPM_BENCH_CPUS` /
//! `GPM_BENCH_NODE` (see `gpm_bench::pin`).

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use gpm_bench::workloads::{self, SpawnMany};
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// One workload, runnable on any runtime. Each run builds its own runtime.
trait Workload {
    const NAME: &'static str;
    fn run<R: Rt>(group: &mut Group<'_>, label: &str, workers: usize);
}

/// Runs `W` on tokio, then on gpm, in one criterion group.
fn compare<W: Workload>(c: &mut Criterion) {
    // GPM_BENCH_CPUS / GPM_BENCH_NODE: pins this (driver) thread; tokio's threads are pinned
    // by `Tokio::with_workers`, gpm's by its placement once merged (see gpm_bench::pin).
    gpm_bench::pin::pin_driver_from_env();
    let workers = bench_workers();
    let mut group = c.benchmark_group(W::NAME);
    group.sample_size(40);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    W::run::<Tokio>(&mut group, "tokio", workers);
    W::run::<Gpm>(&mut group, "gpm", workers);
    group.finish();
}

fn remote<R: Rt>(group: &mut Group<'_>, label: &str, rt: &R, count: usize) {
    let mut handles = Vec::with_capacity(count);
    group.bench_function(label, |b| {
        b.iter(|| workloads::spawn_many_remote(rt, &mut handles, count))
    });
}

/// [`remote`] on a fresh runtime of `workers` workers kept busy by `start_load` (one of
/// `workloads::start_*_load`) for as long as the measurement lasts.
fn remote_under_load<R: Rt>(
    group: &mut Group<'_>,
    label: &str,
    workers: usize,
    start_load: impl FnOnce(&R, usize, &Arc<AtomicBool>),
    count: usize,
) {
    let rt = R::with_workers(workers);
    let busy = Arc::new(AtomicBool::new(true));
    start_load(&rt, workers, &busy);
    remote(group, label, &rt, count);
    busy.store(false, Ordering::Relaxed);
}

/// Benches `workload` (one of the `SpawnMany` workloads) on a fresh runtime of `workers`
/// workers, with one `SpawnMany` state for all iterations.
fn spawn_many<R: Rt>(
    group: &mut Group<'_>,
    label: &str,
    workers: usize,
    workload: impl Fn(&R, &SpawnMany),
) {
    let rt = R::with_workers(workers);
    let state = SpawnMany::default();
    group.bench_function(label, |b| b.iter(|| workload(&rt, &state)));
}

/// Declares each workload: a unit struct whose [`Workload::run`] is the body given (with
/// `R`, the runtime type, in scope).
macro_rules! workloads {
    ($($ty:ident($name:literal) => |$group:ident, $label:ident, $workers:ident| $body:block)*) => {
        $(
            struct $ty;
            impl Workload for $ty {
                const NAME: &'static str = $name;
                fn run<R: Rt>($group: &mut Group<'_>, $label: &str, $workers: usize) $body
            }
        )*
    };
}

workloads! {
    SpawnManyLocal("spawn_many_local") => |group, label, workers| {
        spawn_many::<R>(group, label, workers, workloads::spawn_many_local);
    }

    SpawnManyRemoteIdle("spawn_many_remote_idle") => |group, label, workers| {
        remote(group, label, &R::with_workers(workers), workloads::NUM_SPAWN);
    }

    SpawnManyRemoteBusy1("spawn_many_remote_busy1") => |group, label, workers| {
        let load = workloads::start_yielding_load;
        remote_under_load::<R>(group, label, workers, load, workloads::NUM_SPAWN);
    }

    SpawnManyRemoteBusy2("spawn_many_remote_busy2") => |group, label, workers| {
        let load = workloads::start_spawning_load;
        remote_under_load::<R>(group, label, workers, load, workloads::NUM_SPAWN_BUSY2);
    }

    PingPong("ping_pong") => |group, label, workers| {
        spawn_many::<R>(group, label, workers, workloads::ping_pong);
    }

    YieldMany("yield_many") => |group, label, workers| {
        let rt = R::with_workers(workers);
        let (tx, rx) = mpsc::sync_channel(workloads::YIELD_TASKS);
        group.bench_function(label, |b| b.iter(|| workloads::yield_many(&rt, &tx, &rx)));
    }

    ChainedSpawn("chained_spawn") => |group, label, workers| {
        spawn_many::<R>(group, label, workers, workloads::chained_spawn);
    }
}

criterion_group!(
    rt_multi_threaded,
    compare::<SpawnManyLocal>,
    compare::<SpawnManyRemoteIdle>,
    compare::<SpawnManyRemoteBusy1>,
    compare::<SpawnManyRemoteBusy2>,
    compare::<PingPong>,
    compare::<YieldMany>,
    compare::<ChainedSpawn>,
);
criterion_main!(rt_multi_threaded);

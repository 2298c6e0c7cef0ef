//! What the probes cost: tokio's runtime workloads on gpm with probes off
//! (`Builder::enable_probes(false)`), on with the defaults (1 schedule in 32 timed), and
//! on with every task timed, plus tokio, in one criterion group per workload.
//! Workers: `GPM_BENCH_WORKERS` (default 2).

use criterion::{criterion_group, criterion_main, Criterion};
use gpm_bench::workloads::{self, SpawnMany};
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use std::sync::mpsc;
use std::time::Duration;

fn group(
    c: &mut Criterion,
    name: &str,
    run: impl Fn(&mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, usize),
) {
    let mut group = c.benchmark_group(format!("probes/{name}"));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    run(&mut group, bench_workers());
    group.finish();
}

macro_rules! on_each_runtime {
    ($group:ident, $workers:ident, |$rt:ident : $ty:ident, $state:ident = ($setup:expr)| $body:expr) => {{
        fn one<$ty: Rt>(
            group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
            label: &str,
            $rt: $ty,
        ) {
            let $state = $setup;
            group.bench_function(label, |b| b.iter(|| $body));
        }
        one($group, "tokio", Tokio::with_workers($workers));
        one($group, "gpm_probes_off", Gpm::with_probes($workers, None));
        one($group, "gpm_probes_default", Gpm::with_workers($workers));
        one(
            $group,
            "gpm_probes_on_every_task",
            Gpm::with_probes($workers, Some(1)),
        );
    }};
}

fn spawn_many_local(c: &mut Criterion) {
    group(c, "spawn_many_local", |group, workers| {
        on_each_runtime!(group, workers, |rt: R, state = (SpawnMany::default())| {
            workloads::spawn_many_local(&rt, &state)
        })
    });
}

fn ping_pong(c: &mut Criterion) {
    group(c, "ping_pong", |group, workers| {
        on_each_runtime!(group, workers, |rt: R, state = (SpawnMany::default())| {
            workloads::ping_pong(&rt, &state)
        })
    });
}

fn yield_many(c: &mut Criterion) {
    group(c, "yield_many", |group, workers| {
        on_each_runtime!(group, workers, |rt: R, channel = (mpsc::sync_channel(workloads::YIELD_TASKS))| {
            workloads::yield_many(&rt, &channel.0, &channel.1)
        })
    });
}

fn chained_spawn(c: &mut Criterion) {
    group(c, "chained_spawn", |group, workers| {
        on_each_runtime!(group, workers, |rt: R, state = (SpawnMany::default())| {
            workloads::chained_spawn(&rt, &state)
        })
    });
}

criterion_group!(
    probes,
    spawn_many_local,
    ping_pong,
    yield_many,
    chained_spawn
);
criterion_main!(probes);

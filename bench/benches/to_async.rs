//! criterion's async benchmarking (`b.to_async(&runtime)`) on tokio and on gpm, side by side:
//! the experiment a tokio user already has, run unchanged on gpm. Workers:
//! `GPM_BENCH_WORKERS` (default 2); pinning of the benchmark thread and of both runtimes'
//! workers: `GPM_BENCH_CPUS` / `GPM_BENCH_NODE` (see `gpm_bench::pin`).

use criterion::{criterion_group, criterion_main, Criterion};
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use std::time::Duration;

/// Tasks spawned and joined per iteration.
const FAN_OUT: u64 = 64;

/// Spawns `FAN_OUT` tasks on `R` and joins them: the routine both runtimes run.
async fn fan_out_and_join<R: Rt>() -> u64 {
    let handles: Vec<_> = (0..FAN_OUT).map(|i| R::spawn(async move { i })).collect();
    let mut sum = 0;
    for handle in handles {
        sum += R::join(handle).await;
    }
    sum
}

fn to_async(c: &mut Criterion) {
    gpm_bench::pin::pin_driver_from_env();
    let workers = bench_workers();
    let tokio = Tokio::with_workers(workers);
    let gpm = Gpm::with_workers(workers);
    let mut group = c.benchmark_group("to_async_fan_out");
    group.sample_size(40);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("tokio", |b| {
        b.to_async(&tokio.0).iter(fan_out_and_join::<Tokio>)
    });
    group.bench_function("gpm", |b| b.to_async(&gpm.0).iter(fan_out_and_join::<Gpm>));
    group.finish();
}

criterion_group!(benches, to_async);
criterion_main!(benches);

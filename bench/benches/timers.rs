//! The timers workload of issue 18 (`gpm_bench::timers`: N tasks, each 20 rounds of
//! `timeout(50 ms, sleep(1..=10 ms))`) on tokio and on gpm, measured in *process CPU time*
//! (`getrusage`, every thread, user + system) rather than wall time: the wall time of this
//! workload is mostly its own sleeps, its cost is the CPU the runtime spends on them.
//!
//! Both runtimes live in this one process (criterion's way); `gpm-lab timers` runs each side
//! in its own process, with lateness percentiles, for the numbers in docs/BENCHMARKS.md.
//! Workers: `GPM_BENCH_WORKERS` (default 2).

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use gpm_bench::timers::{measure, process_cpu_time, TimerRt};
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use std::time::Duration;

/// Rounds per task, as in the issue.
const ROUNDS: usize = 20;

/// Process CPU time as criterion's measurement.
struct ProcessCpu;

impl Measurement for ProcessCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        process_cpu_time()
    }

    fn end(&self, start: Duration) -> Duration {
        process_cpu_time().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Nanoseconds of CPU, scaled like criterion's wall-time formatter.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical_ns {
            ns if ns < 1e3 => (1.0, "ns cpu"),
            ns if ns < 1e6 => (1e-3, "µs cpu"),
            ns if ns < 1e9 => (1e-6, "ms cpu"),
            _ => (1e-9, "s cpu"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let Throughput::Elements(timers) = *throughput else {
            return "(unsupported throughput)";
        };
        values
            .iter_mut()
            .for_each(|ns| *ns = timers as f64 / (*ns * 1e-9));
        "timers/cpu-s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns cpu"
    }
}

fn one<R: TimerRt>(group: &mut BenchmarkGroup<'_, ProcessCpu>, label: &str, rt: &R, tasks: usize) {
    group.bench_function(label, |b| b.iter(|| measure(rt, tasks, ROUNDS)));
}

fn timers(c: &mut Criterion<ProcessCpu>) {
    let workers = bench_workers();
    // One runtime per side for the whole run: a tokio runtime built after another was
    // dropped in this process measured 2-4x its CPU (tokio 1.54; not seen with gpm).
    let tokio = Tokio::with_workers(workers);
    let gpm = Gpm::with_workers(workers);
    for tasks in [1_000, 5_000] {
        let mut group = c.benchmark_group(format!("timers/{tasks}_tasks"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        // Two timers per round: the sleep that fires and the timeout that is cancelled.
        group.throughput(Throughput::Elements((tasks * ROUNDS * 2) as u64));
        one(&mut group, "tokio", &tokio, tasks);
        one(&mut group, "gpm", &gpm, tasks);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ProcessCpu);
    targets = timers
}
criterion_main!(benches);

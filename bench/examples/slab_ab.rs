//! Alternating A/B/C rounds of the slab bench's workloads: gpm with the slab, gpm with the
//! system allocator, tokio. On a shared machine whose load drifts, criterion's one-after-
//! the-other groups can favour whichever side ran in a quiet minute; here each round runs
//! every side for about 50 ms back to back, and the report gives the median time per
//! iteration of each side and the median of the per-round ratios.
//!
//! ```text
//! cargo run --release -p gpm-bench --example slab_ab [rounds]   (default 31)
//! ```

use gpm::TaskAllocator;
use gpm_bench::stats::median;
use gpm_bench::workloads::{self, SpawnMany};
use gpm_bench::{bench_workers, Gpm, Rt, Tokio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SAMPLE: Duration = Duration::from_millis(50);

/// One workload bound to one runtime, ready to iterate.
trait Side {
    fn iterate(&mut self);
}

struct Bound<R: Rt> {
    rt: R,
    workload: &'static str,
    state: SpawnMany,
    handles: Vec<R::Handle<()>>,
    yield_channel: (mpsc::SyncSender<()>, mpsc::Receiver<()>),
}

impl<R: Rt> Bound<R> {
    fn new(rt: R, workload: &'static str) -> Self {
        Bound {
            rt,
            workload,
            state: SpawnMany::default(),
            handles: Vec::new(),
            yield_channel: mpsc::sync_channel(workloads::YIELD_TASKS),
        }
    }
}

impl<R: Rt> Side for Bound<R> {
    fn iterate(&mut self) {
        match self.workload {
            "spawn_many_local" => workloads::spawn_many_local(&self.rt, &self.state),
            "chained_spawn" => workloads::chained_spawn(&self.rt, &self.state),
            "spawn_many_remote_idle" => {
                workloads::spawn_many_remote(&self.rt, &mut self.handles, workloads::NUM_SPAWN)
            }
            "yield_many" => {
                let (tx, rx) = &self.yield_channel;
                workloads::yield_many(&self.rt, tx, rx)
            }
            other => panic!("unknown workload {other}"),
        }
    }
}

/// Iterations that take about `SAMPLE`.
fn calibrate(side: &mut dyn Side) -> u32 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < SAMPLE {
        side.iterate();
        n += 1;
    }
    n
}

fn time_per_iteration(side: &mut dyn Side, iterations: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        side.iterate();
    }
    start.elapsed().as_secs_f64() / f64::from(iterations)
}

fn fmt(seconds: f64) -> String {
    if seconds >= 1e-3 {
        format!("{:.3} ms", seconds * 1e3)
    } else {
        format!("{:.1} us", seconds * 1e6)
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(31);
    let workers = bench_workers();
    println!("{rounds} alternating rounds of ~{SAMPLE:?} per side, {workers} workers");
    println!("| workload | gpm Slab | gpm System | tokio | System/Slab (median of rounds) | tokio/Slab |");
    println!("|---|---:|---:|---:|---:|---:|");
    for workload in [
        "spawn_many_local",
        "chained_spawn",
        "spawn_many_remote_idle",
        "yield_many",
    ] {
        let mut sides: Vec<Box<dyn Side>> = vec![
            Box::new(Bound::new(
                Gpm::with_allocator(workers, TaskAllocator::Slab),
                workload,
            )),
            Box::new(Bound::new(
                Gpm::with_allocator(workers, TaskAllocator::System),
                workload,
            )),
            Box::new(Bound::new(Tokio::with_workers(workers), workload)),
        ];
        let iterations: Vec<u32> = sides.iter_mut().map(|s| calibrate(s.as_mut())).collect();
        let mut times = vec![Vec::new(); sides.len()];
        for _ in 0..rounds {
            for (i, side) in sides.iter_mut().enumerate() {
                times[i].push(time_per_iteration(side.as_mut(), iterations[i]));
            }
        }
        let mut system_ratio: Vec<f64> = (0..rounds).map(|r| times[1][r] / times[0][r]).collect();
        let mut tokio_ratio: Vec<f64> = (0..rounds).map(|r| times[2][r] / times[0][r]).collect();
        let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
        println!(
            "| {workload} | {} | {} | {} | {:.2} | {:.2} |",
            fmt(medians[0]),
            fmt(medians[1]),
            fmt(medians[2]),
            median(&mut system_ratio),
            median(&mut tokio_ratio),
        );
    }
}

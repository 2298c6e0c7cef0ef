//! Prints the scheduler's probes once a second while an open-loop load runs and rises.
//!
//! ```sh
//! cargo run --release -p gpm --example probes -- [SECONDS]   # default 6
//! ```
//!
//! A driver thread spawns tasks at a rate that doubles every second (each task burns about
//! 50 us of CPU); the printer shows lambda, L (tasks alive), W, P99 sojourn, lambda * W and
//! the knee once the detector sees one. The last snapshot is printed in Prometheus' format.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: Duration = Duration::from_micros(50);

fn burn(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Spawns at `rate` per second for `period`, spacing spawns evenly (open loop: it does not
/// wait for completions).
fn drive(handle: &gpm::Handle, rate: f64, period: Duration) {
    let start = Instant::now();
    let mut spawned = 0u64;
    while start.elapsed() < period {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while spawned < due {
            drop(handle.spawn(async { burn(SERVICE) }));
            spawned += 1;
        }
        std::thread::yield_now();
    }
}

fn main() -> Result<(), gpm::BuildError> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let rt = gpm::Runtime::builder()
        .worker_threads(2)
        .probe_sampling(8)
        .build()?;
    let handle = rt.handle().clone();
    let done = Arc::new(AtomicBool::new(false));
    let printer = {
        let (handle, done) = (handle.clone(), done.clone());
        std::thread::spawn(move || {
            println!(
                "{:>6} {:>9} {:>7} {:>9} {:>9} {:>9} {:>7}  knee",
                "t (s)", "lambda/s", "L", "W (us)", "P99 (us)", "lambda*W", "dev"
            );
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                print_line(&handle.probes());
            }
        })
    };
    let mut rate = 1000.0;
    for _ in 0..seconds {
        drive(&handle, rate, Duration::from_secs(1));
        rate *= 2.0;
    }
    done.store(true, Ordering::SeqCst);
    printer.join().expect("printer thread");
    let (runnable, report) = handle.stop_the_world(|world| world.runnable());
    println!(
        "\nstop the world: {runnable} runnable tasks, time to stop {:?}, pause {:?}, late P {:?}",
        report.time_to_stop, report.pause, report.late
    );
    println!("\n{}", handle.probes().to_prometheus());
    Ok(())
}

fn print_line(probes: &gpm::probe::Probes) {
    let Some(law) = probes.little_tasks else {
        return;
    };
    let knee = probes
        .knee
        .map(|k| format!("at lambda = {:.0}/s", k.lambda))
        .unwrap_or_else(|| "-".to_owned());
    println!(
        "{:>6.1} {:>9.0} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>7.2}  {knee}",
        probes.uptime_s,
        law.lambda,
        probes.tasks_alive,
        law.w_s * 1e6,
        probes.sojourn.p99_ns as f64 / 1e3,
        law.l_predicted,
        law.deviation,
    );
}

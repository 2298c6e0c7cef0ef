//! Prints the scheduler's probes once a second while an open-loop load runs and rises.
//!
//! ```sh
//! cargo run --release -p gpm --example probes -- [SECONDS]   # default 6
//! cargo run --release -p gpm --features probes-server --example probes -- 30 --serve 127.0.0.1:9090
//! ```
//!
//! A driver thread spawns tasks at a rate that doubles every second (each task burns about
//! 50 us of CPU); the printer shows lambda, L (tasks alive), W, P99 sojourn, lambda * W and
//! the knee once the detector sees one. The last snapshot is printed in Prometheus' format.
//!
//! With `--serve ADDR` (feature `probes-server`) the runtime also serves its probes while the
//! load runs: the live page at `http://ADDR/`, `/metrics`, `/probes.json`, and `POST /stw`
//! (enabled here, for the page's button). Past 64 000 tasks a second (beyond the knee on most
//! machines) the rate falls back to 1000 and rises again, so a long run shows the queues fill
//! and drain; the printer then prints every 5 s, the page polls every second, and both feed
//! the same Little's-law window.
//! `docs/LIVE.md` explains the page.

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

/// The top of the rising rate, tasks per second.
const MAX_RATE: f64 = 64_000.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut seconds: u64 = 6;
    let mut serve: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--serve" => serve = Some(args.next().ok_or("--serve needs an address")?),
            other => {
                seconds = other
                    .parse()
                    .map_err(|_| format!("bad argument {other:?}"))?
            }
        }
    }
    let rt = gpm::Runtime::builder()
        .worker_threads(2)
        .probe_sampling(8)
        .build()?;
    let handle = rt.handle().clone();
    let server = match serve {
        Some(addr) => Some(serve_probes(&handle, &addr)?),
        None => None,
    };
    let print_every = if server.is_some() { 5 } else { 1 };
    let done = Arc::new(AtomicBool::new(false));
    let printer = {
        let (handle, done) = (handle.clone(), done.clone());
        std::thread::spawn(move || {
            println!(
                "{:>6} {:>9} {:>7} {:>9} {:>9} {:>9} {:>7}  knee",
                "t (s)", "lambda/s", "L", "W (us)", "P99 (us)", "lambda*W", "dev"
            );
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(print_every));
                print_line(&handle.probes());
            }
        })
    };
    let mut rate = 1000.0;
    for _ in 0..seconds {
        drive(&handle, rate, Duration::from_secs(1));
        // A saw-tooth: past the top the load drops back, and the backlog drains.
        rate = if rate >= MAX_RATE { 1000.0 } else { rate * 2.0 };
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

#[cfg(feature = "probes-server")]
fn serve_probes(
    handle: &gpm::Handle,
    addr: &str,
) -> Result<gpm::probes_server::ProbesServer, Box<dyn std::error::Error>> {
    let server = gpm::probes_server::ProbesServer::builder()
        .enable_stw(true)
        .serve(handle, addr)?;
    eprintln!("serving the probes on {}", server.url());
    Ok(server)
}

#[cfg(not(feature = "probes-server"))]
fn serve_probes(_: &gpm::Handle, _: &str) -> Result<(), Box<dyn std::error::Error>> {
    Err("--serve needs the `probes-server` feature: cargo run --features probes-server ..".into())
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

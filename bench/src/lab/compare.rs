//! `compare`: tokio's runtime workloads ([`crate::workloads`]) on tokio and on gpm.
//!
//! # Timing loop
//!
//! Each workload gets one long-lived runtime per side (built once, as criterion's bench
//! does). After `--warmup` untimed runs per side, `--runs` rounds each time one run per
//! side; the side that goes first alternates from round to round, so slow drift of the
//! machine (other load, frequency, the allocator's state) falls on both sides equally. The
//! table shows each side's median and the ratio `tokio / gpm` (above 1: gpm is faster).
//! Differences under about 10% are noise on a shared 2-core machine.
//!
//! The busy workloads start their background load before each timed run and stop it after,
//! so the idle side is not slowed down by the other side's load.
//!
//! # Policies
//!
//! Every `--policies` entry is one gpm column (a runtime built by
//! [`RuntimeConfig::build_gpm`]); today only `default` exists.

use super::out::{num, Output, Table};
use super::{parse_policies, policy_name, Probes, RuntimeConfig};
use crate::workloads::{self, SpawnMany};
use crate::{Gpm, Rt, Tokio};
use clap::Args;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The flags of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Timed rounds (one run per side each).
    #[arg(long, default_value_t = 101)]
    pub runs: usize,
    /// Untimed runs per side first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Worker threads per runtime (default: GPM_BENCH_WORKERS, else 2).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Workloads, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// gpm stealing policies, comma-separated: default (GPM_STEAL or the cargo feature) or
    /// any of gpm's policies (the default lists them all).
    #[arg(long, default_value_t = super::all_policies())]
    pub policies: String,
    /// Also run each gpm column with its probes off (`enable_probes(false)`) in the same
    /// alternating rounds, and report what the default probes cost (on / off).
    #[arg(long)]
    pub probes_off: bool,
}

/// tokio's workloads by name.
pub const WORKLOADS: &[&str] = &[
    "spawn_many_local",
    "spawn_many_remote_idle",
    "spawn_many_remote_busy1",
    "spawn_many_remote_busy2",
    "ping_pong",
    "yield_many",
    "chained_spawn",
];

/// One timed run of a workload on one runtime.
type Runner = Box<dyn FnMut() -> Duration>;

/// A runner for workload `name` on a fresh runtime `rt` with `workers` workers.
pub fn runner<R: Rt>(name: &str, rt: R, workers: usize) -> Result<Runner, String> {
    // The runner never leaves this thread: `Rc` for the shared state, which is not `Sync`.
    let rt = Arc::new(rt);
    let state = std::rc::Rc::new(SpawnMany::default());
    let time = |mut f: Box<dyn FnMut()>| -> Runner {
        Box::new(move || {
            let start = Instant::now();
            f();
            start.elapsed()
        })
    };
    let busy = |rt: Arc<R>, yielding: bool, count: usize| -> Runner {
        let mut handles = Vec::with_capacity(count);
        Box::new(move || {
            let flag = Arc::new(AtomicBool::new(true));
            if yielding {
                workloads::start_yielding_load(&*rt, workers, &flag);
            } else {
                workloads::start_spawning_load(&*rt, workers, &flag);
            }
            let start = Instant::now();
            workloads::spawn_many_remote(&*rt, &mut handles, count);
            let took = start.elapsed();
            flag.store(false, Ordering::Relaxed);
            took
        })
    };
    Ok(match name {
        "spawn_many_local" => time(Box::new(move || workloads::spawn_many_local(&*rt, &state))),
        "spawn_many_remote_idle" => {
            let mut handles = Vec::with_capacity(workloads::NUM_SPAWN);
            time(Box::new(move || {
                workloads::spawn_many_remote(&*rt, &mut handles, workloads::NUM_SPAWN)
            }))
        }
        "spawn_many_remote_busy1" => busy(rt, true, workloads::NUM_SPAWN),
        "spawn_many_remote_busy2" => busy(rt, false, workloads::NUM_SPAWN_BUSY2),
        "ping_pong" => time(Box::new(move || workloads::ping_pong(&*rt, &state))),
        "yield_many" => {
            let (tx, rx) = mpsc::sync_channel(workloads::YIELD_TASKS);
            time(Box::new(move || workloads::yield_many(&*rt, &tx, &rx)))
        }
        "chained_spawn" => time(Box::new(move || workloads::chained_spawn(&*rt, &state))),
        other => {
            return Err(format!(
                "unknown workload {other:?}; known: {}",
                WORKLOADS.join(", ")
            ))
        }
    })
}

/// The median of `samples` (sorted in place); zero when empty.
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    match samples.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2,
    }
}

/// Runs every side `warmup` times, then `runs` rounds alternating which side goes first;
/// returns each side's samples.
pub fn interleave(sides: &mut [Runner], warmup: usize, runs: usize) -> Vec<Vec<Duration>> {
    for side in sides.iter_mut() {
        for _ in 0..warmup {
            side();
        }
    }
    let mut samples = vec![Vec::with_capacity(runs); sides.len()];
    for round in 0..runs {
        let n = sides.len();
        for k in 0..n {
            // Even rounds go 0, 1, ..; odd rounds go .., 1, 0.
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            samples[i].push(sides[i]());
        }
    }
    samples
}

fn ms(d: Duration) -> String {
    num(d.as_secs_f64() * 1e3, 3)
}

/// The `compare` experiment.
pub fn run(args: &CompareArgs, out: &Output) -> Result<String, String> {
    let policies = parse_policies(&args.policies)?;
    let workers = args.workers.unwrap_or_else(crate::bench_workers);
    if workers == 0 || args.runs == 0 {
        return Err("--workers and --runs must be at least 1".to_owned());
    }
    let names: Vec<String> = if args.workloads.is_empty() {
        WORKLOADS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.workloads.clone()
    };
    let mut header = vec!["workload".to_owned(), "tokio_ms".to_owned()];
    for &p in &policies {
        let p = policy_name(p);
        header.push(format!("gpm[{p}]_ms"));
        header.push(format!("tokio/gpm[{p}]"));
        if args.probes_off {
            header.push(format!("gpm[{p}]_probes_off_ms"));
            header.push(format!("probes_on/off[{p}]"));
        }
    }
    let mut table = Table {
        header,
        rows: Vec::new(),
    };
    let bar = out.progress(names.len() as u64, "compare");
    for name in &names {
        bar.set_message(name.clone());
        let mut sides = vec![runner(name, Tokio::with_workers(workers), workers)?];
        let probes: &[Probes] = match args.probes_off {
            true => &[Probes::Default, Probes::Off],
            false => &[Probes::Default],
        };
        for &policy in &policies {
            for &probes in probes {
                // Probes as a plain runtime has them, not the lab's one task in 8 timed.
                let config = RuntimeConfig {
                    policy,
                    probes,
                    ..RuntimeConfig::new(workers)
                };
                sides.push(runner(name, Gpm(config.build_gpm()?), workers)?);
            }
        }
        let mut samples = interleave(&mut sides, args.warmup, args.runs);
        let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
        let ratio = |a: Duration, b: Duration| num(a.as_secs_f64() / b.as_secs_f64().max(1e-12), 2);
        let mut row = vec![name.clone(), ms(medians[0])];
        for gpm in medians[1..].chunks(probes.len()) {
            row.push(ms(gpm[0]));
            row.push(ratio(medians[0], gpm[0]));
            if let [on, off] = gpm {
                row.push(ms(*off));
                row.push(ratio(*on, *off));
            }
        }
        table.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.csv("compare", &table)?;
    Ok(format!(
        "{workers} workers, median of {} rounds after {} warm-up runs (ratio > 1: gpm faster)\n{}",
        args.runs,
        args.warmup,
        table.render()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn median_of_odd_and_even() {
        let d = Duration::from_millis;
        assert_eq!(median(&mut [d(3), d(1), d(2)]), d(2));
        assert_eq!(
            median(&mut [d(4), d(1), d(2), d(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&mut []), Duration::ZERO);
    }

    #[test]
    fn rounds_alternate_which_side_goes_first() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let side = |id: u8| -> Runner {
            let order = Rc::clone(&order);
            Box::new(move || {
                order.borrow_mut().push(id);
                Duration::from_millis(u64::from(id))
            })
        };
        let mut sides = vec![side(0), side(1)];
        let samples = interleave(&mut sides, 1, 3);
        assert_eq!(*order.borrow(), vec![0, 1, 0, 1, 1, 0, 0, 1]);
        assert_eq!(samples[1], vec![Duration::from_millis(1); 3]);
    }

    #[test]
    fn every_workload_runs_on_both_runtimes() {
        for name in WORKLOADS {
            let mut tokio = runner(name, Tokio::with_workers(2), 2).unwrap();
            let mut gpm = runner(name, Gpm::with_workers(2), 2).unwrap();
            assert!(tokio() > Duration::ZERO && gpm() > Duration::ZERO, "{name}");
        }
        assert!(runner("nope", Gpm::with_workers(1), 1)
            .err()
            .unwrap()
            .contains("unknown workload"));
    }
}

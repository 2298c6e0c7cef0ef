//! `timers`: the timeout-per-request workload ([`crate::timers`]) on tokio and on gpm, one
//! runtime per process.
//!
//! Each run is a child process (`gpm-lab timers-child`) that builds one runtime, runs the
//! workload once and prints one report line, so the two sides never share threads, the
//! allocator's state or the CPU time account. `--rounds` rounds per task count; the side that
//! runs first alternates from round to round. The table shows medians per side and the
//! ratios gpm / tokio (below 1: gpm spends less) with their 95% intervals over the rounds
//! (`crate::stats`), and the timeouts that fired over all
//! rounds (a sleep more than 40 ms late loses to its timeout). A sleep that ends before its
//! deadline is an error.

use super::out::{num, Output, Table};
use crate::stats::{ci95_text, median};
use crate::timers::TimersReport;
use clap::Args;
use std::process::Command;

/// The flags of `timers`.
#[derive(Debug, Clone, Args)]
pub struct TimersArgs {
    /// Concurrent tasks, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 5_000, 20_000, 50_000])]
    pub tasks: Vec<usize>,
    /// Rounds of `timeout(50 ms, sleep(1..=10 ms))` per task.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Alternating rounds (one child process per side each).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Worker threads per runtime.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// The flags of the hidden `timers-child` command: one run of one side.
#[derive(Debug, Clone, Args)]
pub struct ChildArgs {
    /// tokio or gpm.
    #[arg(long)]
    pub runtime: String,
    /// Concurrent tasks.
    #[arg(long)]
    pub tasks: usize,
    /// Rounds per task.
    #[arg(long)]
    pub iterations: usize,
    /// Worker threads.
    #[arg(long)]
    pub workers: usize,
}

/// Runs one side in this process and returns its report line.
pub fn child(args: &ChildArgs) -> Result<String, String> {
    use crate::{timers::measure, Gpm, Rt, Tokio};
    if args.workers == 0 || args.tasks == 0 {
        return Err("timers-child needs at least one worker and one task".to_owned());
    }
    let report = match args.runtime.as_str() {
        "tokio" => measure(
            &Tokio::with_workers(args.workers),
            args.tasks,
            args.iterations,
        ),
        "gpm" => measure(
            &Gpm::with_workers(args.workers),
            args.tasks,
            args.iterations,
        ),
        other => return Err(format!("unknown runtime {other:?}: tokio or gpm")),
    };
    Ok(report.line())
}

const SIDES: [&str; 2] = ["tokio", "gpm"];

fn run_child(side: &str, tasks: usize, args: &TimersArgs) -> Result<[f64; 7], String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find gpm-lab itself: {e}"))?;
    let output = Command::new(exe)
        .args(["timers-child", "--runtime", side])
        .args(["--tasks", &tasks.to_string()])
        .args(["--iterations", &args.iterations.to_string()])
        .args(["--workers", &args.workers.to_string()])
        .output()
        .map_err(|e| format!("cannot run timers-child: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("timers-child {side} {tasks} failed: {stderr}"));
    }
    TimersReport::parse_line(String::from_utf8_lossy(&output.stdout).trim())
}

/// Median of field `field` over `reports`.
fn median_field(reports: &[[f64; 7]], field: usize) -> f64 {
    median(&mut reports.iter().map(|r| r[field]).collect::<Vec<_>>())
}

/// Runs the experiment and returns the table.
pub fn run(args: &TimersArgs, out: &Output) -> Result<String, String> {
    if args.rounds == 0 || args.tasks.is_empty() {
        return Err("timers needs at least one round and one task count".to_owned());
    }
    let mut table = Table::new(&[
        "tasks",
        "tokio_wall_s",
        "gpm_wall_s",
        "wall_gpm/tokio",
        "wall_gpm/tokio_ci95",
        "tokio_cpu_s",
        "gpm_cpu_s",
        "cpu_gpm/tokio",
        "cpu_gpm/tokio_ci95",
        "gpm_cpu_ns_per_timer",
        "tokio_p99_late_ms",
        "gpm_p99_late_ms",
        "tokio_max_late_ms",
        "gpm_max_late_ms",
        "tokio_timeouts",
        "gpm_timeouts",
    ]);
    let bar = out.progress((args.tasks.len() * args.rounds * 2) as u64, "timers");
    for &tasks in &args.tasks {
        let mut reports: [Vec<[f64; 7]>; 2] = [Vec::new(), Vec::new()];
        for round in 0..args.rounds {
            for turn in 0..2 {
                let side = (round + turn) % 2;
                reports[side].push(run_child(SIDES[side], tasks, args)?);
                bar.inc(1);
            }
        }
        let [tokio, gpm] = &reports;
        let med = |reports: &[[f64; 7]], field| median_field(reports, field);
        let timers = (tasks * args.iterations * 2) as f64;
        let early: f64 = reports.iter().flatten().map(|r| r[5]).sum();
        if early > 0.0 {
            return Err(format!(
                "{early} sleeps ended before their deadline ({tasks} tasks)"
            ));
        }
        let fired = |reports: &[[f64; 7]]| reports.iter().map(|r| r[6]).sum::<f64>();
        // Every run is a process of its own: each round is its own pair of instances.
        let interval = |field: usize| {
            let of = |reports: &[[f64; 7]]| vec![reports.iter().map(|r| r[field]).collect()];
            ci95_text(&of(gpm), &of(tokio))
        };
        table.push(vec![
            tasks.to_string(),
            num(med(tokio, 0), 3),
            num(med(gpm, 0), 3),
            num(med(gpm, 0) / med(tokio, 0), 2),
            interval(0),
            num(med(tokio, 1), 3),
            num(med(gpm, 1), 3),
            num(med(gpm, 1) / med(tokio, 1), 2),
            interval(1),
            num(med(gpm, 1) * 1e9 / timers, 0),
            num(med(tokio, 3) / 1e3, 2),
            num(med(gpm, 3) / 1e3, 2),
            num(med(tokio, 4) / 1e3, 2),
            num(med(gpm, 4) / 1e3, 2),
            num(fired(tokio), 0),
            num(fired(gpm), 0),
        ]);
    }
    bar.finish_and_clear();
    let path = out.csv("timers", &table)?;
    Ok(format!(
        "timers: {} rounds of timeout(50 ms, sleep(1..=10 ms)) per task, {} workers, \
         medians of {} alternating rounds (one process per run)\n{}(csv: {})\n",
        args.iterations,
        args.workers,
        args.rounds,
        table.render(),
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_with_bad_arguments_is_an_error() {
        let bad = ChildArgs {
            runtime: "async-std".to_owned(),
            tasks: 1,
            iterations: 1,
            workers: 1,
        };
        assert!(child(&bad).unwrap_err().contains("unknown runtime"));
        let zero = ChildArgs {
            runtime: "gpm".to_owned(),
            workers: 0,
            ..bad
        };
        assert!(child(&zero).is_err());
    }
}

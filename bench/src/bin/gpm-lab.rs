//! gpm-lab: the scheduling and queueing experiments, one command each.
//!
//! ```sh
//! cargo run -p gpm-bench --release --bin gpm-lab -- <experiment> [flags]
//! cargo run -p gpm-bench --release --bin gpm-lab -- --help
//! ```
//!
//! Results (CSV, SVG) go to `--out` (default `target/lab/`); the summary table goes to
//! stdout, progress bars to stderr. See docs/LAB.md.

use clap::{Args, Parser, Subcommand};
use gpm_bench::lab::{self, littles, queueing::ServiceDist, Output, PolicyChoice, RuntimeConfig};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "gpm-lab",
    about = "Scheduling and queueing experiments on gpm (see docs/LAB.md)"
)]
struct Cli {
    /// Results folder (CSV and SVG files).
    #[arg(long, global = true, default_value = "target/lab")]
    out: String,
    /// Never draw progress bars (they are already hidden when stderr is not a terminal).
    #[arg(long, global = true)]
    no_progress: bool,
    /// Serve each gpm runtime's probes at ADDR while it runs (a loopback address, e.g.
    /// 127.0.0.1:9000): the page at http://ADDR/ or `gpm-top ADDR` (docs/LIVE.md). Runtimes
    /// built by the experiments' RuntimeConfig (policies, littles-law, workers,
    /// queue-model, overload).
    #[arg(long, global = true, value_name = "ADDR")]
    serve: Option<String>,
    #[command(subcommand)]
    experiment: Experiment,
}

#[derive(Debug, Subcommand)]
enum Experiment {
    /// tokio's runtime workloads on tokio and on gpm: medians and ratios.
    Compare(lab::compare::CompareArgs),
    /// Imbalanced workloads under each stealing policy: makespan, P99, steals by relation.
    Policies(lab::policies::PoliciesArgs),
    /// Open-loop sweep of lambda: W, P99, L against lambda * W, the knee, M/G/c predictions.
    LittlesLaw(SweepArgs),
    /// The littles-law sweep for each worker count (Go's GOMAXPROCS table).
    Workers(WorkersArgs),
    /// The fluid queue model dQ/dt = lambda - mu (1 - rho(Q)) Q against the measured depth.
    QueueModel(lab::queue_model::QueueModelArgs),
    /// P99 under overload with and without gpm::overload's controls.
    Overload(lab::overload_exp::OverloadArgs),
    /// A hyper server on gpm behind the overload layers, open-loop HTTP load 0.5x-2.5x capacity.
    OverloadHttp(lab::overload_http::OverloadHttpArgs),
    /// Timers: timeout(50 ms, sleep(1..=10 ms)) per round on tokio and on gpm (CPU, lateness).
    Timers(lab::timers_exp::TimersArgs),
    /// One side of `timers` in this process (the experiment runs it as a child).
    #[command(hide = true)]
    TimersChild(lab::timers_exp::ChildArgs),
}

/// The flags of an open-loop sweep.
#[derive(Debug, Args)]
struct SweepArgs {
    /// Worker threads N (default: the CPUs available).
    #[arg(long)]
    workers: Option<usize>,
    /// Mean service time S, microseconds.
    #[arg(long, default_value_t = 500)]
    service_us: u64,
    /// Service-time distribution: const (busy-spin of exactly S) or exp.
    #[arg(long, default_value = "const")]
    service_dist: ServiceDist,
    /// Load points.
    #[arg(long, default_value_t = 8)]
    points: usize,
    /// Lowest load, as a fraction of the capacity N / S.
    #[arg(long, default_value_t = 0.15)]
    min_load: f64,
    /// Highest load, as a fraction of the capacity N / S.
    #[arg(long, default_value_t = 1.2)]
    max_load: f64,
    /// Measured seconds per point (a fifth more is offered as warm-up).
    #[arg(long, default_value_t = 3.0)]
    seconds_per_point: f64,
    /// Seed of the arrival process.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stealing policy of gpm's scheduler: default (GPM_STEAL or the cargo feature) or one
    /// of gpm's policies.
    #[arg(long, default_value = lab::DEFAULT_POLICY, value_parser = lab::parse_policy)]
    policy: PolicyChoice,
}

#[derive(Debug, Args)]
struct WorkersArgs {
    /// Worker counts, comma-separated (default: 1 to the CPUs available).
    #[arg(long, value_delimiter = ',')]
    counts: Vec<usize>,
    #[command(flatten)]
    sweep: SweepArgs,
}

impl SweepArgs {
    fn spec(&self) -> littles::SweepSpec {
        littles::SweepSpec {
            runtime: RuntimeConfig {
                policy: self.policy,
                ..RuntimeConfig::new(self.workers.unwrap_or_else(lab::available_cpus))
            },
            service: Duration::from_micros(self.service_us),
            dist: self.service_dist,
            points: self.points,
            load: (self.min_load, self.max_load),
            seconds_per_point: self.seconds_per_point,
            seed: self.seed,
        }
    }
}

fn run(cli: Cli) -> Result<String, String> {
    let out = Output::create(&cli.out, !cli.no_progress)?;
    if let Some(addr) = cli.serve.clone() {
        lab::serve_probes_at(addr);
    }
    gpm_bench::pin::pin_driver_from_env();
    let report = match cli.experiment {
        Experiment::Compare(args) => lab::compare::run(&args, &out)?,
        Experiment::Policies(args) => lab::policies::run(&args, &out)?,
        Experiment::LittlesLaw(args) => littles::littles_law(&args.spec(), &out)?,
        Experiment::Workers(args) => {
            let counts = if args.counts.is_empty() {
                (1..=lab::available_cpus()).collect()
            } else {
                args.counts.clone()
            };
            littles::workers(&args.sweep.spec(), &counts, &out)?
        }
        Experiment::QueueModel(args) => lab::queue_model::run(&args, &out)?,
        Experiment::Overload(args) => lab::overload_exp::run(&args, &out)?,
        Experiment::OverloadHttp(args) => lab::overload_http::run(&args, &out)?,
        Experiment::Timers(args) => lab::timers_exp::run(&args, &out)?,
        Experiment::TimersChild(args) => return lab::timers_exp::child(&args),
    };
    Ok(format!("{report}\nresults in {}\n", out.dir().display()))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gpm-lab: error: {e}");
            ExitCode::FAILURE
        }
    }
}

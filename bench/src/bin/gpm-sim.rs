//! `gpm-sim`: runs the work-stealing simulator (`gpm_bench::sim`) for every policy on a
//! large topology and prints a Markdown table: per workload and policy, medians over the
//! seeds, and the spread (min, max) of the per-seed ratio to random stealing with the same
//! seed. The first column is the makespan, or the P99 sojourn for the open-loop workloads
//! (`server`, `hot-node`).
//!
//! ```text
//! cargo run -p gpm-bench --release --bin gpm-sim -- \
//!     --topology numa/topologies/epyc-1s-4n-8l3.xml --ps 64 [--seed 1] [--seeds 5] \
//!     [--cost-scale 0.5]                # every cost of the model times 0.5 (sensitivity)
//!     [--workload all|one-spawns-all|fork-join|skewed|server|hot-node|pipeline] \
//!     [--placement compact|scatter|...] \
//!     [--weights CACHE,NUMA,LATENCY]   # adds a row: affinity with these weights
//! cargo run -p gpm-bench --release --bin gpm-sim -- --synthetic "pack:2 numa:2 l3:2 core:4 pu:2" --ps 128
//! ```

use gpm_bench::sim::{simulate, CostModel, Report, Workload};
use gpm_numa::{Placement, Topology};
use gpm_scheduler::steal::{AffinityWeights, StealPolicy, StealTopology};
use std::process::ExitCode;

#[derive(Debug)]
struct Args {
    machine: Topology,
    ps: usize,
    seed: u64,
    workloads: Vec<Workload>,
    placement: Placement,
    extra: Option<AffinityWeights>,
    seeds: u64,
    cost_scale: f64,
}

fn parse() -> Result<Args, String> {
    let mut machine = None;
    let mut ps = 64;
    let mut seed = 1;
    let mut workloads = Workload::ALL.to_vec();
    let mut placement = Placement::Compact;
    let mut extra = None;
    let mut seeds: u64 = 1;
    let mut cost_scale: f64 = 1.0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--topology" => {
                machine = Some(Topology::from_xml_file(value()?).map_err(|e| e.to_string())?)
            }
            "--synthetic" => {
                machine = Some(Topology::from_synthetic(&value()?).map_err(|e| e.to_string())?)
            }
            "--ps" => ps = number(&value()?, "--ps")?,
            "--seed" => seed = number(&value()?, "--seed")?,
            "--seeds" => seeds = number(&value()?, "--seeds")?,
            "--cost-scale" => cost_scale = number(&value()?, "--cost-scale")?,
            "--workload" => {
                let name = value()?;
                if name != "all" {
                    workloads = vec![name.parse()?];
                }
            }
            "--placement" => placement = value()?.parse().map_err(|e| format!("{e}"))?,
            "--weights" => extra = Some(weights(&value()?)?),
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    let machine = machine.ok_or_else(|| format!("give --topology or --synthetic\n{}", usage()))?;
    if ps < 2 {
        return Err(format!("--ps {ps}: stealing needs at least 2 Ps"));
    }
    if seeds == 0 || !(cost_scale.is_finite() && cost_scale > 0.0) {
        return Err(format!(
            "--seeds {seeds} / --cost-scale {cost_scale}: need at least one seed, a positive scale"
        ));
    }
    Ok(Args {
        seeds,
        cost_scale,
        machine,
        ps,
        seed,
        workloads,
        placement,
        extra,
    })
}

fn weights(text: &str) -> Result<AffinityWeights, String> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|w| number(w.trim(), "--weights"))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [cache, numa, latency] => {
            AffinityWeights::new(cache, numa, latency).map_err(|e| format!("--weights: {e}"))
        }
        _ => Err(format!("--weights {text:?}: expected CACHE,NUMA,LATENCY")),
    }
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} {text:?}: not a valid number"))
}

fn usage() -> String {
    "usage: gpm-sim (--topology FILE.xml | --synthetic DESC) [--ps N] [--seed S] [--seeds N] \
     [--cost-scale X] \
     [--workload all|one-spawns-all|fork-join|skewed|server|hot-node|pipeline] [--placement compact|scatter|node:N|cpus:LIST] \
     [--weights CACHE,NUMA,LATENCY]"
        .to_owned()
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("gpm-sim: {message}");
            return ExitCode::FAILURE;
        }
    };
    let pus = match args.placement.assign(&args.machine, args.ps) {
        Ok(pus) => pus,
        Err(e) => {
            eprintln!("gpm-sim: placement: {e}");
            return ExitCode::FAILURE;
        }
    };
    let topology = StealTopology::from_topology(&args.machine, &pus).expect("placed PUs exist");
    println!(
        "{} Ps on {} ({} nodes, {} L3), placement {}, seeds {}..{}, costs x{}\n",
        args.ps,
        args.machine.source(),
        args.machine.num_nodes(),
        args.machine.num_l3(),
        args.placement,
        args.seed,
        args.seed + args.seeds - 1,
        args.cost_scale,
    );
    println!("| workload | policy | {METRIC} median (us) | vs random: median [min, max] | remote-steal ratio | vs random | success rate | tasks run off-node | tasks/s (M) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut policies: Vec<(String, StealPolicy)> = StealPolicy::ALL
        .iter()
        .map(|p| (p.name().to_owned(), *p))
        .collect();
    if let Some(w) = args.extra {
        let label = format!("affinity({},{},{})", w.cache(), w.numa(), w.latency());
        policies.push((label, StealPolicy::Affinity(w)));
    }
    let costs = CostModel::default().scaled(args.cost_scale);
    let seeds: Vec<u64> = (args.seed..args.seed + args.seeds).collect();
    for &workload in &args.workloads {
        let runs: Vec<Vec<Report>> = policies
            .iter()
            .map(|(_, policy)| {
                seeds
                    .iter()
                    .map(|&seed| simulate(&topology, *policy, workload, costs, seed))
                    .collect()
            })
            .collect();
        for ((label, _), reports) in policies.iter().zip(&runs) {
            println!("{}", row(label, reports, &runs[0]));
        }
    }
    ExitCode::SUCCESS
}

/// What the first column measures: makespan, or P99 sojourn for the open-loop workloads.
const METRIC: &str = "makespan or P99 sojourn";

/// One table row: medians over the seeds, and the spread of the per-seed ratio to random.
fn row(label: &str, reports: &[Report], random: &[Report]) -> String {
    let per_seed = |f: &dyn Fn(&Report) -> f64| -> Vec<f64> { reports.iter().map(f).collect() };
    let ratios: Vec<f64> = reports
        .iter()
        .zip(random)
        .map(|(r, base)| r.primary_ns() as f64 / base.primary_ns() as f64)
        .collect();
    let remote = median(per_seed(&|r| r.remote_steal_ratio()));
    let random_remote = median(random.iter().map(|r| r.remote_steal_ratio()).collect());
    format!(
        "| {} | {} | {:.1} | {:.3} [{:.3}, {:.3}] | {:.3} | {:.2} | {:.3} | {:.1}% | {:.2} |",
        reports[0].workload,
        label,
        median(per_seed(&|r| r.primary_ns() as f64)) / 1e3,
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
        remote,
        if random_remote > 0.0 {
            remote / random_remote
        } else {
            0.0
        },
        median(per_seed(&|r| r.success_rate())),
        100.0
            * median(per_seed(
                &|r| r.runs_by_locality[3] as f64 / r.executed as f64
            )),
        median(per_seed(&|r| r.throughput_per_s())) / 1e6,
    )
}

/// The median (the mean of the two middle values for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    gpm_bench::stats::median(&mut values)
}

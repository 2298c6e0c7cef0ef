//! `gpm-sim`: runs the work-stealing simulator (`gpm_bench::sim`) for every policy on a
//! large topology and prints a Markdown table.
//!
//! ```text
//! cargo run -p gpm-bench --release --bin gpm-sim -- \
//!     --topology numa/topologies/epyc-1s-4n-8l3.xml --ps 64 [--seed 1] \
//!     [--workload all|one-spawns-all|fork-join|skewed] [--placement compact|scatter|...] \
//!     [--weights CACHE,NUMA,LATENCY]   # adds a row: affinity with these weights
//! cargo run -p gpm-bench --release --bin gpm-sim -- --synthetic "pack:2 numa:2 l3:2 core:4 pu:2" --ps 128
//! ```

use gpm_bench::sim::{simulate, CostModel, Workload};
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
}

fn parse() -> Result<Args, String> {
    let mut machine = None;
    let mut ps = 64;
    let mut seed = 1;
    let mut workloads = Workload::ALL.to_vec();
    let mut placement = Placement::Compact;
    let mut extra = None;
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
    Ok(Args {
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
    "usage: gpm-sim (--topology FILE.xml | --synthetic DESC) [--ps N] [--seed S] \
     [--workload all|one-spawns-all|fork-join|skewed] [--placement compact|scatter|node:N|cpus:LIST] \
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
        "{} Ps on {} ({} nodes, {} L3), placement {}, seed {}\n",
        args.ps,
        args.machine.source(),
        args.machine.num_nodes(),
        args.machine.num_l3(),
        args.placement,
        args.seed
    );
    println!("| workload | policy | makespan (us) | vs random | steal attempts | success rate | remote-steal ratio | tasks run off-node |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut policies: Vec<(String, StealPolicy)> = StealPolicy::ALL
        .iter()
        .map(|p| (p.name().to_owned(), *p))
        .collect();
    if let Some(w) = args.extra {
        let label = format!("affinity({},{},{})", w.cache(), w.numa(), w.latency());
        policies.push((label, StealPolicy::Affinity(w)));
    }
    for workload in args.workloads {
        let mut random_makespan = None;
        for (label, policy) in &policies {
            let report = simulate(
                &topology,
                *policy,
                workload,
                CostModel::default(),
                args.seed,
            );
            let base = *random_makespan.get_or_insert(report.makespan_ns);
            println!(
                "| {} | {} | {:.1} | {:.3} | {} | {:.3} | {:.3} | {:.1}% |",
                report.workload,
                label,
                report.makespan_ns as f64 / 1e3,
                report.makespan_ns as f64 / base as f64,
                report.steal_attempts,
                report.success_rate(),
                report.remote_steal_ratio(),
                100.0 * report.runs_by_locality[3] as f64 / report.executed as f64,
            );
        }
    }
    ExitCode::SUCCESS
}

//! `compare`: tokio's runtime workloads ([`crate::workloads`]) on tokio and on gpm.
//!
//! # Timing loop
//!
//! `--runs` rounds each time one run per side; the side that goes first alternates from
//! round to round, so slow drift of the machine (other load, frequency, the allocator's
//! state) falls on both sides equally. The rounds are split into `--instances` blocks, and
//! each block runs on runtimes built for it (after `--warmup` untimed runs per side) and
//! dropped after it: two runtimes built alike differ for their whole life, by a few percent
//! and on `chained_spawn` by 20-30% (docs/BENCHMARKS.md, "Runtime instances"), so a
//! comparison of columns on a single instance each would measure the instances as much as
//! the columns. The table shows each side's median over all rounds and the ratio
//! `tokio / gpm` (above 1: gpm is faster), and after each ratio its 95% confidence
//! interval (`crate::stats`: a bootstrap over the blocks and the rounds within them): an
//! interval that holds 1.0 is a difference within the noise of the run.
//!
//! The busy workloads start their background load before each timed run and stop it after,
//! so the idle side is not slowed down by the other side's load.
//!
//! # Policies
//!
//! Every `--policies` entry is one gpm column (a runtime built by
//! [`RuntimeConfig::build_gpm`]; the default lists every policy). `--probes-off` adds,
//! beside each, the same policy with its probes off, and `--aa` a second runtime built
//! exactly alike: an A/A check whose ratio to the first should be 1.0 within its interval
//! (if it is not, the intervals of this run are too narrow to trust).

use super::out::{num, Output, Table};
use super::{parse_policies, policy_name, PolicyChoice, Probes, RuntimeConfig};
use crate::stats::ci95_text;
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
    /// Also run each gpm column a second time on runtimes built exactly alike, in the same
    /// rounds: an A/A check (its ratio's interval should hold 1.0).
    #[arg(long)]
    pub aa: bool,
    /// Fresh runtimes per side over the rounds: the rounds are split into this many blocks,
    /// each on runtimes built for it (two runtimes built alike differ for their whole life;
    /// blocks make that part of the noise the intervals show).
    #[arg(long, default_value_t = 5)]
    pub instances: usize,
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

/// Runs every side `warmup` times, then `runs` rounds in the orders of [`round_order`];
/// returns each side's samples.
pub fn interleave(sides: &mut [Runner], warmup: usize, runs: usize) -> Vec<Vec<Duration>> {
    for side in sides.iter_mut() {
        for _ in 0..warmup {
            side();
        }
    }
    let mut samples = vec![Vec::with_capacity(runs); sides.len()];
    for round in 0..runs {
        for i in round_order(round, sides.len()) {
            samples[i].push(sides[i]());
        }
    }
    samples
}

/// The order in which round `round` runs `n` sides: the rows of a Williams square, so that
/// over `n` rounds (`2n` for odd `n`) every side goes first equally often and runs right
/// after every other side equally often. A run pays for what the run before it left
/// behind (a runtime's threads still spinning before they park, its caches): with sides
/// simply alternating between forward and reverse order, the side placed after tokio
/// followed tokio in every other round and the others never did, and an A/A pair of
/// identical gpm columns differed by 2-5% for that alone. For two sides this is the
/// alternation 0 1, 1 0.
pub fn round_order(round: usize, n: usize) -> Vec<usize> {
    // First row 0, 1, n-1, 2, n-2, ...; row r adds r (mod n).
    let first = (0..n).map(|j| {
        if j % 2 == 1 {
            j.div_ceil(2)
        } else {
            (n - j / 2) % n
        }
    });
    let rows = if n.is_multiple_of(2) { n } else { 2 * n };
    let row = round % rows.max(1);
    let order = first.map(|side| (side + row) % n.max(1));
    // For odd n, the second n rows are the first n reversed.
    match row >= n {
        true => order.collect::<Vec<_>>().into_iter().rev().collect(),
        false => order.collect(),
    }
}

/// The samples of one side, in seconds: one block of rounds per runtime instance.
type Blocks = Vec<Vec<f64>>;

/// What a gpm side is, beside its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// As `Runtime::builder()` makes it: the column compared with tokio.
    Plain,
    /// Probes off (`--probes-off`), compared with `Plain`.
    ProbesOff,
    /// `Plain` once more (`--aa`), compared with `Plain`.
    Again,
}

impl Variant {
    fn probes(self) -> Probes {
        match self {
            Variant::ProbesOff => Probes::Off,
            Variant::Plain | Variant::Again => Probes::Default,
        }
    }

    /// The three columns of the variant for policy `p`: its median, the ratio, its interval.
    fn columns(self, p: &str) -> [String; 3] {
        let (median, ratio) = match self {
            Variant::Plain => (format!("gpm[{p}]_ms"), format!("tokio/gpm[{p}]")),
            Variant::ProbesOff => (
                format!("gpm[{p}]_probes_off_ms"),
                format!("probes_on/off[{p}]"),
            ),
            Variant::Again => (format!("gpm[{p}]_again_ms"), format!("gpm/again[{p}]")),
        };
        let interval = format!("{ratio}_ci95");
        [median, ratio, interval]
    }
}

/// The `compare` experiment.
pub fn run(args: &CompareArgs, out: &Output) -> Result<String, String> {
    let policies = parse_policies(&args.policies)?;
    let workers = args.workers.unwrap_or_else(crate::bench_workers);
    if workers == 0 || args.runs == 0 || args.instances == 0 {
        return Err("--workers, --runs and --instances must be at least 1".to_owned());
    }
    let names: Vec<String> = if args.workloads.is_empty() {
        WORKLOADS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.workloads.clone()
    };
    let variants: Vec<Variant> = [
        Some(Variant::Plain),
        args.probes_off.then_some(Variant::ProbesOff),
        args.aa.then_some(Variant::Again),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut table = Table {
        header: header(&policies, &variants),
        rows: Vec::new(),
    };
    let bar = out.progress(names.len() as u64, "compare");
    for name in &names {
        bar.set_message(name.clone());
        let sides = || build_sides(name, &policies, &variants, workers);
        let blocks = run_blocks(sides, args)?;
        table.push(row(name, &blocks, variants.len()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.csv("compare", &table)?;
    Ok(format!(
        "{workers} workers, median of {} rounds after {} warm-up runs, on {} fresh runtimes \
         per side (ratio > 1: gpm faster; _ci95: 95% interval of the ratio over the rounds \
         and the runtimes)\n{}",
        args.runs,
        args.warmup,
        args.instances.min(args.runs),
        table.render()
    ))
}

fn header(policies: &[PolicyChoice], variants: &[Variant]) -> Vec<String> {
    let mut header = vec!["workload".to_owned(), "tokio_ms".to_owned()];
    for &p in policies {
        for variant in variants {
            header.extend(variant.columns(policy_name(p)));
        }
    }
    header
}

/// tokio's side, then one gpm side per policy and variant, each on a fresh runtime.
fn build_sides(
    name: &str,
    policies: &[PolicyChoice],
    variants: &[Variant],
    workers: usize,
) -> Result<Vec<Runner>, String> {
    let mut sides = vec![runner(name, Tokio::with_workers(workers), workers)?];
    for &policy in policies {
        for variant in variants {
            // Probes as a plain runtime has them, not the lab's one task in 8 timed.
            let config = RuntimeConfig {
                policy,
                probes: variant.probes(),
                ..RuntimeConfig::new(workers)
            };
            sides.push(runner(name, Gpm(config.build_gpm()?), workers)?);
        }
    }
    Ok(sides)
}

/// `args.runs` rounds in `args.instances` blocks (as even as they divide), each block on
/// runtimes built for it by `build` and dropped after it; per side, its blocks of samples.
pub fn run_blocks(
    mut build: impl FnMut() -> Result<Vec<Runner>, String>,
    args: &CompareArgs,
) -> Result<Vec<Blocks>, String> {
    let mut per_side: Vec<Blocks> = Vec::new();
    for rounds in block_sizes(args.runs, args.instances) {
        let mut sides = build()?;
        let samples = interleave(&mut sides, args.warmup, rounds);
        per_side.resize(samples.len(), Vec::new());
        for (side, samples) in per_side.iter_mut().zip(samples) {
            side.push(samples.iter().map(Duration::as_secs_f64).collect());
        }
    }
    Ok(per_side)
}

/// How `runs` rounds split into `instances` blocks (as even as they divide; at least one
/// block, and no empty one).
pub fn block_sizes(runs: usize, instances: usize) -> Vec<usize> {
    let runs = runs.max(1);
    let blocks = instances.clamp(1, runs);
    (0..blocks)
        .map(|block| runs / blocks + usize::from(block < runs % blocks))
        .collect()
}

/// A table row: tokio's median, then per gpm column (`per_column` sides: its variants)
/// the plain side's median, `tokio / gpm` and its interval, and for each other variant its
/// median, `plain / variant` and its interval.
fn row(name: &str, sides: &[Blocks], per_column: usize) -> Vec<String> {
    let median_of = |blocks: &Blocks| crate::stats::median(&mut blocks.concat());
    let ms = |blocks: &Blocks| num(median_of(blocks) * 1e3, 3);
    let compared = |base: &Blocks, side: &Blocks| {
        let ratio = median_of(base) / median_of(side).max(1e-12);
        [ms(side), num(ratio, 2), ci95_text(base, side)]
    };
    let tokio = &sides[0];
    let mut row = vec![name.to_owned(), ms(tokio)];
    for column in sides[1..].chunks(per_column) {
        row.extend(compared(tokio, &column[0]));
        for variant in &column[1..] {
            row.extend(compared(&column[0], variant));
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

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
    fn every_side_follows_every_other_equally_often_within_the_rounds() {
        for n in 1..=7usize {
            let rows = if n.is_multiple_of(2) { n } else { 2 * n };
            let mut follows = vec![vec![0; n]; n];
            let mut first = vec![0; n];
            for round in 0..rows {
                let order = round_order(round, n);
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "n {n}: a permutation");
                first[order[0]] += 1;
                for pair in order.windows(2) {
                    follows[pair[0]][pair[1]] += 1;
                }
            }
            assert!(first.iter().all(|&f| f == rows / n), "n {n}: {first:?}");
            let off_diagonal =
                (0..n).flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)));
            let counts: Vec<usize> = off_diagonal.map(|(a, b)| follows[a][b]).collect();
            assert!(counts.iter().all(|&c| c == counts[0]), "n {n}: {follows:?}");
        }
    }

    #[test]
    fn blocks_are_as_even_as_the_rounds_divide_and_never_empty() {
        assert_eq!(block_sizes(11, 3), vec![4, 4, 3]);
        assert_eq!(block_sizes(2, 5), vec![1, 1]);
        assert_eq!(block_sizes(0, 0), vec![1]);
        assert_eq!(block_sizes(15, 1), vec![15]);
    }

    #[test]
    fn the_rounds_are_split_over_fresh_runtimes_for_every_side() {
        let builds = Rc::new(RefCell::new(0u64));
        let build = || -> Result<Vec<Runner>, String> {
            *builds.borrow_mut() += 1;
            let instance = *builds.borrow();
            let side =
                |id: u64| -> Runner { Box::new(move || Duration::from_millis(10 * instance + id)) };
            Ok(vec![side(0), side(1)])
        };
        let args = CompareArgs {
            runs: 11,
            warmup: 2,
            workers: None,
            workloads: Vec::new(),
            policies: "default".to_owned(),
            probes_off: false,
            aa: false,
            instances: 3,
        };
        let sides = run_blocks(build, &args).unwrap();
        assert_eq!(*builds.borrow(), 3);
        let sizes: Vec<usize> = sides[1].iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![4, 4, 3]);
        // Block 2 ran on the second build's runtimes only.
        assert!(sides[1][1].iter().all(|&s| s == 0.021), "{:?}", sides[1]);
        let more_instances_than_runs = CompareArgs {
            runs: 2,
            instances: 5,
            ..args
        };
        let sides = run_blocks(
            || Ok(vec![Box::new(|| Duration::ZERO) as Runner]),
            &more_instances_than_runs,
        )
        .unwrap();
        assert_eq!(sides[0].len(), 2, "one block per round at most");
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

//! `gpm-topo`: print a topology at a glance.
//!
//! ```text
//! gpm-topo                        # this machine
//! gpm-topo --synthetic "<desc>"   # hwloc synthetic description
//! gpm-topo --xml FILE             # hwloc XML file
//!          [--place SPEC [--ps N]]  # also show a placement (compact, scatter,
//!                                   # node:N, cpus:LIST) of N Ps (default: all PUs)
//! ```
//!
//! Bad input prints the error and exits with status 2.

use std::fmt::Write as _;
use std::process::ExitCode;

use gpm_numa::{format_list, CacheLevel, DistanceSource, Placement, Topology};

const USAGE: &str = "usage: gpm-topo [--synthetic DESC | --xml FILE] [--place SPEC [--ps N]]
  SPEC: compact | scatter | node:N | cpus:LIST (e.g. cpus:0-3,8)";

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    synthetic: Option<String>,
    xml: Option<String>,
    place: Option<Placement>,
    ps: Option<usize>,
}

fn main() -> ExitCode {
    match run() {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("gpm-topo: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<String, String> {
    let args = parse_args(std::env::args().skip(1))?;
    let topo = match (&args.synthetic, &args.xml) {
        (Some(_), Some(_)) => return Err(format!("give --synthetic or --xml, not both\n{USAGE}")),
        (Some(desc), None) => Topology::from_synthetic(desc),
        (None, Some(path)) => Topology::from_xml_file(path),
        (None, None) => Topology::detect(),
    }
    .map_err(|e| e.to_string())?;
    let mut out = summary(&topo);
    if let Some(place) = &args.place {
        let n = args.ps.unwrap_or(topo.num_pus());
        let pus = place.assign(&topo, n).map_err(|e| e.to_string())?;
        out.push_str(&placement_table(&topo, place, &pus));
    }
    Ok(out)
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    while let Some(flag) = argv.next() {
        let mut value = || {
            argv.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--synthetic" => args.synthetic = Some(value()?),
            "--xml" => args.xml = Some(value()?),
            "--place" => args.place = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--ps" => {
                let text = value()?;
                let n = text
                    .parse()
                    .map_err(|_| format!("--ps needs a number, got {text:?}"))?;
                args.ps = Some(n);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.ps.is_some() && args.place.is_none() {
        return Err(format!("--ps needs --place\n{USAGE}"));
    }
    Ok(args)
}

/// Header, one block per node with its L3 groups, then the distance table.
fn summary(topo: &Topology) -> String {
    let mut out = String::new();
    let (level, note) = level_name(topo.cache_level());
    let _ = writeln!(out, "{}", topo.source());
    let _ = writeln!(
        out,
        "{} package(s), {} NUMA node(s), {} {level} domain(s){note}, {} core(s), {} PU(s): {}",
        topo.num_packages(),
        topo.num_nodes(),
        topo.num_l3(),
        topo.num_cores(),
        topo.num_pus(),
        format_list(&topo.pu_ids())
    );
    let mut spanning = Vec::new();
    for (index, node) in topo.nodes().iter().enumerate() {
        let os = if node.os_index == index {
            String::new()
        } else {
            format!(" (os {})", node.os_index)
        };
        let _ = writeln!(
            out,
            "node {index}{os}: {:>9}  PUs {}",
            human_bytes(node.memory_bytes),
            format_list(&node.pus)
        );
        for (l3, domain) in topo.l3_domains().iter().enumerate() {
            let first_node = domain.pus.first().and_then(|&pu| topo.node_of(pu).ok());
            let inside = domain.pus.iter().all(|pu| node.pus.contains(pu));
            if inside && first_node == Some(index) {
                let _ = writeln!(out, "  {}", domain_line(level, l3, domain));
            } else if !inside && first_node == Some(index) {
                spanning.push(l3);
            }
        }
    }
    for l3 in spanning {
        let domain = &topo.l3_domains()[l3];
        let _ = writeln!(out, "{} (spans nodes)", domain_line(level, l3, domain));
    }
    out.push_str(&distance_table(topo));
    out
}

fn domain_line(level: &str, index: usize, domain: &gpm_numa::CacheDomain) -> String {
    let size = domain
        .size_bytes
        .map(|b| format!(" ({})", human_bytes(b)))
        .unwrap_or_default();
    format!("{level} {index}{size}: {}", format_list(&domain.pus))
}

/// Short name of the cache-domain level, and a note when it is a fallback.
fn level_name(level: CacheLevel) -> (&'static str, &'static str) {
    match level {
        CacheLevel::L3 => ("L3", ""),
        CacheLevel::L2 => ("L2", " (no L3)"),
        CacheLevel::L1 => ("L1", " (no L3)"),
        CacheLevel::Package => ("package", " (no shared cache)"),
        _ => ("machine", " (no shared cache)"),
    }
}

fn distance_table(topo: &Topology) -> String {
    let n = topo.num_nodes();
    let width = topo
        .distances()
        .iter()
        .map(|d| d.to_string().len())
        .chain([n.to_string().len()])
        .max()
        .unwrap_or(2)
        + 1;
    let source = match topo.distance_source() {
        DistanceSource::Hwloc => "from hwloc",
        DistanceSource::Sysfs => "from sysfs",
        _ => "default: 10 local, 20 same package, 32 other package",
    };
    let mut out = format!("distances ({source}):\n{:>5}", "");
    for b in 0..n {
        let _ = write!(out, "{b:>width$}");
    }
    out.push('\n');
    for a in 0..n {
        let _ = write!(out, "{a:>5}");
        for d in &topo.distances()[a * n..(a + 1) * n] {
            let _ = write!(out, "{d:>width$}");
        }
        out.push('\n');
    }
    out
}

fn placement_table(topo: &Topology, place: &Placement, pus: &[usize]) -> String {
    let mut out = format!("placement {place} of {} P(s):\n", pus.len());
    for (p, &pu) in pus.iter().enumerate() {
        let node = topo
            .node_of(pu)
            .map_or(String::from("?"), |n| n.to_string());
        let l3 = topo.l3_of(pu).map_or(String::from("?"), |n| n.to_string());
        let _ = writeln!(out, "  P{p:<3} -> PU {pu:<4} node {node:<3} L3 {l3}");
    }
    out
}

/// `103079215104` -> `96 GiB`, `16777216` -> `16 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags() {
        let a = args(&[
            "--synthetic",
            "pack:2 pu:2",
            "--place",
            "node:1",
            "--ps",
            "3",
        ])
        .unwrap();
        assert_eq!(a.synthetic.as_deref(), Some("pack:2 pu:2"));
        assert_eq!(a.place, Some(Placement::Node(1)));
        assert_eq!(a.ps, Some(3));
        assert!(args(&["--xml"])
            .unwrap_err()
            .contains("--xml needs a value"));
        assert!(args(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(args(&["--ps", "2"]).is_err());
        assert!(args(&["--place", "spread"]).unwrap_err().contains("spread"));
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(103_079_215_104), "96 GiB");
        assert_eq!(human_bytes(4_389_556_224), "4.1 GiB");
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(0), "0 B");
    }

    #[test]
    fn summary_lists_nodes_l3_and_distances() {
        let topo = Topology::from_synthetic("pack:2 [numa(memory=1GiB)] l3:2 core:2 pu:1").unwrap();
        let text = summary(&topo);
        assert!(text.contains("node 0:     1 GiB  PUs 0-3"), "{text}");
        assert!(text.contains("\n  L3 1 (16 MiB): 2-3\n"), "{text}");
        assert!(text.contains("\n    0 10 32\n    1 32 10\n"), "{text}");
    }
}

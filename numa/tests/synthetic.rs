//! Every description of `topologies/synthetic.txt`, against hand-computed
//! expectations.

mod common;

use common::{check_invariants, l3_lists, node_lists, topologies_dir};
use gpm_numa::{CacheLevel, DistanceSource, Placement, Topology};

/// What one synthetic description must produce.
struct Expect {
    desc: &'static str,
    packages: usize,
    cores: usize,
    pus: usize,
    level: CacheLevel,
    nodes: &'static [&'static str],
    l3: &'static [&'static str],
    distances: &'static [u32],
}

/// 4 nodes, two per package: the default matrix.
const FOUR_NODES_TWO_PACKAGES: &[u32] = &[
    10, 20, 32, 32, //
    20, 10, 32, 32, //
    32, 32, 10, 20, //
    32, 32, 20, 10,
];

const EXPECTED: &[Expect] = &[
    Expect {
        desc: "pack:2 numa:2 l3:2 core:4 pu:2",
        packages: 2,
        cores: 32,
        pus: 64,
        level: CacheLevel::L3,
        nodes: &["0-15", "16-31", "32-47", "48-63"],
        l3: &[
            "0-7", "8-15", "16-23", "24-31", "32-39", "40-47", "48-55", "56-63",
        ],
        distances: FOUR_NODES_TWO_PACKAGES,
    },
    Expect {
        desc: "pack:2 l3:2 [numa(memory=2GiB)] core:4 pu:2",
        packages: 2,
        cores: 16,
        pus: 32,
        level: CacheLevel::L3,
        nodes: &["0-7", "8-15", "16-23", "24-31"],
        l3: &["0-7", "8-15", "16-23", "24-31"],
        distances: FOUR_NODES_TWO_PACKAGES,
    },
    Expect {
        desc: "pack:2 l3:1 numa:2 core:4 pu:2",
        packages: 2,
        cores: 16,
        pus: 32,
        level: CacheLevel::L3,
        nodes: &["0-7", "8-15", "16-23", "24-31"],
        l3: &["0-15", "16-31"],
        distances: FOUR_NODES_TWO_PACKAGES,
    },
    Expect {
        desc: "pack:2 [numa(memory=96GiB)] l3:1(size=22MiB) core:16 pu:2(indexes=2*32:1*2)",
        packages: 2,
        cores: 32,
        pus: 64,
        level: CacheLevel::L3,
        nodes: &["0-15,32-47", "16-31,48-63"],
        l3: &["0-15,32-47", "16-31,48-63"],
        distances: &[10, 32, 32, 10],
    },
    Expect {
        desc: "pack:1 l3:1 core:2 pu:1",
        packages: 1,
        cores: 2,
        pus: 2,
        level: CacheLevel::L3,
        nodes: &["0-1"],
        l3: &["0-1"],
        distances: &[10],
    },
    Expect {
        desc: "pack:2 l2:2 core:2 pu:2",
        packages: 2,
        cores: 8,
        pus: 16,
        level: CacheLevel::L2,
        nodes: &["0-15"],
        l3: &["0-3", "4-7", "8-11", "12-15"],
        distances: &[10],
    },
    Expect {
        desc: "pack:2 core:4 pu:2",
        packages: 2,
        cores: 8,
        pus: 16,
        level: CacheLevel::Package,
        nodes: &["0-15"],
        l3: &["0-7", "8-15"],
        distances: &[10],
    },
    Expect {
        desc: "core:4 pu:1",
        packages: 1,
        cores: 4,
        pus: 4,
        level: CacheLevel::Machine,
        nodes: &["0-3"],
        l3: &["0-3"],
        distances: &[10],
    },
];

/// The descriptions of `synthetic.txt` (text before `#`, blank lines and
/// comment-only lines skipped).
fn shipped_descriptions() -> Vec<String> {
    let text = std::fs::read_to_string(topologies_dir().join("synthetic.txt")).unwrap();
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim().to_string())
        .filter(|desc| !desc.is_empty())
        .collect()
}

fn expectation(desc: &str) -> &'static Expect {
    EXPECTED
        .iter()
        .find(|e| e.desc == desc)
        .unwrap_or_else(|| panic!("synthetic.txt line {desc:?} has no expectation in this test"))
}

#[test]
fn every_shipped_description_matches_its_expectation() {
    let descs = shipped_descriptions();
    assert_eq!(descs.len(), EXPECTED.len(), "one expectation per line");
    for desc in &descs {
        let want = expectation(desc);
        let topo = Topology::from_synthetic(desc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(topo.num_packages(), want.packages, "{desc}: packages");
        assert_eq!(topo.num_cores(), want.cores, "{desc}: cores");
        assert_eq!(topo.num_pus(), want.pus, "{desc}: PUs");
        assert_eq!(topo.num_nodes(), want.nodes.len(), "{desc}: nodes");
        assert_eq!(topo.num_l3(), want.l3.len(), "{desc}: L3 domains");
        assert_eq!(topo.cache_level(), want.level, "{desc}: cache level");
        assert_eq!(node_lists(&topo), want.nodes, "{desc}: node PUs");
        assert_eq!(l3_lists(&topo), want.l3, "{desc}: L3 groups");
        assert_eq!(topo.distances(), want.distances, "{desc}: distances");
        assert_eq!(topo.distance_source(), DistanceSource::Default, "{desc}");
        assert!(!topo.is_this_system(), "{desc}");
        check_invariants(&topo);
    }
}

#[test]
fn four_node_machine_queries_and_placements() {
    let topo = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap();
    assert_eq!(topo.node_of(17).unwrap(), 1);
    assert_eq!(topo.l3_of(9).unwrap(), 1);
    assert!(topo.shares_l3(8, 15).unwrap());
    assert!(!topo.shares_l3(7, 8).unwrap());
    assert_eq!(topo.distance(1, 0).unwrap(), 20);
    assert_eq!(topo.distance(1, 3).unwrap(), 32);
    assert_eq!(topo.pus_of_node(2).unwrap(), (32..48).collect::<Vec<_>>());
    assert_eq!(topo.core_of(0).unwrap(), topo.core_of(1).unwrap());
    assert_ne!(topo.core_of(1).unwrap(), topo.core_of(2).unwrap());
    assert_eq!(
        (topo.package_of(31).unwrap(), topo.package_of(32).unwrap()),
        (0, 1)
    );

    // Compact: first thread of each core first (PUs 2c), siblings after.
    let compact = Placement::Compact.assign(&topo, 66).unwrap();
    assert_eq!(&compact[..4], &[0, 2, 4, 6]);
    assert_eq!(&compact[31..34], &[62, 1, 3]);
    assert_eq!(&compact[64..], &[0, 2], "wraps around after 64 PUs");
    assert_eq!(
        Placement::ScatterNodes.assign(&topo, 6).unwrap(),
        vec![0, 16, 32, 48, 2, 18]
    );
    assert_eq!(
        Placement::Node(2).assign(&topo, 3).unwrap(),
        vec![32, 34, 36]
    );
    assert_eq!(
        Placement::Cpus(vec![5, 9]).assign(&topo, 3).unwrap(),
        vec![5, 9, 5]
    );
    assert!(Placement::Compact.assign(&topo, 0).unwrap().is_empty());
}

#[test]
fn node_memory_comes_from_the_description() {
    let topo = Topology::from_synthetic("pack:2 l3:2 [numa(memory=2GiB)] core:4 pu:2").unwrap();
    assert!(topo.nodes().iter().all(|n| n.memory_bytes == 2 << 30));
    let xeon = Topology::from_synthetic(
        "pack:2 [numa(memory=96GiB)] l3:1(size=22MiB) core:16 pu:2(indexes=2*32:1*2)",
    )
    .unwrap();
    assert!(xeon.nodes().iter().all(|n| n.memory_bytes == 96 << 30));
    assert_eq!(xeon.l3_domains()[0].size_bytes, Some(22 << 20));
    // SMT siblings are n and n+32 with Linux numbering.
    assert_eq!(xeon.cores()[5].pus, vec![5, 37]);
}

#[test]
fn sub_numa_clusters_share_l3_across_nodes() {
    let topo = Topology::from_synthetic("pack:2 l3:1 numa:2 core:4 pu:2").unwrap();
    assert_ne!(topo.node_of(0).unwrap(), topo.node_of(8).unwrap());
    assert!(topo.shares_l3(0, 8).unwrap());
    assert!(!topo.shares_l3(0, 16).unwrap());
}

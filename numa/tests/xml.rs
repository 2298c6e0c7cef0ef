//! The shipped XML topologies (real multi-node machines) and XML input errors.

mod common;

use common::{check_invariants, l3_lists, node_lists, topologies_dir};
use gpm_numa::{CacheLevel, DistanceSource, Error, Placement, Source, Topology};

fn load(name: &str) -> Topology {
    let path = topologies_dir().join(name);
    Topology::from_xml_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Every node has `memory_bytes` of memory and every L3 domain `l3_bytes` of cache.
#[track_caller]
fn assert_sizes(topo: &Topology, memory_bytes: u64, l3_bytes: u64) {
    assert!(topo.nodes().iter().all(|n| n.memory_bytes == memory_bytes));
    assert!(topo
        .l3_domains()
        .iter()
        .all(|d| d.size_bytes == Some(l3_bytes)));
}

#[test]
fn xeon_two_sockets_two_nodes() {
    let topo = load("xeon-2s-2n.xml");
    assert!(matches!(topo.source(), Source::XmlFile(p) if p.ends_with("xeon-2s-2n.xml")));
    assert!(!topo.is_this_system());
    assert_eq!(
        (topo.num_packages(), topo.num_nodes(), topo.num_l3()),
        (2, 2, 2)
    );
    assert_eq!((topo.num_cores(), topo.num_pus()), (32, 64));
    assert_eq!(topo.cache_level(), CacheLevel::L3);
    assert_eq!(node_lists(&topo), ["0-15,32-47", "16-31,48-63"]);
    assert_eq!(l3_lists(&topo), ["0-15,32-47", "16-31,48-63"]);
    assert_sizes(&topo, 96 << 30, 22 << 20);

    assert_eq!(topo.distance_source(), DistanceSource::Hwloc);
    assert_eq!(topo.distances(), [10, 21, 21, 10]);
    assert_eq!(topo.distance(1, 0).unwrap(), 21);

    assert_eq!(topo.node_of(47).unwrap(), 0);
    assert_eq!(topo.node_of(48).unwrap(), 1);
    assert!(topo.shares_l3(0, 32).unwrap());
    assert!(!topo.shares_l3(15, 16).unwrap());
    assert_eq!(topo.core_of(3).unwrap(), topo.core_of(35).unwrap());

    assert_eq!(
        Placement::Compact.assign(&topo, 33).unwrap(),
        (0..33).collect::<Vec<_>>(),
        "one P per core (0-31) before the first sibling (32)"
    );
    assert_eq!(
        Placement::ScatterNodes.assign(&topo, 4).unwrap(),
        [0, 16, 1, 17]
    );
    assert_eq!(
        Placement::Node(1).assign(&topo, 18).unwrap()[15..],
        [31, 48, 49]
    );
    check_invariants(&topo);
}

#[test]
fn epyc_one_socket_four_nodes_eight_l3() {
    let topo = load("epyc-1s-4n-8l3.xml");
    assert_eq!(
        (topo.num_packages(), topo.num_nodes(), topo.num_l3()),
        (1, 4, 8)
    );
    assert_eq!((topo.num_cores(), topo.num_pus()), (32, 64));
    assert_eq!(
        node_lists(&topo),
        ["0-7,32-39", "8-15,40-47", "16-23,48-55", "24-31,56-63"]
    );
    assert_eq!(
        l3_lists(&topo),
        [
            "0-3,32-35",
            "4-7,36-39",
            "8-11,40-43",
            "12-15,44-47",
            "16-19,48-51",
            "20-23,52-55",
            "24-27,56-59",
            "28-31,60-63"
        ]
    );
    assert_sizes(&topo, 32 << 30, 16 << 20);

    assert_eq!(topo.distance_source(), DistanceSource::Hwloc);
    #[rustfmt::skip]
    let expected = [
        10, 11, 12, 12,
        11, 10, 12, 12,
        12, 12, 10, 11,
        12, 12, 11, 10,
    ];
    assert_eq!(topo.distances(), expected);
    assert_eq!(topo.distance(2, 3).unwrap(), 11);
    assert_eq!(topo.distance(0, 3).unwrap(), 12);

    assert_eq!(topo.node_of(40).unwrap(), 1);
    assert_eq!(topo.l3_of(36).unwrap(), 1);
    assert!(topo.shares_l3(4, 39).unwrap());
    assert!(!topo.shares_l3(3, 4).unwrap(), "same node, different CCX");

    assert_eq!(
        Placement::ScatterNodes.assign(&topo, 8).unwrap(),
        [0, 8, 16, 24, 1, 9, 17, 25]
    );
    assert_eq!(
        Placement::Compact.assign(&topo, 8).unwrap(),
        (0..8).collect::<Vec<_>>()
    );
    assert_eq!(
        Placement::Node(3).assign(&topo, 10).unwrap(),
        [24, 25, 26, 27, 28, 29, 30, 31, 56, 57]
    );
    assert_eq!(
        Placement::Cpus(vec![63, 0]).assign(&topo, 3).unwrap(),
        [63, 0, 63]
    );
    check_invariants(&topo);
}

#[test]
fn xml_file_and_xml_string_give_the_same_model() {
    let path = topologies_dir().join("epyc-1s-4n-8l3.xml");
    let from_file = Topology::from_xml_file(&path).unwrap();
    let from_str = Topology::from_xml_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(from_file, from_str);
    assert_eq!(from_str.source(), &Source::XmlString);
}

#[test]
fn synthetic_defaults_survive_the_xml_round_trip() {
    let topo = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap();
    assert_eq!(topo.distance_source(), DistanceSource::Default);
    let back = Topology::from_xml_str(&topo.export_xml().unwrap()).unwrap();
    assert_eq!(back, topo);
    assert_eq!(
        back.distance_source(),
        DistanceSource::Hwloc,
        "carried by the XML"
    );
    assert_eq!(back.distance(0, 2).unwrap(), 32);
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("gpm-numa-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

fn assert_xml_file_error(path: &std::path::Path) {
    let err = Topology::from_xml_file(path).unwrap_err();
    assert!(
        matches!(&err, Error::XmlFile { path: p, .. } if p == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn missing_truncated_and_non_xml_files_are_errors() {
    assert_xml_file_error(&topologies_dir().join("no-such-machine.xml"));
    assert_xml_file_error(&topologies_dir());

    let full = std::fs::read(topologies_dir().join("xeon-2s-2n.xml")).unwrap();
    for (name, contents) in [
        ("half.xml", &full[..full.len() / 2]),
        ("cut-end.xml", &full[..full.len() - 20]),
        ("not-xml.xml", b"pack:2 core:2 pu:2\n".as_slice()),
        ("empty.xml", b"".as_slice()),
        ("binary.xml", b"\xff\xfe\x00garbage".as_slice()),
    ] {
        let path = temp_file(name, contents);
        assert_xml_file_error(&path);
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn malformed_xml_strings_are_errors_quoting_the_input() {
    let full = std::fs::read_to_string(topologies_dir().join("epyc-1s-4n-8l3.xml")).unwrap();
    for text in [
        "this is not XML",
        "<topology version=\"2.0\"></topology>",
        &full[..full.len() / 3],
    ] {
        let err = Topology::from_xml_str(text).unwrap_err();
        assert!(matches!(err, Error::XmlParse { .. }), "{err:?}");
        let start: String = text.chars().take(15).collect();
        assert!(err.to_string().contains(&start), "{err}");
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use gpm_numa::{format_list, Placement, Topology};

/// `numa/topologies/`.
pub(crate) fn topologies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("topologies")
}

/// The PUs of every node, as cpulists.
pub(crate) fn node_lists(topo: &Topology) -> Vec<String> {
    topo.nodes().iter().map(|n| format_list(&n.pus)).collect()
}

/// The PUs of every L3 domain, as cpulists.
pub(crate) fn l3_lists(topo: &Topology) -> Vec<String> {
    topo.l3_domains()
        .iter()
        .map(|d| format_list(&d.pus))
        .collect()
}

/// Checks the model's invariants: cores and L3 domains partition the PUs,
/// every query agrees with the lists, the distance matrix is square with the
/// smallest value of each row on the diagonal, compact order is a
/// permutation, and the XML round trip gives back the same model.
pub(crate) fn check_invariants(topo: &Topology) {
    let mut pus = topo.pu_ids();
    assert!(!pus.is_empty());
    assert!(pus.windows(2).all(|w| w[0] < w[1]), "PUs sorted and unique");

    let mut from_cores: Vec<usize> = topo.cores().iter().flat_map(|c| c.pus.clone()).collect();
    from_cores.sort_unstable();
    assert_eq!(from_cores, pus, "cores partition the PUs");
    let mut from_l3: Vec<usize> = topo
        .l3_domains()
        .iter()
        .flat_map(|d| d.pus.clone())
        .collect();
    from_l3.sort_unstable();
    assert_eq!(from_l3, pus, "L3 domains partition the PUs");

    for pu in topo.pus() {
        assert!(topo.cores()[pu.core].pus.contains(&pu.os));
        assert!(topo.l3_domains()[pu.l3].pus.contains(&pu.os));
        assert!(topo.pus_of_node(pu.node).unwrap().contains(&pu.os));
        assert!(pu.package < topo.num_packages());
        assert_eq!(topo.node_of(pu.os).unwrap(), pu.node);
        assert_eq!(topo.l3_of(pu.os).unwrap(), pu.l3);
        assert!(topo.shares_l3(pu.os, pu.os).unwrap());
    }

    let n = topo.num_nodes();
    assert_eq!(topo.distances().len(), n * n);
    for a in 0..n {
        for b in 0..n {
            assert!(topo.distance(a, a).unwrap() <= topo.distance(a, b).unwrap());
        }
    }

    let mut compact = topo.compact_order();
    compact.sort_unstable();
    assert_eq!(compact, pus, "compact order is a permutation of the PUs");
    let mut all = Placement::Compact.assign(topo, topo.num_pus()).unwrap();
    all.sort_unstable();
    pus.dedup();
    assert_eq!(all, pus, "compact placement of one P per PU uses every PU");

    let xml = topo.export_xml().unwrap();
    let back = Topology::from_xml_str(&xml).unwrap();
    assert_eq!(
        &back, topo,
        "export_xml -> from_xml_str preserves the model"
    );
    assert_eq!(back.distances(), topo.distances());
}

//! Every kind of bad input gives the right `Error` variant, whose message
//! names the input, and never a panic.

use gpm_numa::{node_of_address, pin_current_thread, Error, NodeMemory, Placement, Topology};

fn four_nodes() -> Topology {
    Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap()
}

#[test]
fn malformed_synthetic_strings_name_the_input() {
    for desc in [
        "pack:2 bogus:3 pu:2",
        "pack:0 pu:1",
        "pack:2 core:x pu:2",
        "",
        "numa:2 pu:2 core:2 oops",
        "pack:2\0pu:2",
    ] {
        let err = Topology::from_synthetic(desc).unwrap_err();
        assert!(
            matches!(&err, Error::Synthetic { input, .. } if input == desc),
            "{desc:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{desc:?}")),
            "message names {desc:?}: {err}"
        );
    }
}

#[test]
fn pu_out_of_range_in_every_query() {
    let topo = four_nodes();
    let errors = [
        topo.node_of(4096).unwrap_err(),
        topo.l3_of(4096).unwrap_err(),
        topo.core_of(4096).unwrap_err(),
        topo.package_of(4096).unwrap_err(),
        topo.shares_l3(0, 4096).unwrap_err(),
        topo.shares_l3(4096, 0).unwrap_err(),
        topo.pu(64).map(|_| ()).unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::PuOutOfRange { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("4096") || text.contains("PU 64 "), "{text}");
        assert!(text.contains("0-63"), "lists the PUs there are: {text}");
    }
    assert!(!topo.has_pu(64));
}

#[test]
fn node_out_of_range_in_every_query() {
    let topo = four_nodes();
    let errors = [
        topo.distance(0, 9).unwrap_err(),
        topo.distance(9, 0).unwrap_err(),
        topo.pus_of_node(9).map(|_| ()).unwrap_err(),
        Placement::Node(9).assign(&topo, 1).unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(err, Error::NodeOutOfRange { node: 9, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("node 9") && text.contains("0-3"), "{text}");
    }
}

#[test]
fn bad_placements() {
    let topo = four_nodes();
    assert_eq!(
        Placement::Cpus(vec![]).assign(&topo, 4).unwrap_err(),
        Error::EmptyCpuList
    );
    let err = Placement::Cpus(vec![0, 999]).assign(&topo, 1).unwrap_err();
    assert!(
        matches!(err, Error::PuOutOfRange { pu: 999, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("999"));
    let err = "cpus:0-".parse::<Placement>().unwrap_err();
    assert!(matches!(err, Error::PlacementSpec { .. }));
    assert!(err.to_string().contains("cpus:0-"), "{err}");
}

#[test]
fn pin_to_an_impossible_pu() {
    for pu in [4096, usize::MAX] {
        let err = std::thread::spawn(move || pin_current_thread(pu))
            .join()
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, Error::Pin { pu: p, .. } if p == pu),
            "{err:?}"
        );
        assert!(err.to_string().contains(&pu.to_string()), "{err}");
    }
}

#[test]
fn node_memory_on_a_missing_node() {
    let err = NodeMemory::map(4096, 4096).unwrap_err();
    assert!(
        matches!(err, Error::NodeOutOfRange { node: 4096, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("4096"), "{err}");
}

#[test]
fn node_of_an_unmapped_address() {
    let err = node_of_address(std::ptr::null()).unwrap_err();
    assert!(matches!(err, Error::Memory { .. }), "{err:?}");
    assert!(err.to_string().contains("0x0"), "names the address: {err}");
}

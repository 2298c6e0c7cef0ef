//! The `gpm-topo` binary on the three sources and on bad input.

use std::process::{Command, Output};

fn gpm_topo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpm-topo"))
        .args(args)
        .env_remove("HWLOC_XMLFILE")
        .env_remove("HWLOC_SYNTHETIC")
        .output()
        .unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = gpm_topo(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn topology(name: &str) -> String {
    format!("{}/topologies/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn prints_an_xml_machine() {
    let text = stdout_of(&["--xml", &topology("epyc-1s-4n-8l3.xml")]);
    for line in [
        "1 package(s), 4 NUMA node(s), 8 L3 domain(s), 32 core(s), 64 PU(s): 0-63",
        "node 2:    32 GiB  PUs 16-23,48-55",
        "  L3 5 (16 MiB): 20-23,52-55",
        "distances (from hwloc):",
        "    0 10 11 12 12",
        "    3 12 12 11 10",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[test]
fn prints_a_synthetic_machine_and_a_placement() {
    let text = stdout_of(&[
        "--synthetic",
        "pack:2 l3:1 numa:2 core:4 pu:2",
        "--place",
        "scatter",
        "--ps",
        "5",
    ]);
    assert!(text.contains("L3 0 (16 MiB): 0-15 (spans nodes)"), "{text}");
    assert!(text.contains("distances (default: 10 local"), "{text}");
    assert!(text.contains("placement scatter of 5 P(s):"), "{text}");
    assert!(text.contains("P4   -> PU 2    node 0"), "{text}");
}

#[test]
fn prints_this_machine() {
    let text = stdout_of(&[]);
    assert!(text.starts_with("this machine\n"), "{text}");
    assert!(text.contains("\nnode 0"), "{text}");
    assert!(text.contains("distances ("), "{text}");
}

#[test]
fn bad_input_exits_2_with_the_error() {
    for (args, needle) in [
        (vec!["--synthetic", "pack:2 bogus:9"], "pack:2 bogus:9"),
        (vec!["--xml", "/no/such/file.xml"], "/no/such/file.xml"),
        (
            vec!["--xml", env!("CARGO_MANIFEST_DIR")],
            env!("CARGO_MANIFEST_DIR"),
        ),
        (vec!["--frobnicate"], "--frobnicate"),
        (vec!["--xml"], "--xml needs a value"),
        (vec!["--place", "node:7"], "NUMA node 7"),
    ] {
        let out = gpm_topo(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

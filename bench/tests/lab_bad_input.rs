//! The lab's experiments refuse a count of zero runtime instances (or runs) with an error
//! that names the flag, before they build anything.

use gpm_bench::lab::compare::{self, CompareArgs};
use gpm_bench::lab::out::Output;
use gpm_bench::lab::policies::{self, PoliciesArgs};

fn output(name: &str) -> (Output, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("gpm-lab-{name}-{}", std::process::id()));
    (Output::create(&dir, false).unwrap(), dir)
}

#[test]
fn compare_refuses_zero_instances_or_runs() {
    let (out, dir) = output("compare");
    let args = CompareArgs {
        runs: 3,
        warmup: 0,
        workers: Some(1),
        workloads: vec!["yield_many".to_owned()],
        policies: "default".to_owned(),
        probes_off: false,
        aa: false,
        instances: 0,
    };
    let err = compare::run(&args, &out).unwrap_err();
    assert!(err.contains("--instances must be at least 1"), "{err}");
    let no_runs = CompareArgs {
        runs: 0,
        instances: 1,
        ..args
    };
    let err = compare::run(&no_runs, &out).unwrap_err();
    assert!(err.contains("--runs"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn policies_refuses_zero_instances() {
    let (out, dir) = output("policies");
    let args = PoliciesArgs {
        workers: Some(2),
        policies: "default".into(),
        workloads: "tree".into(),
        service_us: 5,
        tasks: 10,
        depth: 3,
        runs: 2,
        instances: 0,
        simulate: false,
        sim_seeds: 1,
    };
    let err = policies::run(&args, &out).unwrap_err();
    assert!(err.contains("--instances must be positive"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

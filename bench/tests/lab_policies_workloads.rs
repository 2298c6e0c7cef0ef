//! The lab's own `policies` workloads (`skewed`, `tree`) run every task on a gpm runtime,
//! with consistent steal counters and a CPU share the machine can give. In a process of its
//! own, and the only test here: `cpu_per_wall` is the process's CPU time over the run's
//! wall time, so any other test running beside it in the same process (a unit test of the
//! lib) would add its threads' CPU time and could push the share past the CPUs there are.

use gpm_bench::lab::available_cpus;
use gpm_bench::lab::policies::{run_policy, PoliciesArgs};
use std::time::Duration;

#[test]
fn the_lab_workloads_complete_every_task() {
    let args = PoliciesArgs::smoke();
    for name in ["skewed", "tree"] {
        let r = run_policy(name, None, 2, &args).unwrap();
        let (p50, p99) = (r.p50_s.unwrap(), r.p99_s.unwrap());
        assert!(r.makespan > Duration::ZERO && p99 >= p50, "{name}: {r:?}");
        assert!(p50 >= 5e-6, "{name}: every task burns 5 us: {r:?}");
        assert!(r.steals.is_consistent(), "{name}: {r:?}");
        // The run used some CPU, and no more than the machine has.
        let cpus = available_cpus() as f64;
        assert!(
            r.cpu_per_wall > 0.0 && r.cpu_per_wall <= cpus * 1.05,
            "{r:?}"
        );
        // Two Ps: the busier ran at least half of the tasks.
        assert!((0.5..=1.0).contains(&r.busiest_p_share), "{r:?}");
    }
    let r = run_policy("skewed", None, 2, &args).unwrap();
    assert_eq!(r.tasks_run, 2 * 200, "two runs of 200 tasks");
}

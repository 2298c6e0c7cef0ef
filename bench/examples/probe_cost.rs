//! Instruction counts of the probes (run under callgrind, which counts instructions, not
//! time, so the result does not depend on what else the machine is doing):
//!
//! ```sh
//! cargo build --release -p gpm-bench --example probe_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/probe_cost <off|counters|N> <yield_many|ping_pong|chained_spawn|spawn_many_local>
//! ```
//!
//! `off` builds the runtime with `enable_probes(false)` and no timestamps; `counters` with
//! the event counters on and no timestamps; `N` with probes on and one schedule in `N`
//! timestamped. One worker, 20 iterations of the workload (`none`: none, to measure the
//! runtime's start and shutdown).

use gpm_bench::workloads::{self, SpawnMany};
use gpm_bench::Gpm;
use std::sync::mpsc;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "off".to_owned());
    let workload = args.next().unwrap_or_else(|| "yield_many".to_owned());
    let mut builder = gpm::Runtime::builder();
    builder.worker_threads(1);
    match mode.as_str() {
        "off" => builder.enable_probes(false).probe_sampling(0),
        "counters" => builder.probe_sampling(0),
        n => builder.probe_sampling(n.parse().expect("mode: off or a sampling interval")),
    };
    let rt = Gpm(builder.build().expect("gpm runtime"));
    let state = SpawnMany::default();
    let (tx, rx) = mpsc::sync_channel(workloads::YIELD_TASKS);
    for _ in 0..20 {
        match workload.as_str() {
            "yield_many" => workloads::yield_many(&rt, &tx, &rx),
            "ping_pong" => workloads::ping_pong(&rt, &state),
            "chained_spawn" => workloads::chained_spawn(&rt, &state),
            "spawn_many_local" => workloads::spawn_many_local(&rt, &state),
            // The runtime's start and shutdown alone: subtracted by
            // bench/scripts/instructions.sh to give instructions per operation.
            "none" => {}
            other => panic!("unknown workload {other}"),
        }
    }
}

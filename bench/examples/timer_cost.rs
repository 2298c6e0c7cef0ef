//! Instruction counts of timer operations, for callgrind (which counts instructions, not
//! time, so the result does not depend on the machine's load):
//!
//! ```sh
//! cargo build --release -p gpm-bench --example timer_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/timer_cost <gpm|tokio> <arm_cancel|workload> <N>
//! ```
//!
//! * `arm_cancel N`: one task arms a 50 ms sleep, polls it once (it registers) and drops it
//!   (it is cancelled), N times: the path of a request's timeout that does not fire.
//! * `workload N`: the timers workload (`gpm_bench::timers`) with N tasks of 20 rounds.
//!
//! One worker thread. Subtract a run with N = 0 (runtime start and stop) and divide by the
//! number of timers: `arm_cancel` arms N, `workload` arms 40 N.

use futures::FutureExt;
use gpm_bench::timers::{measure, TimerRt};
use gpm_bench::{Gpm, Rt, Tokio};
use std::time::Duration;

fn arm_cancel<R: TimerRt>(rt: &R, count: usize) {
    let task = rt.spawn_remote(async move {
        for _ in 0..count {
            assert!(R::sleep(Duration::from_millis(50)).now_or_never().is_none());
        }
    });
    rt.block_on(R::join(task));
}

fn run<R: TimerRt>(rt: &R, op: &str, count: usize) {
    match op {
        "arm_cancel" => arm_cancel(rt, count),
        "workload" => {
            if count > 0 {
                let report = measure(rt, count, 20);
                assert_eq!(report.early, 0);
            }
        }
        other => panic!("unknown operation {other}: arm_cancel or workload"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runtime = args.next().unwrap_or_else(|| "gpm".to_owned());
    let op = args.next().unwrap_or_else(|| "arm_cancel".to_owned());
    let count: usize = args
        .next()
        .map_or(10_000, |n| n.parse().expect("N: a count"));
    match runtime.as_str() {
        "gpm" => run(&Gpm::with_workers(1), &op, count),
        "tokio" => run(&Tokio::with_workers(1), &op, count),
        other => panic!("unknown runtime {other}: gpm or tokio"),
    }
}

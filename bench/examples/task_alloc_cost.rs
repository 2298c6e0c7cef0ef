//! A fixed amount of spawn work for instruction counting under callgrind (wall-clock
//! benches are noisy on a shared 2-core machine; instruction counts are not):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/task_alloc_cost <slab|system> <chain|local> <tasks>
//! ```
//!
//! `chain`: one P, each task spawns the next (the P-cache path). `local`: `block_on` spawns
//! every task (allocation without a P, free on the worker). Run with two task counts and
//! divide the difference of the totals by the difference of the counts to get
//! instructions per task.

use gpm::TaskAllocator;
use std::sync::mpsc;

fn chain(done: mpsc::SyncSender<()>, n: usize) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        drop(gpm::spawn(async move { chain(done, n - 1) }));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: task_alloc_cost <slab|system> <chain|local> <tasks>";
    let allocator = match args.get(1).map(String::as_str) {
        Some("slab") => TaskAllocator::Slab,
        Some("system") => TaskAllocator::System,
        _ => return eprintln!("{usage}"),
    };
    let Some(tasks) = args.get(3).and_then(|n| n.parse::<usize>().ok()) else {
        return eprintln!("{usage}");
    };
    let rt = gpm::Runtime::builder()
        .worker_threads(1)
        .task_allocator(allocator)
        .build()
        .expect("runtime");
    let (tx, rx) = mpsc::sync_channel(1);
    match args.get(2).map(String::as_str) {
        Some("chain") => rt.block_on(async move {
            drop(gpm::spawn(async move { chain(tx, tasks) }));
            rx.recv().unwrap();
        }),
        Some("local") => rt.block_on(async move {
            let handles: Vec<_> = (0..tasks).map(|i| gpm::spawn(async move { i })).collect();
            for handle in handles {
                handle.await.unwrap();
            }
        }),
        _ => eprintln!("{usage}"),
    }
}

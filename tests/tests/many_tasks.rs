//! 100 000 tasks spawned and all joined, with the sum of their outputs checked.

use gpm_tests::{rt_test, spawn_and_sum};

const TASKS: u64 = 100_000;
const EXPECTED_SUM: u64 = TASKS * (TASKS - 1) / 2;

rt_test! {
    /// 100k tasks spawned from `block_on` (the global queue) all run and are joined; the sum
    /// of their outputs is exact and no task is left alive afterwards.
    fn hundred_thousand_tasks_from_block_on(rt: &gpm::Runtime) {
        let sum = rt.block_on(spawn_and_sum(TASKS));
        assert_eq!(sum, EXPECTED_SUM);
        // Completed tasks leave the runtime's task list (shortly after their output is
        // published); wait for the count, the watchdog catches a leak that never drains.
        while rt.handle().num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
    }
}

rt_test! {
    /// 100k tasks spawned from inside one task (local queues, overflow into the global
    /// queue, stealing) all run and are joined with an exact sum.
    fn hundred_thousand_tasks_from_a_task(rt: &gpm::Runtime) {
        let sum = rt.block_on(rt.spawn(spawn_and_sum(TASKS)));
        assert_eq!(sum.unwrap(), EXPECTED_SUM);
    }
}

rt_test! {
    /// 100k detached tasks (join handles dropped at once) each bump a shared counter before
    /// finishing; every one of them runs exactly once.
    fn hundred_thousand_detached_tasks(rt: &gpm::Runtime) {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let sum = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU64::new(0));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for i in 0..TASKS {
            let sum = Arc::clone(&sum);
            let runs = Arc::clone(&runs);
            let done_tx = done_tx.clone();
            drop(rt.spawn(async move {
                sum.fetch_add(i, Ordering::SeqCst);
                if runs.fetch_add(1, Ordering::SeqCst) + 1 == TASKS {
                    done_tx.send(()).unwrap();
                }
            }));
        }
        done_rx.recv().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), TASKS);
        assert_eq!(sum.load(Ordering::SeqCst), EXPECTED_SUM);
    }
}

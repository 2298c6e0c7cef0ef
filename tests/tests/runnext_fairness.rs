//! Two tasks waking each other through `runnext` cannot starve the tasks queued behind.

use futures::channel::mpsc;
use futures::StreamExt;
use gpm_tests::{rt_test, watchdog};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The ping-pong stops once the queued task is done, or after this many rounds. The runtime
/// lets the queued task finish within a few hundred rounds (it needs `QUEUED_TASK_TURNS`
/// fairness turns); the bound is generous because with more Ms than cores the OS may
/// pause the M whose P holds the queued task (a yielded task waits on its own P) while the
/// pair bounces on another M, for milliseconds, i.e. thousands of rounds: at 10,000 this
/// failed about once in 50 runs under CPU load, on the code before and after issue 13's
/// wake-up change alike. A starving scheduler still fails it.
const ROUNDS: usize = 1_000_000;
/// Turns the queued task needs before it is done: it must come back several times.
const QUEUED_TASK_TURNS: usize = 10;

/// Spawns (from a task) a queued task needing several turns, then a ping-pong pair bouncing
/// messages until the pinger sees the queued task done (at most `ROUNDS`). Returns that
/// round, or `None` if the pair ran all `ROUNDS` without the queued task finishing.
async fn ping_pong_with_queued_task() -> Option<usize> {
    let queued_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&queued_done);
    let queued = gpm::spawn(async move {
        for _ in 0..QUEUED_TASK_TURNS {
            gpm::task::yield_now().await;
        }
        done.store(true, Ordering::SeqCst);
    });
    let (to_pong, mut pong_rx) = mpsc::unbounded::<usize>();
    let (to_ping, mut ping_rx) = mpsc::unbounded::<usize>();
    let pong = gpm::spawn(async move {
        while let Some(n) = pong_rx.next().await {
            if to_ping.unbounded_send(n + 1).is_err() {
                break;
            }
        }
    });
    let ping = gpm::spawn(async move {
        let mut first_seen = None;
        for round in 0..ROUNDS {
            to_pong.unbounded_send(round).unwrap();
            assert_eq!(ping_rx.next().await, Some(round + 1));
            if queued_done.load(Ordering::SeqCst) {
                first_seen = Some(round);
                break;
            }
        }
        drop(to_pong);
        first_seen
    });
    let first_seen = ping.await.unwrap();
    pong.await.unwrap();
    queued.await.unwrap();
    first_seen
}

#[track_caller]
fn assert_queued_task_ran_during_ping_pong(first_seen: Option<usize>) {
    match first_seen {
        Some(round) => assert!(
            round < ROUNDS - 1,
            "the queued task ran only at round {round}"
        ),
        None => panic!(
            "the queued task did not finish during {ROUNDS} ping-pong rounds: \
             the runnext pair starved it"
        ),
    }
}

/// On one worker, a ping-pong pair that always lands in `runnext` must still let a task
/// spawned earlier (waiting in the queue, needing several turns) finish before the
/// ping-pong ends.
#[test]
fn runnext_ping_pong_does_not_starve_queued_task() {
    let first_seen = gpm_tests::output_of_task(
        "runnext_ping_pong_does_not_starve_queued_task",
        1,
        ping_pong_with_queued_task(),
    );
    assert_queued_task_ran_during_ping_pong(first_seen);
}

rt_test! {
    /// The same ping-pong on any number of workers, with several pairs at once.
    fn runnext_ping_pong_fairness_any_workers(rt: &gpm::Runtime) {
        let pairs: Vec<_> = (0..3).map(|_| rt.spawn(ping_pong_with_queued_task())).collect();
        for pair in pairs {
            assert_queued_task_ran_during_ping_pong(rt.block_on(pair).unwrap());
        }
    }
}

/// On one worker, a task spinning on `yield_now` keeps the local queue non-empty for ever;
/// a task pushed to the global queue from another thread must still run (the P checks
/// the global queue every `global_queue_interval` ticks).
#[test]
fn global_queue_not_starved_by_local_work() {
    watchdog("global_queue_not_starved_by_local_work", || {
        for interval in [61, 7, 1] {
            let rt = gpm::Runtime::builder()
                .worker_threads(1)
                .global_queue_interval(interval)
                .build()
                .unwrap();
            let flag = Arc::new(AtomicBool::new(false));
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let spinner = {
                let flag = Arc::clone(&flag);
                rt.spawn(async move {
                    started_tx.send(()).unwrap();
                    while !flag.load(Ordering::SeqCst) {
                        gpm::task::yield_now().await;
                    }
                })
            };
            started_rx.recv().unwrap();
            // Spawned from this (foreign) thread: it goes to the global queue.
            let setter = rt.spawn(async move { flag.store(true, Ordering::SeqCst) });
            rt.block_on(async {
                setter.await.unwrap();
                spinner.await.unwrap();
            });
        }
    });
}

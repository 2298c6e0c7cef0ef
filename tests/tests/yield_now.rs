//! `yield_now` and the cooperative budget let other tasks run.

use gpm_tests::rt_test;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// On one worker, a task looping `while !flag { yield_now().await }` lets the task queued
/// behind it run and set the flag (it would spin for ever if yielding did not requeue it
/// behind the others).
#[test]
fn yield_now_lets_queued_task_run() {
    let yields = gpm_tests::output_of_task("yield_now_lets_queued_task_run", 1, async {
        let flag = Arc::new(AtomicBool::new(false));
        let setter_flag = Arc::clone(&flag);
        // The setter is spawned first so it sits in the queue behind the spinner,
        // which the spawner's `runnext` slot runs first.
        let setter = gpm::spawn(async move { setter_flag.store(true, Ordering::SeqCst) });
        let spinner = gpm::spawn(async move {
            let mut yields = 0u32;
            while !flag.load(Ordering::SeqCst) {
                gpm::task::yield_now().await;
                yields += 1;
            }
            yields
        });
        let yields = spinner.await.unwrap();
        setter.await.unwrap();
        yields
    });
    assert!(yields >= 1, "the spinner never had to yield: {yields}");
}

rt_test! {
    /// Every worker (and then some) is occupied by a task spinning on `yield_now` until a
    /// flag is set; the task that sets it, spawned last, still gets to run.
    fn yield_now_spinners_on_every_worker(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        let flag = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let (all_started_tx, all_started_rx) = std::sync::mpsc::channel();
        let spinners: Vec<_> = (0..workers + 1)
            .map(|_| {
                let flag = Arc::clone(&flag);
                let started = Arc::clone(&started);
                let all_started_tx = all_started_tx.clone();
                rt.spawn(async move {
                    if started.fetch_add(1, Ordering::SeqCst) == workers {
                        all_started_tx.send(()).unwrap();
                    }
                    while !flag.load(Ordering::SeqCst) {
                        gpm::task::yield_now().await;
                    }
                })
            })
            .collect();
        all_started_rx.recv().unwrap();
        let setter_flag = Arc::clone(&flag);
        let setter = rt.spawn(async move { setter_flag.store(true, Ordering::SeqCst) });
        rt.block_on(async {
            setter.await.unwrap();
            for spinner in spinners {
                spinner.await.unwrap();
            }
        });
    }
}

/// The cooperative budget: on one worker, a task that awaits 1000 already-finished join
/// handles in a loop is made to yield part-way (each such await spends budget), so another
/// queued task gets a turn before the loop ends.
#[test]
fn coop_budget_forces_yield_on_ready_join_handles() {
    const HANDLES: usize = 1000;
    let (sum, first_seen) =
        gpm_tests::output_of_task("coop_budget_forces_yield_on_ready_join_handles", 1, async {
            let handles: Vec<_> = (0..HANDLES).map(|i| gpm::spawn(async move { i })).collect();
            while !handles.iter().all(|h| h.is_finished()) {
                gpm::task::yield_now().await;
            }
            let looper_started = Arc::new(AtomicBool::new(false));
            let other_ran = Arc::new(AtomicBool::new(false));
            let other = {
                let looper_started = Arc::clone(&looper_started);
                let other_ran = Arc::clone(&other_ran);
                gpm::spawn(async move {
                    // Only a turn taken while the looper is inside its loop counts.
                    while !looper_started.load(Ordering::SeqCst) {
                        gpm::task::yield_now().await;
                    }
                    other_ran.store(true, Ordering::SeqCst);
                })
            };
            let looper = gpm::spawn(async move {
                looper_started.store(true, Ordering::SeqCst);
                let mut sum = 0;
                let mut first_seen = None;
                for (i, handle) in handles.into_iter().enumerate() {
                    sum += handle.await.unwrap();
                    if first_seen.is_none() && other_ran.load(Ordering::SeqCst) {
                        first_seen = Some(i);
                    }
                }
                (sum, first_seen)
            });
            let result = looper.await.unwrap();
            other.await.unwrap();
            result
        });
    assert_eq!(sum, HANDLES * (HANDLES - 1) / 2);
    match first_seen {
        Some(i) => assert!(i < HANDLES - 1, "the other task ran only at the end ({i})"),
        None => panic!(
            "the other task never ran while the looper awaited {HANDLES} ready join \
             handles: the cooperative budget did not force a yield"
        ),
    }
}

rt_test! {
    /// `yield_now` returns after one trip through the scheduler and the task goes on; a long
    /// yield loop in many tasks completes with every iteration counted.
    fn yield_now_resumes_task(rt: &gpm::Runtime) {
        let count = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let count = Arc::clone(&count);
                rt.spawn(async move {
                    for _ in 0..1000 {
                        gpm::task::yield_now().await;
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for task in tasks {
                task.await.unwrap();
            }
            // In block_on too (no worker): it yields and resumes.
            gpm::task::yield_now().await;
        });
        assert_eq!(count.load(Ordering::SeqCst), 10_000);
    }
}

/// A burst of remote spawns is not starved by a task that yields in a loop: yielders wait
/// behind the global queue (Go's `Gosched`), so the burst drains in a handful of the
/// yielder's rounds. Were yielders queued in the local FIFO, the injector would be visited
/// once every 61 polls and the burst would take about `BURST * 61` yields.
#[test]
fn remote_burst_is_not_starved_by_a_yielder() {
    const BURST: usize = 1000;
    gpm_tests::with_runtime("remote_burst_is_not_starved_by_a_yielder", 1, |rt| {
        let stop = Arc::new(AtomicBool::new(false));
        let yields = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&yields));
        let yielder = rt.spawn(async move {
            while !flag.load(Ordering::SeqCst) {
                gpm::task::yield_now().await;
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Wait (without sleeping) until the yielder owns the only P.
        while yields.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Each burst task notes how many yields the yielder had done when it ran.
        let last_seen = Arc::new(AtomicUsize::new(0));
        let burst: Vec<_> = (0..BURST)
            .map(|i| {
                let (yields, last_seen) = (Arc::clone(&yields), Arc::clone(&last_seen));
                rt.spawn(async move {
                    last_seen.fetch_max(yields.load(Ordering::SeqCst), Ordering::SeqCst);
                    i
                })
            })
            .collect();
        let spawned = yields.load(Ordering::SeqCst);
        let total: usize = rt.block_on(async {
            let mut total = 0;
            for handle in burst {
                total += handle.await.unwrap();
            }
            total
        });
        let during = last_seen.load(Ordering::SeqCst).saturating_sub(spawned);
        stop.store(true, Ordering::SeqCst);
        rt.block_on(yielder).unwrap();
        assert_eq!(total, BURST * (BURST - 1) / 2);
        assert!(
            during < BURST,
            "{during} yields while {BURST} remote tasks waited: the injector was starved"
        );
    });
}

/// tokio's `yield_defers_until_park`: on one worker, a task yields in a loop until another
/// task, blocked in `accept`, sets a flag. The connection is queued on the listener before
/// the loop starts, so the flag is set as soon as the I/O driver has had a turn: a yielded
/// task must not run again before that turn. Were yielders re-run at once, the loop would
/// spin until the next maintenance turn of the driver (every 61 polls). Five rounds, each
/// allowed fewer than 10 yields, as tokio's test allows.
#[test]
fn yield_defers_until_the_driver_had_a_turn() {
    const ROUNDS: usize = 5;
    const MAX_YIELDS: usize = 10;
    let yields = gpm_tests::output_of_task("yield_defers_until_the_driver_had_a_turn", 1, async {
        let mut yields = Vec::new();
        for _ in 0..ROUNDS {
            yields.push(yields_until_accepted().await);
        }
        yields
    });
    assert!(
        yields.iter().all(|&n| n < MAX_YIELDS),
        "yield_now re-ran the task before the driver saw a queued connection: {yields:?}"
    );
}

/// One round of [`yield_defers_until_the_driver_had_a_turn`]: the yields it took.
async fn yields_until_accepted() -> usize {
    let listener = gpm::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicBool::new(false));
    let acceptor = gpm::spawn({
        let accepted = Arc::clone(&accepted);
        async move {
            let connection = listener.accept().await.unwrap();
            accepted.store(true, Ordering::SeqCst);
            connection
        }
    });
    // The acceptor (in `runnext`) runs now and waits in `accept`.
    gpm::task::yield_now().await;
    // Blocking on purpose: when it returns, the connection is queued on the listener.
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let mut yields = 0;
    while !accepted.load(Ordering::SeqCst) {
        gpm::task::yield_now().await;
        yields += 1;
    }
    acceptor.await.unwrap();
    yields
}

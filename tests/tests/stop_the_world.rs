//! `Handle::stop_the_world`: every P stops between polls, idle Ps count as stopped, a thread
//! in `block_in_place` does not hold the world up, a long poll is named, requests from tasks
//! and from many threads at once neither deadlock nor overlap a poll.

use gpm::probe::StopKind;
use gpm_tests::rt_test;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Tasks that count themselves in `IN_POLL` for the duration of each poll segment.
async fn churn(in_poll: Arc<AtomicUsize>, done: Arc<AtomicUsize>) {
    for _ in 0..3 {
        in_poll.fetch_add(1, Ordering::SeqCst);
        std::hint::black_box(0..64).for_each(drop);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        gpm::task::yield_now().await;
    }
    done.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn stops_while_ten_thousand_tasks_churn_and_no_poll_runs_while_stopped() {
    const TASKS: usize = 10_000;
    gpm_tests::with_runtime("stw_churn", 2, |rt| {
        let (in_poll, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let handles: Vec<_> = (0..TASKS)
            .map(|_| rt.spawn(churn(in_poll.clone(), done.clone())))
            .collect();
        let mut stops = 0;
        while done.load(Ordering::SeqCst) < TASKS || stops < 20 {
            let (polls_seen, report) = rt
                .handle()
                .stop_the_world(|world| (in_poll.load(Ordering::SeqCst), world.runnable()));
            assert_eq!(
                polls_seen.0, 0,
                "a task was being polled in a stopped world"
            );
            assert!(report.pause >= report.time_to_stop);
            assert_eq!(report.processors.len(), 2);
            stops += 1;
        }
        rt.block_on(async {
            for handle in handles {
                handle.await.unwrap();
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), TASKS);
    });
}

#[test]
fn idle_processors_count_as_stopped_without_waking() {
    gpm_tests::with_runtime("stw_idle", 3, |rt| {
        // Wait (no sleep) until every P has parked.
        while rt.handle().probes().parked < 3 {
            std::thread::yield_now();
        }
        let (runnable, report) = rt.handle().stop_the_world(|world| world.runnable());
        assert_eq!(runnable, 0);
        let reasons: Vec<_> = report.processors.iter().map(|(r, _)| *r).collect();
        assert_eq!(reasons, vec![StopKind::Idle; 3]);
        assert_eq!(report.late, None);
        // The runtime still works afterwards.
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
    });
}

#[test]
fn a_thread_in_block_in_place_does_not_hold_the_world_up() {
    gpm_tests::with_runtime("stw_block_in_place", 1, |rt| {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let blocker = rt.spawn(async move {
            gpm::task::block_in_place(move || {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            7
        });
        entered_rx.recv().unwrap();
        // The only P now belongs to another M; this M blocks until after the stop.
        let (_, report) = rt.handle().stop_the_world(|_| ());
        assert_eq!(report.processors.len(), 1);
        release_tx.send(()).unwrap();
        assert_eq!(rt.block_on(blocker).unwrap(), 7);
    });
}

#[test]
fn a_long_poll_delays_the_stop_and_is_named_late() {
    const LONG_POLL: Duration = Duration::from_millis(20);
    gpm_tests::with_runtime("stw_late", 1, |rt| {
        let handle = rt.handle().clone();
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let spinner = rt.spawn(async move {
            flag.store(true, Ordering::SeqCst);
            // A poll that keeps its P until the stop is requested, then 20 ms longer.
            while !handle.probes().stw_pending {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            while start.elapsed() < LONG_POLL {
                std::hint::spin_loop();
            }
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let (_, report) = rt.handle().stop_the_world(|_| ());
        assert_eq!(report.late, Some(0));
        assert_eq!(report.processors[0].0, StopKind::Safepoint);
        // A lower bound guaranteed by construction, not a timing assertion on speed.
        assert!(report.processors[0].1 >= LONG_POLL, "{report:?}");
        rt.block_on(spinner).unwrap();
    });
}

#[test]
fn a_task_can_stop_the_world_and_its_own_processor_counts_as_stopped() {
    let report = gpm_tests::output_of_task("stw_from_task", 2, async {
        let (_, report) = gpm::Handle::current().stop_the_world(|_| ());
        report
    });
    let requesters = report
        .processors
        .iter()
        .filter(|(r, _)| *r == StopKind::Requester)
        .count();
    assert_eq!(requesters, 1, "{report:?}");
}

#[test]
fn a_task_requester_reports_its_own_processors_queue() {
    let runnable = gpm_tests::output_of_task("stw_requester_queue", 1, async {
        // Spawned from a task: into this P's `runnext` and FIFO, where (with one P) nobody
        // takes them before the stop.
        let children: Vec<_> = (0..3).map(|_| gpm::spawn(async {})).collect();
        let (runnable, _) = gpm::Handle::current().stop_the_world(|w| w.runnable());
        for child in children {
            child.await.unwrap();
        }
        runnable
    });
    assert_eq!(runnable, 3);
}

/// Spins (holding its P) until `count` tasks have arrived: the tasks then run on different Ps.
fn meet(arrived: &AtomicUsize, count: usize) {
    arrived.fetch_add(1, Ordering::SeqCst);
    while arrived.load(Ordering::SeqCst) < count {
        std::hint::spin_loop();
    }
}

/// `STOPS` stops from one poll of the current task; returns the P reported as the requester
/// (the same one every time: a task does not move during a poll) and checks every report.
fn stop_repeatedly_from_a_task(stops: usize) -> usize {
    let handle = gpm::Handle::current();
    let requesters: Vec<usize> = (0..stops)
        .map(|_| {
            let (_, report) = handle.stop_the_world(|_| ());
            assert!(report.pause >= report.time_to_stop, "{report:?}");
            let mut own = report
                .processors
                .iter()
                .enumerate()
                .filter(|(_, (r, _))| *r == StopKind::Requester)
                .map(|(p, _)| p);
            let p = own.next().expect("the requester's P is reported");
            assert_eq!(own.next(), None, "{report:?}");
            p
        })
        .collect();
    assert!(requesters.iter().all(|&p| p == requesters[0]));
    requesters[0]
}

#[test]
fn two_tasks_stopping_the_world_concurrently_both_complete() {
    gpm_tests::with_runtime("stw_two_tasks", 2, |rt| {
        let arrived = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let arrived = arrived.clone();
                rt.spawn(async move {
                    meet(&arrived, 2);
                    stop_repeatedly_from_a_task(200)
                })
            })
            .collect();
        let processors: Vec<usize> = rt.block_on(async {
            let mut processors = Vec::new();
            for task in tasks {
                processors.push(task.await.unwrap());
            }
            processors
        });
        assert_ne!(
            processors[0], processors[1],
            "the tasks ran on different Ps"
        );
    });
}

#[test]
fn a_task_and_a_thread_stopping_the_world_concurrently_both_complete() {
    gpm_tests::with_runtime("stw_task_and_thread", 2, |rt| {
        let arrived = Arc::new(AtomicUsize::new(0));
        let task = {
            let arrived = arrived.clone();
            rt.spawn(async move {
                meet(&arrived, 2);
                stop_repeatedly_from_a_task(200)
            })
        };
        meet(&arrived, 2);
        for _ in 0..200 {
            let (_, report) = rt.handle().stop_the_world(|_| ());
            assert!(report.pause >= report.time_to_stop, "{report:?}");
            assert!(
                report
                    .processors
                    .iter()
                    .all(|(r, _)| *r != StopKind::Requester),
                "{report:?}"
            );
        }
        rt.block_on(task).unwrap();
    });
}

#[test]
fn concurrent_requests_are_serialised_while_tasks_run() {
    gpm_tests::with_runtime("stw_concurrent", 2, |rt| {
        let (in_poll, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..2_000)
            .map(|_| rt.spawn(churn(in_poll.clone(), done.clone())))
            .collect();
        let inside = Arc::new(AtomicUsize::new(0));
        let requesters: Vec<_> = (0..4)
            .map(|_| {
                let (handle, in_poll, inside) =
                    (rt.handle().clone(), in_poll.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        handle.stop_the_world(|_| {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "overlap");
                            assert_eq!(in_poll.load(Ordering::SeqCst), 0);
                            inside.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        requesters.into_iter().for_each(|t| t.join().unwrap());
        rt.block_on(async {
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 2_000);
    });
}

#[test]
fn stop_after_shutdown_returns_with_every_processor_exited() {
    gpm_tests::with_runtime("stw_after_shutdown", 2, |rt| {
        let handle = rt.handle().clone();
        rt.shutdown_timeout(Duration::from_secs(10));
        let (_, report) = handle.stop_the_world(|_| ());
        assert!(report
            .processors
            .iter()
            .all(|(r, _)| *r == StopKind::Exited || *r == StopKind::Idle));
    });
}

rt_test! {
    /// A stop of the same runtime requested from inside `inspect` would wait for itself: it
    /// panics with a message saying so (from a task and from a plain thread), and the
    /// world resumes; a stop of another runtime from inside `inspect` is allowed.
    fn stop_the_world_inside_inspect_panics_instead_of_hanging(rt: &gpm::Runtime) {
        let handle = rt.handle().clone();
        let message = gpm_tests::catch_panic_message(|| {
            handle.stop_the_world(|_| handle.stop_the_world(|_| ()))
        });
        assert!(message.contains("wait for itself"), "{message}");
        let from_task = rt.block_on(rt.spawn(async {
            let handle = gpm::Handle::current();
            handle.stop_the_world(|_| handle.stop_the_world(|_| ()));
        }));
        assert!(from_task.unwrap_err().is_panic());
        let other = gpm_tests::runtime(1);
        let (workers, _) = handle.stop_the_world(|_| {
            other.handle().stop_the_world(|world| world.processors.len()).0
        });
        assert_eq!(workers, 1);
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
    }
}

rt_test! {
    /// An `inspect` closure that panics: the panic reaches the caller and the world
    /// resumes (every P runs tasks again, and the next stop succeeds).
    fn panicking_inspect_resumes_the_world(rt: &gpm::Runtime) {
        let handle = rt.handle().clone();
        let message = gpm_tests::catch_panic_message(|| {
            handle.stop_the_world(|_| -> () { panic!("inspect gave up") })
        });
        assert_eq!(message, "inspect gave up");
        gpm_tests::assert_every_processor_answers(rt);
    }
}

//! `LocalSet` and `spawn_local`: tokio's `tests/task_local_set.rs`, ported (its assertions
//! kept), then gpm's own cases: wakes from other threads, drop on the set's thread, panics,
//! aborts, the budget, a set inside a multi-worker runtime.
//!
//! Left out of tokio's file: the `block_in_place` cases that expect a panic (gpm allows
//! `block_in_place` inside a set: the hand-off keeps the local tasks on this thread;
//! `block_in_place_in_local_task_runs_here` checks that instead), and the `tokio_unstable`
//! module (`unhandled_panic`, `tokio_test`).

use futures::future::{pending, ready};
use futures::FutureExt;
use gpm::task::{self, LocalSet};
use gpm::time;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

// ---- tokio's tests/task_local_set.rs ----

thread_local! {
    /// Marks the thread of a test's `LocalSet` (tokio's per-test `ON_RT_THREAD`): set by
    /// the test on its own thread, never on the runtime's workers or blocking threads.
    static ON_RT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether this is the thread that marked itself with `ON_RT_THREAD`.
fn on_rt_thread() -> bool {
    ON_RT_THREAD.with(|cell| cell.get())
}

/// tokio's opening of its thread tests: marks this thread, then runs `body` in a fresh
/// `LocalSet` until it is done, after checking that the set runs it on this thread.
async fn run_until_on_rt_thread<F: std::future::Future>(body: F) -> F::Output {
    ON_RT_THREAD.with(|cell| cell.set(true));

    LocalSet::new()
        .run_until(async {
            assert!(on_rt_thread());
            body.await
        })
        .await
}

#[gpm::test(flavor = "current_thread")]
async fn local_current_thread_scheduler() {
    LocalSet::new()
        .run_until(async {
            task::spawn_local(async {}).await.unwrap();
        })
        .await;
}

#[gpm::test(flavor = "multi_thread")]
async fn local_threadpool() {
    run_until_on_rt_thread(async {
        task::spawn_local(async {
            assert!(on_rt_thread());
        })
        .await
        .unwrap();
    })
    .await;
}

#[gpm::test(flavor = "multi_thread")]
async fn localset_future_threadpool() {
    thread_local! {
        static ON_LOCAL_THREAD: Cell<bool> = const { Cell::new(false) };
    }

    ON_LOCAL_THREAD.with(|cell| cell.set(true));

    let local = LocalSet::new();
    local.spawn_local(async move {
        assert!(ON_LOCAL_THREAD.with(|cell| cell.get()));
    });
    local.await;
}

#[gpm::test(flavor = "multi_thread")]
async fn localset_future_timers() {
    static RAN1: AtomicBool = AtomicBool::new(false);
    static RAN2: AtomicBool = AtomicBool::new(false);

    let local = LocalSet::new();
    local.spawn_local(async move {
        time::sleep(Duration::from_millis(5)).await;
        RAN1.store(true, Ordering::SeqCst);
    });
    local.spawn_local(async move {
        time::sleep(Duration::from_millis(10)).await;
        RAN2.store(true, Ordering::SeqCst);
    });
    local.await;
    assert!(RAN1.load(Ordering::SeqCst));
    assert!(RAN2.load(Ordering::SeqCst));
}

#[gpm::test]
async fn localset_future_drives_all_local_futs() {
    static RAN1: AtomicBool = AtomicBool::new(false);
    static RAN2: AtomicBool = AtomicBool::new(false);
    static RAN3: AtomicBool = AtomicBool::new(false);

    let local = LocalSet::new();
    local.spawn_local(async move {
        task::spawn_local(async {
            task::yield_now().await;
            RAN3.store(true, Ordering::SeqCst);
        });
        task::yield_now().await;
        RAN1.store(true, Ordering::SeqCst);
    });
    local.spawn_local(async move {
        task::yield_now().await;
        RAN2.store(true, Ordering::SeqCst);
    });
    local.await;
    assert!(RAN1.load(Ordering::SeqCst));
    assert!(RAN2.load(Ordering::SeqCst));
    assert!(RAN3.load(Ordering::SeqCst));
}

#[gpm::test(flavor = "multi_thread")]
async fn local_threadpool_timer() {
    // This test ensures that runtime services like the timer are properly
    // set for the local task set.
    run_until_on_rt_thread(async {
        let join = task::spawn_local(async move {
            assert!(on_rt_thread());
            time::sleep(Duration::from_millis(10)).await;
            assert!(on_rt_thread());
        });
        join.await.unwrap();
    })
    .await;
}

#[test]
fn enter_guard_spawn() {
    let local = LocalSet::new();
    let _guard = local.enter();
    // Run the local task set.

    let join = task::spawn_local(async { true });
    let rt = rt();
    local.block_on(&rt, async move {
        assert!(join.await.unwrap());
    });
}

#[gpm::test(flavor = "multi_thread")]
async fn local_threadpool_blocking_run() {
    run_until_on_rt_thread(async {
        let join = task::spawn_local(async move {
            assert!(on_rt_thread());
            task::spawn_blocking(|| {
                assert!(
                    !on_rt_thread(),
                    "blocking must not run on the local task set's thread"
                );
            })
            .await
            .unwrap();
            assert!(on_rt_thread());
        });
        join.await.unwrap();
    })
    .await;
}

#[gpm::test(flavor = "multi_thread")]
async fn all_spawns_are_local() {
    use futures::future;
    run_until_on_rt_thread(async {
        let handles = (0..128)
            .map(|_| {
                task::spawn_local(async {
                    assert!(on_rt_thread());
                })
            })
            .collect::<Vec<_>>();
        for joined in future::join_all(handles).await {
            joined.unwrap();
        }
    })
    .await;
}

#[gpm::test(flavor = "multi_thread")]
async fn nested_spawn_is_local() {
    run_until_on_rt_thread(async {
        task::spawn_local(nested_local_task(3)).await.unwrap();
    })
    .await;
}

/// tokio's four nested local tasks: each checks that it runs on the set's thread, then
/// (`depth` more times) spawns the next one locally and waits for it.
fn nested_local_task(depth: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(async move {
        assert!(on_rt_thread());
        if depth > 0 {
            task::spawn_local(nested_local_task(depth - 1))
                .await
                .unwrap();
        }
    })
}

#[test]
fn join_local_future_elsewhere() {
    ON_RT_THREAD.with(|cell| cell.set(true));

    let rt = gpm::Runtime::new().unwrap();
    let local = LocalSet::new();
    local.block_on(&rt, async move {
        let (tx, rx) = oneshot::channel();
        let join = task::spawn_local(async move {
            assert!(
                on_rt_thread(),
                "local task must run on local thread, no matter where it is awaited"
            );
            rx.await.unwrap();

            "hello world"
        });
        let join2 = gpm::spawn(async move {
            assert!(!on_rt_thread(), "spawned task should be on a worker");

            tx.send(()).expect("task shouldn't have ended yet");

            join.await.expect("task should complete successfully");
        });
        join2.await.unwrap()
    });
}

// Tests for <https://github.com/tokio-rs/tokio/issues/4973>
#[gpm::test(flavor = "multi_thread")]
async fn localset_in_thread_local() {
    thread_local! {
        static LOCAL_SET: LocalSet = LocalSet::new();
    }

    // holds runtime thread until end of main fn.
    let (_tx, rx) = oneshot::channel::<()>();
    let handle = gpm::Handle::current();

    std::thread::spawn(move || {
        LOCAL_SET.with(|local_set| {
            handle.block_on(local_set.run_until(async move {
                let _ = rx.await;
            }))
        });
    });
}

#[test]
fn drop_cancels_tasks() {
    // This test reproduces issue #1842
    let rt = rt();
    let rc1 = Rc::new(());
    let rc2 = rc1.clone();

    let (started_tx, started_rx) = oneshot::channel();

    let local = LocalSet::new();
    local.spawn_local(async move {
        // Move this in
        let _rc2 = rc2;

        started_tx.send(()).unwrap();
        futures::future::pending::<()>().await;
    });

    local.block_on(&rt, async {
        started_rx.await.unwrap();
    });
    drop(local);
    drop(rt);

    assert_eq!(1, Rc::strong_count(&rc1));
}

/// Runs a test function in a separate thread, and panics if the test does not
/// complete within the specified timeout, or if the test function panics.
///
/// This is intended for running tests whose failure mode is a hang or infinite
/// loop that cannot be detected otherwise.
fn with_timeout(timeout: Duration, f: impl FnOnce() + Send + 'static) {
    use std::sync::mpsc::RecvTimeoutError;

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        f();

        // Send a message on the channel so that the test thread can
        // determine if we have entered an infinite loop:
        done_tx.send(()).unwrap();
    });

    match done_rx.recv_timeout(timeout) {
        Err(RecvTimeoutError::Timeout) => panic!(
            "test did not complete within {timeout:?} seconds, \
             we have (probably) entered an infinite loop!",
        ),
        // Did the test thread panic? We'll find out for sure when we `join`
        // with it.
        Err(RecvTimeoutError::Disconnected) => {}
        // Test completed successfully!
        Ok(()) => {}
    }

    thread.join().expect("test thread should not panic!")
}

#[test]
fn drop_cancels_remote_tasks() {
    // This test reproduces issue #1885.
    with_timeout(Duration::from_secs(60), || {
        let (tx, mut rx) = mpsc::channel::<()>(1024);

        let rt = rt();

        let local = LocalSet::new();
        local.spawn_local(async move { while rx.recv().await.is_some() {} });
        local.block_on(&rt, async {
            time::sleep(Duration::from_millis(1)).await;
        });

        drop(tx);

        // This enters an infinite loop if the remote notified tasks are not
        // properly cancelled.
        drop(local);
    });
}

#[test]
fn local_tasks_wake_join_all() {
    // This test reproduces issue #2460.
    with_timeout(Duration::from_secs(60), || {
        use futures::future::join_all;

        let rt = rt();
        let set = LocalSet::new();
        let mut handles = Vec::new();

        for _ in 1..=128 {
            handles.push(set.spawn_local(async move {
                gpm::task::spawn_local(async move {}).await.unwrap();
            }));
        }

        rt.block_on(set.run_until(join_all(handles)));
    });
}

#[test]
fn local_tasks_are_polled_after_tick() {
    // This test depends on timing, so we run it up to five times.
    for _ in 0..4 {
        let res = std::panic::catch_unwind(local_tasks_are_polled_after_tick_inner);
        if res.is_ok() {
            // success
            return;
        }
    }

    // Test failed 4 times. Try one more time without catching panics. If it
    // fails again, the test fails.
    local_tasks_are_polled_after_tick_inner();
}

#[gpm::main(flavor = "current_thread")]
async fn local_tasks_are_polled_after_tick_inner() {
    // Reproduces issues #1899 and #1900

    static RX1: AtomicUsize = AtomicUsize::new(0);
    static RX2: AtomicUsize = AtomicUsize::new(0);
    const EXPECTED: usize = 500;

    RX1.store(0, SeqCst);
    RX2.store(0, SeqCst);

    let (tx, mut rx) = mpsc::unbounded_channel();

    let local = LocalSet::new();

    local
        .run_until(async {
            let task2 = gpm::spawn(async move {
                // Wait a bit
                time::sleep(Duration::from_millis(10)).await;

                let mut oneshots = Vec::with_capacity(EXPECTED);

                // Send values
                for _ in 0..EXPECTED {
                    let (oneshot_tx, oneshot_rx) = oneshot::channel();
                    oneshots.push(oneshot_tx);
                    tx.send(oneshot_rx).unwrap();
                }

                time::sleep(Duration::from_millis(10)).await;

                for tx in oneshots.drain(..) {
                    tx.send(()).unwrap();
                }

                loop {
                    time::sleep(Duration::from_millis(20)).await;
                    let rx1 = RX1.load(SeqCst);
                    let rx2 = RX2.load(SeqCst);

                    if rx1 == EXPECTED && rx2 == EXPECTED {
                        break;
                    }
                }
            });

            while let Some(oneshot) = rx.recv().await {
                RX1.fetch_add(1, SeqCst);

                task::spawn_local(async move {
                    oneshot.await.unwrap();
                    RX2.fetch_add(1, SeqCst);
                });
            }

            task2.await.unwrap();
        })
        .await;
}

#[gpm::test]
async fn acquire_mutex_in_drop() {
    let local = LocalSet::new();

    for task in gpm_tests::tasks_waiting_in_a_chain() {
        local.spawn_local(task);
    }

    // Tick the loop
    local
        .run_until(async {
            task::yield_now().await;
        })
        .await;

    // Drop the LocalSet
    drop(local);
}

#[gpm::test]
async fn spawn_wakes_localset() {
    let local = LocalSet::new();
    futures::select! {
        _ = local.run_until(pending::<()>()).fuse() => unreachable!(),
        ret = async { local.spawn_local(ready(())).await.unwrap()}.fuse() => ret
    }
}

/// Checks that the task wakes up with `enter`.
/// Reproduces <https://github.com/tokio-rs/tokio/issues/5020>.
#[gpm::test]
async fn sleep_with_local_enter_guard() {
    let local = LocalSet::new();
    let _guard = local.enter();

    let (tx, rx) = oneshot::channel();

    local
        .run_until(async move {
            gpm::task::spawn_local(async move {
                time::sleep(Duration::ZERO).await;

                tx.send(()).expect("failed to send");
            });
            assert_eq!(rx.await, Ok(()));
        })
        .await;
}

#[test]
fn store_local_set_in_thread_local_with_runtime() {
    use gpm::Runtime;

    thread_local! {
        static CURRENT: RtAndLocalSet = RtAndLocalSet::new();
    }

    struct RtAndLocalSet {
        rt: Runtime,
        local: LocalSet,
    }

    impl RtAndLocalSet {
        fn new() -> RtAndLocalSet {
            RtAndLocalSet {
                rt: rt(),
                local: LocalSet::new(),
            }
        }

        async fn inner_method(&self) {
            self.local
                .run_until(async move {
                    gpm::task::spawn_local(async {});
                })
                .await
        }

        fn method(&self) {
            self.rt.block_on(self.inner_method());
        }
    }

    CURRENT.with(|f| {
        f.method();
    });
}

/// tokio's `Builder::new_current_thread()`.
fn rt() -> gpm::Runtime {
    gpm::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---- gpm's own cases ----

#[test]
#[should_panic(expected = "`spawn_local` called from outside of a `task::LocalSet`")]
fn spawn_local_outside_a_local_set_panics() {
    drop(task::spawn_local(async {}));
}

#[gpm::test]
#[should_panic(expected = "`spawn_local` called from outside of a `task::LocalSet`")]
async fn spawn_local_in_a_runtime_but_outside_a_local_set_panics() {
    drop(task::spawn_local(async {}));
}

#[test]
fn spawn_local_after_run_until_returns_panics() {
    let rt = rt();
    let local = LocalSet::new();
    local.block_on(&rt, async {});
    let outside = std::panic::catch_unwind(|| drop(task::spawn_local(async {})));
    assert!(
        outside.is_err(),
        "the set's context must end with run_until"
    );
}

/// Records the thread a value is dropped on.
struct DropOn(Arc<Mutex<Option<ThreadId>>>);

impl DropOn {
    /// A guard, and the slot it records its dropping thread in.
    fn new() -> (DropOn, Arc<Mutex<Option<ThreadId>>>) {
        let dropped_on = Arc::new(Mutex::new(None));
        (DropOn(dropped_on.clone()), dropped_on)
    }
}

impl Drop for DropOn {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

/// The guard of `dropped_on` was dropped on this thread (the set's).
#[track_caller]
fn assert_dropped_here(dropped_on: &Mutex<Option<ThreadId>>) {
    assert_eq!(
        *dropped_on.lock().unwrap(),
        Some(std::thread::current().id())
    );
}

#[test]
fn woken_from_another_thread() {
    let rt = rt();
    let local = LocalSet::new();
    let here = std::thread::current().id();
    let (tx, rx) = oneshot::channel::<u32>();
    let polled_on = Rc::new(Cell::new(None));
    let seen = polled_on.clone();
    let task = local.spawn_local(async move {
        let value = rx.await.unwrap();
        seen.set(Some(std::thread::current().id()));
        value * 2
    });
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(21).unwrap();
    });
    let doubled = local.block_on(&rt, async { task.await.unwrap() });
    sender.join().unwrap();
    assert_eq!(doubled, 42);
    assert_eq!(polled_on.get(), Some(here));
}

#[test]
fn many_wakes_from_many_threads() {
    let rt = rt();
    let local = LocalSet::new();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let (tx, rx) = oneshot::channel::<u64>();
        senders.push(tx);
        let marker = Rc::new(i);
        tasks.push(local.spawn_local(async move { rx.await.unwrap() + *marker }));
    }
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, tx)| std::thread::spawn(move || tx.send(i as u64).unwrap()))
        .collect();
    let total = local.block_on(&rt, async {
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    });
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(total, 2 * (0..64u64).sum::<u64>());
}

#[test]
fn drop_cancels_tasks_on_the_set_thread() {
    let rt = rt();
    let local = LocalSet::new();
    let (guard, dropped_on) = DropOn::new();
    let (started_tx, started_rx) = oneshot::channel();
    let task = local.spawn_local(async move {
        let _guard = guard;
        let _not_send = Rc::new(());
        started_tx.send(()).unwrap();
        pending::<()>().await;
    });
    let completed = local.spawn_local(async { Rc::new(1) });
    local.block_on(&rt, async { started_rx.await.unwrap() });
    // `completed` ran in that drive; this one is queued and never runs.
    let queued = local.spawn_local(async { 7 });
    drop(local);
    assert_dropped_here(&dropped_on);
    let joined = rt.block_on(async move { (task.await, completed.await, queued.await) });
    assert!(joined.0.unwrap_err().is_cancelled());
    assert_eq!(*joined.1.unwrap(), 1);
    assert!(joined.2.unwrap_err().is_cancelled());
}

#[test]
fn wake_after_the_set_is_gone_is_a_no_op() {
    let rt = rt();
    let local = LocalSet::new();
    let waker_slot: Arc<Mutex<Option<std::task::Waker>>> = Arc::new(Mutex::new(None));
    let slot = waker_slot.clone();
    let dropped = Arc::new(AtomicBool::new(false));
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let flag = Flag(dropped.clone());
    let task = local.spawn_local(std::future::poll_fn(move |cx| {
        let _keep = &flag;
        *slot.lock().unwrap() = Some(cx.waker().clone());
        std::task::Poll::<()>::Pending
    }));
    local.block_on(&rt, task::yield_now());
    drop(local);
    assert!(dropped.load(SeqCst));
    let waker = waker_slot
        .lock()
        .unwrap()
        .take()
        .expect("the task ran once");
    std::thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
}

#[test]
fn panic_in_a_local_task_is_its_join_error_and_the_set_lives_on() {
    let rt = rt();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let boom = task::spawn_local(async {
            let _not_send = Rc::new(());
            panic!("boom");
        });
        let err = boom.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
        assert_eq!(task::spawn_local(async { 3 }).await.unwrap(), 3);
    });
    assert_eq!(
        local.block_on(&rt, local.spawn_local(async { 4 })).unwrap(),
        4
    );
}

#[test]
fn abort_from_another_thread_cancels_on_the_set_thread() {
    let rt = rt();
    let local = LocalSet::new();
    let (guard, dropped_on) = DropOn::new();
    let task = local.spawn_local(async move {
        let _guard = guard;
        pending::<()>().await;
    });
    let abort = task.abort_handle();
    local.block_on(&rt, task::yield_now());
    std::thread::spawn(move || abort.abort()).join().unwrap();
    let joined = local.block_on(&rt, task);
    assert!(joined.unwrap_err().is_cancelled());
    assert_dropped_here(&dropped_on);
}

#[gpm::test]
async fn local_join_handles_in_a_join_set() {
    let local = LocalSet::new();
    local
        .run_until(async {
            let mut set = task::JoinSet::new();
            for i in 0..8u32 {
                let rc = Rc::new(i);
                let handle = task::spawn_local(async move {
                    task::yield_now().await;
                    *rc
                });
                set.spawn(async move { handle.await.unwrap() });
            }
            let mut total = 0;
            while let Some(joined) = set.join_next().await {
                total += joined.unwrap();
            }
            assert_eq!(total, 28);
        })
        .await;
}

#[gpm::test]
async fn task_ids_and_task_locals_work_in_local_tasks() {
    gpm::task_local! {
        static NAME: &'static str;
    }
    let local = LocalSet::new();
    local
        .run_until(async {
            let task = task::spawn_local(NAME.scope("local", async { (task::id(), NAME.get()) }));
            let id = task.id();
            let (seen, name) = task.await.unwrap();
            assert_eq!(seen, id);
            assert_eq!(name, "local");
        })
        .await;
}

/// A local task that never stops being ready does not starve `run_until`'s own future:
/// a tick runs a bounded number of notifications, then lets the executor poll again.
#[gpm::test]
async fn busy_local_tasks_yield_to_the_driver() {
    let local = LocalSet::new();
    let stop = Rc::new(Cell::new(false));
    let spins = Rc::new(Cell::new(0u64));
    let (stop2, spins2) = (stop.clone(), spins.clone());
    local.spawn_local(async move {
        while !stop2.get() {
            spins2.set(spins2.get() + 1);
            task::yield_now().await;
        }
    });
    local
        .run_until(time::sleep(Duration::from_millis(20)))
        .await;
    assert!(spins.get() > 0);
    stop.set(true);
    local.await;
}

/// tokio's way to use a set from a task of a multi-worker runtime: `block_in_place`, then
/// `Handle::block_on` of `run_until`.
#[gpm::test(worker_threads = 2)]
async fn local_set_in_a_task_via_block_in_place() {
    let out = gpm::spawn(async {
        task::block_in_place(|| {
            let local = LocalSet::new();
            gpm::Handle::current().block_on(local.run_until(async {
                let rc = Rc::new(5);
                let task = task::spawn_local(async move {
                    time::sleep(Duration::from_millis(1)).await;
                    *rc * 2
                });
                task.await.unwrap()
            }))
        })
    })
    .await
    .unwrap();
    assert_eq!(out, 10);
}

/// ... and `spawn_blocking`, then `Handle::block_on`.
#[gpm::test(worker_threads = 2)]
async fn local_set_on_the_blocking_pool() {
    let handle = gpm::Handle::current();
    let out = task::spawn_blocking(move || {
        let local = LocalSet::new();
        let rc = Rc::new(Cell::new(0));
        for i in 1..=10 {
            let rc = rc.clone();
            local.spawn_local(async move {
                task::yield_now().await;
                rc.set(rc.get() + i);
            });
        }
        handle.block_on(local);
        rc.get()
    })
    .await
    .unwrap();
    assert_eq!(out, 55);
}

/// gpm allows `block_in_place` inside a set (tokio panics): the closure runs, and the local
/// task goes on on the set's thread.
#[gpm::test(worker_threads = 2)]
async fn block_in_place_in_local_task_runs_here() {
    gpm::spawn(async {
        task::block_in_place(|| {
            let here = std::thread::current().id();
            let local = LocalSet::new();
            gpm::Handle::current().block_on(local.run_until(async move {
                task::spawn_local(async move {
                    let ran = task::block_in_place(|| 1);
                    assert_eq!(ran, 1);
                    assert_eq!(std::thread::current().id(), here);
                })
                .await
                .unwrap();
            }));
        })
    })
    .await
    .unwrap();
}

/// Nested sets: `spawn_local` spawns on the innermost one being driven, and the outer
/// one's context comes back afterwards.
#[gpm::test]
async fn nested_sets_spawn_on_the_innermost() {
    let outer = LocalSet::new();
    outer
        .run_until(async {
            let inner = LocalSet::new();
            let in_inner = inner
                .run_until(async { task::spawn_local(async { 1 }).await.unwrap() })
                .await;
            assert_eq!(in_inner, 1);
            let leftover = inner.spawn_local(pending::<()>());
            drop(inner);
            assert!(leftover.await.unwrap_err().is_cancelled());
            assert_eq!(task::spawn_local(async { 2 }).await.unwrap(), 2);
        })
        .await;
}

/// A future's `Drop` that spawns while its set is being dropped gets a cancelled task
/// instead of a panic or a leak.
#[test]
fn spawn_local_from_a_drop_during_the_set_drop() {
    struct SpawnOnDrop(Rc<Cell<Option<bool>>>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let late = task::spawn_local(async {});
            self.0.set(Some(late.is_finished()));
        }
    }
    let rt = rt();
    let local = LocalSet::new();
    let seen = Rc::new(Cell::new(None));
    let guard = SpawnOnDrop(seen.clone());
    local.spawn_local(async move {
        let _guard = guard;
        pending::<()>().await;
    });
    local.block_on(&rt, task::yield_now());
    drop(local);
    assert_eq!(seen.get(), Some(true));
}

#[test]
fn large_local_futures_are_boxed() {
    let rt = rt();
    let local = LocalSet::new();
    let big = [7u8; 64 * 1024];
    let rc = Rc::new(());
    let sum = local.block_on(&rt, async move {
        task::spawn_local(async move {
            let _rc = rc;
            task::yield_now().await;
            big.iter().map(|&b| b as u64).sum::<u64>()
        })
        .await
        .unwrap()
    });
    assert_eq!(sum, 7 * 64 * 1024);
}

#[test]
fn join_set_spawn_local_and_spawn_local_on() {
    let rt = rt();
    let local = LocalSet::new();
    let mut set = task::JoinSet::new();
    let outside = Rc::new(10u32);
    let value = outside.clone();
    set.spawn_local_on(async move { *value }, &local);
    let parked = set.spawn_local_on(pending::<u32>(), &local);
    let total = local.block_on(&rt, async move {
        let rc = Rc::new(5u32);
        set.spawn_local(async move {
            task::yield_now().await;
            *rc
        });
        let mut total = 0;
        for _ in 0..2 {
            total += set.join_next().await.unwrap().unwrap();
        }
        parked.abort();
        assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());
        assert!(set.join_next().await.is_none());
        total
    });
    assert_eq!(total, 15);
    drop(local);
    assert_eq!(Rc::strong_count(&outside), 1);
}

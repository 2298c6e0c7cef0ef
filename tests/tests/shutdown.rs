//! Shutting a runtime down: every task is dropped exactly once, handles report
//! cancellation, and `shutdown_timeout` does not wait for ever.

use futures::channel::oneshot;
use gpm_tests::{
    rt_test, spawn_parked_task, spawn_parked_tasks, watchdog, DropCounter, DropGuard, RunProbe,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const K: usize = 100;

rt_test! {
    /// K tasks parked in `pending()` (each polled at least once) hold drop guards; dropping
    /// the runtime drops exactly K guards.
    fn drop_runtime_drops_started_pending_tasks(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        drop(spawn_parked_tasks(&rt, K, || drops.guard()));
        assert_eq!(drops.drops(), 0);
        drop(rt);
        assert_eq!(drops.drops(), K);
    }
}

rt_test! {
    /// Tasks spawned right before the drop (most never polled) are dropped exactly once too.
    fn drop_runtime_drops_unpolled_tasks(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        let handles: Vec<_> = (0..K)
            .map(|_| {
                let guard = drops.guard();
                rt.spawn(async move {
                    let _guard = guard;
                    futures::future::pending::<()>().await;
                })
            })
            .collect();
        drop(rt);
        assert_eq!(drops.drops(), K);
        for handle in handles {
            let error = futures::executor::block_on(handle).unwrap_err();
            assert!(error.is_cancelled());
        }
        assert_eq!(drops.drops(), K);
    }
}

rt_test! {
    /// Tasks that keep running (a `yield_now` loop) at shutdown are dropped exactly once.
    fn drop_runtime_drops_busy_tasks(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        let (started_tx, started_rx) = mpsc::channel();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let guard = drops.guard();
                let started_tx = started_tx.clone();
                rt.spawn(async move {
                    let _guard = guard;
                    started_tx.send(()).unwrap();
                    loop {
                        gpm::task::yield_now().await;
                    }
                })
            })
            .collect();
        for _ in 0..8 {
            started_rx.recv().unwrap();
        }
        drop(rt);
        assert_eq!(drops.drops(), 8);
        for handle in handles {
            assert!(futures::executor::block_on(handle).unwrap_err().is_cancelled());
        }
    }
}

/// A value whose drop spawns a new task holding another one, `depth` times.
struct SpawnOnDrop {
    handle: gpm::Handle,
    depth: usize,
    _guard: DropGuard,
    drops: DropCounter,
    spawned: Arc<Mutex<Vec<gpm::JoinHandle<()>>>>,
}

impl SpawnOnDrop {
    fn new(
        handle: gpm::Handle,
        depth: usize,
        drops: &DropCounter,
        spawned: &Arc<Mutex<Vec<gpm::JoinHandle<()>>>>,
    ) -> SpawnOnDrop {
        SpawnOnDrop {
            handle,
            depth,
            _guard: drops.guard(),
            drops: drops.clone(),
            spawned: Arc::clone(spawned),
        }
    }
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        if self.depth == 0 {
            return;
        }
        let next = SpawnOnDrop::new(
            self.handle.clone(),
            self.depth - 1,
            &self.drops,
            &self.spawned,
        );
        let join = self.handle.spawn(async move {
            let _next = next;
            futures::future::pending::<()>().await;
        });
        self.spawned.lock().unwrap().push(join);
    }
}

rt_test! {
    /// Tasks whose futures spawn new tasks from their `Drop` during shutdown: the new tasks
    /// are dropped too (three generations), shutdown does not hang, and every handle of a
    /// task spawned during shutdown reports cancellation.
    fn shutdown_with_tasks_spawning_in_drop(rt: gpm::Runtime) {
        const DEPTH: usize = 3;
        let drops = DropCounter::new();
        let spawned = Arc::new(Mutex::new(Vec::new()));
        drop(spawn_parked_tasks(&rt, K, || {
            SpawnOnDrop::new(rt.handle().clone(), DEPTH, &drops, &spawned)
        }));
        drop(rt);
        assert_eq!(drops.drops(), K * (DEPTH + 1));
        let spawned = std::mem::take(&mut *spawned.lock().unwrap());
        assert_eq!(spawned.len(), K * DEPTH);
        for join in spawned {
            assert!(futures::executor::block_on(join).unwrap_err().is_cancelled());
        }
    }
}

rt_test! {
    /// Join handles held across shutdown: pending tasks report `is_cancelled` (polled with
    /// `futures::executor::block_on`, or awaited on a fresh runtime); a task that had
    /// completed still gives its output.
    fn join_handles_survive_shutdown(rt: gpm::Runtime) {
        let pending: Vec<_> = (0..10)
            .map(|_| rt.spawn(futures::future::pending::<u32>()))
            .collect();
        let completed = rt.spawn(async { String::from("finished before shutdown") });
        while !completed.is_finished() {
            std::thread::yield_now();
        }
        drop(rt);
        let fresh = gpm_tests::runtime(1);
        for (i, handle) in pending.into_iter().enumerate() {
            assert!(handle.is_finished());
            let error = if i % 2 == 0 {
                futures::executor::block_on(handle).unwrap_err()
            } else {
                fresh.block_on(async { fresh.spawn(handle).await.unwrap() }).unwrap_err()
            };
            assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        }
        assert_eq!(futures::executor::block_on(completed).unwrap(), "finished before shutdown");
    }
}

rt_test! {
    /// A task waiting on a channel whose sender lives outside the runtime is cancelled at
    /// shutdown; sending (waking the dead task) afterwards is harmless.
    fn wake_after_shutdown_is_harmless(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        let mut senders = Vec::new();
        let mut started = Vec::new();
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let (tx, rx) = oneshot::channel::<u8>();
                let (started_tx, started_rx) = oneshot::channel::<()>();
                senders.push(tx);
                started.push(started_rx);
                let guard = drops.guard();
                rt.spawn(async move {
                    let _guard = guard;
                    started_tx.send(()).unwrap();
                    rx.await
                })
            })
            .collect();
        for started_rx in started {
            futures::executor::block_on(started_rx).unwrap();
        }
        drop(rt);
        assert_eq!(drops.drops(), 10);
        for tx in senders {
            // The receiver was dropped with the task.
            assert_eq!(tx.send(1), Err(1));
        }
        for handle in handles {
            assert!(futures::executor::block_on(handle).unwrap_err().is_cancelled());
        }
    }
}

rt_test! {
    /// After shutdown, spawning through a surviving `Handle` gives a cancelled join handle:
    /// the future is dropped once without running, and a blocking closure never runs.
    fn spawn_after_shutdown_is_cancelled(rt: gpm::Runtime) {
        let handle = rt.handle().clone();
        drop(rt);
        let probe = RunProbe::new();
        let task = handle.spawn(probe.task());
        assert!(futures::executor::block_on(task).unwrap_err().is_cancelled());
        assert_eq!(probe.drops(), 1);
        let blocking = handle.spawn_blocking(probe.closure());
        assert!(futures::executor::block_on(blocking).unwrap_err().is_cancelled());
        assert!(!probe.ran(), "a task spawned after shutdown ran");
    }
}

/// Runs a blocking closure that waits on a channel and returns (sending on `done`) once
/// released; returns its join handle, the release sender and the done receiver, after the
/// closure has started.
fn start_stuck_blocking_closure(
    rt: &gpm::Runtime,
) -> (gpm::JoinHandle<u32>, mpsc::Sender<u32>, mpsc::Receiver<()>) {
    let (release_tx, release_rx) = mpsc::channel::<u32>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let value = release_rx.recv().expect("release sender dropped");
        done_tx.send(()).unwrap();
        value
    });
    started_rx.recv().unwrap();
    (handle, release_tx, done_rx)
}

rt_test! {
    /// `shutdown_timeout` returns although a blocking closure is still stuck (it is released
    /// only after the call returned); the closure then finishes with its output.
    fn shutdown_timeout_returns_with_stuck_blocking_closure(rt: gpm::Runtime) {
        let (handle, release_tx, done_rx) = start_stuck_blocking_closure(&rt);
        rt.shutdown_timeout(Duration::from_millis(50));
        // Reaching this line is the check: the closure is still waiting for us.
        release_tx.send(7).unwrap();
        done_rx.recv().unwrap();
        assert_eq!(futures::executor::block_on(handle).unwrap(), 7);
    }
}

rt_test! {
    /// `shutdown_background` returns without waiting for a stuck blocking closure.
    fn shutdown_background_returns_with_stuck_blocking_closure(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        drop(rt.spawn(async move {
            let _guard = guard;
            futures::future::pending::<()>().await;
        }));
        let (handle, release_tx, done_rx) = start_stuck_blocking_closure(&rt);
        rt.shutdown_background();
        // Tasks are cancelled even though the threads are not waited for. A task caught in
        // the middle of a poll is dropped by its worker when the poll returns, which this
        // call does not wait for: wait for the drop (the watchdog catches a leak).
        while drops.drops() == 0 {
            std::thread::yield_now();
        }
        assert_eq!(drops.drops(), 1);
        release_tx.send(8).unwrap();
        done_rx.recv().unwrap();
        assert_eq!(futures::executor::block_on(handle).unwrap(), 8);
    }
}

/// A `spawn_blocking` closure still queued (every blocking thread busy) when the runtime
/// shuts down runs once a thread is free, as in tokio: `shutdown_timeout` returns without
/// waiting for it, and its handle then gets its output; its captures are dropped once.
#[test]
fn queued_blocking_closure_runs_after_shutdown() {
    watchdog("queued_blocking_closure_runs_after_shutdown", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (busy, release_tx, done_rx) = start_stuck_blocking_closure(&rt);
        let drops = DropCounter::new();
        let guard = drops.guard();
        let queued = rt.spawn_blocking(move || {
            let _guard = guard;
            11
        });
        rt.shutdown_timeout(Duration::from_millis(50));
        release_tx.send(1).unwrap();
        done_rx.recv().unwrap();
        assert_eq!(futures::executor::block_on(busy).unwrap(), 1);
        assert_eq!(futures::executor::block_on(queued).unwrap(), 11);
        assert_eq!(drops.drops(), 1);
    });
}

/// A `spawn_blocking` closure submitted after shutdown never runs: its handle reports
/// cancellation and its captures are dropped once.
#[test]
fn blocking_closure_after_shutdown_is_cancelled() {
    gpm_tests::with_runtime("blocking_closure_after_shutdown_is_cancelled", 1, |rt| {
        let handle = rt.handle().clone();
        drop(rt);
        let probe = RunProbe::new();
        let late = handle.spawn_blocking(probe.closure());
        let error = futures::executor::block_on(late).unwrap_err();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert!(!probe.ran());
        assert_eq!(probe.drops(), 1);
    });
}

/// Dropping a runtime from inside a task of another runtime does not block that worker or
/// hang, and still drops the inner runtime's tasks exactly once.
#[test]
fn drop_runtime_inside_task_of_another() {
    watchdog("drop_runtime_inside_task_of_another", || {
        let outer = gpm_tests::runtime(2);
        let drops = DropCounter::new();
        let counter = drops.clone();
        let inner_done = outer.block_on(outer.spawn(async move {
            let inner = gpm_tests::runtime(2);
            drop(spawn_parked_tasks(&inner, K, || counter.guard()));
            drop(inner);
            gpm::spawn(async { "outer still serving" }).await.unwrap()
        }));
        assert_eq!(inner_done.unwrap(), "outer still serving");
        // Idle tasks are dropped by the drop itself; a task still finishing the poll that
        // sent `started` is dropped by its worker just after, which a drop inside a task
        // does not wait for. Wait for all K (the watchdog catches a leak), then exactly K.
        while drops.drops() < K {
            std::thread::yield_now();
        }
        assert_eq!(drops.drops(), K);
    });
}

/// Shutting down while foreign threads keep spawning through handles neither hangs nor
/// leaks: every future spawned is dropped exactly once, whether it ran or was cancelled.
#[test]
fn shutdown_races_with_foreign_spawns() {
    gpm_tests::with_runtime("shutdown_races_with_foreign_spawns", 2, |rt| {
        let drops = DropCounter::new();
        let spawned = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let handle = rt.handle().clone();
                let drops = drops.clone();
                let spawned = Arc::clone(&spawned);
                let stop = Arc::clone(&stop);
                let ready_tx = ready_tx.clone();
                std::thread::spawn(move || {
                    let mut handles = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let guard = drops.guard();
                        handles.push(handle.spawn(async move {
                            let _guard = guard;
                            futures::future::pending::<()>().await;
                        }));
                        if spawned.fetch_add(1, Ordering::SeqCst) == 100 {
                            ready_tx.send(()).unwrap();
                        }
                    }
                    handles
                })
            })
            .collect();
        ready_rx.recv().unwrap();
        drop(rt);
        stop.store(true, Ordering::SeqCst);
        let handles: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(handles.len(), spawned.load(Ordering::SeqCst));
        for handle in handles {
            assert!(futures::executor::block_on(handle)
                .unwrap_err()
                .is_cancelled());
        }
        assert_eq!(drops.drops(), spawned.load(Ordering::SeqCst));
    });
}

rt_test! {
    /// A thread blocked in `Handle::block_on(join handle)` of a pending task is woken by the
    /// shutdown of the runtime and gets the cancellation.
    fn shutdown_wakes_join_handle_awaited_elsewhere(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        let task = spawn_parked_task(&rt, drops.guard());
        let (polled_tx, polled_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                let mut task = task;
                // Register this thread's waker with the task before the shutdown.
                assert!(futures::poll!(&mut task).is_pending());
                polled_tx.send(()).unwrap();
                task.await
            })
        });
        polled_rx.recv().unwrap();
        drop(rt);
        let error = waiter.join().unwrap().unwrap_err();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert_eq!(drops.drops(), 1);
    }
}

rt_test! {
    /// A task still inside `block_in_place` when `shutdown_timeout` returns finishes its poll
    /// once released: a spawn it makes then is cancelled, its future is dropped exactly once,
    /// and its handle reports cancellation.
    fn shutdown_while_task_in_block_in_place(rt: gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let (inside_tx, inside_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (spawned_tx, spawned_rx) = mpsc::channel::<bool>();
        let task = rt.spawn(async move {
            let _guard = guard;
            gpm::task::block_in_place(|| {
                inside_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            // The runtime is shut down by now: this spawn is cancelled at once.
            let spawned = gpm::spawn(async { 1 }).await;
            spawned_tx.send(spawned.is_err_and(|e| e.is_cancelled())).unwrap();
            futures::future::pending::<()>().await;
        });
        inside_rx.recv().unwrap();
        rt.shutdown_timeout(Duration::from_millis(50));
        release_tx.send(()).unwrap();
        assert!(spawned_rx.recv().unwrap(), "a spawn after shutdown was not cancelled");
        let error = futures::executor::block_on(task).unwrap_err();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert_eq!(drops.drops(), 1);
    }
}

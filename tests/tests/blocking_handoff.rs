//! `block_in_place` hands its P to another M and `spawn_blocking` runs on its own threads,
//! so both make progress while every P's thread is blocked.

use gpm_tests::{join_all, rt_test, spawn_and_sum, watchdog};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

rt_test! {
    /// As many tasks as workers block in `block_in_place` on a channel that only an async
    /// task spawned afterwards releases. Without hand-off of the Ps nothing could run that
    /// task and the test would hang.
    fn block_in_place_on_every_worker_lets_async_task_release_them(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        let (inside_tx, inside_rx) = mpsc::channel::<usize>();
        let mut release = Vec::new();
        let blocked: Vec<_> = (0..workers)
            .map(|i| {
                let (tx, rx) = mpsc::channel::<usize>();
                release.push(tx);
                let inside_tx = inside_tx.clone();
                rt.spawn(async move {
                    let value = gpm::task::block_in_place(|| {
                        inside_tx.send(i).unwrap();
                        rx.recv().expect("the releasing task dropped its sender")
                    });
                    // The task goes on as an ordinary async task afterwards.
                    gpm::task::yield_now().await;
                    value + gpm::spawn(async { 1 }).await.unwrap()
                })
            })
            .collect();
        // Every blocked task is inside its closure, so every original M is blocked.
        let mut inside: Vec<usize> = (0..workers).map(|_| inside_rx.recv().unwrap()).collect();
        inside.sort_unstable();
        assert_eq!(inside, (0..workers).collect::<Vec<_>>());
        let releaser = rt.spawn(async move {
            for (i, tx) in release.into_iter().enumerate() {
                let value = gpm::spawn(async move { i * 10 }).await.unwrap();
                tx.send(value).unwrap();
                gpm::task::yield_now().await;
            }
        });
        let values = rt.block_on(async {
            releaser.await.unwrap();
            join_all(blocked).await
        });
        assert_eq!(values, (0..workers).map(|i| i * 10 + 1).collect::<Vec<_>>());
    }
}

/// Spawns a task per worker, made by `task` from the worker's index, the receiver of a
/// channel of its own and a sender to signal on from inside its `block_in_place`, and waits
/// until every task has signalled: then every worker's M is blocked. The tasks' join handles
/// and their channels' senders, in index order.
fn block_every_worker<T, F>(
    rt: &gpm::Runtime,
    mut task: impl FnMut(usize, mpsc::Receiver<T>, mpsc::Sender<()>) -> F,
) -> (Vec<gpm::JoinHandle<F::Output>>, Vec<mpsc::Sender<T>>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let workers = rt.handle().num_workers();
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let mut senders = Vec::new();
    let tasks = (0..workers)
        .map(|i| {
            let (tx, rx) = mpsc::channel();
            senders.push(tx);
            rt.spawn(task(i, rx, inside_tx.clone()))
        })
        .collect();
    for _ in 0..workers {
        inside_rx.recv().unwrap();
    }
    (tasks, senders)
}

rt_test! {
    /// Every worker blocks in `block_in_place` waiting for a value from a `spawn_blocking`
    /// closure, which itself waits for a value sent by an async task spawned afterwards.
    fn block_in_place_waits_for_spawn_blocking_waiting_for_async_task(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        let (tasks, to_blocking) = block_every_worker(rt, |i, a_rx: mpsc::Receiver<usize>, inside_tx| {
            let (b_tx, b_rx) = mpsc::channel::<usize>();
            async move {
                let blocking = gpm::task::spawn_blocking(move || {
                    let value = a_rx.recv().expect("the async sender is gone");
                    b_tx.send(value * 2).unwrap();
                    i
                });
                let from_blocking = gpm::task::block_in_place(|| {
                    inside_tx.send(()).unwrap();
                    b_rx.recv().expect("the blocking closure is gone")
                });
                assert_eq!(blocking.await.unwrap(), i);
                from_blocking
            }
        });
        let sender = rt.spawn(async move {
            for (i, tx) in to_blocking.into_iter().enumerate() {
                gpm::task::yield_now().await;
                tx.send(i + 100).unwrap();
            }
        });
        let values = rt.block_on(async {
            sender.await.unwrap();
            join_all(tasks).await
        });
        assert_eq!(values, (0..workers).map(|i| (i + 100) * 2).collect::<Vec<_>>());
    }
}

rt_test! {
    /// Every worker blocks in `block_in_place` on `block_on(join handle)` of a
    /// `spawn_blocking` closure that waits for an async task: the chain completes.
    fn block_in_place_block_on_spawn_blocking_handle(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        let (tasks, senders) = block_every_worker(rt, |_, rx: mpsc::Receiver<String>, inside_tx| async move {
            let blocking = gpm::task::spawn_blocking(move || rx.recv().unwrap() + "!");
            gpm::task::block_in_place(move || {
                inside_tx.send(()).unwrap();
                gpm::Handle::current().block_on(blocking).unwrap()
            })
        });
        drop(rt.spawn(async move {
            for (i, tx) in senders.into_iter().enumerate() {
                tx.send(format!("value {i}")).unwrap();
            }
        }));
        let values = rt.block_on(join_all(tasks));
        assert_eq!(values, (0..workers).map(|i| format!("value {i}!")).collect::<Vec<_>>());
    }
}

rt_test! {
    /// Many tasks (more than workers) call `block_in_place` repeatedly, interleaved with
    /// awaits and spawns: every call returns and every task finishes (hand-off and reclaim of
    /// the P, over and over).
    fn repeated_block_in_place(rt: &gpm::Runtime) {
        const TASKS: usize = 16;
        const ROUNDS: usize = 100;
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let calls = Arc::clone(&calls);
                rt.spawn(async move {
                    let mut sum = 0;
                    for round in 0..ROUNDS {
                        sum += gpm::task::block_in_place(|| {
                            calls.fetch_add(1, Ordering::SeqCst);
                            round
                        });
                        if round % 3 == 0 {
                            gpm::task::yield_now().await;
                        }
                        if round % 10 == 0 {
                            sum += gpm::spawn(async { 0 }).await.unwrap();
                        }
                    }
                    sum
                })
            })
            .collect();
        rt.block_on(async {
            for task in tasks {
                assert_eq!(task.await.unwrap(), ROUNDS * (ROUNDS - 1) / 2);
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), TASKS * ROUNDS);
    }
}

rt_test! {
    /// `block_in_place` nested in `block_in_place`, and `block_in_place` inside a
    /// `spawn_blocking` closure or inside `block_on`, just run the closure on that thread.
    fn block_in_place_in_non_worker_contexts(rt: &gpm::Runtime) {
        let nested = rt
            .block_on(rt.spawn(async {
                gpm::task::block_in_place(|| {
                    let outer = std::thread::current().id();
                    gpm::task::block_in_place(|| (std::thread::current().id() == outer, 1))
                })
            }))
            .unwrap();
        assert_eq!(nested, (true, 1));
        let in_blocking = rt
            .block_on(rt.spawn_blocking(|| {
                let me = std::thread::current().id();
                gpm::task::block_in_place(|| std::thread::current().id() == me)
            }))
            .unwrap();
        assert!(in_blocking);
        let me = std::thread::current().id();
        let in_block_on =
            rt.block_on(async { gpm::task::block_in_place(|| std::thread::current().id()) });
        assert_eq!(in_block_on, me);
    }
}

/// Outside any runtime `block_in_place` simply runs the closure on the calling thread and
/// returns its value.
#[test]
fn block_in_place_outside_runtime_runs_closure() {
    watchdog("block_in_place_outside_runtime_runs_closure", || {
        let me = std::thread::current().id();
        let text = String::from("moved in");
        let (thread, value) =
            gpm::task::block_in_place(move || (std::thread::current().id(), text + "!"));
        assert_eq!(thread, me);
        assert_eq!(value, "moved in!");
        // A panic in the closure propagates to the caller.
        let message =
            gpm_tests::catch_panic_message(|| gpm::task::block_in_place(|| panic!("inner")));
        assert_eq!(message, "inner");
    });
}

/// With a single blocking thread allowed, more closures than threads queue up and all run;
/// meanwhile async tasks keep running.
#[test]
fn spawn_blocking_queues_past_max_blocking_threads() {
    watchdog("spawn_blocking_queues_past_max_blocking_threads", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(2)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let ran = Arc::clone(&ran);
                rt.spawn_blocking(move || {
                    ran.lock().unwrap().push(i);
                    i
                })
            })
            .collect();
        let async_sum = rt.block_on(spawn_and_sum(100));
        assert_eq!(async_sum, 4950);
        let results = rt.block_on(join_all(handles));
        assert_eq!(results, (0..20).collect::<Vec<_>>());
        let mut ran = ran.lock().unwrap().clone();
        ran.sort_unstable();
        assert_eq!(ran, (0..20).collect::<Vec<_>>());
    });
}

/// A one-shot event that threads wait for with a deadlock guard.
#[derive(Default)]
struct Event {
    set: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Event {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Whether the event was set within `limit` (a deadlock guard: false is a failure).
    fn wait(&self, limit: Duration) -> bool {
        let set = self.set.lock().unwrap();
        let (set, _) = self
            .changed
            .wait_timeout_while(set, limit, |set| !*set)
            .unwrap();
        *set
    }
}

/// The hand-off of `block_in_place` is mandatory (Go's `startm`): with the blocking pool
/// at its cap and a closure queued behind it, the thread started for the handed-off P runs
/// the P, not the queued closure. Here every blocking wait needs a task that sits in the
/// P's `runnext`: if the new thread took the queued closure first, nothing could run that
/// task until the closures' deadlock guards gave up.
#[test]
fn block_in_place_hand_off_is_not_queued_behind_blocking_closures() {
    watchdog(
        "block_in_place_hand_off_is_not_queued_behind_blocking_closures",
        || {
            const GUARD: Duration = Duration::from_secs(10);
            let rt = gpm::Runtime::builder()
                .worker_threads(1)
                .max_blocking_threads(1)
                .build()
                .unwrap();
            let task_ran = Arc::new(Event::default());
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let running = {
                let task_ran = Arc::clone(&task_ran);
                rt.spawn_blocking(move || {
                    started_tx.send(()).unwrap();
                    task_ran.wait(GUARD)
                })
            };
            started_rx.recv().unwrap();
            let queued = {
                let task_ran = Arc::clone(&task_ran);
                rt.spawn_blocking(move || task_ran.wait(GUARD))
            };
            let in_place = {
                let task_ran = Arc::clone(&task_ran);
                rt.spawn(async move {
                    let set_by_task = Arc::clone(&task_ran);
                    let _runnext = gpm::spawn(async move { set_by_task.set() });
                    gpm::task::block_in_place(|| task_ran.wait(GUARD))
                })
            };
            let results = rt.block_on(async move {
                [in_place.await, running.await, queued.await].map(Result::unwrap)
            });
            assert_eq!(
                results, [true; 3],
                "(block_in_place, running, queued) waited in vain"
            );
        },
    );
}

//! `JoinHandle::abort` on tasks that wait, run, have not started yet, or have completed.

use futures::channel::oneshot;
use gpm_tests::{rt_test, spawn_parked_task, DropCounter, RunProbe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

rt_test! {
    /// Aborting a task parked on a never-completing future cancels it: the join handle
    /// reports `is_cancelled`, and the future (with its drop guard) is dropped exactly once.
    fn abort_pending_task(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let task = spawn_parked_task(rt, drops.guard());
        assert_eq!(drops.drops(), 0);
        assert!(!task.is_finished());
        task.abort();
        let error = rt.block_on(task).unwrap_err();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert!(!error.is_panic());
        assert_eq!(drops.drops(), 1);
    }
}

rt_test! {
    /// Aborting a task that keeps running (a `yield_now` loop) from outside the runtime
    /// cancels it: `is_cancelled`, and its drop guard ran exactly once.
    fn abort_running_task_from_outside(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let polls = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let task = {
            let polls = Arc::clone(&polls);
            rt.spawn(async move {
                let _guard = guard;
                started_tx.send(()).unwrap();
                loop {
                    polls.fetch_add(1, Ordering::SeqCst);
                    gpm::task::yield_now().await;
                }
            })
        };
        started_rx.recv().unwrap();
        // Let it go around its loop a few times so the abort lands on a busy task.
        while polls.load(Ordering::SeqCst) < 10 {
            std::thread::yield_now();
        }
        task.abort();
        let error = rt.block_on(task).unwrap_err();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert_eq!(drops.drops(), 1);
        // The loop stopped: its count no longer moves once the task is gone.
        let after = polls.load(Ordering::SeqCst);
        rt.block_on(async {
            for _ in 0..100 {
                gpm::task::yield_now().await;
            }
        });
        assert_eq!(polls.load(Ordering::SeqCst), after);
    }
}

rt_test! {
    /// One task aborts another that loops on `yield_now` (on the same or another worker):
    /// the victim is cancelled and dropped once.
    fn abort_running_task_from_another_task(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let error = rt.block_on(rt.spawn(async move {
            let (started_tx, started_rx) = oneshot::channel();
            let victim = gpm::spawn(async move {
                let _guard = guard;
                started_tx.send(()).unwrap();
                loop {
                    gpm::task::yield_now().await;
                }
            });
            started_rx.await.unwrap();
            gpm::task::yield_now().await;
            victim.abort();
            victim.await.unwrap_err()
        }));
        let error = error.unwrap();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert_eq!(drops.drops(), 1);
    }
}

rt_test! {
    /// Aborting a task that already completed changes nothing: awaiting it gives `Ok`, and
    /// aborting again (or twice) is harmless. Its output is dropped exactly once.
    fn abort_completed_task_keeps_result(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let task = rt.spawn(async move { (String::from("done"), guard) });
        while !task.is_finished() {
            std::thread::yield_now();
        }
        task.abort();
        task.abort();
        assert!(task.is_finished());
        let (text, output_guard) = rt
            .block_on(task)
            .expect("abort after completion lost the output");
        assert_eq!(text, "done");
        assert_eq!(drops.drops(), 0);
        drop(output_guard);
        assert_eq!(drops.drops(), 1);
    }
}

rt_test! {
    /// Aborting many waiting tasks at once (while others keep running) cancels exactly those,
    /// each dropped once; the untouched ones complete normally.
    fn abort_many_tasks(rt: &gpm::Runtime) {
        const N: usize = 200;
        let drops = DropCounter::new();
        let (release_tx, release_rx) = futures::channel::mpsc::unbounded::<()>();
        let release_rx = Arc::new(futures::lock::Mutex::new(release_rx));
        let mut victims = Vec::new();
        let mut survivors = Vec::new();
        for i in 0..N {
            let guard = drops.guard();
            if i % 2 == 0 {
                victims.push(rt.spawn(async move {
                    let _guard = guard;
                    futures::future::pending::<()>().await;
                }));
            } else {
                let release_rx = Arc::clone(&release_rx);
                survivors.push(rt.spawn(async move {
                    use futures::StreamExt;
                    let _guard = guard;
                    release_rx.lock().await.next().await.unwrap();
                    i
                }));
            }
        }
        for victim in &victims {
            victim.abort();
        }
        for _ in 0..survivors.len() {
            release_tx.unbounded_send(()).unwrap();
        }
        rt.block_on(async {
            for victim in victims {
                assert!(victim.await.unwrap_err().is_cancelled());
            }
            let mut sum = 0;
            for survivor in survivors {
                sum += survivor.await.unwrap();
            }
            assert_eq!(sum, (0..N).filter(|i| i % 2 == 1).sum::<usize>());
        });
        assert_eq!(drops.drops(), N);
    }
}

/// A task aborted before it was ever polled never runs its body, completes as cancelled
/// and has its future dropped once (1 worker, so the spawner keeps the only P meanwhile).
#[test]
fn abort_before_first_poll() {
    let probe = RunProbe::new();
    let body = probe.task();
    let error = gpm_tests::output_of_task("abort_before_first_poll", 1, async move {
        let victim = gpm::spawn(body);
        // The only worker is busy with this task: the victim cannot have run yet.
        victim.abort();
        victim.await.unwrap_err()
    });
    assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
    assert!(!probe.ran(), "an aborted task ran its body");
    assert_eq!(probe.drops(), 1);
}

/// Dropping the join handle of an aborted task (without awaiting it) still drops the task's
/// future exactly once, and the runtime's task count returns to zero.
#[test]
fn abort_then_drop_join_handle() {
    gpm_tests::with_runtime("abort_then_drop_join_handle", 2, |rt| {
        let drops = DropCounter::new();
        let task = spawn_parked_task(&rt, drops.guard());
        task.abort();
        drop(task);
        while drops.drops() == 0 || rt.handle().num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
        assert_eq!(drops.drops(), 1);
        drop(rt);
        assert_eq!(drops.drops(), 1);
    });
}

rt_test! {
    /// A task that aborts itself (through its own join handle, sent to it) is cancelled when
    /// its poll returns: code after its next await never runs and its future is dropped once.
    fn task_aborts_itself(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let reached = Arc::new(AtomicBool::new(false));
        let reached_task = Arc::clone(&reached);
        let (handle_tx, handle_rx) = oneshot::channel::<gpm::JoinHandle<()>>();
        let (aborted_tx, aborted_rx) = oneshot::channel::<()>();
        let task = rt.spawn(async move {
            let _guard = guard;
            let own = handle_rx.await.unwrap();
            own.abort();
            aborted_tx.send(()).unwrap();
            gpm::task::yield_now().await;
            reached_task.store(true, Ordering::SeqCst);
        });
        handle_tx.send(task).unwrap();
        rt.block_on(aborted_rx).unwrap();
        while drops.drops() == 0 {
            std::thread::yield_now();
        }
        assert_eq!(drops.drops(), 1);
        assert!(!reached.load(Ordering::SeqCst), "the task ran on after aborting itself");
    }
}

rt_test! {
    /// `AbortHandle` (from `JoinHandle::abort_handle`) cancels a pending task like
    /// `JoinHandle::abort`, reports the same id, and sees the task finish.
    fn abort_handle_cancels(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let task = rt.spawn(async move {
            let _guard = guard;
            futures::future::pending::<()>().await;
        });
        let abort = task.abort_handle();
        assert_eq!(abort.id(), task.id());
        assert!(!abort.is_finished());
        let clone = abort.clone();
        drop(abort);
        clone.abort();
        let error = rt.block_on(task).unwrap_err();
        assert!(error.is_cancelled(), "expected cancellation, got {error:?}");
        assert!(clone.is_finished());
        assert_eq!(drops.drops(), 1);
    }
}

rt_test! {
    /// An `AbortHandle` outlives the join handle and the task: it keeps the task's header
    /// (not its output) alive, and aborting a finished task does nothing.
    fn abort_handle_outlives_task(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let output = drops.guard();
        let task = rt.spawn(async move { output });
        let abort = task.abort_handle();
        let guard = rt.block_on(task).unwrap();
        drop(guard);
        assert_eq!(drops.drops(), 1);
        assert!(abort.is_finished());
        abort.abort();
        assert!(abort.is_finished());
        // Send + Sync: usable from another thread.
        std::thread::spawn(move || abort.abort()).join().unwrap();
    }
}

rt_test! {
    /// Dropping the join handle detaches: an `AbortHandle` can still cancel the task, and
    /// its future is dropped exactly once.
    fn abort_handle_after_join_handle_dropped(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        /// Counts its drop, then says so (in that order, whatever order the future's
        /// fields drop in).
        struct CountThenNotify(Option<gpm_tests::DropGuard>, std::sync::mpsc::Sender<()>);
        impl Drop for CountThenNotify {
            fn drop(&mut self) {
                drop(self.0.take());
                let _ = self.1.send(());
            }
        }
        let probe = CountThenNotify(Some(drops.guard()), dropped_tx);
        let task = rt.spawn(async move {
            let _probe = probe;
            futures::future::pending::<()>().await;
        });
        let abort = task.abort_handle();
        drop(task);
        abort.abort();
        dropped_rx.recv().unwrap();
        assert_eq!(drops.drops(), 1);
        drop(abort);
    }
}

#[test]
fn abort_handle_is_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + std::panic::UnwindSafe + std::fmt::Debug>() {}
    assert_traits::<gpm::task::AbortHandle>();
}

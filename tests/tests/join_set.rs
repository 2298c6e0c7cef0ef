//! `gpm::task::JoinSet`: tokio's `tests/task_join_set.rs`, ported, plus gpm's own checks.
//!
//! tokio runs most of these on a paused clock; gpm has none yet, so where tokio orders events
//! with `sleep(i seconds)` the port uses short real sleeps only where the order does not
//! matter, and gates (oneshot channels) where it does. The `spawn_local` tests are left out
//! (gpm has no LocalSet yet). Assertions are tokio's.

use futures::channel::oneshot;
use futures::future::{pending, FutureExt};
use gpm::task::{AbortHandle, JoinSet};
use gpm_tests::{rt_test, runtime, watchdog, DropCounter};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Yields until every handle reports its task finished.
async fn wait_finished(handles: &[AbortHandle]) {
    while !handles.iter().all(AbortHandle::is_finished) {
        gpm::task::yield_now().await;
    }
}

/// tokio's `test_with_sleep` join loop: joins the set's ten tasks (outputs `0..10`), checks
/// each output came once and the set is then empty.
async fn join_ten_and_check_each_seen(set: &mut JoinSet<usize>) {
    let mut seen = [false; 10];
    while let Some(res) = set.join_next().await.transpose().unwrap() {
        seen[res] = true;
    }

    for was_seen in &seen {
        assert!(was_seen);
    }
    assert!(set.join_next().await.is_none());
}

rt_test! {
    fn test_with_sleep(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set = JoinSet::new();

            for i in 0..10 {
                set.spawn(async move { i });
                assert_eq!(set.len(), 1 + i);
            }
            set.detach_all();
            assert_eq!(set.len(), 0);

            assert!(set.join_next().await.is_none());

            for i in 0..10 {
                set.spawn(async move {
                    gpm::time::sleep(Duration::from_millis(i as u64)).await;
                    i
                });
                assert_eq!(set.len(), 1 + i);
            }

            join_ten_and_check_each_seen(&mut set).await;

            // Do it again.
            for i in 0..10 {
                set.spawn(async move {
                    gpm::time::sleep(Duration::from_millis(i as u64)).await;
                    i
                });
            }

            join_ten_and_check_each_seen(&mut set).await;
        });
    }
}

rt_test! {
    fn test_abort_on_drop(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set = JoinSet::new();

            let mut recvs = Vec::new();

            for _ in 0..16 {
                let (send, recv) = oneshot::channel::<()>();
                recvs.push(recv);

                set.spawn(async {
                    // This task will never complete on its own.
                    futures::future::pending::<()>().await;
                    drop(send);
                });
            }

            drop(set);

            for recv in recvs {
                // The task is aborted soon and we will receive an error.
                assert!(recv.await.is_err());
            }
        });
    }
}

rt_test! {
    fn alternating(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set = JoinSet::new();

            assert_eq!(set.len(), 0);
            set.spawn(async {});
            assert_eq!(set.len(), 1);
            set.spawn(async {});
            assert_eq!(set.len(), 2);

            for _ in 0..16 {
                let () = set.join_next().await.unwrap().unwrap();
                assert_eq!(set.len(), 1);
                set.spawn(async {});
                assert_eq!(set.len(), 2);
            }
        });
    }
}

rt_test! {
    /// tokio sleeps `i` seconds on a paused clock; here every task waits on a gate opened
    /// after the aborts, so an odd task cannot complete before its abort.
    fn abort_tasks(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set = JoinSet::new();
            let mut num_canceled = 0;
            let mut num_completed = 0;
            let mut gates = Vec::new();
            for i in 0..16 {
                let (open, gate) = oneshot::channel::<()>();
                gates.push(open);
                let abort = set.spawn(async move {
                    gate.await.unwrap();
                    i
                });

                if i % 2 != 0 {
                    // abort odd-numbered tasks.
                    abort.abort();
                }
            }
            for open in gates {
                let _ = open.send(());
            }
            loop {
                match set.join_next().await {
                    Some(Ok(res)) => {
                        num_completed += 1;
                        assert_eq!(res % 2, 0);
                    }
                    Some(Err(e)) => {
                        assert!(e.is_cancelled());
                        num_canceled += 1;
                    }
                    None => break,
                }
            }

            assert_eq!(num_canceled, 8);
            assert_eq!(num_completed, 8);
        });
    }
}

/// tokio's task never ran on its current-thread runtime; on gpm it could, so it never
/// completes on its own.
#[test]
fn runtime_gone() {
    watchdog("runtime_gone", || {
        let mut set = JoinSet::new();
        {
            let rt = runtime(1);
            set.spawn_on(pending::<i32>(), rt.handle());
            drop(rt);
        }

        assert!(runtime(1)
            .block_on(set.join_next())
            .unwrap()
            .unwrap_err()
            .is_cancelled());
    });
}

rt_test! {
    fn join_all(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set: JoinSet<i32> = JoinSet::new();

            for _ in 0..5 {
                set.spawn(async { 1 });
            }
            let res: Vec<i32> = set.join_all().await;

            assert_eq!(res.len(), 5);
            for itm in res.into_iter() {
                assert_eq!(itm, 1)
            }
        });
    }
}

rt_test! {
    /// tokio's first task sleeps longer than the second, which panics; here the first waits
    /// on a gate that never opens.
    fn task_panics(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set: JoinSet<()> = JoinSet::new();

            let (tx, mut rx) = oneshot::channel();
            let (_never_open, gate) = oneshot::channel::<()>();
            assert_eq!(set.len(), 0);

            set.spawn(async move {
                let _ = gate.await;
                tx.send(()).unwrap();
            });
            assert_eq!(set.len(), 1);

            set.spawn(async {
                panic!();
            });
            assert_eq!(set.len(), 2);

            let panic = gpm::spawn(set.join_all()).await.unwrap_err();
            assert!(!matches!(rx.try_recv(), Ok(Some(()))));
            assert!(panic.is_panic());
        });
    }
}

rt_test! {
    /// tokio waits on its paused clock for the five quick tasks; here the test waits until
    /// their abort handles report them finished.
    fn abort_all(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set: JoinSet<()> = JoinSet::new();

            for _ in 0..5 {
                set.spawn(futures::future::pending());
            }
            let mut quick = Vec::new();
            for _ in 0..5 {
                quick.push(set.spawn(async {
                    gpm::time::sleep(Duration::from_millis(1)).await;
                }));
            }

            // The join set will now have 5 pending tasks and 5 ready tasks.
            wait_finished(&quick).await;

            set.abort_all();
            assert_eq!(set.len(), 10);

            let mut count = 0;
            while let Some(res) = set.join_next().await {
                if let Err(err) = res {
                    assert!(err.is_cancelled());
                }
                count += 1;
            }
            assert_eq!(count, 10);
            assert_eq!(set.len(), 0);
        });
    }
}

rt_test! {
    /// `join_next` works when the cooperative budget is exhausted. tokio waits on a
    /// semaphore; here the test waits until every task is finished.
    fn join_set_coop(rt: &gpm::Runtime) {
        // Large enough to trigger coop.
        const TASK_NUM: u32 = 1000;

        rt.block_on(async {
            let done = Arc::new(AtomicUsize::new(0));
            let mut set = JoinSet::new();
            let mut handles = Vec::new();

            for _ in 0..TASK_NUM {
                let done = Arc::clone(&done);
                handles.push(set.spawn(async move {
                    done.fetch_add(1, Ordering::SeqCst);
                }));
            }

            // Wait for all tasks to complete.
            wait_finished(&handles).await;
            assert_eq!(done.load(Ordering::SeqCst), TASK_NUM as usize);

            let mut count = 0;
            let mut coop_count = 0;
            loop {
                match set.join_next().now_or_never() {
                    Some(Some(Ok(()))) => {}
                    Some(Some(Err(err))) => panic!("failed: {err}"),
                    None => {
                        coop_count += 1;
                        gpm::task::yield_now().await;
                        continue;
                    }
                    Some(None) => break,
                }

                count += 1;
            }
            assert!(coop_count >= 1);
            assert_eq!(count, TASK_NUM);
        });
    }
}

rt_test! {
    /// tokio releases its tasks with a watch channel and waits until they are gone; here
    /// with one gate per task. A task's output reaches the set's ready list just after the
    /// task is marked finished, so the port drains until it has every output, then checks
    /// that the set reports none left.
    fn try_join_next(rt: &gpm::Runtime) {
        const TASK_NUM: u32 = 1000;

        rt.block_on(async {
            let mut set = JoinSet::new();
            let mut gates = Vec::new();
            let mut handles = Vec::new();
            let mut spawned = HashSet::with_capacity(TASK_NUM as usize);

            for _ in 0..TASK_NUM {
                let (open, gate) = oneshot::channel::<()>();
                gates.push(open);
                let handle = set.spawn(async move { gate.await.unwrap() });
                spawned.insert(handle.id());
                handles.push(handle);
            }

            assert!(set.try_join_next().is_none());

            for open in gates {
                open.send(()).unwrap();
            }
            wait_finished(&handles).await;

            let mut count = 0;
            let mut joined = HashSet::with_capacity(TASK_NUM as usize);
            while count < TASK_NUM {
                match set.try_join_next_with_id() {
                    Some(Ok((id, ()))) => {
                        count += 1;
                        joined.insert(id);
                    }
                    Some(Err(err)) => panic!("failed: {err}"),
                    None => gpm::task::yield_now().await,
                }
            }
            assert!(set.try_join_next().is_none());
            assert!(set.is_empty());

            assert_eq!(count, TASK_NUM);
            assert_eq!(joined, spawned);
        });
    }
}

rt_test! {
    fn extend(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set: JoinSet<_> = (0..5).map(|i| async move { i }).collect();

            set.extend((5..10).map(|i| async move { i }));

            let mut seen = [false; 10];
            while let Some(res) = set.join_next().await {
                let idx = res.unwrap();
                seen[idx] = true;
            }

            for s in &seen {
                assert!(s);
            }
        });
    }
}

rt_test! {
    /// Not in tokio's file: `shutdown` aborts every task, waits for them, and drops their
    /// futures exactly once; the set is empty and reusable afterwards.
    fn shutdown_aborts_and_waits(rt: &gpm::Runtime) {
        let drops = DropCounter::new();
        rt.block_on(async {
            let mut set = JoinSet::new();
            for _ in 0..32 {
                let guard = drops.guard();
                set.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await;
                });
            }
            set.shutdown().await;
            assert!(set.is_empty());
            assert_eq!(drops.drops(), 32);
            set.spawn(async {});
            assert_eq!(set.join_next().await.unwrap().unwrap(), ());
        });
    }
}

rt_test! {
    /// Not in tokio's file: `detach_all` leaves the tasks running to completion.
    fn detach_all_keeps_tasks_running(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set = JoinSet::new();
            let mut gates = Vec::new();
            let mut done = Vec::new();
            for _ in 0..8 {
                let (open, gate) = oneshot::channel::<()>();
                let (finished, finished_rx) = oneshot::channel::<()>();
                gates.push(open);
                done.push(finished_rx);
                set.spawn(async move {
                    gate.await.unwrap();
                    finished.send(()).unwrap();
                });
            }
            set.detach_all();
            assert!(set.is_empty());
            drop(set);
            for open in gates {
                open.send(()).unwrap();
            }
            for finished in done {
                finished.await.unwrap();
            }
        });
    }
}

rt_test! {
    /// Not in tokio's file: ids from `join_next_with_id` match the abort handles', errors
    /// carry the id too, and blocking closures join like tasks.
    fn join_next_with_id_and_blocking(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut set = JoinSet::new();
            let ok = set.spawn(async { 1 });
            let blocking = set.spawn_blocking(|| 2);
            let aborted = set.spawn(pending());
            aborted.abort();
            let mut seen = Vec::new();
            while let Some(result) = set.join_next_with_id().await {
                match result {
                    Ok((id, value)) => seen.push((id, value)),
                    Err(error) => {
                        assert!(error.is_cancelled());
                        assert_eq!(error.id(), aborted.id());
                    }
                }
            }
            seen.sort_by_key(|&(_, value)| value);
            assert_eq!(seen, vec![(ok.id(), 1), (blocking.id(), 2)]);
        });
    }
}

rt_test! {
    /// Not in tokio's file: a large set joined to the end, with completions arriving while
    /// `join_next` waits (each completion costs one wake, not a scan of the set).
    fn many_tasks_join_in_completion_order(rt: &gpm::Runtime) {
        const N: usize = 10_000;
        rt.block_on(async {
            let mut set = JoinSet::new();
            for i in 0..N {
                set.spawn(async move {
                    gpm::task::yield_now().await;
                    i
                });
            }
            let mut seen = vec![false; N];
            while let Some(result) = set.join_next().await {
                let i = result.unwrap();
                assert!(!seen[i]);
                seen[i] = true;
            }
            assert!(seen.into_iter().all(|s| s));
        });
    }
}

#[test]
fn join_set_is_send_and_default() {
    fn assert_send<T: Send>() {}
    assert_send::<JoinSet<u32>>();
    let set: JoinSet<u32> = JoinSet::default();
    assert!(set.is_empty());
    assert_eq!(format!("{set:?}"), "JoinSet { len: 0 }");
}

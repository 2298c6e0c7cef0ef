//! Spawning tasks and joining their values: from `block_on`, from inside tasks, and from
//! foreign threads through a `Handle`.

use gpm_tests::{join_all, rt_test};
use std::collections::HashSet;
use std::sync::Arc;

rt_test! {
    /// Join handles return the task's value for several output types, including non-Copy
    /// `String` and `Vec`, unit, and nested `Result`/`Option`.
    fn join_returns_values_of_several_types(rt: &gpm::Runtime) {
        rt.block_on(async {
            assert_eq!(gpm::spawn(async { 7u8 }).await.unwrap(), 7);
            assert_eq!(gpm::spawn(async { -42i64 }).await.unwrap(), -42);
            assert_eq!(gpm::spawn(async { 1.5f64 }).await.unwrap(), 1.5);
            gpm::spawn(async {}).await.unwrap();

            let text = String::from("hello from a task");
            let expected = text.clone();
            assert_eq!(gpm::spawn(async move { text + "!" }).await.unwrap(), expected + "!");

            let big: Vec<u64> = gpm::spawn(async { (0..10_000u64).collect() }).await.unwrap();
            assert_eq!(big.len(), 10_000);
            assert_eq!(big.iter().sum::<u64>(), 10_000 * 9_999 / 2);

            let strings = gpm::spawn(async { vec![String::from("a"), String::from("bc")] });
            assert_eq!(strings.await.unwrap(), ["a", "bc"]);

            let nested = gpm::spawn(async { Ok::<Option<&str>, String>(Some("x")) });
            assert_eq!(nested.await.unwrap(), Ok(Some("x")));

            let boxed = gpm::spawn(async { Box::new([3u32; 64]) });
            assert_eq!(boxed.await.unwrap().iter().sum::<u32>(), 192);
        });
    }
}

rt_test! {
    /// Tasks spawned outside `block_on` with `Runtime::spawn` run and can be joined later;
    /// `spawn_blocking` results are joined the same way.
    fn runtime_spawn_outside_block_on(rt: &gpm::Runtime) {
        let a = rt.spawn(async { String::from("from Runtime::spawn") });
        let b = rt.handle().spawn(async { vec![1u16, 2, 3] });
        let c = rt.spawn_blocking(|| "from the blocking pool".to_owned());
        assert_eq!(rt.block_on(a).unwrap(), "from Runtime::spawn");
        assert_eq!(rt.block_on(b).unwrap(), [1, 2, 3]);
        assert_eq!(rt.block_on(c).unwrap(), "from the blocking pool");
    }
}

rt_test! {
    /// Tasks spawn tasks with `gpm::spawn` (and through `Handle::current()`), two levels
    /// deep, and every value comes back to the root.
    fn spawn_from_inside_tasks(rt: &gpm::Runtime) {
        let total = rt.block_on(async {
            let parents: Vec<_> = (0..16u64)
                .map(|p| {
                    gpm::spawn(async move {
                        let children: Vec<_> = (0..16u64)
                            .map(|c| {
                                let handle = gpm::Handle::current();
                                if c % 2 == 0 {
                                    gpm::spawn(async move { p * 100 + c })
                                } else {
                                    handle.spawn(async move { p * 100 + c })
                                }
                            })
                            .collect();
                        join_all(children).await.into_iter().sum::<u64>()
                    })
                })
                .collect();
            join_all(parents).await.into_iter().sum::<u64>()
        });
        let expected: u64 = (0..16u64)
            .flat_map(|p| (0..16u64).map(move |c| p * 100 + c))
            .sum();
        assert_eq!(total, expected);
    }
}

rt_test! {
    /// A foreign `std::thread` spawns through a cloned `Handle`; its join handles are awaited
    /// both on that thread (`Handle::block_on`) and back on the test thread.
    fn spawn_from_foreign_thread(rt: &gpm::Runtime) {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let handle = rt.handle().clone();
                std::thread::spawn(move || {
                    assert!(gpm::Handle::try_current().is_err());
                    let handles: Vec<_> = (0..50u64)
                        .map(|i| handle.spawn(async move { format!("{t}-{i}") }))
                        .collect();
                    // Half joined here, half handed back to the test thread.
                    let (here, back): (Vec<_>, Vec<_>) =
                        handles.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
                    let joined_here: Vec<String> = handle.block_on(async move {
                        let mut out = Vec::new();
                        for (_, h) in here {
                            out.push(h.await.unwrap());
                        }
                        out
                    });
                    (joined_here, back.into_iter().map(|(_, h)| h).collect::<Vec<_>>())
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            let (joined_here, back) = thread.join().expect("foreign thread panicked");
            seen.extend(joined_here);
            rt.block_on(async {
                for h in back {
                    seen.insert(h.await.unwrap());
                }
            });
        }
        let expected: HashSet<String> = (0..4u64)
            .flat_map(|t| (0..50u64).map(move |i| format!("{t}-{i}")))
            .collect();
        assert_eq!(seen, expected);
    }
}

rt_test! {
    /// Join handles have distinct ids, report `is_finished` once the task is done, and the
    /// task's output is moved out exactly once (an `Arc` output keeps its count).
    fn join_handle_ids_and_is_finished(rt: &gpm::Runtime) {
        let shared = Arc::new(());
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let shared = Arc::clone(&shared);
                rt.spawn(async move { shared })
            })
            .collect();
        let ids: HashSet<_> = handles.iter().map(|h| h.id()).collect();
        assert_eq!(ids.len(), handles.len(), "task ids are not unique");
        for handle in &handles {
            // Waiting for a state change, not for time: the watchdog catches a hang.
            while !handle.is_finished() {
                std::thread::yield_now();
            }
        }
        let outputs: Vec<Arc<()>> = rt.block_on(join_all(handles));
        assert_eq!(Arc::strong_count(&shared), 101);
        drop(outputs);
        assert_eq!(Arc::strong_count(&shared), 1);
    }
}

rt_test! {
    /// Dropping a join handle detaches the task: it still runs to completion, and its output
    /// is dropped by the runtime.
    fn dropped_join_handle_detaches(rt: &gpm::Runtime) {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let output = gpm_tests::DropCounter::new();
        let guard = output.guard();
        drop(rt.spawn(async move {
            tx.send(5).unwrap();
            guard
        }));
        assert_eq!(rt.block_on(rx).unwrap(), 5);
        // The output guard is dropped by the runtime once the task completes.
        while output.drops() == 0 {
            std::thread::yield_now();
        }
        assert_eq!(output.drops(), 1);
    }
}

/// `Handle` is `Clone + Send + Sync + Debug`, and `JoinHandle<T>` is `Send + Sync` for a
/// `Send` output, so both can cross threads.
#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    fn assert_send_sync_join<T: Send + Sync + std::fmt::Debug>() {}
    assert_send_sync::<gpm::Handle>();
    assert_send_sync_join::<gpm::JoinHandle<String>>();
    gpm_tests::with_runtime("handles_are_send_and_sync", 2, |rt| {
        let join = rt.spawn(async { 1u8 });
        let handle = rt.handle().clone();
        let result = std::thread::spawn(move || handle.block_on(join).unwrap())
            .join()
            .unwrap();
        assert_eq!(result, 1);
    });
}

rt_test! {
    /// A join handle first polled by one task and then awaited by another wakes the second
    /// one at completion (the join waker is replaced).
    fn join_handle_moved_between_tasks(rt: &gpm::Runtime) {
        let (release_tx, release_rx) = futures::channel::oneshot::channel::<u32>();
        let target = rt.spawn(async move { release_rx.await.unwrap() * 2 });
        let (moved_tx, moved_rx) = futures::channel::oneshot::channel();
        let first = rt.spawn(async move {
            let mut target = target;
            // Registers this task's waker with the target, then gives the handle away.
            assert!(futures::poll!(&mut target).is_pending());
            moved_tx.send(target).unwrap();
        });
        rt.block_on(first).unwrap();
        let second = rt.spawn(async move { moved_rx.await.unwrap().await.unwrap() });
        release_tx.send(21).unwrap();
        assert_eq!(rt.block_on(second).unwrap(), 42);
    }
}

rt_test! {
    /// `gpm::spawn` works from inside a `spawn_blocking` closure; the handle it returns is
    /// awaited by the caller.
    fn spawn_from_blocking_closure(rt: &gpm::Runtime) {
        let value = rt.block_on(async {
            let inner = gpm::task::spawn_blocking(|| gpm::spawn(async { vec![4u8, 2] }))
                .await
                .unwrap();
            inner.await.unwrap()
        });
        assert_eq!(value, [4, 2]);
    }
}

/// A future holding `N` bytes across an await (its state machine is at least that big).
async fn big_future<const N: usize>() -> usize {
    let big = [7u8; N];
    gpm::task::yield_now().await;
    std::hint::black_box(&big)
        .iter()
        .map(|&b| usize::from(b))
        .sum()
}

rt_test! {
    /// A 1 MiB future spawned from a worker (whose stack is 2 MiB) and one given to
    /// `block_on` run instead of overflowing the stack: futures over a threshold are boxed
    /// before they are moved into the task (tokio's PR #6826). Release builds only: an
    /// unoptimised build keeps a copy of the future in each frame it passes through (the
    /// caller's poll, then `spawn`'s) before any code can box it, 2 MiB already.
    #[cfg_attr(debug_assertions, ignore = "unoptimised frames copy the 1 MiB future")]
    fn large_futures_do_not_overflow_the_stack(rt: &gpm::Runtime) {
        const MIB: usize = 1 << 20;
        let from_worker = rt.block_on(rt.spawn(async {
            gpm::spawn(big_future::<MIB>()).await.unwrap()
        }));
        assert_eq!(from_worker.unwrap(), 7 * MIB);
        assert_eq!(rt.block_on(big_future::<MIB>()), 7 * MIB);
        let handle = rt.handle().clone();
        let from_handle = rt.block_on(rt.spawn(async move {
            handle.spawn(big_future::<MIB>()).await.unwrap()
        }));
        assert_eq!(from_handle.unwrap(), 7 * MIB);
    }
}

//! Where `block_on` may be called, and what `Handle::current` / `try_current` see.

use gpm_tests::{catch_panic_message, rt_test, watchdog};
use std::future::Future;

const BLOCK_ON_MESSAGE: &str = "Cannot call block_on from inside a gpm runtime";
const NO_RUNTIME_MESSAGE: &str = "no gpm runtime";

rt_test! {
    /// `block_on` on a worker thread (inside a task), through `Handle::current()` or a cloned
    /// handle, panics with a clear message; the task survives the caught panic.
    fn block_on_inside_task_panics(rt: &gpm::Runtime) {
        let handle = rt.handle().clone();
        let (current_msg, cloned_msg, after) = rt
            .block_on(rt.spawn(async move {
                let current_msg = catch_panic_message(|| gpm::Handle::current().block_on(async {}));
                let cloned_msg = catch_panic_message(|| handle.block_on(async { 1 }));
                // The task and the worker are fine afterwards.
                let after = gpm::spawn(async { 5 }).await.unwrap();
                (current_msg, cloned_msg, after)
            }))
            .unwrap();
        assert!(current_msg.contains(BLOCK_ON_MESSAGE), "unexpected message: {current_msg}");
        assert!(cloned_msg.contains(BLOCK_ON_MESSAGE), "unexpected message: {cloned_msg}");
        assert_eq!(after, 5);
    }
}

rt_test! {
    /// A task that calls `block_on` without catching the panic fails with `is_panic` and the
    /// message; the runtime keeps serving.
    fn uncaught_block_on_inside_task_is_join_error(rt: &gpm::Runtime) {
        let error = rt
            .block_on(rt.spawn(async { gpm::Handle::current().block_on(async { 3 }) }))
            .unwrap_err();
        assert!(error.is_panic());
        let message = gpm_tests::panic_message(&*error.into_panic());
        assert!(message.contains(BLOCK_ON_MESSAGE), "unexpected message: {message}");
        assert_eq!(rt.block_on(rt.spawn(async { 4 })).unwrap(), 4);
    }
}

rt_test! {
    /// `block_on` nested inside `block_on` panics with the same message, for the same runtime
    /// and for another one; after the caught panic, `block_on` works again on this thread.
    fn nested_block_on_panics(rt: &gpm::Runtime) {
        let other = gpm_tests::runtime(1);
        let handle = rt.handle().clone();
        let (same, different) = rt.block_on(async {
            let same = catch_panic_message(|| handle.block_on(async {}));
            let different = catch_panic_message(|| other.block_on(async {}));
            (same, different)
        });
        assert!(same.contains(BLOCK_ON_MESSAGE), "unexpected message: {same}");
        assert!(different.contains(BLOCK_ON_MESSAGE), "unexpected message: {different}");
        assert_eq!(rt.block_on(async { 6 }), 6);
        assert_eq!(other.block_on(async { 7 }), 7);
    }
}

rt_test! {
    /// Inside `block_in_place` (the P handed off) and inside a `spawn_blocking` closure the
    /// thread may block, so `block_on` works there and can await tasks.
    fn block_on_allowed_in_blocking_sections(rt: &gpm::Runtime) {
        let in_place = rt
            .block_on(rt.spawn(async {
                gpm::task::block_in_place(|| {
                    gpm::Handle::current()
                        .block_on(async { gpm::spawn(async { 10 }).await.unwrap() })
                })
            }))
            .unwrap();
        assert_eq!(in_place, 10);
        let in_blocking = rt
            .block_on(rt.spawn_blocking(|| {
                gpm::Handle::current().block_on(async { gpm::spawn(async { 20 }).await.unwrap() })
            }))
            .unwrap();
        assert_eq!(in_blocking, 20);
    }
}

rt_test! {
    /// `Handle::current` and `try_current` find the runtime inside `block_on`, tasks,
    /// blocking closures and after `enter`, and lose it again when the guard is dropped.
    fn current_handle_in_runtime_contexts(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        rt.block_on(async {
            assert_eq!(gpm::Handle::current().num_workers(), workers);
            assert!(gpm::Handle::try_current().is_ok());
        });
        let in_task =
            rt.block_on(rt.spawn(async { gpm::Handle::try_current().map(|h| h.num_workers()) }));
        assert_eq!(in_task.unwrap(), Ok(workers));
        let in_blocking =
            rt.block_on(rt.spawn_blocking(|| gpm::Handle::try_current().map(|h| h.num_workers())));
        assert_eq!(in_blocking.unwrap(), Ok(workers));

        assert!(gpm::Handle::try_current().is_err());
        {
            let _guard = rt.enter();
            let handle = gpm::Handle::current();
            assert_eq!(handle.num_workers(), workers);
            // `gpm::spawn` works under `enter` too.
            let task = gpm::spawn(async { "entered" });
            assert_eq!(handle.block_on(task).unwrap(), "entered");
        }
        assert!(gpm::Handle::try_current().is_err());
    }
}

/// Outside any runtime, `Handle::current`, `gpm::spawn` and `spawn_blocking` panic with a
/// message mentioning "no gpm runtime"; `try_current` returns an error saying the same.
#[test]
fn no_runtime_outside_context() {
    watchdog("no_runtime_outside_context", || {
        let error = gpm::Handle::try_current().expect_err("no runtime was entered");
        assert!(error.is_missing_context());
        assert!(error.to_string().contains(NO_RUNTIME_MESSAGE), "{error}");

        let message = catch_panic_message(gpm::Handle::current);
        assert!(
            message.contains(NO_RUNTIME_MESSAGE),
            "unexpected message: {message}"
        );
        let message = catch_panic_message(|| gpm::spawn(async {}));
        assert!(
            message.contains(NO_RUNTIME_MESSAGE),
            "unexpected message: {message}"
        );
        let message = catch_panic_message(|| gpm::task::spawn_blocking(|| {}));
        assert!(
            message.contains(NO_RUNTIME_MESSAGE),
            "unexpected message: {message}"
        );

        // Still nothing after a runtime has come and gone on this thread.
        let rt = gpm_tests::runtime(1);
        rt.block_on(async {});
        drop(rt);
        assert!(gpm::Handle::try_current().is_err());
    });
}

/// Two runtimes, told apart by their worker counts: 1 and 2.
fn runtimes_of_1_and_2_workers() -> [gpm::Runtime; 2] {
    [gpm_tests::runtime(1), gpm_tests::runtime(2)]
}

/// Nested `enter` guards restore the previous runtime when dropped, innermost first.
#[test]
fn nested_enter_guards_restore_previous_runtime() {
    watchdog("nested_enter_guards_restore_previous_runtime", || {
        let [one, two] = runtimes_of_1_and_2_workers();
        let outer = one.enter();
        assert_eq!(gpm::Handle::current().num_workers(), 1);
        {
            let _inner = two.enter();
            assert_eq!(gpm::Handle::current().num_workers(), 2);
        }
        assert_eq!(gpm::Handle::current().num_workers(), 1);
        drop(outer);
        assert!(gpm::Handle::try_current().is_err());
    });
}

rt_test! {
    /// tokio's `coop`: `block_on` polls its future with a cooperative budget, so a loop
    /// over always-ready resources (1,000 finished join handles) is made to yield.
    fn block_on_has_a_cooperative_budget(rt: &gpm::Runtime) {
        let mut tasks: Vec<_> = (0..1_000).map(|_| rt.spawn(async {})).collect();
        rt.block_on(async {
            while !tasks.iter().all(gpm::JoinHandle::is_finished) {
                std::thread::yield_now();
            }
            std::future::poll_fn(|cx| {
                for task in &mut tasks {
                    if std::pin::Pin::new(task).poll(cx).is_pending() {
                        return std::task::Poll::Ready(());
                    }
                }
                panic!("1,000 ready join handles polled in one poll: the budget never ran out");
            })
            .await;
        });
    }
}

/// Enter guards dropped out of order panic (tokio's behaviour) instead of silently making
/// a stale runtime current. The inner guard, dropped afterwards, still restores the
/// runtime it replaced: the outer one's, whose guard is gone, so that runtime stays
/// current on the thread (as tokio's does).
#[test]
fn enter_guards_dropped_out_of_order_panic() {
    watchdog("enter_guards_dropped_out_of_order_panic", || {
        let [one, two] = runtimes_of_1_and_2_workers();
        let outer = one.enter();
        let inner = two.enter();
        let message = catch_panic_message(move || drop(outer));
        assert!(message.contains("out of order"), "{message}");
        assert_eq!(gpm::Handle::current().num_workers(), 2);
        drop(inner);
        assert_eq!(gpm::Handle::current().num_workers(), 1);
    });
}

/// `Handle::try_current` from a thread-local's destructor, after gpm's own thread-local
/// context is gone, returns an error saying so instead of panicking.
#[test]
fn try_current_while_thread_locals_are_destroyed_is_an_error() {
    use std::sync::mpsc;
    struct AtExit(mpsc::Sender<std::thread::Result<Result<(), bool>>>);
    impl Drop for AtExit {
        fn drop(&mut self) {
            let result = std::panic::catch_unwind(|| {
                gpm::Handle::try_current()
                    .map(drop)
                    .map_err(|e| e.is_thread_local_destroyed())
            });
            let _ = self.0.send(result);
        }
    }
    thread_local! {
        static AT_EXIT: std::cell::RefCell<Option<AtExit>> = const { std::cell::RefCell::new(None) };
    }
    watchdog(
        "try_current_while_thread_locals_are_destroyed_is_an_error",
        || {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                // Registered first, so destroyed after gpm's context (thread-locals are
                // destroyed in the reverse order of their first use).
                AT_EXIT.with(|slot| *slot.borrow_mut() = Some(AtExit(tx)));
                assert!(gpm::Handle::try_current().unwrap_err().is_missing_context());
            })
            .join()
            .unwrap();
            let result = rx
                .recv()
                .unwrap()
                .expect("try_current panicked in a TLS destructor");
            assert_eq!(result, Err(true));
        },
    );
}

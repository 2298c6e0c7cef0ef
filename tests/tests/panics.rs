//! A panicking task (or blocking closure) becomes a `JoinError` and the runtime keeps
//! serving.

use gpm_tests::{join_all, panic_message, rt_test, spawn_and_sum};
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Barrier, Mutex};

rt_test! {
    /// A task that panics with a formatted message gives `JoinError::is_panic`, and
    /// `into_panic` returns the `String` payload.
    fn panic_with_string_payload(rt: &gpm::Runtime) {
        let error = rt
            .block_on(rt.spawn(async {
                let n = 7;
                if n == 7 {
                    panic!("task exploded with {n}");
                }
                n
            }))
            .unwrap_err();
        assert!(error.is_panic(), "expected a panic, got {error:?}");
        assert!(!error.is_cancelled());
        assert!(error.to_string().contains("task exploded with 7"), "{error}");
        let payload = error.into_panic();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("task exploded with 7")
        );
    }
}

rt_test! {
    /// A `&'static str` panic payload and a custom payload (`panic_any`) come back intact
    /// through `try_into_panic`; a cancellation is not a panic and `try_into_panic` gives
    /// the error back.
    fn panic_payload_types(rt: &gpm::Runtime) {
        let error = rt.block_on(rt.spawn(async { panic!("static message") })).unwrap_err();
        let payload = error.try_into_panic().expect("a panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"static message"));

        let error = rt
            .block_on(rt.spawn(async { std::panic::panic_any(1234u32) }))
            .unwrap_err();
        assert!(error.is_panic());
        assert_eq!(error.into_panic().downcast_ref::<u32>(), Some(&1234));

        let pending = rt.spawn(futures::future::pending::<()>());
        pending.abort();
        let cancelled = rt.block_on(pending).unwrap_err();
        let back = cancelled.try_into_panic().expect_err("a cancellation is not a panic");
        assert!(back.is_cancelled());
    }
}

rt_test! {
    /// After many panicking tasks (joined and detached), the runtime still runs tasks on
    /// every worker: as many tasks as workers meet at a barrier, which needs all workers
    /// alive at once, and then many more tasks complete.
    fn runtime_keeps_serving_after_panics(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        let joined: Vec<_> = (0..100)
            .map(|i| rt.spawn(async move { panic!("joined panic {i}") }))
            .collect();
        for i in 0..100 {
            drop(rt.spawn(async move {
                if i >= 0 {
                    panic!("detached panic {i}");
                }
            }));
        }
        for (i, task) in joined.into_iter().enumerate() {
            let error = rt.block_on(task).unwrap_err();
            assert_eq!(panic_message(&*error.into_panic()), format!("joined panic {i}"));
        }
        // Every worker must take one of these at the same time to pass the barrier.
        let barrier = Arc::new(Barrier::new(workers));
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let meet: Vec<_> = (0..workers)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let threads = Arc::clone(&threads);
                rt.spawn(async move {
                    threads.lock().unwrap().insert(std::thread::current().id());
                    barrier.wait();
                })
            })
            .collect();
        rt.block_on(async {
            for task in meet {
                task.await.unwrap();
            }
        });
        assert_eq!(threads.lock().unwrap().len(), workers);
        let sum = rt.block_on(spawn_and_sum(1000));
        assert_eq!(sum, 999 * 1000 / 2);
    }
}

rt_test! {
    /// A panic inside a `spawn_blocking` closure gives `is_panic` with its message, and the
    /// blocking pool keeps running closures afterwards.
    fn panic_in_spawn_blocking(rt: &gpm::Runtime) {
        let error = rt
            .block_on(rt.spawn_blocking(|| -> u32 { panic!("blocking closure failed") }))
            .unwrap_err();
        assert!(error.is_panic(), "expected a panic, got {error:?}");
        assert_eq!(panic_message(&*error.into_panic()), "blocking closure failed");

        let error = rt
            .block_on(async { gpm::task::spawn_blocking(|| panic!("again: {}", 2)).await })
            .unwrap_err();
        let payload: Box<dyn std::any::Any + Send> = error.into_panic();
        assert_eq!(panic_message(&*payload), "again: 2");

        let values = rt.block_on(async {
            let tasks: Vec<_> =
                (0..20u32).map(|i| gpm::task::spawn_blocking(move || i * 2)).collect();
            join_all(tasks).await
        });
        assert_eq!(values, (0..20u32).map(|i| i * 2).collect::<Vec<_>>());
    }
}

rt_test! {
    /// A task that panics after awaiting (on a later poll, woken from another task) is
    /// reported as a panic too, and the task that awaited it is unaffected.
    fn panic_on_later_poll(rt: &gpm::Runtime) {
        let result = rt.block_on(rt.spawn(async {
            let (tx, rx) = futures::channel::oneshot::channel::<u8>();
            let failing = gpm::spawn(async move {
                let value = rx.await.unwrap();
                panic!("second poll panicked with {value}");
            });
            gpm::task::yield_now().await;
            tx.send(9).unwrap();
            let error = failing.await.unwrap_err();
            panic_message(&*error.into_panic())
        }));
        assert_eq!(result.unwrap(), "second poll panicked with 9");
    }
}

/// Panics when dropped.
#[derive(Debug)]
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

rt_test! {
    /// A future whose drop panics: on completion the join handle reports that panic instead
    /// of the output; on abort it reports the panic too. The runtime keeps serving.
    fn panic_in_future_drop(rt: &gpm::Runtime) {
        let error = rt
            .block_on(rt.spawn(async {
                let _bomb = PanicOnDrop("drop after completion");
                gpm::task::yield_now().await;
                5
            }))
            .unwrap_err();
        assert!(error.is_panic(), "expected a panic, got {error:?}");
        assert_eq!(panic_message(&*error.into_panic()), "drop after completion");

        let (started_tx, started_rx) = futures::channel::oneshot::channel();
        let task = rt.spawn(async move {
            let _bomb = PanicOnDrop("drop on abort");
            started_tx.send(()).unwrap();
            futures::future::pending::<()>().await;
        });
        rt.block_on(started_rx).unwrap();
        task.abort();
        let error = rt.block_on(task).unwrap_err();
        assert!(error.is_panic(), "expected a panic, got {error:?}");
        assert_eq!(panic_message(&*error.into_panic()), "drop on abort");
        assert_eq!(rt.block_on(rt.spawn(async { 6 })).unwrap(), 6);
    }
}

rt_test! {
    /// Shutdown with tasks whose futures panic when dropped still drops every other task
    /// and returns normally.
    fn shutdown_with_panicking_drops(rt: gpm::Runtime) {
        let drops = gpm_tests::DropCounter::new();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        for i in 0..20 {
            let guard = drops.guard();
            let started_tx = started_tx.clone();
            drop(rt.spawn(async move {
                let _guard = guard;
                let _bomb = (i % 2 == 0).then(|| PanicOnDrop("drop at shutdown"));
                started_tx.send(()).unwrap();
                futures::future::pending::<()>().await;
            }));
        }
        for _ in 0..20 {
            started_rx.recv().unwrap();
        }
        drop(rt);
        assert_eq!(drops.drops(), 20);
    }
}

rt_test! {
    /// A join handle polled with a waker that panics when woken: the task completes on an
    /// M, which wakes that waker. The panic stays inside the task's completion: the M keeps
    /// its P, so a stop-the-world reaches every P (a dead M's P would never stop), and the
    /// runtime shuts down (the watchdog fails a hang).
    fn panicking_join_waker_does_not_kill_the_worker(rt: &gpm::Runtime) {
        let workers = rt.handle().num_workers();
        for _ in 0..2 * workers {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            let mut join = rt.spawn(async move { rx.await.is_ok() });
            let (waker, _woken) = gpm_tests::panicking_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(std::pin::Pin::new(&mut join).poll(&mut cx).is_pending());
            tx.send(()).unwrap();
            // Completion wakes the panicking waker: no other waker may replace it first.
            while !join.is_finished() {
                std::thread::yield_now();
            }
            assert!(rt.block_on(join).unwrap());
        }
        gpm_tests::assert_every_processor_answers(rt);
    }
}

/// A future whose poll panics with `message` (a `&'static str` payload, as `panic!("...")`
/// makes); `on_drop` runs when the future is dropped, which the runtime does during that
/// panic's unwind.
struct PanicInPoll<F: FnOnce()> {
    message: &'static str,
    on_drop: Option<F>,
}

impl<F: FnOnce()> PanicInPoll<F> {
    fn new(message: &'static str, on_drop: F) -> Self {
        PanicInPoll {
            message,
            on_drop: Some(on_drop),
        }
    }
}

impl<F: FnOnce()> Future for PanicInPoll<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::panic::panic_any(self.message)
    }
}

impl<F: FnOnce()> Drop for PanicInPoll<F> {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

rt_test! {
    /// tokio's `panic_in_task`: a task whose poll panics has its future dropped while the
    /// panic unwinds, so the future's `Drop` sees `std::thread::panicking()`; the join
    /// handle still gets the poll's panic.
    fn panicking_poll_drops_the_future_during_the_unwind(rt: &gpm::Runtime) {
        let (tx, rx) = std::sync::mpsc::channel();
        let boom = PanicInPoll::new("boom", move || {
            let panicking = std::thread::panicking();
            tx.send(panicking).unwrap();
        });
        let error = rt.block_on(rt.spawn(boom)).unwrap_err();
        assert_eq!(panic_message(&*error.into_panic()), "boom");
        assert!(rx.recv().unwrap(), "the future was dropped after the unwind ended");
    }
}

rt_test! {
    /// A future that panics in its poll and again in its `Drop` (run during the unwind):
    /// the second panic is contained too, the handle reports the first, the runtime lives.
    fn panic_in_drop_during_unwind_is_contained(rt: &gpm::Runtime) {
        let twice = PanicInPoll::new("in poll", || panic!("in drop"));
        let error = rt.block_on(rt.spawn(twice)).unwrap_err();
        assert_eq!(panic_message(&*error.into_panic()), "in poll");
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
    }
}

rt_test! {
    /// `JoinError`'s `Debug` reads like tokio's: `JoinError::Panic(Id(n), "msg", ...)` and
    /// `JoinError::Cancelled(Id(n))`.
    fn join_error_debug_matches_tokio(rt: &gpm::Runtime) {
        let error = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
        let id = error.id();
        assert_eq!(format!("{error:?}"), format!("JoinError::Panic({id:?}, \"boom\", ...)"));
        assert_eq!(format!("{id:?}"), format!("Id({id})"));

        let error = rt
            .block_on(rt.spawn(async { std::panic::panic_any(7u8) }))
            .unwrap_err();
        assert_eq!(format!("{error:?}"), format!("JoinError::Panic({:?}, ...)", error.id()));

        let pending = rt.spawn(futures::future::pending::<()>());
        pending.abort();
        let error = rt.block_on(pending).unwrap_err();
        assert_eq!(format!("{error:?}"), format!("JoinError::Cancelled({:?})", error.id()));
    }
}

//! tokio's `tests/task_blocking.rs` run on gpm, with its assertions kept: `spawn_blocking`
//! and `block_in_place` (nested, inside each other, inside `block_on`), where
//! `block_in_place` panics (the current-thread runtime), runtimes built, shut down and
//! dropped inside another, the cooperative budget off inside `block_in_place`, and blocking
//! closures under a paused clock. What changed in the port:
//!
//! * tokio-test's `assert_ok!` is the local one; `#[tokio::test]` is `#[gpm::test]` (the
//!   current-thread runtime, as tokio's), `start_paused` included.
//! * `coop_disabled_in_block_in_place*`: tokio's stream of an mpsc channel spends tokio's
//!   budget, which gpm cannot see (outside tokio's runtime it is unlimited, and the tests
//!   would pass whatever gpm does). Here each item of the stream also spends gpm's budget
//!   ([`unbounded_channel_stream`]): 200 items are more than a poll's 128 units, so a
//!   budget left on inside `block_in_place` would make `futures::executor::block_on` spin
//!   on a `Pending` stream for ever, which the tests' timeouts catch, as tokio's do. Those
//!   timeouts are hang detectors: 10 s here where tokio's are 1 s, so that a loaded CI
//!   machine is not taken for a hang.
//! * `useful_panic_message_when_dropping_rt_in_rt`: tokio panics when a runtime is dropped
//!   inside another's `block_on` or task; gpm, by design (docs/ARCHITECTURE.md), cancels
//!   the dropped runtime's tasks without waiting for its threads and returns, so the port
//!   checks that the drop does not panic.
//!
//! Nothing is skipped.

use gpm::runtime::{self, Builder};
use gpm::{task, time};
use std::thread;
use std::time::Duration;

/// tokio-test's `assert_ok!`: unwraps an `Ok`, panics with the error otherwise.
macro_rules! assert_ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("assertion failed: Err({:?})", e),
        }
    };
}

/// tokio's `support::mpsc_stream::unbounded_channel_stream`, with one unit of gpm's
/// cooperative budget spent per item (see the module docs).
fn unbounded_channel_stream<T: Send + 'static>() -> (
    tokio::sync::mpsc::UnboundedSender<T>,
    impl futures::Stream<Item = T>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        gpm::task::consume_budget().await;
        Some((item, rx))
    });
    (tx, stream)
}

#[gpm::test]
async fn basic_blocking() {
    // Run a few times
    for _ in 0..100 {
        let out = assert_ok!(
            gpm::spawn(async {
                assert_ok!(
                    task::spawn_blocking(|| {
                        thread::sleep(Duration::from_millis(5));
                        "hello"
                    })
                    .await
                )
            })
            .await
        );

        assert_eq!(out, "hello");
    }
}

#[gpm::test(flavor = "multi_thread")]
async fn block_in_blocking() {
    // Run a few times
    for _ in 0..100 {
        let out = assert_ok!(
            gpm::spawn(async {
                assert_ok!(
                    task::spawn_blocking(|| {
                        task::block_in_place(|| {
                            thread::sleep(Duration::from_millis(5));
                        });
                        "hello"
                    })
                    .await
                )
            })
            .await
        );

        assert_eq!(out, "hello");
    }
}

#[gpm::test(flavor = "multi_thread")]
async fn block_in_block() {
    // Run a few times
    for _ in 0..100 {
        let out = assert_ok!(
            gpm::spawn(async {
                task::block_in_place(|| {
                    task::block_in_place(|| {
                        thread::sleep(Duration::from_millis(5));
                    });
                    "hello"
                })
            })
            .await
        );

        assert_eq!(out, "hello");
    }
}

#[gpm::test(flavor = "current_thread")]
#[should_panic]
async fn no_block_in_current_thread_scheduler() {
    task::block_in_place(|| {});
}

#[test]
fn yes_block_in_threaded_block_on() {
    let rt = runtime::Runtime::new().unwrap();
    rt.block_on(async {
        task::block_in_place(|| {});
    });
}

#[test]
#[should_panic]
fn no_block_in_current_thread_block_on() {
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        task::block_in_place(|| {});
    });
}

#[test]
fn can_enter_current_thread_rt_from_within_block_in_place() {
    let outer = runtime::Runtime::new().unwrap();

    outer.block_on(async {
        task::block_in_place(|| {
            let inner = Builder::new_current_thread().build().unwrap();

            inner.block_on(async {})
        })
    });
}

/// gpm differs here by design (docs/ARCHITECTURE.md, "`Runtime` dropped inside a task
/// cancels everything but cannot wait for the threads; it returns at once"): tokio panics
/// with "Cannot drop a runtime in a context where blocking is not allowed".
#[test]
fn useful_panic_message_when_dropping_rt_in_rt() {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    let outer = runtime::Runtime::new().unwrap();

    let result = catch_unwind(AssertUnwindSafe(|| {
        outer.block_on(async {
            let _ = Builder::new_current_thread().build().unwrap();
        });
    }));

    assert!(
        result.is_ok(),
        "dropping a runtime inside block_on panicked"
    );
}

#[test]
fn can_shutdown_with_zero_timeout_in_runtime() {
    let outer = runtime::Runtime::new().unwrap();

    outer.block_on(async {
        let rt = Builder::new_current_thread().build().unwrap();
        rt.shutdown_timeout(Duration::from_nanos(0));
    });
}

#[test]
fn can_shutdown_now_in_runtime() {
    let outer = runtime::Runtime::new().unwrap();

    outer.block_on(async {
        let rt = Builder::new_current_thread().build().unwrap();
        rt.shutdown_background();
    });
}

#[test]
fn coop_disabled_in_block_in_place() {
    let outer = Builder::new_multi_thread().enable_time().build().unwrap();

    let (tx, rx) = unbounded_channel_stream();

    for i in 0..200 {
        tx.send(i).unwrap();
    }
    drop(tx);

    outer.block_on(async move {
        let jh = gpm::spawn(async move {
            task::block_in_place(move || {
                futures::executor::block_on(async move {
                    use futures::StreamExt;
                    assert_eq!(rx.fold(0, |n, _| async move { n + 1 }).await, 200);
                })
            })
        });

        time::timeout(Duration::from_secs(10), jh)
            .await
            .expect("timed out (probably hanging)")
            .unwrap()
    });
}

#[test]
fn coop_disabled_in_block_in_place_in_block_on() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let done = done_tx.clone();
    thread::spawn(move || {
        let outer = runtime::Runtime::new().unwrap();

        let (tx, rx) = unbounded_channel_stream();

        for i in 0..200 {
            tx.send(i).unwrap();
        }
        drop(tx);

        outer.block_on(async move {
            task::block_in_place(move || {
                futures::executor::block_on(async move {
                    use futures::StreamExt;
                    assert_eq!(rx.fold(0, |n, _| async move { n + 1 }).await, 200);
                })
            })
        });

        let _ = done.send(Ok(()));
    });

    // A hang detector, not a time limit: tokio's waits 1 s; 10 s keeps a loaded CI
    // machine from reading slowness as a hang.
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(10));
        let _ = done_tx.send(Err("timed out (probably hanging)"));
    });

    done_rx.recv().unwrap().unwrap();
}

#[gpm::test(start_paused = true)]
async fn blocking_when_paused() {
    // Do not auto-advance time when we have started a blocking task that has
    // not yet finished.
    time::timeout(
        Duration::from_secs(3),
        task::spawn_blocking(|| thread::sleep(Duration::from_millis(1))),
    )
    .await
    .expect("timeout should not trigger")
    .expect("blocking task should finish");

    // Really: Do not auto-advance time, even if the timeout is short and the
    // blocking task runs for longer than that. It doesn't matter: Tokio time
    // is paused; system time is not.
    time::timeout(
        Duration::from_millis(1),
        task::spawn_blocking(|| thread::sleep(Duration::from_millis(50))),
    )
    .await
    .expect("timeout should not trigger")
    .expect("blocking task should finish");
}

#[gpm::test(start_paused = true)]
async fn blocking_task_wakes_paused_runtime() {
    let t0 = std::time::Instant::now();
    time::timeout(
        Duration::from_secs(15),
        task::spawn_blocking(|| thread::sleep(Duration::from_millis(1))),
    )
    .await
    .expect("timeout should not trigger")
    .expect("blocking task should finish");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "completing a spawn_blocking should wake the scheduler if it's parked while time is paused"
    );
}

#[gpm::test(start_paused = true)]
async fn unawaited_blocking_task_wakes_paused_runtime() {
    let t0 = std::time::Instant::now();

    // When this task finishes, time should auto-advance, even though the
    // JoinHandle has not been awaited yet.
    let a = task::spawn_blocking(|| {
        thread::sleep(Duration::from_millis(1));
    });

    time::sleep(Duration::from_secs(15)).await;
    a.await.expect("blocking task should finish");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "completing a spawn_blocking should wake the scheduler if it's parked while time is paused"
    );
}

#[gpm::test(start_paused = true)]
async fn panicking_blocking_task_wakes_paused_runtime() {
    let t0 = std::time::Instant::now();
    let result = time::timeout(
        Duration::from_secs(15),
        task::spawn_blocking(|| {
            thread::sleep(Duration::from_millis(1));
            panic!("blocking task panicked");
        }),
    )
    .await
    .expect("timeout should not trigger");
    assert!(result.is_err(), "blocking task should have panicked");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "completing a spawn_blocking should wake the scheduler if it's parked while time is paused"
    );
}

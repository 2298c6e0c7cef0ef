//! tokio's `tests/rt_common.rs` (tokio 1.54.1), ported: every test body runs on gpm's
//! current-thread runtime, on a multi-thread runtime with 4 workers and on one with 1
//! worker, through a local `rt_test!` (tokio's, with gpm's builders; not gpm-tests'
//! `rt_test!`, which has no current-thread shape). Assertions are tokio's. tokio's
//! `tokio-test` helpers are the local `assert_ok!` / `assert_err!`; tokio's oneshot and
//! unbounded mpsc are futures' (`rx.recv()` is `rx.next()`), its `Barrier` stays tokio's
//! (`tokio::sync` needs no tokio runtime, docs/MIGRATING.md), `tokio::join!` is the local
//! [`join`] (tokio's rotating poll order), tokio's `AsyncReadExt` is futures' and
//! `write_all` is gpm's own on its sockets.
//!
//! Adapted, not skipped:
//! * `coop`, `coop_unconstrained`: tokio's mpsc spends tokio's budget, which gpm cannot see;
//!   like `tests/coop.rs`, the budgeted resource is the join handles of finished tasks.
//! * `coop_consume_budget` is `tokio_unstable` in tokio; `consume_budget` is stable in gpm.
//!
//! Nothing of tokio's file is skipped: it uses no `tokio::fs`, process, metrics, hooks,
//! `unhandled_panic`, `LocalRuntime` or task dumps.

#![allow(clippy::needless_range_loop)]

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

/// tokio-test's `assert_ok!`: unwraps an `Ok`, panics with the error otherwise.
macro_rules! assert_ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("assertion failed: Err({:?})", e),
        }
    };
}

/// tokio-test's `assert_err!`.
macro_rules! assert_err {
    ($e:expr) => {
        match $e {
            Ok(v) => panic!("assertion failed: Ok({:?})", v),
            Err(e) => e,
        }
    };
}

/// `tokio::join!` of two futures, which rotates the branch it polls first on every poll
/// (tokio's fairness; `futures::join!` always starts with the first). The port of
/// `coop_yield_defers_until_park` needs it: there the first branch spends the whole budget
/// in each poll, so with a fixed order the `accept` branch would only ever be polled with
/// no budget left and the test would fail for a reason that is not the runtime's.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    use futures::future::{maybe_done, MaybeDone};
    let mut a = pin!(maybe_done(a));
    let mut b = pin!(maybe_done(b));
    let mut a_first = true;
    poll_fn(|cx| {
        if a_first {
            let _ = a.as_mut().poll(cx);
            let _ = b.as_mut().poll(cx);
        } else {
            let _ = b.as_mut().poll(cx);
            let _ = a.as_mut().poll(cx);
        }
        a_first = !a_first;
        if matches!(*a, MaybeDone::Done(_)) && matches!(*b, MaybeDone::Done(_)) {
            let a = a.as_mut().take_output().unwrap();
            let b = b.as_mut().take_output().unwrap();
            Poll::Ready((a, b))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// `builder`'s runtime with every driver enabled, as each `rt_test!` module's `rt()` makes it.
fn build(builder: &mut gpm::runtime::Builder) -> std::sync::Arc<gpm::Runtime> {
    builder.enable_all().build().unwrap().into()
}

macro_rules! rt_test {
    ($($t:tt)*) => {
        mod current_thread_scheduler {
            $($t)*

            const NUM_WORKERS: usize = 1;

            fn rt() -> Arc<Runtime> {
                crate::build(&mut gpm::runtime::Builder::new_current_thread())
            }
        }

        mod threaded_scheduler_4_threads {
            $($t)*

            const NUM_WORKERS: usize = 4;

            fn rt() -> Arc<Runtime> {
                crate::build(gpm::runtime::Builder::new_multi_thread().worker_threads(4))
            }
        }

        mod threaded_scheduler_1_thread {
            $($t)*

            const NUM_WORKERS: usize = 1;

            fn rt() -> Arc<Runtime> {
                crate::build(gpm::runtime::Builder::new_multi_thread().worker_threads(1))
            }
        }
    }
}

#[test]
fn send_sync_bound() {
    use gpm::Runtime;
    fn is_send<T: Send + Sync>() {}

    is_send::<Runtime>();
}

rt_test! {
    use gpm::net::{TcpListener, TcpStream};
    use futures::io::AsyncReadExt;

    use gpm::Runtime;
    use futures::channel::oneshot;
    use futures::StreamExt;
    use gpm::{task, time};

    use std::future::{poll_fn, Future};
    use std::pin::Pin;

    use std::sync::mpsc;

    use std::sync::Arc;
    use std::task::{Context, Poll};

    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn block_on_sync() {
        let rt = rt();

        let mut win = false;
        rt.block_on(async {
            win = true;
        });

        assert!(win);
    }

    /// The body of the tests that pass "ZOMG" on a oneshot channel: `body`, given both ends,
    /// runs in `block_on` and returns what the receiver got, which is "ZOMG".
    fn assert_receives_zomg<F>(
        body: impl FnOnce(oneshot::Sender<&'static str>, oneshot::Receiver<&'static str>) -> F,
    ) where
        F: Future<Output = &'static str>,
    {
        let rt = rt();

        let out = rt.block_on(async {
            let (tx, rx) = oneshot::channel();

            body(tx, rx).await
        });

        assert_eq!(out, "ZOMG");
    }

    #[test]
    fn block_on_async() {
        assert_receives_zomg(|tx, rx| async move {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                tx.send("ZOMG").unwrap();
            });

            assert_ok!(rx.await)
        });
    }

    #[test]
    fn spawn_one_bg() {
        assert_receives_zomg(|tx, rx| async move {
            gpm::spawn(async move {
                tx.send("ZOMG").unwrap();
            });

            assert_ok!(rx.await)
        });
    }

    /// The task of `spawn_one_join`: sends "ZOMG" on `tx` and returns "DONE".
    fn spawn_zomg_done(tx: oneshot::Sender<&'static str>) -> gpm::JoinHandle<&'static str> {
        gpm::spawn(async move {
            tx.send("ZOMG").unwrap();
            "DONE"
        })
    }

    /// Waits for that task's message and then for its output, "DONE"; the message.
    async fn zomg_then_done(
        rx: oneshot::Receiver<&'static str>,
        handle: gpm::JoinHandle<&'static str>,
    ) -> &'static str {
        let msg = assert_ok!(rx.await);

        let out = assert_ok!(handle.await);
        assert_eq!(out, "DONE");

        msg
    }

    #[test]
    fn spawn_one_join() {
        assert_receives_zomg(|tx, rx| {
            let handle = spawn_zomg_done(tx);

            zomg_then_done(rx, handle)
        });
    }

    #[test]
    fn spawn_two() {
        let rt = rt();

        let out = rt.block_on(async {
            let (tx1, rx1) = oneshot::channel();
            let (tx2, rx2) = oneshot::channel();

            gpm::spawn(async move {
                assert_ok!(tx1.send("ZOMG"));
            });

            gpm::spawn(async move {
                let msg = assert_ok!(rx1.await);
                assert_ok!(tx2.send(msg));
            });

            assert_ok!(rx2.await)
        });

        assert_eq!(out, "ZOMG");
    }

    /// The body of the `spawn_many_*` tests: spawns `iter` tasks that each wait for their
    /// index from another thread and pass it on; what they passed on, sorted.
    async fn spawn_many(iter: usize) -> Vec<usize> {
        use futures::channel::mpsc;

        let (done_tx, mut done_rx) = mpsc::unbounded();

        let mut txs = (0..iter)
            .map(|i| {
                let (tx, rx) = oneshot::channel();
                let done_tx = done_tx.clone();

                gpm::spawn(async move {
                    let msg = assert_ok!(rx.await);
                    assert_eq!(i, msg);
                    assert_ok!(done_tx.unbounded_send(msg));
                });

                tx
            })
            .collect::<Vec<_>>();

        drop(done_tx);

        thread::spawn(move || {
            for (i, tx) in txs.drain(..).enumerate() {
                assert_ok!(tx.send(i));
            }
        });

        let mut out = vec![];
        while let Some(i) = done_rx.next().await {
            out.push(i);
        }

        out.sort_unstable();
        out
    }

    #[test]
    fn spawn_many_from_block_on() {
        const ITER: usize = 200;

        let rt = rt();

        let out = rt.block_on(spawn_many(ITER));

        assert_eq!(ITER, out.len());

        for i in 0..ITER {
            assert_eq!(i, out[i]);
        }
    }

    #[test]
    fn spawn_many_from_task() {
        const ITER: usize = 500;

        let rt = rt();

        let out = rt.block_on(async {
            gpm::spawn(spawn_many(ITER)).await.unwrap()
        });

        assert_eq!(ITER, out.len());

        for i in 0..ITER {
            assert_eq!(i, out[i]);
        }
    }

    #[test]
    fn spawn_one_from_block_on_called_on_handle() {
        let rt = rt();
        let (tx, rx) = oneshot::channel();

        #[allow(clippy::async_yields_async)]
        let handle = rt.handle().block_on(async { spawn_zomg_done(tx) });

        let out = rt.block_on(zomg_then_done(rx, handle));

        assert_eq!(out, "ZOMG");
    }

    #[test]
    fn spawn_await_chain() {
        let rt = rt();

        let out = rt.block_on(async {
            assert_ok!(gpm::spawn(async {
                assert_ok!(gpm::spawn(async {
                    "hello"
                }).await)
            }).await)
        });

        assert_eq!(out, "hello");
    }

    #[test]
    fn outstanding_tasks_dropped() {
        let rt = rt();

        let cnt = Arc::new(());

        rt.block_on(async {
            let cnt = cnt.clone();

            gpm::spawn(poll_fn(move |_| {
                assert_eq!(2, Arc::strong_count(&cnt));
                Poll::<()>::Pending
            }));
        });

        assert_eq!(2, Arc::strong_count(&cnt));

        drop(rt);

        assert_eq!(1, Arc::strong_count(&cnt));
    }

    #[test]
    #[should_panic]
    fn nested_rt() {
        let rt1 = rt();
        let rt2 = rt();

        rt1.block_on(async { rt2.block_on(async { "hello" }) });
    }

    #[test]
    fn create_rt_in_block_on() {
        let rt1 = rt();
        let rt2 = rt1.block_on(async { rt() });
        let out = rt2.block_on(async { "ZOMG" });

        assert_eq!(out, "ZOMG");
    }

    /// Spawns a task that yields for ever: it keeps the runtime spinning hard.
    fn spin_hard() {
        gpm::spawn(async {
            loop {
                yield_once().await;
            }
        });
    }

    /// Sends on `tx` from another thread, 50 ms from now.
    fn send_from_another_thread_in_50ms(tx: oneshot::Sender<()>) {
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            assert_ok!(tx.send(()));
        });
    }

    #[test]
    fn complete_block_on_under_load() {
        let rt = rt();

        rt.block_on(async {
            let (tx, rx) = oneshot::channel();

            spin_hard();

            send_from_another_thread_in_50ms(tx);

            assert_ok!(rx.await);
        });
    }

    #[test]
    fn complete_task_under_load() {
        let rt = rt();

        rt.block_on(async {
            let (tx1, rx1) = oneshot::channel();
            let (tx2, rx2) = oneshot::channel();

            spin_hard();

            send_from_another_thread_in_50ms(tx1);

            gpm::spawn(async move {
                assert_ok!(rx1.await);
                assert_ok!(tx2.send(()));
            });

            assert_ok!(rx2.await);
        });
    }

    /// From another thread (after `delay`, if any), spawns on `rt` a task that sends on the
    /// returned receiver.
    fn spawn_from_other_thread(
        rt: &Arc<Runtime>,
        delay: Option<Duration>,
    ) -> oneshot::Receiver<()> {
        let handle = rt.clone();

        let (tx, rx) = oneshot::channel();

        thread::spawn(move || {
            if let Some(delay) = delay {
                thread::sleep(delay);
            }

            handle.spawn(async move {
                assert_ok!(tx.send(()));
            });
        });

        rx
    }

    #[test]
    fn spawn_from_other_thread_idle() {
        let rt = rt();
        let rx = spawn_from_other_thread(&rt, Some(Duration::from_millis(50)));

        rt.block_on(async move {
            assert_ok!(rx.await);
        });
    }

    #[test]
    fn spawn_from_other_thread_under_load() {
        let rt = rt();
        let rx = spawn_from_other_thread(&rt, None);

        rt.block_on(async move {
            spin_hard();

            assert_ok!(rx.await);
        });
    }

    /// The `sleep_*` tests: `future`, run on a new runtime, lasts `dur` at least.
    fn assert_block_on_lasts(dur: Duration, future: impl Future<Output = ()>) {
        let rt = rt();

        let now = Instant::now();

        rt.block_on(future);

        assert!(now.elapsed() >= dur);
    }

    #[test]
    fn sleep_at_root() {
        let dur = Duration::from_millis(50);

        assert_block_on_lasts(dur, async move {
            time::sleep(dur).await;
        });
    }

    #[test]
    fn sleep_in_spawn() {
        let dur = Duration::from_millis(50);

        assert_block_on_lasts(dur, async move {
            let (tx, rx) = oneshot::channel();

            gpm::spawn(async move {
                time::sleep(dur).await;
                assert_ok!(tx.send(()));
            });

            assert_ok!(rx.await);
        });
    }

    /// The body of `block_on_socket`: has `spawn` start a task that accepts one connection
    /// on a new listener, connects to it and waits until the task has accepted.
    async fn connect_to_a_spawned_accept<J>(
        spawn: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> J,
    ) {
        let (tx, rx) = oneshot::channel();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();

        spawn(Box::pin(async move {
            let _ = listener.accept().await;
            tx.send(()).unwrap();
        }));

        TcpStream::connect(&addr).await.unwrap();
        rx.await.unwrap();
    }

    #[test]
    fn block_on_socket() {
        let rt = rt();

        rt.block_on(connect_to_a_spawned_accept(gpm::spawn));
    }

    /// The body of the `spawn*_from_blocking` tests: runs `spawn` in `spawn_blocking` and
    /// awaits the join handle it returns; that task's output.
    fn join_spawned_from_blocking(spawn: fn() -> gpm::JoinHandle<&'static str>) -> &'static str {
        let rt = rt();

        rt.block_on(async move {
            let inner = assert_ok!(gpm::task::spawn_blocking(spawn).await);

            assert_ok!(inner.await)
        })
    }

    #[test]
    fn spawn_from_blocking() {
        let out = join_spawned_from_blocking(|| gpm::spawn(async move { "hello" }));

        assert_eq!(out, "hello")
    }

    #[test]
    fn spawn_blocking_from_blocking() {
        let out = join_spawned_from_blocking(|| gpm::task::spawn_blocking(|| "hello"));

        assert_eq!(out, "hello")
    }

    #[test]
    fn sleep_from_blocking() {
        let rt = rt();

        rt.block_on(async move {
            assert_ok!(gpm::task::spawn_blocking(|| {
                let now = std::time::Instant::now();
                let dur = Duration::from_millis(1);

                // use the futures' block_on fn to make sure we aren't setting
                // any Tokio context
                futures::executor::block_on(async {
                    gpm::time::sleep(dur).await;
                });

                assert!(now.elapsed() >= dur);
            }).await);
        });
    }

    #[test]
    fn socket_from_blocking() {
        let rt = rt();

        rt.block_on(async move {
            let listener = assert_ok!(TcpListener::bind("127.0.0.1:0").await);
            let addr = assert_ok!(listener.local_addr());

            let peer = gpm::task::spawn_blocking(move || {
                // use the futures' block_on fn to make sure we aren't setting
                // any Tokio context
                futures::executor::block_on(async {
                    assert_ok!(TcpStream::connect(addr).await);
                });
            });

            // Wait for the client to connect
            let _ = assert_ok!(listener.accept().await);

            assert_ok!(peer.await);
        });
    }

    #[test]
    fn always_active_parker() {
        // This test it to show that we will always have
        // an active parker even if we call block_on concurrently

        let rt = rt();
        let rt2 = rt.clone();

        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();

        let jh1 = thread::spawn(move || {
                rt.block_on(async move {
                    rx2.await.unwrap();
                    time::sleep(Duration::from_millis(5)).await;
                    tx1.send(()).unwrap();
                });
        });

        let jh2 = thread::spawn(move || {
            rt2.block_on(async move {
                tx2.send(()).unwrap();
                time::sleep(Duration::from_millis(5)).await;
                rx1.await.unwrap();
                time::sleep(Duration::from_millis(5)).await;
            });
        });

        jh1.join().unwrap();
        jh2.join().unwrap();
    }

    #[test]
    fn io_driver_called_when_under_load() {
        let rt = rt();

        // Create a lot of constant load. The scheduler will always be busy.
        for _ in 0..100 {
            rt.spawn(async {
                loop {
                    // Don't use Tokio's `yield_now()` to avoid special defer
                    // logic.
                    std::future::poll_fn::<(), _>(|cx| {
                        cx.waker().wake_by_ref();
                        std::task::Poll::Pending
                    }).await;
                }
            });
        }

        // Do some I/O work
        rt.block_on(async {
            let listener = assert_ok!(TcpListener::bind("127.0.0.1:0").await);
            let addr = assert_ok!(listener.local_addr());

            let srv = gpm::spawn(async move {
                let (stream, _) = assert_ok!(listener.accept().await);
                assert_ok!(stream.write_all(b"hello world").await);
            });

            let cli = gpm::spawn(async move {
                let mut stream = assert_ok!(TcpStream::connect(addr).await);
                let mut dst = vec![0; 11];

                assert_ok!(stream.read_exact(&mut dst).await);
                assert_eq!(dst, b"hello world");
            });

            assert_ok!(srv.await);
            assert_ok!(cli.await);
        });
    }

    /// Tests that yielded tasks are not scheduled until **after** resource
    /// drivers are polled.
    ///
    /// The OS does not guarantee when I/O events are delivered, so there may be
    /// more yields than anticipated. This makes the test slightly flaky. To
    /// help avoid flakiness, we run the test 10 times and only fail it after
    /// 10 failures in a row.
    ///
    /// Note that if the test fails by panicking rather than by returning false,
    /// then we fail it immediately. That kind of failure should not happen
    /// spuriously.
    #[test]
    fn yield_defers_until_park() {
        yield_defers_until_park_up_to_10_times(false);
    }

    /// Same as above, but with cooperative scheduling.
    #[test]
    fn coop_yield_defers_until_park() {
        yield_defers_until_park_up_to_10_times(true);
    }

    /// Runs `yield_defers_until_park_inner` until it passes, 10 times at the most.
    fn yield_defers_until_park_up_to_10_times(use_coop: bool) {
        for _ in 0..10 {
            if yield_defers_until_park_inner(use_coop) {
                // test passed
                return;
            }

            // Wait a bit and run the test again.
            std::thread::sleep(std::time::Duration::from_secs(2));
        }

        panic!("yield_defers_until_park is failing consistently");
    }

    /// Implementation of `yield_defers_until_park` test. Returns `true` if the
    /// test passed.
    fn yield_defers_until_park_inner(use_coop: bool) -> bool {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        use std::sync::Barrier;

        const BUDGET: usize = 128;

        let rt = rt();

        let flag = Arc::new(AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(NUM_WORKERS));

        rt.block_on(async {
            // Make sure other workers cannot steal tasks
            #[allow(clippy::reversed_empty_ranges)]
            for _ in 0..(NUM_WORKERS-1) {
                let flag = flag.clone();
                let barrier = barrier.clone();

                gpm::spawn(async move {
                    barrier.wait();

                    while !flag.load(SeqCst) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                });
            }

            barrier.wait();

            let (fail_test, fail_test_recv) = oneshot::channel::<()>();
            let flag_clone = flag.clone();
            let jh = gpm::spawn(async move {
                // Create a TCP listener
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();

                crate::join(
                    async {
                        // Done in a blocking manner intentionally.
                        let _socket = std::net::TcpStream::connect(addr).unwrap();

                        // Yield until connected
                        let mut cnt = 0;
                        while !flag_clone.load(SeqCst){
                            if use_coop {
                                // Consume a good chunk of budget, which should
                                // force at least one yield.
                                for _ in 0..BUDGET {
                                    gpm::task::consume_budget().await;
                                }
                            } else {
                                gpm::task::yield_now().await;
                            }
                            cnt += 1;

                            if cnt >= 10 {
                                // yielded too many times; report failure and
                                // sleep forever so that the `fail_test` branch
                                // of the `select!` below triggers.
                                let _ = fail_test.send(());
                                futures::future::pending::<()>().await;
                                break;
                            }
                        }
                    },
                    async {
                        let _ = listener.accept().await.unwrap();
                        flag_clone.store(true, SeqCst);
                    },
                ).await;
            });

            // Wait until the spawned task completes or fails. If no message is
            // sent on `fail_test`, then the test succeeds. Otherwise, it fails.
            let success = fail_test_recv.await.is_err();

            if success {
                // Setting flag to true ensures that the tasks we spawned at
                // the beginning of the test will exit.
                // If we don't do this, the test will hang since the runtime waits
                // for all spawned tasks to finish when dropping.
                flag.store(true, SeqCst);
                // Check for panics in spawned task.
                jh.abort();
                jh.await.unwrap();
            }

            success
        })
    }

    #[test]
    fn client_server_block_on() {
        let rt = rt();
        let (tx, rx) = mpsc::channel();

        rt.block_on(async move { client_server(tx).await });

        assert_ok!(rx.try_recv());
        assert_err!(rx.try_recv());
    }

    #[test]
    fn panic_in_task() {
        let rt = rt();
        let (tx, rx) = oneshot::channel();

        struct Boom(Option<oneshot::Sender<()>>);

        impl Future for Boom {
            type Output = ();

            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
                panic!();
            }
        }

        impl Drop for Boom {
            fn drop(&mut self) {
                assert!(std::thread::panicking());
                self.0.take().unwrap().send(()).unwrap();
            }
        }

        rt.spawn(Boom(Some(tx)));
        assert_ok!(rt.block_on(rx));
    }

    #[test]
    #[should_panic]
    fn panic_in_block_on() {
        let rt = rt();
        rt.block_on(async { panic!() });
    }

    async fn yield_once() {
        let mut yielded = false;
        poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn enter_and_spawn() {
        let rt = rt();
        let handle = {
            let _enter = rt.enter();
            gpm::spawn(async {})
        };

        assert_ok!(rt.block_on(handle));
    }

    #[test]
    fn eagerly_drops_futures_on_shutdown() {
        use std::sync::mpsc;

        struct Never {
            drop_tx: mpsc::Sender<()>,
        }

        impl Future for Never {
            type Output = ();

            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
                Poll::Pending
            }
        }

        impl Drop for Never {
            fn drop(&mut self) {
                self.drop_tx.send(()).unwrap();
            }
        }

        let rt = rt();

        let (drop_tx, drop_rx) = mpsc::channel();
        let (run_tx, run_rx) = oneshot::channel();

        rt.block_on(async move {
            gpm::spawn(async move {
                assert_ok!(run_tx.send(()));

                Never { drop_tx }.await
            });

            assert_ok!(run_rx.await);
        });

        drop(rt);

        assert_ok!(drop_rx.recv());
    }

    #[test]
    fn wake_while_rt_is_dropping() {
        use tokio::sync::Barrier;

        struct OnDrop<F: FnMut()>(F);

        impl<F: FnMut()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }

        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();

        let barrier = Arc::new(Barrier::new(3));
        let barrier1 = barrier.clone();
        let barrier2 = barrier.clone();

        let rt = rt();

        rt.spawn(async move {
            let mut tx2 = Some(tx2);
            let _d = OnDrop(move || {
                let _ = tx2.take().unwrap().send(());
            });

            // Ensure a waker gets stored in oneshot 1.
            let _ = crate::join(rx1, barrier1.wait()).await;
        });

        rt.spawn(async move {
            let mut tx1 = Some(tx1);
            let _d = OnDrop(move || {
                let _ = tx1.take().unwrap().send(());
            });

            // Ensure a waker gets stored in oneshot 2.
            let _ = crate::join(rx2, barrier2.wait()).await;
        });

        // Wait until every oneshot channel has been polled.
        rt.block_on(barrier.wait());

        // Drop the rt. Regardless of which task is dropped first, its destructor will wake the
        // other task.
        drop(rt);
    }

    #[test]
    fn io_notify_while_shutting_down() {
        use gpm::net::UdpSocket;
        use std::sync::Arc;

        for _ in 1..10 {
            let runtime = rt();

            runtime.block_on(async {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let addr = socket.local_addr().unwrap();
                let send_half = Arc::new(socket);
                let recv_half = send_half.clone();

                gpm::spawn(async move {
                    let mut buf = [0];
                    loop {
                        recv_half.recv_from(&mut buf).await.unwrap();
                        std::thread::sleep(Duration::from_millis(2));
                    }
                });

                gpm::spawn(async move {
                    let buf = [0];
                    loop {
                        send_half.send_to(&buf, &addr).await.unwrap();
                        gpm::time::sleep(Duration::from_millis(1)).await;
                    }
                });

                gpm::time::sleep(Duration::from_millis(5)).await;
            });
        }
    }

    #[test]
    fn shutdown_timeout() {
        let (tx, rx) = oneshot::channel();
        let runtime = rt();

        runtime.block_on(async move {
            task::spawn_blocking(move || {
                tx.send(()).unwrap();
                thread::sleep(Duration::from_secs(10_000));
            });

            rx.await.unwrap();
        });

        Arc::try_unwrap(runtime).unwrap().shutdown_timeout(Duration::from_millis(100));
    }

    #[test]
    fn shutdown_timeout_0() {
        let runtime = rt();

        runtime.block_on(async move {
            task::spawn_blocking(move || {
                thread::sleep(Duration::from_secs(10_000));
            });
        });

        let now = Instant::now();
        Arc::try_unwrap(runtime).unwrap().shutdown_timeout(Duration::from_nanos(0));
        assert!(now.elapsed().as_secs() < 1);
    }

    #[test]
    fn shutdown_timeout_max() {
        let runtime = rt();

        Arc::try_unwrap(runtime).unwrap().shutdown_timeout(Duration::MAX);
    }

    #[test]
    fn shutdown_wakeup_time() {
        let runtime = rt();

        runtime.block_on(async move {
            gpm::time::sleep(std::time::Duration::from_millis(100)).await;
        });

        Arc::try_unwrap(runtime).unwrap().shutdown_timeout(Duration::from_secs(10_000));
    }

    // This test is currently ignored on Windows because of a
    // rust-lang issue in thread local storage destructors.
    // See https://github.com/rust-lang/rust/issues/74875
    #[test]
    fn runtime_in_thread_local() {
        use std::cell::RefCell;
        use std::thread;

        thread_local!(
            static R: RefCell<Option<Runtime>> = const { RefCell::new(None) };
        );

        thread::spawn(|| {
            R.with(|cell| {
                let rt = rt();
                let rt = Arc::try_unwrap(rt).unwrap();
                *cell.borrow_mut() = Some(rt);
            });

            let _rt = rt();
        }).join().unwrap();
    }

    /// A listener on a free port, its address, and the server of `client_server`: it
    /// accepts one socket and writes "hello" to it.
    async fn hello_server() -> (std::net::SocketAddr, impl Future<Output = ()> + Send) {
        let server = assert_ok!(TcpListener::bind("127.0.0.1:0").await);

        // Get the assigned address
        let addr = assert_ok!(server.local_addr());

        let serve = async move {
            // Accept a socket
            let (socket, _) = server.accept().await.unwrap();

            // Write some data
            socket.write_all(b"hello").await.unwrap();
        };
        (addr, serve)
    }

    /// The client of `client_server`: reads all the server wrote, which is "hello".
    async fn hello_client(addr: std::net::SocketAddr, tx: mpsc::Sender<()>) {
        let mut client = TcpStream::connect(&addr).await.unwrap();

        let mut buf = vec![];
        client.read_to_end(&mut buf).await.unwrap();

        assert_eq!(buf, b"hello");
        tx.send(()).unwrap();
    }

    async fn client_server(tx: mpsc::Sender<()>) {
        let (addr, server) = hello_server().await;

        // Spawn the server
        gpm::spawn(server);

        hello_client(addr, tx).await;
    }

    #[test]
    fn local_set_block_on_socket() {
        let rt = rt();
        let local = task::LocalSet::new();

        local.block_on(&rt, connect_to_a_spawned_accept(task::spawn_local));
    }

    #[test]
    fn local_set_client_server_block_on() {
        let rt = rt();
        let (tx, rx) = mpsc::channel();

        let local = task::LocalSet::new();

        local.block_on(&rt, async move { client_server_local(tx).await });

        assert_ok!(rx.try_recv());
        assert_err!(rx.try_recv());
    }

    async fn client_server_local(tx: mpsc::Sender<()>) {
        let (addr, server) = hello_server().await;

        // Spawn the server
        task::spawn_local(server);

        hello_client(addr, tx).await;
    }

    /// `n` tasks that have all finished: the budgeted resource of `coop` and
    /// `coop_unconstrained` (tokio's mpsc spends tokio's budget, invisible to gpm; see
    /// `tests/coop.rs`).
    async fn finished_tasks(n: usize) -> Vec<gpm::JoinHandle<()>> {
        let handles: Vec<_> = (0..n).map(|_| gpm::spawn(async {})).collect();
        while !handles.iter().all(gpm::JoinHandle::is_finished) {
            task::yield_now().await;
        }
        handles
    }

    #[test]
    fn coop() {
        use std::task::Poll::Ready;

        let rt = rt();

        rt.block_on(async {
            // A thousand ready join handles instead of a thousand messages.
            let mut handles = finished_tasks(1_000).await;

            poll_fn(|cx| {
                // At least one response should return pending.
                for handle in &mut handles {
                    if Pin::new(handle).poll(cx).is_pending() {
                        return Ready(());
                    }
                }

                panic!("did not yield");
            }).await;
        });
    }

    #[test]
    fn coop_unconstrained() {
        use std::task::Poll::Ready;

        let rt = rt();

        rt.block_on(async {
            // A thousand ready join handles instead of a thousand messages.
            let mut handles = finished_tasks(1_000).await;

            gpm::task::unconstrained(poll_fn(|cx| {
                // All the responses should be ready.
                for handle in &mut handles {
                    assert!(matches!(Pin::new(handle).poll(cx), Poll::Ready(Ok(()))));
                }

                Ready(())
            })).await;
        });
    }

    #[test]
    fn coop_consume_budget() {
        let rt = rt();

        rt.block_on(gpm_tests::consume_budget_yields());
    }

    // Tests that the "next task" scheduler optimization is not able to starve
    // other tasks.
    #[test]
    fn ping_pong_saturation() {
        use std::sync::atomic::{Ordering, AtomicBool};
        use futures::channel::mpsc;

        const NUM: usize = 100;

        let rt = rt();

        let running = Arc::new(AtomicBool::new(true));

        rt.block_on(async {
            let (spawned_tx, mut spawned_rx) = mpsc::unbounded();

            let mut tasks = vec![];
            // Spawn a bunch of tasks that ping-pong between each other to
            // saturate the runtime.
            for _ in 0..NUM {
                let (tx1, mut rx1) = mpsc::unbounded();
                let (tx2, mut rx2) = mpsc::unbounded();
                let spawned_tx = spawned_tx.clone();
                let running = running.clone();
                tasks.push(gpm::spawn(async move {
                    spawned_tx.unbounded_send(()).unwrap();


                    while running.load(Ordering::Relaxed) {
                        tx1.unbounded_send(()).unwrap();
                        rx2.next().await.unwrap();
                    }

                    // Close the channel and wait for the other task to exit.
                    drop(tx1);
                    assert!(rx2.next().await.is_none());
                }));

                tasks.push(gpm::spawn(async move {
                    while rx1.next().await.is_some() {
                        tx2.unbounded_send(()).unwrap();
                    }
                }));
            }

            for _ in 0..NUM {
                spawned_rx.next().await.unwrap();
            }

            // spawn another task and wait for it to complete
            let handle = gpm::spawn(async {
                for _ in 0..5 {
                    // Yielding forces it back into the local queue.
                    task::yield_now().await;
                }
            });
            handle.await.unwrap();
            running.store(false, Ordering::Relaxed);
            for t in tasks {
                t.await.unwrap();
            }
        });
    }

    #[test]
    fn shutdown_concurrent_spawn() {
        const NUM_TASKS: usize = 10_000;
        for _ in 0..5 {
            let (tx, rx) = std::sync::mpsc::channel();
            let rt = rt();

            let mut txs = vec![];

            for _ in 0..NUM_TASKS {
                let (tx, rx) = oneshot::channel();
                txs.push(tx);
                rt.spawn(async move {
                    rx.await.unwrap();
                });
            }

            // Prime the tasks
            rt.block_on(async { gpm::task::yield_now().await });

            let th = std::thread::spawn(move || {
                tx.send(()).unwrap();
                for tx in txs.drain(..) {
                    let _ = tx.send(());
                }
            });

            rx.recv().unwrap();
            drop(rt);

            th.join().unwrap();
        }
    }

    #[test]
    fn wake_by_ref_from_thread_local() {
        wake_from_thread_local(true);
    }

    #[test]
    fn wake_by_val_from_thread_local() {
        wake_from_thread_local(false);
    }

    fn wake_from_thread_local(by_ref: bool) {
        use std::cell::RefCell;
        use std::sync::mpsc::{channel, Sender};
        use std::task::Waker;

        struct TLData {
            by_ref: bool,
            waker: Option<Waker>,
            done: Sender<bool>,
        }

        impl Drop for TLData {
            fn drop(&mut self) {
                if self.by_ref {
                    self.waker.take().unwrap().wake_by_ref();
                } else {
                    self.waker.take().unwrap().wake();
                }
                let _ = self.done.send(true);
            }
        }

        std::thread_local! {
            static TL_DATA: RefCell<Option<TLData>> = const { RefCell::new(None) };
        };

        let (send, recv) = channel();

        std::thread::spawn(move || {
            let rt = rt();
            rt.block_on(rt.spawn(poll_fn(move |cx| {
                let waker = cx.waker().clone();
                let send = send.clone();
                TL_DATA.with(|tl| {
                    tl.replace(Some(TLData {
                        by_ref,
                        waker: Some(waker),
                        done: send,
                    }));
                });
                Poll::Ready(())
            })))
            .unwrap();
        })
        .join()
        .unwrap();

        assert!(recv.recv().unwrap());
    }
}

/// Beyond tokio's file.
mod gpm_specific {
    use std::time::Duration;

    /// The sibling of `shutdown_timeout_max`: a blocking thread's keep-alive of
    /// `Duration::MAX` (tokio accepts it) keeps idle threads for ever instead of
    /// overflowing an `Instant` on the idle thread; the shutdown still ends them.
    #[test]
    fn thread_keep_alive_max() {
        for mut builder in [
            gpm::runtime::Builder::new_current_thread(),
            gpm::runtime::Builder::new_multi_thread(),
        ] {
            let rt = builder.thread_keep_alive(Duration::MAX).build().unwrap();
            for i in 0..3 {
                let out = rt.block_on(rt.spawn_blocking(move || i));
                assert_eq!(out.unwrap(), i);
                // Let the thread go idle and wait for its next closure.
                std::thread::sleep(Duration::from_millis(20));
            }
            rt.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

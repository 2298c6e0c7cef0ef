//! The current-thread runtime (`Builder::new_current_thread`): tokio's `tests/rt_basic.rs`,
//! ported (assertions kept; tokio's oneshot is futures'), then what gpm adds.

use futures::channel::oneshot;
use gpm::time::Duration;
use gpm::{Builder, Runtime};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

fn rt() -> Runtime {
    Builder::new_current_thread().build().unwrap()
}

/// tokio's test sleeps 50 ms to give a wrongly running task every chance to run; without
/// the bug it passes whatever the duration.
#[test]
fn spawned_task_does_not_progress_without_block_on() {
    let (tx, mut rx) = oneshot::channel();
    let rt = rt();
    rt.spawn(async move {
        tx.send("hello").unwrap();
    });
    thread::sleep(Duration::from_millis(50));
    assert!(matches!(rx.try_recv(), Ok(None)));
    let out = rt.block_on(async { rx.await.unwrap() });
    assert_eq!(out, "hello");
}

#[test]
fn acquire_mutex_in_drop() {
    let rt = rt();
    for task in gpm_tests::tasks_waiting_in_a_chain() {
        rt.spawn(task);
    }
    // Tick the loop.
    rt.block_on(async {
        gpm::task::yield_now().await;
    });
    drop(rt);
}

#[test]
fn drop_tasks_in_context() {
    static SUCCESS: AtomicBool = AtomicBool::new(false);

    let context_on_drop = gpm_tests::OnDrop::pending(|| {
        if gpm::Handle::try_current().is_ok() {
            SUCCESS.store(true, Ordering::SeqCst);
        }
    });

    let rt = rt();
    rt.spawn(context_on_drop);
    drop(rt);
    assert!(SUCCESS.load(Ordering::SeqCst));
}

#[test]
#[should_panic(expected = "boom")]
fn wake_in_drop_after_panic() {
    struct WakeOnDrop(Option<oneshot::Sender<()>>);

    impl Drop for WakeOnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(());
        }
    }

    let rt = rt();
    let (tx1, rx1) = oneshot::channel::<()>();
    let (tx2, rx2) = oneshot::channel::<()>();
    rt.spawn(async move {
        let _wake_on_drop = WakeOnDrop(Some(tx2));
        let _ = rx1.await;
        unreachable!()
    });
    rt.spawn(async move {
        let _wake_on_drop = WakeOnDrop(Some(tx1));
        let _ = rx2.await;
        unreachable!()
    });
    rt.block_on(async {
        gpm::task::yield_now().await;
        panic!("boom");
    });
}

#[test]
fn spawn_two() {
    let rt = rt();
    let out = rt.block_on(async {
        let (tx, rx) = oneshot::channel();
        gpm::spawn(async move {
            gpm::spawn(async move {
                tx.send("ZOMG").unwrap();
            });
        });
        rx.await.unwrap()
    });
    assert_eq!(out, "ZOMG");
}

#[test]
fn spawn_remote() {
    let rt = rt();
    let out = rt.block_on(async {
        let (tx, rx) = oneshot::channel();
        let handle = gpm::spawn(async move {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                tx.send("ZOMG").unwrap();
            });
            rx.await.unwrap()
        });
        handle.await.unwrap()
    });
    assert_eq!(out, "ZOMG");
}

/// Beyond tokio's file.
mod gpm_specific {
    use super::*;

    #[test]
    fn tasks_run_on_the_thread_in_block_on() {
        let rt = rt();
        let here = thread::current().id();
        let there = rt.block_on(async {
            let task = gpm::spawn(async { thread::current().id() });
            task.await.unwrap()
        });
        assert_eq!(here, there);
    }

    #[test]
    fn timers_and_sockets_are_driven_by_block_on() {
        let rt = rt();
        rt.block_on(async {
            let start = gpm::time::Instant::now();
            gpm::time::sleep(Duration::from_millis(5)).await;
            assert!(start.elapsed() >= Duration::from_millis(5));
            let listener = gpm::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = gpm::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                stream.readable().await.unwrap();
                let n = stream.try_read(&mut buf).unwrap();
                buf[..n].to_vec()
            });
            let client = gpm::net::TcpStream::connect(addr).await.unwrap();
            client.writable().await.unwrap();
            client.try_write(b"ping").unwrap();
            assert_eq!(server.await.unwrap(), b"ping");
        });
    }

    #[test]
    fn two_threads_in_block_on_both_finish() {
        let rt = std::sync::Arc::new(rt());
        let (tx, rx) = oneshot::channel::<u32>();
        let other = {
            let rt = std::sync::Arc::clone(&rt);
            // Its future waits for a task that the first thread's block_on spawns: whichever
            // thread holds the P runs it.
            thread::spawn(move || rt.block_on(async { rx.await.unwrap() }))
        };
        let mine = rt.block_on(async {
            let task = gpm::spawn(async move {
                tx.send(7).unwrap();
                3
            });
            task.await.unwrap()
        });
        assert_eq!(mine, 3);
        assert_eq!(other.join().unwrap(), 7);
    }

    #[test]
    fn a_panicking_block_on_gives_the_processor_back() {
        let rt = rt();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async { panic!("first") })
        }));
        assert!(panicked.is_err());
        let out = rt.block_on(async { gpm::spawn(async { 5 }).await.unwrap() });
        assert_eq!(out, 5);
    }

    #[test]
    fn stop_the_world_sees_an_idle_processor_between_block_ons() {
        let rt = rt();
        rt.block_on(async { gpm::spawn(async {}).await.unwrap() });
        let (workers, report) = rt.handle().stop_the_world(|world| world.processors.len());
        assert_eq!(workers, 1);
        assert_eq!(report.processors.len(), 1);
        assert_eq!(report.processors[0].0, gpm::probe::StopKind::Idle);
    }

    #[test]
    fn block_in_place_panics_with_a_clear_message() {
        let rt = rt();
        let task =
            rt.block_on(async { gpm::spawn(async { gpm::task::block_in_place(|| 1) }).await });
        assert!(task.unwrap_err().is_panic());
    }

    #[test]
    fn more_than_one_worker_is_a_build_error() {
        gpm_tests::assert_invalid_setting(
            Builder::new_current_thread().worker_threads(2).build(),
            "one P",
        );
    }

    #[test]
    fn a_paused_clock_advances_on_the_current_thread_runtime() {
        let rt = Builder::new_current_thread()
            .start_paused(true)
            .build()
            .unwrap();
        let elapsed = rt.block_on(async {
            let start = gpm::time::Instant::now();
            let sleeper = gpm::spawn(gpm::time::sleep(Duration::from_secs(600)));
            sleeper.await.unwrap();
            start.elapsed()
        });
        assert_eq!(elapsed, Duration::from_secs(600));
    }

    #[test]
    fn tasks_spawned_from_outside_run_at_the_next_block_on() {
        let rt = rt();
        let handles: Vec<_> = (0..100).map(|i| rt.spawn(async move { i * 2 })).collect();
        let sum = rt.block_on(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..100).map(|i| i * 2).sum::<i32>());
    }
}

//! `gpm::task::id()` / `try_id()` and `JoinHandle::id()`: tokio's `tests/task_id.rs`, ported.
//!
//! tokio's `current_thread` tests run here on every worker count; the LocalSet tests are left
//! out (gpm has no LocalSet yet). Where tokio's current-thread scheduler guarantees that a
//! spawned task has not run yet, the port spawns from inside a task of a one-worker runtime,
//! which gives the same guarantee (the new task waits in the spawner's `runnext`).

use futures::channel::oneshot;
use gpm::task::{self, Id};
use gpm_tests::{rt_test, runtime, test_panic, watchdog, OnDrop};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

rt_test! {
    fn task_id_spawn(rt: &gpm::Runtime) {
        rt.block_on(async {
            gpm::spawn(async { println!("task id: {}", task::id()) })
                .await
                .unwrap();
        });
    }
}

rt_test! {
    fn task_id_spawn_blocking(rt: &gpm::Runtime) {
        rt.block_on(async {
            task::spawn_blocking(|| println!("task id: {}", task::id()))
                .await
                .unwrap();
        });
    }
}

rt_test! {
    fn task_id_collision(rt: &gpm::Runtime) {
        rt.block_on(async {
            let handle1 = gpm::spawn(async { task::id() });
            let handle2 = gpm::spawn(async { task::id() });
            let (id1, id2) = futures::join!(handle1, handle2);
            assert_ne!(id1.unwrap(), id2.unwrap());
        });
    }
}

rt_test! {
    fn task_ids_match(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            let handle = gpm::spawn(async {
                let id = rx.await.unwrap();
                assert_eq!(id, task::id());
            });
            tx.send(handle.id()).unwrap();
            handle.await.unwrap();
        });
    }
}

rt_test! {
    fn task_id_future_destructor_completion(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (handle, rx) = spawn_sending_id_on_drop(true);
            let id = handle.id();
            handle.await.unwrap();
            assert_eq!(rx.await.unwrap(), id);
        });
    }
}

rt_test! {
    fn task_id_future_destructor_abort(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (handle, rx) = spawn_sending_id_on_drop(false);
            let id = handle.id();
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
            assert_eq!(rx.await.unwrap(), id);
        });
    }
}

/// Spawns a future that sends its task's id when the runtime drops it: a future ready at
/// its first poll, or (`ready` false) one that never completes.
fn spawn_sending_id_on_drop(ready: bool) -> (gpm::task::JoinHandle<()>, oneshot::Receiver<Id>) {
    let (tx, rx) = oneshot::channel();
    let send_id = move || {
        let _ = tx.send(task::id());
    };
    let future = if ready {
        OnDrop::ready(send_id)
    } else {
        OnDrop::pending(send_id)
    };
    (gpm::spawn(future), rx)
}

struct MyOutput {
    tx: Option<oneshot::Sender<Id>>,
}

impl Drop for MyOutput {
    fn drop(&mut self) {
        let _ = self.tx.take().unwrap().send(task::id());
    }
}

#[test]
fn task_id_output_destructor_handle_dropped_before_completion() {
    struct MyFuture {
        tx: Option<oneshot::Sender<Id>>,
    }

    impl Future for MyFuture {
        type Output = MyOutput;

        fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(MyOutput { tx: self.tx.take() })
        }
    }

    watchdog(
        "task_id_output_destructor_handle_dropped_before_completion",
        || {
            let rt = runtime(1);
            rt.block_on(rt.spawn(async {
                let (tx, mut rx) = oneshot::channel();
                let handle = gpm::spawn(MyFuture { tx: Some(tx) });
                let id = handle.id();
                drop(handle);
                assert!(matches!(rx.try_recv(), Ok(None)));
                assert_eq!(rx.await.unwrap(), id);
            }))
            .unwrap();
        },
    );
}

rt_test! {
    fn task_id_output_destructor_handle_dropped_after_completion(rt: &gpm::Runtime) {
        struct MyFuture {
            tx_output: Option<oneshot::Sender<Id>>,
            tx_future: Option<oneshot::Sender<()>>,
        }

        impl Future for MyFuture {
            type Output = MyOutput;

            fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
                let _ = self.tx_future.take().unwrap().send(());
                Poll::Ready(MyOutput {
                    tx: self.tx_output.take(),
                })
            }
        }

        rt.block_on(async {
            let (tx_output, mut rx_output) = oneshot::channel();
            let (tx_future, rx_future) = oneshot::channel();
            let handle = gpm::spawn(MyFuture {
                tx_output: Some(tx_output),
                tx_future: Some(tx_future),
            });
            let id = handle.id();
            rx_future.await.unwrap();
            assert!(matches!(rx_output.try_recv(), Ok(None)));
            drop(handle);
            assert_eq!(rx_output.await.unwrap(), id);
        });
    }
}

#[test]
fn task_try_id_outside_task() {
    assert_eq!(None, task::try_id());
}

rt_test! {
    fn task_try_id_inside_block_on(rt: &gpm::Runtime) {
        rt.block_on(async {
            assert_eq!(None, task::try_id());
        });
    }
}

rt_test! {
    fn task_id_block_in_place_block_on_spawn(rt: &gpm::Runtime) {
        rt.block_on(async {
            gpm::spawn(async {
                let parent_id = task::id();

                task::block_in_place(move || {
                    let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
                    rt.block_on(rt.spawn(async move {
                        assert_ne!(parent_id, task::id());
                    }))
                    .unwrap();
                });

                assert_eq!(parent_id, task::id());
            })
            .await
            .unwrap();
        });
    }
}

rt_test! {
    /// Not in tokio's file: the id survives a nested poll and is gone after the task.
    fn task_id_restored_after_nested_poll(rt: &gpm::Runtime) {
        let (id, handle_id) = rt.block_on(async {
            let handle = gpm::spawn(async {
                let before = task::id();
                task::block_in_place(|| {
                    let inner = gpm::Runtime::builder().worker_threads(1).build().unwrap();
                    inner.block_on(async { assert_eq!(task::try_id(), Some(before)) });
                });
                gpm::task::yield_now().await;
                assert_eq!(task::id(), before);
                before
            });
            let handle_id = handle.id();
            (handle.await.unwrap(), handle_id)
        });
        assert_eq!(id, handle_id);
        assert_eq!(task::try_id(), None);
    }
}

#[test]
fn task_id_outside_task_panic_caller() {
    let panic_location_file = test_panic(|| {
        let _ = task::id();
    });

    // The panic location should be in this file
    assert_eq!(&panic_location_file.unwrap(), file!());
}

#[test]
fn task_id_inside_block_on_panic_caller() {
    let panic_location_file = test_panic(|| {
        let rt = runtime(1);
        rt.block_on(async {
            task::id();
        });
    });

    // The panic location should be in this file
    assert_eq!(&panic_location_file.unwrap(), file!());
}

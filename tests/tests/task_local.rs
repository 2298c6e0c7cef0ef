//! `gpm::task_local!`: tokio's `tests/task_local.rs`, ported, plus checks that the value
//! follows a task across Ps and that `sync_scope` nests.

use futures::channel::oneshot;
use gpm_tests::{rt_test, OnDrop};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

rt_test! {
    fn local(rt: &gpm::Runtime) {
        gpm::task_local! {
            static REQ_ID: u32;
            pub static FOO: bool;
        }

        rt.block_on(async {
            let j1 = gpm::spawn(REQ_ID.scope(1, async move {
                assert_eq!(REQ_ID.get(), 1);
                assert_eq!(REQ_ID.get(), 1);
            }));

            let j2 = gpm::spawn(REQ_ID.scope(2, async move {
                REQ_ID.with(|v| {
                    assert_eq!(REQ_ID.get(), 2);
                    assert_eq!(*v, 2);
                });

                gpm::time::sleep(std::time::Duration::from_millis(10)).await;

                assert_eq!(REQ_ID.get(), 2);
            }));

            let j3 = gpm::spawn(FOO.scope(true, async move {
                assert!(FOO.get());
            }));

            j1.await.unwrap();
            j2.await.unwrap();
            j3.await.unwrap();
        });
    }
}

rt_test! {
    fn task_local_available_on_abort(rt: &gpm::Runtime) {
        gpm::task_local! {
            static KEY: u32;
        }

        struct MyFuture {
            tx_poll: Option<oneshot::Sender<()>>,
            tx_drop: Option<oneshot::Sender<u32>>,
        }
        impl Future for MyFuture {
            type Output = ();

            fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
                if let Some(tx_poll) = self.tx_poll.take() {
                    let _ = tx_poll.send(());
                }
                Poll::Pending
            }
        }
        impl Drop for MyFuture {
            fn drop(&mut self) {
                let _ = self.tx_drop.take().unwrap().send(KEY.get());
            }
        }

        rt.block_on(async {
            let (tx_drop, rx_drop) = oneshot::channel();
            let (tx_poll, rx_poll) = oneshot::channel();

            let h = gpm::spawn(KEY.scope(
                42,
                MyFuture {
                    tx_poll: Some(tx_poll),
                    tx_drop: Some(tx_drop),
                },
            ));

            rx_poll.await.unwrap();
            h.abort();
            assert_eq!(rx_drop.await.unwrap(), 42);

            let err = h.await.unwrap_err();
            if !err.is_cancelled() {
                if let Ok(panic) = err.try_into_panic() {
                    std::panic::resume_unwind(panic);
                } else {
                    panic!();
                }
            }
        });
    }
}

rt_test! {
    fn task_local_available_on_completion_drop(rt: &gpm::Runtime) {
        gpm::task_local! {
            static KEY: u32;
        }

        rt.block_on(async {
            let (tx, rx) = oneshot::channel();

            let h = gpm::spawn(KEY.scope(
                42,
                OnDrop::ready(move || {
                    let _ = tx.send(KEY.get());
                }),
            ));

            assert_eq!(rx.await.unwrap(), 42);
            h.await.unwrap();
        });
    }
}

rt_test! {
    fn take_value(rt: &gpm::Runtime) {
        gpm::task_local! {
            static KEY: u32
        }
        rt.block_on(async {
            let fut = KEY.scope(1, async {});
            let mut pinned = Box::pin(fut);
            assert_eq!(pinned.as_mut().take_value(), Some(1));
            assert_eq!(pinned.as_mut().take_value(), None);
        });
    }
}

rt_test! {
    fn poll_after_take_value_should_fail(rt: &gpm::Runtime) {
        gpm::task_local! {
            static KEY: u32
        }
        rt.block_on(async {
            let fut = KEY.scope(1, async {
                let result = KEY.try_with(|_| {});
                // The task local value no longer exists.
                assert!(result.is_err());
            });
            poll_after_take_value(fut).await;
        });
    }
}

rt_test! {
    fn get_value(rt: &gpm::Runtime) {
        gpm::task_local! {
            static KEY: u32
        }

        rt.block_on(async {
            KEY.scope(1, async {
                assert_eq!(KEY.get(), 1);
                assert_eq!(KEY.try_get().unwrap(), 1);
            })
            .await;

            let fut = KEY.scope(1, async {
                let result = KEY.try_get();
                // The task local value no longer exists.
                assert!(result.is_err());
            });
            poll_after_take_value(fut).await;
        });
    }
}

rt_test! {
    /// Not in tokio's file: many tasks, each with its own value, yield many times (so they
    /// move between Ps under stealing) and always see their own value, never a neighbour's.
    fn value_follows_task_across_polls(rt: &gpm::Runtime) {
        gpm::task_local! {
            static OWNER: usize;
        }

        rt.block_on(async {
            let handles: Vec<_> = (0..64)
                .map(|i| {
                    gpm::spawn(OWNER.scope(i, async move {
                        for _ in 0..50 {
                            assert_eq!(OWNER.get(), i);
                            gpm::task::yield_now().await;
                        }
                        OWNER.get()
                    }))
                })
                .collect();
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.unwrap(), i);
            }
            assert!(OWNER.try_get().is_err());
        });
    }
}

#[test]
fn sync_scope_nests_and_restores() {
    gpm::task_local! {
        static DEPTH: u32;
    }
    assert!(DEPTH.try_get().is_err());
    DEPTH.sync_scope(1, || {
        assert_eq!(DEPTH.get(), 1);
        DEPTH.sync_scope(2, || assert_eq!(DEPTH.get(), 2));
        assert_eq!(DEPTH.get(), 1);
    });
    assert!(DEPTH.try_get().is_err());
    let message = gpm_tests::catch_panic_message(|| DEPTH.get());
    assert_eq!(
        message,
        "cannot access a task-local storage value without setting it first"
    );
}

#[test]
fn scope_inside_with_panics() {
    gpm::task_local! {
        static KEY: u32;
    }
    let message = gpm_tests::catch_panic_message(|| {
        KEY.sync_scope(1, || KEY.with(|_| KEY.sync_scope(2, || ())))
    });
    assert_eq!(
        message,
        "cannot enter a task-local scope while the task-local storage is borrowed"
    );
    // The outer scope's guard put the slot back in order on unwind.
    assert!(KEY.try_get().is_err());
}

/// Takes the value out of `fut`'s scope, then polls `fut` to completion (tokio's
/// `poll_after_take_value_should_fail` and `get_value`: the body sees no value).
async fn poll_after_take_value<F: Future>(fut: gpm::task::TaskLocalFuture<u32, F>) {
    let mut fut = Box::pin(fut);
    fut.as_mut().take_value();

    // Poll the future after `take_value` has been called
    fut.await;
}

//! The cooperative budget's public API: `gpm::task::{consume_budget, unconstrained}` and
//! `gpm::task::coop::has_budget_remaining`. Ports of tokio's `rt_common.rs` tests `coop`,
//! `coop_unconstrained` and `coop_consume_budget`, and of `coop_budget.rs`'s
//! `test_has_budget_remaining`. tokio's use an mpsc channel as the budgeted resource; gpm
//! has no channels, so these use join handles of finished tasks, which spend budget too.

use gpm::task::coop::has_budget_remaining;
use gpm::task::{self, JoinHandle};
use gpm_tests::rt_test;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

const BUDGET: usize = 128;

/// `n` tasks that have all finished.
async fn finished_tasks(n: usize) -> Vec<JoinHandle<()>> {
    let handles: Vec<_> = (0..n).map(|_| gpm::spawn(async {})).collect();
    while !handles.iter().all(JoinHandle::is_finished) {
        task::yield_now().await;
    }
    handles
}

rt_test! {
    fn coop(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut handles = finished_tasks(1_000).await;

            poll_fn(|cx| {
                // At least one response should return pending.
                for handle in &mut handles {
                    if Pin::new(handle).poll(cx).is_pending() {
                        return Poll::Ready(());
                    }
                }

                panic!("did not yield");
            })
            .await;
        });
    }
}

rt_test! {
    fn coop_unconstrained(rt: &gpm::Runtime) {
        rt.block_on(async {
            let mut handles = finished_tasks(1_000).await;

            task::unconstrained(poll_fn(|cx| {
                // All the responses should be ready.
                for handle in &mut handles {
                    assert!(matches!(Pin::new(handle).poll(cx), Poll::Ready(Ok(()))));
                }

                Poll::Ready(())
            }))
            .await;
        });
    }
}

rt_test! {
    fn coop_consume_budget(rt: &gpm::Runtime) {
        rt.block_on(gpm_tests::consume_budget_yields());
    }
}

rt_test! {
    fn test_has_budget_remaining(rt: &gpm::Runtime) {
        rt.block_on(rt.spawn(async {
            // At the beginning, budget should be available.
            assert!(has_budget_remaining());

            // Deplete the budget
            for _ in 0..BUDGET {
                task::consume_budget().await;
            }

            assert!(!has_budget_remaining());
        }))
        .unwrap();
    }
}

rt_test! {
    /// Not in tokio's files: a task that spends its budget yields to its neighbours (a
    /// consume_budget loop on one P lets a second task of that P run), and `unconstrained`
    /// restores the outer budget after each poll.
    fn consume_budget_yields_and_unconstrained_restores(rt: &gpm::Runtime) {
        rt.block_on(rt.spawn(async {
            task::unconstrained(async {
                for _ in 0..(4 * BUDGET) {
                    task::consume_budget().await;
                }
                assert!(has_budget_remaining());
            })
            .await;
            // The task's own budget is still whole.
            for _ in 0..BUDGET {
                assert!(has_budget_remaining());
                task::consume_budget().await;
            }
            assert!(!has_budget_remaining());
            task::consume_budget().await; // yields, then spends from a fresh budget
            assert!(has_budget_remaining());
        }))
        .unwrap();
    }
}

#[test]
fn outside_a_runtime_the_budget_is_unlimited() {
    assert!(has_budget_remaining());
    futures::executor::block_on(async {
        for _ in 0..(4 * BUDGET) {
            task::consume_budget().await;
        }
    });
    assert!(has_budget_remaining());
}

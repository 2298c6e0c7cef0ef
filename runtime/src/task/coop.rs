//! The cooperative budget: how many resource operations a task may complete in one poll.
//!
//! A task that loops over always-ready resources (a join handle of a finished task, later
//! channels, timers and sockets) would otherwise never return `Pending` and hold its P for
//! ever. Each poll by a worker starts with 128 units (tokio's number); each
//! operation that makes progress spends one; with none left, the operation wakes the task
//! and returns `Pending`, which sends the task to the back of its P's queue. `block_on`
//! gives each poll of its future a budget too (tokio's behaviour); elsewhere (other
//! threads, `block_in_place` bodies, blocking closures) the budget is unlimited.
//!
//! The public part is tokio's `tokio::task::coop`: [`consume_budget`] lets a
//! CPU-bound loop take part in the budget, [`has_budget_remaining`] asks, and
//! [`unconstrained`] runs a future without a budget (it may then starve its P: use it
//! only for futures that yield by themselves). `consume_budget` and `unconstrained` are
//! also at `gpm::task::`, as in tokio.

use pin_project_lite::pin_project;
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Units per poll.
pub(crate) const BUDGET: u8 = 128;

thread_local! {
    static REMAINING: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Runs `f` (one task poll) with a fresh budget, restoring the previous one afterwards.
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u8>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = REMAINING.try_with(|r| r.set(self.0));
        }
    }
    let previous = REMAINING.with(|r| r.replace(Some(BUDGET)));
    let _restore = Restore(previous);
    f()
}

/// Runs `f` with an unlimited budget (`block_in_place` bodies, blocking closures,
/// [`Unconstrained`] polls).
pub(crate) fn with_unlimited_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u8>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = REMAINING.try_with(|r| r.set(self.0));
        }
    }
    let previous = REMAINING.with(|r| r.replace(None));
    let _restore = Restore(previous);
    f()
}

/// A unit taken from the budget. Returned to the budget on drop unless the operation
/// reports progress with [`Spent::made_progress`].
#[must_use]
pub(crate) struct Spent {
    refund: bool,
}

impl Spent {
    pub(crate) fn made_progress(mut self) {
        self.refund = false;
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        if self.refund {
            let _ = REMAINING.try_with(|r| {
                if let Some(n) = r.get() {
                    r.set(Some(n.saturating_add(1)));
                }
            });
        }
    }
}

/// Takes one unit, or, with the budget spent, wakes the task and returns `Pending`.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Spent> {
    let remaining = REMAINING.try_with(|r| r.get()).unwrap_or(None);
    match remaining {
        None => Poll::Ready(Spent { refund: false }),
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            let _ = REMAINING.try_with(|r| r.set(Some(n - 1)));
            Poll::Ready(Spent { refund: true })
        }
    }
}

/// Spends one unit of the current task's budget; if none is left, yields first (the task is
/// rescheduled behind the other tasks of its P), like `tokio::task::consume_budget`.
///
/// For loops that do a lot of work without touching any budgeted resource (join handles,
/// timers, sockets): calling this once per iteration makes them yield now and then.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let sum = rt.block_on(rt.spawn(async {
///     let mut sum = 0u64;
///     for i in 0..10_000 {
///         sum += i;
///         gpm::task::consume_budget().await;
///     }
///     sum
/// }));
/// assert_eq!(sum.unwrap(), 49_995_000);
/// ```
pub async fn consume_budget() {
    let mut status = Poll::Pending;
    poll_fn(move |cx| {
        if status.is_ready() {
            return status;
        }
        status = poll_proceed(cx).map(Spent::made_progress);
        status
    })
    .await
}

/// Whether the current task may still spend budget before it is made to yield (always true
/// outside a budgeted poll), like `tokio::task::coop::has_budget_remaining`.
pub fn has_budget_remaining() -> bool {
    REMAINING.try_with(|r| r.get()).unwrap_or(None) != Some(0)
}

pin_project! {
    /// A future polled without a cooperative budget; see [`unconstrained`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct Unconstrained<F> {
        #[pin]
        inner: F,
    }
}

/// Runs `inner` with the cooperative budget turned off for its polls, like
/// `tokio::task::unconstrained`: budgeted operations inside it never force a yield. Such a
/// future can hold its P for as long as its resources stay ready.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// rt.block_on(gpm::task::unconstrained(async {
///     for _ in 0..1_000 {
///         gpm::task::consume_budget().await; // never yields here
///     }
///     assert!(gpm::task::coop::has_budget_remaining());
/// }));
/// ```
pub fn unconstrained<F: Future>(inner: F) -> Unconstrained<F> {
    Unconstrained { inner }
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.project().inner;
        with_unlimited_budget(|| inner.poll(cx))
    }
}

/// Units left in the current poll (None: unlimited). For tests.
#[cfg(test)]
pub(crate) fn remaining() -> Option<u8> {
    REMAINING.with(|r| r.get())
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn budget_runs_out_and_refunds_without_progress() {
        let mut cx = Context::from_waker(Waker::noop());
        with_budget(|| {
            for _ in 0..BUDGET {
                let Poll::Ready(spent) = poll_proceed(&mut cx) else {
                    panic!("budget ran out early")
                };
                spent.made_progress();
            }
            assert!(poll_proceed(&mut cx).is_pending());
        });
        assert_eq!(remaining(), None);
        with_budget(|| {
            let Poll::Ready(spent) = poll_proceed(&mut cx) else {
                panic!("fresh budget empty")
            };
            drop(spent);
            assert_eq!(remaining(), Some(BUDGET));
        });
    }
}

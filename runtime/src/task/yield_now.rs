//! `yield_now`: let other tasks run before continuing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields execution back to the scheduler: the task is rescheduled behind the other
/// runnable tasks of its P (not into `runnext`), as with tokio's `yield_now`.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// rt.block_on(async {
///     gpm::spawn(async { gpm::task::yield_now().await; 7 }).await.unwrap()
/// });
/// ```
pub fn yield_now() -> impl Future<Output = ()> + Send + Sync + Unpin {
    // The future itself, not an `async fn` around it: one state machine fewer per yield.
    YieldNow { yielded: false }
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // A wake during our own poll: the harness reschedules the task behind its P's
        // queue once the poll returns.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

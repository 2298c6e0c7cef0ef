//! `block_on`: drive one future on the calling thread.
//!
//! The thread polls the future only after a wake-up, and otherwise sleeps in
//! `std::thread::park`. The waker sets a flag and unparks the thread; the flag is what the
//! loop trusts, so spurious unparks cost one check and a wake before the sleep is never lost
//! (the park token stays until the next `park`).
//!
//! Each poll of the future gets a fresh cooperative budget, as a task's poll does (tokio
//! does the same): a `block_on` loop over always-ready resources yields now and then
//! instead of spinning for ever inside one poll.

use super::context;
use super::handle::Handle;
use crate::task::coop;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

#[track_caller]
pub(crate) fn block_on<F: Future>(handle: &Handle, future: F) -> F::Output {
    let _no_nesting = context::enter_block_on();
    let _context = context::set_handle(handle.clone());
    let state = Arc::new(ThreadWaker {
        thread: thread::current(),
        woken: AtomicBool::new(true),
    });
    let waker = Waker::from(Arc::clone(&state));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if state.woken.swap(false, Ordering::Acquire) {
            if let Poll::Ready(output) = coop::with_budget(|| future.as_mut().poll(&mut cx)) {
                return output;
            }
            continue;
        }
        thread::park();
    }
}

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
//!
//! For the runtime's paused clock (`time/pausable.rs`), which may jump only while every
//! `block_on` sleeps, the thread counts itself running from the wake that makes it run
//! (counted by the waker, before the unpark) until it parks again, and wakes the driver when
//! it parks last. A wake that lands between the thread's last look at its flag and its
//! announcement that it parks leaves a window of a few instructions in which time may jump
//! before the woken poll; tokio's clock has no such window because its current-thread
//! runtime polls `block_on`'s future and the tasks on one thread.

use super::context;
use super::handle::Handle;
use crate::driver::Driver;
use crate::task::coop;
use crate::time::pausable::PausableClock;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// The thread polls or runs tasks (or is about to).
const RUNNING: u8 = 0;
/// It sleeps (or is about to) until woken.
const PARKED: u8 = 1;
/// `block_on` returned (or unwound); late wakes change nothing.
const DONE: u8 = 2;

/// Whether a `block_on` thread runs, as the runtime's paused clock counts it
/// (`time/pausable.rs`: auto-advance waits for every `block_on` to park). Shared by this
/// module's `block_on` and the current-thread runtime's. Whoever moves it from PARKED to
/// RUNNING (the waker or the thread itself) counts the thread running again, once.
pub(super) struct Activity {
    state: AtomicU8,
    clock: Arc<PausableClock>,
    driver: Arc<Driver>,
}

impl Activity {
    /// A running `block_on` of the runtime that owns `driver` (counted running now).
    pub(super) fn start(driver: &Arc<Driver>) -> Activity {
        let clock = Arc::clone(driver.time.clock());
        clock.block_on_runs();
        Activity {
            state: AtomicU8::new(RUNNING),
            clock,
            driver: Arc::clone(driver),
        }
    }

    /// PARKED -> RUNNING, counted once by whoever wins (the waker, before it unparks).
    pub(super) fn mark_running(&self) {
        let parked =
            self.state
                .compare_exchange(PARKED, RUNNING, Ordering::SeqCst, Ordering::SeqCst);
        if parked.is_ok() {
            self.clock.block_on_runs();
        }
    }

    /// RUNNING -> `to` (PARKED or DONE), waking the driver if this lets a paused clock
    /// auto-advance.
    fn mark_stopped(&self, to: u8) {
        if self.state.swap(to, Ordering::SeqCst) == RUNNING && self.clock.block_on_parks() {
            self.driver.wake();
        }
    }

    /// Sleeps with `sleep` unless `woken` is already set, counted parked meanwhile. A wake
    /// between the caller's last look at `woken` and the announcement finds the state
    /// RUNNING and counts nothing, so `woken` is read once more before sleeping.
    pub(super) fn sleep(&self, woken: &AtomicBool, sleep: impl FnOnce()) {
        self.mark_stopped(PARKED);
        if !woken.load(Ordering::SeqCst) {
            sleep();
        }
        self.mark_running();
    }

    /// Marks the `block_on` done when the guard drops (a return or a panic in a poll).
    pub(super) fn done_on_drop(&self) -> impl Drop + '_ {
        struct Done<'a>(&'a Activity);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.mark_stopped(DONE);
            }
        }
        Done(self)
    }
}

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
    activity: Activity,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::Release) {
            self.activity.mark_running();
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
        activity: Activity::start(&handle.shared.driver),
    });
    let _done = state.activity.done_on_drop();
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
        state.activity.sleep(&state.woken, thread::park);
    }
}

//! The current-thread runtime (`Builder::new_current_thread`, tokio's): one P and no M of
//! its own. The P waits in its hand-off slot; a `block_on` takes it and becomes its M for
//! as long as it runs, so the spawned tasks run on the thread that called `block_on`, and
//! only while some thread is inside `block_on` (as in tokio).
//!
//! # The loop of `block_on` holding the P
//!
//! ```text
//! loop {
//!     if woken { poll the future; if ready { give the P back; return } }
//!     run up to 61 tasks (the M's steps, maintenance turns of the driver among them);
//!     if none was left: if the future is woken (it yielded), turn the driver once without
//!     sleeping; else park the P (in the driver: timers and I/O) until a task or the
//!     future is woken
//! }
//! ```
//!
//! The future's waker sets its flag and leaves a wake-up token with the P's parker (and
//! unparks the thread, for the case below), so a wake is never lost whether the thread is
//! running tasks, parked in the P, or waiting for the P.
//!
//! # Several threads in `block_on`
//!
//! One holds the P; the others poll their own futures and sleep until woken or until the P
//! comes back ([`Shared::release_current_thread_processor`] wakes them), then race to take
//! it, as tokio's threads race for the core. The P goes back to its slot however `block_on`
//! ends (a drop guard: a future that panics does not take the P with it), and counts as idle
//! for stop-the-world while it waits there.
//!
//! `block_in_place` panics on this runtime (as tokio's): there is no other M to hand the P
//! to; use `spawn_blocking`.

use super::block_on::Activity;
use super::context;
use super::handle::Handle;
use super::shared::{Proc, Shared};
use super::worker::{LoopControl, LoopEnd, WorkerContext};
use crate::task::coop;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Tasks a `block_on` runs between two looks at its own future's flag.
const TASKS_PER_CHECK: u32 = 61;

/// The waker of the future `block_on` drives.
struct MainWaker {
    woken: AtomicBool,
    thread: Thread,
    shared: Arc<Shared>,
    /// For the paused clock: whether this thread runs (`rt::block_on`'s accounting).
    activity: Activity,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.activity.mark_running();
            // The thread sleeps either in the P's parker or, without the P, in park().
            self.shared.scheduler.unpark(0);
            self.thread.unpark();
        }
    }
}

/// `block_on` on a current-thread runtime (module docs).
#[track_caller]
pub(crate) fn block_on<F: Future>(handle: &Handle, future: F) -> F::Output {
    let _no_nesting = context::enter_block_on();
    let _context = context::set_handle(handle.clone());
    let shared = &handle.shared;
    let main = Arc::new(MainWaker {
        woken: AtomicBool::new(true),
        thread: thread::current(),
        shared: Arc::clone(shared),
        activity: Activity::start(&shared.driver),
    });
    let _done = main.activity.done_on_drop();
    let waker = Waker::from(Arc::clone(&main));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Some(processor) = shared.take_current_thread_processor(&waker) {
            if let Some(output) = drive(shared, processor, &main, &mut cx, future.as_mut()) {
                return output;
            }
            // The runtime shut down under us: go on without the P.
        }
        if main.woken.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(output) = coop::with_budget(|| future.as_mut().poll(&mut cx)) {
                return output;
            }
            continue;
        }
        main.activity.sleep(&main.woken, thread::park);
    }
}

/// Gives the P back to its slot when the `block_on` holding it ends, returns or unwinds.
struct GiveBack<'a> {
    shared: &'a Shared,
    worker: &'a WorkerContext,
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if let Some(processor) = self.worker.take_processor() {
            self.shared.release_current_thread_processor(processor);
        }
    }
}

/// Runs the future and the tasks with the P in hand (module docs). `None` if the runtime
/// shut down first.
fn drive<F: Future + ?Sized>(
    shared: &Arc<Shared>,
    processor: Box<Proc>,
    main: &MainWaker,
    cx: &mut Context<'_>,
    mut future: Pin<&mut F>,
) -> Option<F::Output> {
    let worker = WorkerContext::new(Arc::clone(shared), processor);
    let _worker = context::enter_worker(&worker);
    let _give_back = GiveBack {
        shared,
        worker: &worker,
    };
    loop {
        if main.woken.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(output) = coop::with_budget(|| future.as_mut().poll(cx)) {
                return Some(output);
            }
        }
        match worker.run(&mut Budget(TASKS_PER_CHECK)) {
            LoopEnd::Budget => continue,
            LoopEnd::Exit => return None,
            LoopEnd::Idle => {}
        }
        if main.woken.load(Ordering::SeqCst) {
            // The future woke itself (it yielded): turn the driver once without sleeping,
            // so what it waits for can happen (tokio's `yield_defers_until_park`).
            worker.turn_driver_and_release_yielded();
        } else {
            let park = || worker.park(|| main.woken.load(Ordering::SeqCst));
            main.activity.sleep(&main.woken, park);
        }
    }
}

/// `block_on`'s control of the M loop: leave after this many more tasks, or when idle.
struct Budget(u32);

impl LoopControl for Budget {
    fn keep_running(&mut self) -> bool {
        self.0 -= 1;
        self.0 > 0
    }

    fn on_idle(&mut self, _: &WorkerContext) -> bool {
        false
    }
}

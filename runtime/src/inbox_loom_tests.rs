//! Loom model of the last-P inbox handshake (`gpm_scheduler::processor`, "Last P"): a task
//! pushed to the inbox of a P that is going to sleep is either seen by that P's re-check or
//! the pusher wakes the P. Run with `scripts/loom.sh` (`--cfg gpm_loom`).
//!
//! The model mirrors the code step by step: the inbox is a counter, the parker a token
//! behind a mutex and condition variable (like `gpm_scheduler::park::Parker`), and the
//! injector path (taken when the pusher already sees the P asleep) wakes the P as the idle
//! protocol's `notify_parked` does for the only sleeper. A lost wake-up shows up as a
//! deadlock (the P parked forever), which loom reports.

use crate::loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::loom::thread;

struct Model {
    inbox: AtomicUsize,
    injector: AtomicUsize,
    asleep: AtomicBool,
    token: Mutex<bool>,
    condvar: Condvar,
}

impl Model {
    fn new() -> Model {
        Model {
            inbox: AtomicUsize::new(0),
            injector: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            token: Mutex::new(false),
            condvar: Condvar::new(),
        }
    }

    fn unpark(&self) {
        *self.token.lock().unwrap() = true;
        self.condvar.notify_one();
    }

    fn park(&self) {
        let mut token = self.token.lock().unwrap();
        while !*token {
            token = self.condvar.wait(token).unwrap();
        }
        *token = false;
    }

    /// `Scheduler::push_to_processor`, falling back to the injector path.
    fn push(&self) {
        if self.asleep.load(Ordering::Relaxed) {
            self.injector.fetch_add(1, Ordering::SeqCst);
            self.unpark();
            return;
        }
        self.inbox.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) {
            self.unpark();
        }
    }

    fn has_work(&self) -> bool {
        self.inbox.load(Ordering::Acquire) > 0 || self.injector.load(Ordering::SeqCst) > 0
    }

    /// The P's loop: find work, else `Processor::park` (announce, fence, re-check, sleep).
    fn run_until_work(&self) {
        loop {
            if self.has_work() {
                return;
            }
            self.asleep.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if self.inbox.load(Ordering::Relaxed) == 0 {
                self.park();
            }
            self.asleep.store(false, Ordering::Relaxed);
        }
    }
}

#[test]
fn inbox_push_races_park() {
    loom::model(|| {
        let model = Arc::new(Model::new());
        let pusher = {
            let model = Arc::clone(&model);
            thread::spawn(move || model.push())
        };
        model.run_until_work();
        pusher.join().unwrap();
        assert!(model.has_work());
    });
}

//! Loom models of the last-P inbox protocol (`gpm_scheduler::processor`, "Last P"). Run
//! with `scripts/loom.sh` (`--cfg gpm_loom`).
//!
//! * `inbox_push_races_park`: a task pushed to the inbox of a P that is going to sleep is
//!   either seen by that P's re-check or the pusher wakes the P.
//! * `inbox_push_to_a_busy_p_wakes_an_idle_p`: a task pushed to the inbox of a P that never
//!   looks at it (stuck in a long poll) is found by another P that is going to sleep: the
//!   pusher runs the idle protocol's `notify_parked` after every inbox push, and the last
//!   searcher's re-check before sleeping covers the inboxes. With the former rule (wake an
//!   idle P only when the inbox already held a task) loom reports the deadlock.
//!
//! The models mirror the code step by step: an inbox is a counter, a parker a token behind
//! a mutex and condition variable (like `gpm_scheduler::park::Parker`), the idle state a
//! searching count plus the sleeper list behind its mutex (`gpm_scheduler::idle`). A lost
//! wake-up shows up as a deadlock (a P parked forever), which loom reports.

use crate::loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::loom::thread;

/// A P's parker: a wake-up token behind a mutex and a condition variable.
struct Parker {
    token: Mutex<bool>,
    condvar: Condvar,
}

impl Parker {
    fn new() -> Parker {
        Parker {
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
}

struct Model {
    inbox: AtomicUsize,
    injector: AtomicUsize,
    asleep: AtomicBool,
    parker: Parker,
}

impl Model {
    fn new() -> Model {
        Model {
            inbox: AtomicUsize::new(0),
            injector: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            parker: Parker::new(),
        }
    }

    /// `Scheduler::push_to_processor`, falling back to the injector path. (The
    /// `notify_parked` after a push to an awake P is left out: with one P it can only add
    /// wake-ups; the second model checks it.)
    fn push(&self) {
        if self.asleep.load(Ordering::Relaxed) {
            self.injector.fetch_add(1, Ordering::SeqCst);
            self.parker.unpark();
            return;
        }
        self.inbox.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) {
            self.parker.unpark();
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
                self.parker.park();
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

/// Two Ps: P0 is inside a long poll (awake, never looks at its inbox); P1 searched, found
/// nothing and goes to sleep. A foreign thread pushes a task to P0's inbox.
struct BusyOwner {
    /// P0's inbox.
    inbox: AtomicUsize,
    /// P0's `asleep` flag: P0 is in a poll, so it stays false.
    asleep: AtomicBool,
    /// The idle state's searching count (`Idle::state`, low bits).
    searching: AtomicUsize,
    /// Whether P1 is on the sleeper list (`Idle::sleepers`).
    listed: Mutex<bool>,
    /// P1's parker.
    parker: Parker,
}

impl BusyOwner {
    fn new() -> BusyOwner {
        BusyOwner {
            inbox: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            // P1 starts as a searcher that found nothing.
            searching: AtomicUsize::new(1),
            listed: Mutex::new(false),
            parker: Parker::new(),
        }
    }

    /// `Scheduler::push_to_processor(0, task)` with P0 awake: push, fence, `asleep`, then
    /// `notify_parked`.
    fn push(&self) {
        assert!(!self.asleep.load(Ordering::Relaxed));
        self.inbox.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        if !self.asleep.load(Ordering::Relaxed) {
            self.notify_parked();
        }
    }

    /// `Scheduler::notify_parked`: fence, then `Idle::worker_to_notify` (checks the
    /// searching count before and under the sleeper lock).
    fn notify_parked(&self) {
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::SeqCst) != 0 {
            return;
        }
        let mut listed = self.listed.lock().unwrap();
        if self.searching.load(Ordering::SeqCst) != 0 || !*listed {
            return;
        }
        *listed = false;
        self.searching.fetch_add(1, Ordering::SeqCst);
        drop(listed);
        self.parker.unpark();
    }

    /// P1's steal: a victim's inbox.
    fn steal(&self) -> bool {
        self.inbox.load(Ordering::Acquire) > 0
    }

    /// P1's loop: steal, else `Processor::park_announced` (announce on the sleeper list,
    /// the last searcher re-checks the queues, sleep until taken off the list).
    fn run_p1_until_work(&self) {
        loop {
            if self.steal() {
                return;
            }
            let was_last_searcher = {
                let mut listed = self.listed.lock().unwrap();
                *listed = true;
                self.searching.fetch_sub(1, Ordering::SeqCst) == 1
            };
            // `Scheduler::recheck_after_announcing_sleep`.
            if was_last_searcher {
                fence(Ordering::SeqCst);
                if self.inbox.load(Ordering::SeqCst) > 0 {
                    self.notify_parked();
                }
            }
            loop {
                self.parker.park();
                if !*self.listed.lock().unwrap() {
                    break;
                }
            }
        }
    }
}

#[test]
fn inbox_push_to_a_busy_p_wakes_an_idle_p() {
    loom::model(|| {
        let model = Arc::new(BusyOwner::new());
        let pusher = {
            let model = Arc::clone(&model);
            thread::spawn(move || model.push())
        };
        model.run_p1_until_work();
        pusher.join().unwrap();
        assert!(model.steal());
    });
}

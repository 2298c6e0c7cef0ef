//! Loom models of the `LocalSet` wake protocol (run with `RUSTFLAGS="--cfg gpm_loom"`, see
//! `scripts/loom.sh`).
//!
//! The set's thread is the model's main thread; another thread wakes or aborts a local task
//! through its waker or abort handle, racing a poll or the drop of the set. Each model
//! checks what the module documentation promises: the wake is never lost (a poll that
//! missed it was woken), the future is dropped exactly once and on the set's thread, and
//! nothing leaks (loom reports a leaked `Arc`, which a stranded notification would be).

use super::LocalSet;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

/// The driver's waker: a flag the model reads after joining the other thread.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn driver() -> (std::sync::Arc<Flag>, Waker) {
    let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(std::sync::Arc::clone(&flag));
    (flag, waker)
}

fn poll_set(set: &mut LocalSet, waker: &Waker) -> Poll<()> {
    Pin::new(set).poll(&mut Context::from_waker(waker))
}

/// Records how often and on which thread the future was dropped.
struct DropRecord {
    count: Arc<AtomicUsize>,
    thread: Arc<Mutex<Option<thread::ThreadId>>>,
}

impl Drop for DropRecord {
    fn drop(&mut self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        *self.thread.lock().unwrap() = Some(thread::current().id());
    }
}

/// Pending (publishing its waker) until polled after a wake; then ready.
struct WaitForWake {
    polls: usize,
    waker_slot: Arc<Mutex<Option<Waker>>>,
    _record: DropRecord,
}

impl Future for WaitForWake {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls += 1;
        if self.polls == 1 {
            *self.waker_slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

struct Setup {
    set: LocalSet,
    join: crate::task::JoinHandle<()>,
    waker: Waker,
    drops: Arc<AtomicUsize>,
    dropped_on: Arc<Mutex<Option<thread::ThreadId>>>,
}

/// A set with one task that has been polled once and waits for a wake.
fn setup(driver: &Waker) -> Setup {
    let mut set = LocalSet::new();
    let waker_slot = Arc::new(Mutex::new(None));
    let drops = Arc::new(AtomicUsize::new(0));
    let dropped_on = Arc::new(Mutex::new(None));
    let join = set.spawn_local(WaitForWake {
        polls: 0,
        waker_slot: Arc::clone(&waker_slot),
        _record: DropRecord {
            count: Arc::clone(&drops),
            thread: Arc::clone(&dropped_on),
        },
    });
    assert!(poll_set(&mut set, driver).is_pending());
    let waker = waker_slot.lock().unwrap().take().expect("polled once");
    Setup {
        set,
        join,
        waker,
        drops,
        dropped_on,
    }
}

fn join_output(join: &mut crate::task::JoinHandle<()>) -> Result<(), crate::JoinError> {
    let (_, waker) = driver();
    match Pin::new(join).poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the task should be complete"),
    }
}

/// A wake from another thread racing a poll of the set: either that poll ran the task, or
/// the wake woke the set's driver (the wake is never lost), and the next poll finishes.
#[test]
fn wake_from_another_thread_is_not_lost() {
    loom::model(|| {
        let (flag, driver_waker) = driver();
        let Setup {
            mut set,
            mut join,
            waker,
            drops,
            dropped_on,
        } = setup(&driver_waker);
        let owner = thread::current().id();
        let waking = thread::spawn(move || waker.wake());
        let raced = poll_set(&mut set, &driver_waker);
        waking.join().unwrap();
        if raced.is_pending() {
            assert!(flag.0.load(Ordering::SeqCst), "the wake was lost");
            assert!(poll_set(&mut set, &driver_waker).is_ready());
        }
        assert!(join_output(&mut join).is_ok());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(*dropped_on.lock().unwrap(), Some(owner));
    });
}

/// A wake from another thread racing the drop of the set: the wake is a no-op or its
/// notification is dropped with the set; the future is dropped once, on the set's thread;
/// the join handle sees a cancellation; no notification (hence no `Arc`) leaks.
#[test]
fn wake_racing_the_drop_of_the_set() {
    loom::model(|| {
        let (_flag, driver_waker) = driver();
        let Setup {
            set,
            mut join,
            waker,
            drops,
            dropped_on,
        } = setup(&driver_waker);
        let owner = thread::current().id();
        let waking = thread::spawn(move || waker.wake());
        drop(set);
        waking.join().unwrap();
        assert!(join_output(&mut join).unwrap_err().is_cancelled());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(*dropped_on.lock().unwrap(), Some(owner));
    });
}

/// An abort from another thread racing a poll of the set: the cancellation runs on the
/// set's thread, once, and the set completes.
#[test]
fn abort_from_another_thread_cancels_on_the_set_thread() {
    loom::model(|| {
        let (flag, driver_waker) = driver();
        let Setup {
            mut set,
            mut join,
            waker,
            drops,
            dropped_on,
        } = setup(&driver_waker);
        drop(waker);
        let owner = thread::current().id();
        let abort = join.abort_handle();
        let aborting = thread::spawn(move || abort.abort());
        let raced = poll_set(&mut set, &driver_waker);
        aborting.join().unwrap();
        if raced.is_pending() {
            assert!(flag.0.load(Ordering::SeqCst), "the abort's wake was lost");
            assert!(poll_set(&mut set, &driver_waker).is_ready());
        }
        assert!(join_output(&mut join).unwrap_err().is_cancelled());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(*dropped_on.lock().unwrap(), Some(owner));
    });
}

/// Pending for its first two polls (publishing its waker each time), ready on the third.
struct ThreePolls {
    polls: usize,
    waker_slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for ThreePolls {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls += 1;
        if self.polls < 3 {
            *self.waker_slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// The registered driver waker was taken by an earlier wake, and a wake from another thread
/// races the next poll: whatever that poll leaves queued, the driver was woken for it.
/// (Registering the waker after the tick instead of before fails here.)
#[test]
fn queued_after_a_poll_means_the_driver_was_woken() {
    loom::model(|| {
        let (flag, driver_waker) = driver();
        let mut set = LocalSet::new();
        let waker_slot = Arc::new(Mutex::new(None));
        let mut join = set.spawn_local(ThreePolls {
            polls: 0,
            waker_slot: Arc::clone(&waker_slot),
        });
        assert!(poll_set(&mut set, &driver_waker).is_pending());
        let waker = waker_slot.lock().unwrap().take().expect("polled once");
        // Takes the registered driver waker.
        waker.wake_by_ref();
        assert!(flag.0.swap(false, Ordering::SeqCst));
        let waking = thread::spawn(move || waker.wake());
        let raced = poll_set(&mut set, &driver_waker);
        waking.join().unwrap();
        let queued = set.shared.lock().tasks.len();
        if raced.is_pending() && queued > 0 {
            assert!(
                flag.0.load(Ordering::SeqCst),
                "a queued notification was not signalled"
            );
        }
        if queued > 0 {
            assert!(poll_set(&mut set, &driver_waker).is_ready());
            assert!(join_output(&mut join).is_ok());
        }
    });
}

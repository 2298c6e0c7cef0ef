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

/// How often, and on which thread, the task's future was dropped.
struct Drops {
    count: Arc<AtomicUsize>,
    thread: Arc<Mutex<Option<thread::ThreadId>>>,
    /// The set's thread.
    owner: thread::ThreadId,
}

impl Drops {
    /// The future was dropped exactly once, on the set's thread.
    fn assert_once_on_the_set_thread(&self) {
        assert_eq!(self.count.load(Ordering::SeqCst), 1);
        assert_eq!(*self.thread.lock().unwrap(), Some(self.owner));
    }
}

struct Setup {
    /// The set's driver: its flag and waker.
    driver: (std::sync::Arc<Flag>, Waker),
    set: LocalSet,
    join: crate::task::JoinHandle<()>,
    waker: Waker,
    drops: Drops,
}

/// A set with one task that has been polled once and waits for a wake.
fn setup() -> Setup {
    let driver = driver();
    let mut set = LocalSet::new();
    let waker_slot = Arc::new(Mutex::new(None));
    let drops = Drops {
        count: Arc::new(AtomicUsize::new(0)),
        thread: Arc::new(Mutex::new(None)),
        owner: thread::current().id(),
    };
    let join = set.spawn_local(WaitForWake {
        polls: 0,
        waker_slot: Arc::clone(&waker_slot),
        _record: DropRecord {
            count: Arc::clone(&drops.count),
            thread: Arc::clone(&drops.thread),
        },
    });
    assert!(poll_set(&mut set, &driver.1).is_pending());
    let waker = waker_slot.lock().unwrap().take().expect("polled once");
    Setup {
        driver,
        set,
        join,
        waker,
        drops,
    }
}

/// Runs `other` on another thread while the set is polled once: either that poll ran the
/// task, or `other`'s wake woke the set's driver (`lost` otherwise) and the next poll
/// finishes the set.
fn race_a_poll(
    set: &mut LocalSet,
    (flag, driver_waker): &(std::sync::Arc<Flag>, Waker),
    other: impl FnOnce() + Send + 'static,
    lost: &str,
) {
    let racing = thread::spawn(other);
    let raced = poll_set(set, driver_waker);
    racing.join().unwrap();
    if raced.is_pending() {
        assert!(flag.0.load(Ordering::SeqCst), "{lost}");
        assert!(poll_set(set, driver_waker).is_ready());
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
        let mut s = setup();
        let waker = s.waker;
        race_a_poll(
            &mut s.set,
            &s.driver,
            move || waker.wake(),
            "the wake was lost",
        );
        assert!(join_output(&mut s.join).is_ok());
        s.drops.assert_once_on_the_set_thread();
    });
}

/// A wake from another thread racing the drop of the set: the wake is a no-op or its
/// notification is dropped with the set; the future is dropped once, on the set's thread;
/// the join handle sees a cancellation; no notification (hence no `Arc`) leaks.
#[test]
fn wake_racing_the_drop_of_the_set() {
    loom::model(|| {
        let mut s = setup();
        let waker = s.waker;
        let waking = thread::spawn(move || waker.wake());
        drop(s.set);
        waking.join().unwrap();
        assert!(join_output(&mut s.join).unwrap_err().is_cancelled());
        s.drops.assert_once_on_the_set_thread();
    });
}

/// An abort from another thread racing a poll of the set: the cancellation runs on the
/// set's thread, once, and the set completes.
#[test]
fn abort_from_another_thread_cancels_on_the_set_thread() {
    loom::model(|| {
        let mut s = setup();
        drop(s.waker);
        let abort = s.join.abort_handle();
        let lost = "the abort's wake was lost";
        race_a_poll(&mut s.set, &s.driver, move || abort.abort(), lost);
        assert!(join_output(&mut s.join).unwrap_err().is_cancelled());
        s.drops.assert_once_on_the_set_thread();
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

//! One socket's readiness word and waiting tasks: the protocol of `super::io` (read its
//! module docs), in its own file so that loom can check it (`scripts/loom.sh`).
//!
//! # Who is woken
//!
//! Two kinds of waiters, per direction (read, write):
//!
//! * **Async-fn operations** (`accept`, `read`, `recv_from`, `send_to`, `connect`,
//!   `readable`, ...) each own a [`Waiter`]: an entry in the direction's waiter list (a
//!   `Slab<Option<Waker>>` under the socket's mutex). The entry is inserted by the first
//!   `Pending`, updated in place by later polls, and removed by the waiter's `Drop`, so a
//!   cancelled operation leaves nothing behind and the list holds at most one entry per live
//!   operation. Readiness wakes *every* entry of the direction (the waker is taken, the entry
//!   stays, `None`, until its owner polls again or goes away), so any number of tasks may wait
//!   on one socket: 50 tasks accepting on one `Arc<TcpListener>` are all served. Those that
//!   lose the race for the data get `WouldBlock` and wait again (step 3 of the protocol keeps
//!   any newer event).
//! * **Poll-based paths** (`AsyncRead`/`AsyncWrite` on `TcpStream`, `poll_accept`,
//!   `poll_recv_from`, `poll_send_to`) have no future to own a registration, so they share
//!   one waker slot per direction: the last task to poll is the one woken, as documented by
//!   tokio for its `poll_read_ready`. Two tasks polling the same direction of one socket
//!   through these paths is a misuse (one of them is not woken); use the async-fn operations
//!   for that.
//!
//! A readiness event wakes the waiters of the directions it concerns; `SHUTDOWN` and
//! `FAILED` (the reactor can no longer poll, see `super::io`) wake everyone.
//!
//! Invariant (checked by the loom models below): a waiter that is `Pending` is either in its
//! direction's list with its current waker, or a readiness event that concerns it has
//! arrived since it looked and its re-check sees it; and a dropped waiter's entry is gone.

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};
use slab::Slab;
use std::io;
use std::task::{Context, Poll, Waker};

pub(crate) const READABLE: usize = 1;
pub(crate) const WRITABLE: usize = 1 << 1;
pub(crate) const READ_CLOSED: usize = 1 << 2;
pub(crate) const WRITE_CLOSED: usize = 1 << 3;
pub(crate) const ERROR: usize = 1 << 4;
pub(crate) const SHUTDOWN: usize = 1 << 5;
/// The reactor can no longer poll (its `epoll_wait` failed): every wait fails.
pub(crate) const FAILED: usize = 1 << 6;
const READINESS_MASK: usize = (1 << 16) - 1;
const TICK_ONE: usize = 1 << 16;
/// An empty waiter list with more slots than this gives its memory back.
const SHRINK_ABOVE: usize = 32;

/// Which way an operation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }

    /// Whether an event with `bits` concerns the waiters of this direction.
    fn woken_by(self, bits: usize) -> bool {
        bits & (self.mask() | SHUTDOWN | FAILED) != 0
    }
}

/// A readiness observed by step 1, to clear in step 3.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyEvent {
    tick: usize,
    ready: usize,
}

impl ReadyEvent {
    /// The readiness bits seen (`READABLE`, `READ_CLOSED`, `ERROR`, ... of one direction).
    pub(crate) fn bits(self) -> usize {
        self.ready
    }
}

/// Per-socket readiness and waiting tasks.
#[derive(Debug, Default)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    /// The poll-based paths' shared slots, one per direction (module docs).
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The async-fn operations' entries, one per live [`Waiter`]; `None` once woken.
    readers: Slab<Option<Waker>>,
    writers: Slab<Option<Waker>>,
}

impl Waiters {
    fn slot(&mut self, direction: Direction) -> &mut Option<Waker> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }

    fn list(&mut self, direction: Direction) -> &mut Slab<Option<Waker>> {
        match direction {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }

    /// Takes the shared slot's waker and every listed one of `direction`.
    fn take_all(&mut self, direction: Direction, wake: &mut Vec<Waker>) {
        wake.extend(self.slot(direction).take());
        let listed = self.list(direction).iter_mut();
        wake.extend(listed.filter_map(|(_, waker)| waker.take()));
    }
}

/// Stores `waker` in `slot` unless the one there would wake the same task.
fn store_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(stored) if stored.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl ScheduledIo {
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reactor side: adds `bits`, bumps the tick, hands the waiters they concern to `wake`.
    pub(crate) fn set_readiness(&self, bits: usize, wake: &mut Vec<Waker>) {
        let _ = self
            .readiness
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                let tick = (current & !READINESS_MASK).wrapping_add(TICK_ONE);
                Some(tick | (current & READINESS_MASK) | bits)
            });
        let mut waiters = self.lock();
        for direction in [Direction::Read, Direction::Write] {
            if direction.woken_by(bits) {
                waiters.take_all(direction, wake);
            }
        }
    }

    /// The readiness of `direction` now, without waiting: `None` if not ready, an error
    /// once the runtime shut down or the reactor failed.
    pub(crate) fn ready_event(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
        let current = self.readiness.load(Ordering::SeqCst);
        if current & SHUTDOWN != 0 {
            return Some(Err(shutdown_error()));
        }
        if current & FAILED != 0 {
            return Some(Err(failed_error()));
        }
        let ready = current & direction.mask();
        (ready != 0).then_some(Ok(ReadyEvent {
            tick: current & !READINESS_MASK,
            ready,
        }))
    }

    /// Step 1 for the poll-based paths: ready in `direction`, or the waker is stored in the
    /// direction's shared slot and `Pending` returned.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        if let Some(result) = self.ready_event(direction) {
            return Poll::Ready(result);
        }
        store_waker(self.lock().slot(direction), cx.waker());
        self.recheck(direction)
    }

    /// The re-read after storing a waker: an event that landed before the store is seen
    /// here, one that lands after finds the waker.
    fn recheck(&self, direction: Direction) -> Poll<io::Result<ReadyEvent>> {
        match self.ready_event(direction) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }

    /// Step 3: the syscall said `WouldBlock`; forget the readiness unless an event came since.
    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        // Closed and error states are final: only the plain readable/writable bits clear.
        let clear = event.ready & (READABLE | WRITABLE);
        let _ = self
            .readiness
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                (current & !READINESS_MASK == event.tick).then_some(current & !clear)
            });
    }

    /// Entries in `direction`'s waiter list (live async-fn operations that waited).
    #[cfg(any(test, gpm_loom))]
    pub(crate) fn listed_waiters(&self, direction: Direction) -> usize {
        self.lock().list(direction).len()
    }
}

/// An async-fn operation's registration in one direction of a socket (module docs): step 1
/// of the protocol with its own entry in the waiter list, removed on drop.
#[derive(Debug)]
pub(crate) struct Waiter<'a> {
    io: &'a ScheduledIo,
    direction: Direction,
    key: Option<usize>,
}

impl<'a> Waiter<'a> {
    /// Not registered yet: the first `Pending` inserts the entry.
    pub(crate) fn new(io: &'a ScheduledIo, direction: Direction) -> Waiter<'a> {
        Waiter {
            io,
            direction,
            key: None,
        }
    }

    /// The direction this waiter waits in.
    pub(crate) fn direction(&self) -> Direction {
        self.direction
    }

    /// Step 1: ready in this direction, or this waiter's entry holds the task's waker and
    /// `Pending` is returned.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        if let Some(result) = self.io.ready_event(self.direction) {
            return Poll::Ready(result);
        }
        {
            let mut waiters = self.io.lock();
            let list = waiters.list(self.direction);
            match self.key {
                Some(key) => store_waker(&mut list[key], cx.waker()),
                None => self.key = Some(list.insert(Some(cx.waker().clone()))),
            }
        }
        self.io.recheck(self.direction)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else {
            return;
        };
        let mut waiters = self.io.lock();
        let list = waiters.list(self.direction);
        list.remove(key);
        if list.is_empty() && list.capacity() > SHRINK_ABOVE {
            *list = Slab::new();
        }
    }
}

#[cfg(not(gpm_loom))]
use super::io::{failed_error, shutdown_error};

#[cfg(gpm_loom)]
fn shutdown_error() -> io::Error {
    io::Error::other("shut down")
}

#[cfg(gpm_loom)]
fn failed_error() -> io::Error {
    io::Error::other("failed")
}

#[cfg(all(test, gpm_loom))]
mod loom_tests {
    use super::*;
    use crate::loom::sync::atomic::AtomicBool;
    use crate::loom::thread;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A read saw readiness, the syscall said `WouldBlock`, and meanwhile the reactor
    /// delivers a new edge. Whatever the interleaving, the new edge is not lost: the
    /// retry's wait is either ready at once, or its waker is woken and then it is ready.
    #[test]
    fn new_edge_during_would_block_is_not_lost() {
        loom::model(|| {
            let io = Arc::new(ScheduledIo::default());
            io.set_readiness(READABLE, &mut Vec::new());
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let waker = Waker::from(Arc::clone(&flag));
            let mut cx = Context::from_waker(&waker);
            let reactor = {
                let io = Arc::clone(&io);
                thread::spawn(move || {
                    let mut wake = Vec::new();
                    io.set_readiness(READABLE, &mut wake);
                    wake.into_iter().for_each(Waker::wake);
                })
            };
            let Poll::Ready(Ok(event)) = io.poll_ready(&mut cx, Direction::Read) else {
                panic!("readiness set before the model was lost");
            };
            io.clear_readiness(event);
            let retry = io.poll_ready(&mut cx, Direction::Read);
            reactor.join().unwrap();
            if retry.is_pending() {
                assert!(flag.0.load(Ordering::SeqCst), "pending wait never woken");
            }
            assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
        });
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        (flag, waker)
    }

    fn reactor_event(io: &Arc<ScheduledIo>) -> thread::JoinHandle<()> {
        let io = Arc::clone(io);
        thread::spawn(move || {
            let mut wake = Vec::new();
            io.set_readiness(READABLE, &mut wake);
            wake.into_iter().for_each(Waker::wake);
        })
    }

    /// Two tasks wait to read one socket while one readiness event arrives: each wait is
    /// either ready at once or woken, whatever the interleaving (a single waker slot per
    /// direction lost the first waiter).
    #[test]
    fn one_event_wakes_both_waiters() {
        loom::model(|| {
            let io = Arc::new(ScheduledIo::default());
            let reactor = reactor_event(&io);
            let (flags, wakers): (Vec<_>, Vec<_>) = (0..2).map(|_| flag()).unzip();
            let mut waiters: Vec<_> = (0..2).map(|_| Waiter::new(&io, Direction::Read)).collect();
            let first: Vec<bool> = waiters
                .iter_mut()
                .zip(&wakers)
                .map(|(waiter, waker)| {
                    let ready = waiter.poll_ready(&mut Context::from_waker(waker));
                    ready.is_ready()
                })
                .collect();
            reactor.join().unwrap();
            for (ready, flag) in first.iter().zip(&flags) {
                assert!(
                    *ready || flag.0.load(Ordering::SeqCst),
                    "a waiter was never woken"
                );
            }
            drop(waiters);
            assert_eq!(io.listed_waiters(Direction::Read), 0);
        });
    }

    /// A waiting task is cancelled (its waiter dropped) while a readiness event arrives:
    /// whatever the interleaving, its entry is gone and no clone of its waker survives.
    #[test]
    fn waiter_dropped_during_an_event_leaks_nothing() {
        loom::model(|| {
            let io = Arc::new(ScheduledIo::default());
            let (flag, waker) = flag();
            let mut waiter = Waiter::new(&io, Direction::Read);
            assert!(waiter
                .poll_ready(&mut Context::from_waker(&waker))
                .is_pending());
            drop(waker);
            let reactor = reactor_event(&io);
            drop(waiter);
            reactor.join().unwrap();
            assert_eq!(io.listed_waiters(Direction::Read), 0);
            assert_eq!(Arc::strong_count(&flag), 1, "a clone of the waker leaked");
        });
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    /// Waiters of both kinds and both directions: an event wakes those of its direction
    /// only; a re-poll updates the entry in place; drops leave the lists empty and small.
    #[test]
    fn events_wake_their_direction_and_drops_empty_the_lists() {
        let io = ScheduledIo::default();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut readers: Vec<_> = (0..100)
            .map(|_| Waiter::new(&io, Direction::Read))
            .collect();
        for reader in &mut readers {
            assert!(reader.poll_ready(&mut cx).is_pending());
            assert!(reader.poll_ready(&mut cx).is_pending());
        }
        let mut writer = Waiter::new(&io, Direction::Write);
        assert!(writer.poll_ready(&mut cx).is_pending());
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        assert_eq!(io.listed_waiters(Direction::Read), 100);
        let mut wake = Vec::new();
        io.set_readiness(READABLE, &mut wake);
        assert_eq!(wake.len(), 101, "every reader and the shared read slot");
        assert!(readers.iter_mut().all(|r| r.poll_ready(&mut cx).is_ready()));
        drop(readers);
        assert_eq!(io.listed_waiters(Direction::Read), 0);
        assert!(io.lock().readers.capacity() <= SHRINK_ABOVE);
        let mut wake = Vec::new();
        io.set_readiness(SHUTDOWN, &mut wake);
        assert_eq!(wake.len(), 1, "the writer");
        assert!(writer.poll_ready(&mut cx).is_ready());
        drop(writer);
        assert_eq!(io.listed_waiters(Direction::Write), 0);
    }
}

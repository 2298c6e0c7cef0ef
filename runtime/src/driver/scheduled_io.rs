//! One socket's readiness word and waiting tasks: the protocol of `super::io` (read its
//! module docs), in its own file so that loom can check it (`scripts/loom.sh`).

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};
use std::io;
use std::task::{Context, Poll, Waker};

pub(crate) const READABLE: usize = 1;
pub(crate) const WRITABLE: usize = 1 << 1;
pub(crate) const READ_CLOSED: usize = 1 << 2;
pub(crate) const WRITE_CLOSED: usize = 1 << 3;
pub(crate) const ERROR: usize = 1 << 4;
pub(crate) const SHUTDOWN: usize = 1 << 5;
const READINESS_MASK: usize = (1 << 16) - 1;
const TICK_ONE: usize = 1 << 16;

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
}

/// A readiness observed by step 1, to clear in step 3.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyEvent {
    tick: usize,
    ready: usize,
}

/// Per-socket readiness and waiting tasks.
#[derive(Debug, Default)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
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
        let (reader, writer) = {
            let mut waiters = self.lock();
            let reader = if bits & Direction::Read.mask() != 0 || bits & SHUTDOWN != 0 {
                waiters.reader.take()
            } else {
                None
            };
            let writer = if bits & Direction::Write.mask() != 0 || bits & SHUTDOWN != 0 {
                waiters.writer.take()
            } else {
                None
            };
            (reader, writer)
        };
        wake.extend(reader.into_iter().chain(writer));
    }

    fn ready_event(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
        let current = self.readiness.load(Ordering::SeqCst);
        if current & SHUTDOWN != 0 {
            return Some(Err(shutdown_error()));
        }
        let ready = current & direction.mask();
        (ready != 0).then_some(Ok(ReadyEvent {
            tick: current & !READINESS_MASK,
            ready,
        }))
    }

    /// Step 1: ready in `direction`, or the waker is stored and `Pending` returned.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        if let Some(result) = self.ready_event(direction) {
            return Poll::Ready(result);
        }
        let mut waiters = self.lock();
        let slot = match direction {
            Direction::Read => &mut waiters.reader,
            Direction::Write => &mut waiters.writer,
        };
        match slot {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
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
}

#[cfg(not(gpm_loom))]
use super::io::shutdown_error;

#[cfg(gpm_loom)]
fn shutdown_error() -> io::Error {
    io::Error::other("shut down")
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
}

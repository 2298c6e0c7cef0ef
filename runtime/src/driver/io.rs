//! The I/O reactor: a `mio::Poll`, one [`ScheduledIo`] per registered socket, and the
//! readiness protocol between the reactor and the tasks that wait on sockets.
//!
//! # Readiness protocol
//!
//! mio is edge-triggered: the reactor hears of readiness once per change. Each socket's
//! [`ScheduledIo`] keeps one atomic word: readiness bits plus a 16-bit *tick* that counts
//! events. An operation:
//!
//! 1. waits until the direction's bits are set ([`ScheduledIo::poll_ready`]), which stores
//!    the task's waker under a mutex and then re-reads the word, so an event that lands
//!    between the first read and storing the waker is seen by the re-read, and one that lands
//!    after finds the waker;
//! 2. tries the syscall;
//! 3. on `WouldBlock` clears the bits it waited for, *only if the tick is unchanged*
//!    ([`ScheduledIo::clear_readiness`]): if an event arrived since step 1, clearing would
//!    lose it (edge-triggered: no second notice), so the bits stay and the loop retries.
//!
//! # Shutdown
//!
//! [`Reactor::shutdown`] marks every socket `SHUTDOWN` and wakes its waiters; from then on
//! every readiness wait, and every new registration, fails with an error saying the runtime
//! is gone. Sockets owned by tasks are closed when shutdown drops those tasks' futures.
//!
//! Tokens are slab keys. A key is reused after its socket deregisters; a late event for the
//! old socket then marks the new one ready once, which costs one `WouldBlock` and is
//! harmless (step 3).

use mio::event::Source;
use mio::{Events, Interest, Poll as MioPoll, Registry, Token, Waker as MioWaker};
use slab::Slab;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const WAKER_TOKEN: Token = Token(usize::MAX);
const EVENTS_CAPACITY: usize = 1024;

const READABLE: usize = 1;
const WRITABLE: usize = 1 << 1;
const READ_CLOSED: usize = 1 << 2;
const WRITE_CLOSED: usize = 1 << 3;
const ERROR: usize = 1 << 4;
const SHUTDOWN: usize = 1 << 5;
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
    fn set_readiness(&self, bits: usize, wake: &mut Vec<Waker>) {
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

fn shutdown_error() -> io::Error {
    io::Error::other("the gpm runtime owning this socket has shut down")
}

/// The reactor shared by the runtime's threads.
pub(crate) struct Reactor {
    poller: Mutex<Poller>,
    registry: Registry,
    waker: MioWaker,
    ios: Mutex<Slab<Arc<ScheduledIo>>>,
    shutdown: AtomicBool,
}

struct Poller {
    poll: MioPoll,
    events: Events,
}

/// Held by the one thread that polls the reactor.
pub(crate) struct PollerGuard<'a>(MutexGuard<'a, Poller>);

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = MioPoll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = MioWaker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(Reactor {
            poller: Mutex::new(Poller {
                poll,
                events: Events::with_capacity(EVENTS_CAPACITY),
            }),
            registry,
            waker,
            ios: Mutex::new(Slab::new()),
            shutdown: AtomicBool::new(false),
        })
    }

    fn ios(&self) -> MutexGuard<'_, Slab<Arc<ScheduledIo>>> {
        self.ios.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the thread blocked in [`Reactor::try_poll`] (sticky: an eventfd write).
    pub(crate) fn wake(&self) {
        if let Err(error) = self.waker.wake() {
            // Only fails if the eventfd is gone or full, both of which mean it is already
            // signalled or the reactor is being torn down.
            debug_assert!(false, "gpm: could not wake the I/O driver: {error}");
        }
    }

    /// The right to poll, unless another thread holds it.
    pub(crate) fn try_lock_poller(&self) -> Option<PollerGuard<'_>> {
        match self.poller.try_lock() {
            Ok(guard) => Some(PollerGuard(guard)),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                Some(PollerGuard(poisoned.into_inner()))
            }
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Waits up to `timeout` for events and records them; the wakers of the tasks they
    /// concern go to `wake`.
    pub(crate) fn poll(
        &self,
        poller: &mut PollerGuard<'_>,
        timeout: Option<Duration>,
        wake: &mut Vec<Waker>,
    ) {
        let Poller { poll, events } = &mut *poller.0;
        match poll.poll(events, timeout) {
            Ok(()) => self.dispatch(events, wake),
            // A signal: the caller's loop polls again.
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => panic!("gpm: the I/O driver's epoll_wait failed: {error}"),
        }
    }

    fn dispatch(&self, events: &Events, wake: &mut Vec<Waker>) {
        let ready: Vec<(Arc<ScheduledIo>, usize)> = {
            let ios = self.ios();
            events
                .iter()
                .filter(|event| event.token() != WAKER_TOKEN)
                .filter_map(|event| {
                    let io = ios.get(event.token().0)?;
                    Some((Arc::clone(io), readiness_bits(event)))
                })
                .collect()
        };
        for (io, bits) in ready {
            io.set_readiness(bits, wake);
        }
    }

    /// Registers `source` for read and write readiness.
    pub(crate) fn register(
        &self,
        source: &mut impl Source,
    ) -> io::Result<(usize, Arc<ScheduledIo>)> {
        let io = Arc::new(ScheduledIo::default());
        let key = {
            let mut ios = self.ios();
            if self.shutdown.load(Ordering::SeqCst) {
                return Err(shutdown_error());
            }
            ios.insert(Arc::clone(&io))
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(error) = self.registry.register(source, Token(key), interest) {
            self.ios().remove(key);
            return Err(error);
        }
        Ok((key, io))
    }

    /// Stops events for `source` and forgets its slot.
    pub(crate) fn deregister(&self, key: usize, source: &mut impl Source) {
        // Fails only if the fd was not registered (never for our sockets) or already
        // closed; the slot is freed either way.
        let _ = self.registry.deregister(source);
        let mut ios = self.ios();
        if ios.contains(key) {
            ios.remove(key);
        }
    }

    /// Number of registered sockets.
    pub(crate) fn registered(&self) -> usize {
        self.ios().len()
    }

    /// Fails every pending and future I/O wait on this runtime's sockets.
    pub(crate) fn shutdown(&self) {
        let ios: Vec<Arc<ScheduledIo>> = {
            let ios = self.ios();
            self.shutdown.store(true, Ordering::SeqCst);
            ios.iter().map(|(_, io)| Arc::clone(io)).collect()
        };
        let mut wake = Vec::new();
        for io in ios {
            io.set_readiness(SHUTDOWN, &mut wake);
        }
        wake.into_iter().for_each(Waker::wake);
        self.wake();
    }
}

fn readiness_bits(event: &mio::event::Event) -> usize {
    let mut bits = 0;
    if event.is_readable() {
        bits |= READABLE;
    }
    if event.is_writable() {
        bits |= WRITABLE;
    }
    if event.is_read_closed() {
        bits |= READ_CLOSED;
    }
    if event.is_write_closed() {
        bits |= WRITE_CLOSED;
    }
    if event.is_error() {
        bits |= ERROR;
    }
    bits
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("registered", &self.registered())
            .field("shutdown", &self.shutdown.load(Ordering::Relaxed))
            .finish()
    }
}

//! The I/O reactor: a `mio::Poll`, one [`ScheduledIo`] per registered socket, and the
//! readiness protocol between the reactor and the tasks that wait on sockets.
//!
//! # Readiness protocol
//!
//! mio is edge-triggered: the reactor hears of readiness once per change. Each socket's
//! [`ScheduledIo`] keeps one atomic word: readiness bits plus a 16-bit *tick* that counts
//! events. An operation:
//!
//! 1. waits until the direction's bits are set ([`Waiter::poll_ready`] for the async-fn
//!    operations, [`ScheduledIo::poll_ready`] for the poll-based paths), which stores the
//!    task's waker under a mutex (in the operation's own entry of the direction's waiter
//!    list, or in the direction's one shared slot: see `super::scheduled_io` for who is
//!    woken) and then re-reads the word, so an event that lands between the first read and
//!    storing the waker is seen by the re-read, and one that lands after finds the waker;
//! 2. tries the syscall;
//! 3. on `WouldBlock` clears the bits it waited for, *only if the tick is unchanged*
//!    ([`ScheduledIo::clear_readiness`]): if an event arrived since step 1, clearing would
//!    lose it (edge-triggered: no second notice), so the bits stay and the loop retries.
//!
//! # Shutdown
//!
//! [`Reactor::shutdown`] marks every socket `SHUTDOWN` and wakes all its waiters; from then on
//! every readiness wait, and every new registration, fails with an error saying the runtime
//! is gone. Sockets owned by tasks are closed when shutdown drops those tasks' futures.
//!
//! Tokens are slab keys. A key is reused after its socket deregisters; a late event for the
//! old socket then marks the new one ready once, which costs one `WouldBlock` and is
//! harmless (step 3).

pub(crate) use super::scheduled_io::{Direction, ReadyEvent, ScheduledIo, Waiter};
use super::scheduled_io::{ERROR, READABLE, READ_CLOSED, SHUTDOWN, WRITABLE, WRITE_CLOSED};
use mio::event::Source;
use mio::{Events, Interest, Poll as MioPoll, Registry, Token, Waker as MioWaker};
use slab::Slab;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

const WAKER_TOKEN: Token = Token(usize::MAX);
const EVENTS_CAPACITY: usize = 1024;

pub(crate) fn shutdown_error() -> io::Error {
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
        super::wake_all(wake);
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

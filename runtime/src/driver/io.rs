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
//! # Failure
//!
//! `epoll_wait` fails, besides `EINTR` (a signal: the caller's loop polls again), only with
//! `EBADF`, `EFAULT` or `EINVAL`: the epoll instance or the event buffer is broken, and every
//! later call would fail the same way. Panicking there would kill the M that drives (and
//! strand its P), so the reactor *fails* instead ([`Reactor::poll`]): it reports the error
//! once on stderr, marks every registered socket `FAILED` and wakes all their waiters (their
//! operations return an error saying the I/O driver failed), and refuses new registrations.
//! The runtime goes on: its Ms keep running tasks, and the driving M keeps firing timers,
//! sleeping until the next deadline on a condition variable (`Fallback`) instead of in
//! `epoll_wait`.
//!
//! No wake-up is lost in the switch: [`Reactor::wake`] writes the eventfd and then, if it
//! reads `failed`, also signals the condition variable (a sticky flag under its mutex). The
//! failing turn stores `failed` and returns without sleeping. A wake whose read of `failed`
//! came before that store (`SeqCst` both) was made before the turn returned, so the parker's
//! token (set before `wake` is called) is seen when the turn returns; a wake that reads
//! `failed` sets the flag that the next fallback sleep checks under the mutex. Non-blocking
//! turns (zero timeout) never touch the flag, so they cannot eat a wake meant for the
//! driving M.
//!
//! Tokens are slab keys. A key is reused after its socket deregisters; a late event for the
//! old socket then marks the new one ready once, which costs one `WouldBlock` and is
//! harmless (step 3).

pub(crate) use super::scheduled_io::{Direction, ReadyEvent, ScheduledIo, Waiter};
use super::scheduled_io::{ERROR, FAILED, READABLE, READ_CLOSED, SHUTDOWN, WRITABLE, WRITE_CLOSED};
use mio::event::Source;
use mio::{Events, Interest, Poll as MioPoll, Registry, Token, Waker as MioWaker};
use slab::Slab;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

const WAKER_TOKEN: Token = Token(usize::MAX);
const EVENTS_CAPACITY: usize = 1024;

pub(crate) fn shutdown_error() -> io::Error {
    io::Error::other("the gpm runtime owning this socket has shut down")
}

pub(crate) fn failed_error() -> io::Error {
    io::Error::other(
        "the I/O driver of the gpm runtime owning this socket failed (epoll_wait returned an \
         error, reported on stderr): its sockets can no longer wait for readiness",
    )
}

/// The reactor shared by the runtime's threads.
pub(crate) struct Reactor {
    poller: Mutex<Poller>,
    registry: Registry,
    waker: MioWaker,
    ios: Mutex<Slab<Arc<ScheduledIo>>>,
    shutdown: AtomicBool,
    /// Set once `epoll_wait` failed (module docs, "Failure"); written under `ios`' lock.
    failed: AtomicBool,
    fallback: Fallback,
    /// Makes the next `epoll_wait` fail (tests of the failure path).
    #[cfg(test)]
    fail_next_poll: AtomicBool,
}

/// Where the driving M sleeps once the reactor has failed: a sticky flag and a condition
/// variable, standing in for the eventfd.
#[derive(Default)]
struct Fallback {
    woken: Mutex<bool>,
    condvar: Condvar,
}

impl Fallback {
    /// Sleeps until [`Fallback::wake`] (now or earlier, once) or `timeout`.
    fn sleep(&self, timeout: Option<Duration>) {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        if !*woken {
            woken = match timeout {
                None => self.condvar.wait(woken).unwrap_or_else(|e| e.into_inner()),
                Some(timeout) => {
                    let waited = self.condvar.wait_timeout(woken, timeout);
                    waited.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        *woken = false;
    }

    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.condvar.notify_one();
    }
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
            failed: AtomicBool::new(false),
            fallback: Fallback::default(),
            #[cfg(test)]
            fail_next_poll: AtomicBool::new(false),
        })
    }

    fn ios(&self) -> MutexGuard<'_, Slab<Arc<ScheduledIo>>> {
        self.ios.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the thread blocked in [`Reactor::poll`] (sticky: an eventfd write, and the
    /// fallback's flag once the reactor has failed).
    pub(crate) fn wake(&self) {
        let woke = self.waker.wake();
        if self.failed.load(Ordering::SeqCst) {
            self.fallback.wake();
        } else if let Err(error) = woke {
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
    /// concern go to `wake`. May return early. Once the reactor has failed, only sleeps.
    pub(crate) fn poll(
        &self,
        poller: &mut PollerGuard<'_>,
        timeout: Option<Duration>,
        wake: &mut Vec<Waker>,
    ) {
        if self.failed.load(Ordering::SeqCst) {
            if timeout != Some(Duration::ZERO) {
                self.fallback.sleep(timeout);
            }
            return;
        }
        let Poller { poll, events } = &mut *poller.0;
        match self.epoll_wait(poll, events, timeout) {
            Ok(()) => self.dispatch(events, wake),
            // A signal: the caller's loop polls again.
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => self.fail(&error, wake),
        }
    }

    fn epoll_wait(
        &self,
        poll: &mut MioPoll,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_next_poll.swap(false, Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        poll.poll(events, timeout)
    }

    /// `epoll_wait` failed for good (module docs, "Failure"): fail every socket's waits, wake
    /// their waiters (through `wake`) and refuse new sockets.
    fn fail(&self, error: &io::Error, wake: &mut Vec<Waker>) {
        eprintln!(
            "gpm: the I/O driver's epoll_wait failed ({error}); pending and later socket waits \
             of this runtime fail with an error, timers and tasks go on"
        );
        let ios: Vec<Arc<ScheduledIo>> = {
            let ios = self.ios();
            self.failed.store(true, Ordering::SeqCst);
            ios.iter().map(|(_, io)| Arc::clone(io)).collect()
        };
        for io in ios {
            io.set_readiness(FAILED, wake);
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
            if self.failed.load(Ordering::SeqCst) {
                return Err(failed_error());
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
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::net::UdpSocket;
    use crate::Runtime;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Runs `body` on its own thread; fails if it has not finished within a minute (a hang).
    fn watchdog(body: impl FnOnce() + Send + 'static) {
        let (done_tx, done_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            body();
            let _ = done_tx.send(());
        });
        match done_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(payload) = thread.join() {
                    std::panic::resume_unwind(payload);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung"),
        }
    }

    /// An `epoll_wait` error (injected: `EBADF`) fails the task waiting in `recv_from` with
    /// an error naming the driver, and new sockets; the worker that drove survives: it still
    /// runs tasks, fires timers, and hears wake-ups; the runtime drops.
    #[test]
    fn a_failed_epoll_wait_fails_socket_waits_and_keeps_the_worker() {
        watchdog(|| {
            let rt = Runtime::builder().worker_threads(1).build().unwrap();
            let (waiting_tx, waiting_rx) = mpsc::channel();
            let receiver = rt.spawn(async move {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                waiting_tx.send(()).unwrap();
                socket.recv_from(&mut [0; 8]).await.map(|(n, _)| n)
            });
            waiting_rx.recv().unwrap();
            // The receiver's poll has returned: it waits in `recv_from`.
            rt.handle().stop_the_world(|_| ());
            let driver = &rt.handle().shared.driver;
            driver.io.fail_next_poll.store(true, Ordering::SeqCst);
            driver.wake();
            let error = rt.block_on(receiver).unwrap().unwrap_err();
            assert!(error.to_string().contains("I/O driver"), "{error}");
            assert!(driver.io.failed.load(Ordering::SeqCst));
            let bind = rt.block_on(async { UdpSocket::bind("127.0.0.1:0").await });
            assert!(bind.unwrap_err().to_string().contains("I/O driver"));
            let slept = rt.spawn(async { crate::time::sleep(Duration::from_millis(5)).await });
            rt.block_on(slept).unwrap();
            // A task spawned from outside reaches the worker asleep in the fallback.
            assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
        });
    }
}

//! The driver: the runtime's timer wheel and I/O reactor, driven by whichever M parks.
//!
//! # Who drives
//!
//! An M whose P has nothing to run parks (`gpm_scheduler::Processor::park`). The scheduler's
//! parker first offers it the driver through the [`ParkDriver`] hook: if no other M is in
//! the driver, this M blocks in `epoll_wait` with a timeout equal to the next timer deadline,
//! then delivers readiness and fires due timers, waking their tasks. A wake-up for its P
//! (new work) reaches it through the `mio::Waker` (an eventfd) instead of a condition
//! variable. Ms that find the driver taken sleep on their condition variable as before.
//!
//! The wakers of the tasks made ready during a parked turn are not woken inside the driver:
//! the P is still borrowed by the park and listed as asleep, so a wake would go to the global
//! queue and wake *another* M, and each event would cross threads. They are kept in a
//! thread-local list instead; the worker's park condition sees the list non-empty, the P
//! leaves its park (as a searcher), and the M wakes them with its P in hand, so they go to
//! its own local queue (`runnext` first) and run on this M; surplus work is stolen by the
//! others as usual. This is what tokio's workers do by keeping their core in the context
//! while parked.
//!
//! A busy runtime may have no parked M for a long time, so every M also does a
//! non-blocking turn of the driver (`maintain`) every [`MAINTENANCE_INTERVAL`] polls, as
//! tokio's workers do every `event_interval` ticks: readiness and timers are then served at
//! least that often under load. A single poll that runs for a long time without yielding
//! delays timers and I/O of the whole runtime when it holds the only non-parked M: the same
//! limit as tokio.
//!
//! # Rejected options
//!
//! * **A dedicated I/O thread** (the driver always on its own thread). Each readiness event
//!   would go driver thread -> injector -> wake a parked M -> poll, two cross-thread
//!   hand-offs and a third thread competing for 2 cores. With parking-M driving, the M that
//!   receives the event is often the one that then runs the task. Tokio measured the same
//!   trade-off and chose the parking driver.
//! * **Per-P timer wheels.** They avoid a shared lock, but a timer is cancelled from wherever
//!   its future is dropped (often another P after a steal), the parking M must know the
//!   earliest deadline over all wheels, and an idle P's wheel must still be fired by someone:
//!   each of these needs cross-P synchronisation anyway. A single wheel behind one mutex
//!   costs one uncontended lock per timer operation (tens of nanoseconds); with at most a
//!   few Ps contending (this project's machines have 2 cores) the lock is not a bottleneck.
//!   Tokio went to sharded wheels only at high core counts. Revisit with a measurement if
//!   gpm runs on many cores.
//! * **A binary heap of deadlines** instead of a wheel: O(log n) insert and no O(1)
//!   cancellation without extra indices; the wheel gives O(1) for both and 1 ms resolution is
//!   what services need.

pub(crate) mod io;
pub(crate) mod time;

use gpm_scheduler::ParkDriver;
use std::cell::RefCell;
use std::task::Waker;
use std::time::Duration;

thread_local! {
    /// Wakers collected by a parked turn of the driver on this thread, woken by the worker
    /// once its P has left the park ([`wake_deferred`]).
    static DEFERRED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Whether a parked turn of the driver on this thread made tasks ready.
pub(crate) fn has_deferred_wakes() -> bool {
    DEFERRED.with(|deferred| !deferred.borrow().is_empty())
}

/// Wakes the tasks made ready by parked turns of the driver on this thread.
pub(crate) fn wake_deferred() {
    let wakers = DEFERRED.with(|deferred| std::mem::take(&mut *deferred.borrow_mut()));
    wakers.into_iter().for_each(Waker::wake);
}

/// Polls between two non-blocking turns of the driver by a busy M.
pub(crate) const MAINTENANCE_INTERVAL: u32 = 61;

/// Timers and I/O of one runtime.
pub(crate) struct Driver {
    pub(crate) time: time::TimeDriver,
    pub(crate) io: io::Reactor,
}

impl Driver {
    pub(crate) fn new() -> std::io::Result<Driver> {
        Ok(Driver {
            time: time::TimeDriver::new(),
            io: io::Reactor::new()?,
        })
    }

    /// A non-blocking turn: delivers ready I/O (if no M is in the driver) and fires due timers.
    pub(crate) fn maintain(&self) {
        let mut wake = Vec::new();
        if let Some(mut poller) = self.io.try_lock_poller() {
            self.io.poll(&mut poller, Some(Duration::ZERO), &mut wake);
        }
        self.time.end_park_and_fire(false, &mut wake);
        wake.into_iter().for_each(Waker::wake);
    }

    /// Fails pending I/O, fires every timer.
    pub(crate) fn shutdown(&self) {
        self.io.shutdown();
        self.time.shutdown();
    }

    /// Wakes the M sleeping in the driver, if any (sticky).
    pub(crate) fn wake(&self) {
        self.io.wake();
    }
}

impl ParkDriver for Driver {
    fn try_drive(&self, timeout: Option<Duration>) -> bool {
        let Some(mut poller) = self.io.try_lock_poller() else {
            return false;
        };
        // `parked_until` is only touched by the poller's holder, so it belongs to this M.
        let timer = self.time.begin_park();
        let timeout = match (timeout, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut wake = Vec::new();
        self.io.poll(&mut poller, timeout, &mut wake);
        self.time.end_park_and_fire(true, &mut wake);
        drop(poller);
        if !wake.is_empty() {
            DEFERRED.with(|deferred| deferred.borrow_mut().extend(wake));
        }
        true
    }

    fn wake(&self) {
        Driver::wake(self);
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("io", &self.io)
            .field("timers", &self.time.live_timers())
            .finish()
    }
}

//! The driver proper: the timer wheel and reactor together, and the parked turn.

use super::{io, time};
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

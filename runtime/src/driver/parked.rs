//! The parked turn of the driver: the M whose P parks sleeps in `epoll_wait` until the next
//! timer, and the tasks that turn makes ready wait in a thread-local list until the M holds
//! its P again (`driver` module docs, "Who drives").
//!
//! # Wakers that panic
//!
//! The wakers the driver fires are not all gpm's: a future polled by another executor (or
//! by hand) may wait on a gpm timer or socket with a waker whose `wake` panics. That panic
//! must not unwind into the M that happens to run the driver (it would take the M, and the
//! P it holds, with it), so every wake of a batch runs inside its own `catch_unwind`
//! ([`wake_all`]): a panicking waker is reported by the panic hook as usual, dropped, and the
//! rest of the batch is still woken. gpm's own wakers never panic, so this costs the happy
//! path nothing but the landing pad.

use super::{io, time, Driver};
use gpm_scheduler::ParkDriver;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
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
    wake_all(wakers);
}

/// Wakes each of `wakers`; a wake that panics (a foreign waker's) is contained and the
/// others are still woken (module docs).
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for waker in wakers {
        // Unwind safety: the waker is consumed by the call, and no state of ours is
        // borrowed across it, so nothing half-updated can be observed after a panic.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| waker.wake()));
    }
}

impl ParkDriver for Driver {
    fn try_drive(&self, timeout: Option<Duration>, cancelled: &dyn Fn() -> bool) -> bool {
        let Some(mut poller) = self.io.try_lock_poller() else {
            return false;
        };
        // `parked_until` is only touched by the poller's holder, so it belongs to this M.
        let timer = self.time.begin_park();
        let mut wake = Vec::new();
        let timeout = if cancelled() {
            // Woken before this M held the poller: the wake may have been consumed by
            // another M's maintenance turn, so do not sleep (`gpm_scheduler::park` docs).
            Some(Duration::ZERO)
        } else if self.time.clock().is_paused() {
            self.paused_timeout(&mut poller, timeout, &mut wake)
        } else {
            match (timeout, timer) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        if wake.is_empty() {
            self.io.poll(&mut poller, timeout, &mut wake);
        }
        self.time.fire_due(time::Turn::Parked, &mut wake);
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

impl Driver {
    /// How long a parked turn may sleep while the clock is paused: a virtual timer never
    /// ends a real sleep. If the runtime is idle (`time/pausable.rs`: this M's P is parked
    /// without a pending wake, it is the only P, and no `block_on` or blocking closure
    /// runs) and no I/O is ready, time jumps to the next timer and the turn does not sleep;
    /// otherwise it sleeps until woken (a `block_on` parking or a blocking closure ending
    /// wakes it to decide again). Ready I/O found here goes to `wake`.
    fn paused_timeout(
        &self,
        poller: &mut io::PollerGuard<'_>,
        timeout: Option<Duration>,
        wake: &mut Vec<Waker>,
    ) -> Option<Duration> {
        if self.time.processors() != 1 || !self.time.clock().may_auto_advance() {
            return timeout;
        }
        self.io.poll(poller, Some(Duration::ZERO), wake);
        if wake.is_empty() && self.time.advance_to_next_timer() {
            return Some(Duration::ZERO);
        }
        timeout
    }
}

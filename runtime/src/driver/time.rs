//! The runtime's clock: one [`Wheel`] behind a mutex, ticks of 1 ms since the runtime started.
//!
//! Deadlines round *up* to the next tick and "now" rounds *down*, so a timer never fires
//! before its deadline; it fires at most about a millisecond (plus scheduling delay) after.
//!
//! The driving M records, under the lock, the tick it sleeps until (`parked_until`). A
//! registration with an earlier deadline lowers it and asks the caller to wake the driver,
//! so a new short timer is never stuck behind a long epoll wait. While nobody sleeps in the
//! driver, registrations wake nobody: the next M to park reads the wheel first.

use super::wheel::{Key, Wheel};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

pub(crate) struct TimeDriver {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    wheel: Wheel,
    /// `Some(tick)` while an M sleeps in the driver until `tick` (`u64::MAX`: no timer).
    parked_until: Option<u64>,
    shutdown: bool,
}

/// What registering or polling a timer found.
pub(crate) enum TimerPoll {
    /// The deadline passed (or the runtime shut down).
    Fired,
    /// Waiting; `wake_driver` says whether the driving M must re-read the wheel.
    Pending { wake_driver: bool },
}

impl TimeDriver {
    pub(crate) fn new() -> TimeDriver {
        TimeDriver {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                wheel: Wheel::new(),
                parked_until: None,
                shutdown: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tick at which `deadline` counts as reached (rounded up).
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.start);
        let ms = since.as_millis();
        let rounded = if since > Duration::from_millis(ms as u64) {
            ms + 1
        } else {
            ms
        };
        u64::try_from(rounded).unwrap_or(u64::MAX)
    }

    /// The tick of `now` (rounded down).
    fn now_tick(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a timer for `deadline` if `key` is `None`, else polls (and re-arms the
    /// waker of) the existing one. A fired timer is freed and `key` cleared.
    pub(crate) fn poll_timer(
        &self,
        key_slot: &mut Option<Key>,
        deadline: Instant,
        waker: &Waker,
    ) -> TimerPoll {
        let mut inner = self.lock();
        if inner.shutdown {
            if let Some(key) = key_slot.take() {
                inner.wheel.remove(key);
            }
            return TimerPoll::Fired;
        }
        let tick = self.deadline_tick(deadline);
        let key = match *key_slot {
            Some(key) => key,
            None => {
                if tick <= self.now_tick() {
                    return TimerPoll::Fired;
                }
                *key_slot.insert(inner.wheel.insert(tick, waker.clone()))
            }
        };
        if inner.wheel.poll(key, waker) {
            inner.wheel.remove(key);
            *key_slot = None;
            return TimerPoll::Fired;
        }
        TimerPoll::Pending {
            wake_driver: inner.lower_parked_until(tick),
        }
    }

    /// Moves a registered timer to `deadline`.
    pub(crate) fn reset(&self, key: Key, deadline: Instant) -> bool {
        let mut inner = self.lock();
        let tick = self.deadline_tick(deadline);
        inner.wheel.reset(key, tick);
        inner.lower_parked_until(tick)
    }

    /// Cancels a timer (its owner was dropped or saw it fire).
    pub(crate) fn remove(&self, key: Key) {
        self.lock().wheel.remove(key);
    }

    /// Timers alive (waiting, or fired and not yet observed by their owner).
    pub(crate) fn live_timers(&self) -> usize {
        self.lock().wheel.len()
    }

    /// Called by the driving M before it sleeps: how long it may sleep for the wheel.
    pub(crate) fn begin_park(&self) -> Option<Duration> {
        let mut inner = self.lock();
        let next = inner.wheel.next_deadline();
        inner.parked_until = Some(next.unwrap_or(u64::MAX));
        let next = next?;
        let wait_ms = next.saturating_sub(self.now_tick());
        Some(Duration::from_millis(wait_ms))
    }

    /// Called by the driving M after its sleep, and by any M between polls: fires what is
    /// due, handing the wakers to `wake`.
    pub(crate) fn end_park_and_fire(&self, ended_park: bool, wake: &mut Vec<Waker>) {
        let mut inner = self.lock();
        if ended_park {
            inner.parked_until = None;
        }
        if inner.wheel.next_deadline().is_none() {
            return;
        }
        let now = self.now_tick();
        inner.wheel.advance(now, wake);
    }

    /// Fires every timer and makes later ones fire at once: nothing waits on a dead runtime.
    pub(crate) fn shutdown(&self) {
        let mut fired = Vec::new();
        {
            let mut inner = self.lock();
            inner.shutdown = true;
            inner.wheel.fire_all(&mut fired);
        }
        super::wake_all(fired);
    }
}

impl Inner {
    fn lower_parked_until(&mut self, tick: u64) -> bool {
        match self.parked_until {
            Some(until) if tick < until => {
                self.parked_until = Some(tick);
                true
            }
            _ => false,
        }
    }
}

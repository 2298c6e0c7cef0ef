//! The runtime's clock, which a test may pause: [`pause`], [`resume`], [`advance`], and
//! auto-advance, as tokio's `test-util` clock.
//!
//! # Model
//!
//! The clock reads `base + (real time since unfrozen)` while running and `base` while
//! paused; `advance(d)` adds `d` to `base`. Until the first pause the clock is simply
//! `std::time::Instant::now()`, read without the lock (`virtual_time` is false): a runtime
//! that never pauses pays one atomic load per read.
//!
//! # Auto-advance
//!
//! While the clock is paused and the runtime has nothing to do, time jumps to the next
//! timer instead of waiting for it (so a test that sleeps an hour finishes at once). "Nothing
//! to do" is decided by the M in the driver (`driver/parked.rs`) and needs three things:
//!
//! * its P is parked with no wake pending, and it is the only P: pausing needs a runtime
//!   with one worker thread (tokio needs its current-thread runtime; with several Ps, one
//!   could start a task just as another jumps time);
//! * no `block_on` thread of the runtime is running: each counts itself busy from the wake
//!   that makes it run until it parks again ([`PausableClock::block_on_parks`]), so time
//!   cannot jump between a wake and the poll it causes;
//! * no `spawn_blocking` closure is queued or running (they may be about to wake a task):
//!   each holds an [`Inhibit`] from its submission to its end, as tokio's do.
//!
//! A `block_on` that parks, and a blocking closure that ends, wake the driver so that it
//! re-decides.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One runtime's clock (module docs).
#[derive(Debug)]
pub(crate) struct PausableClock {
    /// Set by the first pause: from then on reads take the lock.
    virtual_time: AtomicBool,
    state: Mutex<State>,
    /// `block_on` threads of this runtime that are not parked.
    busy_block_ons: AtomicUsize,
    /// Blocking closures submitted and not yet finished.
    inhibitors: AtomicUsize,
}

#[derive(Debug)]
struct State {
    base: Instant,
    /// `Some(when)` while running: the real instant `base` was last read at.
    unfrozen: Option<Instant>,
}

impl PausableClock {
    /// A clock reading real time, paused at `start` if `start_paused`.
    pub(crate) fn new(start: Instant, start_paused: bool) -> PausableClock {
        PausableClock {
            virtual_time: AtomicBool::new(start_paused),
            state: Mutex::new(State {
                base: start,
                unfrozen: (!start_paused).then_some(start),
            }),
            busy_block_ons: AtomicUsize::new(0),
            inhibitors: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this clock was ever paused (its reads are then not the real clock's).
    pub(crate) fn is_virtual(&self) -> bool {
        self.virtual_time.load(SeqCst)
    }

    /// Now, by this clock.
    pub(crate) fn now(&self) -> Instant {
        if !self.is_virtual() {
            return Instant::now();
        }
        let state = self.lock();
        match state.unfrozen {
            Some(since) => state.base + since.elapsed(),
            None => state.base,
        }
    }

    /// Whether the clock stands still.
    pub(crate) fn is_paused(&self) -> bool {
        self.is_virtual() && self.lock().unfrozen.is_none()
    }

    /// Stops the clock; `Err` if it already stands still.
    pub(crate) fn pause(&self) -> Result<(), &'static str> {
        let mut state = self.lock();
        let Some(since) = state.unfrozen else {
            return Err("time is already frozen");
        };
        state.base += since.elapsed();
        state.unfrozen = None;
        self.virtual_time.store(true, SeqCst);
        Ok(())
    }

    /// Starts the clock again from where it stands; `Err` if it runs.
    pub(crate) fn resume(&self) -> Result<(), &'static str> {
        let mut state = self.lock();
        if state.unfrozen.is_some() {
            return Err("time is not frozen");
        }
        state.unfrozen = Some(Instant::now());
        Ok(())
    }

    /// Moves a paused clock forward by `duration`; `Err` if it runs.
    pub(crate) fn advance(&self, duration: Duration) -> Result<(), &'static str> {
        let mut state = self.lock();
        if state.unfrozen.is_some() {
            return Err("time is not frozen");
        }
        state.base = state.base.checked_add(duration).unwrap_or(state.base);
        Ok(())
    }

    /// Moves a paused clock forward to `instant` if that is later (auto-advance).
    pub(crate) fn advance_to(&self, instant: Instant) {
        let mut state = self.lock();
        if state.unfrozen.is_none() && instant > state.base {
            state.base = instant;
        }
    }

    /// Whether the driver may jump time now (module docs; its own P's state is the
    /// caller's to check).
    pub(crate) fn may_auto_advance(&self) -> bool {
        self.busy_block_ons.load(SeqCst) == 0
            && self.inhibitors.load(SeqCst) == 0
            && self.is_paused()
    }

    /// A `block_on` thread starts running.
    pub(crate) fn block_on_runs(&self) {
        self.busy_block_ons.fetch_add(1, SeqCst);
    }

    /// A `block_on` thread parks (or returns); `true` if the clock is paused and nothing
    /// else holds time back, so the caller must wake the driver to re-decide.
    pub(crate) fn block_on_parks(&self) -> bool {
        self.busy_block_ons.fetch_sub(1, SeqCst) == 1 && self.is_paused()
    }

    /// Holds auto-advance back until the returned guard drops (a blocking closure's life).
    pub(crate) fn inhibit(
        self: &Arc<Self>,
        wake_driver: impl Fn() + Send + Sync + 'static,
    ) -> Inhibit {
        self.inhibitors.fetch_add(1, SeqCst);
        Inhibit {
            clock: Arc::clone(self),
            wake_driver: Box::new(wake_driver),
        }
    }
}

/// Holds the clock's auto-advance back while alive ([`PausableClock::inhibit`]).
pub(crate) struct Inhibit {
    clock: Arc<PausableClock>,
    wake_driver: Box<dyn Fn() + Send + Sync>,
}

impl Drop for Inhibit {
    fn drop(&mut self) {
        if self.clock.inhibitors.fetch_sub(1, SeqCst) == 1 && self.clock.is_paused() {
            (self.wake_driver)();
        }
    }
}

/// Now, by the current runtime's clock; `std::time::Instant::now()` outside a runtime.
pub(crate) fn now() -> Instant {
    crate::rt::context::try_with_handle(|handle| handle.map(|h| h.shared.driver.time.clock().now()))
        .flatten()
        .unwrap_or_else(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_clock_reads_real_time() {
        let clock = PausableClock::new(Instant::now(), false);
        let before = Instant::now();
        let read = clock.now();
        assert!(before <= read && read <= Instant::now());
        assert!(!clock.is_virtual() && !clock.is_paused());
    }

    #[test]
    fn pause_advance_resume() {
        let start = Instant::now();
        let clock = PausableClock::new(start, true);
        assert!(clock.is_paused());
        assert_eq!(clock.now(), start);
        assert_eq!(clock.pause(), Err("time is already frozen"));
        clock.advance(Duration::from_secs(5)).unwrap();
        assert_eq!(clock.now(), start + Duration::from_secs(5));
        clock.advance_to(start + Duration::from_secs(1));
        assert_eq!(
            clock.now(),
            start + Duration::from_secs(5),
            "never backwards"
        );
        clock.resume().unwrap();
        assert!(clock.now() >= start + Duration::from_secs(5));
        assert_eq!(clock.resume(), Err("time is not frozen"));
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Err("time is not frozen")
        );
        clock.pause().unwrap();
        let frozen = clock.now();
        assert_eq!(clock.now(), frozen);
    }

    #[test]
    fn auto_advance_waits_for_block_ons_and_blocking_closures() {
        let clock = Arc::new(PausableClock::new(Instant::now(), true));
        assert!(clock.may_auto_advance());
        clock.block_on_runs();
        assert!(!clock.may_auto_advance());
        assert!(
            clock.block_on_parks(),
            "the last block_on parking must wake the driver"
        );
        let woken = Arc::new(AtomicUsize::new(0));
        let inhibit = {
            let woken = Arc::clone(&woken);
            clock.inhibit(move || {
                woken.fetch_add(1, SeqCst);
            })
        };
        assert!(!clock.may_auto_advance());
        drop(inhibit);
        assert_eq!(woken.load(SeqCst), 1);
        assert!(clock.may_auto_advance());
    }
}

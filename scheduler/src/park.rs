//! A P's parker: where the M holding an idle P sleeps until someone has work for it.
//!
//! The parker belongs to the P, not to the M: when an M hands its P to another M
//! (`block_in_place`), wake-ups addressed to the P reach whichever M holds it now.
//!
//! # Protocol
//!
//! The state is `EMPTY`, `PARKED` or `NOTIFIED`. `unpark` always leaves a token
//! (`NOTIFIED`); `park` consumes a token if one is there and otherwise sleeps until one
//! arrives. A token left before the sleep therefore ends the sleep at once: no wake-up is
//! lost between deciding to sleep and sleeping. The mutex is taken by `unpark` only when the
//! sleeper may be inside the condition-variable wait, so that the notification cannot fall
//! between its check of the state and its wait.
//!
//! # Sleeping in a driver
//!
//! The runtime may install a [`ParkDriver`] (its timer wheel and I/O reactor): then a parking
//! M first tries to sleep *in the driver* (epoll with a timeout of the next timer deadline)
//! instead of on the condition variable, so the thread that has nothing to run is the one
//! that waits for I/O and timers. Only one M can drive at a time; the others fall back to the
//! condition variable. The extra state `DRIVING` tells `unpark` that the sleeper must be woken
//! through [`ParkDriver::wake`] rather than the condition variable:
//!
//! 1. The sleeper moves `EMPTY -> DRIVING` (a token already there ends the park instead), then
//!    calls [`ParkDriver::try_drive`], then swaps the state back to `EMPTY`, consuming a token
//!    that arrived meanwhile.
//! 2. `unpark` swaps in `NOTIFIED`; if it replaced `DRIVING` it calls `wake`.
//!
//! `wake` must be sticky (a `mio::Waker` is an eventfd: a write before the epoll wait makes
//! the wait return at once), so a token left between step 1's transition and the driver's
//! sleep is never lost. A `wake` that reaches a thread that already left the driver only
//! costs that driver one spurious return.
//!
//! Sticky is not enough on its own: until the sleeper holds the driver, another thread may
//! be inside it (a busy M's non-blocking maintenance turn) and consume the wake meant for
//! the sleeper (the eventfd's one edge). So [`ParkDriver::try_drive`] asks `cancelled`
//! once it holds the driver, before it sleeps (tokio's order: take the driver, then look
//! for a token): a token that came before that point is seen there, and a wake that comes
//! after it reaches the holder, the only thread that can consume it now.
//!
//! The scheduler knows nothing of I/O or time: the trait is all it sees. Rejected: putting
//! mio in this crate (it would tie the queueing code to one reactor and make it untestable
//! without sockets), and a dedicated driver thread (every readiness event would cross
//! threads twice: driver to injector, injector to a woken M; see the runtime's `driver`).

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex};
use std::fmt;
// `OnceLock` has no loom counterpart and needs none: the driver is installed once, before
// any thread parks or unparks (the runtime installs it while building the Ps; the loom
// models before spawning their threads), so every later `get` sees it without a race for
// loom to explore. The `Arc` only keeps the driver alive and is not part of any protocol.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;
const DRIVING: usize = 3;

/// Something a parked M can sleep in instead of a condition variable, doing useful work
/// while it waits: the runtime's timer wheel and I/O reactor.
pub trait ParkDriver: Send + Sync {
    /// If no other thread drives, sleeps in the driver until [`ParkDriver::wake`] is called,
    /// `timeout` passes, or the driver has events to deliver, and returns true. Returns false
    /// at once, without sleeping, when another thread is driving. May return early.
    ///
    /// Once it holds the driver (no other thread can consume a wake from then on) and
    /// before it sleeps, it calls `cancelled`; on true it does not sleep (it may still
    /// deliver ready events without waiting). See the module docs for why.
    fn try_drive(&self, timeout: Option<Duration>, cancelled: &dyn Fn() -> bool) -> bool;

    /// Ends the current `try_drive` sleep, or the next one if none is in progress (sticky).
    fn wake(&self);
}

/// Sleep/wake for one P. Shared (`Sync`): any thread may unpark, the holder of the P parks.
pub struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
    driver: OnceLock<Arc<dyn ParkDriver>>,
}

impl Parker {
    /// A parker without a token.
    pub fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
            driver: OnceLock::new(),
        }
    }

    /// Makes parking try `driver` before the condition variable. Set once; later calls are
    /// ignored and return false.
    pub fn install_driver(&self, driver: Arc<dyn ParkDriver>) -> bool {
        self.driver.set(driver).is_ok()
    }

    /// Sleeps until a token is available, then consumes it. Only the M holding the P calls it.
    /// With a driver installed it may also return without a token (the driver delivered
    /// events or reached a timer deadline): callers re-check their condition.
    pub fn park(&self) {
        self.park_inner(None);
    }

    /// Like [`Parker::park`] but returns after `timeout` at the latest.
    pub fn park_timeout(&self, timeout: Duration) {
        self.park_inner(Some(timeout));
    }

    fn park_inner(&self, timeout: Option<Duration>) {
        if self.try_consume_token() {
            return;
        }
        if let Some(driver) = self.driver.get() {
            match self.park_in_driver(driver.as_ref(), timeout) {
                Driven::Returned => return,
                Driven::Busy => {}
            }
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if !self.leave_empty_for(PARKED, "parking") {
            return;
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            guard = match deadline {
                None => self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        break;
                    }
                    self.condvar
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            if self.try_consume_token() {
                return;
            }
        }
        // Timed out: withdraw the PARKED state unless a token raced in, then consume it.
        self.state.swap(EMPTY, Ordering::SeqCst);
        drop(guard);
    }

    /// Step 1 of the driver protocol (module docs).
    fn park_in_driver(&self, driver: &dyn ParkDriver, timeout: Option<Duration>) -> Driven {
        if !self.leave_empty_for(DRIVING, "driving") {
            return Driven::Returned;
        }
        let woken = || self.state.load(Ordering::SeqCst) != DRIVING;
        let drove = driver.try_drive(timeout, &woken);
        match self.state.swap(EMPTY, Ordering::SeqCst) {
            NOTIFIED => Driven::Returned,
            DRIVING if drove => Driven::Returned,
            DRIVING => Driven::Busy,
            actual => unreachable!("parker state {actual} after driving"),
        }
    }

    /// Announces the sleep: `EMPTY` becomes `sleeping` (`PARKED` or `DRIVING`), and true.
    /// False when a token is there instead: it is consumed, and the caller returns without
    /// sleeping. `doing` names the caller in the message of an impossible state.
    fn leave_empty_for(&self, sleeping: usize, doing: &str) -> bool {
        match self
            .state
            .compare_exchange(EMPTY, sleeping, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(NOTIFIED) => {
                self.consume_seen_token();
                false
            }
            Err(actual) => unreachable!("parker state {actual} while {doing}"),
        }
    }

    /// Consumes the token a failed `compare_exchange` just saw. A swap, not a store (std's
    /// parker does the same): another `unpark` may have come since that read, and a store
    /// would erase its token without synchronising with it, so the caller could miss what
    /// that unparker wrote before unparking (the loom model of `Idle` with two Ps found
    /// this: a shutdown flag set before the second unpark stayed unseen and the P slept).
    fn consume_seen_token(&self) {
        let token = self.state.swap(EMPTY, Ordering::SeqCst);
        debug_assert_eq!(token, NOTIFIED);
    }

    fn try_consume_token(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Leaves a token and wakes the sleeper if there is one.
    pub fn unpark(&self) {
        match self.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            DRIVING => {
                if let Some(driver) = self.driver.get() {
                    driver.wake();
                }
            }
            PARKED => {
                // The sleeper checked the state under the lock before waiting; taking the
                // lock here orders this notification after its wait began.
                drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
                self.condvar.notify_one();
            }
            actual => unreachable!("parker state {actual} while unparking"),
        }
    }
}

/// How a sleep in the driver ended.
enum Driven {
    /// Woken, timed out or events delivered: the park is over.
    Returned,
    /// Another thread drives: sleep on the condition variable instead.
    Busy,
}

impl Default for Parker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Relaxed) {
            EMPTY => "empty",
            PARKED => "parked",
            DRIVING => "driving",
            _ => "notified",
        };
        f.debug_struct("Parker").field("state", &state).finish()
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    #[test]
    fn token_before_park_returns_at_once() {
        let parker = Parker::new();
        parker.unpark();
        parker.park();
    }

    #[test]
    fn unpark_from_other_thread_wakes_sleeper() {
        let parker = Arc::new(Parker::new());
        let other = Arc::clone(&parker);
        let waker = std::thread::spawn(move || other.unpark());
        parker.park();
        waker.join().unwrap();
    }

    /// A driver that sleeps on a condition variable with a sticky flag, like an eventfd.
    #[derive(Default)]
    struct FlagDriver {
        woken: Mutex<bool>,
        condvar: Condvar,
        busy: std::sync::atomic::AtomicBool,
        drives: AtomicUsize,
    }

    impl ParkDriver for FlagDriver {
        fn try_drive(&self, _timeout: Option<Duration>, cancelled: &dyn Fn() -> bool) -> bool {
            if self.busy.load(Ordering::SeqCst) {
                return false;
            }
            self.drives.fetch_add(1, Ordering::SeqCst);
            let mut woken = self.woken.lock().unwrap();
            if cancelled() {
                return true;
            }
            while !*woken {
                woken = self.condvar.wait(woken).unwrap();
            }
            *woken = false;
            true
        }

        fn wake(&self) {
            *self.woken.lock().unwrap() = true;
            self.condvar.notify_one();
        }
    }

    /// Parks a thread on a parker with `driver` installed and unparks it until the sleeper
    /// returns: some unpark lands while it is in the driver (or on the condvar), or before,
    /// and each must end the park.
    fn unpark_a_sleeper_until_it_returns(driver: Arc<FlagDriver>) {
        let parker = Arc::new(Parker::new());
        assert!(parker.install_driver(driver));
        let other = Arc::clone(&parker);
        let sleeper = std::thread::spawn(move || other.park());
        while !sleeper.is_finished() {
            parker.unpark();
            std::thread::yield_now();
        }
        sleeper.join().unwrap();
    }

    #[test]
    fn unpark_wakes_a_sleeper_in_the_driver() {
        unpark_a_sleeper_until_it_returns(Arc::new(FlagDriver::default()));
    }

    /// A driver whose wake another thread can consume before the sleeper holds it, as a
    /// busy M's maintenance turn consumes the eventfd's edge. `before_holding` plays that
    /// race at the worst moment: the sleeper is `DRIVING`, an unpark lands (its wake sets
    /// the flag), and another thread's turn consumes the flag. The sleeper must not then
    /// sleep in the driver with its token unseen.
    struct RacedDriver {
        flag: FlagDriver,
        parker: std::sync::OnceLock<std::sync::Weak<Parker>>,
        slept_without_wake: std::sync::atomic::AtomicBool,
    }

    impl ParkDriver for RacedDriver {
        fn try_drive(&self, _timeout: Option<Duration>, cancelled: &dyn Fn() -> bool) -> bool {
            if let Some(parker) = self.parker.get().and_then(std::sync::Weak::upgrade) {
                parker.unpark();
            }
            *self.flag.woken.lock().unwrap() = false; // another M's turn took the edge
            if cancelled() {
                return true;
            }
            // Sleeping now would wait for a wake that never comes (bounded here, so the
            // test reports it instead of hanging).
            let woken = self.flag.woken.lock().unwrap();
            let (woken, timeout) = self
                .flag
                .condvar
                .wait_timeout_while(woken, Duration::from_secs(2), |woken| !*woken)
                .unwrap();
            drop(woken);
            self.slept_without_wake
                .store(timeout.timed_out(), Ordering::SeqCst);
            true
        }

        fn wake(&self) {
            self.flag.wake();
        }
    }

    #[test]
    fn a_wake_consumed_by_another_driver_turn_is_not_lost() {
        let driver = Arc::new(RacedDriver {
            flag: FlagDriver::default(),
            parker: std::sync::OnceLock::new(),
            slept_without_wake: std::sync::atomic::AtomicBool::new(false),
        });
        let parker = Arc::new(Parker::new());
        assert!(parker.install_driver(driver.clone()));
        driver.parker.set(Arc::downgrade(&parker)).unwrap();
        parker.park();
        assert!(
            !driver.slept_without_wake.load(Ordering::SeqCst),
            "the sleeper slept in the driver although its token had come"
        );
    }

    #[test]
    fn busy_driver_falls_back_to_the_condvar() {
        let driver = Arc::new(FlagDriver::default());
        driver.busy.store(true, Ordering::SeqCst);
        unpark_a_sleeper_until_it_returns(driver.clone());
        assert_eq!(driver.drives.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn timeout_returns_without_token() {
        let parker = Parker::new();
        parker.park_timeout(Duration::from_millis(1));
        // The token was not consumed by anyone: a later unpark still works.
        parker.unpark();
        parker.park();
    }
}

/// Loom models of the real [`Parker`] (run with `scripts/loom.sh`). A lost wake-up shows up
/// as a park that never ends, which loom reports as a deadlock.
#[cfg(all(test, gpm_loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    /// An unpark from another thread ends a park on the condition variable, whether it lands
    /// before the park, between its check of the state and its wait, or during the wait.
    #[test]
    fn unpark_from_another_thread_ends_a_condvar_park() {
        loom::model(|| {
            let parker = Arc::new(Parker::new());
            let unparker = {
                let parker = Arc::clone(&parker);
                thread::spawn(move || parker.unpark())
            };
            parker.park();
            unparker.join().unwrap();
        });
    }

    /// Two unparkers, each publishing a flag (`Relaxed`) before its unpark; the sleeper
    /// parks until it sees both. Unparks coalesce into one token, so the park that consumes
    /// it must synchronise with the last unpark, or the sleeper may miss that flag and park
    /// again with no token left. (It did, when a token seen by a failed `compare_exchange`
    /// was cleared with a store instead of a swap.)
    #[test]
    fn a_coalesced_unpark_publishes_its_writes() {
        loom::model(|| {
            use crate::sync::atomic::AtomicBool;
            let parker = Arc::new(Parker::new());
            let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let unparkers: Vec<_> = (0..2)
                .map(|i| {
                    let (parker, flags) = (Arc::clone(&parker), Arc::clone(&flags));
                    thread::spawn(move || {
                        flags[i].store(true, Ordering::Relaxed);
                        parker.unpark();
                    })
                })
                .collect();
            while !flags.iter().all(|flag| flag.load(Ordering::Relaxed)) {
                parker.park();
            }
            for unparker in unparkers {
                unparker.join().unwrap();
            }
        });
    }

    /// A model of the runtime's driver: `poller` is the reactor (one holder at a time,
    /// taken with `try_lock` as `mio::Poll` is), `woken` the sticky eventfd behind its own
    /// mutex and condition variable. `try_drive` takes the poller, asks `cancelled` (unless
    /// `honour_cancelled` is off, for the negative check), then sleeps until woken and
    /// consumes the wake. `maintenance_turn` is a busy M's non-blocking turn: it takes the
    /// poller if it is free and consumes a pending wake (the eventfd's one edge).
    struct ModelDriver {
        poller: Mutex<()>,
        woken: Mutex<bool>,
        condvar: Condvar,
        honour_cancelled: bool,
    }

    impl ModelDriver {
        fn new(honour_cancelled: bool) -> ModelDriver {
            ModelDriver {
                poller: Mutex::new(()),
                woken: Mutex::new(false),
                condvar: Condvar::new(),
                honour_cancelled,
            }
        }

        fn maintenance_turn(&self) {
            if let Ok(_poller) = self.poller.try_lock() {
                *self.woken.lock().unwrap() = false;
            }
        }
    }

    impl ParkDriver for ModelDriver {
        fn try_drive(&self, _timeout: Option<Duration>, cancelled: &dyn Fn() -> bool) -> bool {
            let Ok(_poller) = self.poller.try_lock() else {
                return false;
            };
            if self.honour_cancelled && cancelled() {
                return true;
            }
            let mut woken = self.woken.lock().unwrap();
            while !*woken {
                woken = self.condvar.wait(woken).unwrap();
            }
            *woken = false;
            true
        }

        fn wake(&self) {
            *self.woken.lock().unwrap() = true;
            self.condvar.notify_one();
        }
    }

    /// The sleeper parks in the driver while another thread unparks it and a third takes
    /// the poller for a maintenance turn that may consume the unpark's wake before the
    /// sleeper holds the poller. The park always ends: either the sleeper finds the poller
    /// busy and falls back to the condition variable, or its `cancelled` check (made once
    /// it holds the poller) sees the token, or the wake comes after that check and only
    /// the sleeper can consume it.
    fn park_in_driver_races_unpark_and_maintenance(honour_cancelled: bool) {
        loom::model(move || {
            let driver = Arc::new(ModelDriver::new(honour_cancelled));
            let parker = Arc::new(Parker::new());
            // Installed before any thread parks or unparks, as in the runtime.
            assert!(parker.install_driver(Arc::clone(&driver) as Arc<dyn ParkDriver>));
            let unparker = {
                let parker = Arc::clone(&parker);
                thread::spawn(move || parker.unpark())
            };
            let maintenance = {
                let driver = Arc::clone(&driver);
                thread::spawn(move || driver.maintenance_turn())
            };
            parker.park();
            unparker.join().unwrap();
            maintenance.join().unwrap();
        });
    }

    #[test]
    fn a_wake_consumed_by_a_maintenance_turn_does_not_lose_the_unpark() {
        park_in_driver_races_unpark_and_maintenance(true);
    }

    /// The negative check: a driver that ignores `cancelled` sleeps with the token unseen
    /// after the maintenance turn consumed the wake, and loom finds that deadlock. This keeps
    /// the model above honest: it does reach the interleaving the `cancelled` rule is for.
    #[test]
    #[should_panic(expected = "deadlock")]
    fn without_the_cancelled_check_the_wake_is_lost() {
        park_in_driver_races_unpark_and_maintenance(false);
    }

    /// A driver that is busy for the whole model (another M holds the poller): the sleeper
    /// falls back to the condition variable and the unpark still ends the park.
    #[test]
    fn a_busy_driver_falls_back_to_the_condvar() {
        loom::model(|| {
            let driver = Arc::new(ModelDriver::new(true));
            let parker = Arc::new(Parker::new());
            assert!(parker.install_driver(Arc::clone(&driver) as Arc<dyn ParkDriver>));
            let _holder = driver.poller.lock().unwrap();
            let unparker = {
                let parker = Arc::clone(&parker);
                thread::spawn(move || parker.unpark())
            };
            parker.park();
            unparker.join().unwrap();
        });
    }
}

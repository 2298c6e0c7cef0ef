//! How the M that sleeps in the driver and the registrations of new timers meet, so that a
//! new timer earlier than the sleep is never missed (`driver::time` module docs).
//!
//! Each timer shard publishes a lower bound of its earliest deadline ([`EarliestTick`]); the
//! sleeping M publishes the tick it sleeps until ([`SleepGate`]). Both sides store, issue a
//! `SeqCst` fence, then load the other side's word (a Dekker pair):
//!
//! ```text
//! sleeper:    gate = NO_TIMER;  fence;  until = min(shard.earliest...);  gate = min(gate, until)
//! registrar:  shard.earliest = tick;  fence;  if tick < gate { gate = min(gate, tick); wake }
//! ```
//!
//! The two fences are ordered one way or the other: either the sleeper's fence comes second
//! and its load of `earliest` sees the registrar's store (it sleeps until `tick` at the
//! latest), or the registrar's fence comes second and its load of `gate` sees the sleeper's
//! store (it sees a gate above `tick` and wakes the sleeper; the wake is sticky, so one sent
//! before the sleep starts cancels it). `SeqCst` accesses alone would do in the C++ model,
//! but loom models them as acquire/release, and without the fences it finds the lost
//! wake-up; the fences cost one `mfence` per sleep and per registration of a new earliest
//! timer, not per timer. `fetch_min` makes concurrent lowerings agree on one value, and only
//! the registrar that actually lowers the gate wakes the sleeper.
//!
//! The loom models below check these two types, the ones `driver::time` uses.

use crate::loom::sync::atomic::{fence, AtomicU64, Ordering::SeqCst};

/// [`SleepGate`] while no M sleeps in the driver: no registration wakes anyone.
pub(crate) const NOT_PARKED: u64 = 0;
/// [`EarliestTick`] of an empty wheel; [`SleepGate`] of a sleep with no timer at all.
pub(crate) const NO_TIMER: u64 = u64::MAX;

/// The tick the M in the driver sleeps until ([`NOT_PARKED`] when none sleeps there).
#[derive(Debug)]
pub(crate) struct SleepGate(AtomicU64);

impl SleepGate {
    pub(crate) fn new() -> SleepGate {
        SleepGate(AtomicU64::new(NOT_PARKED))
    }

    /// The sleeper's side, before it sleeps: announces the sleep, then reads the shards'
    /// earliest ticks through `earliest` (after the announcement). Returns the tick to sleep
    /// until ([`NO_TIMER`]: no timer).
    pub(crate) fn close(&self, earliest: impl FnOnce() -> u64) -> u64 {
        self.0.store(NO_TIMER, SeqCst);
        fence(SeqCst);
        let earliest = earliest();
        self.0.fetch_min(earliest, SeqCst).min(earliest)
    }

    /// The sleeper's side, once awake: registrations wake nobody until the next `close`.
    pub(crate) fn open(&self) {
        self.0.store(NOT_PARKED, SeqCst);
    }

    /// The registrar's side, after it lowered its shard's [`EarliestTick`] to `tick`:
    /// lowers the gate to `tick` if an M sleeps until later. `true`: wake that M.
    pub(crate) fn lower(&self, tick: u64) -> bool {
        fence(SeqCst);
        tick < self.0.load(SeqCst) && tick < self.0.fetch_min(tick, SeqCst)
    }
}

/// A lower bound of the earliest deadline in one shard's wheel ([`NO_TIMER`] when empty).
/// Written only under the shard's lock, read by anyone.
#[derive(Debug)]
pub(crate) struct EarliestTick(AtomicU64);

impl EarliestTick {
    pub(crate) fn new() -> EarliestTick {
        EarliestTick(AtomicU64::new(NO_TIMER))
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(SeqCst)
    }

    /// Lowers the bound to `tick` if earlier; `true` if it did (the caller then lowers the
    /// [`SleepGate`]). Call with the shard's lock held.
    pub(crate) fn lower(&self, tick: u64) -> bool {
        if tick < self.0.load(SeqCst) {
            self.0.store(tick, SeqCst);
            true
        } else {
            false
        }
    }

    /// Sets the bound after the wheel advanced (with the shard's lock held).
    pub(crate) fn set(&self, tick: u64) {
        self.0.store(tick, SeqCst);
    }
}

#[cfg(all(test, gpm_loom))]
mod loom_tests {
    use super::*;
    use crate::loom::sync::atomic::AtomicBool;
    use crate::loom::thread;
    use std::sync::Arc;

    const FAR: u64 = 1_000;

    struct Model {
        gate: SleepGate,
        shards: [EarliestTick; 2],
        /// The sticky wake of the sleeper (the reactor's eventfd).
        woken: AtomicBool,
    }

    fn register(model: &Model, shard: usize, tick: u64) {
        if model.shards[shard].lower(tick) && model.gate.lower(tick) {
            model.woken.store(true, SeqCst);
        }
    }

    /// The sleeper computes its sleep while timers are registered: it either sleeps no
    /// later than every timer registered, or was woken.
    fn check(registrations: &'static [(usize, u64)]) {
        loom::model(move || {
            let model = Arc::new(Model {
                gate: SleepGate::new(),
                shards: [EarliestTick::new(), EarliestTick::new()],
                woken: AtomicBool::new(false),
            });
            model.shards[0].lower(FAR);
            let registrars: Vec<_> = registrations
                .iter()
                .map(|&(shard, tick)| {
                    let model = Arc::clone(&model);
                    thread::spawn(move || register(&model, shard, tick))
                })
                .collect();
            let until = model
                .gate
                .close(|| model.shards.iter().map(EarliestTick::get).min().unwrap());
            for registrar in registrars {
                registrar.join().unwrap();
            }
            let earliest = registrations.iter().map(|&(_, t)| t).min().unwrap();
            assert!(
                until <= earliest || model.woken.load(SeqCst),
                "slept until {until} past a timer at {earliest} without a wake"
            );
        });
    }

    #[test]
    fn an_earlier_timer_on_another_shard_is_never_missed() {
        check(&[(1, 10)]);
    }

    #[test]
    fn an_earlier_timer_on_the_sleepers_own_shard_is_never_missed() {
        check(&[(0, 10)]);
    }

    #[test]
    fn two_registrars_racing_the_sleeper() {
        check(&[(0, 20), (1, 10)]);
    }

    /// Once the sleeper is awake (`open`), registrations wake nobody.
    #[test]
    fn an_open_gate_wakes_nobody() {
        loom::model(|| {
            let gate = Arc::new(SleepGate::new());
            gate.close(|| FAR);
            gate.open();
            let registrar = {
                let gate = Arc::clone(&gate);
                thread::spawn(move || gate.lower(10))
            };
            assert!(!registrar.join().unwrap());
        });
    }
}

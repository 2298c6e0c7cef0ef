//! The runtime's clock: one [`Wheel`] per P (plus one for threads without a P), ticks of
//! 1 ms since the runtime started.
//!
//! Deadlines round *up* to the next tick and "now" rounds *down*, so a timer never fires
//! before its deadline; it fires at most about a millisecond (plus scheduling delay) after.
//!
//! # Shards (Go's per-P timers)
//!
//! A timer is registered in the wheel of the P whose M polls it first (its *shard*); a
//! thread without a P (a `block_on` caller, a foreign executor) uses the extra shard. Each
//! shard is a mutex around its wheel, so registering, polling and cancelling a timer is one
//! lock that its own P nearly always takes uncontended, on a cache line no other core
//! writes. A single global wheel made every timer operation of every P meet on one lock and
//! one set of cache lines; under many timers that contention was a quarter of the runtime's
//! CPU time (docs/BENCHMARKS.md, "Timers").
//!
//! A timer stays in its shard for life: a task that migrates cancels or re-polls it in the
//! old P's shard (a lock that is then contended only with that P).
//!
//! # Firing
//!
//! Each shard publishes a lower bound of its earliest deadline in an atomic (`next`, written
//! under the shard's lock, read by anyone). A turn of the driver (the parked M's, or a busy
//! M's maintenance turn) reads the clock once and fires every shard whose `next` is due:
//! in a maintenance turn its own with `lock`, the others only once they are a tick overdue
//! ([`FOREIGN_GRACE_TICKS`]: their owner is not busy) and with `try_lock` (a held shard is
//! being fired or used by its owner); in the parked turn every due shard with `lock` (the
//! parked M is the one the others rely on). So a P that is busy fires its own timers every
//! maintenance turn, and an idle P's timers are fired by the M in the driver.
//!
//! # Sleeping in the driver without missing a new earlier timer
//!
//! The M in the driver sleeps until the earliest `next` over all shards. A registration
//! that lowers its shard's `next` below the tick the M sleeps until lowers that tick and
//! wakes the driver. The two sides form a store-then-load (Dekker) pair, written once in
//! `driver::sleep_gate` with its proof and loom models.

use super::io::Reactor;
use super::sleep_gate::{EarliestTick, SleepGate, NO_TIMER};
use super::wheel::{Key, Wheel};
use crate::time::pausable::PausableClock;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// How overdue another P's shard must be before a maintenance turn fires it. A busy P fires
/// its own shard at every maintenance turn, far more often than once a tick, so a shard a
/// tick overdue has no busy owner; firing it any sooner would only take the lock its owner
/// is about to take for its own timers.
const FOREIGN_GRACE_TICKS: u64 = 1;

/// The timers of one runtime: its shards and what they share.
pub(crate) struct TimeDriver {
    shards: Box<[Arc<TimerShard>]>,
    common: Arc<Common>,
}

/// What every shard needs: the clock's origin, the Dekker pair's driver side, the reactor
/// to wake the M sleeping in the driver.
struct Common {
    start: Instant,
    /// The clock timers read: real time unless a test paused it (`gpm::time::pause`).
    clock: Arc<PausableClock>,
    /// The tick the M in the driver sleeps until.
    parked_until: SleepGate,
    shutdown: AtomicBool,
    reactor: Arc<Reactor>,
}

/// One P's timers. A [`crate::time::Sleep`] holds its shard by `Arc`, so creating and
/// dropping a timer touches the reference count of its own P's shard, not a count every P
/// shares (a shared count was a tenth of the CPU time under many timers). Aligned so that
/// no two shards share a cache line.
#[repr(align(128))]
pub(crate) struct TimerShard {
    index: usize,
    wheel: Mutex<Wheel>,
    /// At most the earliest deadline in `wheel`; written under the lock, read by anyone.
    next: EarliestTick,
    common: Arc<Common>,
}

/// What registering or polling a timer found.
pub(crate) enum TimerPoll {
    /// The deadline passed (or the runtime shut down).
    Fired,
    /// Waiting; `wake_driver` says whether the driving M must re-read the wheels.
    Pending { wake_driver: bool },
}

/// Which shards a turn of the driver fires.
#[derive(Clone, Copy)]
pub(crate) enum Turn {
    /// A busy M's maintenance turn, by the M of P `home` (if it holds one).
    Maintenance { home: Option<usize> },
    /// The turn of the M that slept in the driver.
    Parked,
    /// Right after `gpm::time::advance` moved the paused clock: every shard, due or not,
    /// so that each wheel's last turn is the new time (a timer then reset or registered
    /// at a passed deadline fires at once, as tokio's, whose one wheel turns at every
    /// advance).
    Advanced,
}

impl Turn {
    /// Whether the turn advances every shard's wheel, due or not (only `Advanced`).
    fn turns_every_wheel(self) -> bool {
        matches!(self, Turn::Advanced)
    }
}

impl Common {
    /// Whether a new timer for `deadline` (tick `tick`) has already passed, given the tick
    /// its shard's wheel last turned to (`elapsed`). A tick the wheel has turned past is
    /// due; one just after it (a sleep of zero, a deadline a moment ago) asks the clock;
    /// any later one is taken as not due without reading a clock, as tokio does (it
    /// compares with its wheel's last turn only): if it has passed anyway (the shard's
    /// wheel has been idle a while), the registration's `next` makes the next turn fire
    /// it, microseconds later. Only "due" must never be wrong. Reading a clock here, even
    /// the coarse one, was a sixth of the CPU time under 20k timers (vDSO calls).
    fn already_due(&self, tick: u64, deadline: Instant, elapsed: u64) -> bool {
        tick <= elapsed || (tick <= elapsed.saturating_add(1) && deadline <= self.clock.now())
    }

    /// The tick at which `deadline` counts as reached (rounded up).
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.start);
        let whole_ms = since.subsec_millis();
        let partial = u64::from(!since.subsec_nanos().is_multiple_of(1_000_000));
        since
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(whole_ms) + partial)
    }

    /// The tick of `now` (rounded down), by the runtime's clock.
    fn now_tick(&self) -> u64 {
        let since = self.clock.now().saturating_duration_since(self.start);
        since
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(since.subsec_millis()))
    }
}

impl TimeDriver {
    /// A driver with a shard for each of `processors` Ps and one for threads without a P;
    /// `reactor` is woken when a new timer is earlier than the driver's sleep.
    pub(crate) fn new(processors: usize, reactor: Arc<Reactor>, start_paused: bool) -> TimeDriver {
        let start = Instant::now();
        let common = Arc::new(Common {
            start,
            clock: Arc::new(PausableClock::new(start, start_paused)),
            parked_until: SleepGate::new(),
            shutdown: AtomicBool::new(false),
            reactor,
        });
        let shards = (0..=processors)
            .map(|index| {
                Arc::new(TimerShard {
                    index,
                    wheel: Mutex::new(Wheel::new()),
                    next: EarliestTick::new(),
                    common: Arc::clone(&common),
                })
            })
            .collect();
        TimeDriver { shards, common }
    }

    /// The shard of P `processor`, or the extra one for a thread without a P.
    pub(crate) fn shard(&self, processor: Option<usize>) -> Arc<TimerShard> {
        let outside = self.shards.len() - 1;
        let index = processor.map_or(outside, |p| p.min(outside));
        Arc::clone(&self.shards[index])
    }

    /// The Ps this driver has shards for.
    pub(crate) fn processors(&self) -> usize {
        self.shards.len() - 1
    }

    /// The clock the timers read.
    pub(crate) fn clock(&self) -> &Arc<PausableClock> {
        &self.common.clock
    }

    /// Auto-advance (`time/pausable.rs`): moves the paused clock to the earliest shard
    /// bound, if one is later than now. `false` if there is no timer to jump to.
    pub(crate) fn advance_to_next_timer(&self) -> bool {
        let earliest = self.shards.iter().map(|s| s.next.get()).min();
        match earliest {
            Some(tick) if tick != NO_TIMER => {
                let at = self.common.start + Duration::from_millis(tick);
                self.common.clock.advance_to(at);
                true
            }
            _ => false,
        }
    }

    /// Timers alive (waiting, or fired and not yet observed by their owner).
    pub(crate) fn live_timers(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    /// Called by the M about to sleep in the driver: how long it may sleep for the timers
    /// (module docs: the parking side of the Dekker pair).
    pub(crate) fn begin_park(&self) -> Option<Duration> {
        let common = &self.common;
        let until = common.parked_until.close(|| {
            let earliest = self.shards.iter().map(|s| s.next.get()).min();
            earliest.unwrap_or(NO_TIMER)
        });
        if until == NO_TIMER {
            return None;
        }
        Some(Duration::from_millis(
            until.saturating_sub(common.now_tick()),
        ))
    }

    /// Called by the driving M after its sleep (`Turn::Parked`) and by busy Ms between polls:
    /// fires the due timers of the shards the turn covers (module docs), handing the wakers
    /// to `wake`.
    pub(crate) fn fire_due(&self, turn: Turn, wake: &mut Vec<Waker>) {
        if let Turn::Parked = turn {
            self.common.parked_until.open();
        }
        let idle = || self.shards.iter().all(|s| s.next.get() == NO_TIMER);
        if !turn.turns_every_wheel() && idle() {
            return;
        }
        self.fire_due_at(turn, self.common.now_tick(), wake);
    }

    /// [`TimeDriver::fire_due`] with the clock read: `now` is the current tick.
    fn fire_due_at(&self, turn: Turn, now: u64, wake: &mut Vec<Waker>) {
        let every_shard = turn.turns_every_wheel();
        for shard in self.shards.iter() {
            let foreign = matches!(turn, Turn::Maintenance { home } if home != Some(shard.index));
            let grace = if foreign { FOREIGN_GRACE_TICKS } else { 0 };
            if shard.next.get().saturating_add(grace) > now && !every_shard {
                continue;
            }
            let wheel = if foreign {
                match shard.wheel.try_lock() {
                    Ok(wheel) => wheel,
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => continue,
                }
            } else {
                shard.lock()
            };
            shard.advance(wheel, now, wake);
        }
    }

    /// Fires every timer and makes later ones fire at once: nothing waits on a dead runtime.
    pub(crate) fn shutdown(&self) {
        self.common.shutdown.store(true, SeqCst);
        let mut fired = Vec::new();
        for shard in self.shards.iter() {
            shard.lock().fire_all(&mut fired);
            shard.next.set(NO_TIMER);
        }
        super::wake_all(fired);
    }
}

impl TimerShard {
    /// Registers a timer for `deadline` if `key` is `None`, else polls (and re-arms the
    /// waker of) the existing one. A fired timer is freed and `key` cleared.
    pub(crate) fn poll(
        &self,
        key: &mut Option<Key>,
        deadline: Instant,
        waker: &Waker,
    ) -> TimerPoll {
        let Some(registered) = *key else {
            return self.register(key, deadline, waker);
        };
        let mut wheel = self.lock();
        if wheel.poll(registered, waker) {
            wheel.remove(registered);
            *key = None;
            return TimerPoll::Fired;
        }
        TimerPoll::Pending { wake_driver: false }
    }

    fn register(&self, key: &mut Option<Key>, deadline: Instant, waker: &Waker) -> TimerPoll {
        let common = &*self.common;
        let tick = common.deadline_tick(deadline);
        let lowered = {
            let mut wheel = self.lock();
            // Read under the lock: `shutdown` sets the flag before it locks each shard
            // to fire it, so a registration either sees the flag or is fired by it.
            if common.shutdown.load(SeqCst) {
                return TimerPoll::Fired;
            }
            if common.already_due(tick, deadline, wheel.elapsed()) {
                return TimerPoll::Fired;
            }
            *key = Some(wheel.insert(tick, waker.clone()));
            self.next.lower(tick)
        };
        TimerPoll::Pending {
            wake_driver: lowered && common.parked_until.lower(tick),
        }
    }

    /// Moves registered timer `key` to `deadline`; `true` if the driver must be woken. A
    /// deadline already due (by [`Common::already_due`], the test of a new timer) fires
    /// the timer at once and wakes its waker, as tokio's reset does.
    pub(crate) fn reset(&self, key: Key, deadline: Instant) -> bool {
        let common = &*self.common;
        let tick = common.deadline_tick(deadline);
        let (fired, lowered) = {
            let mut wheel = self.lock();
            let elapsed = wheel.elapsed();
            if common.already_due(tick, deadline, elapsed) {
                // Filed at the wheel's last turn, the entry fires inside `reset`.
                (wheel.reset(key, elapsed), false)
            } else {
                (wheel.reset(key, tick), self.next.lower(tick))
            }
        };
        if let Some(waker) = fired {
            waker.wake();
        }
        lowered && common.parked_until.lower(tick)
    }

    /// Cancels timer `key` (its owner was dropped or saw it fire).
    pub(crate) fn remove(&self, key: Key) {
        self.lock().remove(key);
    }

    /// Now, by the clock of this shard's runtime.
    pub(crate) fn now(&self) -> Instant {
        self.common.clock.now()
    }

    /// Wakes the M sleeping in the driver (a new timer is earlier than its sleep).
    pub(crate) fn wake_driver(&self) {
        self.common.reactor.wake();
    }

    fn advance(&self, mut wheel: MutexGuard<'_, Wheel>, now: u64, wake: &mut Vec<Waker>) {
        wheel.advance(now, wake);
        self.next.set(wheel.next_deadline().unwrap_or(NO_TIMER));
    }

    fn lock(&self) -> MutexGuard<'_, Wheel> {
        self.wheel.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver() -> TimeDriver {
        TimeDriver::new(2, Arc::new(Reactor::new().expect("epoll")), false)
    }

    fn register(
        time: &TimeDriver,
        processor: Option<usize>,
        at: Instant,
    ) -> (Arc<TimerShard>, Option<Key>, TimerPoll) {
        let shard = time.shard(processor);
        let mut key = None;
        let poll = shard.poll(&mut key, at, Waker::noop());
        (shard, key, poll)
    }

    #[test]
    fn ticks_round_deadlines_up_and_now_down() {
        let time = driver();
        let common = &time.common;
        let start = common.start;
        assert_eq!(common.deadline_tick(start), 0);
        assert_eq!(common.deadline_tick(start + Duration::from_nanos(1)), 1);
        assert_eq!(common.deadline_tick(start + Duration::from_millis(7)), 7);
        assert_eq!(
            common.deadline_tick(start + Duration::from_micros(7_001)),
            8
        );
        let later = start + Duration::from_secs(3) + Duration::from_micros(500);
        assert_eq!(common.deadline_tick(later), 3_001);
    }

    #[test]
    fn a_new_timer_is_due_by_the_wheels_last_turn_or_by_the_clock_at_its_edge() {
        let time = driver();
        let common = &time.common;
        // Ticks well past the driver's start, so that `tick - 3` is a real earlier turn.
        let past = common.start + Duration::from_millis(100);
        common.clock.pause().unwrap();
        common.clock.advance(Duration::from_millis(200)).unwrap();
        let tick = common.deadline_tick(past);
        assert!(
            common.already_due(tick, past, tick),
            "the wheel turned past it"
        );
        assert!(
            common.already_due(tick, past, tick - 1),
            "at the edge the clock decides"
        );
        let later = common.clock.now() + Duration::from_secs(5);
        assert!(!common.already_due(common.deadline_tick(later), later, tick));
        // A passed deadline far beyond the wheel's last turn is left to the next turn.
        assert!(!common.already_due(tick, past, tick.saturating_sub(3)));
    }

    #[test]
    fn a_timer_lives_in_the_shard_of_its_processor() {
        let time = driver();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (shard, key, poll) = register(&time, Some(1), deadline);
        assert!(matches!(poll, TimerPoll::Pending { .. }));
        assert_eq!(shard.index, 1);
        assert_eq!(time.shards[1].lock().len(), 1);
        assert!(time.shards[1].next.get() < NO_TIMER);
        let (outside, outside_key, _) = register(&time, None, deadline);
        assert_eq!(outside.index, 2);
        assert_eq!(
            time.shard(Some(7)).index,
            2,
            "an unknown P uses the extra shard"
        );
        shard.remove(key.unwrap());
        outside.remove(outside_key.unwrap());
        assert_eq!(time.live_timers(), 0);
    }

    #[test]
    fn a_parked_driver_is_woken_only_by_an_earlier_timer() {
        let time = driver();
        let far = Instant::now() + Duration::from_secs(60);
        let mut timers = vec![register(&time, Some(0), far)];
        let sleep = time.begin_park().expect("a timer is waiting");
        assert!(sleep > Duration::from_secs(50));
        timers.push(register(&time, Some(1), far + Duration::from_secs(1)));
        assert!(matches!(
            timers[1].2,
            TimerPoll::Pending { wake_driver: false }
        ));
        let sooner = far - Duration::from_secs(30);
        timers.push(register(&time, Some(1), sooner));
        assert!(matches!(
            timers[2].2,
            TimerPoll::Pending { wake_driver: true }
        ));
        time.fire_due(Turn::Parked, &mut Vec::new());
        // Nobody sleeps in the driver now: nothing to wake.
        timers.push(register(&time, Some(0), sooner - Duration::from_secs(1)));
        assert!(matches!(
            timers[3].2,
            TimerPoll::Pending { wake_driver: false }
        ));
        for (shard, key, _) in timers {
            shard.remove(key.unwrap());
        }
    }

    #[test]
    fn maintenance_fires_due_timers_of_every_shard() {
        let time = driver();
        let soon = Instant::now() + Duration::from_millis(2);
        let mut timers: Vec<_> = [Some(0), Some(1), None]
            .into_iter()
            .map(|processor| register(&time, processor, soon))
            .collect();
        let mut fired = Vec::new();
        while fired.len() < 3 {
            std::thread::yield_now();
            time.fire_due(Turn::Maintenance { home: Some(0) }, &mut fired);
        }
        assert!(Instant::now() >= soon);
        for (shard, key, _) in &mut timers {
            assert!(matches!(
                shard.poll(key, soon, Waker::noop()),
                TimerPoll::Fired
            ));
            assert!(key.is_none());
        }
        assert_eq!(time.live_timers(), 0);
        assert!(time.shards.iter().all(|s| s.next.get() == NO_TIMER));
    }

    #[test]
    fn maintenance_leaves_another_ps_shard_to_its_owner_for_a_tick() {
        let time = driver();
        let at = Instant::now() + Duration::from_secs(30);
        let tick = time.common.deadline_tick(at);
        let mut timers: Vec<_> = [Some(0), Some(1)]
            .into_iter()
            .map(|processor| register(&time, processor, at))
            .collect();
        let mut fired = Vec::new();
        time.fire_due_at(Turn::Maintenance { home: Some(0) }, tick, &mut fired);
        assert_eq!(
            fired.len(),
            1,
            "only P 0's own timer is due for P 0's maintenance"
        );
        time.fire_due_at(Turn::Maintenance { home: Some(0) }, tick + 1, &mut fired);
        assert_eq!(
            fired.len(),
            2,
            "a tick overdue, P 1's timer is fired by P 0"
        );
        for (shard, key, _) in &mut timers {
            assert!(matches!(
                shard.poll(key, at, Waker::noop()),
                TimerPoll::Fired
            ));
        }
        let (shard, mut key, _) = register(&time, Some(1), at + Duration::from_secs(1));
        let tick = time.common.deadline_tick(at + Duration::from_secs(1));
        time.fire_due_at(Turn::Parked, tick, &mut fired);
        assert_eq!(
            fired.len(),
            3,
            "the parked turn fires every due shard at once"
        );
        let key = &mut key;
        assert!(matches!(
            shard.poll(key, at, Waker::noop()),
            TimerPoll::Fired
        ));
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn a_reset_to_a_passed_deadline_fires_at_once_and_wakes() {
        let time = driver();
        let count = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&count));
        let shard = time.shard(Some(0));
        let mut key = None;
        let later = Instant::now() + Duration::from_secs(60);
        assert!(matches!(
            shard.poll(&mut key, later, &waker),
            TimerPoll::Pending { .. }
        ));
        let registered = key.expect("registered");
        shard.reset(registered, later + Duration::from_secs(1));
        assert_eq!(count.0.load(SeqCst), 0, "a later deadline only moves it");
        // Tick 0: the wheel has turned to it (a passed deadline, no clock read needed).
        let past = time.common.start;
        shard.reset(registered, past);
        assert_eq!(count.0.load(SeqCst), 1, "the stored waker is woken");
        assert!(matches!(
            shard.poll(&mut key, past, &waker),
            TimerPoll::Fired
        ));
        assert_eq!(time.live_timers(), 0);
    }

    #[test]
    fn an_advance_turns_every_wheel_to_the_new_time() {
        let time = driver();
        time.common.clock.pause().unwrap();
        time.common
            .clock
            .advance(Duration::from_millis(100))
            .unwrap();
        time.fire_due(Turn::Advanced, &mut Vec::new());
        let now_tick = time.common.now_tick();
        assert!(time.shards.iter().all(|s| s.lock().elapsed() == now_tick));
        let (_, key, poll) = register(&time, Some(1), time.common.clock.now());
        assert!(matches!(poll, TimerPoll::Fired) && key.is_none());
    }

    #[test]
    fn shutdown_fires_everything_and_later_registrations_fire_at_once() {
        let time = driver();
        let far = Instant::now() + Duration::from_secs(60);
        let (shard, mut key, _) = register(&time, Some(0), far);
        time.shutdown();
        assert!(matches!(
            shard.poll(&mut key, far, Waker::noop()),
            TimerPoll::Fired
        ));
        let (_, late, poll) = register(&time, Some(1), far);
        assert!(matches!(poll, TimerPoll::Fired) && late.is_none());
        assert_eq!(time.live_timers(), 0);
    }
}

//! Stop the world: bring every P to a safepoint, look at a consistent scheduler, resume.
//!
//! # Design (Go's `stopTheWorldWithSema`, reduced to what a user-level runtime needs)
//!
//! Every P has a state word. The M holding a P keeps it up to date at three moments: it
//! passes a **safepoint** between two polls, it goes **idle** (about to park), it **exits**
//! (shutdown). A requester stops the world in four steps:
//!
//! 1. It takes the request lock (concurrent requests are served one after the other, never
//!    interleaved) and the state lock, opens a new generation and raises `requested`.
//! 2. It claims every idle or exited P itself (`IDLE -> IDLE_STOPPED`): an idle P holds no
//!    task and counts as stopped at once, without being woken. A P that wakes up while the
//!    world is stopped waits in [`World::leave_idle`] until the world resumes.
//! 3. Every running P sees `requested` at its next safepoint, publishes a snapshot of its
//!    queues (only its holder may read them), marks itself `STOPPED` and waits. The
//!    requester waits until every P is stopped, idle-stopped or exited. A long poll delays
//!    this step until it returns, and the report names that P ("late").
//! 4. The requester runs the user's closure with the snapshots, then flips every stopped P
//!    back (`STOPPED -> RUNNING`, `IDLE_STOPPED -> IDLE`) under the state lock and wakes them.
//!
//! # Why no P is missed
//!
//! A P going idle stores `IDLE` and then reads `requested` (both `SeqCst`); the requester
//! stores `requested` and then reads each state (both `SeqCst`). So either the requester sees
//! `IDLE` and claims the P, or the P sees `requested` and claims itself; the claim is a
//! compare-and-swap done under the state lock, so exactly one of them counts the P. A
//! running P is never claimed by the requester: it stops itself at a safepoint. The loom
//! models at the bottom check this handshake, the release, and two concurrent requesters.
//!
//! # Threads without a P
//!
//! An M blocked in `block_in_place` has handed its P to another M, which keeps passing
//! safepoints, so it does not hold the world up; nor do blocking-pool threads, which hold no
//! P. A requester that is itself polling a task on P `k` passes `Some(k)`: its own P counts as
//! stopped (it is inside this call), which keeps a request from a task from deadlocking.
//!
//! # Rejected options
//!
//! * Waking idle Ps so that they stop at a safepoint: simpler, but it costs a wake-up per
//!   idle P per request and makes the pause grow with the number of sleepers.
//! * Preempting a long poll (Go's async preemption by signal): futures cannot be stopped
//!   mid-poll safely, so the world waits and the report says who made it wait.

use crate::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::time::{Duration, Instant};

const RUNNING: u8 = 0;
const IDLE: u8 = 1;
const STOPPED: u8 = 2;
const IDLE_STOPPED: u8 = 3;
const EXITED: u8 = 4;

/// How a P came to be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// It was running tasks and stopped at its next safepoint.
    Safepoint,
    /// It was idle (parked or about to park) and was claimed without waking it.
    Idle,
    /// Its M had exited (runtime shutting down).
    Exited,
    /// It is the P of the task that asked for the stop.
    Requester,
}

/// One P's part of a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PStop<S> {
    /// How it stopped.
    pub kind: StopKind,
    /// From the request to the moment this P was stopped.
    pub time_to_safepoint: Duration,
    /// The P's own view of its queues at that moment (idle, exited, requester: `S::default()`).
    pub snapshot: S,
}

/// What a stop cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// Per P: how it stopped and how long it took.
    pub processors: Vec<(StopKind, Duration)>,
    /// From the request until every P was stopped.
    pub time_to_stop: Duration,
    /// From the request until the world resumed (includes the closure), Go's "pause".
    pub pause: Duration,
    /// The P that reached its safepoint last, if any had to (the one that held the world up).
    pub late: Option<usize>,
}

struct Inner<S> {
    /// A request is between steps 1 and 4.
    active: bool,
    started: Option<Instant>,
    stops: Vec<Option<PStop<S>>>,
    stopped: usize,
}

/// The stop-the-world state shared by all Ps of one scheduler.
pub struct World<S> {
    states: Box<[CachePadded<AtomicU8>]>,
    requested: AtomicBool,
    inner: Mutex<Inner<S>>,
    changed: Condvar,
    requests: Mutex<()>,
}

impl<S: Default> World<S> {
    /// A world of `processors` Ps, all running.
    pub fn new(processors: usize) -> World<S> {
        World {
            states: (0..processors)
                .map(|_| CachePadded::new(AtomicU8::new(RUNNING)))
                .collect(),
            requested: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                active: false,
                started: None,
                stops: Vec::new(),
                stopped: 0,
            }),
            changed: Condvar::new(),
            requests: Mutex::new(()),
        }
    }

    /// Called by the holder of P `p` between polls: returns at once unless a stop was
    /// requested, in which case it publishes `snapshot()` and waits until the world resumes.
    #[inline]
    pub fn safepoint(&self, p: usize, snapshot: impl FnOnce() -> S) {
        if self.requested.load(Ordering::Relaxed) {
            self.stop_at_safepoint(p, snapshot);
        }
    }

    #[cold]
    fn stop_at_safepoint(&self, p: usize, snapshot: impl FnOnce() -> S) {
        let mut inner = lock(&self.inner);
        if !inner.active || !self.claim(p, RUNNING, STOPPED) {
            return;
        }
        let snapshot = snapshot();
        record(&mut inner, p, StopKind::Safepoint, snapshot);
        self.changed.notify_all();
        drop(self.wait_while(inner, p, STOPPED));
    }

    /// Called by the holder of P `p` before it parks.
    pub fn enter_idle(&self, p: usize) {
        self.states[p].swap(IDLE, Ordering::SeqCst);
        if self.request_seen() {
            self.claim_self(p, IDLE, IDLE_STOPPED, StopKind::Idle);
        }
    }

    /// Called by the holder of P `p` when it wakes up; waits while the world is stopped.
    pub fn leave_idle(&self, p: usize) {
        // Loops because a new request may claim the P again between the resume and the
        // claim below.
        while !self.claim(p, IDLE, RUNNING) {
            let inner = lock(&self.inner);
            drop(self.wait_while(inner, p, IDLE_STOPPED));
        }
    }

    /// Called when the M holding P `p` exits for good (shutdown).
    pub fn exit(&self, p: usize) {
        self.states[p].swap(EXITED, Ordering::SeqCst);
        if self.request_seen() {
            let _inner = lock(&self.inner);
            self.changed.notify_all();
        }
    }

    /// Whether a stop is being requested or in force (a cheap hint for spinning loops).
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// Stops every P, runs `inspect` with each P's stop (indexed by P), resumes the world.
    /// `requester` is the P of the calling thread if it is polling a task of this scheduler.
    pub fn stop<R>(
        &self,
        requester: Option<usize>,
        inspect: impl FnOnce(&[PStop<S>]) -> R,
    ) -> (R, StopReport) {
        let _serial = lock(&self.requests);
        let started = Instant::now();
        let inner = self.open_request(started, requester);
        let mut inner = self.wait_for_all(inner);
        let time_to_stop = started.elapsed();
        let stops: Vec<PStop<S>> = inner.stops.iter_mut().map(|s| s.take().unwrap()).collect();
        drop(inner);
        let result = inspect(&stops);
        self.resume();
        let report = report(&stops, time_to_stop, started.elapsed());
        (result, report)
    }

    /// Steps 1 and 2: raise the flag and claim every P that cannot run a task.
    fn open_request(&self, started: Instant, requester: Option<usize>) -> MutexGuard<'_, Inner<S>> {
        let mut inner = lock(&self.inner);
        inner.active = true;
        inner.started = Some(started);
        inner.stopped = 0;
        inner.stops = (0..self.states.len()).map(|_| None).collect();
        self.requested.swap(true, Ordering::SeqCst);
        for p in 0..self.states.len() {
            let kind = match self.state_of(p) {
                RUNNING if Some(p) == requester => StopKind::Requester,
                IDLE => StopKind::Idle,
                EXITED => StopKind::Exited,
                _ => continue,
            };
            let claimed = match kind {
                StopKind::Requester => self.claim(p, RUNNING, STOPPED),
                StopKind::Idle => self.claim(p, IDLE, IDLE_STOPPED),
                _ => true,
            };
            if claimed {
                record(&mut inner, p, kind, S::default());
            }
        }
        inner
    }

    /// Step 3: wait until every P is accounted for. Exits can happen while waiting.
    fn wait_for_all<'a>(&'a self, mut inner: MutexGuard<'a, Inner<S>>) -> MutexGuard<'a, Inner<S>> {
        loop {
            for p in 0..self.states.len() {
                if inner.stops[p].is_none() && self.state_of(p) == EXITED {
                    record(&mut inner, p, StopKind::Exited, S::default());
                }
            }
            if inner.stopped == self.states.len() {
                return inner;
            }
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Step 4: every P back to what it was doing.
    fn resume(&self) {
        let mut inner = lock(&self.inner);
        self.requested.store(false, Ordering::SeqCst);
        inner.active = false;
        inner.started = None;
        for p in 0..self.states.len() {
            let _ = self.claim(p, STOPPED, RUNNING) || self.claim(p, IDLE_STOPPED, IDLE);
        }
        self.changed.notify_all();
    }

    /// The idle P claims itself when it saw the request before the requester saw it idle.
    fn claim_self(&self, p: usize, from: u8, to: u8, kind: StopKind) {
        let mut inner = lock(&self.inner);
        if inner.active && self.claim(p, from, to) {
            record(&mut inner, p, kind, S::default());
            self.changed.notify_all();
        }
    }

    /// The two sides of the "nobody is missed" argument each write their own word and then
    /// read the other's. Both reads are read-modify-writes, which see the latest value of
    /// the word; with the writes also being read-modify-writes this is the classic
    /// store-then-load handshake, and it holds under loom (which does not model `SeqCst`
    /// plain loads and stores as a single total order).
    fn request_seen(&self) -> bool {
        self.requested.fetch_or(false, Ordering::SeqCst)
    }

    fn state_of(&self, p: usize) -> u8 {
        self.states[p].fetch_or(0, Ordering::SeqCst)
    }

    fn claim(&self, p: usize, from: u8, to: u8) -> bool {
        self.states[p]
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn wait_while<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner<S>>,
        p: usize,
        state: u8,
    ) -> MutexGuard<'a, Inner<S>> {
        while self.states[p].load(Ordering::SeqCst) == state {
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
        inner
    }
}

fn record<S>(inner: &mut Inner<S>, p: usize, kind: StopKind, snapshot: S) {
    let time_to_safepoint = inner.started.map_or(Duration::ZERO, |t| t.elapsed());
    inner.stops[p] = Some(PStop {
        kind,
        time_to_safepoint,
        snapshot,
    });
    inner.stopped += 1;
}

fn report<S>(stops: &[PStop<S>], time_to_stop: Duration, pause: Duration) -> StopReport {
    let late = stops
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StopKind::Safepoint)
        .max_by_key(|(_, s)| s.time_to_safepoint)
        .map(|(p, _)| p);
    StopReport {
        processors: stops
            .iter()
            .map(|s| (s.kind, s.time_to_safepoint))
            .collect(),
        time_to_stop,
        pause,
        late,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S> fmt::Debug for World<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("processors", &self.states.len())
            .field("requested", &self.requested.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn all_idle_world_stops_without_waking_anyone() {
        let world: World<u32> = World::new(3);
        for p in 0..3 {
            world.enter_idle(p);
        }
        let (kinds, report) = world.stop(None, |stops| {
            stops.iter().map(|s| s.kind).collect::<Vec<_>>()
        });
        assert_eq!(kinds, vec![StopKind::Idle; 3]);
        assert_eq!(report.late, None);
        for p in 0..3 {
            world.leave_idle(p);
        }
    }

    #[test]
    fn running_processors_publish_snapshots_and_nothing_runs_while_stopped() {
        let world = Arc::new(World::<usize>::new(2));
        let in_poll = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|p| {
                let (world, in_poll, stop) = (world.clone(), in_poll.clone(), stop.clone());
                thread::spawn(move || {
                    let mut polls = 0;
                    while !stop.load(Ordering::SeqCst) {
                        in_poll.fetch_add(1, Ordering::SeqCst);
                        polls += 1;
                        in_poll.fetch_sub(1, Ordering::SeqCst);
                        world.safepoint(p, || 100 + p);
                    }
                    world.exit(p);
                    polls
                })
            })
            .collect();
        for _ in 0..50 {
            let (snapshots, report) = world.stop(None, |stops| {
                assert_eq!(
                    in_poll.load(Ordering::SeqCst),
                    0,
                    "a poll ran in a stopped world"
                );
                stops.iter().map(|s| s.snapshot).collect::<Vec<_>>()
            });
            assert!(report.pause >= report.time_to_stop);
            assert!(snapshots.iter().all(|&s| s == 100 || s == 101 || s == 0));
        }
        stop.store(true, Ordering::SeqCst);
        for worker in workers {
            assert!(worker.join().unwrap() > 0);
        }
        // Every P has exited: a stop still completes.
        let (_, report) = world.stop(None, |_| ());
        assert!(report
            .processors
            .iter()
            .all(|(k, _)| *k == StopKind::Exited));
    }

    #[test]
    fn requester_on_a_processor_does_not_wait_for_itself() {
        let world: World<()> = World::new(2);
        world.enter_idle(1);
        let (_, report) = world.stop(Some(0), |_| ());
        assert_eq!(report.processors[0].0, StopKind::Requester);
        assert_eq!(report.processors[1].0, StopKind::Idle);
        // P 0 is running again, P 1 idle again.
        world.safepoint(0, || ());
        world.leave_idle(1);
    }

    #[test]
    fn late_processor_is_named() {
        let world = Arc::new(World::<()>::new(2));
        world.enter_idle(0);
        let (go, started) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let slow = {
            let (world, go, started) = (world.clone(), go.clone(), started.clone());
            thread::spawn(move || {
                started.store(true, Ordering::SeqCst);
                // A long poll: it returns only after the stop was requested.
                while !world.is_requested() {
                    std::hint::spin_loop();
                }
                while !go.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                world.safepoint(1, || ());
            })
        };
        while !started.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        let releaser = {
            let (world, go) = (world.clone(), go.clone());
            thread::spawn(move || {
                while !world.is_requested() {
                    std::hint::spin_loop();
                }
                go.store(true, Ordering::SeqCst);
            })
        };
        let (_, report) = world.stop(None, |_| ());
        assert_eq!(report.late, Some(1));
        assert_eq!(report.processors[1].0, StopKind::Safepoint);
        slow.join().unwrap();
        releaser.join().unwrap();
    }
}

#[cfg(all(test, gpm_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    /// Work for a sleeping P: a flag and a condition variable, standing in for a parker.
    #[derive(Default)]
    struct Work {
        ready: Mutex<bool>,
        posted: Condvar,
    }

    impl Work {
        fn post(&self) {
            *self.ready.lock().unwrap() = true;
            self.posted.notify_all();
        }

        fn wait(&self) {
            let mut ready = self.ready.lock().unwrap();
            while !*ready {
                ready = self.posted.wait(ready).unwrap();
            }
        }
    }

    /// A P that polls (counted in `in_poll`), passes a safepoint, goes idle and really
    /// sleeps until work is posted, wakes, polls again, exits.
    fn processor(world: Arc<World<()>>, in_poll: Arc<AtomicUsize>, work: Arc<Work>) {
        in_poll.fetch_add(1, Ordering::SeqCst);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        world.safepoint(0, || ());
        world.enter_idle(0);
        work.wait();
        world.leave_idle(0);
        in_poll.fetch_add(1, Ordering::SeqCst);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        world.safepoint(0, || ());
        world.exit(0);
    }

    /// The world stops whether the P is polling, about to sleep or asleep; no poll runs
    /// while it is stopped; nobody deadlocks (the sleeper is only woken after the stop).
    #[test]
    fn stop_never_overlaps_a_poll_and_never_deadlocks() {
        loom::model(|| {
            let world = Arc::new(World::<()>::new(1));
            let in_poll = Arc::new(AtomicUsize::new(0));
            let work = Arc::new(Work::default());
            let p0 = {
                let (world, in_poll, work) = (world.clone(), in_poll.clone(), work.clone());
                thread::spawn(move || processor(world, in_poll, work))
            };
            world.stop(None, |_| {
                assert_eq!(in_poll.load(Ordering::SeqCst), 0);
            });
            work.post();
            p0.join().unwrap();
        });
    }

    /// Two requesters and a P that goes to sleep: both stops complete, one after the other.
    #[test]
    fn concurrent_requests_are_serialised() {
        loom::model(|| {
            let world = Arc::new(World::<()>::new(1));
            let work = Arc::new(Work::default());
            let other = {
                let world = world.clone();
                thread::spawn(move || {
                    world.stop(None, |_| ());
                })
            };
            let p0 = {
                let (world, work) = (world.clone(), work.clone());
                thread::spawn(move || {
                    world.safepoint(0, || ());
                    world.enter_idle(0);
                    work.wait();
                    world.leave_idle(0);
                    world.exit(0);
                })
            };
            world.stop(None, |_| ());
            other.join().unwrap();
            work.post();
            p0.join().unwrap();
        });
    }
}

//! Stop the world: bring every P to a safepoint, look at a consistent scheduler, resume.
//!
//! # Design (Go's `stopTheWorldWithSema`, reduced to what a user-level runtime needs)
//!
//! Every P has a state word. The M holding a P keeps it up to date at three moments: it
//! passes a **safepoint** between two polls, it goes **idle** (about to park), it **exits**
//! (shutdown). A requester stops the world in four steps:
//!
//! 1. It waits for its turn: a request is *active* from here to step 4 and the next one
//!    waits on the state lock's condition variable, so concurrent requests are served one
//!    after the other, never interleaved. Still under the state lock, it opens a new
//!    generation and raises `requested`.
//! 2. It claims every idle or exited P itself (`IDLE -> IDLE_STOPPED`): an idle P holds no
//!    task and counts as stopped at once, without being woken. A P that wakes up while the
//!    world is stopped waits in [`World::leave_idle`] until the world resumes.
//! 3. Every running P sees `requested` at its next safepoint, publishes a snapshot of its
//!    queues (only its holder may read them), marks itself `STOPPED` and waits. The
//!    requester waits until every P is stopped, idle-stopped or exited. A long poll delays
//!    this step until it returns, and the report names that P ("late").
//! 4. The requester runs the user's closure with the snapshots, then flips every stopped P
//!    back (`STOPPED -> RUNNING`, `IDLE_STOPPED -> IDLE`) under the state lock, ends its
//!    turn and wakes everyone waiting.
//!
//! # Requests from tasks
//!
//! A requester that is itself polling a task on P `k` calls [`World::stop_on`]. Its M is
//! inside the call, so P `k` runs nothing until the call returns: P `k` counts as stopped,
//! and the requester publishes P `k`'s snapshot itself, read from the calling thread (the
//! runtime reads its own P's queues; nothing but thieves, which are stopping too, changes
//! them meanwhile).
//!
//! * For its own request, step 2 claims P `k` (`RUNNING -> STOPPED`, [`StopKind::Requester`]).
//! * While it waits for its turn behind another request, it passes P `k`'s safepoint for
//!   that request: each time it wakes and finds a request active, it claims P `k`
//!   (`RUNNING -> STOPPED`, [`StopKind::Safepoint`]), publishes the snapshot and notifies,
//!   as in step 3. That request's step 4 flips P `k` back to `RUNNING` and wakes the waiter,
//!   which looks again: its turn has come, or another request got in first and it stops
//!   P `k` for that one too. Without this, the request ahead would wait for P `k`'s
//!   safepoint while P `k`'s M waits for that request to end (issue 12). Go parks the
//!   goroutine waiting on `worldsema` and its P runs on until a real safepoint; a poll
//!   cannot be suspended, so here the waiting M stands in for its P's safepoint.
//!
//! # Why no P is missed
//!
//! A P going idle stores `IDLE` and then reads `requested` (both `SeqCst`); the requester
//! stores `requested` and then reads each state (both `SeqCst`). So either the requester sees
//! `IDLE` and claims the P, or the P sees `requested` and claims itself; the claim is a
//! compare-and-swap done under the state lock, so exactly one of them counts the P. A
//! running P is never claimed by a requester for another P: it stops itself at a safepoint.
//!
//! A P whose M waits for its turn to request is `RUNNING` and stops itself in the same
//! way, from its wait loop, under the state lock. It cannot miss a request: a request is
//! only opened after the previous one's step 4, which notifies the waiter, so the waiter
//! wakes after every change of turn and claims its P for whichever request is then active.
//! Under the state lock, while a request is active, that P is either `RUNNING` (not yet
//! counted: step 4 of the previous request flipped it back) or `STOPPED` (counted for this
//! request), so the compare-and-swap counts it exactly once per request.
//!
//! The loom models at the bottom check this handshake, the release, two concurrent
//! requesters, a task requester racing a thread requester (also while another P goes to
//! sleep), and two task requesters on two Ps.
//!
//! # Threads without a P
//!
//! An M blocked in `block_in_place` has handed its P to another M, which keeps passing
//! safepoints, so it does not hold the world up; nor do blocking-pool threads, which hold no
//! P. Such a thread requests with [`World::stop`]. A request from inside `inspect` (or from
//! a task of one runtime stopping another runtime whose tasks stop the first) waits for
//! itself: don't.
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

/// How a P came to be stopped: in a [`StopReport`], and in the runtime's stop-the-world
/// report (`gpm::probe::StwReport`, serialised by its JSON export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StopKind {
    /// It was running tasks and stopped at its next safepoint (between two polls).
    Safepoint,
    /// It was idle (parked or about to park) and was counted as stopped without waking it.
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
    /// The P's own view of its queues at that moment (idle, exited: `S::default()`; the
    /// P of a requester on a P: what that requester's snapshot closure read).
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
    /// A request is between steps 1 and 4: the turn of every other requester waits.
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
}

/// A requester polling a task on P `p`; `snapshot` reads P `p`'s queues.
struct OnProcessor<F> {
    p: usize,
    snapshot: F,
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
    /// For a thread that holds no P of this scheduler (or has handed its P off).
    pub fn stop<R>(&self, inspect: impl FnOnce(&[PStop<S>]) -> R) -> (R, StopReport) {
        self.stop_as(None::<OnProcessor<fn() -> S>>, inspect)
    }

    /// Like [`World::stop`], for the holder of P `p` from inside a poll. P `p` counts as
    /// stopped (its M is inside this call): as [`StopKind::Requester`] for this request, and
    /// as [`StopKind::Safepoint`] for every request this one waits behind. `snapshot` reads
    /// P `p`'s queues for both; it runs on the calling thread, under the state lock.
    pub fn stop_on<R>(
        &self,
        p: usize,
        snapshot: impl FnMut() -> S,
        inspect: impl FnOnce(&[PStop<S>]) -> R,
    ) -> (R, StopReport) {
        self.stop_as(Some(OnProcessor { p, snapshot }), inspect)
    }

    fn stop_as<R, F: FnMut() -> S>(
        &self,
        mut requester: Option<OnProcessor<F>>,
        inspect: impl FnOnce(&[PStop<S>]) -> R,
    ) -> (R, StopReport) {
        let inner = self.wait_for_turn(requester.as_mut());
        let started = Instant::now();
        let inner = self.open_request(inner, started, requester);
        let mut inner = self.wait_for_all(inner);
        let time_to_stop = started.elapsed();
        let stops: Vec<PStop<S>> = inner.stops.iter_mut().map(|s| s.take().unwrap()).collect();
        drop(inner);
        // `inspect` is user code: if it panics, the world resumes all the same while the
        // panic unwinds to the requester, instead of staying stopped for ever.
        let resume = ResumeOnDrop(self);
        let result = inspect(&stops);
        drop(resume);
        let report = report(&stops, time_to_stop, started.elapsed());
        (result, report)
    }

    /// Step 1, first half: waits until no other request is active. A requester on a P
    /// stops its P for every request it waits behind, which would otherwise wait for it.
    fn wait_for_turn<F: FnMut() -> S>(
        &self,
        mut requester: Option<&mut OnProcessor<F>>,
    ) -> MutexGuard<'_, Inner<S>> {
        let mut inner = lock(&self.inner);
        while inner.active {
            if let Some(requester) = requester.as_mut() {
                self.stop_waiting_requester(&mut inner, requester);
            }
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
        inner
    }

    /// The safepoint of a requester's P, passed while it waits for its turn. Once per
    /// request: the P stays `STOPPED` until that request resumes the world.
    fn stop_waiting_requester<F: FnMut() -> S>(
        &self,
        inner: &mut Inner<S>,
        requester: &mut OnProcessor<F>,
    ) {
        if self.claim(requester.p, RUNNING, STOPPED) {
            let snapshot = (requester.snapshot)();
            record(inner, requester.p, StopKind::Safepoint, snapshot);
            self.changed.notify_all();
        }
    }

    /// Step 1, second half, and step 2: open a request, raise the flag and claim every P
    /// that cannot run a task.
    fn open_request<'a, F: FnMut() -> S>(
        &'a self,
        mut inner: MutexGuard<'a, Inner<S>>,
        started: Instant,
        mut requester: Option<OnProcessor<F>>,
    ) -> MutexGuard<'a, Inner<S>> {
        inner.active = true;
        inner.started = Some(started);
        inner.stopped = 0;
        inner.stops = (0..self.states.len()).map(|_| None).collect();
        self.requested.swap(true, Ordering::SeqCst);
        for p in 0..self.states.len() {
            if let Some((kind, snapshot)) = self.claim_at_open(p, requester.as_mut()) {
                record(&mut inner, p, kind, snapshot);
            }
        }
        inner
    }

    /// Step 2 for P `p`: claims it if it cannot run a task (idle, exited, or the P of the
    /// requester itself); a running P is left to stop at its safepoint.
    fn claim_at_open<F: FnMut() -> S>(
        &self,
        p: usize,
        requester: Option<&mut OnProcessor<F>>,
    ) -> Option<(StopKind, S)> {
        match self.state_of(p) {
            RUNNING => {
                let requester = requester.filter(|r| r.p == p)?;
                self.claim(p, RUNNING, STOPPED)
                    .then(|| (StopKind::Requester, (requester.snapshot)()))
            }
            IDLE => self
                .claim(p, IDLE, IDLE_STOPPED)
                .then(|| (StopKind::Idle, S::default())),
            EXITED => Some((StopKind::Exited, S::default())),
            _ => None,
        }
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

/// Step 4 of a request, when dropped (on return or on a panic in `inspect`).
struct ResumeOnDrop<'a, S: Default>(&'a World<S>);

impl<S: Default> Drop for ResumeOnDrop<'_, S> {
    fn drop(&mut self) {
        self.0.resume();
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
    use std::sync::{mpsc, Arc};
    use std::thread;

    #[test]
    fn all_idle_world_stops_without_waking_anyone() {
        let world: World<u32> = World::new(3);
        for p in 0..3 {
            world.enter_idle(p);
        }
        let (kinds, report) = world.stop(|stops| stops.iter().map(|s| s.kind).collect::<Vec<_>>());
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
            let (snapshots, report) = world.stop(|stops| {
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
        let (_, report) = world.stop(|_| ());
        assert!(report
            .processors
            .iter()
            .all(|(k, _)| *k == StopKind::Exited));
    }

    #[test]
    fn requester_on_a_processor_does_not_wait_for_itself() {
        let world: World<u32> = World::new(2);
        world.enter_idle(1);
        let (snapshot, report) = world.stop_on(0, || 7, |stops| stops[0].snapshot);
        assert_eq!(snapshot, 7, "the requester publishes its own P's queues");
        assert_eq!(report.processors[0].0, StopKind::Requester);
        assert_eq!(report.processors[1].0, StopKind::Idle);
        // P 0 is running again, P 1 idle again.
        world.safepoint(0, || 0);
        world.leave_idle(1);
    }

    /// Runs `scenario` on its own thread and fails if it has not returned within a minute:
    /// a deadlock becomes a test failure instead of a hung test run.
    fn finishes(name: &str, scenario: impl FnOnce() + Send + 'static) {
        let (done, finished) = mpsc::channel();
        let thread = thread::spawn(move || {
            scenario();
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(60)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(payload) = thread.join() {
                    std::panic::resume_unwind(payload);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: deadlocked"),
        }
    }

    /// The M of P `p` polling a task that stops the world `stops` times in one poll, with
    /// `in_poll` counting the poll segments around the calls. Returns every report.
    fn task_requester(
        world: &World<usize>,
        p: usize,
        in_poll: &AtomicUsize,
        stops: usize,
    ) -> Vec<StopReport> {
        (0..stops)
            .map(|_| {
                in_poll.fetch_add(1, Ordering::SeqCst);
                in_poll.fetch_sub(1, Ordering::SeqCst);
                let (snapshots, report) = world.stop_on(
                    p,
                    || 10 + p,
                    |stops| {
                        assert_eq!(
                            in_poll.load(Ordering::SeqCst),
                            0,
                            "a poll ran while stopped"
                        );
                        stops.iter().map(|s| s.snapshot).collect::<Vec<_>>()
                    },
                );
                assert_eq!(snapshots[p], 10 + p, "the requester's own snapshot");
                assert!(snapshots.iter().all(|&s| s == 0 || s == 10 || s == 11));
                world.safepoint(p, || 10 + p);
                report
            })
            .collect()
    }

    /// Every report of a request from P `p`: `p` is the requester, no other P is.
    fn assert_requested_from(reports: &[StopReport], p: usize) {
        for report in reports {
            for (q, (kind, _)) in report.processors.iter().enumerate() {
                assert_eq!(*kind == StopKind::Requester, q == p, "{report:?}");
            }
            assert!(report.pause >= report.time_to_stop);
        }
    }

    #[test]
    fn two_task_requesters_on_different_processors_both_complete() {
        finishes("two task requesters", || {
            let world = Arc::new(World::<usize>::new(2));
            let in_poll = Arc::new(AtomicUsize::new(0));
            let requesters: Vec<_> = (0..2)
                .map(|p| {
                    let (world, in_poll) = (world.clone(), in_poll.clone());
                    thread::spawn(move || {
                        let reports = task_requester(&world, p, &in_poll, 200);
                        world.exit(p);
                        reports
                    })
                })
                .collect();
            for (p, requester) in requesters.into_iter().enumerate() {
                assert_requested_from(&requester.join().unwrap(), p);
            }
        });
    }

    #[test]
    fn a_task_requester_and_a_thread_requester_both_complete() {
        finishes("task and thread requesters", || {
            let world = Arc::new(World::<usize>::new(2));
            let in_poll = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let task = {
                let (world, in_poll, done) = (world.clone(), in_poll.clone(), done.clone());
                thread::spawn(move || {
                    let reports = task_requester(&world, 0, &in_poll, 200);
                    done.store(true, Ordering::SeqCst);
                    world.exit(0);
                    reports
                })
            };
            let poller = {
                let (world, in_poll, done) = (world.clone(), in_poll.clone(), done.clone());
                thread::spawn(move || {
                    while !done.load(Ordering::SeqCst) {
                        in_poll.fetch_add(1, Ordering::SeqCst);
                        in_poll.fetch_sub(1, Ordering::SeqCst);
                        world.safepoint(1, || 11);
                    }
                    world.exit(1);
                })
            };
            let thread_reports: Vec<_> = (0..200)
                .map(|_| {
                    world
                        .stop(|_| {
                            assert_eq!(in_poll.load(Ordering::SeqCst), 0);
                        })
                        .1
                })
                .collect();
            assert_requested_from(&task.join().unwrap(), 0);
            poller.join().unwrap();
            for report in thread_reports {
                assert!(!report
                    .processors
                    .iter()
                    .any(|(kind, _)| *kind == StopKind::Requester));
            }
        });
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
        let (_, report) = world.stop(|_| ());
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

    /// P `p`'s M: polls (counted in `in_poll`), passes a safepoint, goes idle and really
    /// sleeps until work is posted, wakes, polls again, exits.
    fn processor(world: Arc<World<()>>, p: usize, in_poll: Arc<AtomicUsize>, work: Arc<Work>) {
        in_poll.fetch_add(1, Ordering::SeqCst);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        world.safepoint(p, || ());
        world.enter_idle(p);
        work.wait();
        world.leave_idle(p);
        in_poll.fetch_add(1, Ordering::SeqCst);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        world.safepoint(p, || ());
        world.exit(p);
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
                thread::spawn(move || processor(world, 0, in_poll, work))
            };
            world.stop(|_| {
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
                    world.stop(|_| ());
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
            world.stop(|_| ());
            other.join().unwrap();
            work.post();
            p0.join().unwrap();
        });
    }

    /// A task on the only P stops the world while a thread does: the task's M is P 0's M,
    /// so while it waits for its turn it must stop P 0 for the thread's request. Both
    /// complete, each counts P 0 once, and no poll runs while either request holds.
    #[test]
    fn task_requester_and_thread_requester_both_complete() {
        loom::model(|| {
            let world = Arc::new(World::<()>::new(1));
            let in_poll = Arc::new(AtomicUsize::new(0));
            let task = {
                let (world, in_poll) = (world.clone(), in_poll.clone());
                thread::spawn(move || task_on_processor(&world, 0, &in_poll))
            };
            let (_, report) = world.stop(|_| {
                assert_eq!(in_poll.load(Ordering::SeqCst), 0);
            });
            let kind = report.processors[0].0;
            assert!(kind == StopKind::Safepoint || kind == StopKind::Exited);
            let own = task.join().unwrap();
            assert_eq!(own.processors[0].0, StopKind::Requester);
        });
    }

    /// P `p`'s M polling a task that stops the world once, then passing a safepoint and
    /// exiting. `in_poll` counts the poll's code around the call (inside it, the task runs
    /// nothing). The task's inspection sees no poll either.
    fn task_on_processor(world: &World<()>, p: usize, in_poll: &AtomicUsize) -> StopReport {
        in_poll.fetch_add(1, Ordering::SeqCst);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        let (_, report) = world.stop_on(
            p,
            || (),
            |_| {
                assert_eq!(in_poll.load(Ordering::SeqCst), 0);
            },
        );
        in_poll.fetch_add(1, Ordering::SeqCst);
        in_poll.fetch_sub(1, Ordering::SeqCst);
        world.safepoint(p, || ());
        world.exit(p);
        report
    }

    /// Two tasks on two Ps stop the world at once: each one's M stops its P for the other's
    /// request while it waits, so both complete, each naming its own P as the requester.
    #[test]
    fn two_task_requesters_on_two_processors_both_complete() {
        loom::model(|| {
            let world = Arc::new(World::<()>::new(2));
            let in_poll = Arc::new(AtomicUsize::new(0));
            let other = {
                let (world, in_poll) = (world.clone(), in_poll.clone());
                thread::spawn(move || task_on_processor(&world, 1, &in_poll))
            };
            let own = task_on_processor(&world, 0, &in_poll);
            let other = other.join().unwrap();
            assert_eq!(own.processors[0].0, StopKind::Requester);
            assert_eq!(other.processors[1].0, StopKind::Requester);
            assert_ne!(own.processors[1].0, StopKind::Requester);
            assert_ne!(other.processors[0].0, StopKind::Requester);
        });
    }

    /// A task requester on P 0 and a thread requester while P 1 polls, goes to sleep, is
    /// woken (only after both stops) and exits: both complete, neither overlaps a poll.
    #[test]
    fn task_and_thread_requesters_while_a_processor_goes_idle() {
        loom::model(|| {
            let world = Arc::new(World::<()>::new(2));
            let in_poll = Arc::new(AtomicUsize::new(0));
            let work = Arc::new(Work::default());
            let task = {
                let (world, in_poll) = (world.clone(), in_poll.clone());
                thread::spawn(move || task_on_processor(&world, 0, &in_poll))
            };
            let p1 = {
                let (world, in_poll, work) = (world.clone(), in_poll.clone(), work.clone());
                thread::spawn(move || processor(world, 1, in_poll, work))
            };
            world.stop(|_| {
                assert_eq!(in_poll.load(Ordering::SeqCst), 0);
            });
            task.join().unwrap();
            work.post();
            p1.join().unwrap();
        });
    }
}

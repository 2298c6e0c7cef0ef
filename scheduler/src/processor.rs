//! P, the processor: a local run queue plus the logic that finds its next task.
//!
//! [`Scheduler`] is the part every P shares: each P's stealer and parker, the global
//! injector and the idle bookkeeping. [`Processor`] is one P's private part. An M holds at
//! most one `Processor` at a time and passes it by value when it hands the P to another M, so
//! "only the holder touches the local queue" is enforced by ownership, not by convention.
//!
//! # Finding work (Go's `findRunnable`, in order)
//!
//! 1. Every `global_queue_interval` ticks (61 by default, as in Go) the injector and this
//!    P's inbox come first, taking turns at going first (Go's `globrunqget` every 61
//!    `schedtick`s, with the inbox as a second global queue of this P's own), so a P busy
//!    with local work still drains both and nothing starves there. It takes a fair share
//!    of the queue it serves (as in step 3), not one task as Go does: the share joins the
//!    FIFO, which a P busy with a chain of `runnext` spawns still visits every
//!    `RUNNEXT_STREAK_MAX + 1` polls, while the injector waits another 61 (what this is
//!    worth: `spawn_many_remote_busy2` in docs/BENCHMARKS.md).
//! 2. `runnext`, then the local FIFO, then the P's inbox (tasks woken off the runtime's
//!    threads that last ran on this P; see "Last P" below).
//! 3. A batch from the injector (its fair share, at most half a local queue).
//! 4. The tasks that yielded since the FIFO last ran dry (see [`crate::queue`]: yielders
//!    wait behind the global queue, as in Go's `Gosched`). [`Processor::next_task`] never
//!    returns them itself: when it finds nothing and [`Processor::has_deferred`] says they
//!    wait, the M first gives its driver (timers, I/O) a non-blocking turn and then calls
//!    [`Processor::release_deferred`], so a task yielding in a loop cannot spin while the
//!    timer or socket that would end its loop waits (tokio's `yield_defers_until_park`). The
//!    M also releases them after its periodic driver turn, so they wait a bounded number of
//!    polls on a busy P too.
//! 5. Steal: become a searcher (at most half of the Ps may), then take a share of a
//!    victim's inbox or else half of its FIFO, visiting victims in the order this P's
//!    [`VictimPlanner`] writes for the runtime's [`StealPolicy`] (see [`crate::steal`]);
//!    every visit is counted by its relation to the thief. Every victim empty: a share of
//!    the injector.
//! 6. Park, following the protocol in [`crate::idle`].
//!
//! # Last P: the inbox
//!
//! A task woken from outside the Ps (a foreign thread, `block_on`, the blocking pool) goes
//! back to the P that last polled it while that P is awake (its cache still holds the
//! task's data), through the P's inbox: a multi-producer queue (our [`Injector`], i.e.
//! crossbeam's) that any thread may push to. The owner takes the whole inbox (one task to
//! run, the rest, at most half a local queue, into its FIFO) right after its local FIFO
//! and on its fairness tick. A P that sleeps gets no inbox pushes: the task goes to the
//! global injector instead and the usual wake-up protocol runs.
//!
//! The owner may be inside a long poll, so an inbox is as reachable as the injector: every
//! push to an awake P's inbox ends with [`Scheduler::notify_parked`] (a sleeping P is woken
//! unless one already searches), thieves visit a victim's inbox before its FIFO (its owner
//! would reach it last), and the last searcher's re-check before sleeping covers inboxes.
//!
//! Invariant: a task in an inbox runs within two fairness intervals (`2 * 61` ticks) of its
//! P if it is the oldest there, and within one round of the FIFO after that (the rest of
//! the inbox joins the FIFO on the same tick); while its P is stuck in a poll, as soon as
//! some P runs out of work (a sleeping one is woken for it). Before this, the inbox was
//! served only once the FIFO ran dry and the first push woke nobody: a task woken from a
//! foreign thread waited for a ring of tasks keeping its P busy to end (3 s), or for its
//! P's long poll to return. Left: while the owner is stuck in a long poll and every other
//! P is busy with short polls, nobody looks at the inbox until a P runs dry (the injector
//! would be served on their fairness ticks).
//!
//! No lost wake-up (a push to the inbox of a P that is about to sleep): the P stores
//! `asleep = true`, executes a `SeqCst` fence, then re-checks its inbox before sleeping,
//! and again after every wake-up; the pusher pushes, executes a `SeqCst` fence, then reads
//! `asleep` and, if set, unparks that P (its parker keeps the token). This is the
//! store-buffer pattern: with a fence between each side's write and read, at least one
//! side sees the other's write, so either the P sees the task or the pusher wakes the P.
//! (A pusher that saw `asleep` before pushing used the injector instead.) If the P stays
//! awake, the pusher's `notify_parked` is step 1 of the idle protocol, whose argument
//! covers inboxes as it covers the injector. The loom models in `processor/loom_tests.rs`
//! check both handshakes on this code (the inbox's queue is loom-visible under
//! `gpm_loom`, see [`crate::inject`]): the first alone
//! (`an_inbox_push_racing_the_park_of_a_non_searching_p_wakes_it`), both together as the
//! worker runs them (`an_inbox_push_racing_park_is_found`), and the second for a P stuck
//! in a poll (`an_inbox_push_to_a_busy_p_wakes_an_idle_p`).

use crate::idle::Idle;
use crate::inject::Injector;
use crate::park::{ParkDriver, Parker};
use crate::probe::{Event, EventTable, Events};
use crate::queue::{Local, Stealer, LOCAL_QUEUE_CAPACITY};
use crate::rand::FastRand;
use crate::steal::stats::record_steal_attempt;
use crate::steal::{
    FnView, LatencyHistory, ProcessorStealStats, StealPolicy, StealStats, StealTopology,
    VictimPlanner,
};
use crate::sync::atomic::{fence, AtomicBool, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Go's `schedtick % 61`: how often a P looks at the injector before its local queue.
pub const DEFAULT_GLOBAL_QUEUE_INTERVAL: u32 = 61;

/// Scheduler settings fixed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Number of Ps.
    pub processors: usize,
    /// Ticks between forced checks of the injector; at least 1.
    pub global_queue_interval: u32,
    /// Whether the Ps count events ([`crate::probe::events`]); off, they count nothing.
    pub count_events: bool,
}

/// How the Ps steal: the policy and where the Ps sit.
#[derive(Debug, Clone)]
pub struct StealConfig {
    /// The victim order policy.
    pub policy: StealPolicy,
    /// Per P: PU, L3 domain, node; one entry per P.
    pub topology: StealTopology,
}

impl StealConfig {
    /// The compiled-in default policy on a flat one-node model of `processors` Ps.
    pub fn flat(processors: usize) -> StealConfig {
        StealConfig {
            policy: StealPolicy::compiled_default(),
            topology: StealTopology::flat(processors),
        }
    }
}

/// The part of each P that other Ps and other threads may touch.
struct Remote<T> {
    stealer: Stealer<T>,
    parker: Parker,
    /// Written by the holder of the P, read by thieves.
    latency: LatencyHistory,
    /// Tasks woken off the Ps whose last P this is; drained by the owner (after its FIFO
    /// and on its fairness tick), stolen first by thieves.
    inbox: Injector<T>,
    /// Set by the holder while the P sleeps or is about to; read by inbox pushers.
    asleep: AtomicBool,
}

/// State shared by all Ps of one runtime.
pub struct Scheduler<T> {
    remotes: Box<[CachePadded<Remote<T>>]>,
    injector: Injector<T>,
    idle: Idle,
    global_queue_interval: u32,
    steal: StealConfig,
    events: Events,
}

/// Where a locally scheduled task goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalSlot {
    /// Run it next (a spawn or a wake by the running task).
    RunNext,
    /// Queue it behind the others.
    Back,
    /// Hold it back until this P has looked at the injector (a task that yielded, or that
    /// was woken while it ran).
    Deferred,
    /// One of a burst of wakes (a turn of the timer wheel or the reactor): queue it behind
    /// the others, or, when the local queue is full, in this P's inbox. The queued tasks are
    /// older and keep their place, where `Back` would spill the older half of the queue to
    /// the injector's end behind the burst (Go's and tokio's overflow, right for one task
    /// at a time, wrong for a thousand timers firing at once). The inbox rather than the
    /// injector: the tasks stay with this P (their timers sit in its wheel) unless an idle
    /// P steals them, and thieves look at inboxes first.
    Burst,
}

/// One P's private state. Owned by the M that holds the P.
pub struct Processor<T> {
    index: usize,
    local: Local<T>,
    tick: u32,
    rng: FastRand,
    searching: bool,
    planner: VictimPlanner,
    /// This P's event table (`None`: counting is off).
    events: Option<Arc<CachePadded<EventTable>>>,
}

impl<T> Scheduler<T> {
    /// Creates the shared scheduler and its `config.processors` Ps.
    ///
    /// # Panics
    /// If `config.processors` is zero or above [`crate::idle::MAX_PROCESSORS`], or
    /// `global_queue_interval` is zero. The runtime's builder reports those as errors first.
    pub fn new(config: Config) -> (Scheduler<T>, Vec<Processor<T>>) {
        Scheduler::with_stealing(config, StealConfig::flat(config.processors))
    }

    /// Like [`Scheduler::new`], stealing as `steal` says.
    ///
    /// # Panics
    /// As [`Scheduler::new`], and if `steal.topology` does not have `config.processors` Ps.
    pub fn with_stealing(config: Config, steal: StealConfig) -> (Scheduler<T>, Vec<Processor<T>>) {
        assert!(
            config.global_queue_interval > 0,
            "global_queue_interval is 0"
        );
        assert_eq!(
            steal.topology.num_processors(),
            config.processors,
            "the steal topology places a different number of Ps"
        );
        let idle = Idle::new(config.processors);
        let (locals, remotes): (Vec<_>, Vec<_>) = (0..config.processors)
            .map(|_| {
                let (local, stealer) = Local::new();
                let remote = Remote {
                    stealer,
                    parker: Parker::new(),
                    latency: LatencyHistory::new(),
                    inbox: Injector::new(),
                    asleep: AtomicBool::new(false),
                };
                (local, CachePadded::new(remote))
            })
            .unzip();
        let events = Events::new(config.processors, config.count_events);
        let processors = locals
            .into_iter()
            .enumerate()
            .map(|(index, local)| Processor {
                index,
                local,
                tick: 0,
                rng: FastRand::new(index as u64 + 1),
                searching: false,
                planner: VictimPlanner::new(&steal.policy, &steal.topology, index),
                events: events.writer(index),
            })
            .collect();
        let scheduler = Scheduler {
            remotes: remotes.into_boxed_slice(),
            injector: Injector::new(),
            idle,
            global_queue_interval: config.global_queue_interval,
            steal,
            events,
        };
        (scheduler, processors)
    }

    /// Number of Ps.
    pub fn num_processors(&self) -> usize {
        self.remotes.len()
    }

    /// The global queue.
    pub fn injector(&self) -> &Injector<T> {
        &self.injector
    }

    /// The idle bookkeeping (for probes).
    pub fn idle(&self) -> &Idle {
        &self.idle
    }

    /// Makes `task` runnable from outside any P and wakes a P if none is searching.
    pub fn push_remote(&self, task: T) {
        self.injector.push(task);
        self.notify_parked();
    }

    /// Queues `task` in P `index`'s inbox if that P is awake (see "Last P" in the module
    /// documentation); gives the task back when the P sleeps, for the injector.
    pub fn push_to_processor(&self, index: usize, task: T) -> Result<(), T> {
        let remote = &self.remotes[index];
        if remote.asleep.load(Ordering::Relaxed) {
            return Err(task);
        }
        remote.inbox.push(task);
        fence(Ordering::SeqCst);
        if remote.asleep.load(Ordering::Relaxed) {
            // It went to sleep meanwhile and may have missed the task: wake it.
            remote.parker.unpark();
        } else {
            // It may be inside a long poll: as for an injector push, wake an idle P to come
            // and steal unless one already searches (it will visit this inbox).
            self.notify_parked();
        }
        Ok(())
    }

    /// Closes the injector and every inbox, dropping what they hold; later pushes drop
    /// their task (shutdown).
    pub fn close_queues(&self) {
        self.injector.close();
        for remote in self.remotes.iter() {
            remote.inbox.close();
        }
    }

    /// Wakes one sleeping P if no P is searching (protocol step 1). The caller has made its
    /// work visible; the fence orders that before reading the idle state.
    pub fn notify_parked(&self) {
        fence(Ordering::SeqCst);
        if let Some(index) = self.idle.worker_to_notify() {
            self.remotes[index].parker.unpark();
        }
    }

    /// Makes every P's M sleep in `driver` (one at a time) when it parks; see
    /// [`crate::park`]. Call once, before the Ms start; later calls are ignored.
    pub fn install_park_driver(&self, driver: Arc<dyn ParkDriver>) {
        for remote in self.remotes.iter() {
            remote.parker.install_driver(Arc::clone(&driver));
        }
    }

    /// Leaves a wake-up token with every P (shutdown, stop-the-world).
    pub fn unpark_all(&self) {
        for remote in self.remotes.iter() {
            remote.parker.unpark();
        }
    }

    /// Leaves a wake-up token with P `index`.
    pub fn unpark(&self, index: usize) {
        self.remotes[index].parker.unpark();
    }

    /// Local queue length of P `index` (racy snapshot).
    pub fn queue_len(&self, index: usize) -> usize {
        self.remotes[index].stealer.len()
    }

    /// The stealing policy in use.
    pub fn steal_policy(&self) -> StealPolicy {
        self.steal.policy
    }

    /// Where the Ps sit, as the stealing policies see it.
    pub fn steal_topology(&self) -> &StealTopology {
        &self.steal.topology
    }

    /// P `index`'s latency history. Only the holder of that P records into it.
    pub fn latency(&self, index: usize) -> &LatencyHistory {
        &self.remotes[index].latency
    }

    /// Every P's event counters, and the shared ones of threads without a P.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// A snapshot of every P's steal counters and latency averages.
    pub fn steal_stats(&self) -> StealStats {
        let processors = self
            .remotes
            .iter()
            .enumerate()
            .map(|(p, remote)| {
                let mut stats = ProcessorStealStats::from(&self.events.processor(p));
                stats.queue_wait_ewma_ns = remote.latency.queue_wait_ns();
                stats.poll_ewma_ns = remote.latency.poll_ns();
                stats
            })
            .collect();
        StealStats {
            policy: self.steal.policy.name(),
            processors,
        }
    }

    /// Step 4 of the idle protocol: the last searcher going to sleep looks at every queue
    /// once more. The fence pairs with the producer's in [`Scheduler::notify_parked`]
    /// (store-buffer pattern). The `SeqCst` read-modify-write that announced the sleep
    /// already orders this in C11; the fence (on the parking path only) makes it explicit
    /// and checkable by loom, which models `SeqCst` accesses as `AcqRel`.
    fn recheck_after_announcing_sleep(&self) -> bool {
        fence(Ordering::SeqCst);
        self.has_stealable_work()
    }

    fn has_stealable_work(&self) -> bool {
        !self.injector.is_empty()
            || self
                .remotes
                .iter()
                .any(|r| !r.stealer.is_empty() || !r.inbox.is_empty())
    }
}

impl<T> Processor<T> {
    /// This P's index, `0..processors`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Counts one `event` on this P (nothing when counting is off).
    #[inline]
    pub fn count(&self, event: Event) {
        self.count_many(event, 1);
    }

    /// Counts `n` of `event` on this P at once (nothing when counting is off): for a holder
    /// that tallies its most frequent events in registers or thread-private cells and
    /// publishes them now and then.
    #[inline]
    pub fn count_many(&self, event: Event, n: u64) {
        if let Some(events) = &self.events {
            events.add(event, n);
        }
    }

    /// Whether this P is counted as searching.
    pub fn is_searching(&self) -> bool {
        self.searching
    }

    /// The local run queue (for draining at shutdown and for probes).
    pub fn local_mut(&mut self) -> &mut Local<T> {
        &mut self.local
    }

    /// The local run queue, read-only.
    pub fn local(&self) -> &Local<T> {
        &self.local
    }

    /// Schedules `task` on this P. Wakes another P when the FIFO holds work to steal,
    /// except for [`LocalSlot::Burst`]: the caller ends a burst with
    /// [`Processor::end_burst`], which wakes one only if there is more than this P will
    /// run next.
    pub fn push_local(&mut self, scheduler: &Scheduler<T>, task: T, slot: LocalSlot) {
        match slot {
            LocalSlot::RunNext => self.local.push_runnext(task, &scheduler.injector),
            LocalSlot::Back => self.local.push_back(task, &scheduler.injector),
            LocalSlot::Burst => {
                let inbox = &scheduler.remotes[self.index].inbox;
                self.local.push_back_or_overflow(task, inbox);
                return;
            }
            LocalSlot::Deferred => {
                // Not stealable yet, so no other P needs waking for it.
                self.push_yielded(task);
                return;
            }
        }
        if self.local.queue_len() > 0 {
            scheduler.notify_parked();
        }
    }

    /// Queues a task that yielded on this P ([`LocalSlot::Deferred`], pushed by the holder
    /// that ran it).
    #[inline]
    pub fn push_yielded(&mut self, task: T) {
        self.local.push_deferred(task);
    }

    /// Ends a burst of [`LocalSlot::Burst`] pushes (the wakes of one driver turn): wakes
    /// another P once, and only if this one has more than one task queued, i.e. more than
    /// it runs next (tokio's `should_notify_others`). A burst of one task is this P's own
    /// next task: waking another M for it made that M find nothing and sleep again. Tasks
    /// the burst overflowed to the inbox count too: thieves visit inboxes first.
    pub fn end_burst(&self, scheduler: &Scheduler<T>) {
        let inbox = &scheduler.remotes[self.index].inbox;
        let queued = self.local.queue_len() + usize::from(self.local.has_runnext());
        if queued > 1 || !inbox.is_empty() {
            scheduler.notify_parked();
        }
    }

    /// Steps 1 to 3 of finding work: injector and inbox on the fairness tick, local queue,
    /// inbox, injector. Yielded tasks stay deferred (step 4 is the caller's: module docs).
    pub fn next_task(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        self.tick = self.tick.wrapping_add(1);
        if self.tick.is_multiple_of(scheduler.global_queue_interval) {
            if let Some(task) = self.fairness_tick(scheduler) {
                return Some(task);
            }
        }
        if let Some((task, _)) = self.local.pop() {
            return Some(task);
        }
        if let Some(task) = self.take_from_inbox(scheduler) {
            return Some(task);
        }
        self.take_from_injector(scheduler)
    }

    /// Step 1: serves the injector and the inbox, taking turns at going first (the other
    /// queue is served when the first is empty).
    fn fairness_tick(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        let inbox_turn = (self.tick / scheduler.global_queue_interval).is_multiple_of(2);
        if inbox_turn {
            self.take_from_inbox(scheduler)
                .or_else(|| self.take_from_injector(scheduler))
        } else {
            self.take_from_injector(scheduler)
                .or_else(|| self.take_from_inbox(scheduler))
        }
    }

    /// Whether tasks that yielded wait in this P's deferred list.
    pub fn has_deferred(&self) -> bool {
        self.local.deferred_len() > 0
    }

    /// Step 4: returns the deferred tasks to the FIFO (call it after a turn of the driver)
    /// and wakes a P to steal them if there are many.
    pub fn release_deferred(&mut self, scheduler: &Scheduler<T>) {
        if self.local.release_deferred(&scheduler.injector) > 1 {
            scheduler.notify_parked();
        }
    }

    /// Takes this P's fair share of the injector: one task to run, the rest into the FIFO.
    fn take_from_injector(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        let processors = scheduler.num_processors();
        take_share(
            &scheduler.injector,
            &mut self.local,
            &scheduler.injector,
            |left| left / processors + 1,
        )
    }

    /// Takes this P's inbox: one task to run, the rest (at most half a local queue) into
    /// the FIFO, where they wait one round of it and can be stolen.
    fn take_from_inbox(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        let inbox = &scheduler.remotes[self.index].inbox;
        take_share(inbox, &mut self.local, &scheduler.injector, |left| left)
    }

    /// Step 5: steal a share of some victim's inbox or half of its FIFO, or fall back to
    /// the injector. Returns
    /// `None` without searching when half of the Ps already search.
    pub fn steal_work(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        if !self.searching {
            if !scheduler.idle.transition_worker_to_searching() {
                return None;
            }
            self.searching = true;
        }
        if let Some(task) = self.steal_from_victims(scheduler) {
            return Some(task);
        }
        let task = self.take_from_injector(scheduler)?;
        self.count(Event::InjectorTake);
        Some(task)
    }

    /// Visits the victims in the planner's order and counts each visit by relation.
    fn steal_from_victims(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        let Processor {
            index,
            local,
            rng,
            planner,
            events,
            ..
        } = self;
        let remotes = &scheduler.remotes;
        let view = FnView(
            |p: usize| remotes[p].stealer.len() + remotes[p].inbox.len(),
            |p: usize| remotes[p].latency.queue_wait_ns(),
        );
        let order = planner.plan(&view, rng);
        for &victim in order {
            let before = local.queue_len();
            // The inbox first: its owner reaches it only after its FIFO or on its fairness
            // tick, and not at all while it is stuck in a long poll.
            let stolen = take_share(&remotes[victim].inbox, local, &scheduler.injector, |left| {
                left / 2
            })
            .or_else(|| remotes[victim].stealer.steal_half_into(local));
            let relation = scheduler.steal.topology.relation(*index, victim);
            let taken = stolen
                .as_ref()
                .map_or(0, |_| local.queue_len() - before + 1);
            if let Some(events) = events {
                record_steal_attempt(events, relation, taken as u64);
            }
            if stolen.is_some() {
                return stolen;
            }
        }
        None
    }

    /// Step 3 of the idle protocol: call before running a task found while searching.
    pub fn transition_from_searching(&mut self, scheduler: &Scheduler<T>) {
        if !self.searching {
            return;
        }
        self.searching = false;
        if scheduler.idle.transition_worker_from_searching() {
            scheduler.notify_parked();
        }
    }

    /// Step 4 and 5: sleeps until this P is given work or `should_wake` says so. On return
    /// the P is unparked; it is searching if a notifier woke it for work (step 1), not if
    /// it woke on its own (`should_wake`, its driver turn, a timeout).
    ///
    /// `should_wake` is evaluated after every wake-up token (shutdown and stop-the-world
    /// leave one with every P). `timeout` bounds each sleep; on expiry the P wakes up, not
    /// searching, as after any other self-wake.
    pub fn park(
        &mut self,
        scheduler: &Scheduler<T>,
        timeout: Option<Duration>,
        should_wake: impl Fn() -> bool,
    ) {
        let remote = &scheduler.remotes[self.index];
        remote.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !remote.inbox.is_empty() {
            // A task came back to this P before it slept (see "Last P").
            remote.asleep.store(false, Ordering::Relaxed);
            return;
        }
        self.park_announced(scheduler, timeout, should_wake);
        remote.asleep.store(false, Ordering::Relaxed);
    }

    fn park_announced(
        &mut self,
        scheduler: &Scheduler<T>,
        timeout: Option<Duration>,
        should_wake: impl Fn() -> bool,
    ) {
        let inbox = &scheduler.remotes[self.index].inbox;
        let was_last_searcher = scheduler
            .idle
            .transition_worker_to_parked(self.index, self.searching);
        self.searching = false;
        if was_last_searcher && scheduler.recheck_after_announcing_sleep() {
            scheduler.notify_parked();
        }
        let parker = &scheduler.remotes[self.index].parker;
        loop {
            if should_wake() || !inbox.is_empty() {
                break;
            }
            self.count(Event::Park);
            match timeout {
                Some(timeout) => parker.park_timeout(timeout),
                None => parker.park(),
            }
            if !scheduler.idle.is_parked(self.index) {
                // Woken by `notify_parked`, which counted this P as searching.
                self.searching = true;
                return;
            }
            if timeout.is_some() {
                break;
            }
        }
        // Woken for another reason (its own driver turn, a token, a timeout): take this P off
        // the sleeper list ourselves, counted as not searching (`Idle::unpark_worker_by_id`
        // says why), unless a notifier got there first and counted it as searching.
        self.searching = !scheduler.idle.unpark_worker_by_id(self.index);
    }
}

/// Takes the oldest task of `queue` to run and moves `share(tasks left)` more (at most half
/// a local queue, and never more than the local queue has room for) to the back of `local`.
///
/// Never more than the room: a full local queue would spill its older half to the back of
/// the injector, so under overload a fairness tick would send the oldest local tasks to
/// the end of the longest queue, again and again, and their wait would grow without bound
/// (the P99 of the timers workload at 50k tasks was several times its median).
fn take_share<T>(
    queue: &Injector<T>,
    local: &mut Local<T>,
    overflow: &Injector<T>,
    share: impl FnOnce(usize) -> usize,
) -> Option<T> {
    let first = queue.pop()?;
    let room = LOCAL_QUEUE_CAPACITY.saturating_sub(local.queue_len());
    let batch = share(queue.len()).min(LOCAL_QUEUE_CAPACITY / 2).min(room);
    for _ in 0..batch {
        match queue.pop() {
            Some(task) => local.push_back(task, overflow),
            None => break,
        }
    }
    Some(first)
}

impl<T> fmt::Debug for Scheduler<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("processors", &self.remotes.len())
            .field("injector", &self.injector)
            .field("idle", &self.idle)
            .finish()
    }
}

impl<T> fmt::Debug for Processor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor")
            .field("index", &self.index)
            .field("local", &self.local)
            .field("searching", &self.searching)
            .finish()
    }
}

#[cfg(all(test, gpm_loom))]
mod loom_tests;

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    fn config(processors: usize) -> Config {
        Config {
            count_events: true,
            processors,
            global_queue_interval: DEFAULT_GLOBAL_QUEUE_INTERVAL,
        }
    }

    #[test]
    fn injector_checked_on_fairness_tick() {
        let (sched, mut ps) = Scheduler::new(config(1));
        let p = &mut ps[0];
        for i in 0..100 {
            p.push_local(&sched, i, LocalSlot::Back);
        }
        sched.push_remote(1000);
        let polled: Vec<_> = (0..DEFAULT_GLOBAL_QUEUE_INTERVAL)
            .map(|_| p.next_task(&sched).unwrap())
            .collect();
        assert_eq!(polled.last(), Some(&1000));
        assert_eq!(polled.iter().filter(|&&t| t == 1000).count(), 1);
    }

    #[test]
    fn fairness_tick_takes_a_share_of_the_injector() {
        let (sched, mut ps) = Scheduler::new(config(2));
        let p = &mut ps[0];
        for i in 0..100 {
            p.push_local(&sched, i, LocalSlot::Back);
        }
        for i in 1000..1010 {
            sched.push_remote(i);
        }
        for _ in 0..DEFAULT_GLOBAL_QUEUE_INTERVAL {
            p.next_task(&sched).unwrap();
        }
        // One task ran on the tick; 9 left, share = 9 / 2 + 1 = 5 joined the FIFO.
        assert_eq!(sched.injector().len(), 4);
        assert_eq!(p.local().queue_len(), 100 - 60 + 5);
    }

    #[test]
    fn a_burst_wakes_another_p_once_and_only_for_more_than_one_task() {
        let (sched, mut ps) = Scheduler::new(config(2));
        // P1 is listed asleep (no thread needed: the idle state is what a wake-up changes).
        assert!(!sched.idle().transition_worker_to_parked(1, false));
        let p0 = &mut ps[0];
        p0.push_local(&sched, 1, LocalSlot::Burst);
        p0.end_burst(&sched);
        assert!(
            sched.idle().is_parked(1),
            "a burst of one is P0's own next task"
        );
        p0.push_local(&sched, 2, LocalSlot::Burst);
        assert!(sched.idle().is_parked(1), "no wake-up inside a burst");
        p0.end_burst(&sched);
        assert!(!sched.idle().is_parked(1), "two tasks: one to steal");
        assert_eq!(sched.idle().num_searching(), 1, "woken to search");
    }

    #[test]
    fn a_burst_overflows_to_the_inbox_and_a_fairness_tick_spills_nothing() {
        let (sched, mut ps) = Scheduler::new(config(1));
        let p = &mut ps[0];
        let capacity = crate::queue::LOCAL_QUEUE_CAPACITY as u32;
        let interval = DEFAULT_GLOBAL_QUEUE_INTERVAL;
        for i in 0..capacity + interval {
            p.push_local(&sched, i, LocalSlot::Burst);
        }
        assert_eq!(p.local().queue_len(), capacity as usize);
        assert_eq!(sched.remotes[0].inbox.len(), interval as usize);
        assert_eq!(
            sched.injector().len(),
            0,
            "a burst leaves the injector alone"
        );
        for i in 0..500 {
            sched.push_remote(10_000 + i);
        }
        let polled: Vec<_> = (0..interval)
            .map(|_| p.next_task(&sched).unwrap())
            .collect();
        // The oldest local tasks ran in order, then the tick took the injector's oldest
        // task and only as many more as the local queue had room for (60 had run).
        let expected: Vec<u32> = (0..interval - 1).chain([10_000]).collect();
        assert_eq!(polled, expected);
        assert_eq!(sched.injector().len(), 500 - 1 - (interval as usize - 1));
        assert_eq!(p.local().queue_len(), capacity as usize);
        let left: Vec<_> = std::iter::from_fn(|| sched.injector().pop()).collect();
        assert!(
            left.iter().all(|&t| t >= 10_000),
            "a local task spilled back"
        );
        assert_eq!(sched.remotes[0].inbox.len(), interval as usize);
    }

    #[test]
    fn deferred_tasks_run_after_the_injector_once_released() {
        let (sched, mut ps) = Scheduler::new(config(1));
        let p = &mut ps[0];
        p.push_local(&sched, 1, LocalSlot::Deferred);
        p.push_local(&sched, 2, LocalSlot::Deferred);
        sched.push_remote(100);
        sched.push_remote(101);
        let polled: Vec<_> = std::iter::from_fn(|| p.next_task(&sched)).collect();
        assert_eq!(polled, vec![100, 101]);
        assert!(p.has_deferred());
        p.release_deferred(&sched);
        assert!(!p.has_deferred());
        let polled: Vec<_> = std::iter::from_fn(|| p.next_task(&sched)).collect();
        assert_eq!(polled, vec![1, 2]);
    }

    #[test]
    fn deferred_tasks_stay_deferred_over_the_fairness_tick() {
        let (sched, mut ps) = Scheduler::new(config(1));
        let p = &mut ps[0];
        for i in 0..200 {
            p.push_local(&sched, i, LocalSlot::Back);
        }
        p.push_local(&sched, 1000, LocalSlot::Deferred);
        let polled: Vec<_> = std::iter::from_fn(|| p.next_task(&sched)).collect();
        assert_eq!(polled, (0..200).collect::<Vec<_>>());
        assert!(p.has_deferred());
    }

    #[test]
    fn empty_local_takes_share_of_injector() {
        let (sched, mut ps) = Scheduler::new(config(2));
        for i in 0..10 {
            sched.push_remote(i);
        }
        assert_eq!(ps[0].next_task(&sched), Some(0));
        // 9 left, share = 9 / 2 + 1 = 5 moved to the local queue.
        assert_eq!(ps[0].local().queue_len(), 5);
        assert_eq!(sched.injector().len(), 4);
    }

    #[test]
    fn steal_takes_from_other_processor() {
        let (sched, mut ps) = Scheduler::new(config(2));
        for i in 0..8 {
            ps[0].push_local(&sched, i, LocalSlot::Back);
        }
        let (p0, p1) = ps.split_at_mut(1);
        assert_eq!(p1[0].steal_work(&sched), Some(0));
        assert!(p1[0].is_searching());
        assert_eq!(p1[0].local().queue_len() + 1, 4);
        assert_eq!(p0[0].local().queue_len(), 4);
        p1[0].transition_from_searching(&sched);
        assert_eq!(sched.idle().num_searching(), 0);
    }

    #[test]
    fn steals_are_counted_by_relation_in_plan_order() {
        // 4 Ps, one per core of "pack:2 l3:1 core:2 pu:1": P0/P1 share an L3, P2/P3 the
        // other (one node: relation same-L3 or same-node). Hierarchical: P0 tries P1 first.
        let machine = gpm_numa::Topology::from_synthetic("pack:2 l3:1 core:2 pu:1").unwrap();
        let steal = StealConfig {
            policy: StealPolicy::Hierarchical,
            topology: StealTopology::from_topology(&machine, &[0, 1, 2, 3]).unwrap(),
        };
        let (sched, mut ps) = Scheduler::with_stealing(config(4), steal);
        for i in 0..8 {
            ps[2].push_local(&sched, i, LocalSlot::Back);
        }
        // P1 is empty, so P0 visits it (same L3, failure), then P2 or P3 (same node).
        assert!(ps[0].steal_work(&sched).is_some());
        let stats = sched.steal_stats();
        assert_eq!(stats.policy, "hierarchical");
        let p0 = stats.processors[0];
        assert_eq!(p0.attempts.same_l3, 1);
        assert_eq!(p0.successes.same_l3, 0);
        assert_eq!(p0.successes.same_node, 1);
        assert!(p0.attempts.same_node >= 1);
        assert_eq!(p0.tasks_stolen.same_node, 4);
        assert_eq!(ps[0].local().queue_len(), 3);
        assert_eq!(stats.total().tasks_stolen.total(), 4);
    }

    #[test]
    fn inbox_tasks_run_after_the_fifo_and_before_the_injector() {
        let (sched, mut ps) = Scheduler::new(config(2));
        sched.push_remote(100);
        assert_eq!(sched.push_to_processor(0, 7), Ok(()));
        ps[0].push_local(&sched, 1, LocalSlot::Back);
        let polled: Vec<_> = std::iter::from_fn(|| ps[0].next_task(&sched)).collect();
        assert_eq!(polled, vec![1, 7, 100]);
    }

    #[test]
    fn inbox_checked_on_fairness_tick() {
        let (sched, mut ps) = Scheduler::new(config(1));
        let p = &mut ps[0];
        for i in 0..100 {
            p.push_local(&sched, i, LocalSlot::Back);
        }
        assert_eq!(sched.push_to_processor(0, 1000), Ok(()));
        let polled: Vec<_> = (0..DEFAULT_GLOBAL_QUEUE_INTERVAL)
            .map(|_| p.next_task(&sched).unwrap())
            .collect();
        // The injector is empty, so the tick serves the inbox, behind 100 queued tasks.
        assert_eq!(polled.last(), Some(&1000));
    }

    #[test]
    fn fairness_ticks_alternate_between_injector_and_inbox() {
        let (sched, mut ps) = Scheduler::new(config(1));
        let p = &mut ps[0];
        for i in 0..200 {
            p.push_local(&sched, i, LocalSlot::Back);
        }
        sched.push_remote(1000);
        assert_eq!(sched.push_to_processor(0, 2000), Ok(()));
        assert_eq!(sched.push_to_processor(0, 2001), Ok(()));
        let interval = DEFAULT_GLOBAL_QUEUE_INTERVAL as usize;
        let polled: Vec<_> = (0..2 * interval)
            .map(|_| p.next_task(&sched).unwrap())
            .collect();
        // Tick 61: the injector's turn; tick 122: the inbox's, whose rest joins the FIFO.
        assert_eq!(polled[interval - 1], 1000);
        assert_eq!(polled[2 * interval - 1], 2000);
        assert_eq!(p.local().queue_len(), 200 - (2 * interval - 2) + 1);
    }

    #[test]
    fn thief_takes_a_victims_inbox_before_its_fifo() {
        let (sched, mut ps) = Scheduler::new(config(2));
        for i in 0..8 {
            ps[0].push_local(&sched, i, LocalSlot::Back);
        }
        for task in 100..104 {
            assert_eq!(sched.push_to_processor(0, task), Ok(()));
        }
        // One to run and half of the 3 left; the victim's FIFO is left alone.
        assert_eq!(ps[1].steal_work(&sched), Some(100));
        assert_eq!(ps[1].local().queue_len(), 1);
        assert_eq!(ps[0].local().queue_len(), 8);
        assert_eq!(sched.steal_stats().processors[1].tasks_stolen.total(), 2);
    }

    #[test]
    fn inbox_push_to_a_busy_processor_wakes_an_idle_one() {
        let (sched, mut ps) = Scheduler::new(config(2));
        let sched = std::sync::Arc::new(sched);
        let mut p1 = ps.pop().unwrap();
        let remote = std::sync::Arc::clone(&sched);
        let (found_tx, found_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            p1.park(&remote, None, || false);
            let _ = found_tx.send(p1.steal_work(&remote));
        });
        while !sched.idle().is_parked(1) {
            std::thread::yield_now();
        }
        // P0 is awake and never looks at its inbox (a long poll): only P1 can run the task.
        assert_eq!(sched.push_to_processor(0, 7), Ok(()));
        let found = found_rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            found,
            Ok(Some(7)),
            "the idle P was not woken for the inbox task"
        );
    }

    #[test]
    fn inbox_is_stealable_and_counted() {
        let (sched, mut ps) = Scheduler::new(config(2));
        assert_eq!(sched.push_to_processor(0, 7), Ok(()));
        assert_eq!(ps[1].steal_work(&sched), Some(7));
        assert_eq!(sched.steal_stats().processors[1].tasks_stolen.total(), 1);
    }

    #[test]
    fn park_with_a_task_in_the_inbox_returns_at_once() {
        let (sched, mut ps) = Scheduler::new(config(2));
        assert_eq!(sched.push_to_processor(1, 9), Ok(()));
        // Without the inbox re-check this would sleep forever (no timeout, no token).
        ps[1].park(&sched, None, || false);
        assert_eq!(ps[1].next_task(&sched), Some(9));
        assert_eq!(sched.idle().num_parked(), 0);
    }

    #[test]
    fn a_sleeping_processor_gets_no_inbox_push_and_a_push_racing_its_sleep_wakes_it() {
        let (sched, mut ps) = Scheduler::new(config(2));
        let sched = std::sync::Arc::new(sched);
        let mut p1 = ps.pop().unwrap();
        let remote = std::sync::Arc::clone(&sched);
        let sleeper = std::thread::spawn(move || {
            p1.park(&remote, None, || false);
            p1.next_task(&remote)
        });
        // Push until one lands in the inbox or the injector while P1 sleeps or is about
        // to: either way P1 must wake and find work.
        let mut sent = 0;
        while !sleeper.is_finished() {
            match sched.push_to_processor(1, sent) {
                Ok(()) => {}
                Err(task) => sched.push_remote(task),
            }
            sent += 1;
            std::thread::yield_now();
        }
        assert!(sleeper.join().unwrap().is_some());
        assert!(sent >= 1);
    }

    #[test]
    fn park_returns_when_woken_for_work() {
        let (sched, mut ps) = Scheduler::new(config(2));
        let sched = std::sync::Arc::new(sched);
        let mut p1 = ps.pop().unwrap();
        let remote = std::sync::Arc::clone(&sched);
        let sleeper = std::thread::spawn(move || {
            p1.park(&remote, None, || false);
            p1.is_searching()
        });
        // Push until the sleeper has registered and been chosen for the work.
        let mut pushed = 0;
        while !sleeper.is_finished() {
            if sched.idle().is_parked(1) {
                sched.push_remote(pushed);
                pushed += 1;
            }
            std::thread::yield_now();
        }
        assert!(sleeper.join().unwrap());
        assert!(pushed >= 1);
    }

    #[test]
    fn rand_below_in_range() {
        let mut r = FastRand::new(7);
        for bound in 1..50 {
            assert!(r.below(bound) < bound);
        }
    }
}

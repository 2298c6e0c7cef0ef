//! M: the OS thread that holds a P and runs its tasks, and the hand-off of a P.
//!
//! # The loop of an M
//!
//! ```text
//! loop {
//!     if shutdown { drain the P's queues; exit }
//!     task = P.next_task()                        // gpm_scheduler::processor
//!     if !task && P.has_deferred() { turn the driver; P.release_deferred(); continue }
//!     task = task or P.steal_work()
//!     if task { leave searching; poll it with a fresh coop budget }
//!     else    { park the P until woken }
//! }
//! ```
//!
//! # Yielded tasks wait for a driver turn
//!
//! A task that yields (`yield_now`, an exhausted coop budget, a wake during its own poll) is
//! deferred by its P, and the P never hands it back by itself: the M releases the deferred
//! tasks only right after a turn of the driver, either because nothing else is left to run
//! (a non-blocking turn, then release) or at its periodic maintenance turn. So a task looping
//! on `yield_now` until a timer fires or a socket becomes ready never spins past the event:
//! the event is delivered before the task runs again (tokio's `yield_defers_until_park`).
//!
//! The P (a boxed `Processor`) sits in the M's [`WorkerContext`] while tasks are polled, so a
//! spawn or a wake by the running task can push to the local queue (`runnext`) without any
//! synchronisation.
//!
//! # What the loop counts
//!
//! The three events the loop itself sees on every task (a poll started, a yield handed
//! back, a completion reported by the poll: `Ran::Completed`) are tallied in cells of the
//! M and added to its P's event table at each driver turn, when the P parks, and when the
//! P leaves the M (`WorkerContext::publish_counts`); counted one by one in the P's table
//! they cost yield_many 2-4% of its wall time. Every other event is counted when it
//! happens.
//!
//! Task memory (the P's slab cache) is `rt::task_memory`; `Shared` and the shutdown steps
//! are `rt::shared`.
//!
//! # Hand-off (`block_in_place`, Go's `handoffp`)
//!
//! 1. The M takes its P out of its context and parks it in the P's hand-off slot.
//! 2. It asks the thread pool for a new M (a "mandatory" job, never capped) that takes the P
//!    from the slot and runs this loop with it.
//! 3. It runs the blocking closure. The task being polled continues on this thread with no
//!    P: its own wakes and spawns go through the injector.
//! 4. Afterwards it tries to take the P back from the slot (the new M may not have started
//!    yet). If that fails, the poll finishes without a P and then this M leaves the loop and
//!    returns its thread to the pool, like an M that exits a syscall and finds no idle P.

use super::context;
use super::handle::Handle;
use super::probes::Arrival;
use super::shared::{Proc, Shared, TaskRef};
use super::stamp;
use crate::driver::{self, MAINTENANCE_INTERVAL};
use crate::task::{coop, Ran};
use gpm_scheduler::probe::Event;
use gpm_scheduler::LocalSlot;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// What an M keeps while it runs its loop; reachable from the thread's context.
pub(crate) struct WorkerContext {
    pub(crate) shared: Arc<Shared>,
    /// The P this M holds (`None` once handed off); `rt::task_memory` borrows it for the
    /// P's slab cache.
    pub(super) processor: RefCell<Option<Box<Proc>>>,
    /// Polls started since this M last published its tallies
    /// ([`WorkerContext::publish_counts`], at each driver turn, when the P parks and when it
    /// leaves the M): not yet counted on the P, and what [`WorkerContext::maintain_driver`]
    /// counts to its next turn. Zero while the M holds no P (published as the P left).
    polls_since_maintenance: Cell<u32>,
    /// Yields (a task woken in its own poll, handed back to this M) not yet counted as
    /// wake-ups on the P.
    yields_uncounted: Cell<u32>,
    /// Tasks that completed in this M's polls, not yet counted on the P.
    completions_uncounted: Cell<u32>,
    /// Set while this M wakes the tasks of a driver turn: their wakes queue as a burst
    /// (`LocalSlot::Burst`) instead of each taking `runnext`.
    waking_burst: Cell<bool>,
    /// Which of the arrivals this M queues get a timestamp (`rt::stamp`).
    sample_countdown: stamp::Countdown,
    /// The index of the P in `processor`, or [`NO_PROCESSOR`]: tells a timer or a sampled
    /// completion inside a poll which P this M holds without borrowing the slot
    /// (`Shared::current_processor`).
    held: Cell<usize>,
}

/// [`WorkerContext::held`] when the M holds no P.
const NO_PROCESSOR: usize = usize::MAX;

/// Runs the loop of an M holding `processor` until shutdown or until the P is handed off.
pub(super) fn run(shared: Arc<Shared>, processor: Box<Proc>) {
    let handle = Handle {
        shared: Arc::clone(&shared),
    };
    let _handle = context::set_handle(handle);
    let _pin = PinGuard::pin(&shared, processor.index());
    let worker = WorkerContext::new(shared, processor);
    let _worker = context::enter_worker(&worker);
    worker.run_loop();
    // Leaving with the P (shutdown): its cached blocks go back to the node pool.
    let mut processor = worker.processor.borrow_mut();
    if let Some(processor) = processor.as_mut() {
        worker.shared.flush_task_cache(processor);
    }
}

/// Pins the M to its P's PU (when the runtime pins) and releases it to the process's
/// allowed CPUs when the M leaves its loop, so the thread goes back to the pool unpinned.
struct PinGuard(bool);

impl PinGuard {
    fn pin(shared: &Shared, index: usize) -> PinGuard {
        let Some(pins) = &shared.pins else {
            return PinGuard(false);
        };
        // The builder checked the PU against this machine; a failure now (the allowed set
        // changed under us) only costs locality, so report it and run unpinned.
        match gpm_numa::pin_current_thread(pins[index]) {
            Ok(()) => PinGuard(true),
            Err(error) => {
                eprintln!("gpm: could not pin the M of P {index}: {error}");
                PinGuard(false)
            }
        }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.0 {
            if let Err(error) = gpm_numa::unpin_current_thread() {
                eprintln!("gpm: could not unpin a thread leaving its P: {error}");
            }
        }
    }
}

/// How a loop over an M's work ([`WorkerContext::run`]) goes on: the multi-thread M's loop
/// parks when idle and never leaves before its P does; the current-thread runtime's
/// `block_on` leaves after a budget of tasks or when idle, to look at its own future.
pub(super) trait LoopControl {
    /// After a task ran or the driver turned: whether to go on.
    fn keep_running(&mut self) -> bool;
    /// Nothing to run: park (and return `true` to go on) or return `false` to leave.
    fn on_idle(&mut self, worker: &WorkerContext) -> bool;
}

/// Why [`WorkerContext::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopEnd {
    /// [`LoopControl::keep_running`] said stop.
    Budget,
    /// [`LoopControl::on_idle`] said stop.
    Idle,
    /// The P is gone (handed off) or drained for shutdown.
    Exit,
}

/// The multi-thread M's control: park when idle, never leave before the P does.
struct ParkWhenIdle;

impl LoopControl for ParkWhenIdle {
    fn keep_running(&mut self) -> bool {
        true
    }

    fn on_idle(&mut self, worker: &WorkerContext) -> bool {
        worker.park(|| false);
        true
    }
}

impl WorkerContext {
    /// The context of an M holding `processor`.
    pub(super) fn new(shared: Arc<Shared>, processor: Box<Proc>) -> WorkerContext {
        WorkerContext {
            shared,
            held: Cell::new(processor.index()),
            processor: RefCell::new(Some(processor)),
            polls_since_maintenance: Cell::new(0),
            yields_uncounted: Cell::new(0),
            completions_uncounted: Cell::new(0),
            waking_burst: Cell::new(false),
            sample_countdown: stamp::Countdown::new(),
        }
    }

    fn run_loop(&self) {
        self.run(&mut ParkWhenIdle);
    }

    /// The loop of an M (module docs) under `control`: at shutdown, drains the P and
    /// exits; else runs tasks and turns the driver, asking `control` after each and when
    /// nothing is left. One function for the whole loop (generic, so each control gets its
    /// own copy): a step per call cost yield_many 4% more instructions.
    pub(super) fn run(&self, control: &mut impl LoopControl) -> LoopEnd {
        loop {
            let next = {
                let mut slot = self.processor.borrow_mut();
                let Some(processor) = slot.as_mut() else {
                    // Handed off during the last poll: this M is done. Its tallies since
                    // the hand-off are no longer its P's to write.
                    self.publish_counts_without_processor();
                    return LoopEnd::Exit;
                };
                if self.shared.is_shutdown() {
                    self.publish_counts(processor);
                    processor.local_mut().drain().for_each(drop);
                    self.shared.probes.world.exit(processor.index());
                    return LoopEnd::Exit;
                }
                self.shared.probes.safepoint(processor);
                self.find_task(processor)
            };
            match next {
                Next::Run(task, index) => {
                    match run_task_contained(&self.shared, task, index) {
                        Ran::Yielded(task) => self.queue_yielded(task),
                        Ran::Completed => self
                            .completions_uncounted
                            .set(self.completions_uncounted.get() + 1),
                        Ran::Idle => {}
                    }
                    self.maintain_driver();
                }
                Next::OnlyYielded => self.turn_driver_and_release_yielded(),
                Next::Nothing => {
                    if control.on_idle(self) {
                        continue;
                    }
                    return LoopEnd::Idle;
                }
            }
            if !control.keep_running() {
                return LoopEnd::Budget;
            }
        }
    }

    /// Takes the P back out of this context (the current-thread runtime returns it to its
    /// slot when `block_on` ends).
    pub(super) fn take_processor(&self) -> Option<Box<Proc>> {
        self.held.set(NO_PROCESSOR);
        let processor = self.processor.borrow_mut().take();
        if let Some(processor) = &processor {
            self.publish_counts(processor);
        }
        processor
    }

    /// Adds the polls, yields and completions this M has tallied since it last published
    /// them to `processor`'s counters (the P it holds). The two events an M counts on every
    /// yield cost yield_many 2-4% of its wall time counted one by one in the P's table
    /// (measured with `gpm-lab compare --probes-off`); tallied in the M and published at
    /// each driver turn (at most `MAINTENANCE_INTERVAL` polls apart), when the P parks and
    /// when it leaves the M, they cost nothing measurable. Readers see them that late.
    fn publish_counts(&self, processor: &Proc) {
        for (event, n) in self.take_tallies() {
            processor.count_many(event, n);
        }
    }

    /// [`WorkerContext::publish_counts`] for an M whose P was handed off during a poll: in
    /// the shared row.
    fn publish_counts_without_processor(&self) {
        for (event, n) in self.take_tallies() {
            if n > 0 {
                self.shared.scheduler.events().count_shared(event, n);
            }
        }
    }

    fn take_tallies(&self) -> [(Event, u64); 3] {
        let take = |cell: &Cell<u32>| u64::from(cell.replace(0));
        [
            (Event::Poll, take(&self.polls_since_maintenance)),
            (Event::Wake, take(&self.yields_uncounted)),
            (Event::Completion, take(&self.completions_uncounted)),
        ]
    }

    /// Queues a task that woke itself during the poll this M just ran (a yield, handed back
    /// by the harness: `Shared::yields_to_runner`) behind the P's other work, as
    /// `Schedule::yield_now` would, without looking up this M's context again.
    fn queue_yielded(&self, task: TaskRef) {
        let mut slot = self.processor.borrow_mut();
        match slot.as_mut() {
            Some(processor) => {
                self.stamp_arrival(&task, Arrival::Wake);
                self.yields_uncounted.set(self.yields_uncounted.get() + 1);
                processor.push_yielded(task);
            }
            None => {
                // The poll handed the P off: the task goes where any thread's would.
                drop(slot);
                crate::task::Schedule::yield_now(&self.shared, task);
            }
        }
    }

    /// Stamps a sample of the arrivals (this M's countdown) and counts one on `processor`.
    #[inline(always)]
    fn note_arrival(&self, processor: &Proc, task: &TaskRef, arrival: Arrival) {
        self.stamp_arrival(task, arrival);
        processor.count(arrival.event());
    }

    /// Stamps the task if this arrival is the M's sample (`rt::stamp`).
    #[inline(always)]
    fn stamp_arrival(&self, task: &TaskRef, arrival: Arrival) {
        let every = self.shared.probes.sample_every();
        arrival.stamp(task.header(), self.sample_countdown.sample(every));
    }

    /// Every `MAINTENANCE_INTERVAL` polls, a non-blocking turn of the driver, so a runtime
    /// too busy to park still serves I/O and timers.
    fn maintain_driver(&self) {
        if self.polls_since_maintenance.get() >= MAINTENANCE_INTERVAL {
            self.turn_driver_and_release_yielded();
        }
    }

    /// A non-blocking turn of the driver: publishes this M's tallies (which restarts the
    /// count of polls to the next maintenance turn) and its P's gauges, wakes what the turn
    /// made ready, then releases the tasks that yielded.
    pub(super) fn turn_driver_and_release_yielded(&self) {
        let home = self.processor.borrow().as_ref().map(|p| {
            self.publish_counts(p);
            self.shared.probes.publish_gauges(p);
            p.index()
        });
        self.as_burst(|| self.shared.driver.maintain(home));
        if let Some(processor) = self.processor.borrow_mut().as_mut() {
            processor.release_deferred(&self.shared.scheduler);
        }
    }

    // Inlined into the loop, as when it had one caller: its call cost yield_many 5-10%
    // more instructions (measured with callgrind, `bench/examples/probe_cost.rs`).
    #[inline(always)]
    fn find_task(&self, processor: &mut Proc) -> Next {
        let scheduler = &self.shared.scheduler;
        let task = match processor.next_task(scheduler) {
            Some(task) => task,
            None if processor.has_deferred() => return Next::OnlyYielded,
            None => match processor.steal_work(scheduler) {
                Some(task) => task,
                None => return Next::Nothing,
            },
        };
        processor.transition_from_searching(scheduler);
        // Counted on the P at the next publication (`publish_counts`).
        self.polls_since_maintenance
            .set(self.polls_since_maintenance.get() + 1);
        Next::Run(task, processor.index())
    }

    /// Parks the P (the M may sleep in the driver) until it is given work or `woken` says
    /// so, then wakes the tasks the driver made ready while the P was borrowed, so they
    /// land in this P's local queue.
    pub(super) fn park(&self, woken: impl Fn() -> bool) {
        {
            let mut slot = self.processor.borrow_mut();
            if let Some(processor) = slot.as_mut() {
                let shared = &self.shared;
                let world = &shared.probes.world;
                self.publish_counts(processor);
                shared.probes.publish_gauges(processor);
                world.enter_idle(processor.index());
                processor.park(&shared.scheduler, None, || {
                    shared.is_shutdown() || driver::has_deferred_wakes() || woken()
                });
                world.leave_idle(processor.index());
            }
        }
        self.as_burst(driver::wake_deferred);
    }

    /// Runs `wake` (which wakes the tasks of a driver turn) with this M's wakes queued as a
    /// burst: FIFO behind the queued tasks, overflow to the P's inbox; then wakes another P
    /// once, if the burst left more than this P runs next (`Processor::end_burst`).
    fn as_burst(&self, wake: impl FnOnce()) {
        self.waking_burst.set(true);
        wake();
        self.waking_burst.set(false);
        if let Ok(Some(processor)) = self.processor.try_borrow().as_deref() {
            processor.end_burst(&self.shared.scheduler);
        }
    }

    /// Pushes to this M's P; gives the task back if the P was handed off.
    pub(super) fn push_local(
        &self,
        task: TaskRef,
        slot: LocalSlot,
        arrival: Arrival,
    ) -> Option<TaskRef> {
        let Ok(mut processor) = self.processor.try_borrow_mut() else {
            return Some(task);
        };
        let slot = match slot {
            LocalSlot::RunNext if self.waking_burst.get() => LocalSlot::Burst,
            slot => slot,
        };
        match processor.as_mut() {
            Some(processor) => {
                self.note_arrival(processor, &task, arrival);
                processor.push_local(&self.shared.scheduler, task, slot);
                None
            }
            None => Some(task),
        }
    }

    /// The index of the P this M holds, without borrowing its slot: what a completion
    /// inside a poll counts on (only the holder writes a P's event table, and this M is it
    /// while `held` names the P; `held` is set and cleared with the `processor` slot).
    #[inline]
    pub(super) fn held_processor(&self) -> Option<usize> {
        Some(self.held.get()).filter(|&index| index != NO_PROCESSOR)
    }

    /// `f` with the P this M holds, if it holds one and is not inside its scheduler.
    pub(super) fn with_processor<R>(&self, f: impl FnOnce(&Proc) -> R) -> Option<R> {
        let processor = self.processor.try_borrow().ok()?;
        processor.as_deref().map(f)
    }

    /// Steps 1 and 2 of the hand-off. Returns the P's index if there was one to hand off.
    pub(crate) fn hand_off_processor(&self) -> Option<usize> {
        let processor = self.processor.try_borrow_mut().ok()?.take()?;
        self.held.set(NO_PROCESSOR);
        // The tallies are this P's: published before another M may hold it.
        self.publish_counts(&processor);
        let index = processor.index();
        if let Err(error) = self.shared.start_m(processor) {
            // No thread for a new M: keep the P here and block it, as if there were no
            // hand-off. The P is reclaimed from the slot right below.
            eprintln!("gpm: could not start an M for block_in_place: {error}");
        }
        Some(index)
    }

    /// Step 4: takes the P back if no M has picked it up yet.
    pub(crate) fn reclaim_processor(&self, index: usize) {
        if let Some(processor) = self.shared.take_handed_off(index) {
            self.held.set(processor.index());
            *self.processor.borrow_mut() = Some(processor);
        }
    }
}

/// What an M found to do.
enum Next {
    /// Poll this task on the P of that index.
    Run(TaskRef, usize),
    /// Only tasks that yielded are left: turn the driver, then release them.
    OnlyYielded,
    /// Nothing at all: park.
    Nothing,
}

/// What running a task of this runtime left its M with.
type RanTask = Ran<Arc<Shared>>;

/// [`run_task`], with any panic that escapes the task's own containment (the task catches
/// its poll, its drops and its join waker) caught here, so that the M keeps its P: a dead
/// M would take the P with it, and every later stop-the-world and shutdown would wait
/// for it.
#[inline(always)]
fn run_task_contained(shared: &Shared, task: TaskRef, processor_index: usize) -> RanTask {
    let run = std::panic::AssertUnwindSafe(|| run_task(shared, task, processor_index));
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let message = crate::task::panic_payload_message(&*panic);
        eprintln!(
            "gpm: a panic escaped a task on P {processor_index} and was contained: {message}"
        );
        Ran::Idle
    })
}

/// Polls `task` on P `processor_index`. A sampled task (stamped at enqueue) also feeds the
/// P's latency history (its wait in the queues and the length of this poll) and the probes'
/// queue-wait histogram.
#[inline(always)]
fn run_task(shared: &Shared, task: TaskRef, processor_index: usize) -> RanTask {
    let header = task.header();
    header.set_last_processor(processor_index);
    let enqueued = header.times.take_enqueued();
    if enqueued == 0 {
        return coop::with_budget(|| task.run());
    }
    let start = stamp::now();
    let wait = stamp::ns_between(enqueued, start);
    let latency = shared.scheduler.latency(processor_index);
    latency.record_queue_wait(wait);
    shared.probes.queue_wait(processor_index, wait);
    let ran = coop::with_budget(|| task.run());
    latency.record_poll(stamp::ns_since(start));
    ran
}

//! `Shared`: everything the runtime's threads share, and its whole API (spawn, the push of a
//! woken task, the start of an M, the probes' snapshot and the stop-the-world, task memory,
//! shutdown).
//!
//! # Where a scheduled task goes
//!
//! A spawn or a wake on an M of this runtime that holds its P goes to that P's local queue
//! (`runnext`, or the deferred list for a yield); see `WorkerContext::push_local`. Anything
//! else (a thread outside the runtime, an M inside its scheduler or without a P) goes to the
//! task's last P's inbox while that P is awake and `last_p_wakeups` is on, else to the
//! injector.
//!
//! # Shutdown
//!
//! `Shared::begin_shutdown` sets the flag, closes the injector and wakes every P. Each M
//! drains its P's queues (dropping the notifications, not the futures) and exits. The
//! shutting-down thread cancels every task through the owned list (dropping each future
//! exactly once) and then waits for the threads.

use super::blocking::{self, BlockingSchedule};
use super::context;
use super::probes::{self, Arrival, ProbeState, Probes, StoppedWorld, StwReport};
use super::task_memory::TaskMemory;
use super::worker;
use crate::alloc::{SizeClass, TaskAllocatorStats};
use crate::driver::Driver;
use crate::task::core::Header;
use crate::task::list::OwnedTasks;
use crate::task::{new_task, CompletedIn, Id, JoinHandle, Notified, Schedule, Task};
use gpm_scheduler::probe::Event;
use gpm_scheduler::{Config as SchedulerConfig, LocalSlot, Processor, Scheduler, StealConfig};
use std::alloc::Layout;
use std::fmt;
use std::future::Future;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) type TaskRef = Notified<Arc<Shared>>;
pub(crate) type Proc = Processor<TaskRef>;

/// Everything the runtime's threads share: the scheduler, the tasks, the thread pool.
pub(crate) struct Shared {
    pub(crate) scheduler: Scheduler<TaskRef>,
    pub(crate) owned: OwnedTasks<Arc<Shared>>,
    pub(crate) blocking: blocking::Pool,
    /// Timers and I/O; the parking M drives it (see `crate::driver`).
    pub(crate) driver: Arc<Driver>,
    handoff: Box<[Mutex<Option<Box<Proc>>>]>,
    shutdown: AtomicBool,
    /// `pins[p]`: the PU an M pins itself to while it holds P `p` (`None`: no pinning).
    pub(super) pins: Option<Box<[usize]>>,
    /// Whether tasks woken off the Ps go back to their last P (else to the injector).
    last_p_wakeups: bool,
    pub(crate) probes: ProbeState,
    task_memory: TaskMemory,
    /// The runtime's identity (`Handle::id`).
    pub(crate) id: super::handle::Id,
    /// The runtime's name (`Builder::name`, `Handle::name`).
    pub(crate) name: Option<String>,
    /// A current-thread runtime: its one P waits in hand-off slot 0 for a `block_on`
    /// (`rt::current_thread`) instead of running on an M of its own.
    pub(crate) current_thread: bool,
    /// `block_on`s of a current-thread runtime waiting for its P.
    processor_waiters: Mutex<Vec<std::task::Waker>>,
}

/// Settings of [`Shared`] beyond the scheduler's.
pub(crate) struct SharedOptions {
    pub(crate) pins: Option<Box<[usize]>>,
    pub(crate) last_p_wakeups: bool,
    /// Whether the probes count events (`Builder::enable_probes`).
    pub(crate) probes_enabled: bool,
    /// One schedule in this many is timestamped (`Builder::probe_sampling`; 0: none).
    pub(crate) sample_every: u32,
    /// A current-thread runtime (`Builder::new_current_thread`).
    pub(crate) current_thread: bool,
    /// The runtime's name (`Builder::name`).
    pub(crate) name: Option<String>,
}

impl Shared {
    /// Creates the shared state and the Ps (handed out once, to the first Ms).
    pub(crate) fn new(
        config: SchedulerConfig,
        steal: StealConfig,
        options: SharedOptions,
        pool: blocking::Pool,
        driver: Driver,
        task_memory: TaskMemory,
    ) -> (Arc<Shared>, Vec<Proc>) {
        let (scheduler, processors) = Scheduler::with_stealing(config, steal);
        let driver = Arc::new(driver);
        scheduler.install_park_driver(Arc::clone(&driver) as Arc<dyn gpm_scheduler::ParkDriver>);
        let handoff = (0..config.processors).map(|_| Mutex::new(None)).collect();
        let shared = Arc::new(Shared {
            scheduler,
            owned: OwnedTasks::new(4 * config.processors),
            blocking: pool,
            driver,
            handoff,
            shutdown: AtomicBool::new(false),
            pins: options.pins,
            last_p_wakeups: options.last_p_wakeups,
            probes: ProbeState::new(
                config.processors,
                options.probes_enabled,
                options.sample_every,
            ),
            task_memory,
            id: super::handle::Id::next(),
            name: options.name,
            current_thread: options.current_thread,
            processor_waiters: Mutex::new(Vec::new()),
        });
        (shared, processors)
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Spawns `future` as a task of this runtime.
    pub(crate) fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, notified, join) = new_task(future, Arc::clone(self), Id::next());
        match self.owned.bind(task) {
            Ok(()) => self.push(notified, LocalSlot::RunNext, Arrival::Spawn),
            Err(task) => {
                // Shutting down: the task never runs.
                drop(notified);
                task.shutdown();
            }
        }
        join
    }

    /// Spawns a blocking closure on the pool. Under a paused clock the task holds
    /// auto-advance back from now until it completes (`BlockingSchedule`'s `inhibit`): the
    /// closure may be about to wake a task.
    pub(crate) fn spawn_blocking<F, R>(self: &Arc<Self>, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let clock = self.driver.time.clock();
        let inhibit = clock.is_virtual().then(|| {
            let driver = Arc::clone(&self.driver);
            clock.inhibit(move || driver.wake())
        });
        let schedule = BlockingSchedule::new(self, inhibit);
        let (task, notified, join) =
            new_task(blocking::BlockingTask::new(func), schedule, Id::next());
        // Blocking tasks are not in the owned list: the pool reaches them at shutdown.
        drop(task);
        self.blocking.submit_task(notified, self);
        join
    }

    /// Starts an M for `processor` on a pool thread.
    pub(crate) fn start_m(self: &Arc<Self>, processor: Box<Proc>) -> std::io::Result<()> {
        let index = processor.index();
        *lock(&self.handoff[index]) = Some(processor);
        let shared = Arc::clone(self);
        self.blocking.submit_m(self, move || {
            if let Some(processor) = shared.take_handed_off(index) {
                worker::run(shared, processor);
            }
        })
    }

    /// Parks the P of a current-thread runtime in its slot until a `block_on` takes it
    /// (it counts as idle for stop-the-world meanwhile), and wakes the `block_on`s waiting
    /// for it. At shutdown it is drained and dropped instead (the steps of
    /// `drop_parked_processors` may already have run).
    pub(crate) fn release_current_thread_processor(&self, mut processor: Box<Proc>) {
        let index = processor.index();
        if self.is_shutdown() {
            processor.local_mut().drain().for_each(drop);
            self.probes.world.exit(index);
            self.flush_task_cache(&mut processor);
        } else {
            self.probes.world.enter_idle(index);
            *lock(&self.handoff[index]) = Some(processor);
        }
        let waiters = std::mem::take(&mut *lock(&self.processor_waiters));
        waiters.into_iter().for_each(std::task::Waker::wake);
    }

    /// Takes the P of a current-thread runtime for a `block_on`, or registers `waker` to be
    /// woken when it comes back.
    pub(crate) fn take_current_thread_processor(
        &self,
        waker: &std::task::Waker,
    ) -> Option<Box<Proc>> {
        let mut waiters = lock(&self.processor_waiters);
        match self.take_handed_off(0) {
            Some(processor) => {
                self.probes.world.leave_idle(processor.index());
                Some(processor)
            }
            None => {
                waiters.push(waker.clone());
                None
            }
        }
    }

    /// The P parked in hand-off slot `index`, if no M has taken it yet.
    pub(super) fn take_handed_off(&self, index: usize) -> Option<Box<Proc>> {
        lock(&self.handoff[index]).take()
    }

    fn schedule_to(self: &Arc<Self>, task: TaskRef, slot: LocalSlot) {
        self.push(task, slot, Arrival::Wake);
    }

    /// Stamps a sample of the arrivals (an M with its own countdown, other threads with a
    /// thread-local one), counts the arrival, and queues the task.
    fn push(self: &Arc<Self>, task: TaskRef, slot: LocalSlot, arrival: Arrival) {
        let task = context::with_worker(|worker| match worker {
            Some(worker) if Arc::ptr_eq(&worker.shared, self) => {
                worker.push_local(task, slot, arrival)
            }
            _ => Some(task),
        });
        if let Some(task) = task {
            arrival.stamp(task.header(), self.probes.sample());
            self.scheduler.events().count_shared(arrival.event(), 1);
            self.push_off_processor(task);
        }
    }

    /// A task scheduled off this runtime's Ps: to its last P's inbox while that P is awake,
    /// else (or when never polled, or when disabled) to the injector.
    fn push_off_processor(&self, task: TaskRef) {
        let last = task.header().last_processor();
        let task = match last {
            Some(index) if self.last_p_wakeups => {
                match self.scheduler.push_to_processor(index, task) {
                    Ok(()) => return,
                    Err(task) => task,
                }
            }
            _ => task,
        };
        self.scheduler.push_remote(task);
    }

    /// Step 1 of shutdown: stop scheduling and wake every P.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        // Close the queues first: the driver's shutdown wakes every task blocked in I/O, and
        // those wake-ups must find the queues closed rather than hand the task one more poll.
        self.scheduler.close_queues();
        self.driver.shutdown();
        self.scheduler.unpark_all();
    }

    /// Step 2: cancel every task that is still alive. Loops because cancelling a task may
    /// run user code (drops) that spawns; those spawns find the list closed.
    pub(crate) fn cancel_all_tasks(&self) {
        loop {
            let tasks = self.owned.close_and_take_all();
            if tasks.is_empty() {
                break;
            }
            tasks.into_iter().for_each(Task::shutdown);
        }
    }

    /// Step 3: once the Ms are gone, drop what they left in the hand-off slots, and give
    /// the pages of idle task-memory spans back to the OS.
    pub(crate) fn drop_parked_processors(&self) {
        for index in 0..self.handoff.len() {
            if let Some(mut processor) = self.take_handed_off(index) {
                processor.local_mut().drain().for_each(drop);
                self.probes.world.exit(processor.index());
                self.flush_task_cache(&mut processor);
            }
        }
        self.scheduler.close_queues();
        self.release_idle_task_memory();
    }

    /// The P this thread holds, if it is an M of this runtime holding one (one
    /// thread-local lookup).
    pub(crate) fn current_processor(self: &Arc<Self>) -> Option<usize> {
        // The index the M keeps beside its P slot: no borrow of the slot (a timer asks this
        // for every `sleep`).
        context::with_worker(|worker| match worker {
            Some(worker) if Arc::ptr_eq(&worker.shared, self) => worker.held_processor(),
            _ => None,
        })
    }

    /// Calls `f` with the P this thread holds, if it is an M of this runtime holding one
    /// outside its scheduler (inside a poll, say); else returns `None`.
    pub(crate) fn with_current_processor<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&Proc) -> R,
    ) -> Option<R> {
        context::with_worker(|worker| match worker {
            Some(worker) if Arc::ptr_eq(&worker.shared, self) => worker.with_processor(f),
            _ => None,
        })
    }

    /// Builds the [`Probes`] snapshot (`probes::snapshot`).
    pub(crate) fn probes(&self) -> Probes {
        probes::snapshot(self)
    }

    /// Stops the world; see [`Handle::stop_the_world`](super::Handle::stop_the_world) and
    /// `probes::stw`.
    ///
    /// # Panics
    /// Called from inside `inspect` of a stop of this same runtime (`probes::stw`).
    #[track_caller]
    pub(crate) fn stop_the_world<R>(
        self: &Arc<Self>,
        inspect: impl FnOnce(&StoppedWorld) -> R,
    ) -> (R, StwReport) {
        probes::stop_the_world(self, inspect)
    }

    /// `Schedule::allocate_task` for every scheduler type of this runtime.
    pub(crate) fn allocate_task(&self, layout: Layout, class: Option<SizeClass>) -> NonNull<u8> {
        self.task_memory.allocate(self, layout, class)
    }

    /// `Schedule::deallocate_task`.
    ///
    /// # Safety
    /// As for `Schedule::deallocate_task`, with memory from [`Shared::allocate_task`].
    pub(crate) unsafe fn deallocate_task(
        &self,
        ptr: NonNull<u8>,
        layout: Layout,
        class: Option<SizeClass>,
    ) {
        // SAFETY: forwarded contract.
        unsafe { self.task_memory.deallocate(self, ptr, layout, class) }
    }

    /// Gives the cached blocks of `processor` back to its node pool (the P is leaving).
    pub(super) fn flush_task_cache(&self, processor: &mut Proc) {
        self.task_memory.flush(processor);
    }

    /// The scavenger: releases the pages of every span whose blocks are all free in its
    /// node pool. Returns the number of spans (0 with the system allocator).
    pub(crate) fn release_idle_task_memory(&self) -> usize {
        self.task_memory.release_idle()
    }

    /// Counts a completion at shutdown (in the shared row: the thread may hold no P), and
    /// records a sampled task's sojourn, before the task leaves the owned list. A task that
    /// completes in a poll is counted by the M that ran it, on its P, when the poll returns
    /// (`Ran::Completed`, tallied with the polls: `WorkerContext::publish_counts`): an
    /// atomic add here, on the task's last P, drained the store buffer once per task and
    /// cost spawn-heavy workloads 4-6% of their wall time, and a thread-local lookup of the
    /// P this thread holds cost 17 instructions per task (docs/BENCHMARKS.md, "Probes,
    /// third pass").
    #[inline]
    fn count_completion(self: &Arc<Self>, header: &Header, at: CompletedIn) {
        if at == CompletedIn::Shutdown {
            self.scheduler.events().count_shared(Event::Completion, 1);
        }
        if let Some(spawned) = header.times.spawned() {
            self.record_sojourn(self.current_processor(), spawned);
        }
    }

    /// Counts `n` of `event` on P `held`, which this thread holds, or in the shared row.
    #[inline]
    fn count_here(&self, held: Option<usize>, event: Event, n: u64) {
        let events = self.scheduler.events();
        match held {
            Some(index) => events.table(index).add(event, n),
            None => events.count_shared(event, n),
        }
    }

    /// Records the sojourn of a sampled task (spawned at stamp `spawned`) that completed
    /// on this thread, which holds P `held`.
    #[cold]
    fn record_sojourn(&self, held: Option<usize>, spawned: u64) {
        let sojourn = self.probes.record_sojourn(held, spawned);
        self.count_here(held, Event::SojournNs, sojourn);
        self.count_here(held, Event::Sojourn, 1);
    }

    pub(crate) fn task_allocator_stats(&self) -> TaskAllocatorStats {
        self.task_memory.stats()
    }
}

impl Schedule for Arc<Shared> {
    fn schedule(&self, task: TaskRef) {
        self.schedule_to(task, LocalSlot::RunNext);
    }

    fn yield_now(&self, task: TaskRef) {
        self.schedule_to(task, LocalSlot::Deferred);
    }

    /// The runtime's tasks are run by its Ms, which queue a yielded task on the P they
    /// hold (`WorkerContext::queue_yielded`).
    fn yields_to_runner(&self) -> bool {
        true
    }

    fn release(&self, task: &Task<Self>, at: CompletedIn) -> Option<Task<Self>> {
        if self.probes.enabled() {
            self.count_completion(task.header(), at);
        }
        self.owned.remove(task)
    }

    fn allocate_task(&self, layout: Layout, class: Option<SizeClass>) -> NonNull<u8> {
        Shared::allocate_task(self, layout, class)
    }

    unsafe fn deallocate_task(&self, ptr: NonNull<u8>, layout: Layout, class: Option<SizeClass>) {
        // SAFETY: forwarded contract.
        unsafe { Shared::deallocate_task(self, ptr, layout, class) }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("scheduler", &self.scheduler)
            .field("tasks", &self.owned.len())
            .field("shutdown", &self.is_shutdown())
            .finish()
    }
}

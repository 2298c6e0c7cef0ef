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
//! # Task memory
//!
//! With the slab (`crate::alloc`), a spawn or a free on an M uses the cache of the P it
//! holds: `Shared::with_local_cache` borrows the `Box<Processor>` out of the context (the
//! proof of exclusive use of that P's cache) for the length of one allocation or free. No
//! P, a P of another runtime, or a P already borrowed (the M draining its queues): the
//! node pool's shared paths. An M leaving with its P flushes the P's cache.
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
//!
//! # Shutdown
//!
//! `Shared::begin_shutdown` sets the flag, closes the injector and wakes every P. Each M
//! drains its P's queues (dropping the notifications, not the futures) and exits. The
//! shutting-down thread cancels every task through the owned list (dropping each future
//! exactly once) and then waits for the threads.

use super::blocking::{self, BlockingSchedule};
use super::clock;
use super::context;
use super::handle::Handle;
use super::probes::{Arrival, ProbeState};
use crate::alloc::{LocalCache, SizeClass, Slab, TaskAllocatorStats};
use crate::driver::{self, Driver, MAINTENANCE_INTERVAL};
use crate::task::list::OwnedTasks;
use crate::task::{coop, new_task, Id, JoinHandle, Notified, Schedule, Task};
use gpm_scheduler::{Config as SchedulerConfig, LocalSlot, Processor, Scheduler, StealConfig};
use std::alloc::Layout;
use std::cell::{Cell, RefCell};
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
    pins: Option<Box<[usize]>>,
    /// Whether tasks woken off the Ps go back to their last P (else to the injector).
    last_p_wakeups: bool,
    pub(crate) probes: ProbeState,
    task_memory: TaskMemory,
    /// The runtime's identity (`Handle::id`).
    pub(crate) id: super::handle::Id,
}

/// Settings of [`Shared`] beyond the scheduler's.
pub(crate) struct SharedOptions {
    pub(crate) pins: Option<Box<[usize]>>,
    pub(crate) last_p_wakeups: bool,
    /// Whether the probes count events (`Builder::enable_probes`).
    pub(crate) probes_enabled: bool,
    /// One schedule in this many is timestamped (`Builder::probe_sampling`; 0: none).
    pub(crate) sample_every: u32,
}

/// Where the runtime's task cells live (`Builder::task_allocator`).
pub(crate) enum TaskMemory {
    /// The global allocator.
    System,
    /// The slab, with one cache per P (indexed like the Ps).
    Slab(Slab),
}

/// What an M keeps while it runs its loop; reachable from the thread's context.
pub(crate) struct WorkerContext {
    pub(crate) shared: Arc<Shared>,
    processor: RefCell<Option<Box<Proc>>>,
    /// Polls since the last non-blocking turn of the driver.
    polls_since_maintenance: Cell<u32>,
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
        notified.header().times.set_spawned(self.probes.sample_ns());
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

    /// Spawns a blocking closure on the pool.
    pub(crate) fn spawn_blocking<F, R>(self: &Arc<Self>, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let schedule = BlockingSchedule::new(self);
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
            let processor = lock(&shared.handoff[index]).take();
            if let Some(processor) = processor {
                run(shared, processor);
            }
        })
    }

    /// Stamps a sample of the schedules, then queues the task.
    fn schedule_to(self: &Arc<Self>, task: TaskRef, slot: LocalSlot) {
        task.header().times.set_enqueued(self.probes.sample_ns());
        self.push(task, slot, Arrival::Wake);
    }

    fn push(self: &Arc<Self>, task: TaskRef, slot: LocalSlot, arrival: Arrival) {
        let task = context::with_worker(|worker| match worker {
            Some(worker) if Arc::ptr_eq(&worker.shared, self) => {
                worker.push_local(task, slot, arrival)
            }
            _ => Some(task),
        });
        if let Some(task) = task {
            self.probes.arrived(None, arrival);
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
        for slot in self.handoff.iter() {
            let processor = lock(slot).take();
            if let Some(mut processor) = processor {
                processor.local_mut().drain().for_each(drop);
                self.probes.world.exit(processor.index());
                self.flush_task_cache(&mut processor);
            }
        }
        self.scheduler.close_queues();
        self.release_idle_task_memory();
    }

    /// Calls `f` with the cache of the P this thread holds, if it is an M of this runtime
    /// holding its P right now (and not already inside a borrow of it); else with `None`.
    fn with_local_cache<R>(
        &self,
        slab: &Slab,
        f: impl FnOnce(Option<&mut LocalCache<'_>>) -> R,
    ) -> R {
        context::with_worker(|worker| {
            let Some(worker) = worker.filter(|w| std::ptr::eq(Arc::as_ptr(&w.shared), self)) else {
                return f(None);
            };
            let Ok(mut slot) = worker.processor.try_borrow_mut() else {
                return f(None);
            };
            match slot.as_mut() {
                Some(processor) => f(Some(&mut local_cache(slab, processor))),
                None => f(None),
            }
        })
    }

    /// Gives the cached blocks of `processor` back to its node pool (the P is leaving).
    fn flush_task_cache(&self, processor: &mut Proc) {
        if let TaskMemory::Slab(slab) = &self.task_memory {
            local_cache(slab, processor).flush_all();
        }
    }

    /// The scavenger: releases the pages of every span whose blocks are all free in its
    /// node pool. Returns the number of spans (0 with the system allocator).
    /// The P this thread holds, if it is an M of this runtime holding one outside its
    /// scheduler (one thread-local lookup).
    pub(crate) fn current_processor(self: &Arc<Self>) -> Option<usize> {
        self.with_current_processor(|processor| processor.index())
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

    pub(crate) fn release_idle_task_memory(&self) -> usize {
        match &self.task_memory {
            TaskMemory::Slab(slab) => slab.release_idle_spans(),
            TaskMemory::System => 0,
        }
    }

    pub(crate) fn task_allocator_stats(&self) -> TaskAllocatorStats {
        match &self.task_memory {
            TaskMemory::Slab(slab) => slab.stats(),
            TaskMemory::System => TaskAllocatorStats {
                allocator: crate::TaskAllocator::System,
                ..TaskAllocatorStats::default()
            },
        }
    }
}

/// The cache of the P `processor`. Safe because the `&mut Box<Processor>` is the proof of
/// exclusive use that `Slab::local` asks for: `Scheduler::new` makes exactly one
/// `Processor` per index, it is never cloned, and whoever holds `&mut` to it (the M running
/// it, or the shutting-down thread that took it from a hand-off slot) is the only one who
/// can reach that index's cache for the borrow's lifetime. The caller passes the slab of
/// the runtime the P belongs to.
fn local_cache<'a>(slab: &'a Slab, processor: &'a mut Proc) -> LocalCache<'a> {
    debug_assert!(processor.index() < slab.num_processors());
    // SAFETY: see above: `processor` is borrowed mutably for 'a, so no other LocalCache
    // for its index can be made meanwhile.
    unsafe { slab.local(processor.index()) }
}

impl Shared {
    /// `Schedule::allocate_task` for every scheduler type of this runtime.
    pub(crate) fn allocate_task(&self, layout: Layout, class: Option<SizeClass>) -> NonNull<u8> {
        match &self.task_memory {
            TaskMemory::System => system_allocate(layout),
            TaskMemory::Slab(slab) => {
                self.with_local_cache(slab, |cache| slab.allocate(cache, layout, class))
            }
        }
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
        match &self.task_memory {
            // SAFETY: allocated by `system_allocate(layout)` (caller's contract).
            TaskMemory::System => unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) },
            TaskMemory::Slab(slab) => self.with_local_cache(slab, |cache| {
                // SAFETY: forwarded contract.
                unsafe { slab.deallocate(cache, ptr, layout, class) }
            }),
        }
    }
}

fn system_allocate(layout: Layout) -> NonNull<u8> {
    // SAFETY: task cells are never zero-sized.
    let ptr = unsafe { std::alloc::alloc(layout) };
    NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

impl Schedule for Arc<Shared> {
    fn schedule(&self, task: TaskRef) {
        self.schedule_to(task, LocalSlot::RunNext);
    }

    fn yield_now(&self, task: TaskRef) {
        self.schedule_to(task, LocalSlot::Deferred);
    }

    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        if self.probes.enabled() {
            self.probes
                .completed(self.current_processor(), task.header());
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

/// Runs the loop of an M holding `processor` until shutdown or until the P is handed off.
fn run(shared: Arc<Shared>, processor: Box<Proc>) {
    let handle = Handle {
        shared: Arc::clone(&shared),
    };
    let _handle = context::set_handle(handle);
    let _pin = PinGuard::pin(&shared, processor.index());
    let worker = WorkerContext {
        shared,
        processor: RefCell::new(Some(processor)),
        polls_since_maintenance: Cell::new(0),
    };
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

impl WorkerContext {
    fn run_loop(&self) {
        loop {
            let next = {
                let mut slot = self.processor.borrow_mut();
                let Some(processor) = slot.as_mut() else {
                    // Handed off during the last poll: this M is done.
                    return;
                };
                if self.shared.is_shutdown() {
                    processor.local_mut().drain().for_each(drop);
                    self.shared.probes.world.exit(processor.index());
                    return;
                }
                self.shared.probes.safepoint(processor);
                self.find_task(processor)
            };
            match next {
                Next::Run(task, index) => {
                    run_task_contained(&self.shared, task, index);
                    self.maintain_driver();
                }
                Next::OnlyYielded => self.turn_driver_and_release_yielded(),
                Next::Nothing => self.park(),
            }
        }
    }

    /// Every `MAINTENANCE_INTERVAL` polls, a non-blocking turn of the driver, so a runtime
    /// too busy to park still serves I/O and timers.
    fn maintain_driver(&self) {
        let polls = self.polls_since_maintenance.get() + 1;
        if polls < MAINTENANCE_INTERVAL {
            self.polls_since_maintenance.set(polls);
            return;
        }
        self.turn_driver_and_release_yielded();
    }

    /// A non-blocking turn of the driver (its wakes land in this P's queue), then the tasks
    /// that yielded before it go back to the FIFO (module docs).
    fn turn_driver_and_release_yielded(&self) {
        self.polls_since_maintenance.set(0);
        self.shared.driver.maintain();
        if let Some(processor) = self.processor.borrow_mut().as_mut() {
            processor.release_deferred(&self.shared.scheduler);
        }
    }

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
        Next::Run(task, processor.index())
    }

    /// Parks the P (the M may sleep in the driver), then wakes the tasks the driver made
    /// ready while the P was borrowed, so they land in this P's local queue.
    fn park(&self) {
        {
            let mut slot = self.processor.borrow_mut();
            if let Some(processor) = slot.as_mut() {
                let shared = &self.shared;
                let world = &shared.probes.world;
                world.enter_idle(processor.index());
                processor.park(&shared.scheduler, None, || {
                    shared.is_shutdown() || driver::has_deferred_wakes()
                });
                world.leave_idle(processor.index());
            }
        }
        driver::wake_deferred();
    }

    /// Pushes to this M's P; gives the task back if the P was handed off.
    fn push_local(&self, task: TaskRef, slot: LocalSlot, arrival: Arrival) -> Option<TaskRef> {
        let Ok(mut processor) = self.processor.try_borrow_mut() else {
            return Some(task);
        };
        match processor.as_mut() {
            Some(processor) => {
                self.shared.probes.arrived(Some(processor.index()), arrival);
                processor.push_local(&self.shared.scheduler, task, slot);
                None
            }
            None => Some(task),
        }
    }

    /// `f` with the P this M holds, if it holds one and is not inside its scheduler.
    fn with_processor<R>(&self, f: impl FnOnce(&Proc) -> R) -> Option<R> {
        let processor = self.processor.try_borrow().ok()?;
        processor.as_deref().map(f)
    }

    /// Steps 1 and 2 of the hand-off. Returns the P's index if there was one to hand off.
    pub(crate) fn hand_off_processor(&self) -> Option<usize> {
        let processor = self.processor.try_borrow_mut().ok()?.take()?;
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
        let processor = lock(&self.shared.handoff[index]).take();
        if let Some(processor) = processor {
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

/// [`run_task`], with any panic that escapes the task's own containment (the task catches
/// its poll, its drops and its join waker) caught here, so that the M keeps its P: a dead
/// M would take the P with it, and every later stop-the-world and shutdown would wait
/// for it.
fn run_task_contained(shared: &Shared, task: TaskRef, processor_index: usize) {
    let run = std::panic::AssertUnwindSafe(|| run_task(shared, task, processor_index));
    if let Err(panic) = std::panic::catch_unwind(run) {
        let message = crate::task::panic_payload_message(&*panic);
        eprintln!(
            "gpm: a panic escaped a task on P {processor_index} and was contained: {message}"
        );
    }
}

/// Polls `task` on P `processor_index`. A sampled task (stamped at enqueue) also feeds the
/// P's latency history (its wait in the queues and the length of this poll) and the probes'
/// queue-wait histogram.
fn run_task(shared: &Shared, task: TaskRef, processor_index: usize) {
    let header = task.header();
    header.set_last_processor(processor_index);
    let enqueued = header.times.take_enqueued();
    shared.probes.polling(processor_index);
    if enqueued == 0 {
        coop::with_budget(|| task.run());
        return;
    }
    let start = clock::now_ns();
    let wait = start.saturating_sub(enqueued);
    let latency = shared.scheduler.latency(processor_index);
    latency.record_queue_wait(wait);
    shared.probes.queue_wait(processor_index, wait);
    coop::with_budget(|| task.run());
    latency.record_poll(clock::now_ns().saturating_sub(start));
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

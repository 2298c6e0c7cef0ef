//! The thread pool behind Ms and `spawn_blocking`.
//!
//! Every OS thread of a runtime comes from this pool. A thread takes jobs from one queue:
//! either a blocking task, or the loop of an M (a P to run). Idle threads wait on a condition
//! variable and exit after `keep_alive` without work.
//!
//! * Blocking tasks are capped: the pool starts a new thread for one only while fewer than
//!   `max_blocking_threads + workers` threads exist (tokio's cap); past that they queue.
//! * With `Builder::blocking_pool_sizing` the cap follows the load instead: `workers +
//!   size`, where a [`PoolSizer`] sizes the pool to `ceil(lambda * S)` of the blocking
//!   closures (arrivals per second x mean time on a thread, over a window), within the
//!   sizing's `[min, max]`, growing at once and shrinking only after a hold. Every
//!   arrival, start and end of a closure is reported to it under the pool's lock (two
//!   clock reads per closure, only when sizing is on). When the size grows, threads are
//!   started for the closures already queued; when it shrinks, the threads over the cap
//!   leave as soon as they find no work (idle ones are woken for it), never in the middle
//!   of a closure or with work queued. Windows close on those events only: an idle pool
//!   keeps its size until its next closure, which judges the idle gap at once (idle threads
//!   still leave after `keep_alive`).
//! * M jobs are mandatory: if no thread is idle, one is started whatever the count, and they
//!   have a queue of their own that every thread serves first, so that a P handed off by
//!   `block_in_place` always finds an M at once (Go's `startm`), never behind blocking
//!   closures that wait for the cap.
//!
//! A submitted job reserves an idle thread (`idle -= 1`, `notified += 1`) before notifying,
//! so two quick submissions never count on the same sleeper.
//!
//! Every thread is named by the builder's `thread_name` / `thread_name_fn` when it starts,
//! runs the `on_thread_start` hook (inside the runtime context, so `Handle::current` works)
//! before its first job and `on_thread_stop` after its last. A panic in a hook is caught and
//! reported: a pool thread that died there would never be counted out, and shutdown would
//! wait for it for ever.
//!
//! Shutdown wakes every idle thread and waits, with an optional timeout, for every thread
//! to exit. Closures submitted before shutdown still run (tokio's behaviour: the threads
//! drain the queue before they exit; `shutdown_timeout` bounds only the wait); closures
//! submitted after it are cancelled at once (their join handles report cancellation).

use super::context;
use super::handle::Handle;
use super::shared::Shared;
use crate::overload::{PoolSizer, PoolSizingConfig};
use crate::task::{coop, JoinHandle, Notified, Schedule, Task};
use crate::time::pausable::Inhibit;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `func` on a thread where blocking is fine, and returns a handle to its result.
///
/// Like tokio's `spawn_blocking`: the closure runs on the runtime's blocking pool, which
/// grows up to `max_blocking_threads` threads. A closure submitted before the runtime shuts
/// down runs even if it is still queued then (shutdown waits for it, up to the timeout of
/// `shutdown_timeout`); one submitted after never runs and its handle reports
/// cancellation. Panics outside a runtime.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let sum = rt.block_on(async {
///     gpm::task::spawn_blocking(|| (1..=10u64).sum::<u64>()).await.unwrap()
/// });
/// assert_eq!(sum, 55);
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(func: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Handle::current().spawn_blocking(func)
}

/// Runs `func` on the current thread, first handing this thread's P to another M so the
/// other tasks of that P keep running (Go's hand-off). Outside a worker it just runs `func`.
///
/// When `func` returns, the thread takes its P back if no other M has picked it up yet;
/// otherwise the current task finishes its poll without a P and the thread then returns to
/// the pool.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let n = rt.block_on(rt.spawn(async {
///     gpm::task::block_in_place(|| std::fs::metadata("/").is_ok())
/// }));
/// assert!(n.unwrap());
/// ```
pub fn block_in_place<F, R>(func: F) -> R
where
    F: FnOnce() -> R,
{
    let handed_off = context::with_worker(|worker| {
        let worker = worker?;
        assert!(
            !worker.shared.current_thread,
            "gpm::task::block_in_place cannot be called on a current-thread runtime (as in \
             tokio): there is no other thread to run its tasks; use spawn_blocking"
        );
        let index = worker.hand_off_processor()?;
        Some((Arc::clone(&worker.shared), index))
    });
    struct Reclaim(Option<(Arc<Shared>, usize)>);
    impl Drop for Reclaim {
        fn drop(&mut self) {
            if let Some((shared, index)) = &self.0 {
                context::with_worker(|worker| match worker {
                    Some(worker) if Arc::ptr_eq(&worker.shared, shared) => {
                        worker.reclaim_processor(*index)
                    }
                    _ => {}
                });
            }
        }
    }
    let _reclaim = Reclaim(handed_off);
    let _region = context::enter_blocking_region();
    coop::with_unlimited_budget(func)
}

/// A closure as a future that completes in its single poll.
pub(crate) struct BlockingTask<F> {
    func: Option<F>,
}

impl<F> BlockingTask<F> {
    pub(crate) fn new(func: F) -> BlockingTask<F> {
        BlockingTask { func: Some(func) }
    }
}

// The closure is never pinned: it is moved out and called.
impl<F> Unpin for BlockingTask<F> {}

impl<F, R> Future for BlockingTask<F>
where
    F: FnOnce() -> R,
{
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        let func = self
            .func
            .take()
            .expect("a blocking task is polled only once");
        Poll::Ready(coop::with_unlimited_budget(func))
    }
}

/// The scheduler of blocking tasks: the pool's queue.
pub(crate) struct BlockingSchedule {
    shared: Arc<Shared>,
    /// Under a paused clock, holds auto-advance back until the task completes (`release`):
    /// after its output is stored and its join waker woken, as tokio's
    /// `BlockingSchedule::release`, so that whoever the completion wakes is counted
    /// running before time may jump. Released at the end of the closure instead, the
    /// driver could jump time between that end and the wake (a timeout on the join handle
    /// would then fire although the closure finished). A task that never completes (its
    /// notification dropped unrun) releases it when its cell is freed.
    inhibit: Mutex<Option<Inhibit>>,
}

impl BlockingSchedule {
    pub(crate) fn new(shared: &Arc<Shared>, inhibit: Option<Inhibit>) -> BlockingSchedule {
        BlockingSchedule {
            shared: Arc::clone(shared),
            inhibit: Mutex::new(inhibit),
        }
    }
}

impl Schedule for BlockingSchedule {
    fn schedule(&self, task: Notified<Self>) {
        // Only an abort of a queued task lands here; run it so it completes as cancelled.
        self.shared.blocking.submit_task(task, &self.shared);
    }

    fn release(&self, _task: &Task<Self>, _: crate::task::CompletedIn) -> Option<Task<Self>> {
        let inhibit = self
            .inhibit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Completed: the paused clock may move again (see `inhibit`).
        drop(inhibit);
        None
    }

    fn allocate_task(
        &self,
        layout: std::alloc::Layout,
        class: Option<crate::alloc::SizeClass>,
    ) -> std::ptr::NonNull<u8> {
        self.shared.allocate_task(layout, class)
    }

    unsafe fn deallocate_task(
        &self,
        ptr: std::ptr::NonNull<u8>,
        layout: std::alloc::Layout,
        class: Option<crate::alloc::SizeClass>,
    ) {
        // SAFETY: forwarded contract; blocking tasks take memory from the same runtime.
        unsafe { self.shared.deallocate_task(ptr, layout, class) }
    }
}

enum Job {
    Task(Notified<BlockingSchedule>),
    M(Box<dyn FnOnce() + Send>),
}

struct PoolState {
    /// Loops of Ms waiting for a thread: served before `queue`.
    ms: VecDeque<Job>,
    /// Blocking closures waiting for a thread.
    queue: VecDeque<Job>,
    /// Idle threads not yet reserved by a submission.
    idle: usize,
    /// Reservations not yet picked up by a woken thread.
    notified: usize,
    live: usize,
    shutdown: bool,
    handles: Vec<thread::JoinHandle<()>>,
    /// The adaptive size (`Builder::blocking_pool_sizing`), if on.
    sizer: Option<PoolSizer>,
}

/// A user hook run on every thread of the pool (`Builder::on_thread_start` / `_stop`).
#[derive(Clone)]
pub(crate) struct ThreadHook(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl ThreadHook {
    /// Runs the hook, containing a panic (see the module documentation).
    fn run(&self, which: &str) {
        let hook = std::panic::AssertUnwindSafe(|| (self.0)());
        if let Err(panic) = std::panic::catch_unwind(hook) {
            let message = crate::task::panic_payload_message(&*panic);
            eprintln!("gpm: the {which} hook panicked and was contained: {message}");
        }
    }
}

impl fmt::Debug for ThreadHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadHook(..)")
    }
}

/// How pool threads are named (`Builder::thread_name` / `thread_name_fn`).
#[derive(Clone)]
pub(crate) enum ThreadName {
    Fixed(String),
    Generated(Arc<dyn Fn() -> String + Send + Sync>),
}

impl ThreadName {
    /// The name of the next thread. A generated name is cut at its first NUL byte (the OS
    /// cannot take it); a fixed one was checked by `Builder::build`.
    fn next(&self) -> String {
        match self {
            ThreadName::Fixed(name) => name.clone(),
            ThreadName::Generated(make) => {
                let mut name = make();
                if let Some(nul) = name.find('\0') {
                    name.truncate(nul);
                }
                name
            }
        }
    }
}

impl fmt::Debug for ThreadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadName::Fixed(name) => name.fmt(f),
            ThreadName::Generated(_) => f.write_str("<thread_name_fn>"),
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) thread_name: ThreadName,
    pub(crate) on_thread_start: Option<ThreadHook>,
    pub(crate) on_thread_stop: Option<ThreadHook>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    /// Threads set aside for Ms in the cap (the worker count).
    pub(crate) workers: usize,
    /// Size the pool by Little's law instead of `max_threads` (checked by the builder).
    pub(crate) sizing: Option<PoolSizingConfig>,
}

/// See the module documentation.
pub(crate) struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
    exited: Condvar,
    config: PoolConfig,
    /// The origin of the sizer's time.
    epoch: Instant,
}

thread_local! {
    /// The pool this thread belongs to, to recognise "shutdown called from a pool thread".
    static CURRENT_POOL: std::cell::Cell<*const Pool> = const { std::cell::Cell::new(std::ptr::null()) };
}

impl Pool {
    pub(crate) fn new(config: PoolConfig) -> Pool {
        // The builder validated the sizing; an invalid one here would be a bug: no sizing.
        let sizer = config
            .sizing
            .clone()
            .and_then(|sizing| PoolSizer::new(sizing, Duration::ZERO).ok());
        Pool {
            epoch: Instant::now(),
            state: Mutex::new(PoolState {
                ms: VecDeque::new(),
                queue: VecDeque::new(),
                idle: 0,
                notified: 0,
                live: 0,
                shutdown: false,
                handles: Vec::new(),
                sizer,
            }),
            work: Condvar::new(),
            exited: Condvar::new(),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a blocking task. After shutdown it is cancelled at once.
    pub(crate) fn submit_task(&self, task: Notified<BlockingSchedule>, shared: &Arc<Shared>) {
        if let Err(error) = self.submit(Job::Task(task), false, shared) {
            // Queued all the same; an existing thread will run it. With no thread at all
            // it would wait for ever, which only an exhausted OS can cause.
            eprintln!("gpm: could not start a blocking thread: {error}");
        }
    }

    /// Queues the loop of an M, starting a thread for it if none is idle.
    pub(crate) fn submit_m(
        &self,
        shared: &Arc<Shared>,
        job: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        self.submit(Job::M(Box::new(job)), true, shared)
    }

    fn submit(&self, job: Job, mandatory: bool, shared: &Arc<Shared>) -> std::io::Result<()> {
        let mut state = self.lock();
        if state.shutdown {
            drop(state);
            cancel_job(job);
            return Ok(());
        }
        if mandatory {
            state.ms.push_back(job);
        } else {
            state.queue.push_back(job);
            if let Some(sizer) = &mut state.sizer {
                let now = self.now();
                let before = sizer.size();
                let after = sizer.arrival(now);
                if after != before {
                    // Grown: threads for every queued closure the new cap allows.
                    return self.top_up(&mut state, shared);
                }
            }
        }
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            self.work.notify_one();
            return Ok(());
        }
        if mandatory || state.live < self.cap(&state) {
            self.spawn_thread(&mut state, shared)?;
        }
        Ok(())
    }

    /// The sizer's clock.
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Most threads the pool starts for blocking closures: Ms' share plus the size.
    fn cap(&self, state: &PoolState) -> usize {
        match &state.sizer {
            Some(sizer) => self.config.workers + sizer.size(),
            None => self.config.max_threads,
        }
    }

    /// Whether a thread without work should leave: the sized pool is over its cap.
    fn surplus(&self, state: &PoolState) -> bool {
        state.sizer.is_some() && state.live > self.cap(state)
    }

    /// After the size changed: wakes idle threads, then starts new ones, for the closures
    /// queued beyond the reservations, up to the cap; on a shrink, wakes the idle threads
    /// so the surplus ones leave.
    fn top_up(&self, state: &mut PoolState, shared: &Arc<Shared>) -> std::io::Result<()> {
        let mut unserved = (state.queue.len() + state.ms.len()).saturating_sub(state.notified);
        while unserved > 0 && state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            self.work.notify_one();
            unserved -= 1;
        }
        while unserved > 0 && state.live < self.cap(state) {
            self.spawn_thread(state, shared)?;
            unserved -= 1;
        }
        if self.surplus(state) && state.idle > 0 {
            self.work.notify_all();
        }
        Ok(())
    }

    fn spawn_thread(&self, state: &mut PoolState, shared: &Arc<Shared>) -> std::io::Result<()> {
        join_finished_threads(&mut state.handles);
        let mut builder = thread::Builder::new().name(self.config.thread_name.next());
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let shared = Arc::clone(shared);
        let handle = builder.spawn(move || {
            let pool: &Pool = &shared.blocking;
            CURRENT_POOL.with(|p| p.set(pool));
            let _context = context::set_handle(Handle {
                shared: Arc::clone(&shared),
            });
            if let Some(hook) = &pool.config.on_thread_start {
                hook.run("on_thread_start");
            }
            pool.thread_main(&shared);
            if let Some(hook) = &pool.config.on_thread_stop {
                hook.run("on_thread_stop");
            }
        })?;
        state.live += 1;
        state.handles.push(handle);
        Ok(())
    }

    fn thread_main(&self, shared: &Arc<Shared>) {
        // The live count drops when the thread leaves, by return or by unwinding: a thread
        // that died without it would make shutdown wait for ever.
        let _live = LiveThread(self);
        let mut state = self.lock();
        loop {
            if let Some(job) = state.pop_job() {
                let sized = matches!(job, Job::Task(_)) && state.sizer.is_some();
                let started = sized.then(|| self.now());
                if let Some(started) = started {
                    self.resize(&mut state, shared, |sizer| sizer.started(started));
                }
                drop(state);
                run_job(job);
                state = self.lock();
                if let Some(started) = started {
                    let now = self.now();
                    self.resize(&mut state, shared, |sizer| sizer.finished(now, started));
                }
                continue;
            }
            if state.shutdown || self.surplus(&state) {
                break;
            }
            state.idle += 1;
            let (guard, reserved) = self.wait_for_reservation(state);
            state = guard;
            // Not reserved: timed out or shut down. Work that arrived unreserved just now
            // (or was queued before shutdown) is still taken before leaving.
            if !reserved && state.has_no_jobs() {
                break;
            }
        }
    }

    /// Reports an event to the sizer (`report` returns the size after it); on a new size,
    /// tops up or wakes the surplus (see `top_up`). Every event may close a window, so
    /// every one goes through here.
    fn resize(
        &self,
        state: &mut PoolState,
        shared: &Arc<Shared>,
        report: impl FnOnce(&mut PoolSizer) -> usize,
    ) {
        let Some(sizer) = &mut state.sizer else {
            return;
        };
        let before = sizer.size();
        if report(sizer) != before {
            if let Err(error) = self.top_up(state, shared) {
                eprintln!("gpm: could not start a blocking thread: {error}");
            }
        }
    }

    /// Waits until a submission reserves this thread (true) or `keep_alive` passes, the
    /// pool shuts down or the sized pool has too many threads (false). On false the thread
    /// is no longer counted as idle.
    fn wait_for_reservation<'a>(
        &self,
        mut state: MutexGuard<'a, PoolState>,
    ) -> (MutexGuard<'a, PoolState>, bool) {
        // A keep-alive too long for an `Instant` (`Duration::MAX`) keeps the thread for ever.
        let deadline = Instant::now().checked_add(self.config.keep_alive);
        loop {
            if state.notified > 0 {
                state.notified -= 1;
                return (state, true);
            }
            let now = Instant::now();
            let expired = deadline.is_some_and(|deadline| now >= deadline);
            if state.shutdown || expired || self.surplus(&state) {
                state.idle -= 1;
                return (state, false);
            }
            let wait = deadline.map_or(Duration::from_secs(3600), |deadline| deadline - now);
            state = self
                .work
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops the pool taking work: jobs submitted from now on are cancelled at once; the
    /// threads run what is queued and then exit (idle ones are woken for it).
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.shutdown = true;
        self.work.notify_all();
    }

    /// Waits up to `timeout` (for ever on `None`) for the threads of a closed pool to exit,
    /// then joins them. Returns whether they all did.
    pub(crate) fn wait_for_threads(&self, timeout: Option<Duration>) -> bool {
        let own = usize::from(CURRENT_POOL.with(|p| std::ptr::eq(p.get(), self)));
        // A timeout too long for an `Instant` (`Duration::MAX`, as tokio's
        // `shutdown_timeout_max` passes) waits for ever instead of overflowing.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.lock();
        while state.live > own {
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
            };
            state = self
                .exited
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let me = thread::current().id();
        let handles: Vec<_> = state.handles.drain(..).collect();
        drop(state);
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
        true
    }

    /// Closures waiting for a thread (for probes).
    pub(crate) fn queued(&self) -> usize {
        self.lock()
            .queue
            .iter()
            .filter(|job| matches!(job, Job::Task(_)))
            .count()
    }

    /// Threads alive (for tests and probes).
    pub(crate) fn live_threads(&self) -> usize {
        self.lock().live
    }

    /// The sized pool's size now (`None` without `Builder::blocking_pool_sizing`).
    pub(crate) fn sized(&self) -> Option<usize> {
        self.lock().sizer.as_ref().map(PoolSizer::size)
    }
}

/// Counts a pool thread as live until it drops (see `Pool::thread_main`).
struct LiveThread<'a>(&'a Pool);

impl Drop for LiveThread<'_> {
    fn drop(&mut self) {
        self.0.lock().live -= 1;
        self.0.exited.notify_all();
    }
}

/// Joins the threads that have left the pool (keep-alive expired) and forgets their
/// handles. Joined, not detached: once shutdown has joined the rest, no thread of the
/// runtime is left, not even one still exiting. Their `thread_main` has returned, so the
/// joins do not wait on the pool lock held here.
fn join_finished_threads(handles: &mut Vec<thread::JoinHandle<()>>) {
    let (finished, running) = std::mem::take(handles)
        .into_iter()
        .partition::<Vec<_>, _>(thread::JoinHandle::is_finished);
    *handles = running;
    for handle in finished {
        let _ = handle.join();
    }
}

impl PoolState {
    /// The next job: an M before any blocking closure.
    fn pop_job(&mut self) -> Option<Job> {
        self.ms.pop_front().or_else(|| self.queue.pop_front())
    }

    fn has_no_jobs(&self) -> bool {
        self.ms.is_empty() && self.queue.is_empty()
    }
}

fn run_job(job: Job) {
    match job {
        Job::Task(task) => {
            // A blocking task never yields back to its runner (the default of
            // `Schedule::yields_to_runner`), and nobody counts its completion.
            let ran = task.run();
            debug_assert!(!matches!(ran, crate::task::Ran::Yielded(_)));
        }
        Job::M(job) => job(),
    }
}

fn cancel_job(job: Job) {
    match job {
        Job::Task(task) => task.shutdown(),
        Job::M(job) => drop(job),
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Pool")
            .field("live", &state.live)
            .field("idle", &state.idle)
            .field("queued", &state.queue.len())
            .finish()
    }
}

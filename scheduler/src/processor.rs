//! P, the processor: a local run queue plus the logic that finds its next task.
//!
//! [`Scheduler`] is the part every P shares: each P's stealer and parker, the global
//! injector and the idle bookkeeping. [`Processor`] is one P's private part. An M holds at
//! most one `Processor` at a time and passes it by value when it hands the P to another M, so
//! "only the holder touches the local queue" is enforced by ownership, not by convention.
//!
//! # Finding work (Go's `findRunnable`, in order)
//!
//! 1. Every `global_queue_interval` ticks (61 by default, as in Go) the injector comes first,
//!    so a P busy with local work still drains the global queue and nothing starves there.
//! 2. `runnext`, then the local FIFO.
//! 3. A batch from the injector (its fair share, at most half a local queue).
//! 4. Steal: become a searcher (at most half of the Ps may), then take half of a victim's
//!    FIFO, visiting victims from a random start in round-robin order.
//! 5. Park, following the protocol in [`crate::idle`].

use crate::idle::Idle;
use crate::inject::Injector;
use crate::park::{ParkDriver, Parker};
use crate::queue::{Local, Stealer, LOCAL_QUEUE_CAPACITY};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::atomic::{fence, Ordering};
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
}

/// The part of each P that other Ps and other threads may touch.
struct Remote<T> {
    stealer: Stealer<T>,
    parker: Parker,
}

/// State shared by all Ps of one runtime.
pub struct Scheduler<T> {
    remotes: Box<[CachePadded<Remote<T>>]>,
    injector: Injector<T>,
    idle: Idle,
    global_queue_interval: u32,
}

/// Where a locally scheduled task goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalSlot {
    /// Run it next (a spawn or a wake by the running task).
    RunNext,
    /// Queue it behind the others (a task that yields).
    Back,
}

/// One P's private state. Owned by the M that holds the P.
pub struct Processor<T> {
    index: usize,
    local: Local<T>,
    tick: u32,
    rng: FastRand,
    searching: bool,
}

impl<T> Scheduler<T> {
    /// Creates the shared scheduler and its `config.processors` Ps.
    ///
    /// # Panics
    /// If `config.processors` is zero or above [`crate::idle::MAX_PROCESSORS`], or
    /// `global_queue_interval` is zero. The runtime's builder reports those as errors first.
    pub fn new(config: Config) -> (Scheduler<T>, Vec<Processor<T>>) {
        assert!(
            config.global_queue_interval > 0,
            "global_queue_interval is 0"
        );
        let idle = Idle::new(config.processors);
        let (locals, remotes): (Vec<_>, Vec<_>) = (0..config.processors)
            .map(|_| {
                let (local, stealer) = Local::new();
                let parker = Parker::new();
                (local, CachePadded::new(Remote { stealer, parker }))
            })
            .unzip();
        let processors = locals
            .into_iter()
            .enumerate()
            .map(|(index, local)| Processor {
                index,
                local,
                tick: 0,
                rng: FastRand::new(index as u64 + 1),
                searching: false,
            })
            .collect();
        let scheduler = Scheduler {
            remotes: remotes.into_boxed_slice(),
            injector: Injector::new(),
            idle,
            global_queue_interval: config.global_queue_interval,
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

    fn has_stealable_work(&self) -> bool {
        !self.injector.is_empty() || self.remotes.iter().any(|r| !r.stealer.is_empty())
    }
}

impl<T> Processor<T> {
    /// This P's index, `0..processors`.
    pub fn index(&self) -> usize {
        self.index
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

    /// Schedules `task` on this P. Wakes another P when the FIFO holds work to steal.
    pub fn push_local(&mut self, scheduler: &Scheduler<T>, task: T, slot: LocalSlot) {
        match slot {
            LocalSlot::RunNext => self.local.push_runnext(task, &scheduler.injector),
            LocalSlot::Back => self.local.push_back(task, &scheduler.injector),
        }
        if self.local.queue_len() > 0 {
            scheduler.notify_parked();
        }
    }

    /// Steps 1 to 3 of finding work: injector on the fairness tick, local queue, injector.
    pub fn next_task(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        self.tick = self.tick.wrapping_add(1);
        if self.tick % scheduler.global_queue_interval == 0 {
            if let Some(task) = scheduler.injector.pop() {
                return Some(task);
            }
        }
        if let Some((task, _)) = self.local.pop() {
            return Some(task);
        }
        self.take_from_injector(scheduler)
    }

    /// Takes this P's fair share of the injector: one task to run, the rest into the FIFO.
    fn take_from_injector(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        let first = scheduler.injector.pop()?;
        let share = scheduler.injector.len() / scheduler.num_processors() + 1;
        let batch = share.min(LOCAL_QUEUE_CAPACITY / 2);
        for _ in 0..batch {
            match scheduler.injector.pop() {
                Some(task) => self.local.push_back(task, &scheduler.injector),
                None => break,
            }
        }
        Some(first)
    }

    /// Step 4: steal half of some victim's FIFO, or fall back to the injector. Returns
    /// `None` without searching when half of the Ps already search.
    pub fn steal_work(&mut self, scheduler: &Scheduler<T>) -> Option<T> {
        if !self.searching {
            if !scheduler.idle.transition_worker_to_searching() {
                return None;
            }
            self.searching = true;
        }
        let count = scheduler.num_processors();
        let start = self.rng.below(count as u32) as usize;
        for offset in 0..count {
            let victim = (start + offset) % count;
            if victim == self.index {
                continue;
            }
            if let Some(task) = scheduler.remotes[victim]
                .stealer
                .steal_half_into(&mut self.local)
            {
                return Some(task);
            }
        }
        self.take_from_injector(scheduler)
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
    /// the P is unparked; it is searching if it was woken for work.
    ///
    /// `should_wake` is evaluated after every wake-up token (shutdown and stop-the-world
    /// leave one with every P). `timeout` bounds each sleep; on expiry the P wakes up and
    /// counts as searching, as after any other self-wake.
    pub fn park(
        &mut self,
        scheduler: &Scheduler<T>,
        timeout: Option<Duration>,
        should_wake: impl Fn() -> bool,
    ) {
        let was_last_searcher = scheduler
            .idle
            .transition_worker_to_parked(self.index, self.searching);
        self.searching = false;
        if was_last_searcher && scheduler.has_stealable_work() {
            scheduler.notify_parked();
        }
        let parker = &scheduler.remotes[self.index].parker;
        loop {
            if should_wake() {
                break;
            }
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
        // Woken for another reason: take this P off the sleeper list ourselves. Either this
        // succeeds or a notifier got there first; both count the P as searching.
        let _ = scheduler.idle.unpark_worker_by_id(self.index);
        self.searching = true;
    }
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

/// A xorshift64* generator: cheap, per-P, good enough to spread steal attempts.
#[derive(Debug, Clone)]
pub struct FastRand(u64);

impl FastRand {
    /// A generator from a non-zero-ized seed.
    pub fn new(seed: u64) -> FastRand {
        FastRand(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next raw value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..bound` (Lemire's multiply-shift; `bound` > 0).
    pub fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(processors: usize) -> Config {
        Config {
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

//! A processor's local run queue: a bounded FIFO plus a `runnext` slot.
//!
//! # Design
//!
//! The queue is split by thread role, as in crossbeam-deque and Go's `runq`:
//!
//! * [`Local`] is owned by the P. Only the M currently holding the P touches it, so it is
//!   `Send` but not `Sync`. It pushes and pops at will and owns the `runnext` slot.
//! * [`Stealer`] is shared with every other P. It can only take a batch of the oldest tasks
//!   (half of the queue), never the `runnext` task.
//!
//! The FIFO is a crossbeam-deque `Worker` in FIFO mode: a Chase-Lev deque whose stealers
//! claim a slot before reading it (the CVE-2021-32810 lesson) and whose indices are wide
//! (no wrap under a preempted steal, tokio #5041). crossbeam's deque grows without bound, so
//! the bound is ours: when a push finds [`LOCAL_QUEUE_CAPACITY`] tasks already queued, half of
//! them move to the global injector in one batch (Go's `runqputslow`), which keeps a burst of
//! local spawns visible to every P instead of piling up behind one.
//!
//! # `runnext`
//!
//! A task made runnable by the running task (a spawn or a wake) goes into `runnext` and runs
//! next, with its data still hot in cache; the previous occupant moves to the back of the
//! queue. Two tasks that keep waking each other would then never leave `runnext`, so the slot
//! is capped: after [`RUNNEXT_STREAK_MAX`] consecutive `runnext` polls the occupant goes to the
//! back of the queue and the oldest queued task runs. Invariant: a task pushed to the queue is
//! polled after at most `len * (RUNNEXT_STREAK_MAX + 1)` polls of this P.
//!
//! `runnext` is not stealable (tokio's LIFO slot, unlike Go's). The M that blocks inside a
//! poll through `block_in_place` hands the whole P, slot included, to another M, so a blocked
//! owner does not strand it; a poll that blocks without saying so does (tokio #4941), which is
//! a bug of that poll in any runtime.
//!
//! # Yielded tasks wait behind the global queue
//!
//! A task that yields (or is woken while it runs) goes to a private `deferred` list, not to
//! the FIFO. The list returns to the FIFO only when the FIFO and `runnext` are empty (after
//! the P has looked at the injector and its M has given the driver a turn, see
//! `crate::processor`) or after the M's periodic driver turn. Go puts a `Gosched`-ing
//! goroutine on the global queue and tokio defers `yield_now` wakers for the same reason:
//! were yielders queued in the FIFO, a P kept busy by tasks that stall and yield would look
//! at the injector only once every 61 polls, and a burst of remote spawns would wait
//! `burst * 61 / Ps` polls (seconds, with 10 us polls: our `spawn_many_remote_busy1` bench
//! took 3 s per iteration before this list existed). Invariant: a deferred task returns to
//! the back of the FIFO once the FIFO and `runnext` are empty, or at the M's next periodic
//! driver turn (every 61 polls in gpm), whichever comes first; the FIFO's bound applies
//! from there.
//!
//! # Rejected options
//!
//! * A hand-written ring like tokio's (fixed 256 slots, packed head/steal indices): fewer
//!   instructions per push, but crossbeam's deque is proven and the gap is not measured yet.
//! * A stealable `runnext` (Go): needs a grace delay before stealing (Go sleeps 3 us) or
//!   thieves bounce ping-pong pairs between cores.

use crate::inject::Injector;
use crossbeam_deque::{Steal, Stealer as DequeStealer, Worker};
use std::fmt;

/// Tasks the FIFO holds before half of them overflow into the injector.
pub const LOCAL_QUEUE_CAPACITY: usize = 256;

/// Consecutive polls served from `runnext` before its occupant must queue like the rest.
pub const RUNNEXT_STREAK_MAX: u32 = 3;

/// The owner's handle on a P's run queue. Only the M holding the P may use it.
pub struct Local<T> {
    fifo: Worker<T>,
    runnext: Option<T>,
    runnext_streak: u32,
    deferred: Vec<T>,
}

/// A thief's handle on a P's run queue: takes half of the FIFO, never `runnext`.
pub struct Stealer<T> {
    fifo: DequeStealer<T>,
}

/// Where a popped task came from; the caller's statistics care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `runnext` slot.
    RunNext,
    /// The local FIFO.
    Queue,
}

impl<T> Local<T> {
    /// Creates an empty run queue and the stealer that other Ps use on it.
    pub fn new() -> (Local<T>, Stealer<T>) {
        let fifo = Worker::new_fifo();
        let stealer = Stealer {
            fifo: fifo.stealer(),
        };
        let local = Local {
            fifo,
            runnext: None,
            runnext_streak: 0,
            deferred: Vec::new(),
        };
        (local, stealer)
    }

    /// Puts `task` in `runnext`; the previous occupant, if any, goes to the back of the FIFO.
    pub fn push_runnext(&mut self, task: T, overflow: &Injector<T>) {
        if let Some(previous) = self.runnext.replace(task) {
            self.push_back(previous, overflow);
        }
    }

    /// Appends `task` to the FIFO, moving half of it to `overflow` when it is full.
    pub fn push_back(&mut self, task: T, overflow: &Injector<T>) {
        if self.fifo.len() >= LOCAL_QUEUE_CAPACITY {
            self.spill_half(overflow);
        }
        self.fifo.push(task);
    }

    /// Appends `task` to the FIFO, or to `overflow` when the FIFO is full or `overflow`
    /// already holds tasks: the queued tasks are older and keep their place, and a burst
    /// never overtakes what an earlier burst left in `overflow` (`LocalSlot::Burst`).
    pub fn push_back_or_overflow(&mut self, task: T, overflow: &Injector<T>) {
        if self.fifo.len() >= LOCAL_QUEUE_CAPACITY || !overflow.is_empty() {
            overflow.push(task);
        } else {
            self.fifo.push(task);
        }
    }

    /// Parks `task` in the deferred list until the FIFO runs dry (a task that yielded).
    pub fn push_deferred(&mut self, task: T) {
        self.deferred.push(task);
    }

    /// Moves the deferred tasks to the back of the FIFO, in the order they yielded, where
    /// they become stealable. Returns how many moved.
    pub fn release_deferred(&mut self, overflow: &Injector<T>) -> usize {
        let count = self.deferred.len();
        let mut deferred = std::mem::take(&mut self.deferred);
        for task in deferred.drain(..) {
            self.push_back(task, overflow);
        }
        // Keep the allocation: yielders come back every round.
        self.deferred = deferred;
        count
    }

    /// Number of deferred tasks.
    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// Moves the older half of the FIFO to the injector in one batch.
    #[cold]
    fn spill_half(&mut self, overflow: &Injector<T>) {
        let half = self.fifo.len() / 2;
        overflow.push_batch(std::iter::from_fn(|| self.fifo.pop()).take(half));
    }

    /// Takes the next task to poll: `runnext` first unless its streak is used up.
    pub fn pop(&mut self) -> Option<(T, Source)> {
        if let Some(task) = self.runnext.take() {
            if self.runnext_streak < RUNNEXT_STREAK_MAX {
                self.runnext_streak += 1;
                return Some((task, Source::RunNext));
            }
            // The streak is used up: the occupant queues behind everything else. The FIFO
            // cannot be full here in a way that matters: pushing one task past the bound is
            // harmless and avoids needing the injector in `pop`.
            self.fifo.push(task);
        }
        self.runnext_streak = 0;
        self.fifo.pop().map(|task| (task, Source::Queue))
    }

    /// Takes the next task from the FIFO only, ignoring `runnext`.
    pub fn pop_queue(&mut self) -> Option<T> {
        self.fifo.pop()
    }

    /// Number of tasks in the FIFO (not counting `runnext`).
    pub fn queue_len(&self) -> usize {
        self.fifo.len()
    }

    /// Whether `runnext` holds a task.
    pub fn has_runnext(&self) -> bool {
        self.runnext.is_some()
    }

    /// Whether neither the FIFO, `runnext` nor the deferred list holds a task.
    pub fn is_empty(&self) -> bool {
        self.runnext.is_none() && self.fifo.is_empty() && self.deferred.is_empty()
    }

    /// Removes every task: `runnext` first, then the FIFO in order, then the deferred list.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        let runnext = self.runnext.take();
        let deferred = std::mem::take(&mut self.deferred);
        runnext
            .into_iter()
            .chain(std::iter::from_fn(|| self.fifo.pop()))
            .chain(deferred)
    }
}

impl<T> Stealer<T> {
    /// Steals about half of the victim's FIFO into `dest` and returns one of the stolen tasks
    /// to run at once. Retries while the deque reports contention.
    pub fn steal_half_into(&self, dest: &mut Local<T>) -> Option<T> {
        loop {
            let limit = self.fifo.len().div_ceil(2).max(1);
            match self.fifo.steal_batch_with_limit_and_pop(&dest.fifo, limit) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Number of tasks in the victim's FIFO, as a racy snapshot.
    pub fn len(&self) -> usize {
        self.fifo.len()
    }

    /// Whether the victim's FIFO looks empty (racy snapshot).
    pub fn is_empty(&self) -> bool {
        self.fifo.is_empty()
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("queue_len", &self.fifo.len())
            .field("has_runnext", &self.runnext.is_some())
            .field("runnext_streak", &self.runnext_streak)
            .field("deferred", &self.deferred.len())
            .finish()
    }
}

impl<T> fmt::Debug for Stealer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stealer")
            .field("len", &self.fifo.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop_all(local: &mut Local<u32>) -> Vec<u32> {
        std::iter::from_fn(|| local.pop().map(|(t, _)| t)).collect()
    }

    #[test]
    fn fifo_order_without_runnext() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        for i in 0..5 {
            local.push_back(i, &injector);
        }
        assert_eq!(pop_all(&mut local), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn runnext_runs_first_and_displaces_to_back() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        local.push_back(1, &injector);
        local.push_runnext(10, &injector);
        local.push_runnext(11, &injector);
        assert_eq!(local.pop(), Some((11, Source::RunNext)));
        assert_eq!(pop_all(&mut local), vec![1, 10]);
    }

    #[test]
    fn runnext_streak_is_capped() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        local.push_back(100, &injector);
        // Two tasks waking each other: each poll puts the other into runnext.
        let mut polled = Vec::new();
        let mut next = 1;
        for _ in 0..(RUNNEXT_STREAK_MAX + 1) {
            local.push_runnext(next, &injector);
            let (task, _) = local.pop().unwrap();
            polled.push(task);
            next = if task == 1 { 2 } else { 1 };
        }
        assert!(polled.contains(&100), "queued task starved: {polled:?}");
    }

    #[test]
    fn a_burst_past_capacity_goes_to_the_injector_and_the_queued_keep_their_place() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        let total = LOCAL_QUEUE_CAPACITY as u32 + 10;
        for i in 0..total {
            local.push_back_or_overflow(i, &injector);
        }
        assert_eq!(injector.len(), 10);
        let queued = pop_all(&mut local);
        assert_eq!(queued, (0..LOCAL_QUEUE_CAPACITY as u32).collect::<Vec<_>>());
        let spilled: Vec<u32> = std::iter::from_fn(|| injector.pop()).collect();
        assert_eq!(
            spilled,
            (LOCAL_QUEUE_CAPACITY as u32..total).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_burst_queues_behind_an_earlier_bursts_overflow() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        for i in 0..=LOCAL_QUEUE_CAPACITY as u32 {
            local.push_back_or_overflow(i, &injector);
        }
        local.pop();
        // The FIFO has room again, but task 256 waits in the overflow: 1000 goes behind it.
        local.push_back_or_overflow(1000, &injector);
        assert_eq!(local.queue_len(), LOCAL_QUEUE_CAPACITY - 1);
        let overflow: Vec<u32> = std::iter::from_fn(|| injector.pop()).collect();
        assert_eq!(overflow, vec![LOCAL_QUEUE_CAPACITY as u32, 1000]);
    }

    #[test]
    fn overflow_moves_half_to_injector() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        for i in 0..=LOCAL_QUEUE_CAPACITY as u32 {
            local.push_back(i, &injector);
        }
        assert_eq!(injector.len(), LOCAL_QUEUE_CAPACITY / 2);
        assert_eq!(local.queue_len(), LOCAL_QUEUE_CAPACITY / 2 + 1);
        // The oldest went to the injector, in order.
        assert_eq!(injector.pop(), Some(0));
    }

    #[test]
    fn steal_takes_half_and_never_runnext() {
        let injector = Injector::new();
        let (mut victim, stealer) = Local::new();
        let (mut thief, _) = Local::new();
        for i in 0..10 {
            victim.push_back(i, &injector);
        }
        victim.push_runnext(99, &injector);
        let first = stealer.steal_half_into(&mut thief).unwrap();
        assert_eq!(first, 0);
        let stolen = 1 + thief.queue_len();
        assert_eq!(stolen, 5);
        assert_eq!(victim.queue_len(), 5);
        assert_eq!(victim.pop(), Some((99, Source::RunNext)));
    }

    #[test]
    fn drain_returns_everything() {
        let injector = Injector::new();
        let (mut local, _) = Local::new();
        local.push_back(1, &injector);
        local.push_runnext(2, &injector);
        local.push_deferred(3);
        let drained: Vec<_> = local.drain().collect();
        assert_eq!(drained, vec![2, 1, 3]);
        assert!(local.is_empty());
    }

    #[test]
    fn deferred_tasks_wait_until_released_and_become_stealable() {
        let injector = Injector::new();
        let (mut local, stealer) = Local::new();
        local.push_deferred(1);
        local.push_deferred(2);
        local.push_back(3, &injector);
        assert!(!local.is_empty());
        assert_eq!(pop_all(&mut local), vec![3]);
        assert_eq!(stealer.len(), 0);
        assert_eq!(local.release_deferred(&injector), 2);
        assert_eq!(local.deferred_len(), 0);
        assert_eq!(stealer.len(), 2);
        assert_eq!(pop_all(&mut local), vec![1, 2]);
    }
}

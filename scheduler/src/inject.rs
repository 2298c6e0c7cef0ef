//! The global run queue (Go's `sched.runq`, tokio's inject queue).
//!
//! Tasks made runnable off a worker (remote wakes, spawns from outside the runtime) and the
//! overflow of full local queues land here. Every P checks it every
//! `global_queue_interval` ticks so that no task waits behind a P's local work forever, and
//! again when its local queue is empty.
//!
//! # Closing
//!
//! At shutdown the runtime closes the injector and drains it. A task pushed concurrently with
//! the close must not be stranded, so [`Injector::push`] re-checks `closed` after pushing and
//! drains itself when it lost the race. Both sides put a `SeqCst` fence between their write
//! (the push, the close) and their read (the flag, the drain): in any interleaving one of them
//! sees the other (the store-buffer litmus test forbids both reading the old value).
//!
//! # Under loom
//!
//! Crossbeam's injector uses std's atomics, which loom cannot see: a model of a protocol
//! built on an [`Injector`] (a P's inbox, the global queue) would treat every push and every
//! emptiness check as one indivisible step that all threads see at once, and could not find
//! a missing fence. Under `--cfg gpm_loom` the queue is therefore `loom_queue::Queue`, whose
//! count lives in a loom atomic accessed with the orderings crossbeam uses for its indices
//! (`SeqCst` read-modify-writes in `push` and `steal`, `SeqCst` loads in `len` and
//! `is_empty`); the `closed` flag and the fences go through the loom facade
//! (`crate::sync`). The rest of this file is the same code in both builds.

use crate::sync::atomic::{fence, AtomicBool, Ordering};
#[cfg(not(gpm_loom))]
use crossbeam_deque::Injector as Queue;
use crossbeam_deque::Steal;
#[cfg(gpm_loom)]
use loom_queue::Queue;
use std::fmt;

/// A multi-producer, multi-consumer FIFO shared by every P.
pub struct Injector<T> {
    queue: Queue<T>,
    closed: AtomicBool,
}

impl<T> Injector<T> {
    /// Creates an empty, open injector.
    pub fn new() -> Self {
        Injector {
            queue: Queue::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Appends `task`. On a closed injector the task is dropped (after shutdown nothing runs).
    pub fn push(&self, task: T) {
        self.queue.push(task);
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.drain();
        }
    }

    /// Appends every task of `tasks`, in order.
    pub fn push_batch(&self, tasks: impl Iterator<Item = T>) {
        for task in tasks {
            self.queue.push(task);
        }
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.drain();
        }
    }

    /// Takes the oldest task; `None` once closed (a task a racing push slipped in after the
    /// close is dropped here, never handed out to be polled).
    pub fn pop(&self) -> Option<T> {
        let task = self.steal()?;
        if self.closed.load(Ordering::Relaxed) {
            drop(task);
            self.drain();
            return None;
        }
        Some(task)
    }

    fn steal(&self) -> Option<T> {
        loop {
            match self.queue.steal() {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Number of queued tasks (racy snapshot).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the injector looks empty (racy snapshot).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Closes the injector and drops every queued task; later pushes drop their task.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.drain();
    }

    /// Whether [`Injector::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn drain(&self) {
        while let Some(task) = self.steal() {
            drop(task);
        }
    }
}

impl<T> Default for Injector<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Injector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector")
            .field("len", &self.queue.len())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// The injector's queue under loom: crossbeam's `Injector` with its indices made visible.
#[cfg(gpm_loom)]
mod loom_queue {
    use crate::sync::atomic::{AtomicUsize, Ordering};
    use crossbeam_deque::Steal;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A FIFO whose contents sit behind a std mutex (invisible to loom) and whose length is
    /// a loom atomic. Readers of the length ([`Queue::len`], [`Queue::is_empty`]) never take
    /// the lock, so loom may show them a stale count, as crossbeam's index loads can be: the
    /// ordering of a push against a concurrent emptiness check comes only from the atomic
    /// and the caller's fences, not from a lock. (A loom mutex would not do: loom treats its
    /// lock and unlock as `SeqCst` fences, which would hide a missing fence in the caller.)
    ///
    /// The std mutex is never contended: no loom operation happens while it is held, so
    /// loom never switches threads inside it. Invariant: the contents hold at least `len`
    /// tasks. A push appends, then counts; a steal claims one from the count (a
    /// read-modify-write, which reads the latest count), then takes the oldest task.
    pub(super) struct Queue<T> {
        tasks: Mutex<VecDeque<T>>,
        len: AtomicUsize,
    }

    impl<T> Queue<T> {
        pub(super) fn new() -> Queue<T> {
            Queue {
                tasks: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }

        /// Crossbeam: write the slot, then move the tail with a `SeqCst` CAS.
        pub(super) fn push(&self, task: T) {
            self.tasks.lock().unwrap().push_back(task);
            self.len.fetch_add(1, Ordering::SeqCst);
        }

        /// Crossbeam: move the head with a `SeqCst` CAS, then read the slot. Never `Retry`:
        /// the claim cannot fail half-way here.
        pub(super) fn steal(&self) -> Steal<T> {
            let claimed = self
                .len
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if claimed.is_err() {
                return Steal::Empty;
            }
            match self.tasks.lock().unwrap().pop_front() {
                Some(task) => Steal::Success(task),
                None => unreachable!("a claimed task is missing"),
            }
        }

        /// Crossbeam: `SeqCst` loads of the indices.
        pub(super) fn len(&self) -> usize {
            self.len.load(Ordering::SeqCst)
        }

        pub(super) fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo() {
        let inj = Injector::new();
        inj.push(1);
        inj.push_batch([2, 3].into_iter());
        assert_eq!(inj.pop(), Some(1));
        assert_eq!(inj.pop(), Some(2));
        assert_eq!(inj.pop(), Some(3));
        assert_eq!(inj.pop(), None);
    }

    #[test]
    fn close_drops_queued_and_later_tasks() {
        let token = Arc::new(());
        let inj = Injector::new();
        inj.push(token.clone());
        inj.close();
        assert_eq!(Arc::strong_count(&token), 1);
        inj.push(token.clone());
        assert_eq!(Arc::strong_count(&token), 1);
        assert!(inj.is_closed());
    }
}

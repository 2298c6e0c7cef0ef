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

use crossbeam_deque::{Injector as DequeInjector, Steal};
use std::fmt;
use std::sync::atomic::{fence, AtomicBool, Ordering};

/// A multi-producer, multi-consumer FIFO shared by every P.
pub struct Injector<T> {
    queue: DequeInjector<T>,
    closed: AtomicBool,
}

impl<T> Injector<T> {
    /// Creates an empty, open injector.
    pub fn new() -> Self {
        Injector {
            queue: DequeInjector::new(),
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

#[cfg(test)]
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

//! The owned-task list: every live task of a runtime, so that shutdown can cancel them all.
//!
//! A task enters at spawn ([`OwnedTasks::bind`]) and leaves when it completes
//! ([`OwnedTasks::remove`], called by the task's `Schedule::release`). The list holds one
//! counted reference per task. It is sharded by task id, each shard a mutex around a slab
//! (slots plus a free list); the slot index lives in the task header, so removal is O(1).
//! Spawns and completions on different shards never contend.
//!
//! # Closing
//!
//! [`OwnedTasks::close_and_take_all`] marks every shard closed under its lock and takes the
//! tasks out. A spawn racing with it either lands before (and is taken) or sees the shard
//! closed and gets its task back to cancel at once. Tasks are cancelled by the caller after
//! the locks are released, because dropping a future may spawn or wake other tasks.

use super::{Id, Schedule, Task};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Mutex;
use std::fmt;

struct Shard<S: 'static> {
    slots: Vec<Option<Task<S>>>,
    free: Vec<usize>,
    live: usize,
    closed: bool,
}

/// See the module documentation.
pub(crate) struct OwnedTasks<S: 'static> {
    shards: Box<[Mutex<Shard<S>>]>,
    mask: usize,
}

impl<S: Schedule> OwnedTasks<S> {
    /// A list with at least `min_shards` shards (rounded up to a power of two).
    pub(crate) fn new(min_shards: usize) -> OwnedTasks<S> {
        let count = min_shards.max(1).next_power_of_two();
        let shards = (0..count)
            .map(|_| {
                Mutex::new(Shard {
                    slots: Vec::new(),
                    free: Vec::new(),
                    live: 0,
                    closed: false,
                })
            })
            .collect();
        OwnedTasks {
            shards,
            mask: count - 1,
        }
    }

    fn shard(&self, id: Id) -> &Mutex<Shard<S>> {
        &self.shards[id.as_u64() as usize & self.mask]
    }

    /// Adds `task`; gives it back if the list is closed.
    pub(crate) fn bind(&self, task: Task<S>) -> Result<(), Task<S>> {
        let mut shard = lock(self.shard(task.id()));
        if shard.closed {
            return Err(task);
        }
        let index = match shard.free.pop() {
            Some(index) => index,
            None => {
                shard.slots.push(None);
                shard.slots.len() - 1
            }
        };
        task.header().owned_slot.store(index, Ordering::Relaxed);
        shard.slots[index] = Some(task);
        shard.live += 1;
        Ok(())
    }

    /// Removes the task `task` refers to, returning the list's reference to it.
    pub(crate) fn remove(&self, task: &Task<S>) -> Option<Task<S>> {
        let mut shard = lock(self.shard(task.id()));
        let index = task.header().owned_slot.load(Ordering::Relaxed);
        let slot = shard.slots.get_mut(index)?;
        if slot.as_ref().map(Task::raw) != Some(task.raw()) {
            // Already taken out by `close_and_take_all`.
            return None;
        }
        let owned = slot.take();
        shard.free.push(index);
        shard.live -= 1;
        owned
    }

    /// Closes the list and takes every task out.
    pub(crate) fn close_and_take_all(&self) -> Vec<Task<S>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.closed = true;
            all.extend(shard.slots.drain(..).flatten());
            shard.free.clear();
            shard.live = 0;
        }
        all
    }

    /// Number of live tasks.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).live).sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> crate::loom::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: 'static> fmt::Debug for OwnedTasks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedTasks")
            .field("shards", &self.shards.len())
            .finish()
    }
}

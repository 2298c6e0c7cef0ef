//! Probes: what the scheduler is doing, readable at any time, cheap to keep.
//!
//! * [`counters`](Counters): per-P event counters (polls, spawns, wakes, completions,
//!   sampled sojourns), written by the P's holder with plain relaxed load-and-store (no
//!   read-modify-write, no lock), summed by readers. Threads that hold no P use a shared
//!   set with `fetch_add`.
//! * [`latency`]: HDR histograms of queue wait and sojourn, recorded for a sample of tasks.
//! * [`little`]: Little's law over a sliding window of counter snapshots.
//! * [`knee`]: where `L(lambda)` stops being linear.
//!
//! Stop-the-world lives in [`crate::stw`]. The runtime decides what to sample and assembles
//! these into its `Probes` snapshot.

pub mod knee;
pub mod latency;
pub mod little;

use crate::sync::atomic::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;

/// A counter with one writer at a time (the holder of a P). Handing the P to another M goes
/// through a lock, which orders the two writers, so load-then-store loses no increment.
#[derive(Default)]
pub struct OwnedCounter(AtomicU64);

impl OwnedCounter {
    /// Adds `n`. Only the current holder of the counter's P may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value.wrapping_add(n), Ordering::Relaxed);
    }

    /// The current value (racy by design: readers want a cheap snapshot).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for OwnedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// The events one P (or the shared set) counts.
#[derive(Debug, Default)]
pub struct EventCounters {
    /// Polls run.
    pub polls: OwnedCounter,
    /// Tasks spawned.
    pub spawns: OwnedCounter,
    /// Wake-ups that made a task runnable (not counting spawns).
    pub wakes: OwnedCounter,
    /// Tasks that completed (or were cancelled).
    pub completions: OwnedCounter,
    /// Sum of the sampled sojourn times (spawn to completion), ns.
    pub sojourn_sum_ns: OwnedCounter,
    /// Number of sampled sojourns.
    pub sojourn_count: OwnedCounter,
}

/// Totals of [`EventCounters`] at one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventTotals {
    /// Polls run.
    pub polls: u64,
    /// Tasks spawned.
    pub spawns: u64,
    /// Wake-ups.
    pub wakes: u64,
    /// Completions.
    pub completions: u64,
    /// Sum of sampled sojourns, ns.
    pub sojourn_sum_ns: u64,
    /// Number of sampled sojourns.
    pub sojourn_count: u64,
}

impl EventCounters {
    /// A snapshot of this set.
    pub fn totals(&self) -> EventTotals {
        EventTotals {
            polls: self.polls.get(),
            spawns: self.spawns.get(),
            wakes: self.wakes.get(),
            completions: self.completions.get(),
            sojourn_sum_ns: self.sojourn_sum_ns.get(),
            sojourn_count: self.sojourn_count.get(),
        }
    }
}

impl std::ops::Add for EventTotals {
    type Output = EventTotals;
    fn add(self, o: EventTotals) -> EventTotals {
        EventTotals {
            polls: self.polls + o.polls,
            spawns: self.spawns + o.spawns,
            wakes: self.wakes + o.wakes,
            completions: self.completions + o.completions,
            sojourn_sum_ns: self.sojourn_sum_ns + o.sojourn_sum_ns,
            sojourn_count: self.sojourn_count + o.sojourn_count,
        }
    }
}

/// Per-P counters (cache-padded, one writer each) and the shared set for threads without a P.
pub struct Counters {
    per_processor: Box<[CachePadded<EventCounters>]>,
    shared: SharedCounters,
}

/// Counters any thread may bump (read-modify-write).
#[derive(Debug, Default)]
pub struct SharedCounters {
    polls: AtomicU64,
    spawns: AtomicU64,
    wakes: AtomicU64,
    completions: AtomicU64,
    sojourn_sum_ns: AtomicU64,
    sojourn_count: AtomicU64,
}

/// Which counter an event bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A poll.
    Poll,
    /// A spawn.
    Spawn,
    /// A wake-up.
    Wake,
    /// A completion.
    Completion,
}

impl Counters {
    /// Counters for `processors` Ps.
    pub fn new(processors: usize) -> Counters {
        Counters {
            per_processor: (0..processors).map(|_| CachePadded::default()).collect(),
            shared: SharedCounters::default(),
        }
    }

    /// Counts `event` for the holder of P `processor` (`None`: a thread without a P).
    #[inline]
    pub fn count(&self, processor: Option<usize>, event: Event) {
        match processor.and_then(|p| self.per_processor.get(p)) {
            Some(counters) => match event {
                Event::Poll => counters.polls.add(1),
                Event::Spawn => counters.spawns.add(1),
                Event::Wake => counters.wakes.add(1),
                Event::Completion => counters.completions.add(1),
            },
            None => {
                let counter = match event {
                    Event::Poll => &self.shared.polls,
                    Event::Spawn => &self.shared.spawns,
                    Event::Wake => &self.shared.wakes,
                    Event::Completion => &self.shared.completions,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds one sampled sojourn of `ns` nanoseconds.
    pub fn sojourn(&self, processor: Option<usize>, ns: u64) {
        match processor.and_then(|p| self.per_processor.get(p)) {
            Some(counters) => {
                counters.sojourn_sum_ns.add(ns);
                counters.sojourn_count.add(1);
            }
            None => {
                self.shared.sojourn_sum_ns.fetch_add(ns, Ordering::Relaxed);
                self.shared.sojourn_count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// P `p`'s own totals.
    pub fn processor(&self, p: usize) -> EventTotals {
        self.per_processor[p].totals()
    }

    /// Everything, summed.
    pub fn totals(&self) -> EventTotals {
        let shared = &self.shared;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let shared = EventTotals {
            polls: get(&shared.polls),
            spawns: get(&shared.spawns),
            wakes: get(&shared.wakes),
            completions: get(&shared.completions),
            sojourn_sum_ns: get(&shared.sojourn_sum_ns),
            sojourn_count: get(&shared.sojourn_count),
        };
        self.per_processor
            .iter()
            .map(|c| c.totals())
            .fold(shared, |a, b| a + b)
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters")
            .field("totals", &self.totals())
            .finish()
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    #[test]
    fn per_processor_and_shared_events_add_up() {
        let counters = Counters::new(2);
        counters.count(Some(0), Event::Spawn);
        counters.count(Some(1), Event::Spawn);
        counters.count(None, Event::Spawn);
        counters.count(Some(1), Event::Poll);
        counters.count(Some(9), Event::Wake); // no such P: counted as shared
        counters.sojourn(Some(0), 10);
        counters.sojourn(None, 30);
        let totals = counters.totals();
        assert_eq!(totals.spawns, 3);
        assert_eq!(totals.polls, 1);
        assert_eq!(totals.wakes, 1);
        assert_eq!((totals.sojourn_sum_ns, totals.sojourn_count), (40, 2));
        assert_eq!(counters.processor(1).spawns, 1);
        assert_eq!(counters.processor(1).polls, 1);
    }

    #[test]
    fn owned_counter_from_handed_over_writers_loses_nothing() {
        let counters = std::sync::Arc::new(Counters::new(1));
        let baton = std::sync::Arc::new(std::sync::Mutex::new(()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (counters, baton) = (counters.clone(), baton.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        // Holding the P: the mutex stands in for the hand-off.
                        let _p = baton.lock().unwrap();
                        counters.count(Some(0), Event::Poll);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counters.totals().polls, 40_000);
    }
}

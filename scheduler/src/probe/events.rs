//! One table of per-P event counters: every count a P keeps (polls, spawns, wakes,
//! completions, sampled sojourns, steals by relation, injector takes) is a row of
//! [`Event`], and every exporter (the runtime's snapshot, its JSON and Prometheus text)
//! loops over [`Event::ALL`]. A new per-P count is a new variant and its row in
//! [`Event::describe`]; nothing else changes shape.
//!
//! # Writers and readers
//!
//! Each P owns one [`EventTable`], shared by `Arc` between the P's private part (the
//! scheduler's `Processor`, which the holding M has by `&mut`) and the readers. Only the
//! holder of the P writes it, with a relaxed load and store per count (no read-modify-write,
//! no lock: about four instructions on x86-64). Handing the P to another M goes through a
//! lock, which orders the two writers, so the load-then-store loses no increment. Threads
//! that hold no P (foreign threads, `block_on`, the blocking pool) count in one shared
//! table with `fetch_add`.
//!
//! Readers load each counter relaxed: a snapshot is not atomic across counters (a poll
//! may be counted and its completion not yet), but every counter only grows. A count
//! written when its event happens is visible as soon as the event is (it is written
//! before the P does anything another thread could observe); a holder may also tally its
//! most frequent events privately and add them in one go ([`EventTable::add`] with `n`),
//! and readers then see them when it does (the runtime's Ms do so for polls, yields and
//! completions, at least every driver turn and whenever the P parks).
//!
//! When counting is off (`Events::new(.., false)`, the runtime's `enable_probes(false)`),
//! Ps hold no table and count nothing; readers see zeros.

use crate::steal::{ByRelation, Relation};
use crate::sync::atomic::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::Arc;

/// What a P counts. The discriminant indexes [`EventTable`] and [`EventCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Event {
    /// A poll about to run.
    Poll,
    /// A spawn made a task runnable.
    Spawn,
    /// A wake-up made a task runnable (spawns not included).
    Wake,
    /// A task completed or was cancelled.
    Completion,
    /// Nanoseconds of sampled sojourns (spawn to completion), summed.
    SojournNs,
    /// Sampled sojourns.
    Sojourn,
    /// A victim in the thief's L3 visited.
    StealAttemptSameL3,
    /// A victim on the thief's node, other L3, visited.
    StealAttemptSameNode,
    /// A victim on another node visited.
    StealAttemptOtherNode,
    /// A visit to a victim in the thief's L3 took work.
    StealSameL3,
    /// A visit to a victim on the thief's node took work.
    StealSameNode,
    /// A visit to a victim on another node took work.
    StealOtherNode,
    /// Tasks taken from victims in the thief's L3.
    StolenSameL3,
    /// Tasks taken from victims on the thief's node.
    StolenSameNode,
    /// Tasks taken from victims on other nodes.
    StolenOtherNode,
    /// A search found every victim empty and took work from the injector.
    InjectorTake,
    /// The P's M went to sleep in its parker (on its condition variable, or in the
    /// driver's `epoll_wait`).
    Park,
}

/// How an event is named and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInfo {
    /// Its name in JSON and in [`EventCounts`]' map (`polls`, `steals_same_l3`, ...).
    pub name: &'static str,
    /// The Prometheus counter family it belongs to (`gpm_processor_<family>_total`).
    pub family: &'static str,
    /// The family's help text.
    pub help: &'static str,
    /// The `relation` label, for the steal families.
    pub relation: Option<Relation>,
}

impl Event {
    /// Number of events.
    pub const COUNT: usize = 17;

    /// Every event, in table order.
    pub const ALL: [Event; Event::COUNT] = [
        Event::Poll,
        Event::Spawn,
        Event::Wake,
        Event::Completion,
        Event::SojournNs,
        Event::Sojourn,
        Event::StealAttemptSameL3,
        Event::StealAttemptSameNode,
        Event::StealAttemptOtherNode,
        Event::StealSameL3,
        Event::StealSameNode,
        Event::StealOtherNode,
        Event::StolenSameL3,
        Event::StolenSameNode,
        Event::StolenOtherNode,
        Event::InjectorTake,
        Event::Park,
    ];

    /// The event's name, family, help and labels: the one place that says how it shows.
    pub const fn describe(self) -> EventInfo {
        use Relation::*;
        let (name, family, help, relation) = match self {
            Event::Poll => ("polls", "polls", "Polls run by a P.", None),
            Event::Spawn => ("spawns", "spawns", "Spawns on a P.", None),
            Event::Wake => ("wakes", "wakes", "Wake-ups on a P.", None),
            Event::Completion => ("completions", "completions", "Completions on a P.", None),
            Event::SojournNs => (
                "sojourn_sum_ns",
                "sampled_sojourn_nanoseconds",
                "Sum of the sampled tasks' sojourns completed on a P, nanoseconds.",
                None,
            ),
            Event::Sojourn => (
                "sojourn_count",
                "sampled_sojourns",
                "Sampled tasks completed on a P.",
                None,
            ),
            Event::StealAttemptSameL3 => (
                "steal_attempts_same_l3",
                ATTEMPTS,
                ATTEMPTS_HELP,
                Some(SameL3),
            ),
            Event::StealAttemptSameNode => (
                "steal_attempts_same_node",
                ATTEMPTS,
                ATTEMPTS_HELP,
                Some(SameNode),
            ),
            Event::StealAttemptOtherNode => (
                "steal_attempts_other_node",
                ATTEMPTS,
                ATTEMPTS_HELP,
                Some(OtherNode),
            ),
            Event::StealSameL3 => ("steals_same_l3", STEALS, STEALS_HELP, Some(SameL3)),
            Event::StealSameNode => ("steals_same_node", STEALS, STEALS_HELP, Some(SameNode)),
            Event::StealOtherNode => ("steals_other_node", STEALS, STEALS_HELP, Some(OtherNode)),
            Event::StolenSameL3 => ("tasks_stolen_same_l3", STOLEN, STOLEN_HELP, Some(SameL3)),
            Event::StolenSameNode => (
                "tasks_stolen_same_node",
                STOLEN,
                STOLEN_HELP,
                Some(SameNode),
            ),
            Event::StolenOtherNode => (
                "tasks_stolen_other_node",
                STOLEN,
                STOLEN_HELP,
                Some(OtherNode),
            ),
            Event::InjectorTake => (
                "injector_takes",
                "injector_takes",
                "Searches by a P that found every victim empty and took from the injector.",
                None,
            ),
            Event::Park => (
                "parks",
                "parks",
                "Times a P's M slept in its parker (idle, or in the driver).",
                None,
            ),
        };
        EventInfo {
            name,
            family,
            help,
            relation,
        }
    }

    /// A visit to a victim with `relation`.
    pub const fn steal_attempt(relation: Relation) -> Event {
        [
            Event::StealAttemptSameL3,
            Event::StealAttemptSameNode,
            Event::StealAttemptOtherNode,
        ][relation.index()]
    }

    /// A visit to a victim with `relation` that took work.
    pub const fn steal(relation: Relation) -> Event {
        [
            Event::StealSameL3,
            Event::StealSameNode,
            Event::StealOtherNode,
        ][relation.index()]
    }

    /// Tasks taken from a victim with `relation`.
    pub const fn stolen(relation: Relation) -> Event {
        [
            Event::StolenSameL3,
            Event::StolenSameNode,
            Event::StolenOtherNode,
        ][relation.index()]
    }

    /// Position in [`Event::ALL`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

const ATTEMPTS: &str = "steal_attempts";
const ATTEMPTS_HELP: &str = "Victims visited by a P, by relation.";
const STEALS: &str = "steals";
const STEALS_HELP: &str = "Successful steals by a P, by victim relation.";
const STOLEN: &str = "tasks_stolen";
const STOLEN_HELP: &str = "Tasks taken by a P from victims, by relation.";

/// One P's counters (or the shared set), a counter per [`Event`].
pub struct EventTable {
    counts: [AtomicU64; Event::COUNT],
}

impl EventTable {
    fn new() -> EventTable {
        EventTable {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Adds `n` to `event`. Only the holder of the table's P may call this (one writer:
    /// a relaxed load and store, no read-modify-write).
    #[inline]
    pub fn add(&self, event: Event, n: u64) {
        let counter = &self.counts[event.index()];
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds `n` to `event` from any thread: an atomic add, for the shared table only (on a
    /// P's table, a concurrent [`EventTable::add`] by its holder could lose it).
    #[inline]
    fn add_from_any_thread(&self, event: Event, n: u64) {
        self.counts[event.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter, read relaxed.
    pub fn snapshot(&self) -> EventCounts {
        EventCounts(std::array::from_fn(|i| {
            self.counts[i].load(Ordering::Relaxed)
        }))
    }
}

impl fmt::Debug for EventTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// The counters of a runtime: one [`EventTable`] per P (each on its own cache lines) and
/// a shared one for threads without a P.
pub struct Events {
    per_processor: Box<[Arc<CachePadded<EventTable>>]>,
    shared: CachePadded<EventTable>,
    enabled: bool,
}

impl Events {
    /// Tables for `processors` Ps; when `enabled` is false nothing is ever counted.
    pub fn new(processors: usize, enabled: bool) -> Events {
        Events {
            per_processor: (0..processors)
                .map(|_| Arc::new(CachePadded::new(EventTable::new())))
                .collect(),
            shared: CachePadded::new(EventTable::new()),
            enabled,
        }
    }

    /// Whether events are counted.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// P `p`'s table for its holder to write, `None` when counting is off (or no such P).
    pub fn writer(&self, p: usize) -> Option<Arc<CachePadded<EventTable>>> {
        self.enabled
            .then(|| self.per_processor.get(p).cloned())
            .flatten()
    }

    /// P `p`'s table, for its holder to write ([`EventTable::add`]) when it has no
    /// [`Events::writer`] at hand. Counting must be on ([`Events::enabled`]).
    ///
    /// # Panics
    /// If there is no P `p`.
    #[inline]
    pub fn table(&self, p: usize) -> &EventTable {
        debug_assert!(self.enabled, "counting is off");
        &self.per_processor[p]
    }

    /// Counts `n` of `event` for a thread that holds no P.
    pub fn count_shared(&self, event: Event, n: u64) {
        if self.enabled {
            self.shared.add_from_any_thread(event, n);
        }
    }

    /// The counters of threads without a P.
    pub fn shared(&self) -> EventCounts {
        self.shared.snapshot()
    }

    /// P `p`'s counters.
    pub fn processor(&self, p: usize) -> EventCounts {
        self.per_processor[p].snapshot()
    }

    /// Every P's counters and the shared ones, summed.
    pub fn totals(&self) -> EventCounts {
        self.per_processor
            .iter()
            .map(|table| table.snapshot())
            .fold(self.shared.snapshot(), |total, p| total + p)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("enabled", &self.enabled)
            .field("totals", &self.totals())
            .finish()
    }
}

/// Counter values at one read, indexed by [`Event`]. Serialises as a map from each event's
/// name to its value.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct EventCounts([u64; Event::COUNT]);

impl EventCounts {
    /// The value of `event`.
    #[inline]
    pub fn get(&self, event: Event) -> u64 {
        self.0[event.index()]
    }

    /// Every event with its value, in [`Event::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Event, u64)> + '_ {
        Event::ALL.iter().map(|&event| (event, self.get(event)))
    }

    /// Counts of the three events `by` gives for each relation.
    pub fn by_relation(&self, by: fn(Relation) -> Event) -> ByRelation {
        ByRelation {
            same_l3: self.get(by(Relation::SameL3)),
            same_node: self.get(by(Relation::SameNode)),
            other_node: self.get(by(Relation::OtherNode)),
        }
    }
}

impl std::ops::Index<Event> for EventCounts {
    type Output = u64;
    fn index(&self, event: Event) -> &u64 {
        &self.0[event.index()]
    }
}

impl std::ops::Add for EventCounts {
    type Output = EventCounts;
    fn add(self, other: EventCounts) -> EventCounts {
        EventCounts(std::array::from_fn(|i| self.0[i].wrapping_add(other.0[i])))
    }
}

impl fmt::Debug for EventCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(e, n)| (e.describe().name, n)))
            .finish()
    }
}

impl serde::Serialize for EventCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter().map(|(e, n)| (e.describe().name, n)))
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_event_once_in_discriminant_order() {
        for (i, event) in Event::ALL.iter().enumerate() {
            assert_eq!(event.index(), i, "{event:?}");
        }
        let mut names: Vec<_> = Event::ALL.iter().map(|e| e.describe().name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Event::COUNT, "event names are unique");
    }

    #[test]
    fn relation_constructors_pick_the_matching_rows() {
        for relation in Relation::ALL {
            for event in [
                Event::steal_attempt(relation),
                Event::steal(relation),
                Event::stolen(relation),
            ] {
                assert_eq!(event.describe().relation, Some(relation), "{event:?}");
            }
        }
        assert_eq!(Event::steal(Relation::OtherNode), Event::StealOtherNode);
    }

    #[test]
    fn per_processor_and_shared_events_add_up() {
        let events = Events::new(2, true);
        let (p0, p1) = (events.writer(0).unwrap(), events.writer(1).unwrap());
        p0.add(Event::Spawn, 1);
        p1.add(Event::Spawn, 1);
        events.count_shared(Event::Spawn, 1);
        p1.add(Event::Poll, 1);
        p0.add(Event::SojournNs, 10);
        events.count_shared(Event::SojournNs, 30);
        p1.add(Event::stolen(Relation::SameNode), 4);
        let totals = events.totals();
        assert_eq!(totals[Event::Spawn], 3);
        assert_eq!(totals[Event::Poll], 1);
        assert_eq!(totals[Event::SojournNs], 40);
        assert_eq!(events.processor(1)[Event::Spawn], 1);
        assert_eq!(events.processor(1).by_relation(Event::stolen).same_node, 4);
        assert!(events.writer(2).is_none(), "no such P");
    }

    #[test]
    fn disabled_events_have_no_writers_and_stay_zero() {
        let events = Events::new(2, false);
        assert!(events.writer(0).is_none());
        events.count_shared(Event::Wake, 5);
        assert_eq!(events.totals(), EventCounts::default());
    }

    #[test]
    fn counts_serialise_as_a_map_by_name() {
        let events = Events::new(1, true);
        events.writer(0).unwrap().add(Event::InjectorTake, 2);
        let json = serde_json::to_string(&events.processor(0)).unwrap();
        assert!(json.starts_with("{\"polls\":0,"), "{json}");
        assert!(json.contains("\"injector_takes\":2"), "{json}");
    }

    #[test]
    fn handed_over_writers_lose_nothing() {
        let events = Arc::new(Events::new(1, true));
        let baton = Arc::new(std::sync::Mutex::new(()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (table, baton) = (events.writer(0).unwrap(), baton.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        // Holding the P: the mutex stands in for the hand-off.
                        let _p = baton.lock().unwrap();
                        table.add(Event::Poll, 1);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(events.totals()[Event::Poll], 40_000);
    }
}

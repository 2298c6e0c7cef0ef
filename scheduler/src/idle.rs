//! Which Ps are awake, which search for work, and which sleep: the wake-up protocol.
//!
//! # State
//!
//! One atomic word packs two counters: `unparked` (Ps whose M is not asleep) in the high
//! bits and `searching` (unparked Ps that look for work to steal, Go's "spinning" Ms) in the
//! low `SEARCHING_BITS` (16) bits. The list of sleeping Ps lives behind a mutex, taken only on
//! the slow paths (going to sleep, waking someone).
//!
//! # Protocol (numbered as in Go's proc.go)
//!
//! 1. A producer makes a task runnable (push to a queue), executes a `SeqCst` fence, then
//!    asks [`Idle::worker_to_notify`]. If some P is searching it does nothing: that searcher
//!    will find the task. Otherwise it wakes one sleeping P, which starts out searching.
//! 2. At most half of the Ps search at once ([`Idle::transition_worker_to_searching`]), so
//!    a burst of wake-ups does not turn every core into a spinning thief (rayon #642).
//! 3. A searcher that finds work leaves the searching state. If it was the last searcher it
//!    wakes another P (step 1), because the work it found may not be the only work, and
//!    producers in step 1 skipped waking anyone while it searched.
//! 4. A P with nothing to do announces its sleep ([`Idle::transition_worker_to_parked`]),
//!    decrementing `searching` with a `SeqCst` read-modify-write. If it was the last
//!    searcher it must look at every queue once more before sleeping: a producer that saw
//!    `searching > 0` in step 1 relied on it. The fence in step 1 and the RMW here order the
//!    two sides: either the producer sees `searching == 0` and wakes a sleeper, or the last
//!    searcher's re-check sees the task. This is the "re-check after announcing sleep" that
//!    prevents lost wake-ups. (The re-check, `Processor::park`, also executes a `SeqCst`
//!    fence first: redundant in C11 after the RMW, but loom models `SeqCst` accesses as
//!    `AcqRel` and checks the fence pair; the inbox covers these queues too, see
//!    `inbox_push_to_a_busy_p_wakes_an_idle_p` in `runtime/src/inbox_loom_tests.rs`.)
//! 5. Wake-ups go through the P's parker, which keeps a token: an unpark that arrives between
//!    step 4 and the actual sleep makes the sleep return at once.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const SEARCHING_BITS: u32 = 16;
const SEARCHING_MASK: usize = (1 << SEARCHING_BITS) - 1;
const UNPARKED_ONE: usize = 1 << SEARCHING_BITS;

/// The largest number of Ps the packed state word can count.
pub const MAX_PROCESSORS: usize = SEARCHING_MASK;

/// Shared idle/searching bookkeeping for `num_processors` Ps.
pub struct Idle {
    state: AtomicUsize,
    num_processors: usize,
    sleepers: Mutex<Vec<usize>>,
}

#[derive(Clone, Copy)]
struct State(usize);

impl State {
    fn searching(self) -> usize {
        self.0 & SEARCHING_MASK
    }

    fn unparked(self) -> usize {
        self.0 >> SEARCHING_BITS
    }
}

impl Idle {
    /// All Ps start unparked and none searching.
    ///
    /// # Panics
    /// If `num_processors` is zero or above [`MAX_PROCESSORS`]; the runtime's builder rejects
    /// such counts with an error before getting here.
    pub fn new(num_processors: usize) -> Idle {
        assert!(
            (1..=MAX_PROCESSORS).contains(&num_processors),
            "processor count {num_processors} outside 1..={MAX_PROCESSORS}"
        );
        Idle {
            state: AtomicUsize::new(num_processors * UNPARKED_ONE),
            num_processors,
            sleepers: Mutex::new(Vec::with_capacity(num_processors)),
        }
    }

    fn load(&self, order: Ordering) -> State {
        State(self.state.load(order))
    }

    /// Step 1: the P to wake for newly runnable work, if any should be woken. The caller
    /// must have made the work visible and executed a `SeqCst` fence first. The chosen P is
    /// counted as unparked and searching; the caller unparks it.
    pub fn worker_to_notify(&self) -> Option<usize> {
        if !self.should_notify() {
            return None;
        }
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        if !self.should_notify() {
            return None;
        }
        let index = sleepers.pop()?;
        self.state.fetch_add(UNPARKED_ONE | 1, Ordering::SeqCst);
        Some(index)
    }

    fn should_notify(&self) -> bool {
        let state = self.load(Ordering::SeqCst);
        state.searching() == 0 && state.unparked() < self.num_processors
    }

    /// Step 2: try to become a searcher. Fails when half of the Ps already search.
    pub fn transition_worker_to_searching(&self) -> bool {
        let state = self.load(Ordering::SeqCst);
        if 2 * state.searching() >= self.num_processors.max(2) {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Step 3: a searcher found work. Returns true if it was the last searcher, in which
    /// case the caller must wake another P.
    #[must_use = "the last searcher must wake another P"]
    pub fn transition_worker_from_searching(&self) -> bool {
        let previous = State(self.state.fetch_sub(1, Ordering::SeqCst));
        debug_assert!(previous.searching() > 0);
        previous.searching() == 1
    }

    /// Step 4: P `index` is about to sleep. Returns true if it was the last searcher, in
    /// which case the caller must re-check every queue before sleeping.
    #[must_use = "the last searcher must re-check the queues before sleeping"]
    pub fn transition_worker_to_parked(&self, index: usize, is_searching: bool) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        let decrement = UNPARKED_ONE + usize::from(is_searching);
        let previous = State(self.state.fetch_sub(decrement, Ordering::SeqCst));
        debug_assert!(previous.unparked() > 0);
        sleepers.push(index);
        is_searching && previous.searching() == 1
    }

    /// A P woke up on its own (a token, a timeout, shutdown). If it was still listed as a
    /// sleeper it is counted as unparked and searching again and true is returned; false
    /// means whoever woke it already did that accounting.
    pub fn unpark_worker_by_id(&self, index: usize) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        match sleepers.iter().position(|&i| i == index) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.state.fetch_add(UNPARKED_ONE | 1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Whether P `index` is listed as asleep.
    pub fn is_parked(&self, index: usize) -> bool {
        let sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        sleepers.contains(&index)
    }

    /// Number of Ps currently searching for work (racy snapshot).
    pub fn num_searching(&self) -> usize {
        self.load(Ordering::Relaxed).searching()
    }

    /// Number of Ps asleep (racy snapshot).
    pub fn num_parked(&self) -> usize {
        self.num_processors - self.load(Ordering::Relaxed).unparked()
    }

    /// Every sleeping P, for broadcast wake-ups (shutdown, stop-the-world).
    pub fn sleepers(&self) -> Vec<usize> {
        self.sleepers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl fmt::Debug for Idle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.load(Ordering::Relaxed);
        f.debug_struct("Idle")
            .field("num_processors", &self.num_processors)
            .field("unparked", &state.unparked())
            .field("searching", &state.searching())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_half_search() {
        let idle = Idle::new(4);
        assert!(idle.transition_worker_to_searching());
        assert!(idle.transition_worker_to_searching());
        assert!(!idle.transition_worker_to_searching());
        assert_eq!(idle.num_searching(), 2);
    }

    #[test]
    fn one_processor_may_search() {
        let idle = Idle::new(1);
        assert!(idle.transition_worker_to_searching());
    }

    #[test]
    fn no_notify_while_someone_searches() {
        let idle = Idle::new(2);
        assert!(!idle.transition_worker_to_parked(1, false));
        assert!(idle.transition_worker_to_searching());
        assert_eq!(idle.worker_to_notify(), None);
        assert!(idle.transition_worker_from_searching());
        assert_eq!(idle.worker_to_notify(), Some(1));
        assert_eq!(idle.num_searching(), 1);
        assert_eq!(idle.num_parked(), 0);
    }

    #[test]
    fn last_searcher_to_park_is_told() {
        let idle = Idle::new(2);
        assert!(idle.transition_worker_to_searching());
        assert!(idle.transition_worker_to_parked(0, true));
        assert!(idle.is_parked(0));
        assert!(idle.unpark_worker_by_id(0));
        assert!(!idle.unpark_worker_by_id(0));
    }

    #[test]
    fn nobody_to_notify_when_all_awake() {
        let idle = Idle::new(3);
        assert_eq!(idle.worker_to_notify(), None);
    }
}

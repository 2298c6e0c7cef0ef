//! The task state word: lifecycle flags and the reference count in one `AtomicUsize`.
//!
//! Every transition is one compare-and-swap loop (or one RMW) over this word, so the flags
//! and the count always change together. Transitions that leave the caller with a duty
//! return a `#[must_use]` enum naming it.
//!
//! # Flags, and when each may change
//!
//! * `RUNNING`: set by whoever takes the right to touch the future (a poller, or shutdown);
//!   cleared when the poll ends. Exactly one thread holds it: this is what makes "never two
//!   polls at once" true.
//! * `COMPLETE`: set once, with `RUNNING` cleared in the same step, when the output (or the
//!   cancellation error) is stored. Never cleared.
//! * `NOTIFIED`: a wake happened that is not yet served. Set by a wake; if the task was
//!   idle, the waker also created a `Notified` handle (and a reference) and scheduled it; if
//!   the task was running, the poller sees the flag when the poll ends and reschedules it
//!   itself. So a wake during a poll reschedules exactly once. Cleared when a poll starts.
//! * `CANCELLED`: abort or shutdown asked the task to stop. Whoever next holds `RUNNING`
//!   drops the future instead of polling it.
//! * `JOIN_INTEREST`: the `JoinHandle` is alive. Cleared when it is dropped; then the output
//!   is dropped as soon as it exists.
//! * `JOIN_WAKER`: the join waker slot holds a waker and belongs to the runtime side. While
//!   clear, and the task is not complete, the slot belongs to the `JoinHandle`.
//!
//! # References
//!
//! The count is in units of [`REF_ONE`]. A new task has three: the owned-task list, the
//! first `Notified`, the `JoinHandle`. Wakers and further `Notified` handles add one each.
//! The thread that drops the count to zero deallocates.

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use std::fmt;

pub(crate) const RUNNING: usize = 1 << 0;
pub(crate) const COMPLETE: usize = 1 << 1;
pub(crate) const NOTIFIED: usize = 1 << 2;
pub(crate) const CANCELLED: usize = 1 << 3;
pub(crate) const JOIN_INTEREST: usize = 1 << 4;
pub(crate) const JOIN_WAKER: usize = 1 << 5;

const FLAG_BITS: u32 = 6;
pub(crate) const REF_ONE: usize = 1 << FLAG_BITS;

const INITIAL: usize = (3 * REF_ONE) | JOIN_INTEREST | NOTIFIED;

/// The atomic state word of one task.
pub(crate) struct State {
    word: AtomicUsize,
}

/// A copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

/// Outcome of [`State::transition_to_running`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// The caller polls the future.
    Success,
    /// The caller drops the future: the task was cancelled.
    Cancelled,
    /// Someone else runs it or it is done; the notification's reference was dropped.
    Failed,
    /// As `Failed`, and that was the last reference: deallocate.
    Dealloc,
}

/// What becomes of the poll's reference when the task was woken during the poll
/// ([`State::transition_to_idle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollRef {
    /// The caller keeps it while it schedules the new notification (whose scheduler lives in
    /// the cell, so the cell must outlive the call), then drops it: the transition counts a
    /// reference for the notification.
    KeepUntilScheduled,
    /// It becomes the new notification's, which the caller hands to its runner without
    /// touching the cell again: no count changes (one atomic operation fewer per yield).
    Transfer,
}

/// Outcome of [`State::transition_to_idle`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Idle; the poll's reference was dropped.
    Ok,
    /// Idle, but woken during the poll: the caller has a new notification to schedule. With
    /// [`PollRef::KeepUntilScheduled`] a reference was added for it and the caller drops
    /// the poll's once it has scheduled it; with [`PollRef::Transfer`] the poll's reference
    /// became the notification's.
    OkNotified,
    /// Idle and the poll's reference was the last: deallocate.
    OkDealloc,
    /// Cancelled during the poll: still running; the caller drops the future.
    Cancelled,
}

/// What a wake must do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// Nothing: already scheduled, running (the poller reschedules) or complete.
    DoNothing,
    /// Schedule a new `Notified`; its reference is counted. The caller still holds the
    /// reference it came with (the waker's, the poll's, the join handle's) while scheduling.
    Submit,
    /// Nothing to schedule, and the waker's reference was the last: deallocate.
    Dealloc,
}

impl Snapshot {
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn is_join_waker_set(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(crate) fn is_idle(self) -> bool {
        self.0 & (RUNNING | COMPLETE) == 0
    }
    pub(crate) fn ref_count(self) -> usize {
        self.0 >> FLAG_BITS
    }
    fn with(self, flags: usize) -> Snapshot {
        Snapshot(self.0 | flags)
    }
    fn without(self, flags: usize) -> Snapshot {
        Snapshot(self.0 & !flags)
    }
    fn ref_inc(self) -> Snapshot {
        assert!(
            self.0 <= isize::MAX as usize,
            "task reference count overflow"
        );
        Snapshot(self.0 + REF_ONE)
    }
    fn ref_dec(self) -> Snapshot {
        debug_assert!(self.ref_count() > 0);
        Snapshot(self.0 - REF_ONE)
    }
}

impl State {
    /// Three references (owned list, first notification, join handle), join interest, and
    /// notified: a new task is scheduled once.
    pub(crate) fn new() -> State {
        State {
            word: AtomicUsize::new(INITIAL),
        }
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.word.load(Ordering::Acquire))
    }

    /// Runs `f` until its result is stored with a CAS; `f` returns the new word (or `None`
    /// to store nothing) and the outcome.
    fn update<R>(&self, mut f: impl FnMut(Snapshot) -> (Option<Snapshot>, R)) -> R {
        let mut current = self.load();
        loop {
            let (next, outcome) = f(current);
            let Some(next) = next else { return outcome };
            match self.word.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(actual) => current = Snapshot(actual),
            }
        }
    }

    /// A `Notified` is about to be polled. On success the caller holds `RUNNING` and the
    /// notification's reference becomes the poll's reference.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|s| {
            debug_assert!(s.is_notified(), "polling a task that was not notified");
            if !s.is_idle() {
                let next = s.ref_dec();
                let outcome = if next.ref_count() == 0 {
                    ToRunning::Dealloc
                } else {
                    ToRunning::Failed
                };
                return (Some(next), outcome);
            }
            let next = s.with(RUNNING).without(NOTIFIED);
            let outcome = if s.is_cancelled() {
                ToRunning::Cancelled
            } else {
                ToRunning::Success
            };
            (Some(next), outcome)
        })
    }

    /// The poll returned `Pending`; `poll_ref` says what a wake during the poll does with
    /// the poll's reference.
    pub(crate) fn transition_to_idle(&self, poll_ref: PollRef) -> ToIdle {
        self.update(|s| {
            debug_assert!(s.is_running());
            if s.is_cancelled() {
                return (None, ToIdle::Cancelled);
            }
            let idle = s.without(RUNNING);
            if s.is_notified() {
                let next = match poll_ref {
                    PollRef::KeepUntilScheduled => idle.ref_inc(),
                    PollRef::Transfer => idle,
                };
                return (Some(next), ToIdle::OkNotified);
            }
            let next = idle.ref_dec();
            let outcome = if next.ref_count() == 0 {
                ToIdle::OkDealloc
            } else {
                ToIdle::Ok
            };
            (Some(next), outcome)
        })
    }

    /// The output is stored: set `COMPLETE`, clear `RUNNING`. Returns the word before.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let previous = Snapshot(self.word.fetch_xor(RUNNING | COMPLETE, Ordering::AcqRel));
        debug_assert!(previous.is_running() && !previous.is_complete());
        previous
    }

    /// Shutdown wants to cancel the task. Sets `CANCELLED`; if the task was idle, also takes
    /// `RUNNING` and returns true: the caller must drop the future and complete the task.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.update(|s| {
            let mut next = s.with(CANCELLED);
            let acquired = s.is_idle();
            if acquired {
                next = next.with(RUNNING);
            }
            (Some(next), acquired)
        })
    }

    /// A wake through a borrowed waker (`wake_by_ref`).
    pub(crate) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.update(|s| {
            if s.is_complete() || s.is_notified() {
                (None, ToNotified::DoNothing)
            } else if s.is_running() {
                (Some(s.with(NOTIFIED)), ToNotified::DoNothing)
            } else {
                (Some(s.with(NOTIFIED).ref_inc()), ToNotified::Submit)
            }
        })
    }

    /// A wake that consumes the waker's reference (`wake`).
    pub(crate) fn transition_to_notified_by_val(&self) -> ToNotified {
        self.update(|s| {
            if s.is_running() {
                // The poller holds a reference, so this cannot be the last one.
                (Some(s.with(NOTIFIED).ref_dec()), ToNotified::DoNothing)
            } else if s.is_complete() || s.is_notified() {
                let next = s.ref_dec();
                let outcome = if next.ref_count() == 0 {
                    ToNotified::Dealloc
                } else {
                    ToNotified::DoNothing
                };
                (Some(next), outcome)
            } else {
                // A reference for the new notification; the caller drops the waker's own
                // after scheduling, so the task outlives the scheduling call.
                (Some(s.with(NOTIFIED).ref_inc()), ToNotified::Submit)
            }
        })
    }

    /// `JoinHandle::abort`. Returns `Submit` when the caller must schedule the task so that a
    /// worker cancels it (it was idle); a running or queued task sees `CANCELLED` itself.
    pub(crate) fn transition_to_notified_and_cancel(&self) -> ToNotified {
        self.update(|s| {
            if s.is_cancelled() || s.is_complete() {
                (None, ToNotified::DoNothing)
            } else if s.is_running() || s.is_notified() {
                (Some(s.with(CANCELLED | NOTIFIED)), ToNotified::DoNothing)
            } else {
                (
                    Some(s.with(CANCELLED | NOTIFIED).ref_inc()),
                    ToNotified::Submit,
                )
            }
        })
    }

    /// The join handle registers its waker, which it has written to the slot. Fails (returns
    /// the snapshot) if the task completed meanwhile: the output can be read.
    pub(crate) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.update(|s| {
            debug_assert!(s.is_join_interested() && !s.is_join_waker_set());
            if s.is_complete() {
                return (None, Err(s));
            }
            let next = s.with(JOIN_WAKER);
            (Some(next), Ok(next))
        })
    }

    /// The join handle takes the slot back to replace its waker. Fails if the task completed.
    pub(crate) fn unset_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.update(|s| {
            debug_assert!(s.is_join_interested() && s.is_join_waker_set());
            if s.is_complete() {
                return (None, Err(s));
            }
            let next = s.without(JOIN_WAKER);
            (Some(next), Ok(next))
        })
    }

    /// After waking the join waker on completion, the runtime hands the slot back. Returns
    /// the new word: if join interest is gone, the runtime must drop the waker itself.
    pub(crate) fn unset_join_waker_after_complete(&self) -> Snapshot {
        let previous = Snapshot(self.word.fetch_and(!JOIN_WAKER, Ordering::AcqRel));
        debug_assert!(previous.is_complete() && previous.is_join_waker_set());
        previous.without(JOIN_WAKER)
    }

    /// The join handle is dropped. Clears `JOIN_INTEREST`, and `JOIN_WAKER` too if the task
    /// is not complete (the slot is then the handle's to empty). Returns (before, after).
    pub(crate) fn transition_to_join_handle_dropped(&self) -> (Snapshot, Snapshot) {
        self.update(|s| {
            debug_assert!(s.is_join_interested());
            let mut next = s.without(JOIN_INTEREST);
            if !s.is_complete() {
                next = next.without(JOIN_WAKER);
            }
            (Some(next), (s, next))
        })
    }

    pub(crate) fn ref_inc(&self) {
        let previous = self.word.fetch_add(REF_ONE, Ordering::Relaxed);
        assert!(
            previous <= isize::MAX as usize,
            "task reference count overflow"
        );
    }

    /// Drops `count` references; true if they were the last.
    #[must_use = "the last reference must deallocate"]
    pub(crate) fn ref_dec(&self, count: usize) -> bool {
        let previous = Snapshot(self.word.fetch_sub(count * REF_ONE, Ordering::AcqRel));
        debug_assert!(previous.ref_count() >= count, "task reference underflow");
        previous.ref_count() == count
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interest", &self.is_join_interested())
            .field("join_waker", &self.is_join_waker_set())
            .field("refs", &self.ref_count())
            .finish()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.load().fmt(f)
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    #[test]
    fn new_task_runs_then_idles() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(
            state.transition_to_idle(PollRef::KeepUntilScheduled),
            ToIdle::Ok
        );
        let s = state.load();
        assert!(s.is_idle() && !s.is_notified());
        assert_eq!(s.ref_count(), 2);
    }

    #[test]
    fn wake_during_poll_reschedules_once() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(state.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(state.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(
            state.transition_to_idle(PollRef::KeepUntilScheduled),
            ToIdle::OkNotified
        );
        assert_eq!(state.load().ref_count(), 4);
    }

    #[test]
    fn a_transferred_poll_reference_becomes_the_notifications() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(state.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(
            state.transition_to_idle(PollRef::Transfer),
            ToIdle::OkNotified
        );
        let s = state.load();
        assert!(s.is_idle() && s.is_notified());
        assert_eq!(
            s.ref_count(),
            3,
            "no reference added: the poll's is the notification's"
        );
        // The notification runs as any other.
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(state.transition_to_idle(PollRef::Transfer), ToIdle::Ok);
        assert_eq!(state.load().ref_count(), 2);
    }

    #[test]
    fn wake_when_idle_submits_once() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(
            state.transition_to_idle(PollRef::KeepUntilScheduled),
            ToIdle::Ok
        );
        assert_eq!(state.transition_to_notified_by_ref(), ToNotified::Submit);
        assert_eq!(state.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(state.load().ref_count(), 3);
    }

    #[test]
    fn abort_idle_task_schedules_cancellation() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(
            state.transition_to_idle(PollRef::KeepUntilScheduled),
            ToIdle::Ok
        );
        assert_eq!(
            state.transition_to_notified_and_cancel(),
            ToNotified::Submit
        );
        assert_eq!(state.transition_to_running(), ToRunning::Cancelled);
    }

    #[test]
    fn abort_during_poll_cancels_at_idle() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        assert_eq!(
            state.transition_to_notified_and_cancel(),
            ToNotified::DoNothing
        );
        assert_eq!(
            state.transition_to_idle(PollRef::KeepUntilScheduled),
            ToIdle::Cancelled
        );
    }

    #[test]
    fn join_waker_cannot_be_set_after_complete() {
        let state = State::new();
        assert_eq!(state.transition_to_running(), ToRunning::Success);
        let before = state.transition_to_complete();
        assert!(before.is_join_interested());
        assert!(state.set_join_waker().is_err());
    }

    #[test]
    fn last_ref_dec_reports_dealloc() {
        let state = State::new();
        assert!(!state.ref_dec(2));
        assert!(state.ref_dec(1));
    }
}

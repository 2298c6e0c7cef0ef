//! The typed half of the task: what each vtable entry does for a concrete `F` and `S`.
//!
//! Every function here starts from a header pointer and a counted reference that the caller
//! gives up, and follows the transitions in `state.rs`. Panics from user code (poll, or the
//! drop of the future or the output) are caught and never unwind into the scheduler: a
//! panicking poll completes the task with `JoinError::Panic`.
//!
//! Whatever runs user code of the task (its poll, the drop of its future or output) does it
//! under an [`IdGuard`], so `gpm::task::id()` names the task there (see `current.rs`).
//!
//! Nothing here requires `F: Send`: whether the future may be touched from several threads
//! is decided where a task is created. `new_task` requires `Send`; `new_local_task` (for
//! `LocalSet`, `local.rs`) is `unsafe`, and its caller promises that every entry that can
//! reach the future (poll, cancellation, shutdown) runs on one thread.

use super::core::{Cell, Core, Header, Stage, Trailer, Vtable};
use super::current::IdGuard;
use super::join::JoinError;
use super::state::{PollRef, State, ToIdle, ToRunning};
use super::{waker, CompletedIn, Notified, RanRaw, RawTask, Schedule, Task};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

/// The vtable for tasks running `F` under `S`.
pub(super) fn vtable<F, S>() -> &'static Vtable
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    &Vtable {
        poll: poll::<F, S>,
        schedule: schedule::<F, S>,
        dealloc: dealloc::<F, S>,
        try_read_output: try_read_output::<F, S>,
        register_join_waker: register_join_waker::<F, S>,
        drop_join_handle: drop_join_handle::<F, S>,
        shutdown: shutdown::<F, S>,
    }
}

/// A typed view of one task.
struct Harness<F: Future, S: 'static> {
    cell: NonNull<Cell<F, S>>,
}

impl<F, S> Harness<F, S>
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    /// # Safety
    /// `ptr` is the header of a live `Cell<F, S>`.
    unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        Harness { cell: ptr.cast() }
    }

    fn cell(&self) -> &Cell<F, S> {
        // SAFETY: constructed from a live cell; callers hold a reference keeping it alive.
        unsafe { self.cell.as_ref() }
    }

    fn header(&self) -> &Header {
        &self.cell().header
    }

    fn state(&self) -> &State {
        &self.header().state
    }

    fn core(&self) -> &Core<F, S> {
        &self.cell().core
    }

    fn trailer(&self) -> &Trailer {
        &self.cell().trailer
    }

    fn raw(&self) -> RawTask {
        // SAFETY: the cell is live.
        unsafe { RawTask::from_header(self.cell.cast()) }
    }

    /// Runs one notification (whose reference the caller gave up).
    fn poll(self) -> RanRaw {
        // Set for the whole run (poll, cancellation, completion): one swap and one store.
        let _id = IdGuard::enter(self.header().id);
        match self.state().transition_to_running() {
            ToRunning::Success => self.poll_running(),
            ToRunning::Cancelled => {
                self.cancel_future();
                self.complete(CompletedIn::Poll);
                RanRaw::Completed
            }
            ToRunning::Failed => RanRaw::Idle,
            ToRunning::Dealloc => {
                self.dealloc();
                RanRaw::Idle
            }
        }
    }

    fn poll_running(self) -> RanRaw {
        let waker = ManuallyDrop::new(waker::borrowed(self.header()));
        let mut cx = Context::from_waker(&waker);
        let polled = catch_unwind(AssertUnwindSafe(|| {
            // A panicking poll drops the future while the panic unwinds, as tokio does, so
            // the future's `Drop` sees `std::thread::panicking()`.
            let drop_on_unwind = DropFutureOnUnwind(self.core());
            // SAFETY: transition_to_running succeeded: this thread holds RUNNING.
            let poll = unsafe { self.core().poll(&mut cx) };
            std::mem::forget(drop_on_unwind);
            poll
        }));
        match polled {
            Ok(Poll::Pending) => return self.after_pending(),
            Ok(Poll::Ready(output)) => self.finish(Ok(output)),
            Err(panic) => {
                let id = self.header().id;
                self.finish(Err(JoinError::panic(id, panic)))
            }
        }
        RanRaw::Completed
    }

    /// After a `Pending` poll: idle, or woken meanwhile (a yield), or cancelled meanwhile.
    fn after_pending(self) -> RanRaw {
        let to_runner = self.core().scheduler.yields_to_runner();
        let poll_ref = match to_runner {
            true => PollRef::Transfer,
            false => PollRef::KeepUntilScheduled,
        };
        match self.state().transition_to_idle(poll_ref) {
            ToIdle::Ok => RanRaw::Idle,
            ToIdle::OkNotified if to_runner => RanRaw::Yielded(self.raw()),
            ToIdle::OkNotified => self.yield_to_scheduler(),
            ToIdle::OkDealloc => {
                self.dealloc();
                RanRaw::Idle
            }
            ToIdle::Cancelled => {
                self.cancel_future();
                self.complete(CompletedIn::Poll);
                RanRaw::Completed
            }
        }
    }

    /// The task was woken during its poll and its scheduler queues it itself
    /// ([`Schedule::yield_now`]; a runtime's M takes it back instead: [`RanRaw::Yielded`],
    /// with the poll's reference as the notification's). The transition to idle counted a
    /// reference for the new notification; the poll's is dropped once it is queued.
    fn yield_to_scheduler(self) -> RanRaw {
        // SAFETY: the transition counted a reference for this notification; the poll's
        // reference keeps the cell (and the scheduler in it) alive meanwhile.
        let notified = unsafe { Notified::from_raw(self.raw()) };
        self.core().scheduler.yield_now(notified);
        self.raw().drop_reference();
        RanRaw::Idle
    }

    /// Drops the future (catching a panicking drop) and stores the cancellation outcome.
    /// The caller holds `RUNNING`.
    fn cancel_future(&self) {
        let id = self.header().id;
        // SAFETY: the caller holds RUNNING.
        let dropped = unsafe { self.core().drop_stage_contained() };
        let outcome = match dropped {
            Ok(()) => JoinError::cancelled(id),
            Err(panic) => JoinError::panic(id, panic),
        };
        // SAFETY: the caller holds RUNNING.
        unsafe { self.core().set_stage(Stage::Finished(Err(outcome))) };
    }

    /// Stores the output, dropping the future first, then completes (in the poll the
    /// caller runs). The caller holds `RUNNING`.
    fn finish(self, output: Result<F::Output, JoinError>) {
        // SAFETY: the caller holds RUNNING. A panic in the future's drop is caught and
        // replaces the output.
        let stored = unsafe { self.core().drop_stage_contained() };
        let output = match stored {
            Ok(()) => output,
            Err(panic) => Err(JoinError::panic(self.header().id, panic)),
        };
        // SAFETY: as above.
        unsafe { self.core().set_stage(Stage::Finished(output)) };
        self.complete(CompletedIn::Poll);
    }

    /// Publishes completion, notifies or cleans up after the join handle, leaves the owned
    /// list (`at` tells the scheduler where it completed), and drops the caller's
    /// reference (and the list's).
    fn complete(self, at: CompletedIn) {
        let before = self.state().transition_to_complete();
        if !before.is_join_interested() {
            // Nobody will read the output: drop it now. COMPLETE is published and the join
            // handle is gone, so this thread has the stage to itself.
            // SAFETY: as just said.
            let _ = unsafe { self.core().drop_stage_contained() };
        } else if before.is_join_waker_set() {
            // The join waker is user code (any executor's waker): a panic in it must not
            // unwind into the M and take the P with it, so it is caught and dropped.
            // SAFETY: JOIN_WAKER is set and COMPLETE published: the slot is read-only now.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe { self.trailer().wake_join() }));
            let after = self.state().unset_join_waker_after_complete();
            if !after.is_join_interested() {
                // The join handle was dropped while we woke it and left the waker to us.
                // SAFETY: JOIN_WAKER is clear and no join handle exists: we own the slot.
                unsafe { self.trailer().set_waker(None) };
            }
        }
        // SAFETY: the owned list's Task and ours are both counted references; this view
        // does not count one, so it must not drop.
        let this = ManuallyDrop::new(unsafe { Task::<S>::from_raw(self.raw()) });
        let released = self.core().scheduler.release(&this, at);
        let count = if released.is_some() { 2 } else { 1 };
        std::mem::forget(released);
        if self.state().ref_dec(count) {
            self.dealloc();
        }
    }

    /// Shutdown cancels the task; consumes the caller's reference.
    fn shutdown(self) {
        if !self.state().transition_to_shutdown() {
            // Running elsewhere (it will see CANCELLED) or already complete.
            self.raw().drop_reference();
            return;
        }
        let _id = IdGuard::enter(self.header().id);
        self.cancel_future();
        self.complete(CompletedIn::Shutdown);
    }

    fn try_read_output(&self, dst: &mut Poll<Result<F::Output, JoinError>>, waker: &Waker) {
        if can_read_output(self.state(), self.trailer(), waker) {
            // SAFETY: COMPLETE is observed and the join handle (our caller) owns the output.
            *dst = Poll::Ready(unsafe { self.core().take_output() });
        }
    }

    fn drop_join_handle(self) {
        let (before, after) = self.state().transition_to_join_handle_dropped();
        if before.is_complete() {
            let _id = IdGuard::enter(self.header().id);
            // SAFETY: the task completed while the handle was interested: the output is
            // the handle's to drop.
            let _ = unsafe { self.core().drop_stage_contained() };
        }
        if !after.is_join_waker_set() {
            // SAFETY: JOIN_WAKER is clear: the slot is the handle's.
            unsafe { self.trailer().set_waker(None) };
        }
        self.raw().drop_reference();
    }

    /// Drops the cell's contents and returns its memory to the scheduler's allocator. The
    /// scheduler is moved out first and dropped last: it keeps the allocator (the
    /// runtime's `Shared`) alive while the block is returned, even if this is the last
    /// task of a runtime that is already gone.
    fn dealloc(self) {
        let cell = self.cell.as_ptr();
        // SAFETY: the reference count reached zero: nobody else can reach the cell. Each
        // field is read or dropped exactly once and the memory is not used afterwards.
        unsafe {
            let scheduler: S = std::ptr::read(std::ptr::addr_of!((*cell).core.scheduler));
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*cell).header));
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*cell).core.stage));
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*cell).trailer));
            scheduler.deallocate_task(
                self.cell.cast(),
                std::alloc::Layout::new::<Cell<F, S>>(),
                Cell::<F, S>::CLASS,
            );
            drop(scheduler);
        }
    }
}

/// Drops the future of a task whose poll is unwinding. Forgotten when the poll returns.
struct DropFutureOnUnwind<'a, F: Future, S: 'static>(&'a Core<F, S>);

impl<F: Future, S: 'static> Drop for DropFutureOnUnwind<'_, F, S> {
    fn drop(&mut self) {
        // A second panic from the future's own `Drop` is caught here (a panic escaping a
        // destructor during unwinding would abort); the poll's panic is the one reported.
        // SAFETY: only armed inside `poll_running`, whose thread holds RUNNING.
        let _ = unsafe { self.0.drop_stage_contained() };
    }
}

/// The join handle's side of the join waker protocol. Returns true when the output can be
/// read; otherwise `waker` is registered to be woken at completion.
fn can_read_output(state: &State, trailer: &Trailer, waker: &Waker) -> bool {
    let snapshot = state.load();
    debug_assert!(snapshot.is_join_interested());
    if snapshot.is_complete() {
        return true;
    }
    let registered = if !snapshot.is_join_waker_set() {
        set_join_waker(state, trailer, waker.clone())
    } else {
        // SAFETY: JOIN_WAKER is set: the slot is only read.
        if unsafe { trailer.will_wake(waker) } {
            return false;
        }
        state
            .unset_join_waker()
            .and_then(|_| set_join_waker(state, trailer, waker.clone()))
    };
    match registered {
        Ok(()) => false,
        Err(snapshot) => {
            debug_assert!(snapshot.is_complete());
            true
        }
    }
}

fn set_join_waker(
    state: &State,
    trailer: &Trailer,
    waker: Waker,
) -> Result<(), super::state::Snapshot> {
    // SAFETY: JOIN_WAKER is clear and the handle holds JOIN_INTEREST: the slot is ours.
    unsafe { trailer.set_waker(Some(waker)) };
    let result = state.set_join_waker();
    if result.is_err() {
        // Completed meanwhile: the slot is still ours; empty it.
        // SAFETY: as above, since the flag was never set.
        unsafe { trailer.set_waker(None) };
    }
    result.map(|_| ())
}

unsafe fn poll<F, S>(ptr: NonNull<Header>) -> RanRaw
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    unsafe { Harness::<F, S>::from_raw(ptr) }.poll()
}

unsafe fn schedule<F, S>(ptr: NonNull<Header>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let harness = unsafe { Harness::<F, S>::from_raw(ptr) };
    // SAFETY: the caller transfers a notification reference, and holds another one until
    // this returns, so the scheduler borrowed from the cell outlives the call even if the
    // notification runs to completion on another thread meanwhile.
    let notified = unsafe { Notified::from_raw(harness.raw()) };
    harness.core().scheduler.schedule(notified);
}

unsafe fn dealloc<F, S>(ptr: NonNull<Header>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    unsafe { Harness::<F, S>::from_raw(ptr) }.dealloc();
}

unsafe fn try_read_output<F, S>(ptr: NonNull<Header>, dst: *mut (), waker: &Waker)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the join handle passes a `Poll<Result<F::Output, JoinError>>` of its own type.
    let dst = unsafe { &mut *dst.cast::<Poll<Result<F::Output, JoinError>>>() };
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    unsafe { Harness::<F, S>::from_raw(ptr) }.try_read_output(dst, waker);
}

unsafe fn register_join_waker<F, S>(ptr: NonNull<Header>, waker: &Waker) -> bool
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let harness = unsafe { Harness::<F, S>::from_raw(ptr) };
    can_read_output(harness.state(), harness.trailer(), waker)
}

unsafe fn drop_join_handle<F, S>(ptr: NonNull<Header>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    unsafe { Harness::<F, S>::from_raw(ptr) }.drop_join_handle();
}

unsafe fn shutdown<F, S>(ptr: NonNull<Header>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    unsafe { Harness::<F, S>::from_raw(ptr) }.shutdown();
}

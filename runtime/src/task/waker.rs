//! The task's `Waker`: a pointer to the header plus one counted reference.
//!
//! Waking follows `state.rs`: `wake_by_ref` schedules only an idle, unnotified task;
//! `wake` does the same and then drops the waker's reference, after the scheduling call so
//! the task outlives it. Wakers work from any thread; the scheduler decides where the task
//! goes (the waking P's `runnext`, or the injector).

use super::core::Header;
use super::state::ToNotified;
use super::RawTask;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// A waker for the poll in progress that does not own a reference: the caller wraps it in
/// `ManuallyDrop` and the poll's reference keeps the task alive. Cloning it counts a
/// reference as usual.
pub(super) fn borrowed(header: &Header) -> Waker {
    let raw = RawWaker::new((header as *const Header).cast(), &VTABLE);
    // SAFETY: the vtable functions uphold the RawWaker contract for a header pointer.
    unsafe { Waker::from_raw(raw) }
}

/// # Safety
/// `data` came from a waker built by this module: it points to a live task header.
unsafe fn raw_task(data: *const ()) -> RawTask {
    // SAFETY: per the contract the pointer is a live, non-null header.
    unsafe { RawTask::from_header(NonNull::new_unchecked(data.cast_mut().cast())) }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a header pointer kept alive by the waker being cloned.
    let task = unsafe { raw_task(data) };
    task.header().state.ref_inc();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: the waker owns a reference.
    let task = unsafe { raw_task(data) };
    match task.header().state.transition_to_notified_by_val() {
        ToNotified::Submit => {
            task.schedule();
            task.drop_reference();
        }
        ToNotified::Dealloc => task.dealloc(),
        ToNotified::DoNothing => {}
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the borrowed waker keeps its reference for the whole call.
    let task = unsafe { raw_task(data) };
    match task.header().state.transition_to_notified_by_ref() {
        ToNotified::Submit => task.schedule(),
        ToNotified::Dealloc => unreachable!("wake_by_ref dropped the last reference"),
        ToNotified::DoNothing => {}
    }
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker owns the reference it drops.
    let task = unsafe { raw_task(data) };
    task.drop_reference();
}

//! `AbortHandle`: the right to cancel a task, without the right to its output.
//!
//! An `AbortHandle` is one more counted reference to the task (see the table in the module
//! documentation of `task`): it keeps the header (state word, id) alive, never the output,
//! which stays the join handle's. Cloning counts a reference, dropping releases it; the
//! last reference of any kind frees the task, so a handle may outlive the task's completion
//! and its join handle. Its operations touch only the atomic state word, so it is `Send`
//! and `Sync` whatever the output type.

use super::state::ToNotified;
use super::{Id, RawTask};
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

/// An owned permission to abort a task, like tokio's `AbortHandle`
/// ([`JoinHandle::abort_handle`](super::JoinHandle::abort_handle)).
///
/// Unlike the join handle, dropping it does nothing to the task.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// rt.block_on(async {
///     let task = gpm::spawn(std::future::pending::<()>());
///     let abort = task.abort_handle();
///     abort.abort();
///     assert!(task.await.unwrap_err().is_cancelled());
///     assert!(abort.is_finished());
/// });
/// ```
pub struct AbortHandle {
    raw: RawTask,
}

// SAFETY: the handle owns a counted reference and only uses the atomic state word and the
// immutable id, never the future or output: it can move between threads.
unsafe impl Send for AbortHandle {}
// SAFETY: as above; `&AbortHandle` methods only touch the atomic state word.
unsafe impl Sync for AbortHandle {}

impl UnwindSafe for AbortHandle {}
impl RefUnwindSafe for AbortHandle {}

impl AbortHandle {
    /// # Safety
    /// The caller transfers one counted reference to the handle.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> AbortHandle {
        AbortHandle { raw }
    }

    /// Asks the task to stop; see [`JoinHandle::abort`](super::JoinHandle::abort).
    pub fn abort(&self) {
        abort_task(self.raw);
    }

    /// Whether the task has completed (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().is_complete()
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.header().id
    }
}

/// Sets `CANCELLED`, and schedules the task if it was idle so that a worker cancels it. The
/// caller holds a counted reference to `raw` for the whole call.
pub(super) fn abort_task(raw: RawTask) {
    match raw.header().state.transition_to_notified_and_cancel() {
        ToNotified::Submit => raw.schedule(),
        ToNotified::DoNothing => {}
        ToNotified::Dealloc => unreachable!("abort dropped the last reference"),
    }
}

impl Clone for AbortHandle {
    fn clone(&self) -> AbortHandle {
        self.raw.header().state.ref_inc();
        // SAFETY: the reference was just counted for the new handle.
        unsafe { AbortHandle::from_raw(self.raw) }
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        self.raw.drop_reference();
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

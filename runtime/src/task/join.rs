//! `JoinHandle` and `JoinError`: the spawner's side of a task.

use super::coop;
use super::{AbortHandle, Id, RawTask};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::UnwindSafe;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// An owned permission to await a task's output, like tokio's `JoinHandle`.
///
/// Dropping the handle detaches the task: it keeps running and its output is dropped when
/// it completes. Awaiting the handle spends one unit of the cooperative budget.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
/// let value = rt.block_on(async { gpm::spawn(async { 6 * 7 }).await.unwrap() });
/// assert_eq!(value, 42);
/// ```
pub struct JoinHandle<T> {
    raw: RawTask,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves `T` out of the task, so it may move between threads when
// `T: Send`; the task itself is shared through its atomic protocol.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: every `&JoinHandle` method (abort, is_finished, id) only touches the atomic state.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> UnwindSafe for JoinHandle<T> {}
impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// The caller transfers the join handle's counted reference, and the task's output type
    /// is `T`.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _output: PhantomData,
        }
    }

    /// Asks the task to stop. A task waiting for a wake-up is cancelled by a worker soon; a
    /// task being polled is cancelled when the poll returns. Awaiting the handle then gives
    /// a [`JoinError`] for which `is_cancelled()` holds, unless the task completed first.
    pub fn abort(&self) {
        super::abort::abort_task(self.raw);
    }

    /// A handle that can abort the task without owning its output (and outlive this one).
    pub fn abort_handle(&self) -> AbortHandle {
        self.raw.header().state.ref_inc();
        // SAFETY: the reference was just counted for the new handle.
        unsafe { AbortHandle::from_raw(self.raw) }
    }

    /// Whether the task has completed (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().is_complete()
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.header().id
    }

    /// Registers `waker` to be woken when the task completes, as a poll would, but without
    /// spending budget or taking the output. Returns true (and registers nothing) if the
    /// task is already complete.
    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        // SAFETY: this handle holds JOIN_INTEREST, which the join waker protocol requires.
        unsafe { (self.raw.header().vtable.register_join_waker)(self.raw.header_ptr(), waker) }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let spent = std::task::ready!(coop::poll_proceed(cx));
        let mut output = Poll::Pending;
        // SAFETY: the vtable's output type is `T` (from_raw's contract) and `output` has the
        // type it writes.
        unsafe {
            (self.raw.header().vtable.try_read_output)(
                self.raw.header_ptr(),
                (&mut output as *mut Poll<Result<T, JoinError>>).cast(),
                cx.waker(),
            );
        }
        if output.is_ready() {
            spent.made_progress();
        }
        output
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle owns its reference and gives it up here.
        unsafe { (self.raw.header().vtable.drop_join_handle)(self.raw.header_ptr()) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task produced no output: it was cancelled, or it panicked.
pub struct JoinError {
    id: Id,
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    /// Whether the task was cancelled (aborted, or dropped by runtime shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload.
    ///
    /// # Panics
    /// If the error is not a panic; use [`JoinError::try_into_panic`] to check.
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError::into_panic` called on a cancellation, not a panic")
    }

    /// The panic payload, or the error back if it is a cancellation.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        self.id
    }

    fn panic_message(&self) -> Option<String> {
        let Repr::Panic(payload) = &self.repr else {
            return None;
        };
        let payload = payload.lock().unwrap_or_else(|e| e.into_inner());
        payload_str(&**payload).map(str::to_string)
    }
}

/// The message of a panic payload that is a `&str` or a `String`.
fn payload_str(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// The message of a panic payload, or a placeholder for payloads of other types.
pub(crate) fn panic_payload_message(payload: &(dyn Any + Send)) -> &str {
    payload_str(payload).unwrap_or("(a panic payload that is not a string)")
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => write!(f, "task {} was cancelled", self.id),
            (Repr::Panic(_), Some(message)) => {
                write!(f, "task {} panicked with message {message:?}", self.id)
            }
            (Repr::Panic(_), None) => write!(f, "task {} panicked", self.id),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio's format: `JoinError::Panic(Id(2), "boom", ...)`, `JoinError::Cancelled(Id(2))`.
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => write!(f, "JoinError::Cancelled({:?})", self.id),
            (Repr::Panic(_), Some(message)) => {
                write!(f, "JoinError::Panic({:?}, {message:?}, ...)", self.id)
            }
            (Repr::Panic(_), None) => write!(f, "JoinError::Panic({:?}, ...)", self.id),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(error: JoinError) -> std::io::Error {
        std::io::Error::other(error.to_string())
    }
}

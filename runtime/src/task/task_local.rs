//! Task-local storage: [`task_local!`](crate::task_local) and [`LocalKey`], as tokio's.
//!
//! # Design
//!
//! A task-local key is a thread-local slot (`RefCell<Option<T>>`) plus a scope that owns the
//! value. [`LocalKey::scope`] wraps a future in a [`TaskLocalFuture`] holding the value; each
//! poll of the wrapper swaps the value into the thread-local, polls the inner future, and
//! swaps it back out (a guard does the swap back, so a panicking poll restores it too). The
//! value therefore follows the task, whatever P (thread) polls it next, and a nested scope
//! of the same key shadows the outer one for its duration. [`LocalKey::sync_scope`] does the
//! same around one closure call. The wrapper drops its inner future inside the scope too, so
//! the future's destructor can still read the value.
//!
//! # Invariants
//!
//! * Between polls the thread-local holds whatever the enclosing scope put there (usually
//!   nothing): a value is in the slot only while its scope's code runs.
//! * The `RefCell` is never borrowed while user code runs, except by [`LocalKey::with`]
//!   itself; entering a scope inside `with`'s closure finds it borrowed and panics with a
//!   message, rather than corrupting the slot.
//!
//! The code follows tokio's `task_local.rs` (MIT), so behaviour and panic messages match.

use pin_project_lite::pin_project;
use std::cell::RefCell;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::{fmt, mem, thread};

/// Declares task-local keys of type [`LocalKey`], like `tokio::task_local!`.
///
/// ```
/// gpm::task_local! {
///     static REQUEST_ID: u32;
/// }
///
/// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
/// rt.block_on(REQUEST_ID.scope(7, async {
///     gpm::task::yield_now().await;
///     assert_eq!(REQUEST_ID.get(), 7);
/// }));
/// assert!(REQUEST_ID.try_with(|_| ()).is_err());
/// ```
#[macro_export]
macro_rules! task_local {
    // empty (base case for the recursion)
    () => {};

    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };

    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_local_inner {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __KEY: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            $crate::task::LocalKey { inner: __KEY }
        };
    };
}

/// A key for task-local data, declared with [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    #[doc(hidden)]
    pub inner: thread::LocalKey<RefCell<Option<T>>>,
}

impl<T: 'static> LocalKey<T> {
    /// Runs `future` with the key set to `value` while it is polled (and dropped).
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            local: self,
            slot: Some(value),
            future: Some(future),
        }
    }

    /// Runs `f` with the key set to `value`.
    ///
    /// # Panics
    /// Inside the closure of [`LocalKey::with`] for the same key.
    #[track_caller]
    pub fn sync_scope<F, R>(&'static self, value: T, f: F) -> R
    where
        F: FnOnce() -> R,
    {
        let mut value = Some(value);
        match self.scope_inner(&mut value, f) {
            Ok(result) => result,
            Err(error) => error.panic(),
        }
    }

    /// Swaps `slot` into the thread-local, runs `f`, and swaps it back (also on unwind).
    fn scope_inner<F, R>(&'static self, slot: &mut Option<T>, f: F) -> Result<R, ScopeInnerErr>
    where
        F: FnOnce() -> R,
    {
        struct Guard<'a, T: 'static> {
            local: &'static LocalKey<T>,
            slot: &'a mut Option<T>,
        }

        impl<T: 'static> Drop for Guard<'_, T> {
            fn drop(&mut self) {
                // Cannot panic: the cell was free when the scope was entered and user code
                // never holds a borrow across the scope's end; the thread-local was alive
                // then and is still.
                self.local.inner.with(|inner| {
                    mem::swap(self.slot, &mut *inner.borrow_mut());
                });
            }
        }

        self.inner.try_with(|inner| {
            inner
                .try_borrow_mut()
                .map(|mut current| mem::swap(slot, &mut *current))
        })??;
        let guard = Guard { local: self, slot };
        let result = f();
        drop(guard);
        Ok(result)
    }

    /// Calls `f` with a reference to the value of the current scope.
    ///
    /// # Panics
    /// Outside a scope of this key.
    #[track_caller]
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(result) => result,
            Err(_) => panic!("cannot access a task-local storage value without setting it first"),
        }
    }

    /// Calls `f` with a reference to the value of the current scope, or returns an error
    /// outside any scope of this key.
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        // A destroyed thread-local means no scope can be running here.
        let result = self.inner.try_with(|value| value.borrow().as_ref().map(f));
        match result {
            Ok(Some(result)) => Ok(result),
            Ok(None) | Err(_) => Err(AccessError { _private: () }),
        }
    }
}

impl<T: Clone + 'static> LocalKey<T> {
    /// A copy of the value of the current scope.
    ///
    /// # Panics
    /// Outside a scope of this key.
    #[track_caller]
    pub fn get(&'static self) -> T {
        self.with(|value| value.clone())
    }

    /// A copy of the value of the current scope, or an error outside any scope.
    pub fn try_get(&'static self) -> Result<T, AccessError> {
        self.try_with(|value| value.clone())
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("LocalKey { .. }")
    }
}

pin_project! {
    /// A future with a task-local value set while it runs; see [`LocalKey::scope`].
    pub struct TaskLocalFuture<T, F>
    where
        T: 'static,
    {
        local: &'static LocalKey<T>,
        slot: Option<T>,
        #[pin]
        future: Option<F>,
    }

    impl<T: 'static, F> PinnedDrop for TaskLocalFuture<T, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if mem::needs_drop::<F>() && this.future.is_some() {
                // Drop the future inside the scope if possible; otherwise it is dropped
                // normally with the `Option<F>` field.
                let mut future = this.future;
                let _ = this.local.scope_inner(this.slot, || future.set(None));
            }
        }
    }
}

impl<T: 'static, F> TaskLocalFuture<T, F> {
    /// Takes the value out of the scope (`None` if taken already). The inner future, if
    /// polled again, runs without it.
    pub fn take_value(self: Pin<&mut Self>) -> Option<T> {
        self.project().slot.take()
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut future = this.future;
        let polled = this
            .local
            .scope_inner(this.slot, || match future.as_mut().as_pin_mut() {
                Some(inner) => {
                    let poll = inner.poll(cx);
                    if poll.is_ready() {
                        future.set(None);
                    }
                    Some(poll)
                }
                None => None,
            });
        match polled {
            Ok(Some(poll)) => poll,
            Ok(None) => panic!("`TaskLocalFuture` polled after completion"),
            Err(error) => error.panic(),
        }
    }
}

impl<T: fmt::Debug + 'static, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TaskLocalFuture");
        match &self.slot {
            Some(value) => debug.field("value", value),
            None => debug.field("value", &format_args!("<missing>")),
        };
        debug.finish()
    }
}

/// The error of [`LocalKey::try_with`]: no scope of the key is running.
#[derive(Clone, Copy, Eq, PartialEq)]
pub struct AccessError {
    _private: (),
}

impl fmt::Debug for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessError").finish()
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt("task-local value not set", f)
    }
}

impl Error for AccessError {}

/// Why a scope could not be entered.
enum ScopeInnerErr {
    BorrowError,
    AccessError,
}

impl ScopeInnerErr {
    #[track_caller]
    fn panic(&self) -> ! {
        match self {
            Self::BorrowError => {
                panic!("cannot enter a task-local scope while the task-local storage is borrowed")
            }
            Self::AccessError => panic!(
                "cannot enter a task-local scope during or after destruction of the \
                 underlying thread-local"
            ),
        }
    }
}

impl From<std::cell::BorrowMutError> for ScopeInnerErr {
    fn from(_: std::cell::BorrowMutError) -> Self {
        Self::BorrowError
    }
}

impl From<thread::AccessError> for ScopeInnerErr {
    fn from(_: thread::AccessError) -> Self {
        Self::AccessError
    }
}

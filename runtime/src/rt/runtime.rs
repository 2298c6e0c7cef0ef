//! `Runtime`: owns the threads; shutting it down drops every task.

use super::builder::{BuildError, Builder};
use super::context::{self, EnterGuard};
use super::handle::Handle;
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// A G-P-M runtime: `worker_threads` Ps, the Ms that run them, and a blocking pool.
///
/// Dropping the runtime shuts it down: every task still alive is cancelled (its future is
/// dropped exactly once, its join handle reports cancellation), and the call waits for the
/// runtime's threads to exit. Blocking closures submitted before the shutdown, running or
/// still queued, run to the end first (as in tokio).
/// [`Runtime::shutdown_timeout`] bounds that wait.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
/// let out = rt.block_on(async {
///     let a = gpm::spawn(async { 20 });
///     let b = gpm::spawn(async { 22 });
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// ```
pub struct Runtime {
    handle: Handle,
    shut_down: bool,
}

impl Runtime {
    /// A builder with default settings.
    pub fn builder() -> Builder {
        Builder::new_multi_thread()
    }

    /// A runtime with default settings (one P per available core).
    pub fn new() -> Result<Runtime, BuildError> {
        Builder::new_multi_thread().build()
    }

    pub(crate) fn from_handle(handle: Handle) -> Runtime {
        Runtime {
            handle,
            shut_down: false,
        }
    }

    /// Runs `future` to completion on the current thread, with this runtime as the current
    /// one, so it can spawn and await tasks.
    ///
    /// # Panics
    /// On a worker thread or inside another `block_on` (see [`Handle::block_on`]).
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// A handle to this runtime (clone it to keep it).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns `future` on this runtime.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `func` on this runtime's blocking pool.
    pub fn spawn_blocking<F, R>(&self, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(func)
    }

    /// Makes this runtime the current one on this thread until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        self.handle.enter()
    }

    /// Shuts down, waiting at most `timeout` for the runtime's threads. Tasks are cancelled
    /// as on drop; threads still busy after the timeout (a blocking closure that never
    /// returns) are left to finish on their own.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(timeout));
    }

    /// Shuts down without waiting for the threads.
    pub fn shutdown_background(self) {
        self.shutdown_timeout(Duration::ZERO);
    }

    fn shutdown(&mut self, timeout: Option<Duration>) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        let shared = &self.handle.shared;
        // Futures dropped by the shutdown see their runtime as the current one (tokio's
        // `drop_tasks_in_context`): a drop that asks `Handle::try_current` finds it.
        let _context = context::try_set_handle(self.handle.clone());
        shared.blocking.close();
        shared.begin_shutdown();
        shared.cancel_all_tasks();
        shared.blocking.wait_for_threads(timeout);
        shared.drop_parked_processors();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if context::blocking_forbidden() {
            // Waiting here would block a worker (or a block_on) that other tasks need.
            // Cancel everything but do not wait for the threads.
            self.shutdown(Some(Duration::ZERO));
        } else {
            self.shutdown(None);
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("handle", &self.handle)
            .finish()
    }
}

//! `gpm::signal`: [`ctrl_c`], as tokio's `tokio::signal::ctrl_c` (Unix only).
//!
//! # Design
//!
//! The first call to [`ctrl_c`] in the process sets up, once and for good (as tokio, the
//! default "terminate on SIGINT" is not restored afterwards):
//!
//! * a pipe, whose write end is stored in `PIPE_WRITE` (non-blocking) and never closed;
//! * a thread, `gpm-signal`, that blocks reading the pipe's read end and, for every read,
//!   wakes every waiting [`ctrl_c`] future (their wakers live in `Registry::waiters`, a
//!   mutex-guarded slab, as the reactor's waiter lists do);
//! * a SIGINT handler (`sigaction`, `SA_RESTART`) that only does async-signal-safe work:
//!   it bumps the `RECEIVED` counter (a lock-free atomic), writes one byte to the pipe
//!   (`write(2)`; a full pipe drops the byte, harmless since the thread has bytes to read
//!   then), and restores `errno`.
//!
//! The wake-ups go through wakers, so they work for tasks of any runtime, and no reactor
//! registration is shared between runtimes (one pipe read by several epoll instances would
//! let one runtime's drain hide another's event).
//!
//! # Invariant
//!
//! A future resolves once `RECEIVED` differs from the value it read at its first poll, so
//! a SIGINT before that first poll is not seen (as in tokio: the future listens from its
//! first poll). No wake-up is lost: a pending future stores its waker under the registry's
//! mutex and then re-reads `RECEIVED`; the handler bumps `RECEIVED` before writing the byte,
//! the thread reads the byte and only then takes the mutex to wake, so either the re-read
//! sees the new count or the thread finds the waker. A dropped future removes its entry.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::net::sockopt::check;
use slab::Slab;

/// SIGINTs received since the handler was installed.
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
/// The pipe's write end for the handler; `-1` until set up.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The waiting futures, or why the setup failed.
static REGISTRY: OnceLock<Result<Registry, (io::ErrorKind, String)>> = OnceLock::new();

/// Waits for the next SIGINT (Ctrl-C) after this future is first polled, as tokio's
/// `ctrl_c`. Any number of futures, in any tasks and runtimes, may wait at once; each
/// SIGINT resolves all of them.
///
/// The first call installs a SIGINT handler for the rest of the process's life: from then
/// on, Ctrl-C no longer terminates the process by default (see the module docs).
///
/// # Errors
/// When the pipe, the thread or the handler could not be set up.
pub async fn ctrl_c() -> io::Result<()> {
    let registry = match REGISTRY.get_or_init(Registry::set_up) {
        Ok(registry) => registry,
        Err((kind, message)) => return Err(io::Error::new(*kind, message.clone())),
    };
    let start = RECEIVED.load(Ordering::SeqCst);
    Listener {
        registry,
        start,
        key: None,
    }
    .await;
    Ok(())
}

#[derive(Debug, Default)]
struct Registry {
    waiters: Mutex<Slab<Option<Waker>>>,
}

impl Registry {
    fn set_up() -> Result<Registry, (io::ErrorKind, String)> {
        let describe = |what: &str, error: io::Error| {
            (
                error.kind(),
                format!("gpm::signal: could not {what}: {error}"),
            )
        };
        let read = open_pipe().map_err(|e| describe("create the signal pipe", e))?;
        std::thread::Builder::new()
            .name("gpm-signal".into())
            .spawn(move || forward(File::from(read)))
            .map_err(|e| describe("start the signal thread", e))?;
        install_handler().map_err(|e| describe("install the SIGINT handler", e))?;
        Ok(Registry::default())
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Option<Waker>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_all(&self) {
        let wakers: Vec<Waker> = self
            .lock()
            .iter_mut()
            .filter_map(|(_, w)| w.take())
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The `gpm-signal` thread: every byte read from the pipe wakes the waiting futures.
fn forward(mut read: File) {
    let mut buf = [0u8; 64];
    loop {
        match read.read(&mut buf) {
            // The write end is never closed; stop only if the pipe is gone.
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        if let Some(Ok(registry)) = REGISTRY.get() {
            registry.wake_all();
        }
    }
}

/// Creates the pipe: stores the write end (non-blocking, close-on-exec) in `PIPE_WRITE`
/// for the handler, returns the read end (blocking, close-on-exec) for the thread.
fn open_pipe() -> io::Result<OwnedFd> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a writable array of two `c_int`s, as `pipe` requires.
    check(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: `pipe` succeeded: both fds are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for (fd, flags) in [(&read, 0), (&write, libc::O_NONBLOCK)] {
        set_flags(fd, flags)?;
    }
    PIPE_WRITE.store(write.into_raw_fd(), Ordering::SeqCst);
    Ok(read)
}

/// Sets close-on-exec and the file status `flags` (added to the current ones) on `fd`.
fn set_flags(fd: &OwnedFd, flags: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = fd.as_raw_fd();
    // SAFETY: `fcntl` on an open fd, with integer arguments only.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: as above.
    let current = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if current < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, current | flags) })
}

fn install_handler() -> io::Result<()> {
    // SAFETY: `sigaction` is plain data (integers, a signal set, a handler address): the
    // all-zero value is valid, and every field that matters is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a valid, writable signal set.
    check(unsafe { libc::sigemptyset(&mut action.sa_mask) })?;
    // SAFETY: `action` is initialised and names `on_sigint`, a handler that does only
    // async-signal-safe work (module docs); a null old-action pointer is allowed.
    check(unsafe { libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) })
}

/// The SIGINT handler: async-signal-safe only (an atomic add, an atomic load, `write(2)`),
/// and `errno` is left as it was.
extern "C" fn on_sigint(_signal: libc::c_int) {
    let saved = errno::get();
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `fd` is the pipe's write end, never closed once stored; `byte` is one
        // readable byte for the call. `write` is async-signal-safe; its result is ignored
        // (a full pipe already wakes the thread).
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    errno::set(saved);
}

/// `errno` access for the handler (it must not change the interrupted code's `errno`).
mod errno {
    #[cfg(target_os = "android")]
    use libc::__errno as location;
    #[cfg(any(target_os = "linux", target_os = "emscripten"))]
    use libc::__errno_location as location;
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    use libc::__error as location;

    pub(super) fn get() -> libc::c_int {
        // SAFETY: `location` returns this thread's `errno` slot, valid for the thread's
        // life and readable from a signal handler.
        unsafe { *location() }
    }

    pub(super) fn set(value: libc::c_int) {
        // SAFETY: as in `get`; the slot is writable.
        unsafe { *location() = value }
    }
}

/// One waiting [`ctrl_c`] future: an entry in the registry while pending, removed on drop.
struct Listener {
    registry: &'static Registry,
    start: usize,
    key: Option<usize>,
}

impl Listener {
    fn received(&self) -> bool {
        RECEIVED.load(Ordering::SeqCst) != self.start
    }
}

impl Future for Listener {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.received() {
            return Poll::Ready(());
        }
        {
            let mut waiters = self.registry.lock();
            match self.key {
                Some(key) => waiters[key] = Some(cx.waker().clone()),
                None => self.key = Some(waiters.insert(Some(cx.waker().clone()))),
            }
        }
        // The re-read after storing the waker (module docs, "Invariant").
        if self.received() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.registry.lock().remove(key);
        }
    }
}

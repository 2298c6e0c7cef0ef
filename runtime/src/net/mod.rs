//! Sockets on the runtime's reactor: [`TcpListener`], [`TcpStream`], [`UdpSocket`].
//!
//! Each socket is a non-blocking mio socket registered with the reactor of the runtime that
//! created it (edge-triggered, read and write interest), wrapped in a `PollEvented` that runs
//! the readiness protocol of `crate::driver::io`: wait for readiness, try the syscall, on
//! `WouldBlock` clear the readiness (unless a newer event arrived) and wait again. Readiness
//! wakes the waiting task through its waker, so it is scheduled like any other wake-up.
//!
//! [`TcpStream`] implements futures-io's `AsyncRead`/`AsyncWrite` (use `futures::io`'s
//! extension traits for `read`, `write_all`, ...), tokio's with the `tokio-io` feature, and
//! hyper's `rt::Read`/`rt::Write` with the `hyper` feature (`crate::compat::hyper`).
//!
//! Every I/O operation spends one unit of the task's cooperative budget, so a task echoing on
//! an always-ready socket still yields its P.
//!
//! Errors are returned, never panicked on: a reset peer gives `ConnectionReset` (or
//! `BrokenPipe` on write), a runtime that shut down gives an error saying so. Sockets must be
//! created inside a runtime context (a task, `block_on`, or after `Runtime::enter`); outside,
//! construction panics with a message saying so, as tokio's do.
//!
//! Address arguments take `std::net::ToSocketAddrs`; a host name is resolved by the OS
//! resolver on the calling thread (blocking). Pass socket addresses on hot paths.

mod tcp;
mod udp;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;

use crate::driver::io::{Direction, ScheduledIo};
use crate::driver::Driver;
use crate::task::coop;
use mio::event::Source;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// A mio source registered with a runtime's reactor; deregistered on drop.
pub(crate) struct PollEvented<E: Source> {
    io: E,
    driver: Arc<Driver>,
    scheduled: Arc<ScheduledIo>,
    key: usize,
}

#[track_caller]
fn current_driver() -> Arc<Driver> {
    crate::rt::context::with_handle(|handle| handle.map(|h| Arc::clone(&h.shared.driver)))
        .unwrap_or_else(|| {
            panic!(
                "there is no reactor running: gpm::net sockets must be created from the context \
                 of a gpm runtime (a task, Runtime::block_on, or after Runtime::enter)"
            )
        })
}

impl<E: Source> PollEvented<E> {
    #[track_caller]
    pub(crate) fn new(mut io: E) -> io::Result<PollEvented<E>> {
        let driver = current_driver();
        let (key, scheduled) = driver.io.register(&mut io)?;
        Ok(PollEvented {
            io,
            driver,
            scheduled,
            key,
        })
    }

    pub(crate) fn get_ref(&self) -> &E {
        &self.io
    }

    /// Runs `op` once the socket is ready in `direction`, retrying after `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&E) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let spent = ready!(coop::poll_proceed(cx));
        loop {
            let event = ready!(self.scheduled.poll_ready(cx, direction))?;
            match op(&self.io) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.scheduled.clear_readiness(event);
                }
                result => {
                    spent.made_progress();
                    return Poll::Ready(result);
                }
            }
        }
    }

    /// Waits for readiness in `direction` without doing I/O.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<()>> {
        self.scheduled.poll_ready(cx, direction).map_ok(|_| ())
    }
}

impl<E: Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        self.driver.io.deregister(self.key, &mut self.io);
    }
}

impl<E: Source + std::fmt::Debug> std::fmt::Debug for PollEvented<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.io.fmt(f)
    }
}

/// Resolves `addr` and tries `op` on each address until one succeeds.
pub(crate) async fn each_addr<A, T, F, Fut>(addr: A, mut op: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last_error = None;
    for addr in addr.to_socket_addrs()? {
        match op(addr).await {
            Ok(value) => return Ok(value),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

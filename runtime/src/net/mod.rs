//! Sockets on the runtime's reactor: [`TcpListener`], [`TcpStream`], [`UdpSocket`], and on
//! Unix [`UnixListener`], [`UnixStream`], [`UnixDatagram`] (the `unix` module).
//!
//! Each socket is a non-blocking mio socket registered with the reactor of the runtime that
//! created it (edge-triggered, read and write interest), wrapped in a `PollEvented` that runs
//! the readiness protocol of `crate::driver::io`: wait for readiness, try the syscall, on
//! `WouldBlock` clear the readiness (unless a newer event arrived) and wait again. Readiness
//! wakes the waiting task through its waker, so it is scheduled like any other wake-up.
//!
//! The async-fn operations (`accept`, `read`, `write`, `peek`, `recv_from`, `send_to`,
//! `peek_from`, `connect`, `ready`, `readable`, `writable`, ...) each register their own
//! waiter (`PollEvented::async_io`), so any number of tasks may wait on one shared socket and
//! all are woken by readiness. The poll-based ones (`AsyncRead`/`AsyncWrite` of the stream
//! and its halves, `poll_accept`, `poll_recv_from`, `poll_send_to`) keep one waker per
//! direction, the last poller's, as tokio's do (`crate::driver::scheduled_io`).
//!
//! The readiness operations follow tokio: `ready(Interest)` / `readable` / `writable` wait
//! (as their own waiters, one per direction of the interest) and return what is ready, which
//! may be stale; the `try_*` operations (`try_read`, `try_write`, `try_send_to`, ...) never
//! wait: not ready is `WouldBlock`, and a `WouldBlock` from the syscall clears the readiness
//! (step 3 of the protocol, so an event that arrived meanwhile is kept) and the next
//! `readable()` waits for a new event. The readiness types are [`crate::io::Interest`] and
//! [`crate::io::Ready`], where tokio has them.
//!
//! [`TcpStream::split`] and [`TcpStream::into_split`] (and [`UnixStream`]'s) give read and
//! write halves without a lock; a read half and a write half in two tasks each wait in their
//! own direction, so neither takes the other's wake-up (see the `split` module docs for the
//! invariant). The two stream types share their operations and halves, written once as
//! macros (`stream`, `split`).
//!
//! [`TcpStream`] and its halves implement futures-io's `AsyncRead`/`AsyncWrite` (use
//! `futures::io`'s extension traits for `read`, `write_all`, ...) and tokio's with the
//! `tokio-io` feature; the stream also implements hyper's `rt::Read`/`rt::Write` with the
//! `hyper` feature (`crate::compat::hyper`).
//!
//! Every I/O operation that may wait, the readiness waits included, spends one unit of the
//! task's cooperative budget, so a task echoing on an always-ready socket (with `read`, or
//! with `readable` and `try_read`) still yields its P. The `try_*` operations spend none, as
//! in tokio.
//!
//! Errors are returned, never panicked on: a reset peer gives `ConnectionReset` (or
//! `BrokenPipe` on write), a runtime that shut down gives an error saying so. Sockets must be
//! created inside a runtime context (a task, `block_on`, or after `Runtime::enter`); outside,
//! construction panics with a message saying so, as tokio's do.
//!
//! Address arguments take `std::net::ToSocketAddrs`; a host name is resolved by the OS
//! resolver on the calling thread (blocking). Pass socket addresses on hot paths.

#[macro_use]
mod stream;
#[macro_use]
mod split;
pub(crate) mod sockopt;
mod tcp;
mod udp;
#[cfg(unix)]
pub mod unix;

pub use tcp::{
    OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, TcpListener, TcpSocket, TcpStream,
    WriteHalf,
};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixDatagram, UnixListener, UnixStream};

use crate::driver::io::{Direction, ReadyEvent, ScheduledIo, Waiter};
use crate::driver::scheduled_io::{ERROR, READABLE, READ_CLOSED, WRITABLE, WRITE_CLOSED};
use crate::driver::Driver;
use crate::io::{Interest, Ready};
use crate::task::coop;
use mio::event::Source;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
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

    /// Runs `op` once the socket is ready in `direction`, retrying after `WouldBlock`; waits
    /// in the direction's shared slot (the poll-based paths: only the last poller is woken).
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        op: impl FnMut(&E) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_with(cx, |cx| self.scheduled.poll_ready(cx, direction), op)
    }

    /// [`PollEvented::poll_io`] for a stream's read or write of `len` bytes. A transfer
    /// shorter than asked (and not zero) shows the socket's buffer was drained (read) or
    /// filled (write) at that moment, so the readiness is cleared right away, as tokio does
    /// on epoll: the next operation waits for the next edge instead of first trying the
    /// syscall once more to get `WouldBlock`. Under a keep-alive HTTP load that extra
    /// `recvfrom` was one syscall in three (strace: 2 per request, half `EAGAIN`, against
    /// tokio's 1). Clearing is still conditional on no newer event having arrived
    /// ([`ScheduledIo::clear_readiness`]), so data that lands after the short read is seen.
    /// Streams only: a short datagram says nothing about the queue.
    pub(crate) fn poll_stream_io(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        len: usize,
        mut op: impl FnMut(&E) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let mut last_event = None;
        let result = self.poll_io_with(
            cx,
            |cx| {
                let event = self.scheduled.poll_ready(cx, direction);
                if let Poll::Ready(Ok(event)) = &event {
                    last_event = Some(*event);
                }
                event
            },
            &mut op,
        );
        if let (Poll::Ready(Ok(n)), Some(event)) = (&result, last_event) {
            if 0 < *n && *n < len {
                self.scheduled.clear_readiness(event);
            }
        }
        result
    }

    /// Like [`PollEvented::poll_io`] to completion, for the async-fn operations: waits as its
    /// own waiter, so concurrent operations on one socket are all woken.
    pub(crate) async fn async_io<R>(
        &self,
        direction: Direction,
        mut op: impl FnMut(&E) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut waiter = Waiter::new(&self.scheduled, direction);
        poll_fn(|cx| self.poll_io_with(cx, |cx| waiter.poll_ready(cx), &mut op)).await
    }

    /// The operation loop: `wait` is step 1 of the readiness protocol.
    fn poll_io_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut wait: impl FnMut(&mut Context<'_>) -> Poll<io::Result<ReadyEvent>>,
        mut op: impl FnMut(&E) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let spent = ready!(coop::poll_proceed(cx));
        loop {
            let event = ready!(wait(cx))?;
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

    /// Runs `op` at once if the socket is ready in `direction`, without waiting: the
    /// `try_*` operations. Not ready is `WouldBlock`; a `WouldBlock` from `op` clears the
    /// readiness (step 3 of the protocol) so that the next wait really waits.
    pub(crate) fn try_io<R>(
        &self,
        direction: Direction,
        op: impl FnOnce(&E) -> io::Result<R>,
    ) -> io::Result<R> {
        let Some(event) = self.scheduled.ready_event(direction) else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let event = event?;
        let result = op(&self.io);
        if matches!(&result, Err(error) if error.kind() == io::ErrorKind::WouldBlock) {
            self.scheduled.clear_readiness(event);
        }
        result
    }

    /// Waits, as its own waiter in each direction of `interest`, for readiness in any of
    /// them, without doing I/O; returns what is ready.
    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        let waiter =
            |wanted: bool, direction| wanted.then(|| Waiter::new(&self.scheduled, direction));
        let mut read = waiter(interest.is_readable(), Direction::Read);
        let mut write = waiter(interest.is_writable(), Direction::Write);
        poll_fn(|cx| {
            let spent = ready!(coop::poll_proceed(cx));
            let result = ready!(poll_waiters(cx, [&mut read, &mut write]));
            spent.made_progress();
            Poll::Ready(result)
        })
        .await
    }

    /// The socket's fd for `into_std`, out of the reactor: the fd is duplicated, and the
    /// original deregistered and closed when `self` drops here. The duplicate shares the
    /// open file, so it stays non-blocking (as tokio's `into_std` leaves it).
    pub(crate) fn into_std_fd(self) -> io::Result<OwnedFd>
    where
        E: AsFd,
    {
        self.io.as_fd().try_clone_to_owned()
    }
}

/// Polls each waiter (all of them, so each that is pending holds the waker); ready with the
/// union of what the ready ones saw.
fn poll_waiters(
    cx: &mut Context<'_>,
    waiters: [&mut Option<Waiter<'_>>; 2],
) -> Poll<io::Result<Ready>> {
    let mut ready = Ready::EMPTY;
    for waiter in waiters.into_iter().flatten() {
        if let Poll::Ready(event) = waiter.poll_ready(cx) {
            ready |= to_ready(event?, waiter.direction());
        }
    }
    if ready.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(Ok(ready))
    }
}

/// The public view of a readiness event of `direction`. An error counts as readiness in
/// that direction, so the caller's next `try_*` returns it (`crate::io` module docs).
fn to_ready(event: ReadyEvent, direction: Direction) -> Ready {
    let bits = event.bits();
    let error = bits & ERROR != 0;
    Ready::from_flags([
        (bits & READABLE != 0, Ready::READABLE),
        (bits & WRITABLE != 0, Ready::WRITABLE),
        (bits & READ_CLOSED != 0, Ready::READ_CLOSED),
        (bits & WRITE_CLOSED != 0, Ready::WRITE_CLOSED),
    ]) | match (error, direction) {
        (false, _) => Ready::EMPTY,
        (true, Direction::Read) => Ready::READABLE,
        (true, Direction::Write) => Ready::WRITABLE,
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

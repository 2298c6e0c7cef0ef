//! A [`TcpStream`]'s halves, as in tokio: [`TcpStream::split`] borrows the stream into a
//! [`ReadHalf`] and a [`WriteHalf`]; [`TcpStream::into_split`] moves it into an
//! [`OwnedReadHalf`] and an [`OwnedWriteHalf`] that share it through an `Arc` and can go to
//! two different tasks, and [`OwnedReadHalf::reunite`] puts them back together.
//!
//! # Why no lock
//!
//! A TCP socket can be read and written at the same time, and every operation of the stream
//! takes `&TcpStream`, so the halves are just two views of one stream: no `BiLock` or mutex
//! as futures' generic `split` needs. A read half only reads (and peeks) and a write half
//! only writes (and shuts down the write side).
//!
//! # Wake-ups of two tasks
//!
//! The halves' `AsyncRead`/`AsyncWrite` are poll-based paths, which keep one waker per
//! direction of the socket, the last poller's (`crate::driver::scheduled_io`). The read half
//! waits only in the read direction and the write half only in the write direction, so a
//! task reading through one half and a task writing through the other each own one slot and
//! never take each other's wake-up. The invariant that makes this hold: no other poll-based
//! path reaches the stream while it is split (the borrowed halves hold `&mut TcpStream`; the
//! owned halves keep their `Arc` private, and neither half is `Clone`). The async-fn
//! operations of the halves (`peek`, `readable`, `ready`, ...) wait as their own waiters, so
//! they may run in any task besides.
//!
//! # Shutdown on drop
//!
//! Dropping an [`OwnedWriteHalf`] shuts down the write side of the socket (the peer reads
//! end of stream) even though the read half keeps the socket open, as tokio's does;
//! [`OwnedWriteHalf::forget`] drops it without that, and `poll_close` / `poll_shutdown`
//! does it early. A borrowed [`WriteHalf`] does nothing on drop.

use super::TcpStream;
use crate::io::{Interest, Ready};
use futures_io::{AsyncRead, AsyncWrite};
use std::error::Error;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The read half of a borrowed [`TcpStream`], from [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The write half of a borrowed [`TcpStream`], from [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// The read half of a [`TcpStream`], from [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<TcpStream>,
}

/// The write half of a [`TcpStream`], from [`TcpStream::into_split`]. Shuts down the write
/// side of the socket when dropped (module docs).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<TcpStream>,
    shutdown_on_drop: bool,
}

/// [`OwnedReadHalf::reunite`] was given halves of two different streams; here they are back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl Error for ReuniteError {}

impl TcpStream {
    /// Splits the stream into a read half and a write half borrowing it, to read and write
    /// at once (in one task, with `join` or `select`). No lock: see the module docs.
    ///
    /// With futures' `AsyncReadExt` in scope, `stream.split()` on an owned stream resolves
    /// to that trait's `split(self)` (by value, behind a lock), as method lookup tries the
    /// by-value receiver first; write `TcpStream::split(&mut stream)` to be sure. tokio's
    /// `AsyncReadExt` has no `split`, so tokio code is unaffected.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Splits the stream into owned halves, for two tasks (one reading, one writing, each
    /// woken for its own direction). [`OwnedReadHalf::reunite`] gives the stream back.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let inner = Arc::new(self);
        let write = OwnedWriteHalf {
            inner: Arc::clone(&inner),
            shutdown_on_drop: true,
        };
        (OwnedReadHalf { inner }, write)
    }
}

fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if !Arc::ptr_eq(&read.inner, &write.inner) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    drop(write);
    Ok(Arc::try_unwrap(read.inner)
        .expect("gpm: a TcpStream's two owned halves hold the only references to it"))
}

impl OwnedReadHalf {
    fn stream(&self) -> &TcpStream {
        &self.inner
    }

    /// The stream again, from this half and `other`; a [`ReuniteError`] holding both if
    /// `other` is another stream's half.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, other)
    }
}

impl OwnedWriteHalf {
    fn stream(&self) -> &TcpStream {
        &self.inner
    }

    /// The stream again, from this half and `other` (see [`OwnedReadHalf::reunite`]).
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        reunite(other, self)
    }

    /// Drops this half without shutting down the write side.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown_on_drop = false;
        self.inner.shutdown_socket(Shutdown::Write)
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // Nothing to report to: the peer sees end of stream, or the socket is gone.
            let _ = self.inner.shutdown_socket(Shutdown::Write);
        }
    }
}

impl ReadHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }
}

impl WriteHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown_socket(Shutdown::Write)
    }
}

/// What both kinds of half have: readiness and addresses.
macro_rules! common_methods {
    () => {
        /// Waits for any readiness in `interest`, like [`TcpStream::ready`].
        pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
            self.stream().ready(interest).await
        }

        /// The remote address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            self.stream().peer_addr()
        }

        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.stream().local_addr()
        }
    };
}

/// The read halves' operations, delegated to the stream's.
macro_rules! read_methods {
    ($half:ty) => {
        impl $half {
            common_methods!();

            /// Waits until readable, like [`TcpStream::readable`].
            pub async fn readable(&self) -> io::Result<()> {
                self.stream().readable().await
            }

            /// Reads without waiting, like [`TcpStream::try_read`].
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream().try_read(buf)
            }

            /// Reads into several buffers without waiting, like
            /// [`TcpStream::try_read_vectored`].
            pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.stream().try_read_vectored(bufs)
            }

            /// Reads without consuming, like [`TcpStream::peek`].
            pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream().peek(buf).await
            }
        }

        impl AsyncRead for $half {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_read_priv(cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $half {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                super::tokio_io::poll_read(self.stream(), cx, buf)
            }
        }
    };
}

/// The write halves' operations, delegated to the stream's.
macro_rules! write_methods {
    ($half:ty) => {
        impl $half {
            common_methods!();

            /// Waits until writable, like [`TcpStream::writable`].
            pub async fn writable(&self) -> io::Result<()> {
                self.stream().writable().await
            }

            /// Writes without waiting, like [`TcpStream::try_write`].
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                self.stream().try_write(buf)
            }

            /// Writes from several buffers without waiting, like
            /// [`TcpStream::try_write_vectored`].
            pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.stream().try_write_vectored(bufs)
            }
        }

        impl AsyncWrite for $half {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.get_mut().shutdown_write())
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $half {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_vectored_priv(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.get_mut().shutdown_write())
            }
        }
    };
}

read_methods!(ReadHalf<'_>);
read_methods!(OwnedReadHalf);
write_methods!(WriteHalf<'_>);
write_methods!(OwnedWriteHalf);

impl AsRef<TcpStream> for ReadHalf<'_> {
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for WriteHalf<'_> {
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for OwnedReadHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsRef<TcpStream> for OwnedWriteHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

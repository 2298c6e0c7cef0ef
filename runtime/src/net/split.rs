//! A stream's halves, as in tokio, written once for [`super::TcpStream`] (in `tcp::split`)
//! and [`super::UnixStream`] (in `unix::split`) by [`stream_halves`]: `split` borrows the
//! stream into a `ReadHalf` and a `WriteHalf`; `into_split` moves it into an
//! `OwnedReadHalf` and an `OwnedWriteHalf` that share it through an `Arc` and can go to
//! two different tasks, and `OwnedReadHalf::reunite` puts them back together.
//!
//! # Why no lock
//!
//! A stream socket can be read and written at the same time, and every operation of the stream
//! takes `&self`, so the halves are just two views of one stream: no `BiLock` or mutex
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
//! path reaches the stream while it is split (the borrowed halves come from `&mut` the stream; the
//! owned halves keep their `Arc` private, and neither half is `Clone`). The async-fn
//! operations of the halves (`peek`, `readable`, `ready`, ...) wait as their own waiters, so
//! they may run in any task besides.
//!
//! # Shutdown on drop
//!
//! Dropping an `OwnedWriteHalf` shuts down the write side of the socket (the peer reads
//! end of stream) even though the read half keeps the socket open, as tokio's does;
//! `OwnedWriteHalf::forget` drops it without that, and `poll_close` / `poll_shutdown`
//! does it early. A borrowed `WriteHalf` does nothing on drop.

/// Defines `ReadHalf`, `WriteHalf`, `OwnedReadHalf`, `OwnedWriteHalf` and `ReuniteError`
/// for the stream type `$stream` (in scope where invoked), whose addresses are `$addr`,
/// and `$stream::split` / `into_split` (module docs).
macro_rules! stream_halves {
    ($stream:ident, $addr:ty) => {
        #[doc = concat!("The read half of a borrowed [`", stringify!($stream), "`], from [`",
                    stringify!($stream), "::split`].")]
        #[derive(Debug)]
        pub struct ReadHalf<'a>(&'a $stream);

        #[doc = concat!("The write half of a borrowed [`", stringify!($stream), "`], from [`",
                    stringify!($stream), "::split`].")]
        #[derive(Debug)]
        pub struct WriteHalf<'a>(&'a $stream);

        #[doc = concat!("The read half of a [`", stringify!($stream), "`], from [`",
                    stringify!($stream), "::into_split`].")]
        #[derive(Debug)]
        pub struct OwnedReadHalf {
            inner: ::std::sync::Arc<$stream>,
        }

        #[doc = concat!("The write half of a [`", stringify!($stream), "`], from [`",
                    stringify!($stream), "::into_split`]. Shuts down the write side of the socket \
            when dropped (as tokio's does).")]
        #[derive(Debug)]
        pub struct OwnedWriteHalf {
            inner: ::std::sync::Arc<$stream>,
            shutdown_on_drop: bool,
        }

        /// [`OwnedReadHalf::reunite`] was given halves of two different streams; here they
        /// are back.
        #[derive(Debug)]
        pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

        impl ::std::fmt::Display for ReuniteError {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str("tried to reunite halves that are not from the same socket")
            }
        }

        impl ::std::error::Error for ReuniteError {}

        impl $stream {
            /// Splits the stream into a read half and a write half borrowing it, to read
            /// and write at once (in one task, with `join` or `select`), without a lock.
            ///
            /// With futures' `AsyncReadExt` in scope, `stream.split()` on an owned stream
            /// resolves to that trait's `split(self)` (by value, behind a lock), as method
            /// lookup tries the by-value receiver first; write `Stream::split(&mut stream)`
            /// to be sure. tokio's `AsyncReadExt` has no `split`, so tokio code is
            /// unaffected.
            pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
                (ReadHalf(self), WriteHalf(self))
            }

            /// Splits the stream into owned halves, for two tasks (one reading, one
            /// writing, each woken for its own direction). [`OwnedReadHalf::reunite`] gives
            /// the stream back.
            pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
                let inner = ::std::sync::Arc::new(self);
                let write = OwnedWriteHalf {
                    inner: ::std::sync::Arc::clone(&inner),
                    shutdown_on_drop: true,
                };
                (OwnedReadHalf { inner }, write)
            }
        }

        fn reunite(
            read: OwnedReadHalf,
            mut write: OwnedWriteHalf,
        ) -> Result<$stream, ReuniteError> {
            if !::std::sync::Arc::ptr_eq(&read.inner, &write.inner) {
                return Err(ReuniteError(read, write));
            }
            write.shutdown_on_drop = false;
            drop(write);
            Ok(::std::sync::Arc::try_unwrap(read.inner)
                .expect("gpm: a stream's two owned halves hold the only references to it"))
        }

        impl OwnedReadHalf {
            fn stream(&self) -> &$stream {
                &self.inner
            }

            /// The stream again, from this half and `other`; a [`ReuniteError`] holding
            /// both if `other` is another stream's half.
            pub fn reunite(self, other: OwnedWriteHalf) -> Result<$stream, ReuniteError> {
                reunite(self, other)
            }
        }

        impl OwnedWriteHalf {
            fn stream(&self) -> &$stream {
                &self.inner
            }

            /// The stream again, from this half and `other` (see
            /// [`OwnedReadHalf::reunite`]).
            pub fn reunite(self, other: OwnedReadHalf) -> Result<$stream, ReuniteError> {
                reunite(other, self)
            }

            /// Drops this half without shutting down the write side.
            pub fn forget(mut self) {
                self.shutdown_on_drop = false;
            }

            fn shutdown_write(&mut self) -> ::std::io::Result<()> {
                self.shutdown_on_drop = false;
                self.inner.shutdown_socket(::std::net::Shutdown::Write)
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                if self.shutdown_on_drop {
                    // Nothing to report to: the peer sees end of stream, or the socket is
                    // gone.
                    let _ = self.inner.shutdown_socket(::std::net::Shutdown::Write);
                }
            }
        }

        impl ReadHalf<'_> {
            fn stream(&self) -> &$stream {
                self.0
            }
        }

        impl WriteHalf<'_> {
            fn stream(&self) -> &$stream {
                self.0
            }

            fn shutdown_write(&mut self) -> ::std::io::Result<()> {
                self.0.shutdown_socket(::std::net::Shutdown::Write)
            }
        }

        half_common_methods!(
            $addr,
            ReadHalf<'_>,
            OwnedReadHalf,
            WriteHalf<'_>,
            OwnedWriteHalf
        );
        half_read_methods!(ReadHalf<'_>, OwnedReadHalf);
        half_write_methods!(WriteHalf<'_>, OwnedWriteHalf);

        half_as_ref!(
            $stream,
            ReadHalf<'_>,
            WriteHalf<'_>,
            OwnedReadHalf,
            OwnedWriteHalf
        );
    };
}

/// `AsRef<$stream>` for each half (each has `stream()`).
macro_rules! half_as_ref {
    ($stream:ident, $($half:ty),*) => {
        $(
            impl AsRef<$stream> for $half {
                fn as_ref(&self) -> &$stream {
                    self.stream()
                }
            }
        )*
    };
}

/// What both kinds of half have, for each `$half`: readiness and addresses.
macro_rules! half_common_methods {
    ($addr:ty, $($half:ty),*) => {
        $(
            impl $half {
                /// Waits for any readiness in `interest`, like the stream's `ready`.
                pub async fn ready(
                    &self,
                    interest: $crate::io::Interest,
                ) -> ::std::io::Result<$crate::io::Ready> {
                    self.stream().ready(interest).await
                }

                /// The remote address.
                pub fn peer_addr(&self) -> ::std::io::Result<$addr> {
                    self.stream().peer_addr()
                }

                /// The local address.
                pub fn local_addr(&self) -> ::std::io::Result<$addr> {
                    self.stream().local_addr()
                }
            }
        )*
    };
}

/// The read halves' operations, delegated to the stream's.
macro_rules! half_read_methods {
    ($($half:ty),*) => {
        $(
            impl $half {
                /// Waits until readable, like the stream's `readable`.
                pub async fn readable(&self) -> ::std::io::Result<()> {
                    self.stream().readable().await
                }

                /// Reads without waiting, like the stream's `try_read`.
                pub fn try_read(&self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                    self.stream().try_read(buf)
                }

                /// Reads into several buffers without waiting, like the stream's
                /// `try_read_vectored`.
                pub fn try_read_vectored(
                    &self,
                    bufs: &mut [::std::io::IoSliceMut<'_>],
                ) -> ::std::io::Result<usize> {
                    self.stream().try_read_vectored(bufs)
                }
            }

            async_read_traits!($half, via stream);
        )*
    };
}

/// The write halves' operations, delegated to the stream's.
macro_rules! half_write_methods {
    ($($half:ty),*) => {
        $(
            impl $half {
                /// Waits until writable, like the stream's `writable`.
                pub async fn writable(&self) -> ::std::io::Result<()> {
                    self.stream().writable().await
                }

                /// Writes without waiting, like the stream's `try_write`.
                pub fn try_write(&self, buf: &[u8]) -> ::std::io::Result<usize> {
                    self.stream().try_write(buf)
                }

                /// Writes from several buffers without waiting, like the stream's
                /// `try_write_vectored`.
                pub fn try_write_vectored(
                    &self,
                    bufs: &[::std::io::IoSlice<'_>],
                ) -> ::std::io::Result<usize> {
                    self.stream().try_write_vectored(bufs)
                }
            }

            async_write_traits!($half, via stream, |half| half.shutdown_write());
        )*
    };
}

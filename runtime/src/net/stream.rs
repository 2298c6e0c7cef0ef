//! The byte-stream operations that [`super::TcpStream`] and [`super::UnixStream`] share,
//! written once as a macro over the stream type ([`readiness_methods`] also serves the
//! datagram sockets) (each type has a `io: PollEvented<E>` field
//! whose `&E` is `Read + Write` and whose `E` has `shutdown(Shutdown)`): readiness
//! (`ready`, `readable`, `writable`), the `try_*` operations, the async-fn `read` / `write`
//! / `write_all`, the crate-private poll paths the halves and the hyper adapter use, and the
//! futures-io (and, with `tokio-io`, tokio) `AsyncRead` / `AsyncWrite` impls.
//!
//! The waiting rules are those of `super` (module docs): the async fns wait as their own
//! waiters, the trait impls in the direction's shared slot.

/// `ready`, `readable` and `writable` (items of an `impl` of a type whose `io` field is a
/// `PollEvented`): the readiness waits of every socket type.
macro_rules! readiness_methods {
    () => {
        /// Waits for any readiness in `interest`; returns what is ready. May be spurious:
        /// the next `try_*` can still say `WouldBlock` (then wait again), as in tokio.
        pub async fn ready(
            &self,
            interest: $crate::io::Interest,
        ) -> ::std::io::Result<$crate::io::Ready> {
            self.io.ready(interest).await
        }

        /// Waits until the socket is readable (data, end of stream, or an error), for the
        /// `try_*` reads.
        pub async fn readable(&self) -> ::std::io::Result<()> {
            self.ready($crate::io::Interest::READABLE).await.map(drop)
        }

        /// Waits until the socket is writable (buffer space, a closed write side, or an
        /// error), for the `try_*` writes.
        pub async fn writable(&self) -> ::std::io::Result<()> {
            self.ready($crate::io::Interest::WRITABLE).await.map(drop)
        }
    };
}

/// Implements the shared stream operations for `$stream` (module docs).
macro_rules! stream_io {
    ($stream:ident) => {
        impl $stream {
            readiness_methods!();

            /// Reads what is there now into `buf`, without waiting: `WouldBlock` if nothing
            /// is; `Ok(0)` at end of stream (or for an empty `buf`).
            pub fn try_read(&self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.io
                    .try_io(Direction::Read, |mut s| ::std::io::Read::read(&mut s, buf))
            }

            /// [`Self::try_read`] into several buffers, in order.
            pub fn try_read_vectored(
                &self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                self.io.try_io(Direction::Read, |mut s| {
                    ::std::io::Read::read_vectored(&mut s, bufs)
                })
            }

            /// Writes what fits now, without waiting: `WouldBlock` if nothing does.
            pub fn try_write(&self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.io.try_io(Direction::Write, |mut s| {
                    ::std::io::Write::write(&mut s, buf)
                })
            }

            /// [`Self::try_write`] from several buffers, in order.
            pub fn try_write_vectored(
                &self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.io.try_io(Direction::Write, |mut s| {
                    ::std::io::Write::write_vectored(&mut s, bufs)
                })
            }

            /// Reads into `buf`, like tokio's `AsyncReadExt::read`; `Ok(0)` at end of stream.
            pub async fn read(&self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.io
                    .async_io(Direction::Read, |mut s| ::std::io::Read::read(&mut s, buf))
                    .await
            }

            /// Writes some of `buf`, like tokio's `AsyncWriteExt::write`.
            pub async fn write(&self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.io
                    .async_io(Direction::Write, |mut s| {
                        ::std::io::Write::write(&mut s, buf)
                    })
                    .await
            }

            /// Writes all of `buf`.
            pub async fn write_all(&self, mut buf: &[u8]) -> ::std::io::Result<()> {
                while !buf.is_empty() {
                    match self.write(buf).await? {
                        0 => return Err(::std::io::ErrorKind::WriteZero.into()),
                        n => buf = &buf[n..],
                    }
                }
                Ok(())
            }

            /// Shuts down the read half, write half or both (the socket stays open until
            /// dropped). A socket that is not connected (any more) is not an error.
            pub fn shutdown_socket(&self, how: ::std::net::Shutdown) -> ::std::io::Result<()> {
                match self.io.get_ref().shutdown(how) {
                    Err(error) if error.kind() == ::std::io::ErrorKind::NotConnected => Ok(()),
                    result => result,
                }
            }

            pub(crate) fn poll_read_priv(
                &self,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                let len = buf.len();
                self.io.poll_stream_io(cx, Direction::Read, len, |mut s| {
                    ::std::io::Read::read(&mut s, buf)
                })
            }

            /// [`Self::poll_read_priv`] into memory that may be uninitialised (hyper's and
            /// tokio's read buffers), without zeroing it first: the bytes are received with
            /// `recv(2)` on the socket's descriptor, which only writes into the buffer.
            /// Zeroing a fresh 8 KiB buffer before each read was a memset per request.
            // Used by the hyper adapter (TcpStream) and `tokio-io` (both streams): some
            // feature sets leave it unused for one of the types.
            #[allow(dead_code)]
            pub(crate) fn poll_read_uninit(
                &self,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [::std::mem::MaybeUninit<u8>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                use ::std::os::fd::AsRawFd;
                let len = buf.len();
                self.io.poll_stream_io(cx, Direction::Read, len, |s| {
                    // SAFETY: `buf` is valid for writes of `len` bytes for the whole call
                    // (a live `&mut` slice); `recv` writes at most `len` bytes into it and
                    // never reads it, so handing it uninitialised memory is sound, and on
                    // success the first `n` bytes (its return value) are initialised.
                    let n = unsafe { ::libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), len, 0) };
                    // A negative return is the error in errno (WouldBlock included).
                    usize::try_from(n).map_err(|_| ::std::io::Error::last_os_error())
                })
            }

            pub(crate) fn poll_write_priv(
                &self,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                self.io
                    .poll_stream_io(cx, Direction::Write, buf.len(), |mut s| {
                        ::std::io::Write::write(&mut s, buf)
                    })
            }

            pub(crate) fn poll_write_vectored_priv(
                &self,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.io.poll_stream_io(cx, Direction::Write, len, |mut s| {
                    ::std::io::Write::write_vectored(&mut s, bufs)
                })
            }

            /// tokio's `poll_read` (also used by the halves).
            #[cfg(feature = "tokio-io")]
            pub(crate) fn poll_read_tokio(
                &self,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                // SAFETY: `poll_read_uninit` writes only initialised bytes into the unfilled
                // part and reports how many; nothing here de-initialises it.
                let unfilled = unsafe { buf.unfilled_mut() };
                let n = ::std::task::ready!(self.poll_read_uninit(cx, unfilled))?;
                // SAFETY: the first `n` bytes of the unfilled part were just received (`recv`
                // initialised them, `n <= len`).
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                ::std::task::Poll::Ready(Ok(()))
            }
        }

        async_io_traits!($stream, |stream| stream
            .shutdown_socket(::std::net::Shutdown::Write));
    };
}

/// futures-io's (and with `tokio-io` tokio's) `AsyncRead` / `AsyncWrite` for a stream:
/// [`async_read_traits`] and [`async_write_traits`] together.
macro_rules! async_io_traits {
    ($ty:ty, |$w:ident| $shutdown:expr) => {
        async_read_traits!($ty);
        async_write_traits!($ty, |$w| $shutdown);
    };
}

/// futures-io's (and with `tokio-io` tokio's) `AsyncRead` for `$ty`, a stream or a read
/// half: `via $via` names the method of a half that returns its stream.
macro_rules! async_read_traits {
    ($ty:ty $(, via $via:ident)?) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                self$(.$via())?.poll_read_priv(cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self$(.$via())?.poll_read_tokio(cx, buf)
            }
        }
    };
}

/// futures-io's (and with `tokio-io` tokio's) `AsyncWrite` for `$ty`, a stream or a write
/// half: `via $via` names the method of a half that returns its stream, `$shutdown` (given
/// `$w: &mut $ty`) shuts down the write side for `poll_close` / `poll_shutdown`. Writes go
/// straight to the kernel, so flushing has nothing to do.
macro_rules! async_write_traits {
    ($ty:ty $(, via $via:ident)?, |$w:ident| $shutdown:expr) => {
        impl futures_io::AsyncWrite for $ty {
            async_write_methods!(poll_close $(, via $via)?, |$w| $shutdown);
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $ty {
            async_write_methods!(poll_shutdown $(, via $via)?, |$w| $shutdown);

            fn is_write_vectored(&self) -> bool {
                true
            }
        }
    };
}

/// The methods futures-io's and tokio's `AsyncWrite` have in common (see
/// [`async_write_traits`]); `$close` is the one that shuts down the write side:
/// futures-io's `poll_close`, tokio's `poll_shutdown`.
macro_rules! async_write_methods {
    ($close:ident $(, via $via:ident)?, |$w:ident| $shutdown:expr) => {
        fn poll_write(
            self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
            buf: &[u8],
        ) -> ::std::task::Poll<::std::io::Result<usize>> {
            self$(.$via())?.poll_write_priv(cx, buf)
        }

        fn poll_write_vectored(
            self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
            bufs: &[::std::io::IoSlice<'_>],
        ) -> ::std::task::Poll<::std::io::Result<usize>> {
            self$(.$via())?.poll_write_vectored_priv(cx, bufs)
        }

        fn poll_flush(
            self: ::std::pin::Pin<&mut Self>,
            _cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            ::std::task::Poll::Ready(Ok(()))
        }

        fn $close(
            self: ::std::pin::Pin<&mut Self>,
            _cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            let $w = self.get_mut();
            ::std::task::Poll::Ready($shutdown)
        }
    };
}

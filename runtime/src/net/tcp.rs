//! TCP: a listener and a stream on the runtime's reactor, and the stream's halves (`split`).

mod split;

pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};

use super::{each_addr, PollEvented};
use crate::driver::io::Direction;
use crate::io::{Interest, Ready};
use futures_io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A TCP listening socket, like `tokio::net::TcpListener`.
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
/// rt.block_on(async {
///     let listener = gpm::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = gpm::spawn(async move {
///         let (mut stream, _) = listener.accept().await.unwrap();
///         let mut buf = [0; 5];
///         stream.read_exact(&mut buf).await.unwrap();
///         stream.write_all(&buf).await.unwrap();
///     });
///     let mut client = gpm::net::TcpStream::connect(addr).await.unwrap();
///     client.write_all(b"hello").await.unwrap();
///     let mut echo = [0; 5];
///     client.read_exact(&mut echo).await.unwrap();
///     assert_eq!(&echo, b"hello");
///     server.await.unwrap();
/// });
/// ```
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first address that works) and listens.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| async move {
            let listener = mio::net::TcpListener::bind(addr)?;
            Ok(TcpListener {
                io: PollEvented::new(listener)?,
            })
        })
        .await
    }

    /// Wraps a std listener (set non-blocking here).
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: PollEvented::new(mio::net::TcpListener::from_std(listener))?,
        })
    }

    /// Waits for a connection.
    ///
    /// Any number of tasks may wait in `accept` on one (shared) listener: each connection
    /// goes to one of them.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self
            .io
            .async_io(Direction::Read, |listener| listener.accept())
            .await?;
        Ok((TcpStream::from_mio(stream)?, addr))
    }

    /// Polls for a connection. Only the last task to poll is woken: for several tasks
    /// accepting on one listener, use [`TcpListener::accept`].
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.io
            .poll_io(cx, Direction::Read, |listener| listener.accept())
            .map(|result| {
                let (stream, addr) = result?;
                Ok((TcpStream::from_mio(stream)?, addr))
            })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpListener").field(&self.io).finish()
    }
}

/// A TCP connection, like `tokio::net::TcpStream`. Reads and writes through futures-io's
/// `AsyncRead`/`AsyncWrite` (and tokio's and hyper's behind features).
pub struct TcpStream {
    io: PollEvented<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` (each resolved address in turn until one accepts).
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, Self::connect_addr).await
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        // mio's recipe: wait until writable, then a pending error or a peer address tells
        // whether the connection is established; "not connected" means wait again.
        stream
            .io
            .async_io(Direction::Write, |socket| {
                if let Some(error) = socket.take_error()? {
                    return Err(error);
                }
                match socket.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(error) => Err(error),
                }
            })
            .await?;
        Ok(stream)
    }

    #[track_caller]
    fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::new(stream)?,
        })
    }

    /// Wraps a connected std stream (set non-blocking here).
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Sets `SO_LINGER`: with `Some(d)`, closing blocks up to `d` (whole seconds) to send
    /// unsent data, and `Some(ZERO)` closes with a reset; `None` closes in the background.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        sockopt::set_linger(self.io.get_ref().as_fd(), linger)
    }

    /// `SO_LINGER` (see [`TcpStream::set_linger`]).
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sockopt::linger(self.io.get_ref().as_fd())
    }

    /// The std stream, out of the reactor (still non-blocking, as tokio leaves it; set it
    /// blocking with `set_nonblocking(false)` for blocking use).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.io.into_std_fd().map(std::net::TcpStream::from)
    }

    /// Waits for any readiness in `interest`; returns what is ready. May be spurious: the
    /// next `try_*` can still say `WouldBlock` (then wait again), as in tokio.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        self.io.ready(interest).await
    }

    /// Waits until the stream is readable (data, end of stream, or an error), for
    /// [`TcpStream::try_read`].
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await.map(drop)
    }

    /// Waits until the stream is writable (buffer space, a closed write side, or an
    /// error), for [`TcpStream::try_write`].
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::WRITABLE).await.map(drop)
    }

    /// Reads what is there now into `buf`, without waiting: `WouldBlock` if nothing is;
    /// `Ok(0)` at end of stream (or for an empty `buf`).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .try_io(Direction::Read, |mut socket| socket.read(buf))
    }

    /// [`TcpStream::try_read`] into several buffers, in order.
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io
            .try_io(Direction::Read, |mut socket| socket.read_vectored(bufs))
    }

    /// Writes what fits now, without waiting: `WouldBlock` if nothing does.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io(Direction::Write, |mut socket| socket.write(buf))
    }

    /// [`TcpStream::try_write`] from several buffers, in order.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io
            .try_io(Direction::Write, |mut socket| socket.write_vectored(bufs))
    }

    /// Reads into `buf` without taking the data out of the stream (the next read or peek
    /// sees it again); waits for data like [`TcpStream::read`].
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .async_io(Direction::Read, |socket| socket.peek(buf))
            .await
    }

    /// Reads into `buf`, like tokio's `AsyncReadExt::read`; `Ok(0)` at end of stream.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .async_io(Direction::Read, |mut socket| socket.read(buf))
            .await
    }

    /// Writes some of `buf`, like tokio's `AsyncWriteExt::write`.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .async_io(Direction::Write, |mut socket| socket.write(buf))
            .await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Shuts down the read half, write half or both (the socket stays open until dropped).
    pub fn shutdown_socket(&self, how: Shutdown) -> io::Result<()> {
        match self.io.get_ref().shutdown(how) {
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            result => result,
        }
    }

    pub(crate) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Read, |mut socket| socket.read(buf))
    }

    pub(crate) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Write, |mut socket| socket.write(buf))
    }

    pub(crate) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |mut socket| {
            socket.write_vectored(bufs)
        })
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the kernel: nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_socket(Shutdown::Write))
    }
}

#[cfg(feature = "tokio-io")]
mod tokio_io {
    use super::TcpStream;
    use std::io::{self, IoSlice};
    use std::net::Shutdown;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    impl AsyncRead for TcpStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            poll_read(&self, cx, buf)
        }
    }

    /// tokio's `poll_read` on `stream` (also used by the halves).
    pub(super) fn poll_read(
        stream: &TcpStream,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // `initialize_unfilled` zeroes only bytes never initialised before, once.
        let n = ready!(stream.poll_read_priv(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    impl AsyncWrite for TcpStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_priv(cx, buf)
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored_priv(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.shutdown_socket(Shutdown::Write))
        }
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(&self.io).finish()
    }
}

/// `SO_LINGER` through libc (std's `set_linger` is unstable, mio has none).
mod sockopt {
    use std::io;
    use std::mem;
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::time::Duration;

    pub(super) fn set_linger(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
        let seconds = linger.map_or(0, |d| d.as_secs().min(libc::c_int::MAX as u64));
        let value = libc::linger {
            l_onoff: libc::c_int::from(linger.is_some()),
            l_linger: seconds as libc::c_int,
        };
        // SAFETY: `fd` is an open socket (borrowed for the call); `value` is an initialised
        // `linger`, the type SO_LINGER takes, and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&value as *const libc::linger).cast(),
                mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        check(rc)
    }

    pub(super) fn linger(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
        let mut value = libc::linger {
            l_onoff: 0,
            l_linger: 0,
        };
        let mut len = mem::size_of::<libc::linger>() as libc::socklen_t;
        // SAFETY: `fd` is an open socket; `value` is a writable `linger` (the type SO_LINGER
        // returns) and `len` holds its size, so the kernel writes within it.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&mut value as *mut libc::linger).cast(),
                &mut len,
            )
        };
        check(rc)?;
        Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

//! Unix domain sockets on the runtime's reactor: [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`], like tokio's. They run the same readiness protocol as the TCP and UDP
//! sockets (`super` module docs); the byte-stream operations of [`UnixStream`] are those of
//! `TcpStream`, written once (`super::stream`), and its halves are the TCP halves' code.
//!
//! Differences from tokio: addresses are std's `std::os::unix::net::SocketAddr` (tokio wraps
//! it in its own `tokio::net::unix::SocketAddr`, with the same `as_pathname`); the
//! `poll_*` datagram operations take `&mut [u8]` as `gpm::net::UdpSocket`'s do, not a
//! `ReadBuf`; the `*_buf` variants (`bytes::BufMut`) are not there. A fresh socket is
//! not assumed writable before the reactor's first event for it (tokio 1.54 assumes a
//! new `pair()` writable): `writable()` waits for that event, which arrives at once.
//!
//! As in tokio, a path that starts with a NUL byte names a Linux abstract socket.

mod datagram;
mod split;

pub use datagram::UnixDatagram;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};

use super::PollEvented;
use crate::driver::io::Direction;
use std::fmt;
use std::io;
pub use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

/// The address for `path`: a pathname, or on Linux an abstract name if `path` starts with
/// a NUL byte (as tokio's `bind` and `connect` read it).
pub(super) fn socket_addr(path: &Path) -> io::Result<SocketAddr> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        if let Some(name) = path.as_os_str().as_bytes().strip_prefix(b"\0") {
            return SocketAddr::from_abstract_name(name);
        }
    }
    SocketAddr::from_pathname(path)
}

/// A Unix domain socket listening for connections, like `tokio::net::UnixListener`.
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// let path = std::env::temp_dir().join(format!("gpm-doc-{}.sock", std::process::id()));
/// rt.block_on(async {
///     let listener = gpm::net::UnixListener::bind(&path).unwrap();
///     let server = gpm::spawn(async move {
///         let (mut stream, _) = listener.accept().await.unwrap();
///         stream.write_all(b"hello").await.unwrap();
///     });
///     let mut client = gpm::net::UnixStream::connect(&path).await.unwrap();
///     let mut buf = String::new();
///     client.read_to_string(&mut buf).await.unwrap();
///     assert_eq!(buf, "hello");
///     server.await.unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: PollEvented<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` and listens. The socket file stays after the listener drops (remove
    /// it yourself), as in tokio.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&socket_addr(path.as_ref())?)
    }

    /// Binds to `addr` and listens.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let listener = mio::net::UnixListener::bind_addr(addr)?;
        Ok(UnixListener {
            io: PollEvented::new(listener)?,
        })
    }

    /// Wraps a std listener (set non-blocking here).
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: PollEvented::new(mio::net::UnixListener::from_std(listener))?,
        })
    }

    /// The std listener, out of the reactor (still non-blocking, as tokio leaves it).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.io.into_std_fd().map(Into::into)
    }

    /// Waits for a connection. Any number of tasks may wait on one shared listener.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self
            .io
            .async_io(Direction::Read, |listener| listener.accept())
            .await?;
        Ok((UnixStream::from_mio(stream)?, addr))
    }

    /// Polls for a connection. Only the last task to poll is woken: for several tasks
    /// accepting on one listener, use [`UnixListener::accept`].
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        self.io
            .poll_io(cx, Direction::Read, |listener| listener.accept())
            .map(|result| {
                let (stream, addr) = result?;
                Ok((UnixStream::from_mio(stream)?, addr))
            })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixListener").field(&self.io).finish()
    }
}

/// A Unix domain stream socket, like `tokio::net::UnixStream`: the same operations as
/// [`super::TcpStream`] (readiness, `try_*`, `read` / `write`, futures-io's and, with
/// `tokio-io`, tokio's `AsyncRead` / `AsyncWrite`, `split` / `into_split`) but `peek`.
pub struct UnixStream {
    io: PollEvented<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        UnixStream::connect_addr(&socket_addr(path.as_ref())?).await
    }

    /// Connects to the socket named by `addr`: waits until writable, then the socket's
    /// pending error (a refused or reset connection) is the answer, as in tokio.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    pub async fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let stream = UnixStream::from_mio(mio::net::UnixStream::connect_addr(addr)?)?;
        stream
            .io
            .async_io(Direction::Write, |socket| {
                socket.take_error()?.map_or(Ok(()), Err)
            })
            .await?;
        Ok(stream)
    }

    /// A connected pair of unnamed sockets.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    #[track_caller]
    fn from_mio(stream: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: PollEvented::new(stream)?,
        })
    }

    /// Wraps a connected std stream (set non-blocking here).
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// The std stream, out of the reactor (still non-blocking, as tokio leaves it).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        self.io.into_std_fd().map(Into::into)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

stream_io!(UnixStream);

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixStream").field(&self.io).finish()
    }
}

//! TCP: a listener and a stream on the runtime's reactor, and the stream's halves (`split`).

mod socket;
mod split;

pub use socket::TcpSocket;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};

use super::{each_addr, PollEvented};
use crate::driver::io::Direction;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
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

    /// The std listener, out of the reactor (still non-blocking, as tokio leaves it).
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.io.into_std_fd().map(std::net::TcpListener::from)
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
        TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?
            .connected()
            .await
    }

    /// Waits until this stream's non-blocking connect has finished; the stream, or the
    /// error that ended the attempt.
    async fn connected(self) -> io::Result<TcpStream> {
        let stream = self;
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
        super::sockopt::set_linger(self.io.get_ref().as_fd(), linger)
    }

    /// `SO_LINGER` (see [`TcpStream::set_linger`]).
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        super::sockopt::linger(self.io.get_ref().as_fd())
    }

    /// The std stream, out of the reactor (still non-blocking, as tokio leaves it; set it
    /// blocking with `set_nonblocking(false)` for blocking use).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.io.into_std_fd().map(std::net::TcpStream::from)
    }

    /// Reads into `buf` without taking the data out of the stream (the next read or peek
    /// sees it again); waits for data like [`TcpStream::read`].
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .async_io(Direction::Read, |socket| socket.peek(buf))
            .await
    }
}

stream_io!(TcpStream);

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(&self.io).finish()
    }
}

//! [`TcpSocket`]: a TCP socket not yet connected or listening, to set options first, as
//! tokio's (which wraps socket2; gpm calls libc directly, no new crate).
//!
//! The socket is an `OwnedFd`, created non-blocking and close-on-exec. It is registered
//! with the reactor only when it becomes a [`TcpStream`] ([`TcpSocket::connect`], which
//! waits for the non-blocking connect as `TcpStream::connect` does) or a [`TcpListener`]
//! ([`TcpSocket::listen`]); until then it needs no runtime. The addresses go to the kernel
//! as `sockaddr_in` / `sockaddr_in6` built here ([`RawAddr`]); `local_addr` and
//! `take_error` borrow std's implementations on the same fd.

use super::{TcpListener, TcpStream};
use crate::net::sockopt;
use std::fmt;
use std::io;
use std::mem::{self, ManuallyDrop};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A TCP socket before `connect` or `listen`, like `tokio::net::TcpSocket`.
///
/// ```
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// rt.block_on(async {
///     let socket = gpm::net::TcpSocket::new_v4().unwrap();
///     socket.set_reuseaddr(true).unwrap();
///     socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     let listener = socket.listen(128).unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = gpm::net::TcpSocket::new_v4().unwrap().connect(addr).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
/// });
/// ```
pub struct TcpSocket {
    fd: OwnedFd,
}

impl TcpSocket {
    /// A new IPv4 TCP socket.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(libc::AF_INET)
    }

    /// A new IPv6 TCP socket.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(libc::AF_INET6)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn new(domain: libc::c_int) -> io::Result<TcpSocket> {
        let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `socket` takes no pointers; a non-negative return is a new fd we own.
        let fd = unsafe { libc::socket(domain, kind, 0) };
        TcpSocket::own(fd)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn new(domain: libc::c_int) -> io::Result<TcpSocket> {
        // SAFETY: `socket` takes no pointers; a non-negative return is a new fd we own.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
        let socket = TcpSocket::own(fd)?;
        // SAFETY: `fcntl` on an open fd we own, with integer arguments only.
        sockopt::check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        socket.with_std(|std| std.set_nonblocking(true))?;
        Ok(socket)
    }

    /// Takes ownership of `fd`, a return value of `socket` (`-1`: the OS error).
    fn own(fd: RawFd) -> io::Result<TcpSocket> {
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by `socket`, is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(TcpSocket { fd })
    }

    /// Wraps a std stream's socket, to set options on it (as tokio's `from_std_stream`).
    pub fn from_std_stream(stream: std::net::TcpStream) -> TcpSocket {
        TcpSocket {
            fd: OwnedFd::from(stream),
        }
    }

    /// Runs `f` on a std listener viewing this socket's fd, for std's `local_addr` and
    /// `take_error` (which only call `getsockname` / `getsockopt`).
    fn with_std<R>(&self, f: impl FnOnce(&std::net::TcpListener) -> R) -> R {
        // SAFETY: the fd stays open for the whole call (borrowed from `self`), and
        // `ManuallyDrop` keeps the view from closing it; the view never outlives `f`.
        let view =
            ManuallyDrop::new(unsafe { std::net::TcpListener::from_raw_fd(self.fd.as_raw_fd()) });
        f(&view)
    }

    /// Binds to `addr`.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        let raw = RawAddr::new(addr);
        // SAFETY: the fd is open; `raw.as_ptr()` points to a sockaddr of the length it
        // gives, alive for the call.
        sockopt::check(unsafe { libc::bind(self.fd.as_raw_fd(), raw.as_ptr(), raw.len()) })
    }

    /// Connects to `addr` and waits until connected: the stream, registered with the
    /// current runtime's reactor.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        let raw = RawAddr::new(addr);
        // SAFETY: as in `bind`.
        let rc = unsafe { libc::connect(self.fd.as_raw_fd(), raw.as_ptr(), raw.len()) };
        if let Err(error) = sockopt::check(rc) {
            if error.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(error);
            }
        }
        let stream = TcpStream::from_std(std::net::TcpStream::from(self.fd))?;
        stream.connected().await
    }

    /// Listens with a queue of `backlog` pending connections: the listener, registered
    /// with the current runtime's reactor.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let backlog = backlog.min(libc::c_int::MAX as u32) as libc::c_int;
        // SAFETY: `listen` on an open fd, integer arguments only.
        sockopt::check(unsafe { libc::listen(self.fd.as_raw_fd(), backlog) })?;
        TcpListener::from_std(std::net::TcpListener::from(self.fd))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with_std(|std| std.local_addr())
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.with_std(|std| std.take_error())
    }

    /// Sets `SO_REUSEADDR` (bind to an address in `TIME_WAIT`).
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        sockopt::set_flag(self.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, on)
    }

    /// `SO_REUSEADDR`.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        sockopt::flag(self.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR)
    }

    /// Sets `SO_REUSEPORT` (several sockets bound to one address share its connections).
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        sockopt::set_flag(self.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, on)
    }

    /// `SO_REUSEPORT`.
    pub fn reuseport(&self) -> io::Result<bool> {
        sockopt::flag(self.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT)
    }

    /// Sets `SO_KEEPALIVE`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        sockopt::set_flag(self.as_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE, on)
    }

    /// `SO_KEEPALIVE`.
    pub fn keepalive(&self) -> io::Result<bool> {
        sockopt::flag(self.as_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sockopt::set_flag(self.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, on)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        sockopt::flag(self.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY)
    }

    /// Sets `SO_SNDBUF`. Linux doubles the size (for its bookkeeping) and reports that.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.set_size(libc::SO_SNDBUF, size)
    }

    /// `SO_SNDBUF`.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.size(libc::SO_SNDBUF)
    }

    /// Sets `SO_RCVBUF`. Linux doubles the size (for its bookkeeping) and reports that.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.set_size(libc::SO_RCVBUF, size)
    }

    /// `SO_RCVBUF`.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.size(libc::SO_RCVBUF)
    }

    fn set_size(&self, name: libc::c_int, size: u32) -> io::Result<()> {
        let size = size.min(libc::c_int::MAX as u32) as libc::c_int;
        sockopt::set(self.as_fd(), libc::SOL_SOCKET, name, size)
    }

    fn size(&self, name: libc::c_int) -> io::Result<u32> {
        sockopt::get::<libc::c_int>(self.as_fd(), libc::SOL_SOCKET, name).map(|n| n.max(0) as u32)
    }

    /// Sets `SO_LINGER`, as [`TcpStream::set_linger`].
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        sockopt::set_linger(self.as_fd(), linger)
    }

    /// Sets `SO_LINGER` to zero: closing resets the connection.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.set_linger(Some(Duration::ZERO))
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sockopt::linger(self.as_fd())
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpSocket").field(&self.fd).finish()
    }
}

/// A socket address as the kernel takes it.
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn new(addr: SocketAddr) -> RawAddr {
        match addr {
            SocketAddr::V4(addr) => {
                // SAFETY: `sockaddr_in` is plain integers: all-zero is a valid value (and
                // zeroes the padding and, where it exists, `sin_len`).
                let mut raw: libc::sockaddr_in = unsafe { mem::zeroed() };
                raw.sin_family = libc::AF_INET as libc::sa_family_t;
                raw.sin_port = addr.port().to_be();
                raw.sin_addr.s_addr = u32::from_ne_bytes(addr.ip().octets());
                RawAddr::V4(raw)
            }
            SocketAddr::V6(addr) => {
                // SAFETY: as above, for `sockaddr_in6`.
                let mut raw: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                raw.sin6_port = addr.port().to_be();
                raw.sin6_flowinfo = addr.flowinfo();
                raw.sin6_addr.s6_addr = addr.ip().octets();
                raw.sin6_scope_id = addr.scope_id();
                RawAddr::V6(raw)
            }
        }
    }

    /// The address as a `sockaddr` pointer, valid while `self` is.
    fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawAddr::V4(raw) => (raw as *const libc::sockaddr_in).cast(),
            RawAddr::V6(raw) => (raw as *const libc::sockaddr_in6).cast(),
        }
    }

    fn len(&self) -> libc::socklen_t {
        let len = match self {
            RawAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
            RawAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
        };
        len as libc::socklen_t
    }
}

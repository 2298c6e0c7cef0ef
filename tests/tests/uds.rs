//! `gpm::net::{UnixListener, UnixStream, UnixDatagram}`: tokio's `uds_stream.rs` and
//! `uds_datagram.rs` ported, same assertions, with these changes: socket files live in a
//! [`TempDir`] under `std::env::temp_dir()` (removed on drop) instead of `tempfile`'s;
//! tokio_test's `task::spawn(..).poll()` is `gpm_tests::poll_once_unconstrained`; `poll_read_ready` /
//! `poll_write_ready` / `poll_send_ready` / `poll_recv_ready` (not in gpm) are `readable()`
//! / `writable()` polled once; the `*_buf` tests are left out (no `bytes` API). Two tokio
//! 1.54 behaviours gpm does not have are left out and documented in `gpm::net::unix`: an
//! accepted socket assumed readable before its first event, and a fresh `pair()` assumed
//! writable before its first event (`pair_starts_writable` waits for `writable()` instead).
//! Plus the owned halves (`into_split`, `reunite`) and `from_std` / `into_std`.
#![cfg(unix)]

use futures::future::try_join;
use gpm::io::Interest;
use gpm::net::{UnixDatagram, UnixListener, UnixStream};
use gpm_tests::poll_once_unconstrained;
use std::future::Future;
use std::io;
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh directory under the system's temp dir, removed (with its sockets) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "gpm-uds-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// tokio's `accept_read_write` check on a connected pair: "hello" written to the client,
/// which is then dropped, is all the server reads before end of stream.
async fn write_hello_then_read_to_end(
    mut server: UnixStream,
    client: UnixStream,
) -> io::Result<()> {
    // Write to the client.
    client.write_all(b"hello").await?;
    drop(client);

    // Read from the server.
    let mut buf = vec![];
    server.read_to_end(&mut buf).await?;
    assert_eq!(&buf, b"hello");
    let len = server.read(&mut buf).await?;
    assert_eq!(len, 0);
    Ok(())
}

#[gpm::test]
async fn accept_read_write() -> std::io::Result<()> {
    let (client, server, _dir) = create_pair().await;
    write_hello_then_read_to_end(server, client).await
}

#[gpm::test]
async fn accept_read_write_socketaddr() -> std::io::Result<()> {
    let dir = TempDir::new();
    let sock_path = dir.path().join("connect.sock");
    let addr = SocketAddr::from_pathname(&sock_path)?;

    let listener = UnixListener::bind_addr(&addr)?;

    let accept = listener.accept();
    let connect = UnixStream::connect_addr(&addr);
    let ((server, _), client) = try_join(accept, connect).await?;
    write_hello_then_read_to_end(server, client).await
}

#[gpm::test]
async fn shutdown() -> std::io::Result<()> {
    let (mut client, server, _dir) = create_pair().await;

    // Shut down the client
    AsyncWriteExt::shutdown(&mut client).await?;
    // Read from the server should return 0 to indicate the channel has been closed.
    let mut buf = [0u8; 1];
    let n = server.read(&mut buf).await?;
    assert_eq!(n, 0);
    Ok(())
}

/// Writes `msg` with `write` until `WouldBlock`, checking before each write that the
/// stream is still writable; a readiness event that lands between the check and the
/// `WouldBlock` keeps the readiness (the protocol's step 3), so then fill on.
fn fill(
    client: &UnixStream,
    written: &mut Vec<u8>,
    msg: &[u8],
    write: impl Fn() -> io::Result<usize>,
) {
    loop {
        loop {
            // Still ready
            assert!(poll_once_unconstrained(client.writable()).is_ready());
            match write() {
                Ok(n) => written.extend(&msg[..n]),
                Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("error = {e:?}"),
            }
        }
        if poll_once_unconstrained(client.writable()).is_pending() {
            return;
        }
    }
}

/// Reads `len` bytes with `readable()` + `try_read` (`vectored`: `try_read_vectored`).
async fn drain(server: &UnixStream, len: usize, vectored: bool) -> Vec<u8> {
    let mut read = vec![0; len];
    let mut i = 0;
    while i < read.len() {
        server.readable().await.unwrap();
        let result = if vectored {
            let mut bufs: Vec<_> = read[i..]
                .chunks_mut(0x10000)
                .map(io::IoSliceMut::new)
                .collect();
            server.try_read_vectored(&mut bufs)
        } else {
            server.try_read(&mut read[i..])
        };
        match result {
            Ok(n) => i += n,
            Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("error = {e:?}"),
        }
    }
    read
}

#[gpm::test]
async fn try_read_write() -> std::io::Result<()> {
    let msg = b"hello world";

    let dir = TempDir::new();
    let bind_path = dir.path().join("bind.sock");

    // Create listener
    let listener = UnixListener::bind(&bind_path)?;

    // Create socket pair
    let client = UnixStream::connect(&bind_path).await?;

    let (server, _) = listener.accept().await?;
    let mut written = msg.to_vec();

    assert_eq!(
        server.try_read(&mut [0; 1]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );

    // Track the server receiving data
    let woken = Arc::new(Flag::default());
    let waker = std::task::Waker::from(Arc::clone(&woken));
    let mut readable = Box::pin(server.readable());
    assert!(readable
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());

    // Write data.
    client.writable().await?;
    assert_eq!(msg.len(), client.try_write(msg)?);

    // The task should be notified
    while !woken.is_set() {
        gpm::task::yield_now().await;
    }
    drop(readable);

    // Fill the write buffer using non-vectored I/O
    fill(&client, &mut written, msg, || client.try_write(msg));
    // Write buffer full
    assert!(poll_once_unconstrained(client.writable()).is_pending());
    // Drain the socket from the server end using non-vectored I/O
    assert_eq!(drain(&server, written.len(), false).await, written);

    written.clear();
    client.writable().await.unwrap();

    // Fill the write buffer using vectored I/O
    let msg_bufs: Vec<_> = msg.chunks(3).map(io::IoSlice::new).collect();
    fill(&client, &mut written, msg, || {
        client.try_write_vectored(&msg_bufs)
    });
    assert!(poll_once_unconstrained(client.writable()).is_pending());
    assert_eq!(drain(&server, written.len(), true).await, written);

    // Now, we listen for shutdown
    drop(client);

    loop {
        let ready = server.ready(Interest::READABLE).await?;

        if ready.is_read_closed() {
            break;
        } else {
            gpm::task::yield_now().await;
        }
    }

    Ok(())
}

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl Flag {
    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn create_pair() -> (UnixStream, UnixStream, TempDir) {
    let dir = TempDir::new();
    let bind_path = dir.path().join("bind.sock");

    let listener = UnixListener::bind(&bind_path).unwrap();

    let accept = listener.accept();
    let connect = UnixStream::connect(&bind_path);
    let ((server, _), client) = try_join(accept, connect).await.unwrap();

    (client, server, dir)
}

fn read_until_pending(stream: &mut UnixStream) {
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        match stream.try_read(&mut buf) {
            Ok(_) => (),
            Err(err) => {
                assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
}

fn write_until_pending(stream: &mut UnixStream) {
    let buf = vec![0u8; 1024 * 1024];
    loop {
        match stream.try_write(&buf) {
            Ok(_) => (),
            Err(err) => {
                assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
}

#[gpm::test]
async fn poll_read_ready() {
    let (client, mut server, _dir) = create_pair().await;

    read_until_pending(&mut server);
    assert!(poll_once_unconstrained(server.readable()).is_pending());

    // There is data in the buffer - readable.
    client.write_all(b"ping").await.unwrap();
    server.readable().await.unwrap();

    // Readable until calls to `try_read` return `WouldBlock`.
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    read_until_pending(&mut server);
    assert!(poll_once_unconstrained(server.readable()).is_pending());

    // Detect the client disconnect.
    drop(client);
    server.readable().await.unwrap();
}

#[gpm::test]
async fn poll_write_ready() {
    let (mut client, server, _dir) = create_pair().await;

    // Initial state - writable.
    client.writable().await.unwrap();

    // No space to write - not writable. (An event landing after the `WouldBlock` may
    // keep it ready: fill again until a wait really waits.)
    write_until_pending(&mut client);
    while poll_once_unconstrained(client.writable()).is_ready() {
        write_until_pending(&mut client);
    }

    // Detect the server disconnect.
    drop(server);
    client.writable().await.unwrap();
}

// https://github.com/tokio-rs/tokio/issues/3879
#[gpm::test]
async fn epollhup() -> io::Result<()> {
    let dir = TempDir::new();
    let sock_path = dir.path().join("connect.sock");

    let listener = UnixListener::bind(&sock_path)?;
    let connect = UnixStream::connect(&sock_path);
    let mut connect = std::pin::pin!(connect);

    // Poll `connect` once. (The reactor runs on other threads: if it already delivered
    // the connected socket's first event, the connection is made and there is nothing to
    // test.)
    let first = std::future::poll_fn(|cx| Poll::Ready(connect.as_mut().poll(cx))).await;
    if first.is_ready() {
        return Ok(());
    }

    drop(listener);

    let err = connect.await.unwrap_err();
    let errno = err.kind();
    assert!(
        matches!(
            errno,
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
        ),
        "unexpected error kind: {errno:?} (expected ConnectionRefused or ConnectionReset)"
    );
    Ok(())
}

// test for https://github.com/tokio-rs/tokio/issues/6767
#[gpm::test]
#[cfg(any(target_os = "linux", target_os = "android"))]
async fn abstract_socket_name() {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;

    let socket_path = format!("\0gpm-uds-{}", std::process::id());
    let listener = UnixListener::bind(&socket_path).unwrap();

    let accept = listener.accept();
    let connect = UnixStream::connect(&socket_path);

    let ((stream, _), _) = try_join(accept, connect).await.unwrap();

    let local_addr = stream.into_std().unwrap().local_addr().unwrap();
    let abstract_path_name = local_addr.as_abstract_name().unwrap();

    // `as_abstract_name` removes leading zero bytes
    assert_eq!(abstract_path_name, &socket_path.as_bytes()[1..]);
}

// Both ends of a fresh pair become writable, but not readable until the peer writes.
#[gpm::test]
async fn pair_starts_writable() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;

    a.writable().await?;
    assert_eq!(a.try_write(b"hi")?, 2);
    b.write_all(b"yo").await?;

    let (c, _d) = UnixStream::pair()?;
    assert!(poll_once_unconstrained(c.readable()).is_pending());
    assert_eq!(
        c.try_read(&mut [0u8; 1]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );

    // The peer's bytes still arrive through the normal event path.
    a.readable().await?;
    assert_eq!(a.try_read(&mut [0u8; 8])?, 2);
    Ok(())
}

/// tokio's `uds_split`-style round trip through the owned halves in two tasks, then
/// `reunite`; halves of two different streams do not reunite.
#[gpm::test]
async fn into_split_and_reunite() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (mut read, mut write) = a.into_split();
    let (mut b_read, mut b_write) = b.into_split();
    let echo = gpm::spawn(async move {
        let mut buf = [0u8; 5];
        b_read.read_exact(&mut buf).await?;
        b_write.write_all(&buf).await?;
        io::Result::Ok((b_read, b_write))
    });
    write.write_all(b"split").await?;
    let mut buf = [0u8; 5];
    read.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"split");
    let (b_read, b_write) = echo.await.unwrap()?;
    let error = read.reunite(b_write).unwrap_err();
    let stream = error.0.reunite(write).unwrap();
    assert!(stream.peer_addr()?.is_unnamed());
    b_read.reunite(error.1).unwrap();
    Ok(())
}

/// `from_std` / `into_std` on all three types: the sockets work on either side.
#[gpm::test]
async fn from_std_into_std() -> io::Result<()> {
    let dir = TempDir::new();
    let path = dir.path().join("std.sock");
    let listener = UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path)?)?;
    let client = std::os::unix::net::UnixStream::connect(&path)?;
    let (server, _) = listener.accept().await?;
    let client = UnixStream::from_std(client)?;
    client.write_all(b"std").await?;
    let mut server = server.into_std()?;
    server.set_nonblocking(false)?;
    let mut buf = [0u8; 3];
    std::io::Read::read_exact(&mut server, &mut buf)?;
    assert_eq!(&buf, b"std");
    assert!(listener.into_std()?.local_addr()?.as_pathname() == Some(path.as_path()));
    let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
    let a = UnixDatagram::from_std(a)?;
    a.send(b"dgram").await?;
    let n = b.recv(&mut buf)?;
    assert_eq!(&buf[..n], b"dgr");
    a.into_std()?.set_nonblocking(false)?;
    Ok(())
}

async fn echo_server(socket: UnixDatagram) -> io::Result<()> {
    let mut recv_buf = vec![0u8; 1024];
    loop {
        let (len, peer_addr) = socket.recv_from(&mut recv_buf[..]).await?;
        if let Some(path) = peer_addr.as_pathname() {
            socket.send_to(&recv_buf[..len], path).await?;
        }
    }
}

/// Binds `server.sock` in `dir` and serves [`echo_server`] on it in a task; the server's
/// path and a free `client.sock` path beside it.
fn spawn_echo_server(dir: &TempDir) -> io::Result<(PathBuf, PathBuf)> {
    let server_path = dir.path().join("server.sock");
    let client_path = dir.path().join("client.sock");

    let server_socket = UnixDatagram::bind(server_path.clone())?;

    gpm::spawn(async move {
        let _ = echo_server(server_socket).await;
    });
    Ok((server_path, client_path))
}

#[gpm::test]
async fn echo() -> io::Result<()> {
    let dir = TempDir::new();
    let (server_path, client_path) = spawn_echo_server(&dir)?;

    {
        let socket = UnixDatagram::bind(&client_path).unwrap();
        socket.connect(server_path)?;
        socket.send(b"ECHO").await?;
        let mut recv_buf = [0u8; 16];
        let len = socket.recv(&mut recv_buf[..]).await?;
        assert_eq!(&recv_buf[..len], b"ECHO");
    }

    Ok(())
}

#[gpm::test]
async fn echo_from() -> io::Result<()> {
    let dir = TempDir::new();
    let (server_path, client_path) = spawn_echo_server(&dir)?;

    {
        let socket = UnixDatagram::bind(&client_path).unwrap();
        socket.connect(&server_path)?;
        socket.send(b"ECHO").await?;
        let mut recv_buf = [0u8; 16];
        let (len, addr) = socket.recv_from(&mut recv_buf[..]).await?;
        assert_eq!(&recv_buf[..len], b"ECHO");
        assert_eq!(addr.as_pathname(), Some(server_path.as_path()));
    }

    Ok(())
}

// Even though we use sync non-blocking io we still need a reactor.
#[gpm::test]
async fn try_send_recv_never_block() -> io::Result<()> {
    let mut recv_buf = [0u8; 16];
    let payload = b"PAYLOAD";
    let mut count = 0;

    let (dgram1, dgram2) = UnixDatagram::pair()?;

    // Send until we hit the OS `net.unix.max_dgram_qlen`.
    loop {
        dgram1.writable().await.unwrap();

        match dgram1.try_send(payload) {
            Err(err) => match (err.kind(), err.raw_os_error()) {
                (io::ErrorKind::WouldBlock, _) => break,
                (_, Some(libc::ENOBUFS)) => break,
                _ => {
                    panic!("unexpected error {err:?}");
                }
            },
            Ok(len) => {
                assert_eq!(len, payload.len());
            }
        }
        count += 1;
    }

    // Read every dgram we sent.
    while count > 0 {
        dgram2.readable().await.unwrap();
        let len = dgram2.try_recv(&mut recv_buf[..])?;
        assert_eq!(len, payload.len());
        assert_eq!(payload, &recv_buf[..len]);
        count -= 1;
    }

    let err = dgram2.try_recv(&mut recv_buf[..]).unwrap_err();
    match err.kind() {
        io::ErrorKind::WouldBlock => (),
        _ => unreachable!("unexpected error {:?}", err),
    }

    Ok(())
}

#[gpm::test]
async fn split() -> std::io::Result<()> {
    let dir = TempDir::new();
    let path = dir.path().join("split.sock");
    let s = Arc::new(UnixDatagram::bind(path.clone())?);
    let r = s.clone();

    let msg = b"hello";
    let ((), ()) = try_join(
        async {
            s.send_to(msg, path).await?;
            io::Result::Ok(())
        },
        async {
            let mut recv_buf = [0u8; 32];
            let (len, _) = r.recv_from(&mut recv_buf[..]).await?;
            assert_eq!(&recv_buf[..len], msg);
            Ok(())
        },
    )
    .await?;

    Ok(())
}

/// Two datagram sockets bound in `dir`: `sender.sock` and `receiver.sock`.
fn bind_sender_and_receiver(
    dir: &TempDir,
) -> io::Result<(PathBuf, UnixDatagram, PathBuf, UnixDatagram)> {
    let sender_path = dir.path().join("sender.sock");
    let receiver_path = dir.path().join("receiver.sock");

    let sender = UnixDatagram::bind(&sender_path)?;
    let receiver = UnixDatagram::bind(&receiver_path)?;
    Ok((sender_path, sender, receiver_path, receiver))
}

#[gpm::test]
async fn send_to_recv_from_poll() -> std::io::Result<()> {
    let dir = TempDir::new();
    let (sender_path, sender, receiver_path, receiver) = bind_sender_and_receiver(&dir)?;

    let msg = b"hello";
    std::future::poll_fn(|cx| sender.poll_send_to(cx, msg, &receiver_path)).await?;

    let mut recv_buf = [0u8; 32];
    let (n, addr) = std::future::poll_fn(|cx| receiver.poll_recv_from(cx, &mut recv_buf)).await?;

    assert_eq!(&recv_buf[..n], msg);
    assert_eq!(addr.as_pathname(), Some(sender_path.as_ref()));
    Ok(())
}

#[gpm::test]
async fn send_recv_poll() -> std::io::Result<()> {
    let dir = TempDir::new();
    let (sender_path, sender, receiver_path, receiver) = bind_sender_and_receiver(&dir)?;

    sender.connect(&receiver_path)?;
    receiver.connect(&sender_path)?;

    let msg = b"hello";
    std::future::poll_fn(|cx| sender.poll_send(cx, msg)).await?;

    let mut recv_buf = [0u8; 32];
    let n = std::future::poll_fn(|cx| receiver.poll_recv(cx, &mut recv_buf)).await?;

    assert_eq!(&recv_buf[..n], msg);
    Ok(())
}

/// tokio's `try_send_to_recv_from` and `poll_ready` (the latter waits with `writable()` /
/// `readable()` where tokio polls `poll_send_ready` / `poll_recv_ready`).
#[gpm::test]
async fn try_send_to_recv_from() -> std::io::Result<()> {
    let dir = TempDir::new();
    let server_path = dir.path().join("server.sock");
    let client_path = dir.path().join("client.sock");

    // Create listener
    let server = UnixDatagram::bind(&server_path)?;

    // Create socket pair
    let client = UnixDatagram::bind(&client_path)?;

    for _ in 0..5 {
        loop {
            client.writable().await?;

            match client.try_send_to(b"hello world", &server_path) {
                Ok(n) => {
                    assert_eq!(n, 11);
                    break;
                }
                Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e:?}"),
            }
        }

        loop {
            server.readable().await?;

            let mut buf = [0; 512];

            match server.try_recv_from(&mut buf) {
                Ok((n, addr)) => {
                    assert_eq!(n, 11);
                    assert_eq!(addr.as_pathname(), Some(client_path.as_ref()));
                    assert_eq!(&buf[0..11], &b"hello world"[..]);
                    break;
                }
                Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    Ok(())
}

#[gpm::test]
async fn datagram_pair_starts_writable() -> io::Result<()> {
    let (a, _b) = UnixDatagram::pair()?;
    a.writable().await?;

    let (c, _d) = UnixDatagram::pair()?;
    assert!(poll_once_unconstrained(c.readable()).is_pending());
    Ok(())
}

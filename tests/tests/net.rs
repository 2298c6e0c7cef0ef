//! `gpm::net`: an echo server with 100 concurrent clients, UDP, tokio's io traits, errors
//! from refused and reset connections, shutdown failing pending I/O instead of hanging, many
//! tasks waiting on one socket, a foreign waker that panics when the reactor fires it, and
//! readiness (`readable`, `writable`, `ready`, `try_read`, `try_write`, `peek`), socket
//! options and `into_std`.

use futures::{AsyncReadExt, AsyncWriteExt};
use gpm::io::Interest;
use gpm::net::{TcpListener, TcpStream, UdpSocket};
use gpm_tests::{catch_panic_message, join_all, panicking_waker, poll_once_unconstrained, rt_test};
use std::future::Future;
use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Echoes every connection until the peer closes its write half.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    gpm::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            gpm::spawn(async move {
                let mut buf = vec![0; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed * 7) as u8).collect()
}

rt_test! {
    /// 100 clients at once each send 256 KiB (more than the socket buffers hold, so both
    /// sides hit `WouldBlock`) and read back exactly what they sent.
    fn echo_with_100_concurrent_connections(rt: &gpm::Runtime) {
        const CLIENTS: usize = 100;
        const BYTES: usize = 256 * 1024;
        rt.block_on(async {
            let addr = echo_server().await;
            let clients: Vec<_> = (0..CLIENTS)
                .map(|seed| {
                    gpm::spawn(async move {
                        let stream = TcpStream::connect(addr).await.unwrap();
                        stream.set_nodelay(true).unwrap();
                        let sent = pattern(seed, BYTES);
                        let (mut reader, mut writer) = stream.split();
                        let writing = gpm::spawn(async move {
                            writer.write_all(&sent).await.unwrap();
                            writer.close().await.unwrap();
                        });
                        let mut received = Vec::with_capacity(BYTES);
                        reader.read_to_end(&mut received).await.unwrap();
                        writing.await.unwrap();
                        assert_eq!(received, pattern(seed, BYTES), "client {seed}");
                    })
                })
                .collect();
            join_all(clients).await;
        });
    }
}

rt_test! {
    /// Datagrams go both ways between two UDP sockets, with the sender's address.
    fn udp_ping_pong(rt: &gpm::Runtime) {
        rt.block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let server_addr = server.local_addr().unwrap();
            let echo = gpm::spawn(async move {
                let mut buf = [0; 64];
                for _ in 0..10 {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    server.send_to(&buf[..n], from).await.unwrap();
                }
            });
            let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            client.connect(server_addr).await.unwrap();
            for i in 0..10u8 {
                client.send(&[i; 8]).await.unwrap();
                let mut buf = [0; 64];
                let n = client.recv(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], &[i; 8]);
            }
            echo.await.unwrap();
        });
    }
}

rt_test! {
    /// tokio's `accept_many`: 50 tasks accept on one shared listener while 50 clients
    /// connect, and every accept finishes. With one waker slot per direction only the last
    /// task to wait was ever woken, and the other accepts hung.
    fn accept_many(rt: &gpm::Runtime) {
        const N: usize = 50;
        rt.block_on(async {
            let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
            let addr = listener.local_addr().unwrap();
            let waiting = Arc::new(AtomicUsize::new(0));
            let acceptors: Vec<_> = (0..N)
                .map(|_| {
                    let (listener, waiting) = (Arc::clone(&listener), Arc::clone(&waiting));
                    gpm::spawn(async move {
                        waiting.fetch_add(1, Ordering::SeqCst);
                        listener.accept().await.map(drop)
                    })
                })
                .collect();
            while waiting.load(Ordering::SeqCst) < N {
                gpm::task::yield_now().await;
            }
            let clients: Vec<_> = (0..N)
                .map(|_| gpm::spawn(async move { TcpStream::connect(addr).await.map(drop) }))
                .collect();
            for task in acceptors.into_iter().chain(clients) {
                task.await.unwrap().unwrap();
            }
        });
    }
}

rt_test! {
    /// Two tasks wait in `recv_from` on one shared UDP socket; two datagrams arrive and both
    /// receives finish (one readiness event may announce both: every waiter is woken).
    fn two_receivers_on_one_udp_socket(rt: &gpm::Runtime) {
        rt.block_on(async {
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let addr = socket.local_addr().unwrap();
            let waiting = Arc::new(AtomicUsize::new(0));
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let (socket, waiting) = (Arc::clone(&socket), Arc::clone(&waiting));
                    gpm::spawn(async move {
                        waiting.fetch_add(1, Ordering::SeqCst);
                        let mut buf = [0; 16];
                        socket.recv_from(&mut buf).await.map(|(n, _)| buf[..n].to_vec())
                    })
                })
                .collect();
            while waiting.load(Ordering::SeqCst) < 2 {
                gpm::task::yield_now().await;
            }
            // One more turn so the receivers' first polls are over on one worker too.
            gpm::task::yield_now().await;
            let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sender.send_to(b"one", addr).await.unwrap();
            sender.send_to(b"two", addr).await.unwrap();
            let mut received = Vec::new();
            for receiver in receivers {
                received.push(receiver.await.unwrap().unwrap());
            }
            received.sort();
            assert_eq!(received, [b"one".to_vec(), b"two".to_vec()]);
        });
    }
}

rt_test! {
    /// A future of some other executor waits on a gpm socket with a waker that panics on
    /// wake. The reactor fires it; the panic stays inside that one wake: the runtime still
    /// runs tasks and I/O on every worker, and drops without hanging (watchdog).
    fn panicking_foreign_waker_on_a_socket(rt: &gpm::Runtime) {
        let socket = {
            let _guard = rt.enter();
            UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap()
        };
        let addr = socket.local_addr().unwrap();
        let (waker, woken) = panicking_waker();
        let mut buf = [0; 16];
        let mut recv = Box::pin(socket.recv_from(&mut buf));
        assert!(recv.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"hi", addr).unwrap();
        woken.recv().unwrap();
        let noop = futures::task::noop_waker();
        match recv.as_mut().poll(&mut Context::from_waker(&noop)) {
            Poll::Ready(result) => assert_eq!(result.unwrap().0, 2),
            Poll::Pending => panic!("the datagram that fired the waker is not readable"),
        }
        still_serves_io(rt);
    }
}

/// Echo round trips from as many tasks as the runtime has workers (and then some).
fn still_serves_io(rt: &gpm::Runtime) {
    let tasks = 4 * rt.handle().num_workers();
    rt.block_on(async {
        let addr = echo_server().await;
        let clients: Vec<_> = (0..tasks)
            .map(|seed| {
                gpm::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.write_all(&pattern(seed, 64)).await.unwrap();
                    let mut echo = vec![0; 64];
                    stream.read_exact(&mut echo).await.unwrap();
                    assert_eq!(echo, pattern(seed, 64));
                })
            })
            .collect();
        join_all(clients).await;
    });
}

rt_test! {
    /// tokio's `AsyncReadExt`/`AsyncWriteExt` work on a gpm stream (feature `tokio-io`).
    fn tokio_io_traits(rt: &gpm::Runtime) {
        rt.block_on(async {
            let addr = echo_server().await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"tokio traits").await.unwrap();
            let mut buf = [0; 12];
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut buf).await.unwrap();
            assert_eq!(&buf, b"tokio traits");
            tokio::io::AsyncWriteExt::shutdown(&mut stream).await.unwrap();
            let mut rest = Vec::new();
            let n = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest).await.unwrap();
            assert_eq!(n, 0);
        });
    }
}

rt_test! {
    /// Connecting to a port nobody listens on is `ConnectionRefused`, not a hang or panic.
    fn connect_refused_is_an_error(rt: &gpm::Runtime) {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let result = rt.block_on(async move { TcpStream::connect(addr).await });
        assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    }
}

/// Closes `stream` with an RST (SO_LINGER with a zero timeout) instead of a FIN.
fn reset(stream: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized, initialised `linger` value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(stream);
}

rt_test! {
    /// A peer that resets the connection makes the pending read fail with
    /// `ConnectionReset`; later writes fail too. No panic.
    fn reset_by_peer_is_an_error(rt: &gpm::Runtime) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let peer = std::thread::spawn(move || {
                let stream = std::net::TcpStream::connect(addr).unwrap();
                // Wait for the server's greeting so the read below is already pending.
                let mut byte = [0; 1];
                std::io::Read::read_exact(&mut &stream, &mut byte).unwrap();
                reset(stream);
            });
            let (stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"!").await.unwrap();
            let mut buf = [0; 16];
            let error = stream.read(&mut buf).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConnectionReset);
            let mut write_failed = false;
            for _ in 0..100 {
                if stream.write_all(&[0; 1024]).await.is_err() {
                    write_failed = true;
                    break;
                }
            }
            assert!(write_failed, "writes to a reset connection kept succeeding");
            peer.join().unwrap();
        });
    }
}

#[test]
fn shutdown_fails_pending_io_instead_of_hanging() {
    gpm_tests::with_runtime("shutdown_fails_pending_io", 2, |rt| {
        let handle = rt.handle().clone();
        let listener = rt.block_on(async { TcpListener::bind("127.0.0.1:0").await.unwrap() });
        // A task blocked in accept and one blocked in read when the runtime goes away.
        let acceptor = rt.spawn(async move { listener.accept().await.map(|_| ()) });
        let reader = rt.spawn(async move {
            let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(other.local_addr().unwrap())
                .await
                .unwrap();
            let (_server_side, _) = other.accept().await.unwrap();
            let mut buf = [0; 1];
            client.read(&mut buf).await
        });
        while rt.handle().num_registered_sockets() < 4 {
            std::thread::yield_now();
        }
        // The fourth socket is registered inside the reader's poll that goes on to `read`;
        // stopping the world waits for that poll to return, so both tasks wait in their I/O
        // (not mid-poll) when the runtime goes away.
        rt.handle().stop_the_world(|_| ());
        drop(rt);
        // Their futures (and so their sockets) were dropped by the shutdown.
        assert!(handle.block_on(reader).unwrap_err().is_cancelled());
        assert!(handle.block_on(acceptor).unwrap_err().is_cancelled());
        assert_eq!(handle.num_registered_sockets(), 0);
        // A socket that outlives the runtime fails its I/O with an error.
        let error = handle
            .block_on(async { TcpListener::bind("127.0.0.1:0").await })
            .unwrap_err();
        assert!(error.to_string().contains("shut down"), "{error}");
    });
}

#[test]
fn sockets_outside_a_runtime_panic_with_a_clear_message() {
    let message = catch_panic_message(|| {
        futures::executor::block_on(TcpListener::bind("127.0.0.1:0")).map(drop)
    });
    assert!(message.contains("context of a gpm runtime"), "{message}");
}

rt_test! {
    /// Malformed addresses are errors, not panics.
    fn bad_addresses_are_errors(rt: &gpm::Runtime) {
        rt.block_on(async {
            assert!(TcpListener::bind("not an address").await.is_err());
            assert!(TcpStream::connect("256.1.2.3:80").await.is_err());
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            assert!(socket.send_to(b"x", "nope:99999").await.is_err());
            assert!(UdpSocket::bind("127.0.0.1:99999").await.is_err());
        });
    }
}

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A connected pair: (client, server).
async fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

const DATA: &[u8] = &[2u8; 4000];

/// Writes with `write` until the socket says `WouldBlock` and `writable()` then waits.
/// Before each write the stream is still writable (tokio's "still ready"). A readiness
/// event that lands between the check and the `WouldBlock` keeps the readiness (the
/// protocol's step 3; the reactor runs on other threads here), so then fill on.
fn fill(
    client: &TcpStream,
    written: &mut Vec<u8>,
    write: impl Fn(&TcpStream) -> io::Result<usize>,
) {
    loop {
        loop {
            assert!(
                poll_once_unconstrained(client.writable()).is_ready(),
                "still ready"
            );
            match write(client) {
                Ok(n) => written.extend(&DATA[..n]),
                Err(ref e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("error = {e:?}"),
            }
        }
        if poll_once_unconstrained(client.writable()).is_pending() {
            return;
        }
    }
}

/// Reads `len` bytes with `readable()` + `try_read` (`vectored`: `try_read_vectored`).
async fn drain(server: &TcpStream, len: usize, vectored: bool) -> Vec<u8> {
    let mut read = vec![0; len];
    let mut i = 0;
    while i < read.len() {
        server.readable().await.unwrap();
        let result = if vectored {
            let mut bufs: Vec<_> = read[i..].chunks_mut(0x10000).map(IoSliceMut::new).collect();
            server.try_read_vectored(&mut bufs)
        } else {
            server.try_read(&mut read[i..])
        };
        match result {
            Ok(n) => i += n,
            Err(ref e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => panic!("error = {e:?}"),
        }
    }
    read
}

rt_test! {
    /// tokio's `try_read_write`: readiness wakes a waiting `readable()`, `try_write` fills
    /// the send buffer until `WouldBlock`, after which `writable()` waits; `readable()` +
    /// `try_read` (and the vectored pair) drain exactly what was written; a closed peer
    /// shows as `is_read_closed()`.
    fn try_read_write(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (client, server) = connected_pair().await;
            let mut written = DATA.to_vec();
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let waker = Waker::from(Arc::clone(&flag));
            let mut readable = Box::pin(server.readable());
            assert!(readable.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
            client.writable().await.unwrap();
            assert_eq!(DATA.len(), client.try_write(DATA).unwrap());
            while !flag.0.load(Ordering::SeqCst) {
                gpm::task::yield_now().await;
            }
            drop(readable);

            fill(&client, &mut written, |c| c.try_write(DATA));
            assert!(poll_once_unconstrained(client.writable()).is_pending(), "write buffer full");
            assert_eq!(drain(&server, written.len(), false).await, written);

            written.clear();
            client.writable().await.unwrap();
            let data_bufs: Vec<_> = DATA.chunks(10).map(IoSlice::new).collect();
            fill(&client, &mut written, |c| c.try_write_vectored(&data_bufs));
            assert!(poll_once_unconstrained(client.writable()).is_pending(), "write buffer full");
            assert_eq!(drain(&server, written.len(), true).await, written);

            drop(client);
            loop {
                let ready = server.ready(Interest::READABLE).await.unwrap();
                if ready.is_read_closed() {
                    break;
                }
                gpm::task::yield_now().await;
            }
        });
    }
}

rt_test! {
    /// `try_read` on an empty stream is `WouldBlock` (and clears the readiness, so
    /// `readable()` waits); `ready(READABLE | WRITABLE)` reports writable only; after the
    /// peer writes, `peek` sees the data twice and `read` then takes the same bytes.
    fn try_read_would_block_ready_and_peek(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (client, server) = connected_pair().await;
            let mut buf = [0u8; 32];
            assert_eq!(server.try_read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            assert!(poll_once_unconstrained(server.readable()).is_pending());
            let ready = server.ready(Interest::READABLE | Interest::WRITABLE).await.unwrap();
            assert!(ready.is_writable() && !ready.is_readable(), "{ready:?}");
            client.write_all(b"peek me").await.unwrap();
            let peek1 = server.peek(&mut buf).await.unwrap();
            let peek2 = server.peek(&mut buf).await.unwrap();
            assert_eq!(peek1, peek2);
            let read = server.read(&mut buf).await.unwrap();
            assert_eq!(read, peek1);
            assert_eq!(&buf[..read], &b"peek me"[..read]);
        });
    }
}

rt_test! {
    /// tokio's `set_linger`, and `set_ttl`/`ttl`.
    fn socket_options(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (client, _server) = connected_pair().await;
            client.set_linger(Some(Duration::from_secs(1))).unwrap();
            assert_eq!(client.linger().unwrap().unwrap().as_secs(), 1);
            client.set_linger(Some(Duration::ZERO)).unwrap();
            assert_eq!(client.linger().unwrap().unwrap().as_secs(), 0);
            client.set_linger(None).unwrap();
            assert!(client.linger().unwrap().is_none());
            client.set_ttl(42).unwrap();
            assert_eq!(client.ttl().unwrap(), 42);
        });
    }
}

rt_test! {
    /// `into_std` leaves the reactor (one socket fewer registered) and gives a working,
    /// still non-blocking std stream.
    fn tcp_into_std(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (client, mut server) = connected_pair().await;
            let registered = gpm::Handle::current().num_registered_sockets();
            let mut client = client.into_std().unwrap();
            assert_eq!(gpm::Handle::current().num_registered_sockets(), registered - 1);
            let mut byte = [0u8; 1];
            let would_block = std::io::Read::read(&mut client, &mut byte).unwrap_err();
            assert_eq!(would_block.kind(), ErrorKind::WouldBlock);
            client.set_nonblocking(false).unwrap();
            std::io::Write::write_all(&mut client, b"std").unwrap();
            let mut buf = [0u8; 3];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"std");
        });
    }
}

rt_test! {
    /// tokio's `try_send_to_recv_from` and `try_send_recv`: `writable()` + `try_send*`, then
    /// `readable()` + `try_recv*`, retrying on `WouldBlock`, five times each.
    fn udp_try_send_recv(rt: &gpm::Runtime) {
        rt.block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let saddr = server.local_addr().unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let caddr = client.local_addr().unwrap();
            for _ in 0..5 {
                send_with_retry(&client, |c| c.try_send_to(b"hello world", saddr)).await;
                let mut buf = [0; 512];
                let (n, addr) = recv_with_retry(&server, |s| s.try_recv_from(&mut buf)).await;
                assert_eq!((n, addr), (11, caddr));
                assert_eq!(&buf[0..11], &b"hello world"[..]);
            }
            client.connect(saddr).await.unwrap();
            server.connect(caddr).await.unwrap();
            for _ in 0..5 {
                send_with_retry(&client, |c| c.try_send(b"hello world")).await;
                let mut buf = [0; 512];
                let n = recv_with_retry(&server, |s| s.try_recv(&mut buf)).await;
                assert_eq!(n, 11);
                assert_eq!(&buf[0..11], &b"hello world"[..]);
            }
        });
    }
}

async fn send_with_retry(
    socket: &UdpSocket,
    mut send: impl FnMut(&UdpSocket) -> io::Result<usize>,
) {
    loop {
        socket.writable().await.unwrap();
        match send(socket) {
            Ok(n) => return assert_eq!(n, 11),
            Err(ref e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
}

async fn recv_with_retry<T>(
    socket: &UdpSocket,
    mut recv: impl FnMut(&UdpSocket) -> io::Result<T>,
) -> T {
    loop {
        socket.readable().await.unwrap();
        match recv(socket) {
            Ok(value) => return value,
            Err(ref e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
}

rt_test! {
    /// `try_recv_from` with nothing queued is `WouldBlock` and `readable()` then waits; a
    /// datagram wakes it; `peek_from` sees it twice and `recv_from` then takes it (tokio's
    /// `send_to_peek_from`).
    fn udp_would_block_and_peek_from(rt: &gpm::Runtime) {
        rt.block_on(async {
            let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = sender.local_addr().unwrap();
            let mut buf = [0u8; 32];
            assert_eq!(receiver.try_recv_from(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            assert!(poll_once_unconstrained(receiver.readable()).is_pending());
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let waker = Waker::from(Arc::clone(&flag));
            let mut readable = Box::pin(receiver.readable());
            assert!(readable.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
            sender.send_to(b"hello", receiver.local_addr().unwrap()).await.unwrap();
            while !flag.0.load(Ordering::SeqCst) {
                gpm::task::yield_now().await;
            }
            drop(readable);
            assert_eq!(receiver.peek_from(&mut buf).await.unwrap(), (5, addr));
            assert_eq!(receiver.peek_from(&mut buf).await.unwrap(), (5, addr));
            assert_eq!(receiver.recv_from(&mut buf).await.unwrap(), (5, addr));
            assert_eq!(&buf[..5], b"hello");
            assert_eq!(receiver.try_recv_from(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        });
    }
}

rt_test! {
    /// tokio's `try_send_spawn`: a socket sends from a plain thread too (the `try_*`
    /// operations need no runtime context), and `set_broadcast`, `set_ttl` and `into_std`.
    fn udp_try_send_from_a_thread_options_and_into_std(rt: &gpm::Runtime) {
        rt.block_on(async {
            let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sender.set_broadcast(true).unwrap();
            assert!(sender.broadcast().unwrap());
            sender.set_ttl(7).unwrap();
            assert_eq!(sender.ttl().unwrap(), 7);
            sender.connect(receiver.local_addr().unwrap()).await.unwrap();
            sender.writable().await.unwrap();
            std::thread::spawn(move || assert_eq!(sender.try_send(b"from a thread").unwrap(), 13))
                .join()
                .unwrap();
            let mut buf = [0u8; 32];
            assert_eq!(receiver.recv(&mut buf).await.unwrap(), 13);
            let registered = gpm::Handle::current().num_registered_sockets();
            let receiver = receiver.into_std().unwrap();
            assert_eq!(gpm::Handle::current().num_registered_sockets(), registered - 1);
            assert_eq!(receiver.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        });
    }
}

rt_test! {
    /// A `readable()` that finds the socket ready spends a unit of the cooperative budget,
    /// as tokio's does: a `readable()` + `try_read` loop on an always-ready socket yields.
    fn readiness_waits_spend_the_budget(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (client, server) = connected_pair().await;
            client.write_all(b"x").await.unwrap();
            server.readable().await.unwrap();
            gpm::task::yield_now().await;
            let noop = futures::task::noop_waker();
            let mut cx = Context::from_waker(&noop);
            let polls = (1..=1000)
                .find(|_| std::pin::pin!(server.readable()).poll(&mut cx).is_pending())
                .expect("readable() never ran out of budget");
            assert!(polls > 1, "the budget was spent before the loop");
        });
    }
}

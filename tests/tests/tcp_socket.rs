//! `gpm::net::TcpSocket` and `TcpListener::into_std`: tokio's `tcp_socket.rs` ported, same
//! assertions (the `tclass_v6` / `tos_v4` options, not in gpm, are left out), plus
//! `from_std_stream`, `reuseport` on two listeners, and a listener out to std and back.

use gpm::net::{TcpListener, TcpSocket, TcpStream};
use std::time::Duration;

/// tokio's `basic_usage_v4`, `basic_usage_v6` and `bind_before_connect`: a server socket
/// from `new`, bound to `any_addr`, listens; a client socket from `new` (first bound to
/// `any_addr` too with `bind_client`) connects; the server accepts.
async fn connect_and_accept(
    new: fn() -> std::io::Result<TcpSocket>,
    any_addr: &str,
    bind_client: bool,
) {
    // Create server
    let any_addr = any_addr.parse().unwrap();
    let srv = new().unwrap();
    srv.bind(any_addr).unwrap();

    let srv = srv.listen(128).unwrap();

    // Create client & connect
    let addr = srv.local_addr().unwrap();
    let cli = new().unwrap();
    if bind_client {
        cli.bind(any_addr).unwrap();
    }
    let _cli = cli.connect(addr).await.unwrap();

    // Accept
    let _ = srv.accept().await.unwrap();
}

#[gpm::test]
async fn basic_usage_v4() {
    connect_and_accept(TcpSocket::new_v4, "127.0.0.1:0", false).await;
}

#[gpm::test]
async fn basic_usage_v6() {
    connect_and_accept(TcpSocket::new_v6, "[::1]:0", false).await;
}

#[gpm::test]
async fn bind_before_connect() {
    connect_and_accept(TcpSocket::new_v4, "127.0.0.1:0", true).await;
}

#[gpm::test]
async fn basic_linger() {
    // Create server
    let addr = "127.0.0.1:0".parse().unwrap();
    let srv = TcpSocket::new_v4().unwrap();
    srv.bind(addr).unwrap();

    assert!(srv.linger().unwrap().is_none());

    srv.set_zero_linger().unwrap();
    assert_eq!(srv.linger().unwrap(), Some(Duration::new(0, 0)));
}

/// A simple test to set and get a socket option, on an IPv4 and an IPv6 socket: the
/// initial value differs from `arg`, and after setting it the option reads `expected`.
macro_rules! test {
    ($get_fn:ident, $set_fn:ident($arg:expr)) => {
        test!($get_fn, $set_fn($arg), $arg);
    };
    ($get_fn:ident, $set_fn:ident($arg:expr), $expected:expr) => {
        #[test]
        fn $get_fn() {
            for socket in [TcpSocket::new_v4(), TcpSocket::new_v6()] {
                let socket = socket.expect("failed to create `TcpSocket`");

                let initial = socket.$get_fn().expect("failed to get initial value");
                let arg = $arg;
                assert_ne!(initial, arg, "initial value and argument are the same");

                socket.$set_fn(arg).expect("failed to set option");
                let got = socket.$get_fn().expect("failed to get value");
                let expected = $expected;
                assert_eq!(got, expected, "set and get values differ");
            }
        }
    };
}

const SET_BUF_SIZE: u32 = 4096;
// Linux doubles the buffer size for kernel usage, and exposes that when
// retrieving the buffer size.

#[cfg(not(any(target_os = "android", target_os = "linux")))]
const GET_BUF_SIZE: u32 = SET_BUF_SIZE;

#[cfg(any(target_os = "android", target_os = "linux"))]
const GET_BUF_SIZE: u32 = 2 * SET_BUF_SIZE;

test!(keepalive, set_keepalive(true));
test!(reuseaddr, set_reuseaddr(true));
test!(reuseport, set_reuseport(true));
test!(
    send_buffer_size,
    set_send_buffer_size(SET_BUF_SIZE),
    GET_BUF_SIZE
);
test!(
    recv_buffer_size,
    set_recv_buffer_size(SET_BUF_SIZE),
    GET_BUF_SIZE
);
test!(linger, set_linger(Some(Duration::from_secs(10))));
test!(nodelay, set_nodelay(true));

/// Two listeners with `SO_REUSEPORT` bind one address; a refused connect is an error.
#[gpm::test]
async fn reuseport_shares_an_address_and_refused_connect_errors() {
    let bound = |addr| {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseport(true).unwrap();
        socket.bind(addr).unwrap();
        socket
    };
    let first = bound("127.0.0.1:0".parse().unwrap());
    let addr = first.local_addr().unwrap();
    let second = bound(addr);
    let _listeners = (first.listen(8).unwrap(), second.listen(8).unwrap());
    TcpSocket::new_v4().unwrap().connect(addr).await.unwrap();

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let refused = TcpSocket::new_v4().unwrap().connect(closed_addr).await;
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

/// `from_std_stream` sets options on a connected std stream; `TcpListener::into_std` leaves
/// the reactor with a working (non-blocking) std listener.
#[gpm::test]
async fn from_std_stream_and_listener_into_std() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let registered = gpm::Handle::current().num_registered_sockets();
    let listener = listener.into_std().unwrap();
    assert_eq!(
        gpm::Handle::current().num_registered_sockets(),
        registered - 1
    );
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    let client = TcpStream::connect(addr).await.unwrap();
    listener.set_nonblocking(false).unwrap();
    let (server, _) = listener.accept().unwrap();
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    let socket = TcpSocket::from_std_stream(server);
    socket.set_nodelay(true).unwrap();
    assert!(socket.nodelay().unwrap());
    assert_eq!(socket.local_addr().unwrap(), addr);
}

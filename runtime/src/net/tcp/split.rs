//! [`TcpStream`]'s halves: the shared halves of `crate::net::split` (read its module docs
//! for the design and its invariant), plus `peek` on the read halves.

use super::TcpStream;
use std::io;
use std::net::SocketAddr;

stream_halves!(TcpStream, SocketAddr);

/// `peek` on a read half, delegated to [`TcpStream::peek`].
macro_rules! peek {
    ($half:ty) => {
        impl $half {
            /// Reads without consuming, like [`TcpStream::peek`].
            pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream().peek(buf).await
            }
        }
    };
}

peek!(ReadHalf<'_>);
peek!(OwnedReadHalf);

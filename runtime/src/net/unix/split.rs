//! [`UnixStream`]'s halves: the shared halves of `crate::net::split` (read its module docs
//! for the design and its invariant).

use super::UnixStream;
use std::os::unix::net::SocketAddr;

stream_halves!(UnixStream, SocketAddr);

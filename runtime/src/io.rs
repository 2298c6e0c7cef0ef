//! `gpm::io`: the readiness types of the socket API, as in `tokio::io`: [`Interest`] (what
//! [`crate::net::TcpStream::ready`] waits for) and [`Ready`] (what it found).
//!
//! Readiness is a hint, as in tokio: a socket reported ready may still answer `WouldBlock`
//! (another task took the data, or the event was stale). The `try_*` operations then clear
//! the readiness (unless a newer event arrived) so the next wait really waits; see the
//! readiness protocol in the reactor's documentation (`crate::driver::io`).
//!
//! A socket error (`EPOLLERR`) is reported as readiness in the direction that was waited
//! for (`is_readable()` / `is_writable()`), so the next `try_read` / `try_write` returns
//! the error instead of the loop waiting forever; gpm has no separate `Interest::ERROR`.

use std::fmt;
use std::ops;

/// Which readiness to wait for: readable, writable, or both (`Interest::READABLE |
/// Interest::WRITABLE`), like `tokio::io::Interest`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Interest(u8);

const READ_BIT: u8 = 1;
const WRITE_BIT: u8 = 1 << 1;

impl Interest {
    /// Interest in readability (data, end of stream, or an error).
    pub const READABLE: Interest = Interest(READ_BIT);
    /// Interest in writability (buffer space, a closed write side, or an error).
    pub const WRITABLE: Interest = Interest(WRITE_BIT);

    /// Whether this includes readability.
    pub const fn is_readable(self) -> bool {
        self.0 & READ_BIT != 0
    }

    /// Whether this includes writability.
    pub const fn is_writable(self) -> bool {
        self.0 & WRITE_BIT != 0
    }

    /// Both interests.
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// This interest without `other`; `None` if nothing is left.
    #[must_use]
    pub fn remove(self, other: Interest) -> Option<Interest> {
        let left = self.0 & !other.0;
        (left != 0).then_some(Interest(left))
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

/// The readiness a socket was found in, like `tokio::io::Ready`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ready(u8);

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready(0);
    /// Readable.
    pub const READABLE: Ready = Ready(1);
    /// Writable.
    pub const WRITABLE: Ready = Ready(1 << 1);
    /// The peer closed its write side (reads return end of stream).
    pub const READ_CLOSED: Ready = Ready(1 << 2);
    /// The write side is closed (writes fail).
    pub const WRITE_CLOSED: Ready = Ready(1 << 3);
    /// All of the above.
    pub const ALL: Ready = Ready(0b1111);

    /// Whether nothing is ready.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Readable or read-closed (a read will not wait), as in tokio.
    pub fn is_readable(self) -> bool {
        self.0 & (Ready::READABLE.0 | Ready::READ_CLOSED.0) != 0
    }

    /// Writable or write-closed (a write will not wait), as in tokio.
    pub fn is_writable(self) -> bool {
        self.0 & (Ready::WRITABLE.0 | Ready::WRITE_CLOSED.0) != 0
    }

    /// Whether the read side is closed.
    pub fn is_read_closed(self) -> bool {
        self.0 & Ready::READ_CLOSED.0 != 0
    }

    /// Whether the write side is closed.
    pub fn is_write_closed(self) -> bool {
        self.0 & Ready::WRITE_CLOSED.0 != 0
    }

    /// Readiness from `(flag, Ready)` pairs: the union of those whose flag is set.
    pub(crate) fn from_flags(flags: [(bool, Ready); 4]) -> Ready {
        flags
            .into_iter()
            .filter(|(set, _)| *set)
            .fold(Ready::EMPTY, |all, (_, ready)| all | ready)
    }
}

impl ops::BitOr for Ready {
    type Output = Ready;

    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl ops::BitOrAssign for Ready {
    fn bitor_assign(&mut self, other: Ready) {
        self.0 |= other.0;
    }
}

impl ops::BitAnd for Ready {
    type Output = Ready;

    fn bitand(self, other: Ready) -> Ready {
        Ready(self.0 & other.0)
    }
}

impl ops::Sub for Ready {
    type Output = Ready;

    fn sub(self, other: Ready) -> Ready {
        Ready(self.0 & !other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_and_ready_bits() {
        let both = Interest::READABLE | Interest::WRITABLE;
        assert!(both.is_readable() && both.is_writable());
        assert_eq!(both.remove(Interest::READABLE), Some(Interest::WRITABLE));
        assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
        assert!(Ready::READ_CLOSED.is_readable() && !Ready::READ_CLOSED.is_writable());
        assert!((Ready::ALL - Ready::READABLE - Ready::READ_CLOSED).is_writable());
        assert!(Ready::EMPTY.is_empty() && !Ready::ALL.is_empty());
    }
}

//! Socket options through libc, for what neither std nor mio offers (`SO_LINGER`, and the
//! options of [`super::TcpSocket`] before it is connected or listening).
//!
//! [`get`] and [`set`] are generic over [`Plain`] option values: types for which every bit
//! pattern, the all-zero one included, is a valid value (C integers and plain C structs of
//! them), so a value the kernel wrote only part of is still initialised.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// An option value any bit pattern of which is valid (module docs).
///
/// # Safety
/// Implementors must be plain data: every bit pattern, all-zero included, is a valid value.
pub(crate) unsafe trait Plain: Copy {}

// SAFETY: a C `int` is an integer: every bit pattern is a valid value.
unsafe impl Plain for libc::c_int {}
// SAFETY: `linger` is two C `int`s, so every bit pattern is a valid value.
unsafe impl Plain for libc::linger {}

/// `setsockopt(fd, level, name, &value)`.
pub(crate) fn set<T: Plain>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `fd` is open (borrowed for the call); `value` is an initialised `T`, the
    // caller's choice of type for the option, and its size is passed, so the kernel reads
    // within it (and rejects a size that does not fit the option).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(rc)
}

/// `getsockopt(fd, level, name)` as a `T`.
pub(crate) fn get<T: Plain>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    // SAFETY: `T: Plain`, so the all-zero pattern is a valid `T`.
    let mut value: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `fd` is open; `value` is a writable `T` and `len` holds its size, so the
    // kernel writes within it; whatever it writes is a valid `T` (`Plain`).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    check(rc)?;
    Ok(value)
}

/// A boolean option (`int` 0 or 1).
pub(crate) fn set_flag(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    on: bool,
) -> io::Result<()> {
    set(fd, level, name, libc::c_int::from(on))
}

/// A boolean option: whether it is non-zero.
pub(crate) fn flag(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<bool> {
    get::<libc::c_int>(fd, level, name).map(|value| value != 0)
}

/// Sets `SO_LINGER`: with `Some(d)`, closing blocks up to `d` (whole seconds) to send
/// unsent data, and `Some(ZERO)` closes with a reset; `None` closes in the background.
pub(crate) fn set_linger(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
    let seconds = linger.map_or(0, |d| d.as_secs().min(libc::c_int::MAX as u64));
    let value = libc::linger {
        l_onoff: libc::c_int::from(linger.is_some()),
        l_linger: seconds as libc::c_int,
    };
    set(fd, libc::SOL_SOCKET, libc::SO_LINGER, value)
}

/// `SO_LINGER` (see [`set_linger`]).
pub(crate) fn linger(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
    let value: libc::linger = get(fd, libc::SOL_SOCKET, libc::SO_LINGER)?;
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

/// `Ok(())` for a zero return code, else the OS error.
pub(crate) fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

//! Pinning threads to PUs (Linux `sched_setaffinity`).
//!
//! Pinning always acts on the real machine, whatever [`Topology`] the caller
//! uses: hwloc cannot bind through synthetic or XML topologies, so this
//! module talks to the kernel directly.
//!
//! # The allowed set
//!
//! [`allowed_cpus`] is the set of CPUs this process may run on. It is read
//! **once**, at the first call of any function of this module, from the
//! affinity of the process's main thread (`sched_getaffinity(getpid())`), and
//! cached, so that pinning one thread does not shrink it. A program that
//! narrows the main thread's affinity itself should call [`allowed_cpus`]
//! before doing so.
//!
//! [`Topology`]: crate::Topology

use std::sync::OnceLock;

use crate::cpulist::format_list;
use crate::error::Error;

/// Bits in one word of a kernel CPU mask.
const WORD_BITS: usize = u64::BITS as usize;
/// The largest mask tried when reading the affinity (2^20 CPUs).
const MAX_MASK_BITS: usize = 1 << 20;

/// The CPUs (OS indices, ascending) this process may run on; see the
/// [module documentation](self) for when it is read. Empty only if the kernel
/// refused to report it.
pub fn allowed_cpus() -> Vec<usize> {
    allowed().to_vec()
}

fn allowed() -> &'static [usize] {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        // SAFETY: getpid has no preconditions and cannot fail.
        let pid = unsafe { libc::getpid() };
        read_affinity(pid)
            .or_else(|_| read_affinity(0))
            .unwrap_or_default()
    })
}

/// The CPUs the calling thread may currently run on (after pinning: just
/// the pinned PU).
///
/// # Errors
///
/// [`Error::Pin`] (with `pu` 0) if the kernel refuses to report it.
pub fn current_thread_affinity() -> Result<Vec<usize>, Error> {
    read_affinity(0).map_err(|detail| Error::Pin { pu: 0, detail })
}

/// Reads the affinity mask of thread/process `pid` (0: calling thread),
/// growing the buffer until the kernel's mask fits.
fn read_affinity(pid: libc::pid_t) -> Result<Vec<usize>, String> {
    let mut bits = 1024;
    loop {
        let mut mask = vec![0u64; bits / WORD_BITS];
        // SAFETY: `mask` is a writable buffer of exactly `bits / 8` bytes,
        // which is the size passed; the kernel writes at most that many bytes
        // (cpu_set_t is a plain bit array, so a larger buffer is valid).
        let rc = unsafe {
            libc::sched_getaffinity(pid, bits / 8, mask.as_mut_ptr().cast::<libc::cpu_set_t>())
        };
        if rc == 0 {
            return Ok(mask_to_list(&mask));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) || bits >= MAX_MASK_BITS {
            return Err(format!("sched_getaffinity failed: {err}"));
        }
        bits *= 2;
    }
}

fn mask_to_list(mask: &[u64]) -> Vec<usize> {
    (0..mask.len() * WORD_BITS)
        .filter(|&cpu| mask[cpu / WORD_BITS] & (1 << (cpu % WORD_BITS)) != 0)
        .collect()
}

/// Number of CPUs the kernel has configured (online or not).
fn configured_cpus() -> usize {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    usize::try_from(n).unwrap_or(0)
}

/// Pins the calling thread to PU `pu` (OS index): afterwards it runs only
/// there.
///
/// # Errors
///
/// [`Error::Pin`] naming `pu` when the PU does not exist on this machine, is
/// outside the process's [allowed set](allowed_cpus), or the kernel refuses.
pub fn pin_current_thread(pu: usize) -> Result<(), Error> {
    check_pin_target(pu, allowed(), configured_cpus())?;
    set_current_thread_affinity(&[pu], pu)
}

/// Lets the calling thread run on every CPU of the process's
/// [allowed set](allowed_cpus) again (undoes [`pin_current_thread`]).
///
/// # Errors
///
/// [`Error::Pin`] (with `pu` 0) if the allowed set is unknown or the kernel
/// refuses.
pub fn unpin_current_thread() -> Result<(), Error> {
    let allowed = allowed();
    if allowed.is_empty() {
        return Err(Error::Pin {
            pu: 0,
            detail: "the process's allowed CPUs are unknown".to_string(),
        });
    }
    set_current_thread_affinity(allowed, 0)
}

/// Restricts the calling thread to `cpus` (not empty); a refusal is an
/// [`Error::Pin`] naming `pu`.
fn set_current_thread_affinity(cpus: &[usize], pu: usize) -> Result<(), Error> {
    let last = cpus.iter().copied().max().unwrap_or(0);
    let mut mask = vec![0u64; last / WORD_BITS + 1];
    for &cpu in cpus {
        mask[cpu / WORD_BITS] |= 1 << (cpu % WORD_BITS);
    }
    // SAFETY: `mask` is a readable buffer of exactly the size passed; the
    // kernel only reads it. pid 0 is the calling thread.
    let rc = unsafe {
        libc::sched_setaffinity(
            0,
            mask.len() * WORD_BITS / 8,
            mask.as_ptr().cast::<libc::cpu_set_t>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::Pin {
            pu,
            detail: format!(
                "sched_setaffinity failed: {}",
                std::io::Error::last_os_error()
            ),
        })
    }
}

/// Checks that `pu` exists (`< configured`) and is in `allowed`.
fn check_pin_target(pu: usize, allowed: &[usize], configured: usize) -> Result<(), Error> {
    let allowed_text = format_list(allowed);
    if configured > 0 && pu >= configured {
        return Err(Error::Pin {
            pu,
            detail: format!(
                "no such CPU: this machine has {configured} CPU(s); allowed: {allowed_text}"
            ),
        });
    }
    if !allowed.contains(&pu) {
        return Err(Error::Pin {
            pu,
            detail: format!("not in this process's allowed CPUs ({allowed_text})"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_bits_become_cpu_numbers() {
        assert_eq!(mask_to_list(&[0b1011, 1]), vec![0, 1, 3, 64]);
        assert_eq!(mask_to_list(&[0]), Vec::<usize>::new());
    }

    #[test]
    fn pin_target_must_exist_and_be_allowed() {
        assert!(check_pin_target(1, &[0, 1], 2).is_ok());
        let err = check_pin_target(1, &[0], 2).unwrap_err();
        assert!(matches!(err, Error::Pin { pu: 1, .. }));
        assert!(err.to_string().contains("allowed CPUs (0)"), "{err}");
        let err = check_pin_target(4096, &[0, 1], 2).unwrap_err();
        assert!(err.to_string().contains("4096") && err.to_string().contains("no such CPU"));
    }

    #[test]
    fn unpin_restores_the_allowed_set() {
        let allowed = allowed_cpus();
        std::thread::spawn(move || {
            pin_current_thread(allowed[0]).unwrap();
            assert_eq!(current_thread_affinity().unwrap(), [allowed[0]]);
            unpin_current_thread().unwrap();
            assert_eq!(current_thread_affinity().unwrap(), allowed);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn this_process_has_allowed_cpus() {
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty());
        assert!(allowed.windows(2).all(|w| w[0] < w[1]));
        assert!(allowed.iter().all(|&cpu| cpu < configured_cpus()));
    }
}

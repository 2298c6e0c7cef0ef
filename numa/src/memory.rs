//! Memory bound to a NUMA node (Linux `mmap` + `mbind`).
//!
//! [`NodeMemory::map`] maps a span of anonymous, zero-filled pages, asks the
//! kernel to place them on one node only (`MPOL_BIND`), and unmaps them on
//! drop. The span is page-aligned and a whole number of pages long, which is
//! what a slab allocator wants to carve up.
//!
//! Pages are placed when first written, so [`node_of_address`] reports the
//! node of a page only after it has been written (see
//! [`NodeMemory::prefault`]).
//!
//! Node numbers here are the **kernel's** node numbers ([`Node::os_index`]),
//! validated against `/sys/devices/system/node/online`.
//!
//! # Kernels that refuse memory policies
//!
//! A kernel built without NUMA support answers `ENOSYS`, and container
//! seccomp profiles often answer `EPERM`. On a machine with a single online
//! node all memory is on node 0 anyway, so in that case `map(0, ..)` still
//! succeeds, unbound ([`NodeMemory::is_bound`] is `false`). With several
//! nodes it is an error.
//!
//! [`Node::os_index`]: crate::Node::os_index

use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::cpulist::{format_list, parse_list};
use crate::error::Error;

/// `mbind` flag: fail if existing pages do not follow the policy.
const MPOL_MF_STRICT: libc::c_uint = 1 << 0;
/// `get_mempolicy` flag: return a node number instead of a policy.
const MPOL_F_NODE: libc::c_ulong = 1 << 0;
/// `get_mempolicy` flag: look at the policy/page of an address.
const MPOL_F_ADDR: libc::c_ulong = 1 << 1;
/// Mode flags the kernel may OR into the mode `get_mempolicy` returns.
const MPOL_MODE_FLAGS: libc::c_int =
    libc::MPOL_F_STATIC_NODES | libc::MPOL_F_RELATIVE_NODES | libc::MPOL_F_NUMA_BALANCING;
/// Bits in one word of a kernel node mask.
const WORD_BITS: usize = libc::c_ulong::BITS as usize;
/// Size of the node mask read back by [`policy_of_address`] (nodes).
const POLICY_MASK_BITS: usize = 4096;
/// Where Linux lists the online NUMA nodes.
const SYSFS_ONLINE: &str = "/sys/devices/system/node/online";

/// The system page size in bytes.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it returns -1 on error.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|&s| s > 0)
            .unwrap_or(4096)
    })
}

/// The kernel's online NUMA nodes (ascending). `[0]` when sysfs does not
/// say (non-NUMA kernel).
pub fn online_nodes() -> Vec<usize> {
    static ONLINE: OnceLock<Vec<usize>> = OnceLock::new();
    ONLINE
        .get_or_init(|| {
            std::fs::read_to_string(SYSFS_ONLINE)
                .ok()
                .and_then(|text| parse_list(&text).ok())
                .filter(|nodes| !nodes.is_empty())
                .unwrap_or_else(|| vec![0])
        })
        .clone()
}

/// A span of pages bound to one NUMA node; unmapped on drop.
#[derive(Debug)]
pub struct NodeMemory {
    ptr: NonNull<u8>,
    len: usize,
    node: usize,
    bound: bool,
}

// SAFETY: NodeMemory exclusively owns its mapping (no other handle to it
// exists); moving the owner to another thread is as safe as moving a Vec.
unsafe impl Send for NodeMemory {}
// SAFETY: through `&NodeMemory` the bytes can only be read (`as_slice`) or a
// raw pointer obtained, whose writes are the caller's unsafe responsibility.
unsafe impl Sync for NodeMemory {}

impl NodeMemory {
    /// Maps at least `bytes` bytes (rounded up to whole pages) of zero-filled
    /// memory bound to kernel node `node`.
    ///
    /// # Errors
    ///
    /// * [`Error::NodeOutOfRange`] if `node` is not an online node;
    /// * [`Error::Memory`] if `bytes` is 0 or too large, or `mmap`/`mbind`
    ///   fail (see the [module documentation](self) for refused policies).
    pub fn map(node: usize, bytes: usize) -> Result<Self, Error> {
        let online = online_nodes();
        if !online.contains(&node) {
            return Err(Error::NodeOutOfRange {
                node,
                available: format_list(&online),
            });
        }
        let len = round_to_pages(bytes).ok_or_else(|| Error::Memory {
            detail: format!("cannot map {bytes} bytes on node {node}: size must be 1..isize::MAX"),
        })?;
        let ptr = map_anonymous(len).map_err(|e| Error::Memory {
            detail: format!("mmap of {len} bytes for node {node} failed: {e}"),
        })?;
        let mut memory = Self {
            ptr,
            len,
            node,
            bound: true,
        };
        match bind(ptr, len, node) {
            Ok(()) => Ok(memory),
            Err(e) if policy_refused(&e) && online == [0] => {
                memory.bound = false;
                Ok(memory)
            }
            Err(e) => Err(Error::Memory {
                detail: format!("mbind of {len} bytes to node {node} failed: {e}"),
            }),
        }
    }

    /// Start of the span (page-aligned). Writing through it needs `&mut`
    /// access to be data-race free, like any raw pointer.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (a multiple of [`page_size`]).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kernel node the span was bound to.
    pub fn node(&self) -> usize {
        self.node
    }

    /// Whether the kernel accepted the binding (false only in the refused
    /// single-node case described in the module documentation).
    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// The bytes (zero until written).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is a live, readable mapping owned by self and
        // initialised (anonymous mappings are zero-filled); `&self` keeps it
        // mapped and excludes `as_mut_slice` for the slice's lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Touches every page (writing back its first byte) so that all pages
    /// are allocated now, on the bound node, instead of at first use.
    pub fn prefault(&mut self) {
        let page = page_size();
        let base = self.ptr.as_ptr();
        for offset in (0..self.len).step_by(page) {
            // SAFETY: offset < len, so base+offset is inside the owned,
            // writable mapping; `&mut self` rules out concurrent access.
            // Volatile so the write-back of the same value is not elided.
            unsafe {
                let byte = base.add(offset);
                byte.write_volatile(byte.read_volatile());
            }
        }
    }
}

impl Drop for NodeMemory {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe exactly the mapping created in `map`, owned
        // by self and not used after this point.
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap failed: {}", std::io::Error::last_os_error());
    }
}

/// `bytes` rounded up to whole pages; `None` for 0 or overflow.
fn round_to_pages(bytes: usize) -> Option<usize> {
    let page = page_size();
    let len = bytes.checked_add(page - 1)? / page * page;
    (len > 0 && isize::try_from(len).is_ok()).then_some(len)
}

/// A fresh private anonymous read/write mapping of `len` bytes.
fn map_anonymous(len: usize) -> std::io::Result<NonNull<u8>> {
    // SAFETY: a new anonymous mapping at an address of the kernel's choice
    // touches no existing memory; the result is checked before use.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    NonNull::new(addr.cast::<u8>()).ok_or_else(|| std::io::Error::other("mmap returned null"))
}

/// `mbind(ptr, len, MPOL_BIND, {node}, MPOL_MF_STRICT)`.
fn bind(ptr: NonNull<u8>, len: usize, node: usize) -> std::io::Result<()> {
    let mut mask = vec![0 as libc::c_ulong; node / WORD_BITS + 1];
    mask[node / WORD_BITS] |= 1 << (node % WORD_BITS);
    // The kernel reads maxnode - 1 bits.
    let maxnode = mask.len() * WORD_BITS + 1;
    // SAFETY: ptr/len is a mapping we own; `mask` holds `maxnode - 1` bits
    // and is only read by the kernel; all arguments are passed as the
    // word-sized integers/pointers the syscall expects.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            ptr.as_ptr().cast::<libc::c_void>(),
            len as libc::c_ulong,
            libc::MPOL_BIND as libc::c_ulong,
            mask.as_ptr(),
            maxnode as libc::c_ulong,
            libc::c_ulong::from(MPOL_MF_STRICT),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether the kernel refused memory policies altogether (no NUMA support,
/// or forbidden by seccomp) rather than rejecting this request.
fn policy_refused(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
}

/// The NUMA node (kernel number) holding the page at `ptr`, through
/// `get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)`.
///
/// Write to the page first: an anonymous page never written may be backed
/// by the shared zero page and report that page's node. `ptr` is not
/// dereferenced by this function; the kernel checks it.
///
/// # Errors
///
/// [`Error::Memory`] naming the address if it is not mapped or the kernel
/// refuses the call.
pub fn node_of_address(ptr: *const u8) -> Result<usize, Error> {
    let mut node: libc::c_int = -1;
    // SAFETY: `node` is a valid out-pointer; with a null node mask the kernel
    // writes nothing else; `ptr` is only looked up by the kernel, which
    // reports EFAULT for an unmapped address.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            std::ptr::addr_of_mut!(node),
            std::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            ptr as libc::c_ulong,
            MPOL_F_NODE | MPOL_F_ADDR,
        )
    };
    if rc != 0 {
        return Err(Error::Memory {
            detail: format!(
                "get_mempolicy(node of {ptr:p}) failed: {}",
                std::io::Error::last_os_error()
            ),
        });
    }
    usize::try_from(node).map_err(|_| Error::Memory {
        detail: format!("get_mempolicy(node of {ptr:p}) returned node {node}"),
    })
}

/// A memory policy mode, as `set_mempolicy(2)` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyMode {
    /// `MPOL_DEFAULT`: the process/system default (local allocation).
    Default,
    /// `MPOL_PREFERRED`.
    Preferred,
    /// `MPOL_BIND`: only the given nodes.
    Bind,
    /// `MPOL_INTERLEAVE`.
    Interleave,
    /// `MPOL_LOCAL`.
    Local,
    /// A mode this crate does not name (the raw value).
    Other(i32),
}

/// The memory policy governing an address range.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemPolicy {
    /// The mode.
    pub mode: PolicyMode,
    /// The nodes (kernel numbers) of the policy's node mask.
    pub nodes: Vec<usize>,
}

/// The memory policy of the mapping containing `ptr`, through
/// `get_mempolicy(MPOL_F_ADDR)`. A [`NodeMemory`] that [is
/// bound](NodeMemory::is_bound) reports [`PolicyMode::Bind`] with its node.
///
/// # Errors
///
/// [`Error::Memory`] naming the address if it is not mapped or the kernel
/// refuses the call.
pub fn policy_of_address(ptr: *const u8) -> Result<MemPolicy, Error> {
    let mut mode: libc::c_int = 0;
    let mut mask = vec![0 as libc::c_ulong; POLICY_MASK_BITS / WORD_BITS];
    // SAFETY: `mode` is a valid out-pointer and `mask` a writable buffer of
    // POLICY_MASK_BITS bits, the maxnode passed; the kernel writes at most
    // that. `ptr` is only looked up by the kernel (EFAULT if unmapped).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            std::ptr::addr_of_mut!(mode),
            mask.as_mut_ptr(),
            POLICY_MASK_BITS as libc::c_ulong,
            ptr as libc::c_ulong,
            MPOL_F_ADDR,
        )
    };
    if rc != 0 {
        return Err(Error::Memory {
            detail: format!(
                "get_mempolicy(policy of {ptr:p}) failed: {}",
                std::io::Error::last_os_error()
            ),
        });
    }
    let nodes = (0..POLICY_MASK_BITS)
        .filter(|&n| mask[n / WORD_BITS] & (1 << (n % WORD_BITS)) != 0)
        .collect();
    Ok(MemPolicy {
        mode: policy_mode(mode & !MPOL_MODE_FLAGS),
        nodes,
    })
}

fn policy_mode(raw: libc::c_int) -> PolicyMode {
    match raw {
        libc::MPOL_DEFAULT => PolicyMode::Default,
        libc::MPOL_PREFERRED => PolicyMode::Preferred,
        libc::MPOL_BIND => PolicyMode::Bind,
        libc::MPOL_INTERLEAVE => PolicyMode::Interleave,
        libc::MPOL_LOCAL => PolicyMode::Local,
        other => PolicyMode::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_pages() {
        let page = page_size();
        assert!(page.is_power_of_two());
        assert_eq!(round_to_pages(1), Some(page));
        assert_eq!(round_to_pages(page), Some(page));
        assert_eq!(round_to_pages(page + 1), Some(2 * page));
        assert_eq!(round_to_pages(0), None);
        assert_eq!(round_to_pages(usize::MAX), None);
    }

    #[test]
    fn modes_strip_flags() {
        assert_eq!(policy_mode(libc::MPOL_BIND), PolicyMode::Bind);
        assert_eq!(
            policy_mode((libc::MPOL_BIND | libc::MPOL_F_STATIC_NODES) & !MPOL_MODE_FLAGS),
            PolicyMode::Bind
        );
        assert_eq!(policy_mode(42), PolicyMode::Other(42));
    }

    #[test]
    fn online_nodes_include_node_zero_or_some_node() {
        let nodes = online_nodes();
        assert!(!nodes.is_empty());
        assert!(nodes.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn zero_and_huge_sizes_are_errors() {
        let node = online_nodes()[0];
        for bytes in [0, usize::MAX] {
            let err = NodeMemory::map(node, bytes).unwrap_err();
            assert!(matches!(err, Error::Memory { .. }));
            assert!(err.to_string().contains(&bytes.to_string()), "{err}");
        }
    }
}

//! Machine topology for the gpm runtime: what the scheduler and the slab
//! caches need to know about the machine.
//!
//! # Design
//!
//! * **One model, three sources.** [`Topology::detect`] (this machine,
//!   through hwloc), [`Topology::from_synthetic`] (hwloc's synthetic syntax,
//!   e.g. `"pack:2 numa:2 l3:2 core:4 pu:2"`) and
//!   [`Topology::from_xml_file`] / [`Topology::from_xml_str`] all produce the
//!   same plain model: PUs by OS index, cores, last-level-cache (L3)
//!   domains, NUMA nodes with their PUs and memory, packages, and an n x n
//!   NUMA distance matrix. So everything that works on this one-node machine
//!   is also testable on descriptions of big ones
//!   (see `numa/topologies/`).
//! * **Extracted once.** hwloc is walked once, when the topology is built;
//!   queries ([`Topology::node_of`], [`Topology::l3_of`],
//!   [`Topology::shares_l3`], [`Topology::distance`],
//!   [`Topology::pus_of_node`]) are index lookups on owned vectors and the
//!   type is `Send + Sync`. Queries taking a PU or node return
//!   [`Error::PuOutOfRange`] / [`Error::NodeOutOfRange`] instead of
//!   panicking.
//! * **Distances** are hwloc's NUMA latency matrix; when the topology has
//!   none, `/sys/devices/system/node/nodeN/distance` on the real machine,
//!   else the default [`LOCAL_DISTANCE`] (10) / [`SAME_PACKAGE_DISTANCE`]
//!   (20) / [`OTHER_PACKAGE_DISTANCE`] (32). [`Topology::distance_source`]
//!   says which.
//! * **L3 fallback.** Machines or VMs without L3 objects get the outermost
//!   shared cache, else the package, else the machine as their "L3"
//!   domains; [`Topology::cache_level`] says which ([`CacheLevel`]).
//! * **Placement.** [`Placement`] maps P (worker) indices to PUs: compact,
//!   scatter over nodes, an explicit CPU list, or one node; wraps around
//!   when there are more Ps than PUs.
//! * **The real machine only.** Pinning ([`pin_current_thread`]) and
//!   node-bound memory ([`NodeMemory`]) talk to the Linux kernel directly:
//!   hwloc binding does nothing through synthetic or XML topologies.
//!
//! Linux only (affinity and memory policies are Linux system calls).
//!
//! Everything is re-exported at the crate root; the modules hold the
//! detailed documentation ([`topology`], [`placement`], [`affinity`],
//! [`memory`]).
//!
//! # Environment
//!
//! hwloc's `HWLOC_XMLFILE` and `HWLOC_SYNTHETIC` silently replace what
//! [`Topology::detect`] loads; [`Topology::is_this_system`] is then false.
//!
//! # Example
//!
//! ```
//! use gpm_numa::{Placement, Topology};
//!
//! let topo = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2")?;
//! assert_eq!((topo.num_nodes(), topo.num_l3(), topo.num_pus()), (4, 8, 64));
//! assert_eq!(topo.distance(0, 1)?, 20); // same package, default matrix
//! assert_eq!(topo.distance(0, 2)?, 32); // other package
//! let ps = Placement::ScatterNodes.assign(&topo, 4)?;
//! let nodes: Vec<usize> = ps.iter().map(|&pu| topo.node_of(pu)).collect::<Result<_, _>>()?;
//! assert_eq!(nodes, [0, 1, 2, 3]);
//! # Ok::<(), gpm_numa::Error>(())
//! ```

pub mod affinity;
mod cpulist;
mod distances;
mod error;
mod extract;
pub mod memory;
pub mod placement;
pub mod topology;

pub use affinity::{
    allowed_cpus, current_thread_affinity, pin_current_thread, unpin_current_thread,
};
pub use cpulist::{format_list, parse_list};
pub use error::Error;
pub use memory::{
    node_of_address, online_nodes, page_size, policy_of_address, MemPolicy, NodeMemory, PolicyMode,
};
pub use placement::Placement;
pub use topology::{
    CacheDomain, CacheLevel, Core, DistanceSource, Node, Pu, Source, Topology, LOCAL_DISTANCE,
    OTHER_PACKAGE_DISTANCE, SAME_PACKAGE_DISTANCE,
};

//! The machine model and its queries.
//!
//! A [`Topology`] is extracted from hwloc once, when it is built, into plain
//! owned vectors; every query afterwards is an index into those vectors, so
//! queries are cheap and the type is `Send + Sync`. The hwloc topology itself
//! is kept (behind an `Arc`) only so that [`Topology::export_xml`] can hand
//! the exact hwloc view back out.
//!
//! # Identifiers
//!
//! * **PUs** (hardware threads) are named by their **OS index**, the number
//!   Linux uses (`/proc/cpuinfo`, `taskset`). OS indices may be sparse.
//! * **Cores, L3 domains, NUMA nodes and packages** are named by a **dense
//!   index** `0..count`, in hwloc's logical (tree) order. For NUMA nodes the
//!   kernel's own number is kept in [`Node::os_index`]; on almost every
//!   machine the two are equal.
//!
//! # Invariants (established by the extraction, relied on by the queries)
//!
//! * There is at least one PU and at least one NUMA node.
//! * Every PU belongs to exactly one core, one L3 domain, one node and one
//!   package; the index vectors agree with the `pus` lists of those objects.
//! * `distances.len() == nodes.len()²`, row-major.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hwlocality::topology::builder::StringInputError;
use hwlocality::topology::export::xml::XMLExportFlags;

use crate::cpulist::format_list;
use crate::error::{excerpt, Error};
use crate::extract;

/// One processing unit (hardware thread).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pu {
    /// The OS index (the number Linux uses for this CPU).
    pub os: usize,
    /// Dense index of its core in [`Topology::cores`].
    pub core: usize,
    /// Dense index of its L3 domain in [`Topology::l3_domains`].
    pub l3: usize,
    /// Dense index of its NUMA node in [`Topology::nodes`].
    pub node: usize,
    /// Dense index of its package (socket).
    pub package: usize,
}

/// One physical core and its hardware threads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Core {
    /// OS indices of its PUs, in hwloc's logical order (first thread first).
    pub pus: Vec<usize>,
}

/// A last-level-cache domain: the PUs that share one L3 (or its fallback,
/// see [`CacheLevel`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheDomain {
    /// OS indices of its PUs, ascending.
    pub pus: Vec<usize>,
    /// The cache size when hwloc knows it (`None` for package/machine
    /// fallbacks).
    pub size_bytes: Option<u64>,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// The kernel's number for this node (what `mbind` and `numactl` use).
    pub os_index: usize,
    /// OS indices of the PUs local to this node, ascending. Empty for a
    /// memory-only node.
    pub pus: Vec<usize>,
    /// Memory attached to the node, in bytes (0 when unknown).
    pub memory_bytes: u64,
    /// Dense index of the package the node belongs to, when it lies inside one.
    pub package: Option<usize>,
}

/// Which cache level [`Topology::l3_domains`] actually describes.
///
/// The domains are L3 caches when the topology has any. Some machines and
/// VMs report none; then the domains fall back, in order, to the outermost
/// *shared* cache level (L2, then L1: a level is shared when it has fewer
/// caches than there are cores), else the package, else the whole machine.
/// A PU that has no ancestor of the chosen kind gets a domain of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheLevel {
    /// Real L3 caches.
    L3,
    /// No L3: shared L2 caches.
    L2,
    /// No L3 or shared L2: shared L1 data caches.
    L1,
    /// No shared cache: one domain per package.
    Package,
    /// Not even packages: one domain for the whole machine.
    Machine,
}

/// Where the NUMA distance matrix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DistanceSource {
    /// hwloc's NUMA latency matrix (from the OS, or stored in the XML).
    Hwloc,
    /// `/sys/devices/system/node/nodeN/distance` (real machine only, when
    /// hwloc reported none).
    Sysfs,
    /// The documented default: [`LOCAL_DISTANCE`], [`SAME_PACKAGE_DISTANCE`],
    /// [`OTHER_PACKAGE_DISTANCE`].
    Default,
}

/// Default distance of a node to itself (the ACPI SLIT convention).
pub const LOCAL_DISTANCE: u32 = 10;
/// Default distance between two nodes of the same package (or when the
/// package of either is unknown).
pub const SAME_PACKAGE_DISTANCE: u32 = 20;
/// Default distance between nodes of different packages.
pub const OTHER_PACKAGE_DISTANCE: u32 = 32;

/// What a [`Topology`] was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// [`Topology::detect`]: this machine, as hwloc sees it.
    Detected,
    /// [`Topology::from_synthetic`], with the description.
    Synthetic(String),
    /// [`Topology::from_xml_file`], with the path.
    XmlFile(PathBuf),
    /// [`Topology::from_xml_str`].
    XmlString,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detected => write!(f, "this machine"),
            Self::Synthetic(desc) => write!(f, "synthetic {desc:?}"),
            Self::XmlFile(path) => write!(f, "XML file {}", path.display()),
            Self::XmlString => write!(f, "XML string"),
        }
    }
}

/// The machine model: PUs, cores, L3 domains, NUMA nodes, packages and the
/// NUMA distance matrix. See the [module documentation](self) for the
/// identifier conventions and invariants.
///
/// Equality (`==`) compares the model only (the PUs, cores, caches, nodes,
/// memory sizes, package count and distance values), not where it came from
/// nor which [`DistanceSource`] produced the distances.
#[derive(Clone)]
pub struct Topology {
    pub(crate) pus: Vec<Pu>,
    /// `pu_slot[os]` is the position of PU `os` in `pus`.
    pub(crate) pu_slot: Vec<Option<usize>>,
    pub(crate) cores: Vec<Core>,
    pub(crate) l3: Vec<CacheDomain>,
    pub(crate) cache_level: CacheLevel,
    pub(crate) nodes: Vec<Node>,
    pub(crate) packages: usize,
    pub(crate) distances: Vec<u32>,
    pub(crate) distance_source: DistanceSource,
    pub(crate) is_this_system: bool,
    pub(crate) source: Source,
    pub(crate) hwloc: Arc<hwlocality::Topology>,
}

impl Topology {
    /// Detects this machine through hwloc.
    ///
    /// hwloc honours the environment variables `HWLOC_XMLFILE` and
    /// `HWLOC_SYNTHETIC`: when one is set, *it* is loaded instead of the real
    /// machine ([`Topology::is_this_system`] is then `false`). Unset them to
    /// see the real machine.
    ///
    /// # Errors
    ///
    /// [`Error::Detect`] when hwloc fails or reports no PU.
    pub fn detect() -> Result<Self, Error> {
        let hw = hwlocality::Topology::new().map_err(|e| Error::Detect {
            detail: e.to_string(),
        })?;
        extract::build(hw, Source::Detected).map_err(|detail| Error::Detect { detail })
    }

    /// Builds a topology from hwloc's synthetic description syntax, e.g.
    /// `"pack:2 numa:2 l3:2 core:4 pu:2"`
    /// (<https://hwloc.readthedocs.io/en/stable/synthetic.html>).
    ///
    /// Synthetic descriptions carry no distances: the default matrix is used
    /// (see [`DistanceSource::Default`]).
    ///
    /// # Errors
    ///
    /// [`Error::Synthetic`] naming `description` when hwloc rejects it.
    pub fn from_synthetic(description: &str) -> Result<Self, Error> {
        let fail = |detail: String| Error::Synthetic {
            input: description.to_string(),
            detail,
        };
        let hw = hwlocality::Topology::builder()
            .from_synthetic(description)
            .map_err(|e| fail(rejected(e, SYNTHETIC_HELP)))?
            .build()
            .map_err(|e| fail(format!("hwloc could not build it ({e})")))?;
        extract::build(hw, Source::Synthetic(description.to_string())).map_err(fail)
    }

    /// Loads a topology from an hwloc XML file (as written by
    /// `lstopo file.xml` or [`Topology::export_xml`]).
    ///
    /// # Errors
    ///
    /// [`Error::XmlFile`] naming `path` when the file cannot be read or is not
    /// a valid hwloc topology.
    pub fn from_xml_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let fail = |detail: String| Error::XmlFile {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        load_xml(&text, Source::XmlFile(path.to_path_buf())).map_err(fail)
    }

    /// Loads a topology from hwloc XML text.
    ///
    /// # Errors
    ///
    /// [`Error::XmlParse`], quoting the start of `xml`, when it is not a valid
    /// hwloc topology.
    pub fn from_xml_str(xml: &str) -> Result<Self, Error> {
        load_xml(xml, Source::XmlString).map_err(|detail| Error::XmlParse {
            excerpt: excerpt(xml, 60),
            detail: format!("{detail} ({} bytes)", xml.len()),
        })
    }

    /// Exports the topology as hwloc XML; [`Topology::from_xml_str`] on the
    /// result gives back an equal model.
    ///
    /// When the distances did not come from hwloc (sysfs or default), they
    /// were added to the hwloc topology as an unnamed user-provided latency
    /// matrix when the model was built (two or more nodes only), so the XML
    /// carries exactly the distances this model uses.
    ///
    /// # Errors
    ///
    /// [`Error::Export`] if hwloc fails to export.
    pub fn export_xml(&self) -> Result<String, Error> {
        self.hwloc
            .export_xml(XMLExportFlags::empty())
            .map(|xml| xml.as_str().to_owned())
            .map_err(|e| Error::Export {
                detail: e.to_string(),
            })
    }

    /// What the topology was built from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Whether the topology describes the machine this process runs on
    /// (false for synthetic and XML topologies, and for `detect()` when
    /// `HWLOC_XMLFILE` / `HWLOC_SYNTHETIC` redirect it).
    pub fn is_this_system(&self) -> bool {
        self.is_this_system
    }

    /// All PUs, ascending by OS index.
    pub fn pus(&self) -> &[Pu] {
        &self.pus
    }

    /// OS indices of all PUs, ascending.
    pub fn pu_ids(&self) -> Vec<usize> {
        self.pus.iter().map(|p| p.os).collect()
    }

    /// All cores, in hwloc's logical order.
    pub fn cores(&self) -> &[Core] {
        &self.cores
    }

    /// All last-level-cache domains, in hwloc's logical order. See
    /// [`Topology::cache_level`] for what they are when there is no L3.
    pub fn l3_domains(&self) -> &[CacheDomain] {
        &self.l3
    }

    /// Which cache level the domains of [`Topology::l3_domains`] are.
    pub fn cache_level(&self) -> CacheLevel {
        self.cache_level
    }

    /// All NUMA nodes, in hwloc's logical order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of PUs.
    pub fn num_pus(&self) -> usize {
        self.pus.len()
    }

    /// Number of cores.
    pub fn num_cores(&self) -> usize {
        self.cores.len()
    }

    /// Number of L3 domains.
    pub fn num_l3(&self) -> usize {
        self.l3.len()
    }

    /// Number of NUMA nodes.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Number of packages (sockets); 1 when the topology names none.
    pub fn num_packages(&self) -> usize {
        self.packages
    }

    /// The PU with OS index `pu`.
    ///
    /// # Errors
    ///
    /// [`Error::PuOutOfRange`] when the topology has no such PU.
    pub fn pu(&self, pu: usize) -> Result<&Pu, Error> {
        self.pu_slot
            .get(pu)
            .copied()
            .flatten()
            .map(|slot| &self.pus[slot])
            .ok_or_else(|| Error::PuOutOfRange {
                pu,
                available: format_list(&self.pu_ids()),
            })
    }

    /// Whether the topology has a PU with OS index `pu`.
    pub fn has_pu(&self, pu: usize) -> bool {
        self.pu(pu).is_ok()
    }

    /// The NUMA node (dense index) that PU `pu` is local to.
    ///
    /// # Errors
    ///
    /// [`Error::PuOutOfRange`] when the topology has no such PU.
    pub fn node_of(&self, pu: usize) -> Result<usize, Error> {
        self.pu(pu).map(|p| p.node)
    }

    /// The L3 domain (dense index) of PU `pu`.
    ///
    /// # Errors
    ///
    /// [`Error::PuOutOfRange`] when the topology has no such PU.
    pub fn l3_of(&self, pu: usize) -> Result<usize, Error> {
        self.pu(pu).map(|p| p.l3)
    }

    /// The core (dense index) of PU `pu`.
    ///
    /// # Errors
    ///
    /// [`Error::PuOutOfRange`] when the topology has no such PU.
    pub fn core_of(&self, pu: usize) -> Result<usize, Error> {
        self.pu(pu).map(|p| p.core)
    }

    /// The package (dense index) of PU `pu`.
    ///
    /// # Errors
    ///
    /// [`Error::PuOutOfRange`] when the topology has no such PU.
    pub fn package_of(&self, pu: usize) -> Result<usize, Error> {
        self.pu(pu).map(|p| p.package)
    }

    /// Whether PUs `a` and `b` share an L3 domain.
    ///
    /// # Errors
    ///
    /// [`Error::PuOutOfRange`] naming whichever PU the topology lacks.
    pub fn shares_l3(&self, a: usize, b: usize) -> Result<bool, Error> {
        Ok(self.l3_of(a)? == self.l3_of(b)?)
    }

    /// The NUMA distance from node `a` to node `b` (dense indices); smaller
    /// is closer, [`LOCAL_DISTANCE`]-like values on the diagonal.
    ///
    /// # Errors
    ///
    /// [`Error::NodeOutOfRange`] naming whichever node does not exist.
    pub fn distance(&self, a: usize, b: usize) -> Result<u32, Error> {
        self.check_node(a)?;
        self.check_node(b)?;
        Ok(self.distances[a * self.nodes.len() + b])
    }

    /// The whole distance matrix, row-major, `num_nodes()²` entries.
    pub fn distances(&self) -> &[u32] {
        &self.distances
    }

    /// Where the distance matrix came from.
    pub fn distance_source(&self) -> DistanceSource {
        self.distance_source
    }

    /// OS indices of the PUs local to node `node` (dense index), ascending.
    ///
    /// # Errors
    ///
    /// [`Error::NodeOutOfRange`] when the node does not exist.
    pub fn pus_of_node(&self, node: usize) -> Result<&[usize], Error> {
        self.check_node(node)?;
        Ok(&self.nodes[node].pus)
    }

    /// All PUs in *compact* order: hwloc's logical order, one PU per core
    /// first (the first thread of every core), then the second thread of
    /// every core, and so on. Consecutive entries are as close as possible
    /// (same core group, same L3, same node) while SMT siblings are used last.
    pub fn compact_order(&self) -> Vec<usize> {
        let max_threads = self.cores.iter().map(|c| c.pus.len()).max().unwrap_or(0);
        (0..max_threads)
            .flat_map(|t| self.cores.iter().filter_map(move |c| c.pus.get(t).copied()))
            .collect()
    }

    fn check_node(&self, node: usize) -> Result<(), Error> {
        if node < self.nodes.len() {
            Ok(())
        } else {
            Err(Error::NodeOutOfRange {
                node,
                available: format_list(&(0..self.nodes.len()).collect::<Vec<_>>()),
            })
        }
    }
}

/// Parses XML text through hwloc; returns hwloc's complaint on failure.
fn load_xml(text: &str, source: Source) -> Result<Topology, String> {
    let hw = hwlocality::Topology::builder()
        .from_xml(text)
        .map_err(|e| rejected(e, "not a valid hwloc topology XML document"))?
        .build()
        .map_err(|e| format!("hwloc could not load it as a topology ({e})"))?;
    extract::build(hw, source)
}

/// How to read the syntax of synthetic descriptions.
const SYNTHETIC_HELP: &str =
    "hwloc rejected it (syntax: https://hwloc.readthedocs.io/en/stable/synthetic.html)";

/// A readable reason for hwloc refusing an input string: `invalid` when
/// hwloc rejected its content, else hwlocality's own message (NUL chars).
fn rejected(err: StringInputError, invalid: &str) -> String {
    match err {
        StringInputError::Invalid => invalid.to_string(),
        other => other.to_string(),
    }
}

impl PartialEq for Topology {
    fn eq(&self, other: &Self) -> bool {
        self.pus == other.pus
            && self.cores == other.cores
            && self.l3 == other.l3
            && self.cache_level == other.cache_level
            && self.nodes == other.nodes
            && self.packages == other.packages
            && self.distances == other.distances
    }
}

impl Eq for Topology {}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("source", &self.source)
            .field("pus", &format_list(&self.pu_ids()))
            .field("cores", &self.cores.len())
            .field("cache_level", &self.cache_level)
            .field("l3_domains", &self.l3.len())
            .field("nodes", &self.nodes.len())
            .field("packages", &self.packages)
            .field("distances", &self.distances)
            .field("distance_source", &self.distance_source)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Topology>();
    }

    #[test]
    fn equality_ignores_the_source() {
        let a = Topology::from_synthetic("pack:2 core:2 pu:2").unwrap();
        let b = Topology::from_xml_str(&a.export_xml().unwrap()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.source(), b.source());
        let c = Topology::from_synthetic("pack:2 core:2 pu:1").unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn compact_order_puts_siblings_last() {
        let t = Topology::from_synthetic("pack:1 core:3 pu:2").unwrap();
        assert_eq!(t.compact_order(), [0, 2, 4, 1, 3, 5]);
    }
}

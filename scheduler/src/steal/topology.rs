//! What a thief needs to know about where the Ps sit: per P its PU, L3 domain and NUMA node,
//! and the node distance matrix, extracted once from a [`gpm_numa::Topology`] and a
//! placement (P -> PU).

use gpm_numa::Topology;
use std::fmt;

/// How a victim relates to its thief in the machine. Counters and the simulator's cost model
/// are kept per relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// Both Ps sit in the same L3 domain (or on the same PU, when the placement wraps).
    SameL3,
    /// Same NUMA node, different L3 domains.
    SameNode,
    /// Different NUMA nodes.
    OtherNode,
}

impl Relation {
    /// All relations, closest first.
    pub const ALL: [Relation; 3] = [Relation::SameL3, Relation::SameNode, Relation::OtherNode];

    /// Position in [`Relation::ALL`], for per-relation arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Relation::SameL3 => "same L3",
            Relation::SameNode => "same node",
            Relation::OtherNode => "other node",
        })
    }
}

/// Where each P sits: PU, L3 domain, NUMA node, plus the distances between the nodes used.
///
/// Invariant: `pus`, `l3` and `nodes` have one entry per P; `distances` is
/// `num_nodes * num_nodes` (dense node indices of the source topology), and
/// `min_distance <= max_distance` are taken over the pairs of nodes that hold Ps.
#[derive(Debug, Clone, PartialEq)]
pub struct StealTopology {
    pus: Vec<usize>,
    l3: Vec<usize>,
    nodes: Vec<usize>,
    num_nodes: usize,
    distances: Vec<u32>,
    min_distance: u32,
    max_distance: u32,
}

impl StealTopology {
    /// `processors` Ps on one L3 domain of one node (the model used when the machine's
    /// topology is unknown): every policy then degenerates to random-start order.
    ///
    /// # Panics
    /// If `processors` is zero.
    pub fn flat(processors: usize) -> StealTopology {
        assert!(processors > 0, "a StealTopology needs at least one P");
        StealTopology {
            pus: (0..processors).collect(),
            l3: vec![0; processors],
            nodes: vec![0; processors],
            num_nodes: 1,
            distances: vec![gpm_numa::LOCAL_DISTANCE],
            min_distance: gpm_numa::LOCAL_DISTANCE,
            max_distance: gpm_numa::LOCAL_DISTANCE,
        }
    }

    /// The Ps of `pus` (P `i` on PU `pus[i]`, OS index) on `topology`.
    ///
    /// # Errors
    /// [`gpm_numa::Error::PuOutOfRange`] for a PU the topology lacks,
    /// [`gpm_numa::Error::EmptyCpuList`] when `pus` is empty.
    pub fn from_topology(
        topology: &Topology,
        pus: &[usize],
    ) -> Result<StealTopology, gpm_numa::Error> {
        if pus.is_empty() {
            return Err(gpm_numa::Error::EmptyCpuList);
        }
        let l3 = pus
            .iter()
            .map(|&pu| topology.l3_of(pu))
            .collect::<Result<Vec<_>, _>>()?;
        let nodes = pus
            .iter()
            .map(|&pu| topology.node_of(pu))
            .collect::<Result<Vec<_>, _>>()?;
        let num_nodes = topology.num_nodes();
        let distances = topology.distances().to_vec();
        let used = |a: usize, b: usize| distances[a * num_nodes + b];
        let pairs = nodes
            .iter()
            .flat_map(|&a| nodes.iter().map(move |&b| (a, b)));
        let (min_distance, max_distance) = pairs
            .map(|(a, b)| used(a, b))
            .fold((u32::MAX, 0), |(lo, hi), d| (lo.min(d), hi.max(d)));
        Ok(StealTopology {
            pus: pus.to_vec(),
            l3,
            nodes,
            num_nodes,
            distances,
            min_distance,
            max_distance,
        })
    }

    /// Number of Ps.
    pub fn num_processors(&self) -> usize {
        self.pus.len()
    }

    /// The PU (OS index) of P `p`.
    pub fn pu(&self, p: usize) -> usize {
        self.pus[p]
    }

    /// The L3 domain (dense index) of P `p`.
    pub fn l3(&self, p: usize) -> usize {
        self.l3[p]
    }

    /// The NUMA node (dense index) of P `p`.
    pub fn node(&self, p: usize) -> usize {
        self.nodes[p]
    }

    /// The NUMA distance between the nodes of Ps `a` and `b`.
    pub fn distance(&self, a: usize, b: usize) -> u32 {
        self.distances[self.nodes[a] * self.num_nodes + self.nodes[b]]
    }

    /// The distance between Ps `a` and `b` scaled to `0.0..=1.0` over the distances that
    /// occur between the Ps' nodes: 0 for the closest pair (normally a node to itself), 1
    /// for the farthest. 0 when all Ps are equally far apart (one node).
    pub fn normalised_distance(&self, a: usize, b: usize) -> f64 {
        let span = self.max_distance - self.min_distance;
        if span == 0 {
            return 0.0;
        }
        f64::from(self.distance(a, b) - self.min_distance) / f64::from(span)
    }

    /// How victim `victim` relates to `thief`.
    pub fn relation(&self, thief: usize, victim: usize) -> Relation {
        if self.l3[thief] == self.l3[victim] && self.nodes[thief] == self.nodes[victim] {
            Relation::SameL3
        } else if self.nodes[thief] == self.nodes[victim] {
            Relation::SameNode
        } else {
            Relation::OtherNode
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_topology_is_all_same_l3() {
        let topo = StealTopology::flat(3);
        assert_eq!(topo.relation(0, 2), Relation::SameL3);
        assert_eq!(topo.normalised_distance(0, 2), 0.0);
    }

    #[test]
    fn relations_and_distances_on_a_synthetic_machine() {
        let machine = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap();
        // Compact placement of 32 Ps: PUs of the first thread of each core, i.e. cores in
        // logical order; 4 cores per L3, 2 L3 per node, 2 nodes per package.
        let pus = gpm_numa::Placement::Compact.assign(&machine, 32).unwrap();
        let topo = StealTopology::from_topology(&machine, &pus).unwrap();
        assert_eq!(topo.relation(0, 3), Relation::SameL3);
        assert_eq!(topo.relation(0, 4), Relation::SameNode);
        assert_eq!(topo.relation(0, 8), Relation::OtherNode);
        // Default matrix 10 / 20 / 32: normalised 0, 10/22, 1.
        assert_eq!(topo.normalised_distance(0, 1), 0.0);
        assert!((topo.normalised_distance(0, 8) - 10.0 / 22.0).abs() < 1e-12);
        assert_eq!(topo.normalised_distance(0, 16), 1.0);
    }

    #[test]
    fn unknown_pu_is_an_error() {
        let machine = Topology::from_synthetic("pack:1 core:2 pu:1").unwrap();
        let err = StealTopology::from_topology(&machine, &[0, 7]).unwrap_err();
        assert!(matches!(err, gpm_numa::Error::PuOutOfRange { pu: 7, .. }));
    }
}

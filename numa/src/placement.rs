//! Mapping the runtime's Ps (worker slots) to PUs.
//!
//! [`Placement::assign`] turns a strategy into one PU per P. Every strategy
//! first builds an ordered list of PUs; P `i` gets entry `i % len`. So with
//! more Ps than PUs the list **wraps around** and several Ps share a PU
//! (useful for tests and oversubscription, never an error).

use std::fmt;
use std::str::FromStr;

use crate::cpulist::{format_list, parse_list};
use crate::error::Error;
use crate::topology::Topology;

/// How Ps are spread over the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Fill the machine in [`Topology::compact_order`]: one PU per core in
    /// logical order (so node 0's cores, L3 by L3, first), SMT siblings only
    /// after every core has one P. Never fails.
    Compact,
    /// Round-robin over the NUMA nodes that have PUs: P0 on node 0, P1 on
    /// node 1, ...; within a node, its PUs in compact order. Never fails.
    ScatterNodes,
    /// Exactly these PUs (OS indices), in this order; duplicates are allowed.
    /// Fails with [`Error::EmptyCpuList`] for an empty list and
    /// [`Error::PuOutOfRange`] for a PU the topology lacks.
    Cpus(Vec<usize>),
    /// Only the PUs of this node (dense index), in compact order. Fails with
    /// [`Error::NodeOutOfRange`] for an unknown node and
    /// [`Error::NodeWithoutPus`] for a memory-only node.
    Node(usize),
}

impl Placement {
    /// The PU (OS index) for each of `n_ps` Ps: `result[p]` is P `p`'s PU.
    /// `n_ps == 0` gives an empty vector.
    ///
    /// # Errors
    ///
    /// As documented on each variant.
    pub fn assign(&self, topology: &Topology, n_ps: usize) -> Result<Vec<usize>, Error> {
        match self {
            Self::Compact => Ok(cycle(&topology.compact_order(), n_ps)),
            Self::ScatterNodes => Ok(scatter(topology, n_ps)),
            Self::Cpus(list) => {
                if list.is_empty() {
                    return Err(Error::EmptyCpuList);
                }
                for &pu in list {
                    topology.pu(pu)?;
                }
                Ok(cycle(list, n_ps))
            }
            Self::Node(node) => {
                let order = node_order(topology, *node)?;
                if order.is_empty() {
                    return Err(Error::NodeWithoutPus { node: *node });
                }
                Ok(cycle(&order, n_ps))
            }
        }
    }
}

/// `n` entries of `order`, wrapping around. `order` must not be empty.
fn cycle(order: &[usize], n: usize) -> Vec<usize> {
    order.iter().copied().cycle().take(n).collect()
}

/// The PUs of `node` in compact order.
fn node_order(topology: &Topology, node: usize) -> Result<Vec<usize>, Error> {
    topology.pus_of_node(node)?;
    Ok(topology
        .compact_order()
        .into_iter()
        .filter(|&pu| topology.node_of(pu).is_ok_and(|n| n == node))
        .collect())
}

/// Round-robin over nodes with PUs; each node cycles through its own PUs.
fn scatter(topology: &Topology, n_ps: usize) -> Vec<usize> {
    let per_node: Vec<Vec<usize>> = (0..topology.num_nodes())
        .filter_map(|node| node_order(topology, node).ok())
        .filter(|order| !order.is_empty())
        .collect();
    (0..n_ps)
        .map(|p| {
            let order = &per_node[p % per_node.len()];
            order[(p / per_node.len()) % order.len()]
        })
        .collect()
}

/// Parses `compact`, `scatter`, `node:N` or `cpus:LIST` (cpulist notation,
/// e.g. `cpus:0-3,8`).
impl FromStr for Placement {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let fail = |detail: &str| Error::PlacementSpec {
            input: text.to_string(),
            detail: detail.to_string(),
        };
        match text.trim().split_once(':') {
            None if text.trim() == "compact" => Ok(Self::Compact),
            None if text.trim() == "scatter" => Ok(Self::ScatterNodes),
            Some(("node", n)) => n
                .trim()
                .parse()
                .map(Self::Node)
                .map_err(|_| fail("node:N needs a node number")),
            Some(("cpus", list)) => parse_list(list)
                .map(Self::Cpus)
                .map_err(|reason| fail(&reason)),
            _ => Err(fail("expected compact, scatter, node:N or cpus:LIST")),
        }
    }
}

/// The inverse of [`FromStr`]: `compact`, `scatter`, `node:1`, `cpus:0-3`.
impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compact => write!(f, "compact"),
            Self::ScatterNodes => write!(f, "scatter"),
            Self::Node(n) => write!(f, "node:{n}"),
            Self::Cpus(list) if is_sorted_unique(list) => write!(f, "cpus:{}", format_list(list)),
            Self::Cpus(list) => {
                let items: Vec<String> = list.iter().map(usize::to_string).collect();
                write!(f, "cpus:{}", items.join(","))
            }
        }
    }
}

fn is_sorted_unique(list: &[usize]) -> bool {
    list.windows(2).all(|w| w[0] < w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_wraps() {
        assert_eq!(cycle(&[4, 5], 5), vec![4, 5, 4, 5, 4]);
        assert_eq!(cycle(&[4, 5], 0), Vec::<usize>::new());
    }

    #[test]
    fn parses_and_prints() {
        for (text, placement) in [
            ("compact", Placement::Compact),
            ("scatter", Placement::ScatterNodes),
            ("node:3", Placement::Node(3)),
            ("cpus:0-3,8", Placement::Cpus(vec![0, 1, 2, 3, 8])),
            ("cpus:5,1", Placement::Cpus(vec![5, 1])),
        ] {
            assert_eq!(text.parse::<Placement>().unwrap(), placement);
            assert_eq!(placement.to_string(), text);
        }
    }

    #[test]
    fn memory_only_nodes_are_skipped_or_rejected() {
        let mut topo = Topology::from_synthetic("pack:2 [numa] core:2 pu:1").unwrap();
        // Make node 1 memory-only: its PUs move to node 0.
        topo.nodes[1].pus.clear();
        for pu in &mut topo.pus {
            pu.node = 0;
        }
        assert_eq!(
            Placement::Node(1).assign(&topo, 1),
            Err(Error::NodeWithoutPus { node: 1 })
        );
        assert_eq!(Placement::ScatterNodes.assign(&topo, 3).unwrap(), [0, 1, 2]);
    }

    #[test]
    fn bad_specs_name_the_input() {
        for text in ["spread", "node:x", "cpus:3-1", "cpus:a"] {
            let err = text.parse::<Placement>().unwrap_err();
            assert!(
                matches!(err, Error::PlacementSpec { .. }),
                "{text}: {err:?}"
            );
            assert!(err.to_string().contains(text), "{err}");
        }
    }
}

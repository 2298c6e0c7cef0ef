//! Turning an hwloc topology into the plain [`Topology`] model.
//!
//! This is the only module that walks hwloc objects. Dense indices of cores,
//! caches, nodes and packages are hwloc logical indices (hwloc numbers the
//! objects of one type densely in tree order).

use std::path::Path;
use std::sync::Arc;

use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::distance::{AddDistancesFlags, DistancesKind};
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;

use crate::distances::{default_matrix, sysfs_matrix};
use crate::topology::{CacheDomain, CacheLevel, Core, DistanceSource, Node, Pu, Source, Topology};

/// Where Linux publishes NUMA node information.
const SYSFS_NODES: &str = "/sys/devices/system/node";

/// Extracts the model from `hw` and wraps both into a [`Topology`].
/// Returns a human-readable reason when the topology is unusable.
pub(crate) fn build(mut hw: hwlocality::Topology, source: Source) -> Result<Topology, String> {
    let pu_objs: Vec<&TopologyObject> = hw.objects_with_type(ObjectType::PU).collect();
    if pu_objs.is_empty() {
        return Err("the topology has no PU".to_string());
    }
    let is_this_system = hw.is_this_system();
    let cache_level = choose_cache_level(&hw);
    let mut nodes = extract_nodes(&hw);
    if nodes.is_empty() {
        return Err("the topology has no NUMA node".to_string());
    }

    let mut pus = Vec::with_capacity(pu_objs.len());
    let mut cores = vec![Core { pus: Vec::new() }; hw.objects_with_type(ObjectType::Core).len()];
    let mut l3 = cache_domains(&hw, cache_level);
    for obj in &pu_objs {
        let os = obj.os_index().unwrap_or(obj.logical_index());
        let core = dense_index(obj, ObjectType::Core, &mut cores, || Core {
            pus: Vec::new(),
        });
        cores[core].pus.push(os);
        let l3_idx = match cache_level_type(cache_level) {
            Some(ty) => dense_index(obj, ty, &mut l3, || CacheDomain {
                pus: Vec::new(),
                size_bytes: None,
            }),
            None => 0,
        };
        l3[l3_idx].pus.push(os);
        let node = node_of_pu(&mut nodes, os);
        let package = ancestor_index(obj, ObjectType::Package).unwrap_or(0);
        pus.push(Pu {
            os,
            core,
            l3: l3_idx,
            node,
            package,
        });
    }
    pus.sort_by_key(|p| p.os);
    for domain in &mut l3 {
        domain.pus.sort_unstable();
    }
    let max_os = pus.last().map_or(0, |p| p.os);
    let mut pu_slot = vec![None; max_os + 1];
    for (slot, pu) in pus.iter().enumerate() {
        pu_slot[pu.os] = Some(slot);
    }
    for node in &mut nodes {
        node.pus
            .retain(|&os| pu_slot.get(os).is_some_and(Option::is_some));
    }

    let packages = hw.objects_with_type(ObjectType::Package).len().max(1);
    let (distances, distance_source) = node_distances(&hw, &nodes, is_this_system);
    if distance_source != DistanceSource::Hwloc && nodes.len() >= 2 {
        embed_distances(&mut hw, &distances, distance_source);
    }
    Ok(Topology {
        pus,
        pu_slot,
        cores,
        l3,
        cache_level,
        packages,
        nodes,
        distances,
        distance_source,
        is_this_system,
        source,
        hwloc: Arc::new(hw),
    })
}

/// The logical index of `obj`'s first ancestor of type `ty`, if any.
fn ancestor_index(obj: &TopologyObject, ty: ObjectType) -> Option<usize> {
    obj.first_ancestor_with_type(ty)
        .map(TopologyObject::logical_index)
}

/// The dense index of `obj`'s ancestor of type `ty` in `list`; a PU without
/// such an ancestor gets a new entry of its own, made by `fresh`.
fn dense_index<T>(
    obj: &TopologyObject,
    ty: ObjectType,
    list: &mut Vec<T>,
    fresh: impl FnOnce() -> T,
) -> usize {
    match ancestor_index(obj, ty) {
        Some(idx) if idx < list.len() => idx,
        _ => {
            list.push(fresh());
            list.len() - 1
        }
    }
}

/// Picks the level used for [`Topology::l3_domains`]; see [`CacheLevel`].
fn choose_cache_level(hw: &hwlocality::Topology) -> CacheLevel {
    let count = |ty| hw.objects_with_type(ty).len();
    let cores = count(ObjectType::Core).max(1);
    if count(ObjectType::L3Cache) > 0 {
        CacheLevel::L3
    } else if (1..cores).contains(&count(ObjectType::L2Cache)) {
        CacheLevel::L2
    } else if (1..cores).contains(&count(ObjectType::L1Cache)) {
        CacheLevel::L1
    } else if count(ObjectType::Package) > 0 {
        CacheLevel::Package
    } else {
        CacheLevel::Machine
    }
}

/// The hwloc object type behind a cache level (`None` for the whole machine).
fn cache_level_type(level: CacheLevel) -> Option<ObjectType> {
    match level {
        CacheLevel::L3 => Some(ObjectType::L3Cache),
        CacheLevel::L2 => Some(ObjectType::L2Cache),
        CacheLevel::L1 => Some(ObjectType::L1Cache),
        CacheLevel::Package => Some(ObjectType::Package),
        CacheLevel::Machine => None,
    }
}

/// One empty domain per object of the chosen level, with its cache size.
fn cache_domains(hw: &hwlocality::Topology, level: CacheLevel) -> Vec<CacheDomain> {
    let Some(ty) = cache_level_type(level) else {
        return vec![CacheDomain {
            pus: Vec::new(),
            size_bytes: None,
        }];
    };
    hw.objects_with_type(ty)
        .map(|obj| CacheDomain {
            pus: Vec::new(),
            size_bytes: match obj.attributes() {
                Some(ObjectAttributes::Cache(cache)) => cache.size().map(|s| s.get()),
                _ => None,
            },
        })
        .collect()
}

/// The NUMA nodes, with the PUs of their cpusets and their memory.
fn extract_nodes(hw: &hwlocality::Topology) -> Vec<Node> {
    hw.objects_with_type(ObjectType::NUMANode)
        .map(|obj| Node {
            os_index: obj.os_index().unwrap_or(obj.logical_index()),
            pus: obj
                .cpuset()
                .map(|set| set.iter_set().map(usize::from).collect())
                .unwrap_or_default(),
            memory_bytes: obj.total_memory(),
            package: ancestor_index(obj, ObjectType::Package),
        })
        .collect()
}

/// The first node (lowest dense index) whose cpuset holds `pu`. hwloc gives
/// every PU a local node; should one lack it anyway, it is added to node 0 so
/// that the model's invariants hold.
fn node_of_pu(nodes: &mut [Node], pu: usize) -> usize {
    match nodes.iter().position(|n| n.pus.contains(&pu)) {
        Some(node) => node,
        None => {
            nodes[0].pus.push(pu);
            nodes[0].pus.sort_unstable();
            0
        }
    }
}

/// hwloc's NUMA latency matrix if it has one covering every node, else
/// sysfs (this machine only), else the default.
fn node_distances(
    hw: &hwlocality::Topology,
    nodes: &[Node],
    is_this_system: bool,
) -> (Vec<u32>, DistanceSource) {
    if let Some(matrix) = hwloc_matrix(hw, nodes) {
        return (matrix, DistanceSource::Hwloc);
    }
    let os_nodes: Vec<usize> = nodes.iter().map(|n| n.os_index).collect();
    if is_this_system {
        if let Some(matrix) = sysfs_matrix(Path::new(SYSFS_NODES), &os_nodes) {
            return (matrix, DistanceSource::Sysfs);
        }
    }
    let packages: Vec<Option<usize>> = nodes.iter().map(|n| n.package).collect();
    (default_matrix(&packages), DistanceSource::Default)
}

/// The first latency (not bandwidth) matrix between NUMA nodes that covers
/// every node, reordered into model order.
fn hwloc_matrix(hw: &hwlocality::Topology, nodes: &[Node]) -> Option<Vec<u32>> {
    let n = nodes.len();
    let matrices = hw.distances_with_type(None, ObjectType::NUMANode).ok()?;
    matrices
        .iter()
        .filter(|d| !d.kind().contains(DistancesKind::MEANS_BANDWIDTH))
        .find_map(|d| {
            let index: Vec<Option<usize>> = d
                .objects()
                .map(|obj| {
                    let os = obj?.os_index()?;
                    nodes.iter().position(|node| node.os_index == os)
                })
                .collect();
            let mut out = vec![None; n * n];
            for ((a, b), value) in d.enumerate_distances() {
                if let (Some(x), Some(y)) = (index[a], index[b]) {
                    out[x * n + y] = Some(u32::try_from(value).unwrap_or(u32::MAX));
                }
            }
            out.into_iter().collect::<Option<Vec<u32>>>()
        })
}

/// Stores a non-hwloc matrix in the hwloc topology (unnamed: hwlocality
/// mishandles named matrices) so that exported XML carries it. A failure only
/// means the export lacks the matrix, so it is ignored.
fn embed_distances(hw: &mut hwlocality::Topology, distances: &[u32], source: DistanceSource) {
    let origin = match source {
        DistanceSource::Sysfs => DistancesKind::FROM_OS,
        _ => DistancesKind::FROM_USER,
    };
    let values: Vec<u64> = distances.iter().map(|&d| u64::from(d)).collect();
    let _ignored = hw.edit(move |editor| {
        editor.add_distances(
            None,
            origin | DistancesKind::MEANS_LATENCY,
            AddDistancesFlags::empty(),
            move |topology| {
                let objs = topology
                    .objects_with_type(ObjectType::NUMANode)
                    .map(Some)
                    .collect();
                (objs, values)
            },
        )
    });
}

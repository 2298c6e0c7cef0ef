//! NUMA distance matrices that do not come from hwloc: the sysfs fallback and
//! the documented default.

use std::path::Path;

use crate::cpulist::parse_list;
use crate::topology::{LOCAL_DISTANCE, OTHER_PACKAGE_DISTANCE, SAME_PACKAGE_DISTANCE};

/// The default matrix for nodes whose packages are `packages` (dense package
/// index, `None` when unknown): [`LOCAL_DISTANCE`] on the diagonal,
/// [`SAME_PACKAGE_DISTANCE`] between nodes of one package (an unknown package
/// on either side counts as the same package), [`OTHER_PACKAGE_DISTANCE`]
/// otherwise.
pub(crate) fn default_matrix(packages: &[Option<usize>]) -> Vec<u32> {
    let n = packages.len();
    let mut out = Vec::with_capacity(n * n);
    for (a, pa) in packages.iter().enumerate() {
        for (b, pb) in packages.iter().enumerate() {
            out.push(match (pa, pb) {
                _ if a == b => LOCAL_DISTANCE,
                (Some(x), Some(y)) if x != y => OTHER_PACKAGE_DISTANCE,
                _ => SAME_PACKAGE_DISTANCE,
            });
        }
    }
    out
}

/// Reads the matrix for the nodes with kernel numbers `os_nodes` (in model
/// order) from a sysfs node directory (normally `/sys/devices/system/node`).
///
/// Each `nodeN/distance` file lists the distances from node N to every
/// *online* node, in ascending node number, so `online` is read to map
/// columns to nodes. Returns `None` if any file is missing or malformed.
pub(crate) fn sysfs_matrix(root: &Path, os_nodes: &[usize]) -> Option<Vec<u32>> {
    let online = parse_list(&std::fs::read_to_string(root.join("online")).ok()?).ok()?;
    let columns: Vec<usize> = os_nodes
        .iter()
        .map(|node| online.iter().position(|o| o == node))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(os_nodes.len() * os_nodes.len());
    for node in os_nodes {
        let text = std::fs::read_to_string(root.join(format!("node{node}/distance"))).ok()?;
        let row: Vec<u32> = text
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        if row.len() != online.len() {
            return None;
        }
        out.extend(columns.iter().map(|&c| row[c]));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_follows_packages() {
        let m = default_matrix(&[Some(0), Some(0), Some(1)]);
        assert_eq!(m, vec![10, 20, 32, 20, 10, 32, 32, 32, 10]);
        assert_eq!(default_matrix(&[None, Some(1)]), vec![10, 20, 20, 10]);
        assert_eq!(default_matrix(&[Some(3)]), vec![10]);
    }

    fn fake_sysfs(name: &str, online: &str, rows: &[(usize, &str)]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("gpm-numa-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("online"), online).unwrap();
        for (node, row) in rows {
            std::fs::create_dir_all(root.join(format!("node{node}"))).unwrap();
            std::fs::write(root.join(format!("node{node}/distance")), row).unwrap();
        }
        root
    }

    #[test]
    fn sysfs_rows_map_to_sparse_online_nodes() {
        let root = fake_sysfs("sparse", "0,2\n", &[(0, "10 21\n"), (2, "21 10\n")]);
        assert_eq!(sysfs_matrix(&root, &[0, 2]), Some(vec![10, 21, 21, 10]));
        assert_eq!(sysfs_matrix(&root, &[2, 0]), Some(vec![10, 21, 21, 10]));
        assert_eq!(sysfs_matrix(&root, &[1]), None, "node 1 is not online");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn sysfs_malformed_rows_are_rejected() {
        let root = fake_sysfs("bad", "0-1", &[(0, "10 x"), (1, "20 10")]);
        assert_eq!(sysfs_matrix(&root, &[0, 1]), None);
        let short = fake_sysfs("short", "0-1", &[(0, "10"), (1, "20 10")]);
        assert_eq!(sysfs_matrix(&short, &[0, 1]), None);
        let _ = std::fs::remove_dir_all(root);
        let _ = std::fs::remove_dir_all(short);
    }
}

//! The machine the tests run on: detection, pinning, node-bound memory.
//!
//! Pinning happens on threads spawned by the tests, never on the harness's
//! own threads.

use std::os::unix::process::CommandExt;
use std::process::Command;

use gpm_numa::{
    allowed_cpus, current_thread_affinity, node_of_address, online_nodes, page_size,
    pin_current_thread, policy_of_address, DistanceSource, Error, NodeMemory, PolicyMode, Topology,
};

/// Whether hwloc's environment variables redirect `Topology::detect`.
fn detect_is_redirected() -> bool {
    ["HWLOC_XMLFILE", "HWLOC_SYNTHETIC"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

#[test]
fn detect_sees_this_machine() {
    let topo = Topology::detect().unwrap();
    assert!(topo.num_pus() >= 1);
    assert!(topo.num_nodes() >= 1);
    let first = topo.pu_ids()[0];
    assert!(topo.node_of(first).unwrap() < topo.num_nodes());
    assert!(!topo.pus_of_node(0).unwrap().is_empty() || topo.num_nodes() > 1);
    if detect_is_redirected() {
        println!("note: HWLOC_XMLFILE/HWLOC_SYNTHETIC set; skipping real-machine checks");
        return;
    }
    assert!(topo.is_this_system());
    for cpu in allowed_cpus() {
        assert!(
            topo.has_pu(cpu),
            "allowed CPU {cpu} is a PU of the topology"
        );
    }
    assert_eq!(
        topo.nodes().iter().map(|n| n.os_index).collect::<Vec<_>>(),
        online_nodes(),
        "hwloc and sysfs agree on the nodes"
    );
    let sysfs_row0 = std::fs::read_to_string("/sys/devices/system/node/node0/distance");
    if let Ok(row) = sysfs_row0 {
        let local: u32 = row.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(topo.distance(0, 0).unwrap(), local);
        assert_ne!(topo.distance_source(), DistanceSource::Default);
    }
    let back = Topology::from_xml_str(&topo.export_xml().unwrap()).unwrap();
    assert_eq!(back, topo, "the real machine survives the XML round trip");
}

#[test]
fn pinning_to_each_allowed_pu_moves_the_thread_there() {
    for pu in allowed_cpus() {
        let (affinity, cpu) = std::thread::spawn(move || {
            pin_current_thread(pu).unwrap();
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            (current_thread_affinity().unwrap(), cpu)
        })
        .join()
        .unwrap();
        assert_eq!(affinity, vec![pu]);
        assert_eq!(usize::try_from(cpu).ok(), Some(pu));
    }
}

#[test]
fn pinning_does_not_shrink_the_allowed_set() {
    let before = allowed_cpus();
    let first = before[0];
    std::thread::spawn(move || pin_current_thread(first).unwrap())
        .join()
        .unwrap();
    assert_eq!(allowed_cpus(), before);
}

#[test]
fn pinning_to_a_pu_that_does_not_exist_is_an_error() {
    let err = std::thread::spawn(|| pin_current_thread(4096))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Pin { pu: 4096, .. }), "{err:?}");
    assert!(err.to_string().contains("4096"), "{err}");
}

/// Set by a parent test for the child process it starts (value: the CPU the
/// child is restricted to, or `all`).
const CHILD_ENV: &str = "GPM_NUMA_TEST_CHILD";

/// A CPU mask with only `cpu` set.
fn mask_of(cpu: usize) -> Vec<u64> {
    let mut mask = vec![0u64; cpu / 64 + 1];
    mask[cpu / 64] |= 1 << (cpu % 64);
    mask
}

/// Sets the calling thread's affinity directly (not through the crate).
fn raw_set_affinity(mask: &[u64]) -> std::io::Result<()> {
    // SAFETY: `mask` is a readable buffer of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, mask.len() * 8, mask.as_ptr().cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts this test binary again, running only `test`, optionally with its
/// CPU affinity (hence its allowed set) narrowed to one CPU. Checks that the
/// child passed and printed `marker`.
fn run_child(test: &str, restrict_to: Option<usize>, marker: &str) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    cmd.env(
        CHILD_ENV,
        restrict_to.map_or("all".into(), |c| c.to_string()),
    );
    if let Some(cpu) = restrict_to {
        let mask = mask_of(cpu);
        // SAFETY: the closure only makes the sched_setaffinity system call
        // (async-signal-safe) on a mask allocated before the fork.
        unsafe {
            cmd.pre_exec(move || raw_set_affinity(&mask));
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(marker), "child ran the check:\n{stdout}");
}

#[test]
fn pinning_outside_the_process_cpuset_is_an_error() {
    if let Some(cpu) = std::env::var_os(CHILD_ENV) {
        // The child: its whole process may only use `cpu`.
        let cpu: usize = cpu.to_str().unwrap().parse().unwrap();
        assert_eq!(allowed_cpus(), vec![cpu]);
        let topo = Topology::detect().unwrap();
        let outside = topo.pu_ids().into_iter().find(|&pu| pu != cpu).unwrap();
        let err = std::thread::spawn(move || pin_current_thread(outside))
            .join()
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, Error::Pin { pu, .. } if pu == outside),
            "{err:?}"
        );
        assert!(err.to_string().contains("allowed CPUs"), "{err}");
        std::thread::spawn(move || pin_current_thread(cpu).unwrap())
            .join()
            .unwrap();
        println!("child checked PU {outside} outside cpuset {cpu}");
        return;
    }
    let allowed = allowed_cpus();
    if allowed.len() < 2 || detect_is_redirected() {
        println!("note: needs 2 allowed CPUs and no HWLOC_* redirection; skipped");
        return;
    }
    run_child(
        "pinning_outside_the_process_cpuset_is_an_error",
        Some(allowed[0]),
        "child checked PU",
    );
}

#[test]
fn allowed_set_is_read_from_the_process_not_a_pinned_thread() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: the first call to allowed_cpus happens on a thread
        // pinned (directly through libc) to one CPU.
        let expected = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|list| gpm_numa::parse_list(list).unwrap())
            .unwrap();
        let first = expected[0];
        let seen = std::thread::spawn(move || {
            raw_set_affinity(&mask_of(first)).unwrap();
            allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(seen, expected);
        println!("child saw allowed set {seen:?}");
        return;
    }
    if allowed_cpus().len() < 2 {
        println!("note: needs 2 allowed CPUs; skipped");
        return;
    }
    run_child(
        "allowed_set_is_read_from_the_process_not_a_pinned_thread",
        None,
        "child saw allowed set",
    );
}

#[test]
fn node_memory_on_node_zero_is_bound_and_usable() {
    let page = page_size();
    let mut mem = NodeMemory::map(0, 3 * page + 1).unwrap();
    assert_eq!(mem.len(), 4 * page, "rounded up to whole pages");
    assert_eq!(mem.as_ptr() as usize % page, 0, "page-aligned");
    assert_eq!(mem.node(), 0);
    assert!(mem.as_slice().iter().all(|&b| b == 0), "zero-filled");

    for (i, byte) in mem.as_mut_slice().iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    assert!(mem
        .as_slice()
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));

    if !mem.is_bound() {
        println!("note: the kernel refuses memory policies here; binding not checked");
        return;
    }
    let policy = policy_of_address(mem.as_ptr()).unwrap();
    assert_eq!(policy.mode, PolicyMode::Bind);
    assert_eq!(policy.nodes, vec![0]);
    for offset in [0, page, 3 * page + page - 1] {
        let addr = mem.as_ptr().wrapping_add(offset);
        assert_eq!(node_of_address(addr).unwrap(), 0, "page at +{offset}");
    }
}

#[test]
fn node_memory_on_every_online_node() {
    for node in online_nodes() {
        let mut mem = NodeMemory::map(node, 1).unwrap();
        mem.prefault();
        if mem.is_bound() {
            assert_eq!(node_of_address(mem.as_ptr()).unwrap(), node);
        }
    }
}

#[test]
fn node_memory_can_move_to_another_thread() {
    let mem = NodeMemory::map(0, page_size()).unwrap();
    let mut mem = std::thread::spawn(move || mem).join().unwrap();
    mem.as_mut_slice()[0] = 7;
    assert_eq!(mem.as_slice()[0], 7);
}

#[test]
fn heap_memory_is_not_bound() {
    // Ordinary heap memory is not bound: its policy is the default one.
    let heap = vec![1u8; 2 * page_size()];
    match policy_of_address(heap.as_ptr()) {
        Ok(policy) => assert_ne!(policy.mode, PolicyMode::Bind),
        Err(e) => println!("note: get_mempolicy refused: {e}"),
    }
}

//! Stealing policies end to end: steal-heavy workloads complete under every policy with
//! every task run exactly once, on this machine and on a synthetic 4-node machine; steals
//! are classified by relation; pinning and bad settings.

use gpm::numa::{Placement, Topology};
use gpm::steal::{StealPolicy, StealStats};
use gpm_tests::watchdog;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

const CHILDREN: usize = 100_000;
const TREE_DEPTH: u32 = 14; // 2^15 - 1 tasks

/// One slot per task: each task adds one to its own slot.
fn slots(n: usize) -> Arc<Vec<AtomicU8>> {
    Arc::new((0..n).map(|_| AtomicU8::new(0)).collect())
}

#[track_caller]
fn assert_each_ran_once(slots: &[AtomicU8]) {
    let wrong: Vec<(usize, u8)> = slots
        .iter()
        .map(|s| s.load(Ordering::SeqCst))
        .enumerate()
        .filter(|&(_, runs)| runs != 1)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "tasks not run exactly once (index, runs): {wrong:?}"
    );
}

/// One task spawns `CHILDREN` children, each marking its slot; the parent joins them all.
fn one_spawns_everything(rt: &gpm::Runtime) {
    let ran = slots(CHILDREN);
    let marks = Arc::clone(&ran);
    rt.block_on(async move {
        gpm::spawn(async move {
            let handles: Vec<_> = (0..CHILDREN)
                .map(|i| {
                    let marks = Arc::clone(&marks);
                    gpm::spawn(async move {
                        marks[i].fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        })
        .await
        .unwrap();
    });
    assert_each_ran_once(&ran);
}

/// A binary fork-join tree: node `i` spawns `2i + 1` and `2i + 2`, joins them, and
/// returns the size of its subtree.
fn fork_join(rt: &gpm::Runtime) {
    fn node(i: usize, depth: u32, marks: Arc<Vec<AtomicU8>>) -> gpm::JoinHandle<usize> {
        gpm::spawn(async move {
            marks[i].fetch_add(1, Ordering::SeqCst);
            if depth == 0 {
                return 1;
            }
            let left = node(2 * i + 1, depth - 1, Arc::clone(&marks));
            let right = node(2 * i + 2, depth - 1, marks);
            1 + left.await.unwrap() + right.await.unwrap()
        })
    }
    let total = (1 << (TREE_DEPTH + 1)) - 1;
    let ran = slots(total);
    let marks = Arc::clone(&ran);
    let counted = rt.block_on(async move { node(0, TREE_DEPTH, marks).await.unwrap() });
    assert_eq!(counted, total);
    assert_each_ran_once(&ran);
}

fn four_node_machine() -> Topology {
    Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap()
}

fn build(policy: StealPolicy, workers: usize, machine: Option<Topology>) -> gpm::Runtime {
    let mut builder = gpm::Runtime::builder();
    builder.worker_threads(workers).steal_policy(policy);
    if let Some(machine) = machine {
        // One P per node: every steal between them is to another node.
        builder.topology(machine).placement(Placement::ScatterNodes);
    }
    builder.build().unwrap()
}

/// Runs both workloads under every policy; returns the stats of each run.
fn run_all(machine: impl Fn() -> Option<Topology>) -> Vec<StealStats> {
    let mut all = Vec::new();
    for policy in StealPolicy::ALL {
        let rt = build(policy, 4, machine());
        assert_eq!(rt.handle().steal_policy(), policy);
        one_spawns_everything(&rt);
        fork_join(&rt);
        let stats = rt.handle().steal_stats();
        assert_eq!(stats.policy, policy.name());
        let total = stats.total();
        assert!(total.successes.total() <= total.attempts.total());
        assert!(total.tasks_stolen.total() >= total.successes.total());
        all.push(stats);
    }
    all
}

#[test]
fn steal_heavy_workloads_complete_under_every_policy_on_this_machine() {
    watchdog("steal-heavy-real", || {
        let stats = run_all(|| None);
        let stolen: u64 = stats.iter().map(|s| s.total().tasks_stolen.total()).sum();
        assert!(
            stolen > 0,
            "no steal at all in 6 steal-heavy runs: {stats:?}"
        );
    });
}

#[test]
fn steal_heavy_workloads_complete_on_a_synthetic_four_node_machine() {
    watchdog("steal-heavy-4-node", || {
        let stats = run_all(|| Some(four_node_machine()));
        for run in &stats {
            let total = run.total();
            // Scattered placement: the 4 Ps are on 4 different nodes.
            assert_eq!(total.attempts.same_l3, 0, "{run:?}");
            assert_eq!(total.attempts.same_node, 0, "{run:?}");
        }
        let stolen: u64 = stats
            .iter()
            .map(|s| s.total().tasks_stolen.other_node)
            .sum();
        assert!(
            stolen > 0,
            "no steal at all in 6 steal-heavy runs: {stats:?}"
        );
    });
}

#[test]
fn compact_placement_on_four_nodes_classifies_l3_peers() {
    watchdog("compact-4-node", || {
        // 4 Ps packed: P0-P3 on the first 4 cores, which share one L3.
        let rt = gpm::Runtime::builder()
            .worker_threads(4)
            .topology(four_node_machine())
            .steal_policy(StealPolicy::Random)
            .build()
            .unwrap();
        let placed = rt.handle().steal_topology();
        assert!((1..4).all(|p| placed.l3(p) == placed.l3(0)));
        one_spawns_everything(&rt);
        let total = rt.handle().steal_stats().total();
        assert_eq!(total.attempts.same_node + total.attempts.other_node, 0);
    });
}

#[test]
fn pinned_workers_run_on_their_processor_pu() {
    watchdog("pinned", || {
        let machine = Topology::detect().unwrap();
        let pus = machine.pu_ids();
        let rt = gpm::Runtime::builder()
            .worker_threads(2)
            .pin_workers(true)
            .build()
            .unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let affinity = rt.block_on({
            let seen = Arc::clone(&seen);
            async move {
                gpm::spawn(async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    gpm::numa::current_thread_affinity().unwrap()
                })
                .await
                .unwrap()
            }
        });
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        if machine.is_this_system() {
            assert_eq!(affinity.len(), 1, "a pinned M runs on one PU: {affinity:?}");
            assert!(pus.contains(&affinity[0]));
        }
    });
}

#[track_caller]
fn build_error(configure: impl FnOnce(&mut gpm::Builder)) -> String {
    let mut builder = gpm::Runtime::builder();
    configure(&mut builder);
    match builder.build() {
        Ok(rt) => panic!("build succeeded with an invalid setting: {rt:?}"),
        Err(error) => {
            assert!(error.is_invalid_setting(), "{error:?}");
            error.to_string()
        }
    }
}

#[test]
fn bad_weights_and_placements_are_build_errors() {
    for (cache, numa, latency, bad) in [
        (-0.5, 0.3, 0.2, "-0.5"),
        (0.5, f64::NAN, 0.2, "NaN"),
        (0.5, 0.3, f64::INFINITY, "inf"),
    ] {
        let message = build_error(|b| {
            b.worker_threads(1)
                .steal_policy(StealPolicy::Random)
                .steal_weights(cache, numa, latency);
        });
        assert!(
            message.contains("steal_weights") && message.contains(bad),
            "{message}"
        );
    }
    let message = build_error(|b| {
        b.worker_threads(2)
            .topology(four_node_machine())
            .placement(Placement::Cpus(vec![0, 999]));
    });
    assert!(
        message.contains("placement") && message.contains("999"),
        "{message}"
    );
    let message = build_error(|b| {
        b.worker_threads(2)
            .topology(four_node_machine())
            .placement(Placement::Node(9));
    });
    assert!(
        message.contains("placement") && message.contains('9'),
        "{message}"
    );
}

#[test]
fn weights_apply_to_affinity_only() {
    let rt = gpm::Runtime::builder()
        .worker_threads(1)
        .steal_policy(StealPolicy::Hierarchical)
        .steal_weights(1.0, 0.0, 0.0)
        .build()
        .unwrap();
    assert_eq!(rt.handle().steal_policy(), StealPolicy::Hierarchical);
    let rt = gpm::Runtime::builder()
        .worker_threads(1)
        .steal_policy(StealPolicy::Random)
        .steal_policy("affinity".parse().unwrap())
        .steal_weights(1.0, 0.0, 0.25)
        .build()
        .unwrap();
    let expected = gpm::steal::AffinityWeights::new(1.0, 0.0, 0.25).unwrap();
    assert_eq!(rt.handle().steal_policy(), StealPolicy::Affinity(expected));
}

/// Tasks woken from a foreign thread (the last-P inbox path when on, the injector when off)
/// all complete, many times over, with 1, 2 and 4 Ps.
#[test]
fn foreign_wakeups_complete_with_and_without_last_p_routing() {
    watchdog("foreign-wakeups", || {
        for last_p in [true, false] {
            for workers in [1, 2, 4] {
                let rt = gpm::Runtime::builder()
                    .worker_threads(workers)
                    .last_p_wakeups(last_p)
                    .build()
                    .unwrap();
                let (senders, joins): (Vec<_>, Vec<_>) = (0..200)
                    .map(|i| {
                        let (tx, rx) = futures::channel::oneshot::channel::<usize>();
                        let join = rt.spawn(async move {
                            // Polled once (records its last P), then woken remotely.
                            gpm::task::yield_now().await;
                            rx.await.unwrap() + i
                        });
                        (tx, join)
                    })
                    .unzip();
                let waker = std::thread::spawn(move || {
                    for tx in senders {
                        tx.send(1).unwrap();
                    }
                });
                let total: usize = rt.block_on(async move {
                    let mut total = 0;
                    for join in joins {
                        total += join.await.unwrap();
                    }
                    total
                });
                waker.join().unwrap();
                assert_eq!(
                    total,
                    200 + (0..200).sum::<usize>(),
                    "last_p {last_p}, {workers} Ps"
                );
            }
        }
    });
}

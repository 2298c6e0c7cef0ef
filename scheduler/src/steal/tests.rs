//! Victim orders on the shipped topologies (`numa/topologies/`), with the expected orders
//! worked out by hand from the formulas in the module documentation.

use super::*;
use crate::rand::FastRand;
use gpm_numa::{Placement, Topology};

fn shipped(file: &str) -> Topology {
    let path = format!("{}/../numa/topologies/{file}", env!("CARGO_MANIFEST_DIR"));
    Topology::from_xml_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn placed(machine: &Topology, placement: Placement, ps: usize) -> StealTopology {
    let pus = placement.assign(machine, ps).unwrap();
    StealTopology::from_topology(machine, &pus).unwrap()
}

/// EPYC 7502P NPS4, 32 Ps placed compactly: P i = core i = PU i. Cores 4j..4j+3 share L3
/// j, cores 8k..8k+7 form node k. Distances 10 (local), 11 (nodes 0-1, 2-3), 12 (others),
/// normalised over the Ps' nodes to 0, 0.5, 1.
fn epyc32() -> StealTopology {
    placed(&shipped("epyc-1s-4n-8l3.xml"), Placement::Compact, 32)
}

fn range(r: std::ops::Range<usize>) -> Vec<usize> {
    r.collect()
}

fn plan(planner: &mut VictimPlanner, waits: &[u64]) -> Vec<usize> {
    thread_local! {
        static RNG: std::cell::RefCell<FastRand> = std::cell::RefCell::new(FastRand::new(1));
    }
    RNG.with(|rng| {
        planner
            .plan(&FnView(|_| 1, |p| waits[p]), &mut rng.borrow_mut())
            .to_vec()
    })
}

fn affinity() -> StealPolicy {
    StealPolicy::Affinity(AffinityWeights::DEFAULT)
}

/// `segment` is `tier` rotated (some start, then wrapping), as the random tier start gives.
#[track_caller]
fn assert_rotation(segment: &[usize], tier: &[usize]) {
    assert_eq!(segment.len(), tier.len(), "{segment:?} vs {tier:?}");
    if tier.is_empty() {
        return;
    }
    let start = tier.iter().position(|&p| p == segment[0]).unwrap();
    let rotated: Vec<usize> = tier[start..]
        .iter()
        .chain(&tier[..start])
        .copied()
        .collect();
    assert_eq!(segment, rotated);
}

#[track_caller]
fn assert_tiers(order: &[usize], tiers: &[Vec<usize>]) {
    let mut rest = order;
    for tier in tiers {
        let (segment, tail) = rest.split_at(tier.len());
        assert_rotation(segment, tier);
        rest = tail;
    }
    assert!(rest.is_empty(), "left over: {rest:?}");
}

/// Affinity's planner for thief P5 of [`epyc32`] (L3 1, node 0), the thief of most tests.
fn affinity_p5_on_epyc32() -> VictimPlanner {
    VictimPlanner::new(&affinity(), &epyc32(), 5)
}

// Affinity orders by score; victims with equal scores form a tier, visited in rotation
// order (P t + 1, t + 2, ... wrapping) from a random start per plan, so each tier below is
// listed in that rotation order and the plan must show a rotation of it.

#[test]
fn affinity_on_epyc_follows_the_formula() {
    let topo = epyc32();
    let mut p5 = VictimPlanner::new(&affinity(), &topo, 5);
    // Thief P5 (L3 1, node 0). Scores: L3 peers 4, 6, 7: 0.5 + 0.3 * (1 - 0) = 0.8; node
    // peers 0-3: 0.3 * (1 - 0) = 0.3; node 1 (8-15, distance 11): 0.3 * (1 - 0.5) = 0.15;
    // nodes 2 and 3 (16-31, distance 12): 0.
    let tiers = [vec![6, 7, 4], range(0..4), range(8..16), range(16..32)];
    let mut starts = std::collections::HashSet::new();
    for _ in 0..40 {
        let order = plan(&mut p5, &[0; 32]);
        assert_tiers(&order, &tiers);
        starts.insert(order[0]);
    }
    assert_eq!(starts.len(), 3, "ties start at random");

    // Thief P20 (L3 5, node 2): peers 21, 22, 23 (0.8), node peers 16-19 (0.3), node 3 =
    // 24-31 (0.15), nodes 0 and 1 = 0-15 (0).
    let mut p20 = VictimPlanner::new(&affinity(), &topo, 20);
    let tiers = [vec![21, 22, 23], range(16..20), range(24..32), range(0..16)];
    assert_tiers(&plan(&mut p20, &[0; 32]), &tiers);
}

#[test]
fn affinity_latency_term_reorders_after_refresh() {
    let mut p5 = affinity_p5_on_epyc32();
    let idle = [0; 32];
    let static_tiers = [vec![6, 7, 4], range(0..4), range(8..16), range(16..32)];
    assert_tiers(&plan(&mut p5, &idle), &static_tiers);
    // P20 waits 1000 ns, P9 500 ns: latency terms 1.0 and 0.5 (normalised by the largest).
    // P20: 0 + 0.2 * 1 = 0.2; P9: 0.15 + 0.2 * 0.5 = 0.25; both still below the node
    // peers (0.3) and far below the L3 peers (0.8), above the rest of node 1 (0.15).
    let mut waits = [0; 32];
    waits[20] = 1000;
    waits[9] = 500;
    // Within the refresh interval only the top 3 are re-ranked: the tail keeps the last
    // full ranking, in which P9 and P20 are still in their static tiers.
    assert_tiers(&plan(&mut p5, &waits), &static_tiers);
    for _ in 2..AFFINITY_REFRESH_INTERVAL {
        plan(&mut p5, &waits);
    }
    let refreshed = plan(&mut p5, &waits);
    let mut node1_but_9 = vec![8];
    node1_but_9.extend(10..16);
    let mut far_but_20 = range(16..20);
    far_but_20.extend(21..32);
    let tiers = [
        vec![6, 7, 4],
        range(0..4),
        vec![9],
        vec![20],
        node1_but_9,
        far_but_20,
    ];
    assert_tiers(&refreshed, &tiers);
    // When the waits drop back, the next refresh restores the static order.
    for _ in 0..AFFINITY_REFRESH_INTERVAL {
        plan(&mut p5, &idle);
    }
    assert_tiers(&plan(&mut p5, &idle), &static_tiers);
}

#[test]
fn a_heavy_latency_weight_moves_a_waiting_victim_to_the_front_at_once() {
    let topo = epyc32();
    let weights = AffinityWeights::new(0.5, 0.3, 1.0).unwrap();
    let mut p5 = VictimPlanner::new(&StealPolicy::Affinity(weights), &topo, 5);
    assert_tiers(
        &plan(&mut p5, &[0; 32]),
        &[vec![6, 7, 4], range(0..4), range(8..16), range(16..32)],
    );
    let mut waits = [0; 32];
    waits[20] = 2000;
    // P20: 0 + 1.0 * 1 = 1.0 > 0.8: first, picked on the very next plan (no refresh yet);
    // two L3 peers complete the top 3, the third leads the tail (the last full ranking
    // without P20).
    let after = plan(&mut p5, &waits);
    assert_eq!(after[0], 20);
    let mut peers = after[1..4].to_vec();
    peers.sort_unstable();
    assert_eq!(peers, [4, 6, 7]);
    let mut far_but_20 = range(16..20);
    far_but_20.extend(21..32);
    assert_tiers(&after[4..], &[range(0..4), range(8..16), far_but_20]);
}

#[test]
fn affinity_on_synthetic_default_distances() {
    // pack:2 numa:2 l3:2 core:4 pu:2, 32 Ps compact: P i = core i; L3 = 4 cores, node = 8
    // cores, package = 16 cores. Default distances 10 / 20 / 32 normalise to 0, 10/22, 1.
    let machine = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap();
    let topo = placed(&machine, Placement::Compact, 32);
    let mut p9 = VictimPlanner::new(&affinity(), &topo, 9);
    // Thief P9 (L3 2, node 1): peers 10, 11, 8 (0.8), node peers 12-15 (0.3), node 0 =
    // P0-7 (0.3 * 12/22 = 0.164), package 1 = P16-31 (0).
    let tiers = [vec![10, 11, 8], range(12..16), range(16..32), range(0..8)];
    // Rotation order from P10 puts 16-31 before 0-7, but scores put node 0 first.
    assert_tiers(
        &plan(&mut p9, &[0; 32]),
        &[
            tiers[0].clone(),
            tiers[1].clone(),
            tiers[3].clone(),
            tiers[2].clone(),
        ],
    );
    let mut h9 = VictimPlanner::new(&StealPolicy::Hierarchical, &topo, 9);
    let tiers = [vec![8, 10, 11], range(12..16), range(0..8), range(16..32)];
    assert_tiers(&plan(&mut h9, &[0; 32]), &tiers);
}

#[test]
fn hierarchical_on_epyc_goes_l3_node_then_by_distance() {
    let topo = epyc32();
    let mut rng = FastRand::new(3);
    let mut p5 = VictimPlanner::new(&StealPolicy::Hierarchical, &topo, 5);
    let mut p20 = VictimPlanner::new(&StealPolicy::Hierarchical, &topo, 20);
    let mut starts = std::collections::HashSet::new();
    for _ in 0..50 {
        let order = p5.plan(&FnView(|_| 1, |_| 0), &mut rng).to_vec();
        // L3 peers; node 0; node 1 (distance 11); nodes 2 and 3 (distance 12).
        assert_tiers(
            &order,
            &[vec![4, 6, 7], range(0..4), range(8..16), range(16..32)],
        );
        starts.insert(order[0]);
        let order = p20.plan(&FnView(|_| 1, |_| 0), &mut rng).to_vec();
        assert_tiers(
            &order,
            &[vec![21, 22, 23], range(16..20), range(24..32), range(0..16)],
        );
    }
    assert_eq!(starts.len(), 3, "the start within a tier is random");
}

#[test]
fn xeon_scatter_placement_orders_by_socket() {
    // Xeon Gold 6130 x2, 4 Ps scattered over the nodes: P0 -> PU 0 (node 0), P1 -> PU 16
    // (node 1), P2 -> PU 1 (node 0), P3 -> PU 17 (node 1). One L3 per socket; distance 21.
    let topo = placed(&shipped("xeon-2s-2n.xml"), Placement::ScatterNodes, 4);
    assert_eq!(
        (0..4).map(|p| topo.pu(p)).collect::<Vec<_>>(),
        [0, 16, 1, 17]
    );
    // P0: P2 shares L3 (0.8); P1 and P3 are on the far node (0).
    let order = plan(&mut VictimPlanner::new(&affinity(), &topo, 0), &[0; 4]);
    assert_tiers(&order, &[vec![2], vec![1, 3]]);
    // P3: P1 shares L3; then P0 and P2.
    let order = plan(&mut VictimPlanner::new(&affinity(), &topo, 3), &[0; 4]);
    assert_tiers(&order, &[vec![1], vec![0, 2]]);
    let order = plan(
        &mut VictimPlanner::new(&StealPolicy::Hierarchical, &topo, 0),
        &[0; 4],
    );
    assert_tiers(&order, &[vec![2], vec![], vec![1, 3]]);
}

#[test]
fn random_is_a_rotation_from_a_random_start() {
    let topo = epyc32();
    let mut planner = VictimPlanner::new(&StealPolicy::Random, &topo, 7);
    let mut rng = FastRand::new(11);
    let mut starts = std::collections::HashSet::new();
    let all_but_7: Vec<usize> = (0..32).filter(|&p| p != 7).collect();
    for _ in 0..200 {
        let order = planner.plan(&FnView(|_| 1, |_| 0), &mut rng).to_vec();
        assert_rotation(&order, &all_but_7);
        starts.insert(order[0]);
    }
    assert!(starts.len() > 20, "starts: {starts:?}");
}

#[test]
fn every_plan_visits_every_other_processor_once() {
    let machines = [
        placed(&shipped("epyc-1s-4n-8l3.xml"), Placement::Compact, 64),
        placed(&shipped("xeon-2s-2n.xml"), Placement::ScatterNodes, 7),
        placed(
            &Topology::from_synthetic("pack:2 l3:1 numa:2 core:4 pu:2").unwrap(),
            Placement::Compact,
            40,
        ),
        StealTopology::flat(1),
        StealTopology::flat(5),
    ];
    let mut rng = FastRand::new(5);
    for topo in &machines {
        let n = topo.num_processors();
        let waits: Vec<u64> = (0..n as u64).map(|p| p * 37 % 11).collect();
        for policy in StealPolicy::ALL {
            for thief in 0..n {
                let mut planner = VictimPlanner::new(&policy, topo, thief);
                for _ in 0..3 {
                    let mut order = planner
                        .plan(&FnView(|_| 1, |p| waits[p]), &mut rng)
                        .to_vec();
                    order.sort_unstable();
                    let expected: Vec<usize> = (0..n).filter(|&p| p != thief).collect();
                    assert_eq!(order, expected, "{policy} thief {thief} of {n}");
                }
            }
        }
    }
}

fn plan_with(planner: &mut VictimPlanner, lens: &[usize]) -> Vec<usize> {
    let mut rng = FastRand::new(9);
    planner.plan(&FnView(|p| lens[p], |_| 0), &mut rng).to_vec()
}

#[test]
fn affinity_visits_a_victim_with_work_before_every_empty_one() {
    // One-spawns-all seen from afar: only P20 (node 2) has work. Thief P5 (node 0) goes
    // there first instead of visiting its 15 empty node peers and node 1 on the way.
    let mut p5 = affinity_p5_on_epyc32();
    let mut lens = [0; 32];
    lens[20] = 1000;
    let order = plan_with(&mut p5, &lens);
    assert_eq!(order[0], 20);
    // The empty victims follow in the static order (the last full ranking).
    let mut far_but_20 = range(16..20);
    far_but_20.extend(21..32);
    assert_tiers(
        &order[1..],
        &[vec![6, 7, 4], range(0..4), range(8..16), far_but_20],
    );
}

#[test]
fn affinity_load_term_outranks_one_distance_step_not_the_l3() {
    let mut p5 = affinity_p5_on_epyc32();
    let mut lens = [0; 32];
    // P6 (same L3) holds 1 task: 0.8 + 0.25 / 1000; P0 (same node) 1 task: 0.3 + 0.00025;
    // P9 (node 1) 1000 tasks: 0.15 + 0.25 = 0.4; P20 (node 2) 1000: 0 + 0.25.
    lens[6] = 1;
    lens[0] = 1;
    lens[9] = 1000;
    lens[20] = 1000;
    let order = plan_with(&mut p5, &lens);
    assert_eq!(order[..3], [6, 9, 0]);
    assert!(order[3..].contains(&20));
    // With 800 tasks P0 scores 0.3 + 0.2 = 0.5 and passes P9 (still 0.4): nearer work
    // wins once it is a good share of the longest queue.
    lens[0] = 800;
    let order = plan_with(&mut p5, &lens);
    assert_eq!(order[..3], [6, 0, 9]);
}

#[test]
fn affinity_on_xeon_scatter_takes_far_work_before_an_empty_l3_peer() {
    // P0 -> PU 0 (node 0), P1 -> PU 16 (node 1), P2 -> PU 1 (node 0), P3 -> PU 17 (node 1).
    let topo = placed(&shipped("xeon-2s-2n.xml"), Placement::ScatterNodes, 4);
    let mut p0 = VictimPlanner::new(&affinity(), &topo, 0);
    // Only P3 has work: it goes first (0 + 0.25 against P2's 0.8 minus the demotion),
    // then the empty ones by static score: P2 (0.8), P1 (0).
    assert_eq!(plan_with(&mut p0, &[0, 0, 0, 4]), [3, 2, 1]);
    // Both L3 peer and far victim have work: the L3 peer first even with the shorter queue
    // (0.8 + 0.25 / 4 against 0 + 0.25).
    assert_eq!(plan_with(&mut p0, &[0, 0, 1, 4]), [2, 3, 1]);
}

#[test]
fn affinity_on_synthetic_ranks_work_by_locality_then_load() {
    // pack:2 numa:2 l3:2 core:4 pu:2, 32 Ps compact (as in the test above): thief P9
    // (L3 2, node 1). Work on P20 (package 1: 0 + load), P2 (node 0: 0.164 + load) and
    // P13 (node 1, other L3: 0.3 + load), queues 8, 8 and 2.
    let machine = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap();
    let topo = placed(&machine, Placement::Compact, 32);
    let mut p9 = VictimPlanner::new(&affinity(), &topo, 9);
    let mut lens = [0; 32];
    lens[20] = 8;
    lens[2] = 8;
    lens[13] = 2;
    // P13: 0.3 + 0.0625 = 0.3625; P2: 0.164 + 0.25 = 0.414; P20: 0.25.
    let order = plan_with(&mut p9, &lens);
    assert_eq!(order[..3], [2, 13, 20]);
    // The rest are empty, in static order: L3 peers, node peers, node 0, package 1.
    let mut node1 = range(12..16);
    node1.retain(|&p| p != 13);
    let mut node0 = range(0..8);
    node0.retain(|&p| p != 2);
    let mut package1 = range(16..32);
    package1.retain(|&p| p != 20);
    assert_tiers(&order[3..], &[vec![10, 11, 8], node1, node0, package1]);
}

//! Per-thief victim orders: the precomputed part of each policy and the cheap per-steal part.

use super::policy::{AffinityWeights, StealPolicy};
use super::topology::StealTopology;
use super::view::VictimView;
use crate::rand::FastRand;
use std::fmt;

/// The affinity policy re-ranks this many victims on every plan with live latency data.
pub const AFFINITY_TOP_K: usize = 3;

/// The affinity policy re-sorts every victim by its full score once per this many plans;
/// in between only the top [`AFFINITY_TOP_K`] are chosen afresh.
pub const AFFINITY_REFRESH_INTERVAL: u32 = 32;

/// Weight of the load term of the affinity score: a victim with the longest queue among the
/// thief's victims gains this much, one with half of it half as much. See the
/// [module documentation](super) for why 0.25.
pub const AFFINITY_LOAD_WEIGHT: f64 = 0.25;

/// `weight / max`, or 0 when `max` is 0 or absent: scales a term so the largest is `weight`.
fn per_unit(weight: f64, max: Option<u64>) -> f64 {
    match max {
        Some(max) if max > 0 => weight / max as f64,
        _ => 0.0,
    }
}

/// One thief's view of the victims under one policy; owned by the thief's P (no sharing,
/// no locks). [`VictimPlanner::plan`] writes the order in which to visit the victims.
pub struct VictimPlanner {
    thief: usize,
    /// The policy's name ([`StealPolicy::name`]), for `Debug`.
    policy: &'static str,
    kind: Kind,
    order: Vec<usize>,
}

enum Kind {
    Random { processors: usize },
    Hierarchical { tiers: Vec<Vec<usize>> },
    // Boxed: the ranking is far larger than the other variants.
    Affinity(Box<AffinityRanking>),
}

/// The affinity policy's state for one thief. Slices are parallel: entry `i` describes
/// victim `victims[i]`.
struct AffinityRanking {
    weights: AffinityWeights,
    /// Every other P, starting after the thief and wrapping. Ties are broken by position
    /// in this list, counted from a random start per plan.
    victims: Vec<usize>,
    /// `cache * shares_l3 + numa * (1 - normalised distance)`, fixed at start-up.
    static_scores: Vec<f64>,
    /// Static score plus the latency term (an average: it moves slowly), as of the current
    /// plan; the full re-sort uses it.
    steady_scores: Vec<f64>,
    /// Steady score plus the load term, or demoted: what the top of each plan is picked by.
    live_scores: Vec<f64>,
    waits: Vec<u64>,
    lens: Vec<usize>,
    /// Subtracted from the live score of a victim seen empty: more than any score can be.
    empty_demotion: f64,
    /// Positions into `victims`, by decreasing steady score as of the last refresh.
    ranked: Vec<usize>,
    top: Vec<usize>,
    plans_since_refresh: u32,
}

impl VictimPlanner {
    /// Precomputes `thief`'s view under `policy` on `topology`.
    ///
    /// # Panics
    /// If `thief` is not a P of `topology`.
    pub fn new(policy: &StealPolicy, topology: &StealTopology, thief: usize) -> VictimPlanner {
        let processors = topology.num_processors();
        assert!(thief < processors, "thief {thief} of {processors} Ps");
        let kind = match policy {
            StealPolicy::Random => Kind::Random { processors },
            StealPolicy::Hierarchical => Kind::Hierarchical {
                tiers: hierarchical_tiers(topology, thief),
            },
            StealPolicy::Affinity(weights) => {
                Kind::Affinity(Box::new(AffinityRanking::new(*weights, topology, thief)))
            }
        };
        VictimPlanner {
            thief,
            policy: policy.name(),
            kind,
            order: Vec::with_capacity(processors.saturating_sub(1)),
        }
    }

    /// The P this planner plans for.
    pub fn thief(&self) -> usize {
        self.thief
    }

    /// The victims to visit, in order (every P but the thief, each once).
    /// `view` is a snapshot of the victims' queues; only the affinity policy reads it.
    /// `rng` picks the random starts.
    pub fn plan(&mut self, view: &impl VictimView, rng: &mut FastRand) -> &[usize] {
        self.order.clear();
        match &mut self.kind {
            Kind::Random { processors } => {
                let n = *processors;
                let start = rng.below(n as u32) as usize;
                let thief = self.thief;
                self.order
                    .extend((0..n).map(|i| (start + i) % n).filter(|&v| v != thief));
            }
            Kind::Hierarchical { tiers } => {
                for tier in tiers.iter().filter(|t| !t.is_empty()) {
                    let start = rng.below(tier.len() as u32) as usize;
                    self.order
                        .extend(tier[start..].iter().chain(&tier[..start]));
                }
            }
            Kind::Affinity(ranking) => {
                let tie_start = rng.below(ranking.victims.len() as u32) as usize;
                ranking.plan(view, tie_start, &mut self.order);
            }
        }
        &self.order
    }
}

/// L3 peers, node peers, then one tier per distinct distance to the other nodes, nearest
/// first; ascending P index within a tier.
fn hierarchical_tiers(topology: &StealTopology, thief: usize) -> Vec<Vec<usize>> {
    use super::topology::Relation;
    let others = || (0..topology.num_processors()).filter(move |&v| v != thief);
    let of = |relation| -> Vec<usize> {
        others()
            .filter(|&v| topology.relation(thief, v) == relation)
            .collect()
    };
    let mut tiers = vec![of(Relation::SameL3), of(Relation::SameNode)];
    let remote = of(Relation::OtherNode);
    let mut distances: Vec<u32> = remote
        .iter()
        .map(|&v| topology.distance(thief, v))
        .collect();
    distances.sort_unstable();
    distances.dedup();
    for d in distances {
        tiers.push(
            remote
                .iter()
                .copied()
                .filter(|&v| topology.distance(thief, v) == d)
                .collect(),
        );
    }
    tiers
}

impl AffinityRanking {
    fn new(weights: AffinityWeights, topology: &StealTopology, thief: usize) -> AffinityRanking {
        let n = topology.num_processors();
        let victims: Vec<usize> = (1..n).map(|i| (thief + i) % n).collect();
        let static_scores: Vec<f64> = victims
            .iter()
            .map(|&v| {
                let shares_l3 = topology.relation(thief, v) == super::Relation::SameL3;
                weights.cache() * f64::from(u8::from(shares_l3))
                    + weights.numa() * (1.0 - topology.normalised_distance(thief, v))
            })
            .collect();
        AffinityRanking {
            weights,
            live_scores: static_scores.clone(),
            steady_scores: static_scores.clone(),
            waits: vec![0; victims.len()],
            lens: vec![0; victims.len()],
            empty_demotion: 1.0
                + weights.cache()
                + weights.numa()
                + weights.latency()
                + AFFINITY_LOAD_WEIGHT,
            ranked: (0..victims.len()).collect(),
            top: Vec::with_capacity(AFFINITY_TOP_K),
            victims,
            static_scores,
            plans_since_refresh: 0,
        }
    }

    /// Scores every victim with its live latency term, then writes the top
    /// [`AFFINITY_TOP_K`] by live score followed by the rest in the order of the last full
    /// ranking (re-ranked now if [`AFFINITY_REFRESH_INTERVAL`] plans have passed). Equal
    /// scores go in rotation order from position `tie_start` of `victims`.
    fn plan(&mut self, view: &impl VictimView, tie_start: usize, order: &mut Vec<usize>) {
        self.score(view);
        if self.plans_since_refresh == 0 {
            self.refresh(tie_start);
        }
        self.plans_since_refresh = (self.plans_since_refresh + 1) % AFFINITY_REFRESH_INTERVAL;
        self.select_top(tie_start);
        order.extend(self.top.iter().map(|&i| self.victims[i]));
        let top = &self.top;
        order.extend(
            self.ranked
                .iter()
                .filter(|i| !top.contains(i))
                .map(|&i| self.victims[i]),
        );
    }

    /// Live score = static score + `latency * wait / max wait` + [`AFFINITY_LOAD_WEIGHT`]
    /// `* len / max len` over this thief's victims; minus `empty_demotion` for a victim
    /// whose queue is seen empty, which so ranks after every victim with work.
    fn score(&mut self, view: &impl VictimView) {
        for ((wait, len), &v) in self.waits.iter_mut().zip(&mut self.lens).zip(&self.victims) {
            *wait = view.queue_wait_ns(v);
            *len = view.queue_len(v);
        }
        let wait_scale = per_unit(self.weights.latency(), self.waits.iter().copied().max());
        let max_len = self.lens.iter().copied().max().map(|l| l as u64);
        let len_scale = per_unit(AFFINITY_LOAD_WEIGHT, max_len);
        let scores = self.live_scores.iter_mut().zip(&mut self.steady_scores);
        let inputs = self.static_scores.iter().zip(&self.waits);
        for ((live, steady), ((&base, &wait), &len)) in scores.zip(inputs.zip(&self.lens)) {
            *steady = base + wait_scale * wait as f64;
            *live = if len == 0 {
                *steady - self.empty_demotion
            } else {
                *steady + len_scale * len as f64
            };
        }
    }

    /// Full re-sort by steady score (not by queue lengths, which are stale by the next
    /// plan), ties in rotation order from `tie_start`.
    fn refresh(&mut self, tie_start: usize) {
        let live = &self.steady_scores;
        let n = self.victims.len();
        self.ranked.clear();
        self.ranked.extend((0..n).map(|i| (tie_start + i) % n));
        // Stable: equal scores keep the rotation order just written.
        self.ranked.sort_by(|&a, &b| live[b].total_cmp(&live[a]));
    }

    /// The `AFFINITY_TOP_K` best live scores, best first, ties in rotation order from
    /// `tie_start`.
    fn select_top(&mut self, tie_start: usize) {
        self.top.clear();
        let n = self.victims.len();
        let k = AFFINITY_TOP_K.min(n);
        for _ in 0..k {
            let mut best: Option<usize> = None;
            for i in (0..n).map(|i| (tie_start + i) % n) {
                if self.top.contains(&i) {
                    continue;
                }
                if best.is_none_or(|b| self.live_scores[i] > self.live_scores[b]) {
                    best = Some(i);
                }
            }
            self.top.extend(best);
        }
    }
}

impl fmt::Debug for VictimPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VictimPlanner")
            .field("thief", &self.thief)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

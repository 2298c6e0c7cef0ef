//! Stealing: which P an idle P takes work from, and what it learns doing so.
//!
//! # Split
//!
//! The steal *loop* is shared and lives in [`crate::processor`] (`Processor::steal_work`):
//! visit victims in some order, take a share of the first non-empty inbox (tasks woken
//! off the Ps for that victim, which its owner reaches last) or else half of the FIFO,
//! else fall back to the injector. A [`StealPolicy`] only decides the *order*. Each P owns a
//! [`VictimPlanner`], built once at start-up from the policy and a [`StealTopology`] (per P:
//! its PU, L3 domain and NUMA node, and the node distance matrix), which writes that order
//! into a buffer it owns: no allocation, no lock, no shared write on the steal path.
//!
//! # Policies
//!
//! * **random**: a uniformly random start, then round robin over every other P. tokio's and
//!   Go's choice; the control of every comparison.
//! * **affinity** (load-aware): every plan reads a snapshot of each victim's queue length
//!   and average queue wait (a [`VictimView`]) and scores
//!   `score(thief, victim) = w_cache * shares_L3 + w_numa * (1 - d) + w_lat * lat + w_load *
//!   load`, where `d` is the NUMA distance between the two Ps' nodes scaled to `0..=1` over
//!   the distances that occur between the Ps' nodes (so a placement that uses two nodes of
//!   a four-node machine spreads its own two distances over the whole range), `lat` is the
//!   victim's average queue wait divided by the largest among the thief's victims (0 when
//!   none has a sample), and `load` is its queue length divided by the longest. A victim
//!   seen empty ranks after every victim with work (its score drops by more than any score
//!   can be), in its static place among the empty ones. The thief visits the top
//!   [`AFFINITY_TOP_K`] (3) first, then the rest by score, then the injector. Default
//!   weights 0.5 / 0.3 / 0.2 ([`AffinityWeights::DEFAULT`]) and [`AFFINITY_LOAD_WEIGHT`]
//!   0.25.
//! * **hierarchical**: the Ps of the thief's L3 domain, then the rest of its node, then the
//!   other nodes by increasing distance (nodes at the same distance form one tier); a
//!   random start within each tier, so thieves of one tier do not all hit the same victim.
//!
//! Ties (equal affinity scores) are visited in rotation order (P `t + 1, t + 2, ...` for
//! thief `t`, wrapping) from a random start drawn per plan, like hierarchical's random start
//! within a tier. A first version kept the rotation from the thief itself (deterministic);
//! the simulator showed thieves herding onto the same victims: fork-join on 64 simulated
//! EPYC Ps took 1.32x random's makespan with that order and 0.88x with random ties (Xeon:
//! 1.89x and 0.97x). The tests check each tier as "some rotation of this list".
//!
//! # Why load-aware
//!
//! The first affinity policy ranked by the static terms and the wait average only. When all
//! work starts on one P it lost to random stealing in the simulator (1.13-1.77x random's
//! makespan on one-spawns-all and skewed): a thief walked its whole neighbourhood of empty
//! victims first, each visit a round trip, and the work spread hop by hop. What a thief
//! needs to know is where work is *now*, and the queue length says that at the cost of one
//! relaxed load per victim, within the round. So:
//!
//! * **Empty victims last.** A thief goes straight to the nearest victim that has work, as
//!   a random thief does by luck, and pays no visits to empty neighbours on the way. An
//!   empty victim is still in the plan (the snapshot is racy: it may have work by the time
//!   the thief gets there), just after the others.
//! * **A load term, small.** Among victims with work, locality still decides, except that
//!   a far queue much longer than the near ones wins one distance step: with weight 0.25 a
//!   victim one node away holding the longest queue (0.15 + 0.25 on the EPYC) passes a
//!   node peer with a short one (0.3 + ~0), never an L3 peer (0.8 + ...). In the simulator
//!   (closed workloads, three topologies, seed 1) load weights 0.15, 0.25, 0.35 and 1.0 gave
//!   geometric-mean makespans within 1% of each other (0.917-0.927 of random's), and worst
//!   remote-steal ratios of 0.20, 0.10, 0.19 and 0.51 of random's: 0.25 it is.
//! * **Work anywhere beats no work.** A victim on another node with one queued task still
//!   ranks before every empty victim. Requiring two (so a thief crosses nodes only for a
//!   queue worth splitting) cut the server load's remote steals from 0.53 to 0.17 of
//!   random's on a 4-node, 128-P shape but made its P99 sojourn 1.04x random's (up to 1.17x
//!   by seed) instead of 0.70x: when a thief's whole node is dry, the far task is the one
//!   that waits.
//!
//! Measured in `gpm-sim` (docs/BENCHMARKS.md, "Load-aware affinity"): at most 1.0x random's
//! makespan or P99 sojourn in every workload and shape simulated (medians of 5 seeds, with
//! every cost at 0.5x, 1x and 2x), and a third or less of its remote steals on the closed
//! workloads; on the open ones (requests arriving on every P) more, see there. The makespans of one-spawns-all and skewed
//! cannot drop much below random's in that model: every task's data lives on P0's node, so
//! far Ps run them slower whoever steals them.
//!
//! # What is precomputed, what is live
//!
//! The static part of each affinity score (cache and NUMA terms) is computed once per
//! thief. The latency and load terms are read at steal time through the [`VictimView`]:
//! in the runtime, every victim's [`LatencyHistory`] and its FIFO and inbox lengths (a
//! few relaxed loads each, no lock). Then: the top [`AFFINITY_TOP_K`] victims are picked by
//! live score on every plan (O(n k)), and the rest follow in the order of the last full
//! sort, which is redone only every [`AFFINITY_REFRESH_INTERVAL`] (32) plans (O(n log n))
//! by the steady part of the score (static and latency terms): queue lengths are stale by
//! the next plan, so a tail sorted by them would send thieves to where work was 31 plans
//! ago. So a victim that gets work is visited first at the next steal, while the full
//! re-sort is amortised. The benchmark group `victim_order_64ps` in
//! `bench/benches/policies.rs` measures one plan for a thief among 64 Ps: about 0.55 us
//! for the first affinity policy (64 relaxed loads, the top-3 selection, the amortised
//! sort) against 0.12 us for random and 0.06 us for hierarchical, before the queue lengths
//! were read too. Counted in instructions instead (callgrind, same thief and topology,
//! 10 000 plans, views in local memory): 10 856 per plan for the first affinity policy,
//! 12 140 (+12%) for the load-aware one, 1 326 for random, 524 for hierarchical. In the
//! runtime each victim also costs more cache lines than before (the FIFO's indices and the
//! inbox's besides the latency history), which only a multi-node machine can price. The
//! cost stays O(n k) per plan with per-P state only; a search that visits 63 empty victims
//! costs far more.
//!
//! # Latency history
//!
//! Per P, EWMAs of queue wait (enqueue to first poll) and poll duration, written only by the
//! M holding the P, with relaxed stores; see [`latency`]. The runtime stamps a sample of
//! the tasks (one in `gpm`'s sampling interval) at enqueue and times their first poll.
//!
//! # Counters
//!
//! Each visit of a victim is classified by its [`Relation`] to the thief (same L3, same
//! node, other node) and counted per P: attempts, successes and tasks stolen; see
//! [`stats`]. [`StealStats`] is the plain snapshot the runtime's `Handle` hands out.
//!
//! # Selecting a policy
//!
//! Cargo features `steal-random`, `steal-affinity` (default) and `steal-hierarchical` set
//! [`StealPolicy::compiled_default`] (which states their precedence when several are on).
//! At run time the runtime's builder setting wins over the [`STEAL_ENV`] variable (a name
//! of [`StealPolicy::ALL`]), which wins over the feature.
//!
//! # Invariants
//!
//! * A plan lists every P except the thief exactly once (tested for every policy).
//! * Planners and counters are touched only by the holder of their P; latency histories
//!   are read by anyone, written by the holder.
//! * The policy changes the order only: every policy ends with the injector, so which work
//!   exists never depends on it, only who finds it first.
//!
//! # Rejected options
//!
//! * **A trait object per policy.** An enum keeps the planners in one allocation per P, lets
//!   `StealPolicy` be `Copy` and parsed from a string, and costs one match per steal.
//! * **A fixed tie order** (see above): cheap and reproducible, but it makes thieves herd.
//! * **Re-sorting every victim on every steal.** Exact, but O(n log n) on every miss of a
//!   spinning searcher; the top-k selection gives the same first three victims, which is
//!   where almost every successful steal happens.
//! * **Normalising distances over the whole machine.** A runtime placed on two close nodes
//!   of a big machine would then see all its victims as "near" and the NUMA term would not
//!   separate them; the placement is what the thief can choose among.
//! * **Letting the latency term rank victims with empty queues first.** A victim's wait is
//!   an average of the past: the first version let a stale high average send a thief to an
//!   empty victim; the load-aware score demotes a victim seen empty whatever its average.
//! * **Going to the longest queue (or the longer of two sampled, power of two choices)
//!   regardless of distance.** Balances as fast as random, but then thieves cross nodes
//!   for queues no longer than their neighbours': a load weight of 1.0, close to that,
//!   doubled the remote steals in the simulator for under 1% of makespan.
//! * **Taking more per steal from a victim on another node** (HotSLAW's answer to work
//!   diffusing hop by hop: the chunk grows with distance). Tried in `gpm-sim` for the
//!   affinity policy (2026-11-30; a steal from another node took three quarters of the
//!   victim's FIFO, or all of it, instead of half), over the 24 shape and cost-scale cells
//!   of docs/BENCHMARKS.md: three quarters made 10 cells' geometric-mean makespan better
//!   and 11 worse (-1% to +3%; +0.5% over all), all of it made 7 better and 14 worse
//!   (+1.4%), and both gave more single seeds above random's makespan. It helps only where
//!   the work sits on one far node (the pipeline with scatter placement, 0.96 -> 0.93x
//!   random's on the EPYC). A likely reason, not measured apart: with the load-aware plan
//!   a thief crosses nodes only when its own node is dry, and a bigger batch then leaves
//!   the far victim short, so its node's Ps turn thieves in their turn. The steal takes
//!   half, whatever the distance.

pub mod latency;
mod plan;
mod policy;
pub mod stats;
mod topology;
mod view;

pub use latency::LatencyHistory;
pub use plan::{VictimPlanner, AFFINITY_LOAD_WEIGHT, AFFINITY_REFRESH_INTERVAL, AFFINITY_TOP_K};
pub use policy::{AffinityWeights, ParsePolicyError, StealPolicy, WeightError, STEAL_ENV};
pub use stats::{ByRelation, ProcessorStealStats, StealStats};
pub use topology::{Relation, StealTopology};
pub use view::{FnView, VictimView};

#[cfg(test)]
mod tests;

//! Probes: what the scheduler is doing, readable at any time, cheap to keep.
//!
//! * [`events`]: the per-P event counters (polls, spawns, wakes, completions, sampled
//!   sojourns, steals by relation, injector takes), one table indexed by [`Event`], written
//!   by the P's holder without read-modify-write, summed by readers.
//! * [`latency`]: HDR histograms of queue wait and sojourn, recorded for a sample of tasks.
//! * [`little`]: Little's law over a sliding window of counter snapshots.
//! * [`knee`]: where `L(lambda)` stops being linear.
//!
//! Stop-the-world lives in [`crate::stw`]. The runtime decides what to sample and assembles
//! these into its `Probes` snapshot.

pub mod events;
pub mod knee;
pub mod latency;
pub mod little;

pub use events::{Event, EventCounts, EventInfo, EventTable, Events};

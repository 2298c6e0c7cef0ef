//! The scheduling half of gpm: run queues, the wake-up protocol and stealing, generic over
//! the task type. This crate knows nothing of futures; the `gpm` runtime instantiates it
//! with its task handles.
//!
//! | module | Go's name | what it holds |
//! |---|---|---|
//! | [`queue`] | `p.runq`, `p.runnext` | a P's bounded local FIFO and its `runnext` slot |
//! | [`inject`] | `sched.runq` | the global queue |
//! | [`idle`] | `sched.npidle`, `sched.nmspinning` | who sleeps, who searches; the no-lost-wake-up protocol |
//! | [`park`] | `note` | a P's sleep/wake token |
//! | [`processor`] | `findRunnable` | a P's private part and the order in which it looks for work |
//! | [`probe`] | `/sched/` metrics | counters, latency histograms, Little's law, the knee detector |
//! | [`stw`] | `stopTheWorldWithSema` | stopping every P at a safepoint, with a report |
//! | [`steal`] | `stealWork` | stealing policies (victim order), latency history, steal counters |
#![warn(missing_docs)]

pub mod idle;
pub mod inject;
pub mod park;
pub mod probe;
pub mod processor;
pub mod queue;
pub mod rand;
pub mod steal;
pub mod stw;
mod sync;

pub use inject::Injector;
pub use park::ParkDriver;
pub use processor::{
    Config, LocalSlot, Processor, Scheduler, StealConfig, DEFAULT_GLOBAL_QUEUE_INTERVAL,
};
pub use queue::{Local, Source, Stealer, LOCAL_QUEUE_CAPACITY, RUNNEXT_STREAK_MAX};
pub use rand::FastRand;
pub use steal::{AffinityWeights, StealPolicy, StealStats, StealTopology};

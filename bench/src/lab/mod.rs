//! gpm-lab: scheduling and queueing experiments, one command each.
//!
//! Each experiment is a module with a pure part (the model, the statistics: unit-tested) and a
//! driver part that runs real runtimes. Every sweep shows a progress bar on stderr (hidden
//! when stderr is not a terminal), writes CSV and SVG files into the results folder, and
//! returns a [`Table`] the binary prints.
//!
//! # Runtimes and the policy dimension
//!
//! An experiment never builds a gpm runtime itself: it asks a [`RuntimeConfig`] (workers,
//! stealing [`Policy`], probe sampling) to build one. [`Policy::Default`] is whatever the
//! runtime would pick (`GPM_STEAL`, else the cargo feature); the others force
//! `Builder::steal_policy`. With `GPM_BENCH_CPUS` / `GPM_BENCH_NODE` the builder also gets
//! the bench's placement and pins its workers one per CPU.

pub mod compare;
pub mod driver;
pub mod littles;
pub mod out;
pub mod overload_exp;
pub mod policies;
pub mod queue_model;
pub mod queueing;

pub use out::{Output, Table};

use std::fmt;
use std::str::FromStr;

/// A stealing policy of gpm's scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// What the runtime picks by itself: `GPM_STEAL`, else the compiled-in cargo feature.
    Default,
    /// Random start, then round robin (tokio, Go).
    Random,
    /// Victims ranked by shared L3, NUMA proximity and queue wait (default weights).
    Affinity,
    /// L3 peers, node peers, then other nodes by distance.
    Hierarchical,
}

impl Policy {
    /// Every policy the lab knows, in the order tables show them.
    pub const ALL: &'static [Policy] = &[
        Policy::Default,
        Policy::Random,
        Policy::Affinity,
        Policy::Hierarchical,
    ];

    /// The name used on the command line and in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Default => "default",
            Policy::Random => "random",
            Policy::Affinity => "affinity",
            Policy::Hierarchical => "hierarchical",
        }
    }

    /// The scheduler's policy to force, `None` for [`Policy::Default`].
    pub fn steal_policy(self) -> Option<gpm::steal::StealPolicy> {
        use gpm::steal::StealPolicy;
        match self {
            Policy::Default => None,
            Policy::Random => Some(StealPolicy::Random),
            Policy::Affinity => Some(StealPolicy::Affinity(Default::default())),
            Policy::Hierarchical => Some(StealPolicy::Hierarchical),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(text: &str) -> Result<Policy, String> {
        Policy::ALL
            .iter()
            .copied()
            .find(|p| p.name() == text.trim())
            .ok_or_else(|| {
                let known: Vec<_> = Policy::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown stealing policy {text:?}; this build knows: {}",
                    known.join(", ")
                )
            })
    }
}

/// Parses `--policies default,...` (comma-separated, no duplicates, not empty).
pub fn parse_policies(text: &str) -> Result<Vec<Policy>, String> {
    let mut policies = Vec::new();
    for item in text.split(',') {
        let policy: Policy = item.parse()?;
        if policies.contains(&policy) {
            return Err(format!("policy {policy} is listed twice"));
        }
        policies.push(policy);
    }
    Ok(policies)
}

/// How to build the gpm runtime of one experiment point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Worker threads (Ps).
    pub workers: usize,
    /// Stealing policy.
    pub policy: Policy,
    /// Time one task in `probe_sampling` (`Builder::probe_sampling`); 0 turns timing off.
    pub probe_sampling: u32,
}

impl RuntimeConfig {
    /// `workers` Ps, the default policy, probes timing one task in 8.
    pub fn new(workers: usize) -> RuntimeConfig {
        RuntimeConfig {
            workers,
            policy: Policy::Default,
            probe_sampling: 8,
        }
    }

    /// The gpm builder for this configuration.
    pub fn gpm_builder(&self) -> gpm::Builder {
        let mut builder = gpm::Runtime::builder();
        builder
            .worker_threads(self.workers)
            .probe_sampling(self.probe_sampling);
        if let Some(policy) = self.policy.steal_policy() {
            builder.steal_policy(policy);
        }
        crate::pin::apply_to_gpm(&mut builder);
        builder
    }

    /// Builds the gpm runtime.
    pub fn build_gpm(&self) -> Result<gpm::Runtime, String> {
        crate::pin::build_confined(|| self.gpm_builder().build())
            .map_err(|e| format!("cannot build gpm runtime ({self:?}): {e}"))
    }
}

/// Whether `x` is a finite number above zero (NaN is not).
pub fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// CPUs this process may use (at least 1).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_reject() {
        assert_eq!(parse_policies("default").unwrap(), vec![Policy::Default]);
        let unknown = parse_policies("default,lifo").unwrap_err();
        assert!(
            unknown.contains("unknown stealing policy \"lifo\""),
            "{unknown}"
        );
        assert!(parse_policies("default,default")
            .unwrap_err()
            .contains("twice"));
        assert!(parse_policies("").is_err());
    }

    #[test]
    fn config_builds_a_runtime() {
        let rt = RuntimeConfig::new(1).build_gpm().unwrap();
        assert_eq!(rt.handle().num_workers(), 1);
        let zero = RuntimeConfig::new(0).build_gpm().unwrap_err();
        assert!(zero.contains("cannot build gpm runtime"), "{zero}");
    }
}

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
//! stealing [`PolicyChoice`], probe sampling) to build one. `None` (named `default`) is
//! whatever the runtime would pick (`GPM_STEAL`, else the cargo feature); `Some` forces
//! `Builder::steal_policy`. The policies are `gpm::steal::StealPolicy::ALL`. With `GPM_BENCH_CPUS` / `GPM_BENCH_NODE` the builder also gets
//! the bench's placement and pins its workers one per CPU.

pub mod compare;
pub mod driver;
pub mod littles;
pub mod out;
pub mod overload_exp;
pub mod overload_http;
pub mod policies;
pub mod queue_model;
pub mod queueing;
pub mod timers_exp;

pub use out::{Output, Table};

use gpm::steal::StealPolicy;

/// The policy dimension of an experiment: `None` is what the runtime picks by itself
/// (`GPM_STEAL`, else the compiled-in cargo feature), `Some` forces `Builder::steal_policy`.
/// The policies themselves are `StealPolicy::ALL`; the lab keeps no list of its own.
pub type PolicyChoice = Option<StealPolicy>;

/// The command-line and CSV name of the runtime's own choice (`None`).
pub const DEFAULT_POLICY: &str = "default";

/// The name of `choice` on the command line and in CSV files.
pub fn policy_name(choice: PolicyChoice) -> &'static str {
    choice.map_or(DEFAULT_POLICY, |policy| policy.name())
}

/// Every policy of `StealPolicy::ALL`, comma-separated: the default of `--policies`.
pub fn all_policies() -> String {
    StealPolicy::ALL.map(|policy| policy.name()).join(",")
}

/// Parses one policy: [`DEFAULT_POLICY`] or a name of `StealPolicy::ALL`.
pub fn parse_policy(text: &str) -> Result<PolicyChoice, String> {
    if text.trim() == DEFAULT_POLICY {
        return Ok(None);
    }
    text.parse::<StealPolicy>().map(Some).map_err(|_| {
        format!(
            "unknown stealing policy {text:?}; this build knows: {DEFAULT_POLICY}, {}",
            StealPolicy::name_list(", ")
        )
    })
}

/// Parses `--policies default,...` (comma-separated, no duplicates, not empty).
pub fn parse_policies(text: &str) -> Result<Vec<PolicyChoice>, String> {
    let mut policies = Vec::new();
    for item in text.split(',') {
        let policy = parse_policy(item)?;
        if policies.contains(&policy) {
            let name = policy_name(policy);
            return Err(format!("policy {name} is listed twice"));
        }
        policies.push(policy);
    }
    Ok(policies)
}

/// How to build the gpm runtime of one experiment point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeConfig {
    /// Worker threads (Ps).
    pub workers: usize,
    /// Stealing policy (`None`: the runtime's own choice).
    pub policy: PolicyChoice,
    /// The probes: on, timing one task in `n` (`Builder::probe_sampling`; 0 turns timing
    /// off), on with the runtime's defaults, or off.
    pub probes: Probes,
}

/// How a lab runtime's probes are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probes {
    /// On, timing one schedule in this many (0: counting only).
    Sampling(u32),
    /// As a runtime built with no probe settings has them.
    Default,
    /// `enable_probes(false)`, no timing.
    Off,
}

impl RuntimeConfig {
    /// `workers` Ps, the default policy, probes timing one task in 8.
    pub fn new(workers: usize) -> RuntimeConfig {
        RuntimeConfig {
            workers,
            policy: None,
            probes: Probes::Sampling(8),
        }
    }

    /// The gpm builder for this configuration.
    pub fn gpm_builder(&self) -> gpm::Builder {
        let mut builder = gpm::Runtime::builder();
        builder.worker_threads(self.workers);
        match self.probes {
            Probes::Sampling(every) => builder.probe_sampling(every),
            Probes::Default => &mut builder,
            Probes::Off => builder.enable_probes(false).probe_sampling(0),
        };
        if let Some(policy) = self.policy {
            builder.steal_policy(policy);
        }
        crate::pin::apply_to_gpm(&mut builder);
        builder
    }

    /// Builds the gpm runtime; with [`serve_probes_at`] set, it serves its probes there
    /// while it lives.
    pub fn build_gpm(&self) -> Result<gpm::Runtime, String> {
        let rt = crate::pin::build_confined(|| self.gpm_builder().build())
            .map_err(|e| format!("cannot build gpm runtime ({self:?}): {e}"))?;
        if let Some(addr) = SERVE_PROBES.get() {
            let server = rt
                .handle()
                .serve_probes(addr.as_str())
                .map_err(|e| format!("cannot serve probes at {addr}: {e}"))?;
            // The server is tasks on this runtime: it lives as long as the runtime does and
            // closes its listener when the runtime shuts down, so the next point's runtime
            // can bind the same address.
            std::mem::forget(server);
        }
        Ok(rt)
    }
}

static SERVE_PROBES: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every runtime the lab builds ([`RuntimeConfig::build_gpm`]) serve its probes at
/// `addr` (`gpm-lab --serve ADDR`; `Handle::serve_probes`: `/`, `/metrics`, `/probes.json`),
/// one runtime after another, so the page or `gpm-top` watches the experiment run.
pub fn serve_probes_at(addr: String) {
    let _ = SERVE_PROBES.set(addr);
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
        assert_eq!(parse_policies("default").unwrap(), vec![None]);
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

//! The policies a runtime can steal by, their settings, and how one is chosen.

use std::fmt;
use std::str::FromStr;

/// Which victims an idle P visits first. See the [module documentation](super).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StealPolicy {
    /// A uniformly random start, then every other P in round-robin order (tokio, Go).
    Random,
    /// Victims ranked by a score of cache sharing, NUMA proximity and how long the victim's
    /// tasks wait; see [`AffinityWeights`].
    Affinity(AffinityWeights),
    /// L3 peers, then node peers, then the other nodes by increasing distance; a random
    /// start within each tier.
    Hierarchical,
}

/// The weights of the affinity score
/// `cache * shares_l3 + numa * (1 - normalised distance) + latency * latency term`.
///
/// Build with [`AffinityWeights::new`], which rejects negative, infinite and NaN weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffinityWeights {
    cache: f64,
    numa: f64,
    latency: f64,
}

/// A weight that is negative, infinite or NaN; names the weight and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightError {
    /// `cache`, `numa` or `latency`.
    pub weight: &'static str,
    /// The value given.
    pub value: f64,
}

impl fmt::Display for WeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} weight is {}: weights must be finite and non-negative",
            self.weight, self.value
        )
    }
}

impl std::error::Error for WeightError {}

impl AffinityWeights {
    /// The weights: 0.5 for a shared L3, 0.3 for NUMA proximity, 0.2 for latency.
    pub const DEFAULT: AffinityWeights = AffinityWeights {
        cache: 0.5,
        numa: 0.3,
        latency: 0.2,
    };

    /// Checked weights. They need not sum to 1: only their ratios matter to the order.
    ///
    /// # Errors
    /// [`WeightError`] naming the first weight that is negative, infinite or NaN.
    pub fn new(cache: f64, numa: f64, latency: f64) -> Result<AffinityWeights, WeightError> {
        for (weight, value) in [("cache", cache), ("numa", numa), ("latency", latency)] {
            if !value.is_finite() || value < 0.0 {
                return Err(WeightError { weight, value });
            }
        }
        Ok(AffinityWeights {
            cache,
            numa,
            latency,
        })
    }

    /// Weight of sharing an L3 domain.
    pub fn cache(&self) -> f64 {
        self.cache
    }

    /// Weight of NUMA proximity.
    pub fn numa(&self) -> f64 {
        self.numa
    }

    /// Weight of the victim's queue wait.
    pub fn latency(&self) -> f64 {
        self.latency
    }
}

impl Default for AffinityWeights {
    fn default() -> Self {
        AffinityWeights::DEFAULT
    }
}

/// `GPM_STEAL` (or another policy name) names none of [`StealPolicy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePolicyError {
    /// The text given.
    pub input: String,
}

impl fmt::Display for ParsePolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown stealing policy {:?}: expected {}",
            self.input,
            StealPolicy::name_list(" or ")
        )
    }
}

impl std::error::Error for ParsePolicyError {}

/// The environment variable that overrides the compiled-in policy at run time.
pub const STEAL_ENV: &str = "GPM_STEAL";

impl StealPolicy {
    /// Every policy, affinity with its default weights: what a comparison iterates over,
    /// and the one list of policies: parsing, its error text, the lab and the clap value
    /// lists all derive from it, so a new policy is a variant, a row here and its
    /// [`name`](StealPolicy::name).
    pub const ALL: [StealPolicy; 3] = [
        StealPolicy::Random,
        StealPolicy::Affinity(AffinityWeights::DEFAULT),
        StealPolicy::Hierarchical,
    ];

    /// The policy chosen by this build's cargo features: `steal-hierarchical` if on, else
    /// `steal-random` if on, else affinity (also when no feature is on). So `--features
    /// steal-X` selects X even with the default feature (`steal-affinity`) left on.
    ///
    /// This is the one statement of the features' precedence; the docs and the Cargo
    /// manifests refer here.
    pub const fn compiled_default() -> StealPolicy {
        if cfg!(feature = "steal-hierarchical") {
            StealPolicy::Hierarchical
        } else if cfg!(feature = "steal-random") {
            StealPolicy::Random
        } else {
            StealPolicy::Affinity(AffinityWeights::DEFAULT)
        }
    }

    /// The policy named by [`STEAL_ENV`], `None` when it is unset or empty.
    ///
    /// # Errors
    /// [`ParsePolicyError`] naming the value when it is not a policy name.
    pub fn from_env() -> Result<Option<StealPolicy>, ParsePolicyError> {
        match std::env::var(STEAL_ENV) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => value.parse().map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(raw)) => Err(ParsePolicyError {
                input: raw.to_string_lossy().into_owned(),
            }),
        }
    }

    /// The policy's name in [`STEAL_ENV`], the builder's macros and the lab: `random`,
    /// `affinity` or `hierarchical`.
    pub const fn name(&self) -> &'static str {
        match self {
            StealPolicy::Random => "random",
            StealPolicy::Affinity(_) => "affinity",
            StealPolicy::Hierarchical => "hierarchical",
        }
    }

    /// The policy named `name` (ASCII case-insensitive, not trimmed); `None` for no policy.
    pub fn from_name(name: &str) -> Option<StealPolicy> {
        StealPolicy::ALL
            .into_iter()
            .find(|policy| policy.name().eq_ignore_ascii_case(name))
    }

    /// The names of [`StealPolicy::ALL`] in order, the last two joined by `last`:
    /// `name_list(" or ")` is "random, affinity or hierarchical".
    pub fn name_list(last: &str) -> String {
        let names = StealPolicy::ALL.map(|p| p.name());
        match names.split_last() {
            Some((tail, [])) => (*tail).to_owned(),
            Some((tail, init)) => format!("{}{last}{tail}", init.join(", ")),
            None => String::new(),
        }
    }
}

impl Default for StealPolicy {
    fn default() -> Self {
        StealPolicy::compiled_default()
    }
}

impl FromStr for StealPolicy {
    type Err = ParsePolicyError;

    /// A name of [`StealPolicy::ALL`] (affinity with its default weights), trimmed and
    /// case-insensitive.
    fn from_str(text: &str) -> Result<StealPolicy, ParsePolicyError> {
        StealPolicy::from_name(text.trim()).ok_or_else(|| ParsePolicyError {
            input: text.to_owned(),
        })
    }
}

impl fmt::Display for StealPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_weights_are_rejected_by_name() {
        assert!(AffinityWeights::new(0.0, 0.0, 0.0).is_ok());
        let err = AffinityWeights::new(0.5, -0.1, 0.2).unwrap_err();
        assert_eq!(err.weight, "numa");
        assert!(err.to_string().contains("-0.1"), "{err}");
        assert_eq!(
            AffinityWeights::new(f64::NAN, 0.3, 0.2).unwrap_err().weight,
            "cache"
        );
        assert_eq!(
            AffinityWeights::new(0.5, 0.3, f64::INFINITY)
                .unwrap_err()
                .weight,
            "latency"
        );
    }

    #[test]
    fn names_round_trip_and_bad_names_are_quoted() {
        for policy in StealPolicy::ALL {
            assert_eq!(policy.name().parse::<StealPolicy>().unwrap(), policy);
        }
        assert_eq!(
            " Hierarchical ".parse::<StealPolicy>(),
            Ok(StealPolicy::Hierarchical)
        );
        let err = "greedy".parse::<StealPolicy>().unwrap_err();
        assert!(err.to_string().contains("\"greedy\""), "{err}");
    }

    #[test]
    fn compiled_default_follows_the_precedence() {
        let expected = if cfg!(feature = "steal-hierarchical") {
            "hierarchical"
        } else if cfg!(feature = "steal-random") {
            "random"
        } else {
            "affinity"
        };
        assert_eq!(StealPolicy::compiled_default().name(), expected);
    }
}

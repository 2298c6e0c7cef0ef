//! Small statistics shared by the lab, the simulator and the examples.
//!
//! # How sure a ratio is
//!
//! The lab reports ratios of medians from alternating rounds (`tokio / gpm`, probes on /
//! off, one policy against another). [`ratio_of_medians_ci`] says how far such a ratio could
//! move if the experiment were run again: a percentile bootstrap over what varies between
//! reruns. Two things do:
//!
//! * **the rounds**: the runs of one round go back to back under the same machine state,
//!   so a round is resampled whole and the drift its runs share cancels in the ratio, as it
//!   does in the point estimate;
//! * **the runtime instances**: two runtimes built alike can differ by several percent, and
//!   on a workload that is mostly one wake-up (`chained_spawn`) by 20-30%, for the whole of
//!   their life (which threads share a core, which M sleeps where), so rounds on the same
//!   pair of instances are not independent samples. An experiment that builds fresh
//!   runtimes for each block of rounds gives the blocks here, and the bootstrap draws
//!   blocks first, then rounds within each drawn block (a two-stage bootstrap, which errs
//!   on the wide side).
//!
//! A ratio whose interval holds 1.0 is a difference within the noise of the run.

use crate::lab::driver::Rng;
use std::time::Duration;

/// Bootstrap resamples behind each interval.
const RESAMPLES: usize = 2_000;

/// The median of `values`, sorted in place (the mean of the middle two for an even count;
/// NaN when empty).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median of `samples`: [`median`] over their nanoseconds (the mean of the middle two
/// for an even count, to the nanosecond below; exact for durations under 52 days); zero
/// when empty.
pub fn median_duration(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut nanos: Vec<f64> = samples.iter().map(|d| d.as_nanos() as f64).collect();
    Duration::from_nanos(median(&mut nanos) as u64)
}

/// A `level` (e.g. 0.95) confidence interval for the ratio of the median of all of
/// `numerators` to the median of all of `denominators`. Both are given as blocks of rounds
/// (one block per pair of runtime instances; a single block if the runtimes lived through
/// the whole experiment), and round `i` of block `b` of one side ran beside round `i` of
/// block `b` of the other (module docs). `None` with fewer than two rounds, blocks of
/// different shapes, or a level outside (0, 1).
pub fn ratio_of_medians_ci(
    numerators: &[Vec<f64>],
    denominators: &[Vec<f64>],
    level: f64,
) -> Option<(f64, f64)> {
    let same_shape = numerators.len() == denominators.len()
        && numerators
            .iter()
            .zip(denominators)
            .all(|(n, d)| n.len() == d.len());
    let rounds: usize = numerators.iter().map(Vec::len).sum();
    if rounds < 2 || !same_shape || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let mut rng = Rng::new(seed_of(numerators.iter().chain(denominators).flatten()));
    let (mut top, mut bottom) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            top.clear();
            bottom.clear();
            for _ in 0..numerators.len() {
                let block = pick(&mut rng, numerators.len());
                let (n, d) = (&numerators[block], &denominators[block]);
                for _ in 0..n.len() {
                    let round = pick(&mut rng, n.len());
                    top.push(n[round]);
                    bottom.push(d[round]);
                }
            }
            median(&mut top) / median(&mut bottom)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| ratios[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Some((at(tail), at(1.0 - tail)))
}

/// A seed from the data, so that the same rounds always give the same interval.
fn seed_of<'a>(values: impl Iterator<Item = &'a f64>) -> u64 {
    values.fold(0, |h, x| h.rotate_left(7) ^ x.to_bits())
}

/// Uniform in `0..n` (`n > 0`).
fn pick(rng: &mut Rng, n: usize) -> usize {
    ((rng.unit() * n as f64) as usize).min(n - 1)
}

/// [`ratio_of_medians_ci`] at 95% as `lo-hi` with two decimals, or `-` without an
/// interval.
pub fn ci95_text(numerators: &[Vec<f64>], denominators: &[Vec<f64>]) -> String {
    match ratio_of_medians_ci(numerators, denominators, 0.95) {
        Some((lo, hi)) => format!("{lo:.2}-{hi:.2}"),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn median_duration_of_odd_even_and_empty() {
        let d = Duration::from_millis;
        assert_eq!(median_duration(&[d(3), d(1), d(2)]), d(2));
        let even = [d(4), d(1), d(2), d(3)];
        assert_eq!(median_duration(&even), Duration::from_micros(2500));
        let odd_sum = [Duration::from_nanos(1), Duration::from_nanos(2)];
        assert_eq!(median_duration(&odd_sum), Duration::from_nanos(1));
        assert_eq!(median_duration(&[]), Duration::ZERO);
    }

    /// Rounds whose times drift together (a machine speeding up and slowing down), with
    /// `noise` of independent jitter on each side's run, in one block.
    fn drifting_rounds(rounds: usize, ratio: f64, noise: f64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut rng = Rng::new(42);
        let (top, bottom) = (0..rounds)
            .map(|i| {
                let drift = 1.0 + 0.5 * ((i as f64) / 7.0).sin();
                let jitter = |rng: &mut Rng| 1.0 + noise * (rng.unit() - 0.5);
                (ratio * drift * jitter(&mut rng), drift * jitter(&mut rng))
            })
            .unzip();
        (vec![top], vec![bottom])
    }

    #[test]
    fn a_ratio_without_jitter_has_no_width_whatever_the_drift() {
        let (top, bottom) = drifting_rounds(101, 2.0, 0.0);
        let (lo, hi) = ratio_of_medians_ci(&top, &bottom, 0.95).unwrap();
        assert!(
            (lo - 2.0).abs() < 1e-9 && (hi - 2.0).abs() < 1e-9,
            "{lo}-{hi}"
        );
    }

    #[test]
    fn the_interval_holds_the_true_ratio_and_widens_with_jitter() {
        let width = |noise| {
            let (top, bottom) = drifting_rounds(101, 1.3, noise);
            let (lo, hi) = ratio_of_medians_ci(&top, &bottom, 0.95).unwrap();
            assert!(lo <= 1.3 && 1.3 <= hi, "noise {noise}: {lo}-{hi}");
            hi - lo
        };
        let (quiet, loud) = (width(0.02), width(0.2));
        assert!(quiet > 0.0 && loud > 2.0 * quiet, "{quiet} vs {loud}");
    }

    #[test]
    fn instances_that_differ_widen_the_interval_that_rounds_alone_would_give() {
        // Five pairs of instances: the numerator's instance is 1.00x to 1.16x the
        // denominator's, each steady over its 25 rounds. Rounds alone make the ratio look
        // certain (the pooled median stays in the middle instance); the blocks say it could
        // be anywhere the instances put it.
        let mut rng = Rng::new(7);
        let blocks: Vec<(Vec<f64>, Vec<f64>)> = [1.00, 1.04, 1.08, 1.12, 1.16]
            .iter()
            .map(|&effect| {
                (0..25)
                    .map(|_| (effect * (1.0 + 0.01 * (rng.unit() - 0.5)), 1.0))
                    .unzip()
            })
            .collect();
        let (top, bottom): (Vec<_>, Vec<_>) = blocks.into_iter().unzip();
        let (lo, hi) = ratio_of_medians_ci(&top, &bottom, 0.95).unwrap();
        let pooled = |v: &[Vec<f64>]| vec![v.concat()];
        let (flat_lo, flat_hi) =
            ratio_of_medians_ci(&pooled(&top), &pooled(&bottom), 0.95).unwrap();
        assert!(lo < 1.05 && hi > 1.11, "blocks: {lo}-{hi}");
        assert!(
            flat_hi - flat_lo < 0.5 * (hi - lo),
            "rounds only: {flat_lo}-{flat_hi}, blocks: {lo}-{hi}"
        );
    }

    #[test]
    fn the_same_rounds_give_the_same_interval() {
        let (top, bottom) = drifting_rounds(31, 1.1, 0.1);
        assert_eq!(
            ratio_of_medians_ci(&top, &bottom, 0.9),
            ratio_of_medians_ci(&top, &bottom, 0.9)
        );
    }

    #[test]
    fn too_few_rounds_mismatched_blocks_or_a_bad_level_give_no_interval() {
        let one = |v: &[f64]| vec![v.to_vec()];
        assert_eq!(ratio_of_medians_ci(&one(&[1.0]), &one(&[1.0]), 0.95), None);
        assert_eq!(
            ratio_of_medians_ci(&one(&[1.0, 2.0]), &one(&[1.0]), 0.95),
            None
        );
        let two_blocks = vec![vec![1.0], vec![2.0]];
        assert_eq!(
            ratio_of_medians_ci(&two_blocks, &one(&[1.0, 2.0]), 0.95),
            None
        );
        assert_eq!(
            ratio_of_medians_ci(&one(&[1.0, 2.0]), &one(&[1.0, 2.0]), 1.0),
            None
        );
        assert_eq!(ci95_text(&one(&[1.0]), &one(&[1.0])), "-");
        assert_eq!(ci95_text(&one(&[2.0, 2.0]), &one(&[1.0, 1.0])), "2.00-2.00");
    }
}

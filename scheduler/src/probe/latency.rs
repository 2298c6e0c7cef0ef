//! Latency distributions recorded with plain loads and stores on the hot path.
//!
//! Each P records into its own histogram, written only by the P's holder (as the per-P
//! event table, `probe::events`); threads that hold no P record into a shared one with
//! atomic adds. A reader sums the buckets of all of them whenever it likes: it never
//! stops a writer, and a writer never waits or drops a sample.
//!
//! # Buckets
//!
//! Log-linear, as HDR histograms: values below 256 ns have a bucket each; above, each
//! power of two is cut into 128 buckets, so a bucket is at most 1/128 of its values wide
//! and a quantile read at a bucket's upper end is at most 0.8% above the recorded value
//! (the mean, read at the buckets' midpoints, within 0.4%). Values are nanoseconds from
//! 1 ns to one hour (larger values are clamped): 4,562 buckets, 36 KiB a histogram.
//!
//! Recording is a count of leading zeros, a shift and one counter increment, about a tenth
//! of an HDR histogram's `record` behind a `try_lock` (which it replaced: issue 14,
//! docs/BENCHMARKS.md "Probes at the floor").

use crate::sync::atomic::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;

const HIGHEST_NS: u64 = 3_600_000_000_000;
/// Bits of a value kept below its leading one: 128 buckets per power of two.
const SUB_BITS: u32 = 7;
/// Values below this have a bucket each.
const LINEAR: u64 = 2 << SUB_BITS;
/// Buckets needed up to [`HIGHEST_NS`] (below 2^42).
const BUCKETS: usize = bucket_of(HIGHEST_NS) + 1;

/// One histogram per P plus one for threads without a P.
pub struct LatencyHistograms {
    per_processor: Box<[CachePadded<Buckets>]>,
    shared: Buckets,
}

/// The counters of one histogram.
struct Buckets(Box<[AtomicU64]>);

/// Summary of a distribution, in nanoseconds (serialisable, for the probes' JSON).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Quantiles {
    /// Number of recorded values.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest value.
    pub max_ns: u64,
}

/// The bucket of `ns` (at least 1, at most [`HIGHEST_NS`]).
#[inline]
const fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    // `ns >> shift` keeps the leading one and SUB_BITS bits below it: 128..=255.
    let shift = (63 - ns.leading_zeros()) - SUB_BITS;
    ((shift as u64) << SUB_BITS) as usize + (ns >> shift) as usize
}

/// The values bucket `index` holds: `(lowest, highest)`, inclusive.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < LINEAR {
        return (index, index);
    }
    let shift = (index >> SUB_BITS) - 1;
    let lowest = (index - (shift << SUB_BITS)) << shift;
    (lowest, lowest + (1 << shift) - 1)
}

impl Buckets {
    fn new() -> Buckets {
        Buckets((0..BUCKETS).map(|_| AtomicU64::new(0)).collect())
    }

    /// One value, by the only thread that writes here: a load and a store.
    #[inline]
    fn record_owned(&self, ns: u64) {
        let counter = &self.0[bucket_of(ns.clamp(1, HIGHEST_NS))];
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// One value, by any thread.
    fn record_shared(&self, ns: u64) {
        self.0[bucket_of(ns.clamp(1, HIGHEST_NS))].fetch_add(1, Ordering::Relaxed);
    }

    fn add_to(&self, total: &mut [u64]) {
        for (sum, counter) in total.iter_mut().zip(self.0.iter()) {
            *sum += counter.load(Ordering::Relaxed);
        }
    }
}

impl LatencyHistograms {
    /// Histograms for `processors` Ps.
    pub fn new(processors: usize) -> LatencyHistograms {
        LatencyHistograms {
            per_processor: (0..processors)
                .map(|_| CachePadded::new(Buckets::new()))
                .collect(),
            shared: Buckets::new(),
        }
    }

    /// Records `ns` for the holder of P `processor` (the only thread that may record for
    /// that P: two writers of one P would lose counts, never memory safety), or for a
    /// thread without one (`None`, or a P this runtime does not have).
    #[inline]
    pub fn record(&self, processor: Option<usize>, ns: u64) {
        match processor.and_then(|p| self.per_processor.get(p)) {
            Some(buckets) => buckets.record_owned(ns),
            None => self.shared.record_shared(ns),
        }
    }

    /// The summary of all values recorded so far (a reader's operation: it sums every
    /// histogram's buckets, relaxed, while writers go on).
    pub fn quantiles(&self) -> Quantiles {
        let mut total = vec![0; BUCKETS];
        self.shared.add_to(&mut total);
        for buckets in self.per_processor.iter() {
            buckets.add_to(&mut total);
        }
        quantiles(&total)
    }
}

/// The summary of summed bucket counts.
fn quantiles(buckets: &[u64]) -> Quantiles {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return Quantiles::default();
    }
    let midpoint = |index| {
        let (lowest, highest) = bucket_range(index);
        (lowest as f64 + highest as f64) / 2.0
    };
    let sum: f64 = buckets
        .iter()
        .enumerate()
        .map(|(index, &n)| n as f64 * midpoint(index))
        .sum();
    let highest = |index| bucket_range(index).1.min(HIGHEST_NS);
    let at = |quantile: f64| {
        // The smallest value with at least `quantile` of the count at or below it.
        let rank = ((quantile * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        let index = buckets
            .iter()
            .position(|&n| {
                seen += n;
                seen >= rank
            })
            .expect("rank <= count");
        highest(index)
    };
    let last = buckets.iter().rposition(|&n| n > 0).expect("count > 0");
    Quantiles {
        count,
        mean_ns: sum / count as f64,
        p50_ns: at(0.5),
        p99_ns: at(0.99),
        p999_ns: at(0.999),
        max_ns: highest(last),
    }
}

impl fmt::Debug for LatencyHistograms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistograms")
            .field("processors", &self.per_processor.len())
            .finish()
    }
}

#[cfg(all(test, not(gpm_loom)))]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_known_values() {
        let histograms = LatencyHistograms::new(2);
        // 1..=1000 us spread over both Ps and the shared histogram.
        for us in 1..=1000u64 {
            let processor = match us % 3 {
                0 => Some(0),
                1 => Some(1),
                _ => None,
            };
            histograms.record(processor, us * 1000);
        }
        let q = histograms.quantiles();
        assert_eq!(q.count, 1000);
        let close = |value: u64, expected: u64| value.abs_diff(expected) <= expected / 100;
        assert!(close(q.p50_ns, 500_000), "{q:?}");
        assert!(close(q.p99_ns, 990_000), "{q:?}");
        assert!(close(q.p999_ns, 999_000), "{q:?}");
        assert!(close(q.max_ns, 1_000_000), "{q:?}");
        assert!((q.mean_ns - 500_500.0).abs() < 500_500.0 / 100.0);
    }

    #[test]
    fn out_of_range_processor_and_values_are_safe() {
        let histograms = LatencyHistograms::new(1);
        histograms.record(Some(7), 0);
        histograms.record(Some(0), u64::MAX);
        let q = histograms.quantiles();
        assert_eq!(q.count, 2);
        assert_eq!(q.max_ns, HIGHEST_NS);
        assert_eq!(q.p50_ns, 1, "0 counts as 1 ns");
    }

    #[test]
    fn threads_without_a_p_lose_no_sample_and_a_reader_never_stops_a_writer() {
        let histograms = std::sync::Arc::new(LatencyHistograms::new(1));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let histograms = std::sync::Arc::clone(&histograms);
                std::thread::spawn(move || {
                    for ns in 1..=10_000u64 {
                        histograms.record(None, ns);
                    }
                })
            })
            .collect();
        // P 0's holder records while a reader sums; counts only grow.
        let mut last = 0;
        for ns in 1..=10_000u64 {
            histograms.record(Some(0), ns);
            if ns % 1000 == 0 {
                let count = histograms.quantiles().count;
                assert!(count >= last && count >= ns, "{count} after {ns} of P 0's");
                last = count;
            }
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(histograms.quantiles().count, 50_000);
    }

    #[test]
    fn empty_histograms_summarise_to_zero() {
        assert_eq!(LatencyHistograms::new(3).quantiles(), Quantiles::default());
    }

    #[test]
    fn buckets_tile_the_values_without_gaps_and_stay_within_1_in_128() {
        assert_eq!(BUCKETS, 4_562);
        let mut next = 0;
        for index in 0..BUCKETS {
            let (lowest, highest) = bucket_range(index);
            assert_eq!(
                lowest,
                next,
                "bucket {index} starts where {} ended",
                index - 1
            );
            assert!(highest >= lowest);
            if lowest >= LINEAR {
                assert!((highest - lowest + 1) * 128 <= lowest, "bucket {index}");
            }
            assert_eq!(bucket_of(lowest), index);
            assert_eq!(bucket_of(highest), index);
            next = highest + 1;
        }
        assert!(next > HIGHEST_NS);
    }

    #[test]
    fn small_values_are_exact_and_large_ones_within_a_percent() {
        let histograms = LatencyHistograms::new(1);
        for ns in [1, 7, 255] {
            histograms.record(Some(0), ns);
        }
        assert_eq!(histograms.quantiles().max_ns, 255);
        for ns in [256u64, 1_000, 123_456, 987_654_321, 3_000_000_000_000] {
            let one = LatencyHistograms::new(1);
            one.record(Some(0), ns);
            let q = one.quantiles();
            assert!(q.p50_ns >= ns && q.p50_ns - ns <= ns / 128, "{ns}: {q:?}");
            assert!(
                (q.mean_ns - ns as f64).abs() <= ns as f64 / 256.0,
                "{ns}: {q:?}"
            );
        }
    }
}

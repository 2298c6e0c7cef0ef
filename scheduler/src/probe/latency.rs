//! Latency distributions (HDR histograms) recorded without waiting on the hot path.
//!
//! Each P records into its own histogram; threads that hold no P record into a shared one.
//! The P's histogram sits behind a mutex that only its holder and readers touch: the holder
//! uses `try_lock`, so a reader in the middle of a merge costs the holder one dropped sample
//! (counted in [`LatencyHistograms::dropped`]), never a wait. Values are nanoseconds with
//! three significant digits, from 1 ns to one hour (larger values are clamped).

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::Mutex;
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use std::fmt;

const HIGHEST_NS: u64 = 3_600_000_000_000;

/// One histogram per P plus one for threads without a P.
pub struct LatencyHistograms {
    per_processor: Box<[CachePadded<Mutex<Histogram<u64>>>]>,
    shared: Mutex<Histogram<u64>>,
    dropped: AtomicU64,
}

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

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("static histogram bounds are valid")
}

impl LatencyHistograms {
    /// Histograms for `processors` Ps.
    pub fn new(processors: usize) -> LatencyHistograms {
        LatencyHistograms {
            per_processor: (0..processors)
                .map(|_| CachePadded::new(Mutex::new(new_histogram())))
                .collect(),
            shared: Mutex::new(new_histogram()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records `ns` for the holder of P `processor`, or for a thread without one.
    pub fn record(&self, processor: Option<usize>, ns: u64) {
        let ns = ns.clamp(1, HIGHEST_NS);
        match processor.and_then(|p| self.per_processor.get(p)) {
            Some(histogram) => match histogram.try_lock() {
                Ok(mut histogram) => histogram.saturating_record(ns),
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => lock(&self.shared).saturating_record(ns),
        }
    }

    /// Samples lost because a reader held a P's histogram.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// All histograms merged (a reader's operation; briefly locks each one).
    pub fn merged(&self) -> Histogram<u64> {
        let mut total = lock(&self.shared).clone();
        for histogram in self.per_processor.iter() {
            // Both have the same bounds, so adding cannot fail.
            let _ = total.add(&*lock(histogram));
        }
        total
    }

    /// The summary of all values recorded so far.
    pub fn quantiles(&self) -> Quantiles {
        quantiles(&self.merged())
    }
}

/// The summary of one histogram.
pub fn quantiles(histogram: &Histogram<u64>) -> Quantiles {
    if histogram.is_empty() {
        return Quantiles::default();
    }
    Quantiles {
        count: histogram.len(),
        mean_ns: histogram.mean(),
        p50_ns: histogram.value_at_quantile(0.5),
        p99_ns: histogram.value_at_quantile(0.99),
        p999_ns: histogram.value_at_quantile(0.999),
        max_ns: histogram.max(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for LatencyHistograms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistograms")
            .field("processors", &self.per_processor.len())
            .field("dropped", &self.dropped())
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
        assert!(q.max_ns <= HIGHEST_NS + HIGHEST_NS / 1000);
    }

    #[test]
    fn empty_histograms_summarise_to_zero() {
        assert_eq!(LatencyHistograms::new(3).quantiles(), Quantiles::default());
    }
}

//! Little's law from counters: arrival rate over a sliding window, mean sojourn, and the
//! gap between the measured `L` and `lambda * W`.
//!
//! # Design
//!
//! The hot path only bumps counters (per-P, single writer) and, for a sample of tasks, adds
//! a duration to a sum and a count. A reader takes a [`Totals`] snapshot of the cumulative
//! counters whenever it looks; [`LittleWindow`] keeps the snapshots of the last `span` and
//! computes every rate as a difference between the newest and the oldest, so no thread ever
//! resets a counter and the hot path never sees the reader.
//!
//! * `lambda` = arrivals in the window / window length (tasks per second).
//! * `W` = sampled sojourn sum / sampled count in the window (seconds).
//! * `L` is measured directly by the caller (tasks alive now) and compared with
//!   `lambda * W`. The two agree in a steady state; the relative gap grows when the system
//!   is not in equilibrium (load rising past the knee, a burst draining), which is exactly
//!   when a queueing study wants to know that the averages do not describe the present.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Cumulative counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    /// When they were read.
    pub at: Instant,
    /// Arrivals so far.
    pub arrivals: u64,
    /// Sum of the sampled sojourn times so far, nanoseconds.
    pub sojourn_sum_ns: u64,
    /// Number of sampled sojourns so far.
    pub sojourn_count: u64,
}

/// The law's three quantities over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LittlesLaw {
    /// Length of the window the rates come from.
    pub window: Duration,
    /// Arrival rate, tasks per second.
    pub lambda: f64,
    /// Mean sojourn time in the window, seconds (`NaN` when nothing was sampled).
    pub mean_sojourn: f64,
    /// Tasks in the system, measured.
    pub measured_l: f64,
    /// `lambda * W`.
    pub predicted_l: f64,
    /// `(measured - predicted) / max(measured, predicted)`, in `[-1, 1]`; 0 when both are 0.
    pub deviation: f64,
}

/// Snapshots of the last `span`, oldest first.
#[derive(Debug, Clone)]
pub struct LittleWindow {
    span: Duration,
    snapshots: VecDeque<Totals>,
}

impl LittleWindow {
    /// A window covering the last `span` (at least two snapshots are always kept).
    pub fn new(span: Duration) -> LittleWindow {
        LittleWindow {
            span,
            snapshots: VecDeque::new(),
        }
    }

    /// Adds a snapshot and forgets those older than the span (keeping one just outside it,
    /// so the window covers the whole span once enough time has passed).
    pub fn push(&mut self, totals: Totals) {
        self.snapshots.push_back(totals);
        while self.snapshots.len() > 2 {
            let second = self.snapshots[1];
            if totals.at.duration_since(second.at) >= self.span {
                self.snapshots.pop_front();
            } else {
                break;
            }
        }
    }

    /// The law over the window, given the `L` measured now; `None` until two snapshots at
    /// distinct instants exist.
    pub fn law(&self, measured_l: f64) -> Option<LittlesLaw> {
        let (first, last) = (self.snapshots.front()?, self.snapshots.back()?);
        let window = last.at.checked_duration_since(first.at)?;
        if window.is_zero() {
            return None;
        }
        let secs = window.as_secs_f64();
        let lambda = last.arrivals.saturating_sub(first.arrivals) as f64 / secs;
        let count = last.sojourn_count.saturating_sub(first.sojourn_count);
        let sum = last.sojourn_sum_ns.saturating_sub(first.sojourn_sum_ns);
        let mean_sojourn = if count == 0 {
            f64::NAN
        } else {
            sum as f64 / count as f64 / 1e9
        };
        let predicted_l = lambda * mean_sojourn;
        Some(LittlesLaw {
            window,
            lambda,
            mean_sojourn,
            measured_l,
            predicted_l,
            deviation: relative_gap(measured_l, predicted_l),
        })
    }
}

fn relative_gap(measured: f64, predicted: f64) -> f64 {
    let scale = measured.abs().max(predicted.abs());
    if !predicted.is_finite() || scale == 0.0 {
        return 0.0;
    }
    (measured - predicted) / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(at: Instant, arrivals: u64, sum_ms: u64, count: u64) -> Totals {
        Totals {
            at,
            arrivals,
            sojourn_sum_ns: sum_ms * 1_000_000,
            sojourn_count: count,
        }
    }

    #[test]
    fn steady_state_agrees_with_the_law() {
        let t0 = Instant::now();
        let mut window = LittleWindow::new(Duration::from_secs(1));
        window.push(totals(t0, 0, 0, 0));
        // 2 seconds later: 2000 arrivals (1000/s), 100 sampled sojourns of 5 ms each.
        window.push(totals(t0 + Duration::from_secs(2), 2000, 500, 100));
        let law = window.law(5.0).unwrap();
        assert!((law.lambda - 1000.0).abs() < 1e-9);
        assert!((law.mean_sojourn - 0.005).abs() < 1e-12);
        assert!((law.predicted_l - 5.0).abs() < 1e-9);
        assert!(law.deviation.abs() < 1e-9);
    }

    #[test]
    fn backlog_shows_as_positive_deviation() {
        let t0 = Instant::now();
        let mut window = LittleWindow::new(Duration::from_secs(1));
        window.push(totals(t0, 0, 0, 0));
        window.push(totals(t0 + Duration::from_secs(1), 1000, 100, 100));
        // lambda * W = 1000 * 1 ms = 1, but 4 tasks are in the system: a backlog builds.
        let law = window.law(4.0).unwrap();
        assert!((law.deviation - 0.75).abs() < 1e-9, "{law:?}");
    }

    #[test]
    fn old_snapshots_leave_the_window() {
        let t0 = Instant::now();
        let mut window = LittleWindow::new(Duration::from_secs(1));
        for s in 0..10u64 {
            window.push(totals(t0 + Duration::from_secs(s), s * 10, 0, 0));
        }
        // Rate over the last second only, although the first snapshots said the same.
        let law = window.law(0.0).unwrap();
        assert_eq!(law.window, Duration::from_secs(1));
        assert!((law.lambda - 10.0).abs() < 1e-9);
        assert!(law.mean_sojourn.is_nan());
        assert_eq!(law.deviation, 0.0);
    }

    #[test]
    fn one_snapshot_is_not_a_window() {
        let mut window = LittleWindow::new(Duration::from_secs(1));
        assert!(window.law(1.0).is_none());
        window.push(totals(Instant::now(), 1, 1, 1));
        assert!(window.law(1.0).is_none());
    }
}

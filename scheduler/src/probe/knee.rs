//! The knee detector: where queueing stops being linear in load.
//!
//! # What it measures
//!
//! Little's law says `L = lambda * W`. While the sojourn time `W` does not depend on the
//! arrival rate `lambda`, `L` is a straight line in `lambda` and its second derivative is
//! zero. Near saturation `W` grows with `lambda` and `L` bends upwards: the knee. The
//! detector estimates `d2L/dlambda2` by central differences on a non-uniform grid,
//!
//! ```text
//! L''(x_i) = 2 * ( (L_{i+1} - L_i) / (x_{i+1} - x_i) - (L_i - L_{i-1}) / (x_i - x_{i-1}) )
//!              / (x_{i+1} - x_{i-1})
//! ```
//!
//! # Units, and why the threshold is dimensionless
//!
//! `L` is in tasks, `lambda` in tasks per second, so `L''` is in tasks * s^2, and its size
//! depends on the service rate: a raw threshold would have to be re-tuned for every workload.
//! The detector therefore compares the *relative curvature* `c = lambda^2 * L'' / L`, which
//! has no unit and does not change when time is rescaled. For M/M/1 (`L = rho / (1 - rho)`)
//! it is `c = 2 rho / (1 - rho)^2`: 1.2 at `rho = 0.3`, 4 at 0.5, 10.8 at 0.65, 40 at 0.8.
//! The default threshold [`DEFAULT_CURVATURE_THRESHOLD`] = 8 flags an M/M/1 queue at about
//! `rho = 0.61`, where its P99 starts to climb steeply.
//!
//! A knee is flagged at the first point (in increasing `lambda`) whose curvature exceeds the
//! threshold and stays above it for `persistence` consecutive points, so one noisy point
//! does not raise it. A linear (or concave) series never flags.

use std::collections::VecDeque;

/// Relative curvature above which the load is past the knee (see the module docs).
pub const DEFAULT_CURVATURE_THRESHOLD: f64 = 8.0;

/// Consecutive points that must stay above the threshold.
pub const DEFAULT_PERSISTENCE: usize = 2;

/// One observation: an arrival rate and the number of tasks in the system at that rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadPoint {
    /// Arrival rate, tasks per second.
    pub lambda: f64,
    /// Tasks in the system (queued or running), a mean over the observation.
    pub in_system: f64,
}

/// A flagged knee.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knee {
    /// The arrival rate at the knee, tasks per second.
    pub lambda: f64,
    /// `L` there.
    pub in_system: f64,
    /// The relative curvature there (dimensionless).
    pub curvature: f64,
}

/// Flags the knee over a sliding window of `(lambda, L)` points.
#[derive(Debug, Clone)]
pub struct KneeDetector {
    window: VecDeque<LoadPoint>,
    capacity: usize,
    threshold: f64,
    persistence: usize,
}

impl KneeDetector {
    /// A detector over the last `capacity` points (at least 3) with the default threshold.
    pub fn new(capacity: usize) -> KneeDetector {
        KneeDetector::with_threshold(capacity, DEFAULT_CURVATURE_THRESHOLD, DEFAULT_PERSISTENCE)
    }

    /// A detector with an explicit relative-curvature threshold and persistence (>= 1).
    pub fn with_threshold(capacity: usize, threshold: f64, persistence: usize) -> KneeDetector {
        KneeDetector {
            window: VecDeque::with_capacity(capacity.max(3)),
            capacity: capacity.max(3),
            threshold,
            persistence: persistence.max(1),
        }
    }

    /// Adds a point (dropping the oldest when the window is full) and returns the knee of the
    /// window, if any. Points with non-finite or negative values are ignored.
    pub fn observe(&mut self, point: LoadPoint) -> Option<Knee> {
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if valid(point.lambda) && valid(point.in_system) {
            if self.window.len() == self.capacity {
                self.window.pop_front();
            }
            self.window.push_back(point);
        }
        self.knee()
    }

    /// The knee of the current window, if any.
    pub fn knee(&self) -> Option<Knee> {
        let mut points: Vec<LoadPoint> = self.window.iter().copied().collect();
        points.sort_by(|a, b| a.lambda.total_cmp(&b.lambda));
        points.dedup_by(|a, b| a.lambda == b.lambda);
        find_knee(&points, self.threshold, self.persistence)
    }
}

/// The knee of a series sorted by increasing, distinct `lambda`.
pub fn find_knee(points: &[LoadPoint], threshold: f64, persistence: usize) -> Option<Knee> {
    let curvatures = relative_curvatures(points);
    let persistence = persistence.max(1);
    (0..curvatures.len()).find_map(|start| {
        let run = curvatures.get(start..start + persistence)?;
        if run.iter().all(|&(_, c)| c > threshold) {
            let (index, curvature) = curvatures[start];
            let point = points[index];
            return Some(Knee {
                lambda: point.lambda,
                in_system: point.in_system,
                curvature,
            });
        }
        None
    })
}

/// `(index, lambda^2 * L'' / L)` for every interior point with `L > 0`.
pub fn relative_curvatures(points: &[LoadPoint]) -> Vec<(usize, f64)> {
    (1..points.len().saturating_sub(1))
        .filter_map(|i| {
            let (a, b, c) = (points[i - 1], points[i], points[i + 1]);
            if b.in_system <= 0.0 {
                return None;
            }
            let second = second_derivative(a, b, c)?;
            Some((i, b.lambda * b.lambda * second / b.in_system))
        })
        .collect()
}

/// Central difference of `L` at `b` on a non-uniform grid.
fn second_derivative(a: LoadPoint, b: LoadPoint, c: LoadPoint) -> Option<f64> {
    let (h0, h1) = (b.lambda - a.lambda, c.lambda - b.lambda);
    if h0 <= 0.0 || h1 <= 0.0 {
        return None;
    }
    let slope0 = (b.in_system - a.in_system) / h0;
    let slope1 = (c.in_system - b.in_system) / h1;
    Some(2.0 * (slope1 - slope0) / (h0 + h1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mm1(mu: f64, rhos: impl Iterator<Item = f64>) -> Vec<LoadPoint> {
        rhos.map(|rho| LoadPoint {
            lambda: rho * mu,
            in_system: rho / (1.0 - rho),
        })
        .collect()
    }

    #[test]
    fn linear_regime_never_flags() {
        let mut detector = KneeDetector::new(8);
        for i in 1..200 {
            let lambda = f64::from(i) * 37.0;
            // W = 2 ms whatever the load: L = lambda * W exactly.
            let knee = detector.observe(LoadPoint {
                lambda,
                in_system: lambda * 0.002,
            });
            assert_eq!(knee, None, "flagged a knee at lambda = {lambda}");
        }
    }

    #[test]
    fn concave_series_never_flags() {
        let points: Vec<_> = (1..50)
            .map(|i| LoadPoint {
                lambda: f64::from(i),
                in_system: f64::from(i).sqrt(),
            })
            .collect();
        assert_eq!(find_knee(&points, DEFAULT_CURVATURE_THRESHOLD, 1), None);
    }

    /// M/M/1 with mu = 1000/s, rho = 0.05, 0.10, ..., 0.95. Worked out by hand from the
    /// central differences: c(600) = 7.62 (below 8), c(650) = 10.83, c(700) = 16.0, so the
    /// knee is at lambda = 650 (analytically c = 2 rho / (1 - rho)^2 = 10.8 at rho = 0.65).
    #[test]
    fn mm1_knee_flags_at_the_right_point() {
        let points = mm1(1000.0, (1..20).map(|i| f64::from(i) / 20.0));
        let curvatures = relative_curvatures(&points);
        let at = |lambda: f64| {
            let (i, c) = curvatures
                .iter()
                .find(|(i, _)| (points[*i].lambda - lambda).abs() < 1e-9)
                .unwrap();
            assert_eq!(points[*i].lambda, lambda);
            *c
        };
        assert!((at(600.0) - 7.62).abs() < 0.01);
        assert!((at(650.0) - 10.83).abs() < 0.01);
        let knee = find_knee(&points, DEFAULT_CURVATURE_THRESHOLD, 2).unwrap();
        assert!((knee.lambda - 650.0).abs() < 1e-9, "{knee:?}");
    }

    #[test]
    fn sliding_window_finds_the_knee_in_arrival_order_and_ignores_one_noisy_point() {
        let mut detector = KneeDetector::new(32);
        let mut points = mm1(1000.0, (1..20).map(|i| f64::from(i) / 20.0));
        // A single outlier at low load: curvature spikes at one point only.
        points[3].in_system *= 1.6;
        // Observed out of order (a sweep that went up and down).
        points.reverse();
        let mut last = None;
        for point in points {
            last = detector.observe(point);
        }
        assert!((last.unwrap().lambda - 650.0).abs() < 1e-9);
    }

    #[test]
    fn bad_points_are_ignored() {
        let mut detector = KneeDetector::new(4);
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert_eq!(
                detector.observe(LoadPoint {
                    lambda: bad,
                    in_system: 1.0
                }),
                None
            );
        }
        assert_eq!(detector.knee(), None);
    }
}

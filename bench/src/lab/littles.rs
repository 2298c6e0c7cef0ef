//! `littles-law` and `workers`: open-loop sweeps of the arrival rate.
//!
//! For each point a fresh gpm runtime with `N` workers gets Poisson arrivals at `lambda`
//! (see [`driver`]), each task busy-spinning for `S`. A warm-up (a fifth of
//! the point) is offered but not measured. Per point the lab reports:
//!
//! * `W` mean, P50, P99 of the sojourn, measured by each task from its spawn to its
//!   completion (HDR histogram; the spawn, not the intended arrival, so that `W` and `L`
//!   describe the same system: the driver's mean lateness is its own column), and gpm's own
//!   probes (sampled sojourn P50/P99, and its
//!   Little's-law window);
//! * `L`: the time-average of the tasks alive (`Handle::num_alive_tasks`, the gauge behind
//!   `Probes::tasks_alive`), sampled every millisecond by a sampler thread, against
//!   `lambda * W`: Little's law is an identity for a system in steady state, so a gap
//!   shows a measurement problem (or, past capacity, that there is no steady state: the
//!   queue grows for the whole point);
//! * the M/G/c prediction ([`queueing::predict`]) for the same `lambda`, `S`, `N`;
//! * the driver's CPU share and lateness.
//!
//! Over the sweep, the knee is found two ways: by the relative curvature of `L(lambda)`
//! ([`gpm::probe::find_knee`], threshold 8, two points in a row, the scheduler's defaults),
//! and by the rule "P99 > 3 x mean W". The rule presumes low-variance service (the default
//! `const`): with exponential service P99 is 4.6 x the mean at zero load and the rule fires
//! at once.

use super::driver::{self, mean_value, LoadSpec, Recorder, Sampler};
use super::out::{num, Chart, Output, Table};
use super::queueing::{self, Prediction, ServiceDist};
use super::RuntimeConfig;
use gpm::probe::{find_knee, LoadPoint};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Relative-curvature threshold of the knee (gpm-scheduler's default).
pub const KNEE_THRESHOLD: f64 = 8.0;
/// Points in a row above the threshold (gpm-scheduler's default).
pub const KNEE_PERSISTENCE: usize = 2;
/// How often the sampler reads the tasks-alive gauge.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(1);

/// One sweep's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// How each point's runtime is built (workers, policy).
    pub runtime: RuntimeConfig,
    /// Mean service time `S`.
    pub service: Duration,
    /// Service-time distribution.
    pub dist: ServiceDist,
    /// Number of load points.
    pub points: usize,
    /// Lowest and highest load as a fraction of the capacity `N / S`.
    pub load: (f64, f64),
    /// Measured seconds per point (a fifth more is offered as warm-up).
    pub seconds_per_point: f64,
    /// Seed of the first point (point `i` uses `seed + i`).
    pub seed: u64,
}

impl SweepSpec {
    /// The capacity `N / S`, tasks per second.
    pub fn capacity(&self) -> f64 {
        self.runtime.workers as f64 / self.service.as_secs_f64()
    }

    /// The offered rates, evenly spaced from `load.0` to `load.1` times the capacity.
    pub fn rates(&self) -> Vec<f64> {
        let (lo, hi) = self.load;
        let n = self.points;
        (0..n)
            .map(|i| {
                let f = if n == 1 {
                    hi
                } else {
                    lo + (hi - lo) * i as f64 / (n - 1) as f64
                };
                f * self.capacity()
            })
            .collect()
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.points < 1 {
            return Err("--points must be at least 1".to_owned());
        }
        let (lo, hi) = self.load;
        if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
            return Err(format!("load range {lo}..{hi} must satisfy 0 < min <= max"));
        }
        if !(self.seconds_per_point > 0.0 && self.seconds_per_point.is_finite()) {
            return Err("--seconds-per-point must be positive".to_owned());
        }
        if self.service.is_zero() {
            return Err("--service-us must be positive".to_owned());
        }
        if self.runtime.workers == 0 {
            return Err("--workers must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// One measured load point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointResult {
    /// Workers.
    pub workers: usize,
    /// Offered rate, 1/s.
    pub lambda_offered: f64,
    /// Measured arrival rate, 1/s.
    pub lambda: f64,
    /// Tasks measured.
    pub tasks: u64,
    /// Completions per second achieved (see [`Recorder::throughput`]).
    pub throughput: f64,
    /// Sojourn measured per task.
    pub sojourn: driver::Sojourn,
    /// Time-averaged tasks alive.
    pub l_measured: f64,
    /// gpm's probes: sampled sojourn mean, P50, P99, seconds.
    pub gpm_mean_s: f64,
    /// gpm's sampled sojourn median, seconds.
    pub gpm_p50_s: f64,
    /// gpm's sampled sojourn P99, seconds.
    pub gpm_p99_s: f64,
    /// gpm's Little window: `lambda * W` over its last second, if it had one.
    pub gpm_little_l: f64,
    /// The M/G/c prediction.
    pub model: Prediction,
    /// Driver CPU share and mean lateness, seconds.
    pub driver_cpu: f64,
    /// Driver mean lateness, seconds.
    pub driver_late_s: f64,
}

impl PointResult {
    /// `lambda * W`.
    pub fn l_little(&self) -> f64 {
        self.lambda * self.sojourn.mean_s
    }

    /// The rule-of-thumb knee: P99 above three times the mean.
    pub fn past_rule_knee(&self) -> bool {
        self.sojourn.p99_s > 3.0 * self.sojourn.mean_s
    }
}

/// Runs one load point on a fresh runtime.
pub fn run_point(
    runtime: &RuntimeConfig,
    load: &LoadSpec,
    dist: ServiceDist,
) -> Result<PointResult, String> {
    load.validate()?;
    let rt = runtime.build_gpm()?;
    let handle = rt.handle().clone();
    let warm_up = load.duration.mul_f64(0.2);
    let spec = LoadSpec {
        duration: load.duration + warm_up,
        ..*load
    };
    let recorder = Recorder::new(Instant::now() + warm_up);
    let sampler = {
        let handle = handle.clone();
        let mut tick = 0u64;
        Sampler::start(SAMPLE_PERIOD, move || {
            tick += 1;
            if tick.is_multiple_of(250) {
                // Feeds gpm's Little window (one snapshot per call).
                drop(handle.probes());
            }
            handle.num_alive_tasks() as f64
        })
    };
    let stats = driver::drive(&spec, |_intended, service| {
        let recorder = Arc::clone(&recorder);
        // W is measured from the spawn, the moment `tasks alive` counts the task, so that
        // L and lambda * W measure the same system; the driver's lateness is reported
        // apart.
        let spawned = Instant::now();
        drop(handle.spawn(async move {
            driver::burn(service);
            recorder.complete(spawned);
        }));
    });
    let samples = sampler.stop();
    let backlog_s = stats.arrivals as f64 * load.service.as_secs_f64() / runtime.workers as f64;
    let timeout = Duration::from_secs_f64(5.0 + 2.0 * backlog_s);
    if !recorder.wait_for(stats.arrivals, timeout) {
        return Err(format!(
            "only {} of {} tasks completed within {timeout:?}",
            recorder.completed(),
            stats.arrivals
        ));
    }
    // After the drain, so the probes' quantiles include the backlog's slow tasks too.
    let probes = handle.probes();
    let warm_s = warm_up.as_secs_f64();
    let steady: Vec<_> = samples.into_iter().filter(|s| s.0 >= warm_s).collect();
    let sojourn = recorder.sojourn();
    let lambda = sojourn.count as f64 / load.duration.as_secs_f64();
    Ok(PointResult {
        workers: runtime.workers,
        lambda_offered: load.rate,
        lambda,
        tasks: sojourn.count,
        throughput: recorder.throughput(),
        sojourn,
        l_measured: mean_value(&steady),
        gpm_mean_s: probes.sojourn.mean_ns * 1e-9,
        gpm_p50_s: probes.sojourn.p50_ns as f64 * 1e-9,
        gpm_p99_s: probes.sojourn.p99_ns as f64 * 1e-9,
        gpm_little_l: probes.little_tasks.map_or(f64::NAN, |l| l.l_predicted),
        model: queueing::predict(runtime.workers, load.rate, load.service.as_secs_f64(), dist),
        driver_cpu: stats.cpu_share(),
        driver_late_s: stats.mean_late_s,
    })
}

/// A sweep's points and its knees.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The points, by increasing offered rate.
    pub points: Vec<PointResult>,
    /// Knee by the curvature of `L(lambda)`: offered rate, 1/s.
    pub knee_curvature: Option<f64>,
    /// Knee by P99 > 3 x mean: offered rate, 1/s.
    pub knee_rule: Option<f64>,
}

/// The knees of a series of points.
pub fn knees(points: &[PointResult]) -> (Option<f64>, Option<f64>) {
    let load: Vec<LoadPoint> = points
        .iter()
        .map(|p| LoadPoint {
            lambda: p.lambda_offered,
            in_system: p.l_measured,
        })
        .collect();
    let curvature = find_knee(&load, KNEE_THRESHOLD, KNEE_PERSISTENCE).map(|k| k.lambda);
    let rule = points
        .iter()
        .find(|p| p.past_rule_knee())
        .map(|p| p.lambda_offered);
    (curvature, rule)
}

/// Runs a whole sweep, advancing `progress` once per point.
pub fn sweep(spec: &SweepSpec, progress: &indicatif::ProgressBar) -> Result<Sweep, String> {
    spec.validate()?;
    let mut points = Vec::new();
    for (i, rate) in spec.rates().into_iter().enumerate() {
        progress.set_message(format!("N={} lambda={rate:.0}/s", spec.runtime.workers));
        let load = LoadSpec {
            rate,
            duration: Duration::from_secs_f64(spec.seconds_per_point),
            service: spec.service,
            dist: spec.dist,
            seed: spec.seed + i as u64,
        };
        points.push(run_point(&spec.runtime, &load, spec.dist)?);
        progress.inc(1);
    }
    let (knee_curvature, knee_rule) = knees(&points);
    Ok(Sweep {
        points,
        knee_curvature,
        knee_rule,
    })
}

fn us(seconds: f64) -> String {
    num(seconds * 1e6, 0)
}

/// The per-point table (CSV and printed).
pub fn points_table(points: &[PointResult], service: Duration) -> Table {
    let mut table = Table::new(&[
        "N",
        "rho",
        "lambda",
        "done/s",
        "W_us",
        "P50_us",
        "P99_us",
        "gpm_P50_us",
        "gpm_P99_us",
        "L",
        "lambda*W",
        "model_W_us",
        "model_P99_us",
        "model_L",
        "drv_cpu%",
        "drv_late_us",
    ]);
    let s = service.as_secs_f64();
    for p in points {
        table.push(vec![
            p.workers.to_string(),
            num(p.lambda_offered * s / p.workers as f64, 2),
            num(p.lambda, 0),
            num(p.throughput, 0),
            us(p.sojourn.mean_s),
            us(p.sojourn.p50_s),
            us(p.sojourn.p99_s),
            us(p.gpm_p50_s),
            us(p.gpm_p99_s),
            num(p.l_measured, 2),
            num(p.l_little(), 2),
            us(p.model.w),
            us(p.model.p99),
            num(p.model.l, 2),
            num(p.driver_cpu * 100.0, 1),
            num(p.driver_late_s * 1e6, 1),
        ]);
    }
    table
}

/// The `littles-law` experiment: one sweep, CSV, two charts, the table with the knees.
pub fn littles_law(spec: &SweepSpec, out: &Output) -> Result<String, String> {
    spec.validate()?;
    let bar = out.progress(spec.points as u64, "littles-law");
    let result = sweep(spec, &bar)?;
    bar.finish_and_clear();
    let table = points_table(&result.points, spec.service);
    out.csv("littles_law", &table)?;
    out.svg("littles_law_L", &l_chart(&result.points, spec))?;
    out.svg("littles_law_latency", &latency_chart(&result.points, spec))?;
    Ok(format!(
        "{}\n{}",
        table.render(),
        knee_summary(&result, spec.capacity())
    ))
}

fn knee_summary(result: &Sweep, capacity: f64) -> String {
    let show = |k: Option<f64>| {
        k.map_or("none in range".to_owned(), |l| {
            format!("lambda = {l:.0}/s (rho = {:.2})", l / capacity)
        })
    };
    format!(
        "knee by d2L/dlambda2: {}\nknee by P99 > 3 x mean: {}\n",
        show(result.knee_curvature),
        show(result.knee_rule)
    )
}

fn l_chart(points: &[PointResult], spec: &SweepSpec) -> Chart {
    let series = |f: &dyn Fn(&PointResult) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.lambda_offered, f(p))).collect()
    };
    Chart::new(
        &format!(
            "Little's law: N = {}, S = {} us",
            spec.runtime.workers,
            spec.service.as_micros()
        ),
        "arrival rate lambda (1/s)",
        "tasks in system L",
    )
    .line("L measured (time average)", series(&|p| p.l_measured))
    .line("lambda x W (W measured)", series(&|p| p.l_little()))
    .line("M/G/c model", series(&|p| p.model.l))
}

fn latency_chart(points: &[PointResult], spec: &SweepSpec) -> Chart {
    let series = |f: &dyn Fn(&PointResult) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (p.lambda_offered, f(p) * 1e6))
            .collect()
    };
    let mut chart = Chart::new(
        &format!(
            "Sojourn time: N = {}, S = {} us",
            spec.runtime.workers,
            spec.service.as_micros()
        ),
        "arrival rate lambda (1/s)",
        "microseconds (log)",
    )
    .line("mean W", series(&|p| p.sojourn.mean_s))
    .line("P99 (per task)", series(&|p| p.sojourn.p99_s))
    .line("P99 (gpm probes)", series(&|p| p.gpm_p99_s))
    .line("P99 model", series(&|p| p.model.p99))
    .line("3 x mean W", series(&|p| 3.0 * p.sojourn.mean_s));
    chart.log_y = true;
    chart
}

/// The `workers` experiment: the same sweep for each worker count (Go's GOMAXPROCS table).
pub fn workers(spec: &SweepSpec, counts: &[usize], out: &Output) -> Result<String, String> {
    if counts.is_empty() || counts.contains(&0) {
        return Err("worker counts must be a non-empty list of positive numbers".to_owned());
    }
    spec.validate()?;
    let bar = out.progress((counts.len() * spec.points) as u64, "workers");
    let mut all = Vec::new();
    let mut summary = Table::new(&[
        "N",
        "capacity/s",
        "max_throughput/s",
        "knee_curv/s",
        "knee_rule/s",
        "W_us@~0.5",
        "P99_us@~0.9",
    ]);
    let mut chart = Chart::new(
        &format!(
            "P99 sojourn by worker count, S = {} us",
            spec.service.as_micros()
        ),
        "load rho = lambda S / N",
        "P99 microseconds (log)",
    );
    chart.log_y = true;
    for &n in counts {
        let spec = SweepSpec {
            runtime: RuntimeConfig {
                workers: n,
                ..spec.runtime
            },
            ..spec.clone()
        };
        let result = sweep(&spec, &bar)?;
        let capacity = spec.capacity();
        let near = |rho: f64| {
            result.points.iter().min_by(|a, b| {
                let d = |p: &PointResult| (p.lambda_offered / capacity - rho).abs();
                d(a).total_cmp(&d(b))
            })
        };
        let opt = |k: Option<f64>| k.map_or("-".to_owned(), |v| num(v, 0));
        summary.push(vec![
            n.to_string(),
            num(capacity, 0),
            num(
                result
                    .points
                    .iter()
                    .map(|p| p.throughput)
                    .fold(0.0, f64::max),
                0,
            ),
            opt(result.knee_curvature),
            opt(result.knee_rule),
            near(0.5).map_or("-".into(), |p| us(p.sojourn.mean_s)),
            near(0.9).map_or("-".into(), |p| us(p.sojourn.p99_s)),
        ]);
        chart = chart.line(
            &format!("N = {n}"),
            result
                .points
                .iter()
                .map(|p| (p.lambda_offered / capacity, p.sojourn.p99_s * 1e6))
                .collect(),
        );
        all.extend(result.points);
    }
    bar.finish_and_clear();
    out.csv("workers", &points_table(&all, spec.service))?;
    out.csv("workers_summary", &summary)?;
    out.svg("workers_p99", &chart)?;
    Ok(summary.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(points: usize) -> SweepSpec {
        SweepSpec {
            runtime: RuntimeConfig::new(2),
            service: Duration::from_micros(200),
            dist: ServiceDist::Const,
            points,
            load: (0.2, 1.2),
            seconds_per_point: 0.1,
            seed: 1,
        }
    }

    #[test]
    fn rates_span_the_load_range() {
        let rates = spec(6).rates();
        assert_eq!(rates.len(), 6);
        assert!((rates[0] - 2000.0).abs() < 1e-6 && (rates[5] - 12_000.0).abs() < 1e-6);
        assert_eq!(spec(1).rates(), vec![12_000.0]);
    }

    #[test]
    fn bad_sweeps_are_errors() {
        assert!(spec(0).validate().is_err());
        let mut s = spec(3);
        s.load = (0.0, 1.0);
        assert!(s.validate().unwrap_err().contains("load range"));
        s.load = (0.5, 0.4);
        assert!(s.validate().is_err());
    }

    fn point(lambda: f64, l: f64, mean: f64, p99: f64) -> PointResult {
        PointResult {
            workers: 1,
            lambda_offered: lambda,
            lambda,
            tasks: 1,
            throughput: lambda,
            sojourn: driver::Sojourn {
                count: 1,
                mean_s: mean,
                p50_s: mean,
                p99_s: p99,
            },
            l_measured: l,
            gpm_mean_s: 0.0,
            gpm_p50_s: 0.0,
            gpm_p99_s: 0.0,
            gpm_little_l: 0.0,
            model: queueing::predict(1, lambda, 0.001, ServiceDist::Const),
            driver_cpu: 0.0,
            driver_late_s: 0.0,
        }
    }

    #[test]
    fn the_points_table_has_a_cell_per_column() {
        let table = points_table(
            &[point(100.0, 1.0, 0.001, 0.002)],
            Duration::from_micros(500),
        );
        assert_eq!(table.rows[0].len(), table.header.len());
        assert!(table
            .to_csv()
            .unwrap()
            .starts_with("N,rho,lambda,done/s,W_us"));
    }

    #[test]
    fn knees_of_an_mm1_series() {
        // L = rho / (1 - rho) at S = 1 ms: the curvature passes 8 near rho = 0.6.
        let points: Vec<_> = (1..10)
            .map(|i| {
                let rho = i as f64 / 10.0;
                let p99 = if rho > 0.65 { 5.0 } else { 2.0 };
                point(rho * 1000.0, rho / (1.0 - rho), 1.0, p99)
            })
            .collect();
        let (curvature, rule) = knees(&points);
        let curvature = curvature.expect("M/M/1 has a knee");
        assert!((500.0..=700.0).contains(&curvature), "{curvature}");
        assert_eq!(rule, Some(700.0));
        // A straight line has neither.
        let line: Vec<_> = (1..10)
            .map(|i| point(i as f64 * 100.0, i as f64, 1.0, 2.0))
            .collect();
        assert_eq!(knees(&line), (None, None));
    }

    #[test]
    fn a_light_point_obeys_littles_law() {
        // Light load (rho = 0.25) on 2 workers for 0.4 s: a real run, loose bounds.
        let load = LoadSpec {
            rate: 2500.0,
            duration: Duration::from_millis(400),
            service: Duration::from_micros(200),
            dist: ServiceDist::Const,
            seed: 9,
        };
        let p = run_point(&RuntimeConfig::new(2), &load, ServiceDist::Const).unwrap();
        assert!(p.tasks > 500, "{p:?}");
        assert!(p.sojourn.mean_s >= 200e-6 && p.sojourn.p99_s >= p.sojourn.p50_s);
        assert!(p.l_measured > 0.0 && p.l_measured.is_finite());
        assert!(p.gpm_p99_s > 0.0, "probes saw sampled tasks: {p:?}");
    }
}

//! `overload`: P99 under overload with and without `gpm-overload`'s controls.
//!
//! The same open-loop driver as `littles-law` offers `load x N / S` arrivals per second
//! for each load in `--loads`, once per mode:
//!
//! * `none`: every arrival is spawned. Past capacity the queue, and so P99, grows for as
//!   long as the overload lasts.
//! * `limiter`: [`AdaptiveLimiter`] (limit `ceil(lambda S x 2)`, EWMA, 50 ms intervals);
//!   an arrival without a permit is refused. A task reports its service time.
//! * `admission`: [`P99Admission`] with the target `--target-p99-us` over a 100 ms window;
//!   over target (or while probing with fewer than 20 samples), arrivals are refused.
//! * `admission-queue`: the same, but refused arrivals first wait in a queue of `N`
//!   (drained by the driver at each arrival); items still queued at the end count as
//!   refused. A queued item waits until the window forgets the slow values, up to a whole
//!   window: the queue buys fewer refusals with a longer tail.
//! * `breaker`: one [`TieredBreaker`] tier whose P99 bound is the target; 5 timeouts in a
//!   row or 50% over 1 s open it for 100 ms, then 3 probes.
//!
//! Latency is measured from each arrival's intended time, refused arrivals excluded: the
//! table shows both the P99 of the admitted work and how much was refused, since a control
//! that refuses everything has a perfect P99.

use super::driver::{self, mean_value, LoadSpec, Recorder, Sampler};
use super::out::{num, Chart, Output, Table};
use super::queueing::ServiceDist;
use super::RuntimeConfig;
use clap::Args;
use gpm_overload::{
    AdaptiveLimiter, Admission, AdmissionConfig, LimiterConfig, Outcome, P99Admission, SystemClock,
    TierConfig, TieredBreaker,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The flags of `overload`.
#[derive(Debug, Clone, Args)]
pub struct OverloadArgs {
    /// Worker threads N (default: the CPUs available).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Service time S, microseconds (busy-spin).
    #[arg(long, default_value_t = 500)]
    pub service_us: u64,
    /// Loads as fractions of the capacity N / S, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.6,0.9,1.2,1.5")]
    pub loads: Vec<f64>,
    /// Modes, comma-separated: none, limiter, admission, admission-queue, breaker.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,limiter,admission,admission-queue,breaker"
    )]
    pub modes: Vec<String>,
    /// Seconds per run.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// P99 target of admission and the breaker, microseconds (default 10 x S).
    #[arg(long)]
    pub target_p99_us: Option<u64>,
    /// Seed of the arrival process.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The modes, in table order.
pub const MODES: &[&str] = &["none", "limiter", "admission", "admission-queue", "breaker"];

/// One run's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeResult {
    /// Arrivals offered.
    pub offered: u64,
    /// Arrivals refused (or still queued at the end).
    pub refused: u64,
    /// Completed tasks' sojourn.
    pub sojourn: driver::Sojourn,
    /// Completions per second of the run.
    pub goodput: f64,
    /// Time-averaged and largest tasks alive.
    pub l_mean: f64,
    /// Largest tasks alive seen.
    pub l_max: f64,
}

/// How an arrival enters the runtime in one mode.
enum Gate {
    None,
    Limiter(AdaptiveLimiter<SystemClock>),
    Admission(Arc<P99Admission<(Instant, Duration), SystemClock>>),
    Breaker(Arc<TieredBreaker<SystemClock>>),
}

impl Gate {
    fn new(mode: &str, workers: usize, target: Duration) -> Result<Gate, String> {
        let clock = SystemClock::new();
        let err = |e: gpm_overload::ConfigError| e.to_string();
        Ok(match mode {
            "none" => Gate::None,
            "limiter" => {
                let config = LimiterConfig {
                    initial: workers,
                    interval: Duration::from_millis(50),
                    ..LimiterConfig::new(1, 4096)
                };
                Gate::Limiter(AdaptiveLimiter::new(config, clock).map_err(err)?)
            }
            "admission" | "admission-queue" => {
                // A short window: the gate reopens soon after the tail recovers (a long one
                // keeps it shut for the whole window: bang-bang control, little goodput).
                let config = AdmissionConfig {
                    window: Duration::from_millis(100),
                    min_samples: 20,
                    queue_capacity: if mode == "admission" { 0 } else { workers },
                    refresh: Duration::from_millis(5),
                    ..AdmissionConfig::new(target)
                };
                Gate::Admission(Arc::new(P99Admission::new(config, clock).map_err(err)?))
            }
            "breaker" => {
                let tier = TierConfig {
                    window: Duration::from_secs(1),
                    cool_down: Duration::from_millis(100),
                    ..TierConfig::new("default", target)
                };
                Gate::Breaker(Arc::new(
                    TieredBreaker::new(vec![tier], clock).map_err(err)?,
                ))
            }
            other => {
                return Err(format!(
                    "unknown overload mode {other:?}; known: {}",
                    MODES.join(", ")
                ))
            }
        })
    }
}

/// Spawns one task that burns `service` and records its sojourn; `done` runs after.
fn spawn_task(
    handle: &gpm::Handle,
    recorder: &Arc<Recorder>,
    arrival: Instant,
    service: Duration,
    done: impl FnOnce(Duration) + Send + 'static,
) {
    let recorder = Arc::clone(recorder);
    drop(handle.spawn(async move {
        let start = Instant::now();
        driver::burn(service);
        done(start.elapsed());
        recorder.complete(arrival);
    }));
}

/// Runs one mode at one load on a fresh runtime.
pub fn run_mode(
    mode: &str,
    workers: usize,
    load: &LoadSpec,
    target: Duration,
) -> Result<ModeResult, String> {
    load.validate()?;
    let gate = Gate::new(mode, workers, target)?;
    let rt = RuntimeConfig::new(workers).build_gpm()?;
    let handle = rt.handle().clone();
    let recorder = Recorder::new(Instant::now());
    let sampler = {
        let handle = handle.clone();
        Sampler::start(Duration::from_millis(1), move || {
            handle.num_alive_tasks() as f64
        })
    };
    let (mut refused, mut spawned) = (0u64, 0u64);
    let stats = driver::drive(load, |arrival, service| match &gate {
        Gate::None => {
            spawned += 1;
            spawn_task(&handle, &recorder, arrival, service, |_| {});
        }
        Gate::Limiter(limiter) => match limiter.try_acquire() {
            Ok(mut permit) => {
                spawned += 1;
                spawn_task(&handle, &recorder, arrival, service, move |took| {
                    permit.record_service(took);
                });
            }
            Err(_) => refused += 1,
        },
        Gate::Admission(admission) => {
            let mut run = admission.drain_ready();
            match admission.offer((arrival, service)) {
                Ok(Admission::Run(item)) => run.push(item),
                Ok(Admission::Queued) => {}
                Err(_) => refused += 1,
            }
            for (arrival, service) in run {
                spawned += 1;
                let admission = Arc::clone(admission);
                spawn_task(&handle, &recorder, arrival, service, move |_| {
                    admission.record(arrival.elapsed());
                });
            }
        }
        Gate::Breaker(breaker) => match breaker.try_call(0) {
            Ok(call) => {
                spawned += 1;
                let breaker = Arc::clone(breaker);
                spawn_task(&handle, &recorder, arrival, service, move |_| {
                    breaker.complete(call, Outcome::Success);
                });
            }
            Err(_) => refused += 1,
        },
    });
    if let Gate::Admission(admission) = &gate {
        refused += admission.queued() as u64;
    }
    let backlog_s = spawned as f64 * load.service.as_secs_f64() / workers as f64;
    let timeout = Duration::from_secs_f64(5.0 + 2.0 * backlog_s);
    let drained = recorder.wait_for(spawned, timeout);
    let samples = sampler.stop();
    if !drained {
        return Err(format!(
            "{mode}: only {} of {spawned} tasks completed within {timeout:?}",
            recorder.completed()
        ));
    }
    let sojourn = recorder.sojourn();
    Ok(ModeResult {
        offered: stats.arrivals,
        refused,
        sojourn,
        goodput: sojourn.count as f64 / load.duration.as_secs_f64(),
        l_mean: mean_value(&samples),
        l_max: samples.iter().map(|s| s.1).fold(0.0, f64::max),
    })
}

/// The `overload` experiment.
pub fn run(args: &OverloadArgs, out: &Output) -> Result<String, String> {
    let workers = args.workers.unwrap_or_else(super::available_cpus);
    if workers == 0 || args.service_us == 0 || args.loads.is_empty() {
        return Err("--workers, --service-us and --loads must be positive / non-empty".into());
    }
    if args.loads.iter().any(|l| !(*l > 0.0 && l.is_finite())) {
        return Err("every --loads entry must be a positive number".into());
    }
    for mode in &args.modes {
        if !MODES.contains(&mode.as_str()) {
            return Err(format!(
                "unknown overload mode {mode:?}; known: {}",
                MODES.join(", ")
            ));
        }
    }
    let service = Duration::from_micros(args.service_us);
    let target = Duration::from_micros(args.target_p99_us.unwrap_or(10 * args.service_us));
    let capacity = workers as f64 / service.as_secs_f64();
    let mut table = Table::new(&[
        "load",
        "mode",
        "offered/s",
        "refused%",
        "goodput/s",
        "P50_us",
        "P99_us",
        "L_mean",
        "L_max",
    ]);
    let mut series: Vec<(String, Vec<(f64, f64)>)> =
        args.modes.iter().map(|m| (m.clone(), Vec::new())).collect();
    let bar = out.progress((args.loads.len() * args.modes.len()) as u64, "overload");
    for (i, &load) in args.loads.iter().enumerate() {
        for (m, mode) in args.modes.iter().enumerate() {
            bar.set_message(format!("{mode} at {load}"));
            let spec = LoadSpec {
                rate: load * capacity,
                duration: Duration::from_secs_f64(args.seconds),
                service,
                dist: ServiceDist::Const,
                seed: args.seed + i as u64,
            };
            let r = run_mode(mode, workers, &spec, target)?;
            table.push(vec![
                num(load, 2),
                mode.clone(),
                num(r.offered as f64 / args.seconds, 0),
                num(100.0 * r.refused as f64 / r.offered.max(1) as f64, 1),
                num(r.goodput, 0),
                num(r.sojourn.p50_s * 1e6, 0),
                num(r.sojourn.p99_s * 1e6, 0),
                num(r.l_mean, 1),
                num(r.l_max, 0),
            ]);
            series[m].1.push((load, r.sojourn.p99_s * 1e6));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    out.csv("overload", &table)?;
    let mut chart = Chart::new(
        &format!(
            "P99 of admitted work under overload: N = {workers}, S = {} us, target {} us",
            args.service_us,
            target.as_micros()
        ),
        "offered load (fraction of N / S)",
        "P99 sojourn, microseconds (log)",
    );
    chart.log_y = true;
    for (name, points) in series {
        chart = chart.line(&name, points);
    }
    chart = chart.line(
        "target",
        args.loads
            .iter()
            .map(|&l| (l, target.as_secs_f64() * 1e6))
            .collect(),
    );
    out.svg("overload_p99", &chart)?;
    Ok(format!(
        "N = {workers}, S = {} us, P99 target {} us, {} s per run\n{}",
        args.service_us,
        target.as_micros(),
        args.seconds,
        table.render()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_runs_and_unknown_modes_are_errors() {
        let load = LoadSpec {
            rate: 2000.0,
            duration: Duration::from_millis(150),
            service: Duration::from_micros(100),
            dist: ServiceDist::Const,
            seed: 5,
        };
        for mode in MODES {
            let r = run_mode(mode, 2, &load, Duration::from_millis(5)).unwrap();
            assert!(r.offered > 100, "{mode}: {r:?}");
            assert_eq!(r.sojourn.count + r.refused, r.offered, "{mode}: {r:?}");
        }
        let err = run_mode("shed", 2, &load, Duration::from_millis(5)).unwrap_err();
        assert!(err.contains("unknown overload mode"), "{err}");
    }
}

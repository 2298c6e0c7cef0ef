//! `queue-model`: a fluid model of the queue against the depth gpm's probes measure.
//!
//! # The model
//!
//! ```text
//! dQ/dt = lambda(t) - mu (1 - rho(Q)) Q,      rho(Q) = min(1, Q / Q_th)
//! ```
//!
//! `Q` is the number of tasks in the system (a fluid: fractions allowed), `lambda(t)` the
//! arrival rate, `mu = 1 / S` the rate at which one task in service completes. Without the
//! `rho` factor this is an infinite-server queue (`Q` tasks served in parallel, throughput
//! `mu Q`). `rho(Q)` is the fraction of capacity lost to congestion: as `Q` approaches the
//! threshold `Q_th` each extra task slows the others (contention, cache misses, a queue
//! that costs more to manage than it serves) until throughput falls to zero at `Q_th`. The
//! throughput `mu Q (1 - Q / Q_th)` peaks at `Q = Q_th / 2` with `mu Q_th / 4`; we default
//! `Q_th = 4 N` so that peak equals the real capacity `N / S`.
//!
//! Below the peak the model settles at the stable root
//! `Q* = Q_th / 2 (1 - sqrt(1 - 4 lambda / (mu Q_th)))`; above it there is no fixed point,
//! `Q` passes `Q_th` and, the service term being zero there, grows at `lambda` for good:
//! congestion collapse, a metastable failure that does not heal when the load drops back.
//! A plain FIFO run queue, like gpm's, does not lose throughput with depth, so the measured
//! depth is expected to drain after an overload phase where the model does not: the plot
//! shows where such a model describes a work-stealing runtime and where it does not.
//!
//! # Integration
//!
//! Classic RK4 with a fixed step (`--dt-us`, default 10 us, far below `S`), `Q` clamped at
//! zero; `lambda(t)` is the same piecewise-constant profile the driver offers.

use super::driver::{self, LoadSpec, Sampler};
use super::out::{num, Chart, Output, Table};
use super::queueing::ServiceDist;
use super::RuntimeConfig;
use clap::Args;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The flags of `queue-model`.
#[derive(Debug, Clone, Args)]
pub struct QueueModelArgs {
    /// Worker threads N (default: the CPUs available).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Service time S, microseconds (busy-spin).
    #[arg(long, default_value_t = 500)]
    pub service_us: u64,
    /// Load phases as load:seconds, load a fraction of the capacity N / S.
    #[arg(long, default_value = "0.5:1.5,0.9:1.5,1.1:1.5,0.5:1.5")]
    pub phases: String,
    /// The model's congestion threshold Q_th (default 4 N).
    #[arg(long)]
    pub q_th: Option<f64>,
    /// Integration step, microseconds.
    #[arg(long, default_value_t = 10.0)]
    pub dt_us: f64,
    /// Probe sampling period, milliseconds.
    #[arg(long, default_value_t = 10)]
    pub sample_ms: u64,
    /// Seed of the arrival process.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One phase of the load profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Load, a fraction of the capacity.
    pub load: f64,
    /// Length, seconds.
    pub seconds: f64,
}

/// Parses `0.5:2,1.1:1`.
pub fn parse_phases(text: &str) -> Result<Vec<Phase>, String> {
    text.split(',')
        .map(|item| {
            let bad =
                || format!("phase {item:?} is not load:seconds with both positive (e.g. 0.9:2)");
            let (load, seconds) = item.split_once(':').ok_or_else(bad)?;
            let load: f64 = load.trim().parse().map_err(|_| bad())?;
            let seconds: f64 = seconds.trim().parse().map_err(|_| bad())?;
            if !(load > 0.0 && seconds > 0.0 && load.is_finite() && seconds.is_finite()) {
                return Err(bad());
            }
            Ok(Phase { load, seconds })
        })
        .collect()
}

/// The model's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Completion rate of one task in service, 1/s (`1 / S`).
    pub mu: f64,
    /// Congestion threshold.
    pub q_th: f64,
}

impl Model {
    /// `dQ/dt` at depth `q` under arrival rate `lambda`.
    pub fn derivative(&self, q: f64, lambda: f64) -> f64 {
        let rho = (q / self.q_th).min(1.0);
        lambda - self.mu * (1.0 - rho) * q
    }

    /// One RK4 step of length `dt`, clamped at zero.
    pub fn step(&self, q: f64, lambda: f64, dt: f64) -> f64 {
        let k1 = self.derivative(q, lambda);
        let k2 = self.derivative(q + 0.5 * dt * k1, lambda);
        let k3 = self.derivative(q + 0.5 * dt * k2, lambda);
        let k4 = self.derivative(q + dt * k3, lambda);
        (q + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)).max(0.0)
    }

    /// The stable fixed point under `lambda`, if the load is below the model's peak.
    pub fn equilibrium(&self, lambda: f64) -> Option<f64> {
        let disc = 1.0 - 4.0 * lambda / (self.mu * self.q_th);
        (disc >= 0.0).then(|| self.q_th / 2.0 * (1.0 - disc.sqrt()))
    }

    /// Integrates from `q0` over `rate(t)` for `seconds` with step `dt`; returns `(t, Q)`
    /// once every `every` seconds (and at the end).
    pub fn integrate(
        &self,
        q0: f64,
        rate: impl Fn(f64) -> f64,
        seconds: f64,
        dt: f64,
        every: f64,
    ) -> Vec<(f64, f64)> {
        let steps = (seconds / dt).ceil() as u64;
        let stride = ((every / dt).round() as u64).max(1);
        let mut q = q0;
        let mut out = vec![(0.0, q)];
        for i in 0..steps {
            let t = i as f64 * dt;
            q = self.step(q, rate(t), dt);
            if (i + 1) % stride == 0 || i + 1 == steps {
                out.push(((i + 1) as f64 * dt, q));
            }
        }
        out
    }
}

/// The rate at time `t` of a phase profile (0 after the last phase).
pub fn rate_at(phases: &[Phase], capacity: f64, t: f64) -> f64 {
    let mut start = 0.0;
    for p in phases {
        if t < start + p.seconds {
            return p.load * capacity;
        }
        start += p.seconds;
    }
    0.0
}

/// A measured sample: tasks alive and tasks queued (injector + local queues + runnext +
/// deferred), from `Handle::probes`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Depth {
    t: f64,
    alive: f64,
    queued: f64,
}

fn queued(probes: &gpm::probe::Probes) -> usize {
    probes.injector_depth
        + probes
            .processors
            .iter()
            .map(|p| p.queue_depth + usize::from(p.runnext) + p.deferred)
            .sum::<usize>()
}

/// The `queue-model` experiment.
pub fn run(args: &QueueModelArgs, out: &Output) -> Result<String, String> {
    let phases = parse_phases(&args.phases)?;
    let workers = args.workers.unwrap_or_else(super::available_cpus);
    if workers == 0 || args.service_us == 0 || !super::positive(args.dt_us) || args.sample_ms == 0 {
        return Err("--workers, --service-us, --dt-us and --sample-ms must be positive".into());
    }
    let s = args.service_us as f64 * 1e-6;
    let capacity = workers as f64 / s;
    let model = Model {
        mu: 1.0 / s,
        q_th: args.q_th.unwrap_or(4.0 * workers as f64),
    };
    if !super::positive(model.q_th) {
        return Err("--q-th must be positive".into());
    }
    let measured = measure(args, &phases, workers, capacity, out)?;
    let total: f64 = phases.iter().map(|p| p.seconds).sum();
    let horizon = measured.last().map_or(total, |d| d.t.max(total));
    let modelled = model.integrate(
        0.0,
        |t| rate_at(&phases, capacity, t),
        horizon,
        args.dt_us * 1e-6,
        0.01,
    );
    let mut csv = Table::new(&["t_s", "lambda", "model_Q", "tasks_alive", "queued"]);
    let model_at = |t: f64| {
        let i = ((t / 0.01).round() as usize).min(modelled.len() - 1);
        modelled[i].1
    };
    for d in &measured {
        csv.push(vec![
            num(d.t, 3),
            num(rate_at(&phases, capacity, d.t), 0),
            num(model_at(d.t), 2),
            num(d.alive, 0),
            num(d.queued, 0),
        ]);
    }
    out.csv("queue_model", &csv)?;
    let chart = Chart::new(
        &format!(
            "Fluid model vs measured depth: N = {workers}, S = {} us, Q_th = {}",
            args.service_us, model.q_th
        ),
        "time (s)",
        "tasks",
    )
    .line("model Q(t)", modelled.clone())
    .line(
        "tasks alive (probes)",
        measured.iter().map(|d| (d.t, d.alive)).collect(),
    )
    .line(
        "queued: injector + local (probes)",
        measured.iter().map(|d| (d.t, d.queued)).collect(),
    );
    out.svg("queue_model", &chart)?;
    Ok(phase_table(&phases, capacity, &model, &measured, &model_at).render())
}

fn phase_table(
    phases: &[Phase],
    capacity: f64,
    model: &Model,
    measured: &[Depth],
    model_at: &dyn Fn(f64) -> f64,
) -> Table {
    let mut table = Table::new(&[
        "phase",
        "load",
        "lambda",
        "model_Q*",
        "model_Q_end",
        "alive_mean",
        "alive_end",
        "queued_mean",
    ]);
    let mut start = 0.0;
    for (i, p) in phases.iter().enumerate() {
        let end = start + p.seconds;
        let inside: Vec<&Depth> = measured
            .iter()
            .filter(|d| d.t >= start && d.t < end)
            .collect();
        let mean = |f: fn(&Depth) -> f64| {
            inside.iter().map(|d| f(d)).sum::<f64>() / inside.len().max(1) as f64
        };
        let lambda = p.load * capacity;
        table.push(vec![
            (i + 1).to_string(),
            num(p.load, 2),
            num(lambda, 0),
            model
                .equilibrium(lambda)
                .map_or("none".into(), |q| num(q, 2)),
            num(model_at(end), 1),
            num(mean(|d| d.alive), 1),
            inside.last().map_or("-".into(), |d| num(d.alive, 0)),
            num(mean(|d| d.queued), 1),
        ]);
        start = end;
    }
    table
}

/// Offers the phases on a fresh runtime and samples its depth until it drains.
fn measure(
    args: &QueueModelArgs,
    phases: &[Phase],
    workers: usize,
    capacity: f64,
    out: &Output,
) -> Result<Vec<Depth>, String> {
    let rt = RuntimeConfig::new(workers).build_gpm()?;
    let handle = rt.handle().clone();
    let start = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (handle, samples) = (handle.clone(), Arc::clone(&samples));
        Sampler::start(Duration::from_millis(args.sample_ms), move || {
            let probes = handle.probes();
            samples.lock().expect("samples").push(Depth {
                t: start.elapsed().as_secs_f64(),
                alive: probes.tasks_alive as f64,
                queued: queued(&probes) as f64,
            });
            0.0
        })
    };
    let bar = out.progress(phases.len() as u64, "queue-model");
    let mut arrivals = 0;
    let service = Duration::from_micros(args.service_us);
    for (i, phase) in phases.iter().enumerate() {
        bar.inc(1);
        let spec = LoadSpec {
            rate: phase.load * capacity,
            duration: Duration::from_secs_f64(phase.seconds),
            service,
            dist: ServiceDist::Const,
            seed: args.seed + i as u64,
        };
        spec.validate()?;
        let stats = driver::drive(&spec, |_, service| {
            drop(handle.spawn(async move { driver::burn(service) }));
        });
        arrivals += stats.arrivals;
    }
    let backlog_s = arrivals as f64 * service.as_secs_f64() / workers as f64;
    let deadline = Instant::now() + Duration::from_secs_f64(5.0 + backlog_s);
    // Keep sampling while the backlog drains (the sampler thread records it).
    while handle.num_alive_tasks() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(args.sample_ms));
    }
    sampler.stop();
    bar.finish_and_clear();
    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: Model = Model {
        mu: 1000.0,
        q_th: 8.0,
    };

    #[test]
    fn phases_parse_and_reject() {
        let phases = parse_phases("0.5:2, 1.1:0.5").unwrap();
        assert_eq!(
            phases[1],
            Phase {
                load: 1.1,
                seconds: 0.5
            }
        );
        for bad in ["0.5", "x:1", "0.5:0", "-1:1", ""] {
            assert!(
                parse_phases(bad).unwrap_err().contains("load:seconds"),
                "{bad}"
            );
        }
    }

    #[test]
    fn below_the_peak_it_settles_at_the_stable_root() {
        // Peak throughput mu Q_th / 4 = 2000/s; at lambda = 1500 the root is
        // 4 (1 - sqrt(0.25)) = 2.
        let q_star = MODEL.equilibrium(1500.0).unwrap();
        assert!((q_star - 2.0).abs() < 1e-12);
        let path = MODEL.integrate(0.0, |_| 1500.0, 0.05, 1e-5, 0.01);
        assert!((path.last().unwrap().1 - q_star).abs() < 1e-3, "{path:?}");
        // Started above the root but below the unstable one (6), it comes back down.
        let path = MODEL.integrate(5.0, |_| 1500.0, 0.05, 1e-5, 0.01);
        assert!((path.last().unwrap().1 - q_star).abs() < 1e-3);
    }

    #[test]
    fn above_the_peak_it_collapses_and_does_not_heal() {
        assert_eq!(MODEL.equilibrium(2500.0), None);
        let profile = |t: f64| if t < 0.05 { 2500.0 } else { 500.0 };
        let path = MODEL.integrate(0.0, profile, 0.1, 1e-5, 0.01);
        let at = |t: f64| path.iter().find(|p| p.0 >= t - 1e-9).unwrap().1;
        assert!(at(0.05) > MODEL.q_th, "passes Q_th: {}", at(0.05));
        // Past Q_th nothing is served: Q grows at lambda = 500/s during recovery.
        assert!((at(0.1) - at(0.05) - 25.0).abs() < 0.5, "{path:?}");
    }

    #[test]
    fn rk4_matches_the_closed_form_without_congestion() {
        // Q_th huge: dQ/dt = lambda - mu Q, Q(t) = lambda/mu (1 - e^(-mu t)).
        let model = Model {
            mu: 100.0,
            q_th: 1e12,
        };
        let path = model.integrate(0.0, |_| 1000.0, 0.02, 1e-4, 0.01);
        let exact = 10.0 * (1.0 - (-2.0f64).exp());
        assert!((path.last().unwrap().1 - exact).abs() < 1e-6);
        let one_phase = [Phase {
            load: 0.5,
            seconds: 1.0,
        }];
        assert_eq!(rate_at(&one_phase, 100.0, 0.5), 50.0);
        assert_eq!(rate_at(&one_phase, 100.0, 1.5), 0.0);
    }
}

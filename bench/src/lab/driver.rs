//! The open-loop load driver: Poisson arrivals at rate `lambda` from one OS thread.
//!
//! # Open loop, and what a late driver means
//!
//! The driver draws exponential inter-arrival gaps (mean `1 / lambda`) from a seeded
//! generator, so arrivals do not wait for completions (a closed loop would slow down with
//! the system and hide its queueing). Each arrival has an *intended* time; a task's sojourn
//! is measured from that time, not from when the driver got round to spawning it, so a late
//! driver makes latencies worse, never better (no coordinated omission).
//!
//! # Not stealing a core unnoticed
//!
//! On a 2-core machine the driver competes with the workers. It sleeps through gaps longer
//! than [`SPIN_BELOW`] (with the thread's timer slack set to 1 ns, so a sleep ends close to
//! when asked) and only yields in a loop for shorter ones. It measures its own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) and how late arrivals were; experiments report both, so a
//! driver that ate a core shows in the table.
//!
//! On a busy machine a normal-priority driver wakes up milliseconds late (it waits behind
//! every runnable thread), which bunches arrivals up; a normal-priority sampler runs mostly
//! when a core is free, i.e. when few tasks are alive, which biases `L` down. Both therefore
//! ask for real-time priority (`SCHED_FIFO`, [`raise_priority`]) when allowed (root or
//! `CAP_SYS_NICE`): they then preempt a worker for the microseconds they need and sleep
//! otherwise. Without it they run as normal threads and `DriverStats::realtime` says so.
//!
//! # Rejected options
//!
//! Spinning on the clock (precise, but costs a core), and batching arrivals on a fixed tick
//! (cheap, but no longer Poisson at the scale of the service time).

use super::queueing::ServiceDist;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Gaps shorter than this are waited out by yielding instead of sleeping.
pub const SPIN_BELOW: Duration = Duration::from_micros(20);

/// The real-time priority (SCHED_FIFO) the driver and the sampler ask for.
const RT_PRIORITY: libc::c_int = 10;

/// A small, fast, seeded generator (xorshift64*): the load must be reproducible, not secure.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift has no zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1) ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Exponential with mean `mean`.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }
}

/// Burns the CPU for `duration` (the synthetic task's service).
pub fn burn(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// What load to offer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSpec {
    /// Arrivals per second.
    pub rate: f64,
    /// How long to offer it.
    pub duration: Duration,
    /// Mean service time.
    pub service: Duration,
    /// Service-time distribution.
    pub dist: ServiceDist,
    /// Generator seed.
    pub seed: u64,
}

impl LoadSpec {
    /// Checks the numbers, so a bad flag is an error and not a hang.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(format!("arrival rate must be positive, got {}", self.rate));
        }
        if self.service.is_zero() || self.duration.is_zero() {
            return Err("service time and duration must be positive".to_owned());
        }
        Ok(())
    }
}

/// What the driver did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriverStats {
    /// Arrivals offered.
    pub arrivals: u64,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// The driver thread's CPU time, seconds.
    pub cpu_s: f64,
    /// Mean lateness of arrivals behind their intended time, seconds.
    pub mean_late_s: f64,
    /// Whether the driver ran at real-time priority.
    pub realtime: bool,
}

impl DriverStats {
    /// The driver's share of one CPU.
    pub fn cpu_share(&self) -> f64 {
        self.cpu_s / self.wall_s.max(1e-9)
    }
}

/// Offers `spec` from a dedicated driver thread (so its priority never leaks into threads
/// the caller creates later): at each intended arrival time calls
/// `submit(intended_arrival, service_time)`.
pub fn drive(spec: &LoadSpec, submit: impl FnMut(Instant, Duration) + Send) -> DriverStats {
    std::thread::scope(|scope| {
        scope
            .spawn(|| drive_here(spec, submit))
            .join()
            .expect("the load driver panicked")
    })
}

fn drive_here(spec: &LoadSpec, mut submit: impl FnMut(Instant, Duration)) -> DriverStats {
    set_fine_timer_slack();
    let realtime = raise_priority();
    let mut rng = Rng::new(spec.seed);
    let mean_gap = 1.0 / spec.rate;
    let service_s = spec.service.as_secs_f64();
    let cpu_start = thread_cpu_s();
    let start = Instant::now();
    let (mut offset, mut arrivals, mut late_sum) = (0.0, 0u64, 0.0);
    loop {
        offset += rng.exp(mean_gap);
        if offset >= spec.duration.as_secs_f64() {
            break;
        }
        let due = start + Duration::from_secs_f64(offset);
        wait_until(due);
        late_sum += due.elapsed().as_secs_f64();
        let service = match spec.dist {
            ServiceDist::Const => spec.service,
            ServiceDist::Exp => Duration::from_secs_f64(rng.exp(service_s)),
        };
        submit(due, service);
        arrivals += 1;
    }
    DriverStats {
        arrivals,
        wall_s: start.elapsed().as_secs_f64(),
        cpu_s: thread_cpu_s() - cpu_start,
        mean_late_s: late_sum / arrivals.max(1) as f64,
        realtime,
    }
}

/// Asks for `SCHED_FIFO` priority for the calling thread, with `SCHED_RESET_ON_FORK` so
/// threads it creates (a runtime's Ms, say) start as normal threads; false if refused
/// (not root) or turned off with `GPM_LAB_NO_RT`.
pub fn raise_priority() -> bool {
    if std::env::var_os("GPM_LAB_NO_RT").is_some() {
        return false;
    }
    let param = libc::sched_param {
        sched_priority: RT_PRIORITY,
    };
    // SAFETY: `param` is a valid sched_param for the call's duration; pid 0 is the calling
    // thread (Linux schedules threads, not processes).
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    rc == 0
}

fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let gap = due - now;
        if gap > SPIN_BELOW {
            std::thread::sleep(gap - SPIN_BELOW / 2);
        } else {
            std::thread::yield_now();
        }
    }
}

/// Asks the kernel to end this thread's sleeps within 1 ns of the deadline instead of the
/// default 50 us slack. Best effort: failure only makes the driver later, which it reports.
fn set_fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument (the slack in ns) and only
    // affects the calling thread; the unused arguments are ignored by the kernel.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// CPU time of the calling thread, seconds.
pub fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The largest sojourn recorded (an hour, in ns); longer ones are clamped to it.
const MAX_RECORDED_NS: u64 = 3_600_000_000_000;

/// Per-task sojourn times measured by the tasks themselves (HDR histogram, ns), and a count
/// of completions the caller can wait on.
#[derive(Debug)]
pub struct Recorder {
    /// Arrivals at or after this instant are recorded; earlier ones only counted (warm-up).
    measure_from: Instant,
    histogram: Mutex<Histogram<u64>>,
    sum_ns: AtomicU64,
    /// Completions, and when the last one happened.
    done: Mutex<(u64, Option<Instant>)>,
    done_changed: Condvar,
}

/// Sojourn statistics of the recorded tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sojourn {
    /// Tasks recorded.
    pub count: u64,
    /// Mean, seconds.
    pub mean_s: f64,
    /// Median, seconds.
    pub p50_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
}

impl Recorder {
    /// A recorder that ignores arrivals before `measure_from`.
    pub fn new(measure_from: Instant) -> Arc<Recorder> {
        Arc::new(Recorder {
            measure_from,
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, MAX_RECORDED_NS, 3).expect("static bounds are valid"),
            ),
            sum_ns: AtomicU64::new(0),
            done: Mutex::new((0, None)),
            done_changed: Condvar::new(),
        })
    }

    /// A task that entered the system at `arrival` completed now. What "entered" means is
    /// the caller's choice: the intended arrival time (the user's view, driver lateness
    /// included) or the spawn (the runtime's view, which is what `tasks alive` counts).
    pub fn complete(&self, arrival: Instant) {
        if arrival >= self.measure_from {
            let ns = arrival.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            self.sum_ns.fetch_add(ns, Ordering::Relaxed);
            self.histogram
                .lock()
                .expect("recorder lock")
                .saturating_record(ns.max(1));
        }
        let mut done = self.done.lock().expect("recorder lock");
        *done = (done.0 + 1, Some(Instant::now()));
        self.done_changed.notify_all();
    }

    /// Waits until `count` tasks completed or `timeout` passed; false on time-out.
    pub fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let done = self.done.lock().expect("recorder lock");
        let (done, _) = self
            .done_changed
            .wait_timeout_while(done, timeout, |done| done.0 < count)
            .expect("recorder lock");
        done.0 >= count
    }

    /// Completed tasks (measured or not).
    pub fn completed(&self) -> u64 {
        self.done.lock().expect("recorder lock").0
    }

    /// Measured tasks per second from the start of measurement to the last completion
    /// (the throughput the runtime achieved, backlog included); NaN before any completion.
    pub fn throughput(&self) -> f64 {
        let last = self.done.lock().expect("recorder lock").1;
        let count = self.histogram.lock().expect("recorder lock").len();
        last.map_or(f64::NAN, |last| {
            count as f64
                / last
                    .saturating_duration_since(self.measure_from)
                    .as_secs_f64()
        })
    }

    /// The statistics so far.
    pub fn sojourn(&self) -> Sojourn {
        let histogram = self.histogram.lock().expect("recorder lock");
        let count = histogram.len();
        Sojourn {
            count,
            mean_s: self.sum_ns.load(Ordering::Relaxed) as f64 / count.max(1) as f64 * 1e-9,
            p50_s: histogram.value_at_quantile(0.5) as f64 * 1e-9,
            p99_s: histogram.value_at_quantile(0.99) as f64 * 1e-9,
        }
    }
}

/// Samples a gauge on its own thread every `period` until stopped; returns the time-average
/// (the mean of the samples: the period is constant, so each sample stands for equal time).
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(f64, f64)>>,
}

impl Sampler {
    /// Starts sampling `gauge`; each sample is `(seconds since start, value)`.
    pub fn start(period: Duration, mut gauge: impl FnMut() -> f64 + Send + 'static) -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            set_fine_timer_slack();
            raise_priority();
            let start = Instant::now();
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                samples.push((start.elapsed().as_secs_f64(), gauge()));
                std::thread::sleep(period);
            }
            samples
        });
        Sampler { stop, thread }
    }

    /// Stops and returns the samples.
    pub fn stop(self) -> Vec<(f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler thread panicked")
    }
}

/// Mean of the values of `samples`, NaN when empty.
pub fn mean_value(samples: &[(f64, f64)]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.iter().map(|s| s.1).sum::<f64>() / samples.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_gaps_have_the_right_mean_and_spread() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let samples: Vec<f64> = (0..n).map(|_| rng.exp(2.0)).collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.03, "mean {mean}");
        // Exponential: standard deviation equals the mean.
        assert!((var.sqrt() - 2.0).abs() < 0.05, "sd {}", var.sqrt());
        assert!(samples.iter().all(|&x| x >= 0.0 && x.is_finite()));
    }

    #[test]
    fn driver_offers_about_rate_times_duration() {
        let spec = LoadSpec {
            rate: 2000.0,
            duration: Duration::from_millis(200),
            service: Duration::from_micros(10),
            dist: ServiceDist::Const,
            seed: 3,
        };
        let mut seen = Vec::new();
        let stats = drive(&spec, |due, service| seen.push((due, service)));
        assert_eq!(stats.arrivals as usize, seen.len());
        // 400 expected; Poisson sd = 20, so +-25% is > 5 sd.
        assert!((300..=500).contains(&seen.len()), "{} arrivals", seen.len());
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(stats.cpu_s >= 0.0 && stats.wall_s > 0.0);
    }

    #[test]
    fn priority_does_not_leak_into_child_threads() {
        let policies = std::thread::spawn(|| {
            let raised = raise_priority();
            // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
            let own = unsafe { libc::sched_getscheduler(0) };
            // SAFETY: as above, in the child thread.
            let child = std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) })
                .join()
                .unwrap();
            (raised, own, child)
        })
        .join()
        .unwrap();
        let (raised, own, child) = policies;
        if raised {
            assert_eq!(own & !libc::SCHED_RESET_ON_FORK, libc::SCHED_FIFO);
        }
        // Raised or not, a thread it creates runs as a normal thread.
        assert_eq!(child, libc::SCHED_OTHER);
    }

    #[test]
    fn bad_specs_are_errors() {
        let mut spec = LoadSpec {
            rate: 0.0,
            duration: Duration::from_secs(1),
            service: Duration::from_micros(10),
            dist: ServiceDist::Exp,
            seed: 1,
        };
        assert!(spec.validate().unwrap_err().contains("arrival rate"));
        spec.rate = 10.0;
        spec.service = Duration::ZERO;
        assert!(spec.validate().is_err());
    }

    #[test]
    fn recorder_counts_and_skips_warm_up() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let recorder = Recorder::new(now - ms(10));
        recorder.complete(now - ms(20)); // arrived during the warm-up: counted only
        recorder.complete(now - ms(5));
        assert!(recorder.wait_for(2, Duration::from_secs(5)));
        let sojourn = recorder.sojourn();
        assert!(sojourn.p50_s >= 0.005 && sojourn.p99_s < 1.0, "{sojourn:?}");
        assert!(!recorder.wait_for(3, Duration::from_millis(1)));
        assert_eq!(recorder.sojourn().count, 1);
        assert_eq!(recorder.completed(), 2);
    }
}

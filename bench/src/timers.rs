//! The timers workload of issue 18: every request of a service carries a timeout.
//!
//! `tasks` tasks each run `iterations` rounds of `timeout(50 ms, sleep(d))` with `d` drawn
//! uniformly from 1..=10 ms (a per-task xorshift stream, the same on both runtimes), so each
//! round arms two timers: the sleep fires, the timeout's timer is cancelled. Each task
//! records how late each of its sleeps ended (`Instant::now()` after the sleep minus its
//! deadline) in its own histogram; an early end counts as an error.
//!
//! [`measure`] runs the workload once on a runtime built for it and reports wall time,
//! process CPU time (`getrusage(RUSAGE_SELF)`: every thread of the process, user + system)
//! and the lateness percentiles. Built for one runtime per process (the lab's `timers`
//! experiment runs each side in a child process), so neither side's threads or allocator
//! state affect the other.

use crate::{Gpm, Rt, Tokio};
use hdrhistogram::Histogram;
use std::future::Future;
use std::time::{Duration, Instant};

/// The timeout each round wraps its sleep in (never reached: sleeps are at most 10 ms).
pub const TIMEOUT: Duration = Duration::from_millis(50);
/// Sleeps last 1..=`MAX_SLEEP_MS` milliseconds.
pub const MAX_SLEEP_MS: u64 = 10;

/// A runtime's timer API, as the workload uses it.
pub trait TimerRt: Rt {
    /// `sleep(d)` on the current runtime.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;
    /// `timeout(d, f)`: `true` when `f` finished first.
    fn timeout<F: Future + Send>(duration: Duration, f: F) -> impl Future<Output = bool> + Send;
}

impl TimerRt for Tokio {
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    async fn timeout<F: Future + Send>(duration: Duration, f: F) -> bool {
        tokio::time::timeout(duration, f).await.is_ok()
    }
}

impl TimerRt for Gpm {
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        gpm::time::sleep(duration)
    }

    async fn timeout<F: Future + Send>(duration: Duration, f: F) -> bool {
        gpm::time::timeout(duration, f).await.is_ok()
    }
}

/// What one run of the workload measured.
#[derive(Debug, Clone)]
pub struct TimersReport {
    /// From the first spawn to the last task's end.
    pub wall: Duration,
    /// Process CPU time (user + system, all threads) over the same span.
    pub cpu: Duration,
    /// Lateness of the sleeps, microseconds.
    pub lateness_us: Histogram<u64>,
    /// Sleeps that ended before their deadline (must be 0).
    pub early: u64,
    /// Timeouts that fired (must be 0: no sleep reaches the timeout).
    pub timed_out: u64,
}

impl TimersReport {
    /// One line of whitespace-separated numbers: wall s, CPU s, P50, P99, max lateness µs,
    /// early sleeps, fired timeouts. [`TimersReport::parse_line`] reads it back.
    pub fn line(&self) -> String {
        format!(
            "{:.6} {:.6} {} {} {} {} {}",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.lateness_us.value_at_quantile(0.5),
            self.lateness_us.value_at_quantile(0.99),
            self.lateness_us.max(),
            self.early,
            self.timed_out
        )
    }

    /// Parses [`TimersReport::line`] into (wall s, CPU s, P50 µs, P99 µs, max µs, early,
    /// timed out).
    pub fn parse_line(line: &str) -> Result<[f64; 7], String> {
        let fields: Vec<f64> = line
            .split_whitespace()
            .map(|field| field.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad timers report {line:?}: {e}"))?;
        fields
            .try_into()
            .map_err(|_| format!("a timers report has 7 numbers: {line:?}"))
    }
}

/// Process CPU time so far: user + system of every thread.
pub fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail");
    // SAFETY: getrusage returned 0, so it initialised `usage` (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let micros = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// One task's sleeps: 1..=10 ms from its own xorshift stream.
struct SleepDraws(u64);

impl SleepDraws {
    fn new(task: usize) -> SleepDraws {
        SleepDraws((task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(1 + self.0 % MAX_SLEEP_MS)
    }
}

/// What one task saw (a plain list: a histogram per task would cost more memory than the
/// timers under test).
struct TaskResult {
    lateness_us: Vec<u64>,
    early: u64,
    timed_out: u64,
}

fn lateness_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds")
}

async fn one_task<R: TimerRt>(task: usize, iterations: usize) -> TaskResult {
    let mut draws = SleepDraws::new(task);
    let mut result = TaskResult {
        lateness_us: Vec::with_capacity(iterations),
        early: 0,
        timed_out: 0,
    };
    for _ in 0..iterations {
        let duration = draws.next();
        let deadline = Instant::now() + duration;
        if !R::timeout(TIMEOUT, R::sleep(duration)).await {
            result.timed_out += 1;
        }
        let now = Instant::now();
        match now.checked_duration_since(deadline) {
            Some(late) => result.lateness_us.push(late.as_micros() as u64),
            None => result.early += 1,
        }
    }
    result
}

/// Runs the workload once on `rt` (`tasks` tasks of `iterations` rounds each).
pub fn measure<R: TimerRt>(rt: &R, tasks: usize, iterations: usize) -> TimersReport {
    let cpu_before = process_cpu_time();
    let start = Instant::now();
    let results = rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|task| R::spawn(one_task::<R>(task, iterations)))
            .collect();
        let mut results = Vec::with_capacity(tasks);
        for handle in handles {
            results.push(R::join(handle).await);
        }
        results
    });
    let wall = start.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    let mut report = TimersReport {
        wall,
        cpu,
        lateness_us: lateness_histogram(),
        early: 0,
        timed_out: 0,
    };
    for result in results {
        for late in result.lateness_us {
            report.lateness_us.saturating_record(late.max(1));
        }
        report.early += result.early;
        report.timed_out += result.timed_out;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_differ_between_tasks() {
        let mut a = SleepDraws::new(0);
        let mut b = SleepDraws::new(1);
        let a: Vec<_> = (0..100).map(|_| a.next()).collect();
        let b: Vec<_> = (0..100).map(|_| b.next()).collect();
        assert_ne!(a, b);
        for d in a.iter().chain(&b) {
            assert!((1..=MAX_SLEEP_MS).contains(&(d.as_millis() as u64)));
        }
    }

    #[test]
    fn a_small_run_on_each_runtime_reports_no_early_sleep() {
        for line in [
            measure(&Gpm::with_workers(2), 50, 3).line(),
            measure(&Tokio::with_workers(2), 50, 3).line(),
        ] {
            let [wall, cpu, _, _, _, early, timed_out] = TimersReport::parse_line(&line).unwrap();
            assert!(wall > 0.0 && cpu >= 0.0, "{line}");
            assert_eq!((early, timed_out), (0.0, 0.0), "{line}");
        }
    }

    #[test]
    fn a_short_report_line_is_an_error() {
        assert!(TimersReport::parse_line("1 2 3").is_err());
        assert!(TimersReport::parse_line("1 2 x 4 5 6 7").is_err());
    }
}

//! What one clock read costs here: the candidates for the probes' timestamps
//! (`runtime/src/rt/stamp.rs` chose from these). Wall time per read, best of 5 runs of
//! 10 M reads each:
//!
//! ```sh
//! cargo run --release -p gpm-bench --example clock_cost
//! ```

use std::hint::black_box;
use std::time::Instant;

const READS: u32 = 10_000_000;

#[inline(never)]
fn instant_elapsed(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

#[inline(never)]
fn clock_gettime(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Best of 5 runs, nanoseconds per read.
fn ns_per_read(read: impl Fn() -> u64) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut sum = 0u64;
            for _ in 0..READS {
                sum = sum.wrapping_add(black_box(read()));
            }
            black_box(sum);
            start.elapsed().as_nanos() as f64 / f64::from(READS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn resolution(clock: libc::clockid_t) -> String {
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `res` is a valid, writable timespec.
    unsafe { libc::clock_getres(clock, &mut res) };
    format!("{} ns", res.tv_sec * 1_000_000_000 + res.tv_nsec)
}

fn main() {
    let epoch = Instant::now();
    let rows: Vec<(&str, f64, String)> = vec![
        (
            "Instant::now (elapsed)",
            ns_per_read(|| instant_elapsed(epoch)),
            resolution(libc::CLOCK_MONOTONIC),
        ),
        (
            "clock_gettime(CLOCK_MONOTONIC)",
            ns_per_read(|| clock_gettime(libc::CLOCK_MONOTONIC)),
            resolution(libc::CLOCK_MONOTONIC),
        ),
        (
            "clock_gettime(CLOCK_MONOTONIC_COARSE)",
            ns_per_read(|| clock_gettime(libc::CLOCK_MONOTONIC_COARSE)),
            resolution(libc::CLOCK_MONOTONIC_COARSE),
        ),
        #[cfg(target_arch = "x86_64")]
        ("rdtsc", ns_per_read(tsc), "1 tick".to_owned()),
    ];
    println!("{:<40} {:>10} {:>16}", "clock", "ns/read", "resolution");
    for (name, ns, resolution) in rows {
        println!("{name:<40} {ns:>10.1} {resolution:>16}");
    }
}

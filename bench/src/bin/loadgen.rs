//! An open-loop HTTP/1.1 load generator for loopback benchmarks (wrk2's method).
//!
//! ```text
//! loadgen ADDR RATE CONNECTIONS SECONDS [WARMUP_SECONDS]
//! ```
//!
//! `CONNECTIONS` threads each own one keep-alive connection and send `GET /` on a fixed
//! schedule: request `k` of connection `i` is due at `start + (k * CONNECTIONS + i) / RATE`.
//! Latency is measured from that *intended* send time to the end of the response, so a
//! server that falls behind is charged for the queueing it causes (no coordinated omission).
//! A thread that falls behind sends its late requests at once, back to back.
//! Latencies go to an HDR histogram (1 us to 60 s, 3 significant digits); the warm-up is not
//! recorded. Throughput (`achieved`) is the measured requests over the time from the end of
//! the warm-up to the last response (at least the window), so a saturated server shows a
//! rate below the offered one. Prints one line: `rate=.. achieved=.. p50_us=.. p99_us=.. p999_us=.. max_us=..
//! errors=..`. Exits non-zero on bad arguments.

use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gpm_bench::http::{parse_response, GET as REQUEST};

struct Config {
    addr: SocketAddr,
    rate: f64,
    connections: usize,
    duration: Duration,
    warmup: Duration,
}

struct ThreadResult {
    histogram: Histogram<u64>,
    completed: u64,
    errors: u64,
    last_done: Instant,
}

fn parse_args() -> Result<Config, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: loadgen ADDR RATE CONNECTIONS SECONDS [WARMUP_SECONDS]".into());
    }
    let number = |i: usize, what: &str| -> Result<f64, String> {
        args[i]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{what} must be a non-negative number, got {:?}", args[i]))
    };
    let config = Config {
        addr: args[0]
            .parse()
            .map_err(|e| format!("ADDR {:?}: {e}", args[0]))?,
        rate: number(1, "RATE")?,
        connections: number(2, "CONNECTIONS")? as usize,
        duration: Duration::from_secs_f64(number(3, "SECONDS")?),
        warmup: Duration::from_secs_f64(if args.len() > 4 {
            number(4, "WARMUP")?
        } else {
            1.0
        }),
    };
    if config.rate <= 0.0 || config.connections == 0 || config.duration.is_zero() {
        return Err("RATE, CONNECTIONS and SECONDS must be positive".into());
    }
    Ok(config)
}

/// Reads one response (headers, then `content-length` bytes of body).
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if parse_response(buf)
            .map_err(std::io::Error::other)?
            .is_some()
        {
            return Ok(());
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

fn run_connection(config: &Config, index: usize, start: Instant) -> ThreadResult {
    let mut result = ThreadResult {
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        completed: 0,
        errors: 0,
        last_done: start,
    };
    let interval = Duration::from_secs_f64(config.connections as f64 / config.rate);
    let offset = Duration::from_secs_f64(index as f64 / config.rate);
    let record_from = start + config.warmup;
    let end = record_from + config.duration;
    let mut stream = None;
    let mut buf = Vec::with_capacity(4096);
    for k in 0u32.. {
        let due = start + offset + interval * k;
        if due >= end {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let outcome = (|| -> std::io::Result<()> {
            if stream.is_none() {
                stream = Some(connect(config.addr)?);
            }
            let s = stream.as_mut().expect("connected above");
            s.write_all(REQUEST)?;
            read_response(s, &mut buf)
        })();
        let done = Instant::now();
        match outcome {
            Ok(()) if due >= record_from => {
                let micros = done.duration_since(due).as_micros().max(1) as u64;
                result.histogram.saturating_record(micros);
                result.completed += 1;
                result.last_done = done;
            }
            Ok(()) => {}
            Err(_) => {
                result.errors += 1;
                stream = None;
            }
        }
    }
    result
}

fn main() {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::exit(2);
        }
    };
    let start = Instant::now() + Duration::from_millis(100);
    let results: Vec<ThreadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.connections)
            .map(|i| {
                let config = &config;
                scope.spawn(move || run_connection(config, i, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("load thread panicked"))
            .collect()
    });
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let (mut completed, mut errors) = (0, 0);
    let mut last_done = start + config.warmup;
    for r in &results {
        histogram.add(&r.histogram).expect("same bounds");
        completed += r.completed;
        errors += r.errors;
        last_done = last_done.max(r.last_done);
    }
    // Throughput over the time the measured requests really took: a server that falls
    // behind finishes after the window, so this drops below the offered rate.
    let took = last_done
        .duration_since(start + config.warmup)
        .max(config.duration);
    println!(
        "rate={} achieved={:.0} p50_us={} p99_us={} p999_us={} max_us={} errors={}",
        config.rate,
        completed as f64 / took.as_secs_f64(),
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
        errors
    );
}

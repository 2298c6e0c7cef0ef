//! `overload-http`: a hyper server on gpm behind `gpm::overload::tower`'s layers, under
//! open-loop HTTP load from 0.5x to 2.5x its measured capacity, with and without control.
//!
//! # The pieces, all in this process
//!
//! * **Server**: a gpm runtime of `--workers` Ps serving hyper HTTP/1.1 on 127.0.0.1; each
//!   request busy-spins `--service-us` (fixed CPU work) and answers `200`. Probes time every
//!   schedule (`probe_sampling(1)`), so the run-queue wait is measured per request.
//! * **Modes** (what sits in front of the handler):
//!   `none`, nothing; `limit`, `ConcurrencyLimitLayer::from_runtime` (the Little's-law
//!   limiter, `ceil(lambda S x 2)` permits but at least N, plus a `RuntimeGate` on the
//!   server runtime's own probes); `admission`, `AdmissionLayer::from_runtime` (P99 of the
//!   calls over a 100 ms window against `--slo-ms / 2`, plus the same gate); `edge`, that
//!   P99 admission alone (`AdmissionLayer::new`). The gate reads `Handle::probes()` once
//!   per `--gate-window-us` and sheds a share of the calls that follows the mean run-queue
//!   wait since its last read against `--queue-wait-target-us` (`Shedding::Proportional`;
//!   `--shedding all` for the bang-bang gate). A refusal is `503` with `Retry-After`.
//! * **Why the gate**: the calls themselves never wait. The queue of an overloaded server
//!   is its connection tasks waiting in the run queues (woken by readable sockets) and the
//!   bytes in the sockets; a call starts only when its connection task runs, so the
//!   latency a layer measures from `call` is the handler's `S`, and no more than N calls
//!   overlap. The limiter and the edge P99 cannot see that queue; the runtime's probes do.
//! * **Client**: its own gpm runtime with one P (`--client-workers`) whose threads ask for
//!   real-time priority as the driver does (`GPM_LAB_NO_RT=1`: normal), `--connections`
//!   keep-alive connections opened before the run, each a task that takes the next arrival
//!   from a shared queue, sends `GET /`, reads the response. Arrivals come from the lab's
//!   open-loop driver (`driver::drive`: Poisson, seeded, its own real-time thread). When
//!   every connection is busy arrivals wait in the queue, so latency, measured from the
//!   *intended* arrival time, includes the client-side wait too (no coordinated omission).
//!   Client and server share the machine's CPUs: on the 2-core machine the client's cost
//!   is part of what capacity means here.
//! * **Capacity** is measured first, in the same run: the `none` server under a closed loop
//!   (`--capacity-connections` connections each sending its next request when the previous
//!   answer arrives) for `--capacity-seconds`. Loads are fractions of that rate. It is
//!   measured again after the sweep and both are printed: on a shared machine other
//!   processes move it during a run.
//!
//! # What is reported per load and mode
//!
//! Offered rate, answered `200`s per second, refusals (`503`), goodput (`200`s answered
//! within `--slo-ms` of their intended arrival, per second, and as a share of capacity), P50
//! and P99 of the admitted (`200`) requests, and Little's law for the server's run queues
//! from its probes over the measured window: `L` (tasks queued, time-averaged from a
//! snapshot every 10 ms) against `lambda W` (enqueues per second x mean enqueue-to-poll
//! wait, from the snapshots' cumulative counters at the window's ends).
//!
//! # Rejected options
//!
//! * `loadgen` (a thread per connection, fixed schedule) as the client: at 2.5x overload
//!   an open loop needs hundreds of requests outstanding, i.e. hundreds of threads on 2
//!   cores; the client here is a few tasks on one P. Both share `gpm_bench::http`.
//! * wrk / wrk2 in another process: closed-loop (wrk) or not installed by CI, and their
//!   latency and refusal counts would have to be parsed from text.

use super::driver::{self, LoadSpec};
use super::out::{num, Chart, Output, Table};
use super::queueing::ServiceDist;
use super::RuntimeConfig;
use crate::http::{parse_response, GET};
use bytes::Bytes;
use clap::Args;
use futures::channel::mpsc;
use futures::lock::Mutex as AsyncMutex;
use futures::StreamExt;
use gpm::overload::tower::{
    AdmissionLayer, BoxError, ConcurrencyLimitLayer, RuntimeConfig as GateConfig,
};
use gpm::overload::{AdmissionConfig, LimiterConfig, SystemClock};
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower_layer::Layer;
use tower_service::Service;

/// The flags of `overload-http`.
#[derive(Debug, Clone, Args)]
pub struct OverloadHttpArgs {
    /// Server worker threads N (default: the CPUs available).
    #[arg(long)]
    pub workers: Option<usize>,
    /// CPU work per request, microseconds (busy-spin in the handler).
    #[arg(long, default_value_t = 200)]
    pub service_us: u64,
    /// Loads as fractions of the measured capacity, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,1.5,2,2.5")]
    pub loads: Vec<f64>,
    /// Modes, comma-separated: none, limit, admission, edge.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,limit,admission,edge"
    )]
    pub modes: Vec<String>,
    /// Measured seconds per point (a fifth more is offered first as warm-up).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Seconds of the closed-loop capacity measurement.
    #[arg(long, default_value_t = 2.0)]
    pub capacity_seconds: f64,
    /// Connections of the closed loop that measures capacity.
    #[arg(long, default_value_t = 8)]
    pub capacity_connections: usize,
    /// Use this capacity (requests per second) instead of measuring it.
    #[arg(long)]
    pub capacity: Option<f64>,
    /// Keep-alive connections of the open-loop client.
    #[arg(long, default_value_t = 128)]
    pub connections: usize,
    /// Worker threads of the client's runtime.
    #[arg(long, default_value_t = 1)]
    pub client_workers: usize,
    /// The SLO: a 200 within this many milliseconds of its intended arrival is goodput.
    #[arg(long, default_value_t = 10.0)]
    pub slo_ms: f64,
    /// How often the gate reads the server runtime's probes, microseconds.
    #[arg(long, default_value_t = 2000)]
    pub gate_window_us: u64,
    /// The gate sheds while the mean run-queue wait is over this, microseconds
    /// (default: 2 x the service time).
    #[arg(long)]
    pub queue_wait_target_us: Option<u64>,
    /// How the gate sheds: proportional (a share that follows the wait) or all
    /// (every call until the wait is under the target).
    #[arg(long, default_value = "proportional")]
    pub shedding: String,
    /// Proportional shedding: the largest increase of the admitted share per gate read.
    #[arg(long, default_value_t = 0.1)]
    pub shed_step: f64,
    /// Seed of the arrival process.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The modes, in table order.
pub const MODES: &[&str] = &["none", "limit", "admission", "edge"];

/// The settings of one point, besides the load.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// Server Ps.
    pub workers: usize,
    /// CPU work per request.
    pub service: Duration,
    /// Which layers (a name of [`MODES`]).
    pub mode: String,
    /// The gate's window.
    pub gate_window: Duration,
    /// The gate's queue-wait target.
    pub queue_wait_target: Duration,
    /// Whether the gate sheds a share (`Shedding::Proportional`) or every call.
    pub proportional: bool,
    /// The proportional gate's `step`.
    pub shed_step: f64,
    /// The SLO (also sets the admission layer's P99 target: half of it).
    pub slo: Duration,
}

/// The client's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientSpec {
    /// Keep-alive connections.
    pub connections: usize,
    /// The client runtime's Ps.
    pub workers: usize,
}

/// One point's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointResult {
    /// Arrivals offered in the measured window.
    pub offered: u64,
    /// 200s among them.
    pub ok: u64,
    /// 200s within the SLO.
    pub good: u64,
    /// 503s.
    pub refused: u64,
    /// Failed exchanges (connection errors, other statuses).
    pub errors: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// P50 and P99 of the 200s' latency, seconds.
    pub p50_s: f64,
    /// See `p50_s`.
    pub p99_s: f64,
    /// Server run queues over the window: time-mean of tasks queued.
    pub l_queued: f64,
    /// Enqueues per second.
    pub lambda: f64,
    /// Mean enqueue-to-poll wait, seconds.
    pub w_s: f64,
    /// The driver's mean lateness, seconds.
    pub driver_late_s: f64,
}

impl PointResult {
    /// `lambda * W` of the server's run queues.
    pub fn lambda_w(&self) -> f64 {
        self.lambda * self.w_s
    }
}

type Body = Full<Bytes>;

/// The handler: spins the service time, answers 200.
#[derive(Debug, Clone, Copy)]
struct Work(Duration);

impl<B> Service<Request<B>> for Work {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        driver::burn(self.0);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok\n")))))
    }
}

/// One request through `service` as a tower caller does it; a refusal becomes 503.
async fn respond<S, B>(service: S, request: Request<B>) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    gpm::overload::tower::respond_or_refuse(service, request, |_| {
        Full::new(Bytes::from_static(b"busy\n"))
    })
    .await
}

/// Serves hyper on `listener` with `service` from a task of `handle`'s runtime.
fn serve<S>(handle: &gpm::Handle, listener: std::net::TcpListener, service: S)
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<Body>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    drop(handle.spawn(async move {
        let Ok(listener) = gpm::net::TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            drop(gpm::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request| respond(service.clone(), request));
                let _ = http1::Builder::new()
                    .serve_connection(stream, service)
                    .await;
            }));
        }
    }));
}

/// The server of one point: its runtime (dropping it stops the server) and address.
struct Server {
    rt: gpm::Runtime,
    addr: SocketAddr,
}

fn start_server(spec: &ServerSpec) -> Result<Server, String> {
    if !MODES.contains(&spec.mode.as_str()) {
        return Err(format!(
            "unknown overload-http mode {:?}; known: {}",
            spec.mode,
            MODES.join(", ")
        ));
    }
    let mut builder = RuntimeConfig::new(spec.workers).gpm_builder();
    builder.probe_sampling(1);
    let rt = crate::pin::build_confined(|| builder.build())
        .map_err(|e| format!("cannot build the server runtime: {e}"))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let handle = rt.handle();
    let clock = SystemClock::new();
    let gate = if spec.proportional {
        GateConfig {
            shedding: gpm::overload::tower::Shedding::Proportional {
                step: spec.shed_step,
            },
            ..GateConfig::proportional(spec.gate_window, spec.queue_wait_target)
        }
    } else {
        GateConfig::new(spec.gate_window, spec.queue_wait_target)
    };
    let err = |e: gpm::overload::ConfigError| e.to_string();
    let work = Work(spec.service);
    match spec.mode.as_str() {
        "limit" => {
            // At least N permits: the handler runs inside a poll, so no more than N calls
            // overlap; a limit under N would refuse at low load (ceil(lambda S x 2) is 1 at
            // a quarter of capacity) and protect nothing.
            let config = LimiterConfig {
                initial: spec.workers,
                interval: Duration::from_millis(50),
                ..LimiterConfig::new(spec.workers, 4096)
            };
            let layer =
                ConcurrencyLimitLayer::from_runtime(handle, config, gate, clock).map_err(err)?;
            serve(handle, listener, layer.layer(work));
        }
        "admission" | "edge" => {
            let config = AdmissionConfig {
                window: Duration::from_millis(100),
                min_samples: 20,
                refresh: Duration::from_millis(5),
                ..AdmissionConfig::new(spec.slo / 2)
            };
            let layer = if spec.mode == "edge" {
                AdmissionLayer::new(config, clock)
            } else {
                AdmissionLayer::from_runtime(handle, config, gate, clock)
            };
            serve(handle, listener, layer.map_err(err)?.layer(work));
        }
        _ => serve(handle, listener, work),
    }
    Ok(Server { rt, addr })
}

/// What the client saw, counted over arrivals at or after `measure_from`.
#[derive(Debug)]
struct Tally {
    measure_from: Instant,
    slo: Duration,
    latency_ns: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    good: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    offered: AtomicU64,
    /// Exchanges finished (measured or not), to wait for the end.
    done: Mutex<u64>,
    done_changed: Condvar,
}

impl Tally {
    fn new(measure_from: Instant, slo: Duration) -> Arc<Tally> {
        Arc::new(Tally {
            measure_from,
            slo,
            latency_ns: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("static bounds"),
            ),
            ok: AtomicU64::new(0),
            good: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            offered: AtomicU64::new(0),
            done: Mutex::new(0),
            done_changed: Condvar::new(),
        })
    }

    fn record(&self, arrival: Instant, status: Option<u16>) {
        if arrival >= self.measure_from {
            self.offered.fetch_add(1, Ordering::Relaxed);
            let took = arrival.elapsed();
            match status {
                Some(200) => {
                    self.ok.fetch_add(1, Ordering::Relaxed);
                    if took <= self.slo {
                        self.good.fetch_add(1, Ordering::Relaxed);
                    }
                    let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
                    self.latency_ns
                        .lock()
                        .expect("tally lock")
                        .saturating_record(ns);
                }
                Some(503) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        *self.done.lock().expect("tally lock") += 1;
        self.done_changed.notify_all();
    }

    fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let done = self.done.lock().expect("tally lock");
        let (done, _) = self
            .done_changed
            .wait_timeout_while(done, timeout, |done| *done < count)
            .expect("tally lock");
        *done >= count
    }
}

/// Sends `GET /` on `stream` and reads the answer: its status.
async fn exchange(stream: &gpm::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    stream.write_all(GET).await?;
    buf.clear();
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(head) = parse_response(buf).map_err(std::io::Error::other)? {
            return Ok(head.status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Opens `count` connections to `addr` from `client`'s runtime.
fn connect_all(
    client: &gpm::Runtime,
    addr: SocketAddr,
    count: usize,
) -> Result<Vec<gpm::net::TcpStream>, String> {
    client.block_on(async move {
        let mut streams = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = gpm::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("cannot connect to the server at {addr}: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            streams.push(stream);
        }
        Ok(streams)
    })
}

/// Whether the client's threads got real-time priority (the last client built).
static CLIENT_REALTIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The client's runtime. Its threads ask for real-time priority like the driver
/// (`driver::raise_priority`, `GPM_LAB_NO_RT=1` turns it off): a client that other
/// processes delay by milliseconds reads its answers late and charges the server for it.
fn build_client(workers: usize) -> Result<gpm::Runtime, String> {
    CLIENT_REALTIME.store(true, Ordering::Relaxed);
    gpm::Runtime::builder()
        .worker_threads(workers)
        .thread_name("lab-client")
        .on_thread_start(|| {
            if !driver::raise_priority() {
                CLIENT_REALTIME.store(false, Ordering::Relaxed);
            }
        })
        .build()
        .map_err(|e| format!("cannot build the client runtime: {e}"))
}

/// The server's run queues as the probes see them: tasks queued now, and the cumulative
/// enqueues and queue-wait samples (count, sum in ns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSample {
    /// Seconds since the sampler started.
    pub t: f64,
    /// Tasks queued (local queues, `runnext`, deferred, injector).
    pub queued: f64,
    /// Spawns + wake-ups since the runtime started.
    pub enqueues: u64,
    /// Queue-wait samples since the runtime started.
    pub waits: u64,
    /// Their sum, ns.
    pub wait_sum_ns: f64,
}

impl QueueSample {
    fn from_probes(t: f64, probes: &gpm::probe::Probes) -> QueueSample {
        let queued: usize = probes
            .processors
            .iter()
            .map(|p| p.queue_depth + usize::from(p.runnext) + p.deferred)
            .sum::<usize>()
            + probes.injector_depth;
        QueueSample {
            t,
            queued: queued as f64,
            enqueues: probes.spawns + probes.wakes,
            waits: probes.queue_wait.count,
            wait_sum_ns: probes.queue_wait.mean_ns * probes.queue_wait.count as f64,
        }
    }
}

/// Little's law for the run queues over the samples with `t` in `[from, to]`: (time-mean
/// `L`, `lambda`, `W` in seconds); NaN where the window holds too little.
pub fn little_over(samples: &[QueueSample], from: f64, to: f64) -> (f64, f64, f64) {
    let inside: Vec<&QueueSample> = samples
        .iter()
        .filter(|s| s.t >= from && s.t <= to)
        .collect();
    let (Some(first), Some(last)) = (inside.first(), inside.last()) else {
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let l = inside.iter().map(|s| s.queued).sum::<f64>() / inside.len() as f64;
    let span = last.t - first.t;
    let lambda = if span > 0.0 {
        last.enqueues.saturating_sub(first.enqueues) as f64 / span
    } else {
        f64::NAN
    };
    let waits = last.waits.saturating_sub(first.waits);
    let w = if waits > 0 {
        (last.wait_sum_ns - first.wait_sum_ns) / waits as f64 * 1e-9
    } else {
        f64::NAN
    };
    (l, lambda, w)
}

/// Runs one open-loop point: `load.rate` arrivals per second against a fresh server.
pub fn run_point(
    server: &ServerSpec,
    client: ClientSpec,
    load: &LoadSpec,
    warmup: Duration,
) -> Result<PointResult, String> {
    load.validate()?;
    if client.connections == 0 || client.workers == 0 {
        return Err("--connections and --client-workers must be positive".into());
    }
    let srv = start_server(server)?;
    let client_rt = build_client(client.workers)?;
    let streams = connect_all(&client_rt, srv.addr, client.connections)?;
    let start = Instant::now();
    let tally = Tally::new(start + warmup, server.slo);
    let (sender, receiver) = mpsc::unbounded::<Instant>();
    let queue = Arc::new(AsyncMutex::new(receiver));
    for stream in streams {
        let (queue, tally) = (Arc::clone(&queue), Arc::clone(&tally));
        drop(client_rt.spawn(async move {
            let mut buf = Vec::with_capacity(512);
            let mut broken = false;
            loop {
                let Some(arrival) = queue.lock().await.next().await else {
                    return;
                };
                // A broken connection answers nothing more: its arrivals count as errors.
                let status = if broken {
                    None
                } else {
                    exchange(&stream, &mut buf).await.ok()
                };
                broken |= status.is_none();
                tally.record(arrival, status);
            }
        }));
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (handle, samples) = (srv.rt.handle().clone(), Arc::clone(&samples));
        driver::Sampler::start(Duration::from_millis(10), move || {
            let sample = QueueSample::from_probes(start.elapsed().as_secs_f64(), &handle.probes());
            samples.lock().expect("samples lock").push(sample);
            sample.queued
        })
    };
    let spec = LoadSpec {
        duration: load.duration + warmup,
        ..*load
    };
    let stats = driver::drive(&spec, |arrival, _| {
        let _ = sender.unbounded_send(arrival);
    });
    drop(sender);
    let measured_end = (spec.duration).as_secs_f64();
    let backlog_s = stats.arrivals as f64 * server.service.as_secs_f64() / server.workers as f64;
    let timeout = Duration::from_secs_f64(5.0 + 2.0 * backlog_s);
    let drained = tally.wait_for(stats.arrivals, timeout);
    drop(sampler.stop());
    drop(client_rt);
    drop(srv);
    if !drained {
        return Err(format!(
            "{}: not every request was answered within {timeout:?}",
            server.mode
        ));
    }
    let (l_queued, lambda, w_s) = {
        let samples = samples.lock().expect("samples lock");
        little_over(&samples, warmup.as_secs_f64(), measured_end)
    };
    let histogram = tally.latency_ns.lock().expect("tally lock");
    let quantile = |q: f64| {
        if histogram.is_empty() {
            f64::NAN
        } else {
            histogram.value_at_quantile(q) as f64 * 1e-9
        }
    };
    Ok(PointResult {
        offered: tally.offered.load(Ordering::Relaxed),
        ok: tally.ok.load(Ordering::Relaxed),
        good: tally.good.load(Ordering::Relaxed),
        refused: tally.refused.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        seconds: load.duration.as_secs_f64(),
        p50_s: quantile(0.5),
        p99_s: quantile(0.99),
        l_queued,
        lambda,
        w_s,
        driver_late_s: stats.mean_late_s,
    })
}

/// Measures the `none` server's capacity: `connections` closed loops for `seconds` (after
/// a tenth of that as warm-up); 200s per second.
pub fn measure_capacity(
    server: &ServerSpec,
    client: ClientSpec,
    seconds: f64,
) -> Result<f64, String> {
    if !(seconds > 0.0 && seconds.is_finite()) || client.connections == 0 {
        return Err("--capacity-seconds and --capacity-connections must be positive".into());
    }
    let spec = ServerSpec {
        mode: "none".into(),
        ..server.clone()
    };
    let srv = start_server(&spec)?;
    let client_rt = build_client(client.workers)?;
    let streams = connect_all(&client_rt, srv.addr, client.connections)?;
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(seconds / 10.0);
    let until = from + Duration::from_secs_f64(seconds);
    let counted = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let counted = Arc::clone(&counted);
            client_rt.spawn(async move {
                let mut buf = Vec::with_capacity(512);
                loop {
                    let status = exchange(&stream, &mut buf).await?;
                    let now = Instant::now();
                    if now >= until {
                        return Ok::<_, std::io::Error>(());
                    }
                    if status == 200 && now >= from {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for join in loops {
        client_rt
            .block_on(join)
            .map_err(|e| format!("capacity client failed: {e}"))?
            .map_err(|e| format!("capacity client failed: {e}"))?;
    }
    drop(client_rt);
    drop(srv);
    Ok(counted.load(Ordering::Relaxed) as f64 / seconds)
}

/// The `overload-http` experiment.
pub fn run(args: &OverloadHttpArgs, out: &Output) -> Result<String, String> {
    let workers = args.workers.unwrap_or_else(super::available_cpus);
    if workers == 0 || args.service_us == 0 || args.loads.is_empty() || args.modes.is_empty() {
        return Err(
            "--workers and --service-us must be positive, --loads and --modes non-empty".into(),
        );
    }
    if args.loads.iter().any(|l| !(*l > 0.0 && l.is_finite())) {
        return Err("every --loads entry must be a positive number".into());
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err("--seconds must be positive".into());
    }
    if !(args.slo_ms > 0.0 && args.slo_ms.is_finite()) || args.gate_window_us == 0 {
        return Err("--slo-ms and --gate-window-us must be positive".into());
    }
    for mode in &args.modes {
        if !MODES.contains(&mode.as_str()) {
            return Err(format!(
                "unknown overload-http mode {mode:?}; known: {}",
                MODES.join(", ")
            ));
        }
    }
    let service = Duration::from_micros(args.service_us);
    let base = ServerSpec {
        workers,
        service,
        mode: "none".into(),
        gate_window: Duration::from_micros(args.gate_window_us),
        queue_wait_target: Duration::from_micros(
            args.queue_wait_target_us.unwrap_or(2 * args.service_us),
        ),
        slo: Duration::from_secs_f64(args.slo_ms / 1e3),
        proportional: match args.shedding.as_str() {
            "proportional" => true,
            "all" => false,
            other => return Err(format!("--shedding is proportional or all, got {other:?}")),
        },
        shed_step: args.shed_step,
    };
    let client = ClientSpec {
        connections: args.connections,
        workers: args.client_workers,
    };
    let capacity = match args.capacity {
        Some(c) if c > 0.0 && c.is_finite() => c,
        Some(c) => return Err(format!("--capacity must be positive, got {c}")),
        None => measure_capacity(
            &base,
            ClientSpec {
                connections: args.capacity_connections,
                ..client
            },
            args.capacity_seconds,
        )?,
    };
    if !super::positive(capacity) {
        return Err("the measured capacity is zero: the server answered nothing".into());
    }
    let mut table = Table::new(&[
        "load",
        "mode",
        "offered/s",
        "ok/s",
        "refused%",
        "goodput/s",
        "goodput/cap%",
        "P50_us",
        "P99_us",
        "errors",
        "L_q",
        "lambda*W_q",
        "drv_late_us",
    ]);
    let mut goodput: Vec<(String, Vec<(f64, f64)>)> =
        args.modes.iter().map(|m| (m.clone(), Vec::new())).collect();
    let mut p99 = goodput.clone();
    let mut little = Vec::new();
    let warmup = Duration::from_secs_f64(args.seconds / 5.0);
    let bar = out.progress(
        (args.loads.len() * args.modes.len()) as u64,
        "overload-http",
    );
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
            let server = ServerSpec {
                mode: mode.clone(),
                ..base.clone()
            };
            let r = run_point(&server, client, &spec, warmup)?;
            let per_s = |n: u64| n as f64 / r.seconds;
            table.push(vec![
                num(load, 2),
                mode.clone(),
                num(per_s(r.offered), 0),
                num(per_s(r.ok), 0),
                num(100.0 * r.refused as f64 / r.offered.max(1) as f64, 1),
                num(per_s(r.good), 0),
                num(100.0 * per_s(r.good) / capacity, 1),
                num(r.p50_s * 1e6, 0),
                num(r.p99_s * 1e6, 0),
                r.errors.to_string(),
                num(r.l_queued, 2),
                num(r.lambda_w(), 2),
                num(r.driver_late_s * 1e6, 0),
            ]);
            goodput[m].1.push((load, per_s(r.good)));
            p99[m].1.push((load, r.p99_s * 1e6));
            little.push((mode.clone(), load, r.l_queued, r.lambda_w()));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    // The machine may have changed during the sweep (other processes): measure again.
    let capacity_after = match args.capacity {
        Some(_) => None,
        None => Some(measure_capacity(
            &base,
            ClientSpec {
                connections: args.capacity_connections,
                ..client
            },
            args.capacity_seconds,
        )?),
    };
    out.csv("overload_http", &table)?;
    let title = format!(
        "hyper on gpm, N = {workers}, S = {} us, capacity {capacity:.0}/s, SLO {} ms",
        args.service_us, args.slo_ms
    );
    let mut chart = Chart::new(
        &format!("Goodput (200 within the SLO): {title}"),
        "offered load (fraction of the measured capacity)",
        "requests per second",
    );
    for (name, points) in goodput {
        chart = chart.line(&name, points);
    }
    chart = chart.line(
        "capacity",
        args.loads.iter().map(|&l| (l, capacity)).collect(),
    );
    out.svg("overload_http_goodput", &chart)?;
    let mut chart = Chart::new(
        &format!("P99 of admitted requests: {title}"),
        "offered load (fraction of the measured capacity)",
        "P99 latency from intended arrival, microseconds (log)",
    );
    chart.log_y = true;
    for (name, points) in p99 {
        chart = chart.line(&name, points);
    }
    out.svg("overload_http_p99", &chart)?;
    let mut chart = Chart::new(
        &format!(
            "Server run queues from its probes: L / (lambda W), N = {workers}, S = {} us",
            args.service_us
        ),
        "offered load (fraction of the measured capacity)",
        "time-mean tasks queued / (enqueues per second x mean queue wait)",
    );
    for mode in &args.modes {
        let ratios = little
            .iter()
            .filter(|p| &p.0 == mode)
            .map(|p| (p.1, p.2 / p.3))
            .collect();
        chart = chart.line(mode, ratios);
    }
    chart = chart.line("1", args.loads.iter().map(|&l| (l, 1.0)).collect());
    out.svg("overload_http_little", &chart)?;
    Ok(format!(
        "server N = {workers}, S = {} us; capacity {capacity:.0}/s ({}{}); SLO {} ms; gate every \
         {} us, queue-wait target {} us, shedding {} (step {}); {} connections, client on {} P{}; {} s per \
         point\n{}",
        args.service_us,
        if args.capacity.is_some() {
            "given"
        } else {
            "measured closed-loop"
        },
        capacity_after.map_or(String::new(), |after| format!(
            ", {after:.0}/s measured again after the sweep"
        )),
        args.slo_ms,
        base.gate_window.as_micros(),
        base.queue_wait_target.as_micros(),
        args.shedding,
        args.shed_step,
        args.connections,
        args.client_workers,
        if CLIENT_REALTIME.load(Ordering::Relaxed) {
            " at real-time priority"
        } else {
            " (normal priority)"
        },
        args.seconds,
        table.render()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, queued: f64, enqueues: u64, waits: u64, wait_sum_ns: f64) -> QueueSample {
        QueueSample {
            t,
            queued,
            enqueues,
            waits,
            wait_sum_ns,
        }
    }

    #[test]
    fn little_over_a_window_uses_only_its_samples() {
        let samples = [
            sample(0.0, 100.0, 0, 0, 0.0),
            sample(1.0, 2.0, 1000, 10, 1e6),
            sample(1.5, 4.0, 2000, 110, 1e6 + 100.0 * 2e6),
            sample(2.0, 6.0, 3000, 210, 1e6 + 200.0 * 2e6),
            sample(9.0, 100.0, 9999, 999, 1e12),
        ];
        let (l, lambda, w) = little_over(&samples, 1.0, 2.0);
        assert_eq!(l, 4.0);
        assert_eq!(lambda, 2000.0);
        assert!((w - 2e-3).abs() < 1e-12, "{w}");
        let (l, lambda, w) = little_over(&samples, 3.0, 4.0);
        assert!(l.is_nan() && lambda.is_nan() && w.is_nan());
    }

    #[test]
    fn a_point_accounts_for_every_request_and_unknown_modes_fail() {
        let server = ServerSpec {
            workers: 2,
            service: Duration::from_micros(50),
            mode: "none".into(),
            gate_window: Duration::from_millis(2),
            queue_wait_target: Duration::from_micros(100),
            slo: Duration::from_millis(50),
            proportional: true,
            shed_step: 0.1,
        };
        let client = ClientSpec {
            connections: 8,
            workers: 1,
        };
        let load = LoadSpec {
            rate: 1000.0,
            duration: Duration::from_millis(200),
            service: server.service,
            dist: ServiceDist::Const,
            seed: 3,
        };
        for mode in MODES {
            let spec = ServerSpec {
                mode: (*mode).into(),
                ..server.clone()
            };
            let r = run_point(&spec, client, &load, Duration::from_millis(50)).unwrap();
            assert!(r.offered > 50, "{mode}: {r:?}");
            assert_eq!(r.ok + r.refused + r.errors, r.offered, "{mode}: {r:?}");
            assert_eq!(r.errors, 0, "{mode}: {r:?}");
            assert!(r.ok > 0, "{mode}: nothing admitted: {r:?}");
            assert!(r.good <= r.ok);
        }
        let spec = ServerSpec {
            mode: "shed".into(),
            ..server
        };
        let error = run_point(&spec, client, &load, Duration::ZERO)
            .err()
            .unwrap();
        assert!(error.contains("unknown overload-http mode"), "{error}");
        let capacity = measure_capacity(&spec, client, 0.2).unwrap();
        assert!(capacity > 0.0);
    }
}

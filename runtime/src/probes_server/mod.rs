//! A live view of the probes over HTTP (feature `probes-server`): [`Handle::serve_probes`].
//!
//! | path | methods | what |
//! |---|---|---|
//! | `/metrics` | GET, HEAD | [`Probes::to_prometheus`](crate::probe::Probes::to_prometheus), `text/plain; version=0.0.4` |
//! | `/probes.json` | GET, HEAD | `serde_json::to_string(&handle.probes())`: the snapshot's serde form, unchanged |
//! | `/` | GET, HEAD | a self-contained HTML page (inline script, canvas) charting `/probes.json` |
//! | `/stw` | GET, POST | only with [`ProbesServerBuilder::enable_stw`]: POST stops the world once and answers its report; GET lists the last reports |
//!
//! Anything else is 404; a known path with another method is 405 with an `Allow` header.
//!
//! # Design
//!
//! The server is a few tasks of the runtime it observes: one accepts on a
//! [`gpm::net::TcpListener`](crate::net::TcpListener), one per connection runs hyper's
//! HTTP/1.1 server through [`crate::compat::hyper`]. No thread of its own, so what it costs
//! shows in the probes it serves (a poll of `/probes.json` is one short task), and it stops
//! with the runtime.
//!
//! 1. The address is resolved and checked before anything is bound: every resolved address
//!    must be loopback unless [`ProbesServerBuilder::allow_remote`] says otherwise (the
//!    snapshot tells an observer what the process does and how loaded it is).
//! 2. The accept task counts live connections; beyond [`ProbesServerBuilder::max_connections`]
//!    it writes a `503` without waiting (`try_write`) and closes, so a flood costs one
//!    accept each and never a task.
//! 3. Each connection gets hyper's limits: a read buffer of
//!    [`ProbesServerBuilder::max_header_bytes`] (a longer head is a `431`) and a header-read
//!    timeout on [`GpmTimer`] (a client that does not finish its head in time, including an
//!    idle keep-alive client, is disconnected).
//! 4. Every request is read-only except `POST /stw`, which is off by default: a stop pauses
//!    every P, so it is the caller's decision to let a browser do it. The stop runs on the
//!    blocking pool, where the thread holds no P and every P is stopped for real.
//! 5. [`ProbesServer`] aborts the accept task and every connection task when dropped or
//!    [`shut down`](ProbesServer::shutdown); the listener closes with the accept task.
//!
//! Rejected options: a thread with a blocking `std::net` server (it would hide its own cost
//! and need its own shutdown path); an HTML page fetching a charting library from a CDN
//! (the page must work offline and load nothing from elsewhere; it also sends a
//! `Content-Security-Policy` that forbids it); a streaming endpoint (server-sent events):
//! polling keeps the server stateless, and each poll is also the point the Little's-law
//! window and the knee detector need (see [`Handle::probes`]).
//!
//! The page is documented in `docs/LIVE.md`.

use crate::compat::hyper::GpmTimer;
use crate::net::{TcpListener, TcpStream};
use crate::probe::{StopKind, StwReport};
use crate::rt::Handle;
use crate::task::{AbortHandle, JoinHandle};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The page served at `/`; `__GPM_STW_ENABLED__` is replaced by `true` or `false`.
const PAGE: &str = include_str!("page.html");

/// What an over-the-cap connection is sent before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: text/plain\r\ncontent-length: 25\r\n\r\ntoo many live connections";

/// How many stop-the-world reports `GET /stw` keeps.
const STW_HISTORY: usize = 256;

/// Content type of Prometheus' text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The page's `Content-Security-Policy`: nothing but this server and inline code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

impl Handle {
    /// Serves this runtime's probes over HTTP/1.1 on `addr` (loopback only), with the
    /// defaults of [`ProbesServer::builder`]: `GET /metrics` (Prometheus text),
    /// `GET /probes.json` (the [`Probes`](crate::probe::Probes) snapshot as JSON) and
    /// `GET /` (a live page charting it). The server runs as tasks of this runtime and stops
    /// when the returned [`ProbesServer`] is dropped.
    ///
    /// # Errors
    /// `addr` does not resolve, resolves to an address that is not loopback
    /// ([`io::ErrorKind::PermissionDenied`]; see [`ProbesServerBuilder::allow_remote`]), or
    /// cannot be bound.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    /// let server = rt.handle().serve_probes("127.0.0.1:0").unwrap();
    /// let mut socket = std::net::TcpStream::connect(server.local_addr()).unwrap();
    /// socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    /// let mut reply = String::new();
    /// socket.read_to_string(&mut reply).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 200 OK"));
    /// assert!(reply.contains("gpm_tasks_alive"));
    /// assert!(rt.handle().serve_probes("0.0.0.0:0").is_err(), "not loopback");
    /// ```
    pub fn serve_probes(&self, addr: impl ToSocketAddrs) -> io::Result<ProbesServer> {
        ProbesServer::builder().serve(self, addr)
    }
}

/// Settings of a probes server, from [`ProbesServer::builder`]; [`serve`](Self::serve)
/// starts it.
///
/// | setting | default |
/// |---|---|
/// | [`allow_remote`](Self::allow_remote) | `false`: loopback addresses only |
/// | [`enable_stw`](Self::enable_stw) | `false`: no `POST /stw` (404) |
/// | [`max_connections`](Self::max_connections) | 16 |
/// | [`header_read_timeout`](Self::header_read_timeout) | 5 s |
/// | [`max_header_bytes`](Self::max_header_bytes) | 16 KiB |
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `serve` is called"]
pub struct ProbesServerBuilder {
    allow_remote: bool,
    enable_stw: bool,
    max_connections: usize,
    header_read_timeout: Duration,
    max_header_bytes: usize,
}

impl Default for ProbesServerBuilder {
    fn default() -> Self {
        ProbesServerBuilder {
            allow_remote: false,
            enable_stw: false,
            max_connections: 16,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
        }
    }
}

impl ProbesServerBuilder {
    /// Whether addresses other than loopback (`127.0.0.0/8`, `::1`) may be bound, such as
    /// `0.0.0.0`. Off by default: the probes say what the process is doing, and `/stw` (when
    /// enabled) pauses it. Put a proxy with authentication in front of a remote endpoint.
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// Whether `POST /stw` stops the world (through [`Handle::stop_the_world`]) and
    /// `GET /stw` lists the reports. Off by default (404): a stop pauses every P.
    pub fn enable_stw(mut self, enable: bool) -> Self {
        self.enable_stw = enable;
        self
    }

    /// Connections served at once; one more is answered `503` and closed at once.
    ///
    /// # Panics
    /// `max` is 0.
    #[track_caller]
    pub fn max_connections(mut self, max: usize) -> Self {
        assert!(
            max > 0,
            "ProbesServerBuilder::max_connections must be at least 1"
        );
        self.max_connections = max;
        self
    }

    /// How long a client may take to send a request head, counted from the connection (or
    /// the previous response): a slower client, or an idle keep-alive one, is disconnected.
    ///
    /// # Panics
    /// `timeout` is zero.
    #[track_caller]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "ProbesServerBuilder::header_read_timeout must not be zero"
        );
        self.header_read_timeout = timeout;
        self
    }

    /// The largest request head accepted (hyper's read buffer, `max_buf_size`); a longer one
    /// gets `431 Request Header Fields Too Large`. Values under hyper's minimum, 8 KiB, are
    /// raised to it.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(MIN_HEADER_BYTES);
        self
    }

    /// Binds `addr` and starts serving on `handle`'s runtime.
    ///
    /// # Errors
    /// `addr` does not resolve, resolves to an address that is not loopback while
    /// [`allow_remote`](Self::allow_remote) is off ([`io::ErrorKind::PermissionDenied`]),
    /// or cannot be bound.
    pub fn serve(self, handle: &Handle, addr: impl ToSocketAddrs) -> io::Result<ProbesServer> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "serve_probes: the address resolved to nothing",
            ));
        }
        if !self.allow_remote {
            if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "serve_probes: {remote} is not a loopback address; use \
                         ProbesServer::builder().allow_remote(true) to serve beyond this host"
                    ),
                ));
            }
        }
        let listener = std::net::TcpListener::bind(&addrs[..])?;
        let local_addr = listener.local_addr()?;
        let listener = {
            let _context = handle.enter();
            TcpListener::from_std(listener)?
        };
        let page = PAGE.replacen(
            "__GPM_STW_ENABLED__",
            if self.enable_stw { "true" } else { "false" },
            1,
        );
        // One snapshot, for the runtime's start (a point more in the Little's-law window).
        let now = Instant::now();
        let uptime = Duration::try_from_secs_f64(handle.probes().uptime_s).unwrap_or_default();
        let runtime_started = now.checked_sub(uptime).unwrap_or(now);
        let state = Arc::new(ServerState {
            handle: handle.clone(),
            config: self,
            page: Bytes::from(page),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            stw_history: Mutex::new(VecDeque::new()),
            runtime_started,
        });
        let accept = handle.spawn(accept_loop(state.clone(), listener));
        Ok(ProbesServer {
            local_addr,
            state,
            accept: Some(accept),
        })
    }
}

/// hyper's smallest `max_buf_size`.
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// A running probes server, from [`Handle::serve_probes`] or
/// [`ProbesServerBuilder::serve`]. Dropping it stops the server: the listener closes and
/// open connections are cut.
#[derive(Debug)]
#[must_use = "the server stops when this is dropped"]
pub struct ProbesServer {
    local_addr: SocketAddr,
    state: Arc<ServerState>,
    accept: Option<JoinHandle<()>>,
}

impl ProbesServer {
    /// Settings for a server, with the defaults listed on [`ProbesServerBuilder`].
    pub fn builder() -> ProbesServerBuilder {
        ProbesServerBuilder::default()
    }

    /// The address it listens on (with the port chosen when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The page's address, `http://{local_addr}/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr)
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.state.lock_connections().len()
    }

    /// Stops the server and waits until its listener is closed: a connection attempt after
    /// this returns is refused. Dropping the server stops it without waiting.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(accept) = self.accept.take() {
            // Cancelled (or already ended after an accept error): either way the task's
            // future, and the listener in it, is gone once the handle resolves.
            let _ = accept.await;
        }
    }

    fn stop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        if let Some(accept) = &self.accept {
            accept.abort();
        }
        let connections: Vec<_> = self.state.lock_connections().drain().collect();
        for abort in connections.into_iter().filter_map(|(_, abort)| abort) {
            abort.abort();
        }
    }
}

impl Drop for ProbesServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the server's tasks share.
#[derive(Debug)]
struct ServerState {
    handle: Handle,
    config: ProbesServerBuilder,
    page: Bytes,
    /// Live connections by id; the abort handle is filled in right after the spawn (the
    /// entry exists first so that the cap counts a connection from its accept).
    connections: Mutex<HashMap<u64, Option<AbortHandle>>>,
    next_connection: AtomicU64,
    /// Set by `ProbesServer::stop`: no connection registers after it.
    closed: AtomicBool,
    stw_history: Mutex<VecDeque<StwRecord>>,
    /// When the runtime started, as the probes' `uptime_s` counts: `/stw` reports use the
    /// same time axis as the snapshots.
    runtime_started: Instant,
}

impl ServerState {
    fn lock_connections(&self) -> MutexGuard<'_, HashMap<u64, Option<AbortHandle>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes its connection from the live set when the connection task ends or is aborted.
struct Registered {
    state: Arc<ServerState>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.state.lock_connections().remove(&self.id);
    }
}

async fn accept_loop(state: Arc<ServerState>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors or a connection reset before the accept: back off a
            // little rather than spin, and keep serving.
            Err(_) => {
                crate::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let registered = {
            let mut live = state.lock_connections();
            if state.closed.load(Ordering::SeqCst) {
                return;
            }
            if live.len() >= state.config.max_connections {
                None
            } else {
                let id = state.next_connection.fetch_add(1, Ordering::Relaxed);
                live.insert(id, None);
                Some(Registered {
                    state: state.clone(),
                    id,
                })
            }
        };
        let Some(registered) = registered else {
            // Best effort, without waiting: the socket's buffer takes a short reply.
            let _ = stream.try_write(REFUSED);
            drop(stream);
            continue;
        };
        let id = registered.id;
        let task = state
            .handle
            .spawn(serve_connection(state.clone(), stream, registered));
        match state.lock_connections().get_mut(&id) {
            Some(slot) => *slot = Some(task.abort_handle()),
            // Gone already: the connection ended (abort does nothing), or the server was
            // stopped between the registration and now (its stop did not see this task).
            None => task.abort(),
        }
    }
}

async fn serve_connection(state: Arc<ServerState>, stream: TcpStream, registered: Registered) {
    let _registered = registered;
    let _ = stream.set_nodelay(true);
    let mut http = http1::Builder::new();
    http.timer(GpmTimer::with_handle(&state.handle))
        .header_read_timeout(state.config.header_read_timeout)
        .max_buf_size(state.config.max_header_bytes);
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(respond(&state, request).await) }
    });
    // Errors are the client's (a bad request, a timeout, a reset): nothing to report.
    let _ = http.serve_connection(stream, service).await;
}

/// Routes one request.
async fn respond<B>(state: &ServerState, request: Request<B>) -> Response<Full<Bytes>> {
    let method = request.method();
    let read = method == Method::GET || method == Method::HEAD;
    match request.uri().path() {
        "/" | "/index.html" if read => page(state),
        "/metrics" if read => ok(
            PROMETHEUS_CONTENT_TYPE,
            Bytes::from(state.handle.probes().to_prometheus()),
        ),
        "/probes.json" if read => match serde_json::to_string(&state.handle.probes()) {
            Ok(json) => ok("application/json", Bytes::from(json)),
            Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
        },
        "/" | "/index.html" | "/metrics" | "/probes.json" => not_allowed("GET, HEAD"),
        "/stw" if state.config.enable_stw => {
            if method == Method::POST {
                stop_the_world(state).await
            } else if read {
                let history: Vec<StwRecord> = state
                    .stw_history
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned()
                    .collect();
                json(&history)
            } else {
                not_allowed("GET, HEAD, POST")
            }
        }
        _ => status(StatusCode::NOT_FOUND),
    }
}

/// One stop-the-world as `/stw` reports it (nanoseconds, for the page's charts).
#[derive(Debug, Clone, Serialize)]
struct StwRecord {
    /// When it was requested, seconds since the runtime started (as `Probes::uptime_s`).
    at_s: f64,
    /// From the request until every P had stopped.
    time_to_stop_ns: u64,
    /// From the request until the world resumed.
    pause_ns: u64,
    /// The P that reached its safepoint last, if any ran.
    late: Option<usize>,
    /// Runnable tasks seen while stopped.
    runnable: usize,
    /// Per P: how it stopped and its time to safepoint.
    processors: Vec<StwProcessor>,
}

#[derive(Debug, Clone, Serialize)]
struct StwProcessor {
    kind: StopKind,
    time_to_safepoint_ns: u64,
}

async fn stop_the_world(state: &ServerState) -> Response<Full<Bytes>> {
    let handle = state.handle.clone();
    let started = state.runtime_started;
    // On the blocking pool: that thread holds no P, so every P stops for real.
    let stop = state.handle.spawn_blocking(move || {
        let at_s = started.elapsed().as_secs_f64();
        let (runnable, report) = handle.stop_the_world(|world| world.runnable());
        (at_s, runnable, report)
    });
    let Ok((at_s, runnable, report)) = stop.await else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let record = stw_record(at_s, runnable, &report);
    {
        let mut history = state.stw_history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == STW_HISTORY {
            history.pop_front();
        }
        history.push_back(record.clone());
    }
    json(&record)
}

fn stw_record(at_s: f64, runnable: usize, report: &StwReport) -> StwRecord {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    StwRecord {
        at_s,
        time_to_stop_ns: ns(report.time_to_stop),
        pause_ns: ns(report.pause),
        late: report.late,
        runnable,
        processors: report
            .processors
            .iter()
            .map(|&(kind, time)| StwProcessor {
                kind,
                time_to_safepoint_ns: ns(time),
            })
            .collect(),
    }
}

fn page(state: &ServerState) -> Response<Full<Bytes>> {
    let mut response = ok("text/html; charset=utf-8", state.page.clone());
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn json<T: Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(json) => ok("application/json", Bytes::from(json)),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn ok(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        code.canonical_reason().unwrap_or("error"),
    )));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_one_placeholder_and_loads_nothing_from_elsewhere() {
        assert_eq!(PAGE.matches("__GPM_STW_ENABLED__").count(), 1);
        let lower = PAGE.to_ascii_lowercase();
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        assert!(!lower.contains("<script src") && !lower.contains("<link"));
        assert!(PAGE.contains("const MIN_REFRESH_MS = 100;"));
    }

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    #[test]
    fn header_bytes_below_hypers_minimum_are_raised() {
        let builder = ProbesServer::builder().max_header_bytes(100);
        assert_eq!(builder.max_header_bytes, MIN_HEADER_BYTES);
        let builder = builder.max_header_bytes(64 * 1024);
        assert_eq!(builder.max_header_bytes, 64 * 1024);
    }

    #[test]
    #[should_panic(expected = "max_connections must be at least 1")]
    fn zero_connections_is_a_mistake() {
        let _ = ProbesServer::builder().max_connections(0);
    }

    #[test]
    #[should_panic(expected = "header_read_timeout must not be zero")]
    fn a_zero_header_timeout_is_a_mistake() {
        let _ = ProbesServer::builder().header_read_timeout(Duration::ZERO);
    }
}

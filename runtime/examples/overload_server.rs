//! A hyper 1.x server on gpm behind the overload layers (`gpm::overload::tower`): refused
//! requests get `503 Service Unavailable` with `Retry-After` instead of a place in a queue.
//!
//! ```text
//! cargo run --release -p gpm --features hyper,tower --example overload_server -- [ADDR] [WORKERS]
//! curl -i http://127.0.0.1:3000/work/20      # 20 ms of work, interactive tier (50 ms bound)
//! curl -i http://127.0.0.1:3000/report/300   # 300 ms, report tier (2 s bound)
//! curl -i http://127.0.0.1:3000/fail         # a 500; 20 in 10 s open the interactive tier for 5 s
//! ```
//!
//! The layers, outermost first:
//!
//! 1. `AdmissionLayer::from_runtime`: refuses while the P99 of the last second's latencies
//!    is over 100 ms, or while the runtime's own run queues (read from `Handle::probes()`
//!    every 100 ms) make tasks wait more than 5 ms on average.
//! 2. `ConcurrencyLimitLayer`: at most `ceil(lambda * S * 2)` requests in flight (8 to 1024).
//! 3. `BreakerLayer`: `/report/...` is the report tier, everything else interactive; a 5xx
//!    or a call slower than the tier's bound is a failure.
//!
//! A load generator past the server's capacity (`bench/scripts/hyper_hello.sh`'s `loadgen`,
//! or `wrk`) shows 503s and a bounded latency for the requests served, instead of a queue
//! that grows. Stop it with Ctrl-C.

use bytes::Bytes;
use gpm::compat::hyper::GpmTimer;
use gpm::net::TcpListener;
use gpm::overload::tower::{
    AdmissionLayer, BoxError, BreakerLayer, ConcurrencyLimitLayer, RuntimeConfig,
};
use gpm::overload::{AdmissionConfig, LimiterConfig, Outcome, SystemClock, TierConfig};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Service, ServiceBuilder};

type Body = Full<Bytes>;

/// The application: `/work/<ms>` and `/report/<ms>` take that long, `/fail` answers 500.
#[derive(Clone, Copy)]
struct App;

impl<B> Service<Request<B>> for App {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            let work = path
                .rsplit('/')
                .next()
                .and_then(|ms| ms.parse::<u64>().ok())
                .unwrap_or(0);
            gpm::time::sleep(Duration::from_millis(work)).await;
            let mut response = Response::new(Full::new(Bytes::from(format!("{path}: done\n"))));
            if path == "/fail" {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok(response)
        })
    }
}

/// The breaker tier of a request: `/report/...` is 1, the rest 0 ("interactive").
fn tier_of(request: &Request<hyper::body::Incoming>) -> usize {
    usize::from(request.uri().path().starts_with("/report"))
}

/// For the breaker, a 5xx is a failure like an error.
fn server_errors_fail(result: &Result<Response<Body>, BoxError>) -> Outcome {
    match result {
        Ok(response) if !response.status().is_server_error() => Outcome::Success,
        _ => Outcome::Error,
    }
}

/// One request through the layered `service`, the way a tower caller does it (`poll_ready`,
/// then `call`); a refusal becomes 503 with Retry-After, other errors close the connection.
async fn respond<S, B>(service: S, request: Request<B>) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    gpm::overload::tower::respond_or_refuse(service, request, |refused| {
        Full::new(Bytes::from(format!("{refused}\n")))
    })
    .await
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let mut builder = gpm::Runtime::builder();
    if let Some(workers) = args.next() {
        builder.worker_threads(workers.parse()?);
    }
    let rt = builder.build()?;
    let clock = SystemClock::new();

    // Bad settings are a ConfigError naming the field, reported here like any error.
    let admission = AdmissionLayer::from_runtime(
        rt.handle(),
        AdmissionConfig::new(Duration::from_millis(100)),
        RuntimeConfig::new(Duration::from_millis(100), Duration::from_millis(5)),
        clock,
    )?;
    let limit = ConcurrencyLimitLayer::new(LimiterConfig::new(8, 1024), clock)?;
    let tiers = vec![
        TierConfig::new("interactive", Duration::from_millis(50)),
        TierConfig::new("report", Duration::from_secs(2)),
    ];
    let breaker = BreakerLayer::new(tiers, clock, tier_of)?.classify(server_errors_fail);
    let service = ServiceBuilder::new()
        .layer(admission)
        .layer(limit)
        .layer(breaker)
        .service(App);

    rt.block_on(async move {
        let listener = TcpListener::bind(addr.as_str()).await?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let service = service.clone();
            gpm::spawn(async move {
                let hyper_service =
                    hyper::service::service_fn(move |request| respond(service.clone(), request));
                let connection = http1::Builder::new()
                    .timer(GpmTimer::new())
                    .serve_connection(stream, hyper_service);
                if let Err(error) = connection.await {
                    eprintln!("connection error: {error}");
                }
            });
        }
    })
}

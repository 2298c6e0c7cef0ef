//! The overload layers end to end (features `tower` and `hyper`): a hyper server on gpm
//! whose service sits behind `gpm::overload::tower`'s layers (stacked with
//! `tower::ServiceBuilder`) answers a refused request with 503 and `Retry-After`, and
//! serves again once the control recovers. The layers' clocks are `ManualClock`s and the
//! in-flight request is held by a `Notify`, so the refusals are exact, not timing luck.

use bytes::Bytes;
use gpm::compat::hyper::{GpmExecutor, GpmTimer};
use gpm::net::{TcpListener, TcpStream};
use gpm::overload::tower::{AdmissionLayer, BoxError, BreakerLayer, ConcurrencyLimitLayer};
use gpm::overload::{AdmissionConfig, LimiterConfig, ManualClock, Outcome, TierConfig};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tower::{Service, ServiceBuilder};

type Body = Full<Bytes>;
type TierOfRequest = fn(&Request<hyper::body::Incoming>) -> usize;
type ClassifyResponse = fn(&Result<Response<Body>, BoxError>) -> Outcome;

/// The application: `/slow` tells `entered` and waits for `release`; `/fail` answers 500;
/// anything else answers 200 with its path.
#[derive(Clone)]
struct App {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl<B: Send + 'static> Service<Request<B>> for App {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let app = self.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if path == "/slow" {
                app.entered.notify_one();
                app.release.notified().await;
            }
            let mut response = Response::new(Full::new(Bytes::from(path.clone())));
            if path == "/fail" {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok(response)
        })
    }
}

/// Serves `service` over HTTP/1.1 on gpm: `poll_ready`, then `call`; a refusal becomes
/// 503 with Retry-After (`Overloaded::http_response`), other errors close the connection.
async fn serve<S>(service: S) -> SocketAddr
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<Body>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    gpm::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service.clone();
            let hyper_service =
                hyper::service::service_fn(move |request| respond(service.clone(), request));
            gpm::spawn(async move {
                let _ = http1::Builder::new()
                    .timer(GpmTimer::new())
                    .serve_connection(stream, hyper_service)
                    .await;
            });
        }
    });
    addr
}

/// One request through `service`, the way a tower caller does it.
async fn respond<S, B>(service: S, request: Request<B>) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    gpm::overload::tower::respond_or_refuse(service, request, |refused| {
        Full::new(Bytes::from(refused.to_string()))
    })
    .await
}

/// GET `path` on a new connection: status, Retry-After, body.
async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Option<String>, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await.unwrap();
    hyper::rt::Executor::execute(&GpmExecutor::new(), async move {
        let _ = connection.await;
    });
    let request = Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn app() -> App {
    App {
        entered: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
    }
}

/// Two tiers by path ("/report..." is slow), 5xx counted as failures, one failure in the
/// window trips a tier for 3.5 s (so Retry-After: 4), one probe to close it.
fn breaker(clock: &ManualClock) -> BreakerLayer<ManualClock, TierOfRequest, ClassifyResponse> {
    let tier = |name: &str, bound| TierConfig {
        min_calls: 1,
        cool_down: Duration::from_millis(3500),
        half_open_probes: 1,
        ..TierConfig::new(name, bound)
    };
    let tier_of: TierOfRequest = |request| usize::from(request.uri().path().starts_with("/report"));
    let classify: ClassifyResponse = |result| match result {
        Ok(response) if !response.status().is_server_error() => Outcome::Success,
        _ => Outcome::Error,
    };
    let tiers = vec![
        tier("interactive", Duration::from_secs(1)),
        tier("report", Duration::from_secs(10)),
    ];
    BreakerLayer::new(tiers, clock.clone(), tier_of)
        .unwrap()
        .classify(classify)
}

/// The three layers over `app`: admission outermost, then the limit (exactly 1 permit),
/// then the breakers.
fn layered(
    app: App,
    clock: &ManualClock,
) -> impl Service<
    Request<hyper::body::Incoming>,
    Response = Response<Body>,
    Error = BoxError,
    Future: Send,
> + Clone
       + Send
       + 'static {
    let admission =
        AdmissionLayer::new(AdmissionConfig::new(Duration::from_secs(1)), clock.clone()).unwrap();
    let limit = ConcurrencyLimitLayer::new(LimiterConfig::new(1, 1), clock.clone()).unwrap();
    ServiceBuilder::new()
        .layer(admission)
        .layer(limit)
        .layer(breaker(clock))
        .service(app)
}

#[test]
fn a_refusal_is_503_with_retry_after_and_the_server_recovers() {
    gpm_tests::watchdog("overload_tower_limit", || {
        let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let app = app();
            let clock = ManualClock::new();
            let addr = serve(layered(app.clone(), &clock)).await;
            assert_eq!(get(addr, "/a").await.0, StatusCode::OK);
            // One request holds the only permit...
            let slow = gpm::spawn(async move { get(addr, "/slow").await });
            app.entered.notified().await;
            // ...so the next is refused: 503, Retry-After rounded up from 100 ms.
            let (status, retry_after, body) = get(addr, "/b").await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert!(body.contains("concurrency limit reached: 1 of 1"), "{body}");
            // The slow one finishes; the permit is back.
            app.release.notify_one();
            assert_eq!(slow.await.unwrap().0, StatusCode::OK);
            assert_eq!(
                get(addr, "/c").await,
                (StatusCode::OK, None, "/c".to_owned())
            );
        });
    });
}

#[test]
fn an_open_breaker_tier_is_503_until_its_probe_succeeds() {
    gpm_tests::watchdog("overload_tower_breaker", || {
        let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let clock = ManualClock::new();
            let addr = serve(layered(app(), &clock)).await;
            // A 500 trips the interactive tier (error rate 1 of 1).
            assert_eq!(
                get(addr, "/fail").await.0,
                StatusCode::INTERNAL_SERVER_ERROR
            );
            let (status, retry_after, body) = get(addr, "/a").await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(retry_after.as_deref(), Some("4"));
            assert!(body.contains("\"interactive\" is open"), "{body}");
            // The report tier is another breaker.
            assert_eq!(get(addr, "/report/1").await.0, StatusCode::OK);
            // After the cool-down one probe goes through and closes the tier.
            clock.advance(Duration::from_millis(3500));
            assert_eq!(get(addr, "/a").await.0, StatusCode::OK);
            assert_eq!(get(addr, "/b").await.0, StatusCode::OK);
        });
    });
}

#[test]
fn the_runtime_gate_reads_the_probes_once_per_window() {
    use gpm::overload::tower::{RuntimeConfig, RuntimeGate};
    let rt = gpm::Runtime::builder()
        .worker_threads(2)
        .probe_sampling(1)
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let config = RuntimeConfig::new(Duration::from_millis(100), Duration::from_secs(1));
    let gate = RuntimeGate::from_runtime(rt.handle(), config, clock.clone()).unwrap();
    let limit = ConcurrencyLimitLayer::new(LimiterConfig::new(4, 64), clock.clone())
        .unwrap()
        .with_gate(gate.clone());
    rt.block_on(async {
        let addr = serve(ServiceBuilder::new().layer(limit).service(app())).await;
        for i in 0..20 {
            assert_eq!(get(addr, &format!("/{i}")).await.0, StatusCode::OK);
        }
        assert_eq!(gate.reads(), 1);
        clock.advance(Duration::from_millis(100));
        assert_eq!(get(addr, "/x").await.0, StatusCode::OK);
        assert_eq!(gate.reads(), 2);
        let sample = gate.sample().unwrap();
        assert!(sample.queue_wait_p99 > Duration::ZERO, "{sample:?}");
    });
}

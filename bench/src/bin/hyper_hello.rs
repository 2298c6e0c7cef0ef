//! The hyper "Hello, world!" HTTP/1.1 server on gpm or on tokio, for `loadgen` and `wrk`.
//!
//! Paths: `/` answers "Hello, world!", `/json` a small JSON object (serde_json), `/cpu`
//! "Hello, world!" after about 20 us of CPU work (a spin on the clock): the three
//! handlers of `bench/scripts/wrk_compare.sh`.
//!
//! ```text
//! hyper_hello gpm|tokio ADDR WORKERS [timer|no-timer] [hyper|axum]
//! ```
//!
//! `axum` serves the same three paths from an axum `Router` (a tower service, run on each
//! connection through hyper-util's `TowerToHyperService`, on either runtime alike) instead
//! of a hyper `service_fn`: what a service written with axum pays on top of hyper.
//!
//! Both sides run the same hyper code; only the runtime, its TCP stream and its timer differ
//! (gpm: `gpm::net` + `gpm::compat::hyper::GpmTimer`; tokio: `tokio::net` + hyper-util's
//! `TokioIo`/`TokioTimer`). With `timer` (the default) hyper gets the runtime's timer and
//! arms its header-read timeout (30 s) for every request; `no-timer` serves without one,
//! so the two runs measure what the per-request timer costs. Prints `listening on ADDR`
//! once bound; runs until killed. With `GPM_PROBES_ADDR=127.0.0.1:PORT` in the environment
//! the gpm server also serves its probes there (`/probes.json`, `/metrics`), to read
//! counters such as parks per request around a load.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;

/// What answers the requests: a hyper `service_fn` or an axum `Router` (built once; each
/// connection gets a clone, as `axum::serve` does).
#[derive(Clone)]
enum App {
    Hyper,
    Axum(axum::Router),
}

/// The axum side: the same three answers as [`hello`].
fn router() -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(|| async { "Hello, world!" }))
        .route(
            "/json",
            get(|| async {
                axum::Json(serde_json::json!({ "message": "Hello, World!", "id": 42 }))
            }),
        )
        .route(
            "/cpu",
            get(|| async {
                spin(std::time::Duration::from_micros(20));
                "Hello, world!"
            }),
        )
}

/// Serves one connection with `app` over `io` (the runtime's stream, as hyper sees it).
async fn serve<I>(io: I, http: http1::Builder, app: App)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let _ = match app {
        App::Hyper => http.serve_connection(io, service_fn(hello)).await,
        App::Axum(router) => {
            let service = hyper_util::service::TowerToHyperService::new(router);
            http.serve_connection(io, service).await
        }
    };
}

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.uri().path() {
        "/json" => {
            let message = serde_json::json!({ "message": "Hello, World!", "id": 42 });
            let json = serde_json::to_vec(&message).expect("a JSON value serialises");
            let mut response = Response::new(Full::new(Bytes::from(json)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            return Ok(response);
        }
        "/cpu" => {
            spin(std::time::Duration::from_micros(20));
            Bytes::from_static(b"Hello, world!")
        }
        _ => Bytes::from_static(b"Hello, world!"),
    };
    Ok(Response::new(Full::new(body)))
}

/// About `duration` of CPU work in the handler (a service's request processing).
fn spin(duration: std::time::Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

fn serve_gpm(addr: &str, workers: usize, timer: bool, app: App) -> std::io::Result<()> {
    let rt = gpm::Runtime::builder().worker_threads(workers).build()?;
    let _probes = match std::env::var("GPM_PROBES_ADDR") {
        Ok(probes_addr) => Some(rt.handle().serve_probes(probes_addr)?),
        Err(_) => None,
    };
    rt.block_on(async {
        let listener = gpm::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut http = http1::Builder::new();
            if timer {
                http.timer(gpm::compat::hyper::GpmTimer::new());
            }
            gpm::spawn(serve(stream, http, app.clone()));
        }
    })
}

fn serve_tokio(addr: &str, workers: usize, timer: bool, app: App) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut http = http1::Builder::new();
            if timer {
                http.timer(hyper_util::rt::TokioTimer::new());
            }
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(serve(io, http, app.clone()));
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: hyper_hello gpm|tokio ADDR WORKERS [timer|no-timer] [hyper|axum]";
    let (Some(runtime), Some(addr), Some(workers)) = (args.first(), args.get(1), args.get(2))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(workers) = workers.parse::<usize>() else {
        eprintln!("{usage}: WORKERS must be a number, got {workers:?}");
        std::process::exit(2);
    };
    let timer = match args.get(3).map(String::as_str) {
        None | Some("timer") => true,
        Some("no-timer") => false,
        Some(other) => {
            eprintln!("{usage}: the 4th argument is timer or no-timer, got {other:?}");
            std::process::exit(2);
        }
    };
    let app = match args.get(4).map(String::as_str) {
        None | Some("hyper") => App::Hyper,
        Some("axum") => App::Axum(router()),
        Some(other) => {
            eprintln!("{usage}: the 5th argument is hyper or axum, got {other:?}");
            std::process::exit(2);
        }
    };
    let result = match runtime.as_str() {
        "gpm" => serve_gpm(addr, workers, timer, app),
        "tokio" => serve_tokio(addr, workers, timer, app),
        other => {
            eprintln!("{usage}: unknown runtime {other:?}");
            std::process::exit(2);
        }
    };
    if let Err(error) = result {
        eprintln!("hyper_hello: {error}");
        std::process::exit(1);
    }
}

//! An axum `Router` served on gpm: axum's router is a tower `Service`, hyper-util's
//! `TowerToHyperService` adapts it to hyper, and hyper serves it on gpm's TCP connections
//! through `gpm::compat::hyper` (its I/O, executor and timer). No tokio runtime runs.
//!
//! ```sh
//! cargo run --release -p gpm --features hyper --example axum_server -- 127.0.0.1:3000
//! curl -s http://127.0.0.1:3000/            # Hello, World!
//! curl -s http://127.0.0.1:3000/json        # {"message":"Hello, World!"}
//! ```
//!
//! With `--requests N` it serves until N requests were answered, then exits (CI runs it so,
//! with a client of its own).

use axum::routing::get;
use axum::{Json, Router};
use gpm::compat::hyper::GpmTimer;
use hyper::server::conn::http1;
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn router(served: Arc<AtomicUsize>) -> Router {
    let count = move || {
        served.fetch_add(1, Ordering::SeqCst);
    };
    let json_count = count.clone();
    Router::new()
        .route(
            "/",
            get(move || async move {
                count();
                "Hello, World!"
            }),
        )
        .route(
            "/json",
            get(move || async move {
                json_count();
                Json(serde_json::json!({ "message": "Hello, World!" }))
            }),
        )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let limit = match (args.next().as_deref(), args.next()) {
        (Some("--requests"), Some(n)) => Some(n.parse::<usize>()?),
        _ => None,
    };
    let rt = gpm::Runtime::builder().build()?;
    rt.block_on(async move {
        let listener = gpm::net::TcpListener::bind(&addr).await?;
        println!("listening on {}", listener.local_addr()?);
        let served = Arc::new(AtomicUsize::new(0));
        let service = TowerToHyperService::new(router(Arc::clone(&served)));
        if let Some(limit) = limit {
            gpm::spawn(self_test(listener.local_addr()?, limit));
        }
        loop {
            if limit.is_some_and(|limit| served.load(Ordering::SeqCst) >= limit) {
                return Ok(());
            }
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let service = service.clone();
            gpm::spawn(async move {
                let _ = http1::Builder::new()
                    .timer(GpmTimer::new())
                    .serve_connection(stream, service)
                    .await;
            });
        }
    })
}

/// With `--requests N`: N plain HTTP/1.1 requests over fresh connections, checking the
/// answers (a stand-in for curl, so CI needs no client).
async fn self_test(addr: std::net::SocketAddr, requests: usize) {
    for i in 0..requests {
        let path = if i % 2 == 0 { "/" } else { "/json" };
        let stream = gpm::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("Hello, World!"), "{text}");
    }
    // One more connection so that the accept loop looks at the count again.
    let _ = gpm::net::TcpStream::connect(addr).await;
}

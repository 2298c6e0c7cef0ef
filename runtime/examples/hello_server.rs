//! A hyper 1.x "Hello, world!" HTTP/1.1 server on gpm.
//!
//! ```text
//! cargo run --release -p gpm --features hyper --example hello_server -- [ADDR] [WORKERS]
//! curl http://127.0.0.1:3000/
//! ```
//!
//! hyper's own code is unchanged: gpm's `TcpStream` implements `hyper::rt::Read`/`Write`,
//! and `GpmTimer` gives hyper its timers. Stop it with Ctrl-C.

use bytes::Bytes;
use gpm::compat::hyper::GpmTimer;
use gpm::net::TcpListener;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let mut builder = gpm::Runtime::builder();
    if let Some(workers) = args.next() {
        builder.worker_threads(workers.parse()?);
    }
    let rt = builder.build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr.as_str()).await?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            gpm::spawn(async move {
                let connection = http1::Builder::new()
                    .timer(GpmTimer::new())
                    .serve_connection(stream, service_fn(hello));
                if let Err(error) = connection.await {
                    eprintln!("connection error: {error}");
                }
            });
        }
    })
}

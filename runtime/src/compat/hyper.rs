//! hyper 1.x on gpm: [`GpmExecutor`] (`hyper::rt::Executor`), [`GpmTimer`]
//! (`hyper::rt::Timer` on [`crate::time`]), and `hyper::rt::Read`/`Write` for
//! [`crate::net::TcpStream`], so hyper's HTTP/1.1 server and client run on gpm unchanged
//! (what `hyper-util`'s `TokioExecutor`/`TokioTimer`/`TokioIo` do for tokio).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::{server::conn::http1, service::service_fn, Request, Response};
//! use gpm::compat::hyper::GpmTimer;
//!
//! let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
//! rt.block_on(async {
//!     let listener = gpm::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     gpm::spawn(async move {
//!         let (stream, _) = listener.accept().await.unwrap();
//!         let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
//!             Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hi"))))
//!         });
//!         http1::Builder::new().timer(GpmTimer::new()).serve_connection(stream, service).await
//!     });
//!     let stream = gpm::net::TcpStream::connect(addr).await.unwrap();
//!     let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
//!     gpm::spawn(conn);
//!     let request = Request::get("/").header("host", "x").body(Empty::<Bytes>::new()).unwrap();
//!     let response = sender.send_request(request).await.unwrap();
//!     let body = response.into_body().collect().await.unwrap().to_bytes();
//!     assert_eq!(body, "hi");
//! });
//! ```

use crate::net::TcpStream;
use crate::rt::Handle;
use crate::time::Sleep;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

/// Spawns hyper's background futures (HTTP/2 streams, client connections) as gpm tasks.
#[derive(Debug, Clone)]
pub struct GpmExecutor {
    handle: Handle,
}

impl GpmExecutor {
    /// An executor for the current runtime.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn new() -> GpmExecutor {
        GpmExecutor {
            handle: Handle::current(),
        }
    }

    /// An executor for the runtime of `handle`.
    pub fn with_handle(handle: Handle) -> GpmExecutor {
        GpmExecutor { handle }
    }
}

impl Default for GpmExecutor {
    /// [`GpmExecutor::new`]: panics outside a gpm runtime context.
    #[track_caller]
    fn default() -> Self {
        GpmExecutor::new()
    }
}

impl<Fut> hyper::rt::Executor<Fut> for GpmExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, future: Fut) {
        drop(self.handle.spawn(future));
    }
}

/// hyper's timer (header-read timeouts, keep-alive) on the gpm timing wheel.
#[derive(Debug, Clone)]
pub struct GpmTimer {
    handle: Handle,
}

impl GpmTimer {
    /// A timer on the current runtime's wheel.
    ///
    /// # Panics
    /// Outside a gpm runtime context.
    #[track_caller]
    pub fn new() -> GpmTimer {
        GpmTimer::with_handle(&Handle::current())
    }

    /// A timer on the wheel of `handle`'s runtime.
    pub fn with_handle(handle: &Handle) -> GpmTimer {
        GpmTimer {
            handle: handle.clone(),
        }
    }
}

impl Default for GpmTimer {
    /// [`GpmTimer::new`]: panics outside a gpm runtime context.
    #[track_caller]
    fn default() -> Self {
        GpmTimer::new()
    }
}

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for GpmTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = Instant::now();
        let deadline = now
            .checked_add(duration)
            .unwrap_or(now + Duration::from_secs(1 << 30));
        self.sleep_until(deadline)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // The shard of the P polling the connection, as for `gpm::time::sleep`.
        let shared = &self.handle.shared;
        let shard = shared.driver.time.shard(shared.current_processor());
        Box::pin(Sleep::new(shard, crate::time::Instant::from_std(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(ours) => ours.reset(crate::time::Instant::from_std(new_deadline)),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

impl hyper::rt::Read for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `poll_read_uninit` only writes received (initialised) bytes into the
        // unfilled part, so nothing here de-initialises it (`ReadBufCursor::as_mut`'s rule).
        let unfilled = unsafe { buf.as_mut() };
        let n = ready!(self.poll_read_uninit(cx, unfilled))?;
        // SAFETY: `recv` initialised the first `n` bytes of the unfilled part (`n` is at
        // most its length), so the bytes we advance over are initialised.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_socket(std::net::Shutdown::Write))
    }
}

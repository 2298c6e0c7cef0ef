//! hyper 1.x on gpm (feature `hyper`): an HTTP/1.1 server and client round trip with
//! keep-alive and request bodies, and a server that gets garbage answers with an error
//! (400 and a parse error from `serve_connection`) and keeps serving others.

use bytes::Bytes;
use gpm::compat::hyper::{GpmExecutor, GpmTimer};
use gpm::net::{TcpListener, TcpStream};
use gpm_tests::rt_test;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

async fn echo_service(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map_or_else(|_| Bytes::new(), |b| b.to_bytes());
    let mut reply = path.into_bytes();
    reply.extend_from_slice(b":");
    reply.extend_from_slice(&body);
    Ok(Response::new(Full::new(Bytes::from(reply))))
}

/// Serves HTTP/1.1 with `echo_service`; sends each connection's result on `results`.
async fn server(results: futures::channel::mpsc::UnboundedSender<hyper::Result<()>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    gpm::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let results = results.clone();
            gpm::spawn(async move {
                let result = http1::Builder::new()
                    .timer(GpmTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(stream, service_fn(echo_service))
                    .await;
                let _ = results.unbounded_send(result);
            });
        }
    });
    addr
}

async fn client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(stream).await.unwrap();
    hyper::rt::Executor::execute(&GpmExecutor::new(), async move {
        let _ = connection.await;
    });
    sender
}

rt_test! {
    /// Ten requests with bodies over one keep-alive connection, and one per new connection:
    /// each response echoes its path and body.
    fn request_response_round_trip(rt: &gpm::Runtime) {
        rt.block_on(async {
            let (results, _rx) = futures::channel::mpsc::unbounded();
            let addr = server(results).await;
            let mut sender = client(addr).await;
            for i in 0..10 {
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(format!("/item/{i}"))
                    .header("host", "localhost")
                    .body(Full::new(Bytes::from(vec![b'x'; i * 1000])))
                    .unwrap();
                // hyper's rule: wait until the connection can take the next request.
                sender.ready().await.unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let mut expected = format!("/item/{i}:").into_bytes();
                expected.extend(std::iter::repeat_n(b'x', i * 1000));
                assert_eq!(body, expected);
            }
            let clients: Vec<_> = (0..20)
                .map(|i| {
                    gpm::spawn(async move {
                        let mut sender = client(addr).await;
                        let request = Request::get(format!("/c{i}"))
                            .header("host", "localhost")
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        let response = sender.send_request(request).await.unwrap();
                        response.into_body().collect().await.unwrap().to_bytes()
                    })
                })
                .collect();
            for (i, client) in clients.into_iter().enumerate() {
                assert_eq!(client.await.unwrap(), format!("/c{i}:"));
            }
        });
    }
}

rt_test! {
    /// Garbage instead of a request: the server answers 400, `serve_connection` returns a
    /// parse error (not a panic), and the next well-formed request is served.
    fn garbage_request_gets_an_error(rt: &gpm::Runtime) {
        use futures::{AsyncReadExt, StreamExt};
        rt.block_on(async {
            let (results, mut rx) = futures::channel::mpsc::unbounded();
            let addr = server(results).await;
            let mut raw = TcpStream::connect(addr).await.unwrap();
            raw.write_all(b"\x00\x01\x02 NOT HTTP \xff\xfe\r\n\r\n").await.unwrap();
            let mut reply = Vec::new();
            raw.read_to_end(&mut reply).await.unwrap();
            assert!(reply.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&reply));
            let error = rx.next().await.unwrap().unwrap_err();
            assert!(error.is_parse(), "{error}");
            let mut sender = client(addr).await;
            let request = Request::get("/ok")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        });
    }
}

rt_test! {
    /// A client whose server resets mid-response gets an error from `send_request`.
    fn server_reset_is_a_client_error(rt: &gpm::Runtime) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            gpm::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let mut buf = [0; 1024];
                let _ = stream.read(&mut buf).await;
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await.unwrap();
                drop(stream);
            });
            let mut sender = client(addr).await;
            let request = Request::get("/").header("host", "x").body(Full::new(Bytes::new())).unwrap();
            let result = match sender.send_request(request).await {
                Ok(response) => response.into_body().collect().await.map(|_| ()),
                Err(error) => Err(error),
            };
            assert!(result.is_err(), "a truncated body must be an error");
        });
    }
}

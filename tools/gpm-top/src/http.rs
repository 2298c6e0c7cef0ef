//! A minimal HTTP/1.1 client: one `GET` over a `std::net::TcpStream`, no async runtime.
//!
//! The request says `Connection: close`, so the response ends at EOF; the body is delimited
//! by `Transfer-Encoding: chunked` when present, else by `Content-Length`, else by EOF. Every
//! step has a bound: the connect timeout per address, the read and write timeouts per call,
//! an overall deadline and a size cap, so a slow or hostile endpoint cannot hang the viewer.
//! [`parse_response`] is the pure half, tested on canned bytes.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Limits of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per address tried.
    pub connect_timeout: Duration,
    /// Per read or write call.
    pub io_timeout: Duration,
    /// The whole exchange, connect to EOF.
    pub deadline: Duration,
    /// Largest response accepted, headers included.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            max_bytes: 16 << 20,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The address did not resolve.
    Resolve(String),
    /// No address accepted a connection.
    Connect(String),
    /// Reading or writing failed (a timeout included).
    Io(String),
    /// The bytes are not an HTTP/1.x response.
    Malformed(String),
    /// The response ended before its headers or body did.
    Truncated(String),
    /// The response exceeded [`Limits::max_bytes`] or the deadline.
    Limit(String),
    /// A status other than 200.
    Status {
        /// The status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve(e) => write!(f, "cannot resolve {e}"),
            Error::Connect(e) => write!(f, "cannot connect to {e}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Malformed(e) => write!(f, "malformed response: {e}"),
            Error::Truncated(e) => write!(f, "truncated response: {e}"),
            Error::Limit(e) => write!(f, "response too large or slow: {e}"),
            Error::Status { code, reason } => write!(f, "HTTP status {code} {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header names in lower case, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` from `authority` (`host:port`); any status is returned, see [`get_ok`].
pub fn get(authority: &str, path: &str, limits: Limits) -> Result<Response, Error> {
    let started = Instant::now();
    let addrs: Vec<_> = authority
        .to_socket_addrs()
        .map_err(|e| Error::Resolve(format!("{authority}: {e}")))?
        .collect();
    let mut last = Error::Resolve(format!("{authority}: no address"));
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, limits.connect_timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Error::Connect(format!("{addr}: {e}")),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let io = |e: std::io::Error| Error::Io(e.to_string());
    stream
        .set_read_timeout(Some(limits.io_timeout))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(limits.io_timeout))
        .map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: gpm-top\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if started.elapsed() > limits.deadline {
            return Err(Error::Limit(format!("no EOF within {:?}", limits.deadline)));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                if bytes.len() > limits.max_bytes {
                    return Err(Error::Limit(format!("over {} bytes", limits.max_bytes)));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    parse_response(&bytes)
}

/// [`get`], with any status but 200 an [`Error::Status`].
pub fn get_ok(authority: &str, path: &str, limits: Limits) -> Result<Response, Error> {
    let response = get(authority, path, limits)?;
    if response.status != 200 {
        return Err(Error::Status {
            code: response.status,
            reason: response.reason,
        });
    }
    Ok(response)
}

/// Parses a whole response (read to EOF): status line, headers, body (chunked, sized by
/// `Content-Length`, or the rest).
pub fn parse_response(bytes: &[u8]) -> Result<Response, Error> {
    let end = find(bytes, b"\r\n\r\n")
        .ok_or_else(|| Error::Truncated(format!("no end of headers in {} bytes", bytes.len())))?;
    let head = std::str::from_utf8(&bytes[..end])
        .map_err(|_| Error::Malformed("headers are not UTF-8".to_owned()))?;
    let rest = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(Error::Malformed(format!("status line {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| Error::Malformed(format!("status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or_default().trim().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Error::Malformed(format!("header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| Error::Malformed(format!("content-length {length:?}")))?;
        if rest.len() < length {
            return Err(Error::Truncated(format!(
                "body of {} bytes, content-length {length}",
                rest.len()
            )));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

/// Decodes a chunked body up to its last (zero) chunk; trailers are ignored.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n")
            .ok_or_else(|| Error::Truncated("chunked body without its last chunk".to_owned()))?;
        let line = std::str::from_utf8(&rest[..line_end])
            .map_err(|_| Error::Malformed("chunk size is not UTF-8".to_owned()))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Error::Malformed(format!("chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(Error::Truncated(format!(
                "chunk of {size} bytes, {} left",
                rest.len()
            )));
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(Error::Malformed("chunk not followed by CRLF".to_owned()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Serves `reply` to one connection on a fresh loopback port, after reading the request
    /// head; returns the port and the request as the server saw it.
    fn serve_once(reply: Vec<u8>) -> (u16, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while find(&request, b"\r\n\r\n").is_none() {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            // Small writes, so the client sees the response in pieces.
            for piece in reply.chunks(7) {
                if stream.write_all(piece).is_err() {
                    break; // the client hung up (the size-limit test)
                }
            }
            String::from_utf8(request).unwrap()
        });
        (port, server)
    }

    fn fast() -> Limits {
        Limits {
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(500),
            deadline: Duration::from_secs(2),
            max_bytes: 1 << 20,
        }
    }

    /// Serves `reply` once and fetches `path` from it with `fetch` (`get` or `get_ok`) and
    /// the fast limits, then joins the server.
    fn fetch_once(
        reply: &[u8],
        fetch: fn(&str, &str, Limits) -> Result<Response, Error>,
        path: &str,
    ) -> Result<Response, Error> {
        let (port, server) = serve_once(reply.to_vec());
        let result = fetch(&format!("127.0.0.1:{port}"), path, fast());
        server.join().unwrap();
        result
    }

    #[test]
    fn content_length_body_over_a_socket() {
        let (port, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
                .to_vec(),
        );
        let response = get_ok(&format!("127.0.0.1:{port}"), "/probes.json", fast()).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.reason, "OK");
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.body, b"{\"a\":1}");
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /probes.json HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
    }

    #[test]
    fn chunked_body_over_a_socket() {
        let response = fetch_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n",
            get_ok,
            "/probes.json",
        )
        .unwrap();
        assert_eq!(response.body, b"{\"a\":1}");
    }

    #[test]
    fn body_to_eof_without_length() {
        let response = fetch_once(b"HTTP/1.0 200 OK\r\n\r\nhello", get_ok, "/").unwrap();
        assert_eq!(response.body, b"hello");
    }

    #[test]
    fn non_200_is_a_status_error() {
        let reply = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
        let error = fetch_once(reply, get_ok, "/probes.json").unwrap_err();
        assert_eq!(
            error,
            Error::Status {
                code: 404,
                reason: "Not Found".to_owned()
            }
        );
        assert_eq!(error.to_string(), "HTTP status 404 Not Found");
    }

    #[test]
    fn truncated_body_and_headers_are_errors() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":";
        let error = fetch_once(reply, get, "/").unwrap_err();
        assert!(matches!(error, Error::Truncated(_)), "{error:?}");

        let error = fetch_once(b"HTTP/1.1 200 OK\r\nContent-Le", get, "/").unwrap_err();
        assert!(matches!(error, Error::Truncated(_)), "{error:?}");

        let error =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n")
                .unwrap_err();
        assert!(matches!(error, Error::Truncated(_)), "{error:?}");
        let error =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"a\"")
                .unwrap_err();
        assert!(matches!(error, Error::Truncated(_)), "{error:?}");
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bytes in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let error = parse_response(bytes).unwrap_err();
            assert!(matches!(error, Error::Malformed(_)), "{error:?}");
        }
    }

    #[test]
    fn refused_connection_is_a_connect_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = get(&format!("127.0.0.1:{port}"), "/", fast()).unwrap_err();
        assert!(matches!(error, Error::Connect(_)), "{error:?}");
        // No port: fails before any name lookup.
        let error = get("localhost", "/", fast()).unwrap_err();
        assert!(matches!(error, Error::Resolve(_)), "{error:?}");
    }

    #[test]
    fn oversized_response_hits_the_limit() {
        let mut reply = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        reply.resize(4096, b'x');
        let (port, server) = serve_once(reply);
        let limits = Limits {
            max_bytes: 1024,
            ..fast()
        };
        let error = get(&format!("127.0.0.1:{port}"), "/", limits).unwrap_err();
        assert!(matches!(error, Error::Limit(_)), "{error:?}");
        server.join().unwrap();
    }
}

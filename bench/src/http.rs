//! The HTTP/1.1 client side the load generators share (`loadgen`, `gpm-lab overload-http`):
//! the request they send and where a response in a read buffer ends.
//!
//! Only what a loopback benchmark against our own servers needs: a response has a status
//! line, headers and a `content-length` body (hyper's answers always do); anything else is
//! an error, never a hang.

/// The request both load generators send (keep-alive, no body).
pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// A complete response at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code (`200`, `503`, ...).
    pub status: u16,
    /// Bytes the response takes in the buffer: headers, blank line and body.
    pub len: usize,
}

/// Whether `buf` starts with a whole response: `Ok(Some(head))` if so, `Ok(None)` if more
/// bytes are needed, `Err` if it cannot be one (no status code, no `content-length`).
pub fn parse_response(buf: &[u8]) -> Result<Option<ResponseHead>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {:?}", head.lines().next()))?;
    let length = lines
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or("response without content-length")?;
    let len = end + 4 + length;
    Ok((buf.len() >= len).then_some(ResponseHead { status, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_found_only_once_whole() {
        let full = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 3\r\n\r\nno\nHTTP";
        for cut in 0..full.len() - 4 {
            assert_eq!(parse_response(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let head = parse_response(full).unwrap().unwrap();
        assert_eq!(
            head,
            ResponseHead {
                status: 503,
                len: full.len() - 4
            }
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"garbage\r\ncontent-length: 0\r\n\r\n").is_err());
    }
}

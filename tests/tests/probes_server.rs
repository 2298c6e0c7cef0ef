//! `Handle::serve_probes` (feature `probes-server`): what each path serves, and the safety
//! defaults (loopback only, read-only, bounded heads, header-read timeout, connection cap,
//! `/stw` only on request). The client is a plain `std::net::TcpStream` speaking HTTP/1.1.

use gpm::probes_server::{ProbesServer, PROMETHEUS_CONTENT_TYPE};
use gpm_tests::watchdog;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

fn runtime() -> gpm::Runtime {
    gpm::Runtime::builder()
        .worker_threads(2)
        .probe_sampling(1)
        .build()
        .unwrap()
}

/// A [`runtime`] serving its probes on a free loopback port.
fn runtime_serving_probes() -> (gpm::Runtime, ProbesServer) {
    let rt = runtime();
    let server = rt.handle().serve_probes("127.0.0.1:0").unwrap();
    (rt, server)
}

/// A parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Sends one request with `connection: close` and reads the whole response.
fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut socket = TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path)
}

/// Reads until the server closes: `Ok(bytes)` at EOF, `Err` on a reset. A read timeout (a
/// hang net far beyond any timeout under test) fails the test.
/// `GET path`, answered `200` with `content_type`.
#[track_caller]
fn get_ok(addr: SocketAddr, path: &str, content_type: &str) -> Reply {
    let reply = get(addr, path);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(content_type));
    reply
}

fn read_until_closed(socket: &mut TcpStream) -> Result<Vec<u8>, std::io::Error> {
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    match socket.read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
            panic!("the server did not close the connection: {raw:?}")
        }
        Err(e) => Err(e),
    }
}

/// Checks Prometheus' text format (0.0.4) line by line: `# HELP name text`,
/// `# TYPE name kind` before the family's samples, and samples `name{labels} value`.
fn check_prometheus_text(text: &str) -> usize {
    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut typed: Vec<String> = Vec::new();
    let mut samples = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            match keyword {
                Some("HELP") => assert!(name.is_some_and(is_name), "{line}"),
                Some("TYPE") => {
                    let name = name.filter(|n| is_name(n)).expect(line);
                    let kinds = ["counter", "gauge", "summary", "histogram", "untyped"];
                    assert!(rest.is_some_and(|k| kinds.contains(&k)), "{line}");
                    typed.push(name.to_owned());
                }
                _ => panic!("unknown comment line {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let ok_value = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
        assert!(ok_value, "bad value in {line:?}");
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect(line);
                for label in labels.split(',').filter(|l| !l.is_empty()) {
                    let (key, value) = label.split_once('=').expect(line);
                    assert!(is_name(key), "bad label name in {line:?}");
                    assert!(
                        value.len() >= 2 && value.starts_with('"') && value.ends_with('"'),
                        "bad label value in {line:?}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(is_name(name), "bad metric name in {line:?}");
        let family = typed.last().expect("a sample before any TYPE line");
        assert!(
            name == family
                || name
                    .strip_prefix(family.as_str())
                    .is_some_and(|s| ["_sum", "_count", "_bucket"].contains(&s)),
            "sample {name} outside its family {family}"
        );
        samples += 1;
    }
    samples
}

#[test]
fn metrics_is_prometheus_text() {
    watchdog("probes_server_metrics", || {
        let rt = runtime();
        rt.block_on(async { gpm::spawn(async { 1 }).await.unwrap() });
        let server = rt.handle().serve_probes("127.0.0.1:0").unwrap();
        let reply = get_ok(server.local_addr(), "/metrics", PROMETHEUS_CONTENT_TYPE);
        assert!(check_prometheus_text(&reply.body) > 10, "{}", reply.body);
        assert!(reply
            .body
            .contains("gpm_processor_queue_depth{processor=\"1\"}"));
    });
}

#[test]
fn probes_json_is_the_snapshot() {
    watchdog("probes_server_json", || {
        let (rt, server) = runtime_serving_probes();
        let reply = get_ok(server.local_addr(), "/probes.json", "application/json");
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let object = json.as_object().expect("a JSON object");
        // The documented fields of `gpm::probe::Probes`, exactly.
        let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
        fields.sort_unstable();
        let mut documented = vec![
            "uptime_s",
            "processors",
            "injector_depth",
            "blocking_queue_depth",
            "parked",
            "searching",
            "threads",
            "tasks_alive",
            "events",
            "polls",
            "spawns",
            "wakes",
            "completions",
            "sojourn",
            "queue_wait",
            "little_tasks",
            "little_queues",
            "knee",
            "dropped_samples",
            "stw_pending",
            "steal_policy",
            "steals",
            "injector_takes",
            "task_memory",
        ];
        documented.sort_unstable();
        assert_eq!(fields, documented);
        assert_eq!(json["processors"].as_array().unwrap().len(), 2);
        assert!(json["processors"][0]["queue_depth"].is_u64());
        assert!(json["steals"]["same_l3"].is_u64());
        // Every event counter by name, per P and summed; the named fields repeat them.
        assert_eq!(json["events"]["polls"], json["polls"]);
        assert!(json["processors"][0]["events"]["injector_takes"].is_u64());
        // The same serde form as the snapshot's own: the same keys at every level.
        let local = serde_json::to_value(rt.handle().probes()).unwrap();
        assert_eq!(keys(&json), keys(&local));
    });
}

/// Every object key path in `value`, arrays by their first element.
fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(value: &serde_json::Value, path: String, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let path = format!("{path}.{key}");
                    out.push(path.clone());
                    walk(value, path, out);
                }
            }
            serde_json::Value::Array(items) => {
                if let Some(first) = items.first() {
                    walk(first, format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    walk(value, String::new(), &mut out);
    out.sort();
    out
}

#[test]
fn page_is_self_contained_html() {
    watchdog("probes_server_page", || {
        let (_rt, server) = runtime_serving_probes();
        let reply = get_ok(server.local_addr(), "/", "text/html; charset=utf-8");
        assert!(reply.body.starts_with("<!DOCTYPE html>"));
        assert!(reply.body.contains("<canvas"));
        assert!(reply.body.contains("fetch(\"probes.json\""));
        assert!(reply.body.contains("const STW_ENABLED = false;"));
        let lower = reply.body.to_ascii_lowercase();
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        assert!(!lower.contains("<script src") && !lower.contains("<link"));
        let policy = reply.header("content-security-policy").unwrap();
        assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
        // HEAD: the same head, no body.
        let head = request(server.local_addr(), "HEAD", "/");
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
    });
}

#[test]
fn only_get_and_head_and_known_paths() {
    watchdog("probes_server_methods", || {
        let (_rt, server) = runtime_serving_probes();
        let addr = server.local_addr();
        for (method, path) in [
            ("POST", "/metrics"),
            ("PUT", "/probes.json"),
            ("DELETE", "/"),
        ] {
            let reply = request(addr, method, path);
            assert_eq!(reply.status, 405, "{method} {path}");
            assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        }
        assert_eq!(get(addr, "/nope").status, 404);
        assert_eq!(request(addr, "POST", "/nope").status, 404);
        // Stop-the-world is off unless asked for.
        assert_eq!(request(addr, "POST", "/stw").status, 404);
        assert_eq!(get(addr, "/stw").status, 404);
        assert_eq!(request(addr, "HEAD", "/metrics").status, 200);
    });
}

#[test]
fn stw_only_when_enabled() {
    watchdog("probes_server_stw", || {
        let rt = runtime();
        let server = ProbesServer::builder()
            .enable_stw(true)
            .serve(rt.handle(), "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        let stop = request(addr, "POST", "/stw");
        assert_eq!(stop.status, 200);
        let report: serde_json::Value = serde_json::from_str(&stop.body).unwrap();
        assert!(
            report["pause_ns"].as_u64().unwrap() >= report["time_to_stop_ns"].as_u64().unwrap()
        );
        assert_eq!(report["processors"].as_array().unwrap().len(), 2);
        let history: serde_json::Value = serde_json::from_str(&get(addr, "/stw").body).unwrap();
        assert_eq!(history.as_array().unwrap().len(), 1);
        assert_eq!(request(addr, "PUT", "/stw").status, 405);
        assert!(get(addr, "/").body.contains("const STW_ENABLED = true;"));
    });
}

#[test]
fn an_oversized_head_is_refused_and_the_server_keeps_serving() {
    watchdog("probes_server_big_head", || {
        let rt = runtime();
        let server = ProbesServer::builder()
            .max_header_bytes(8 * 1024)
            .serve(rt.handle(), "127.0.0.1:0")
            .unwrap();
        let mut socket = TcpStream::connect(server.local_addr()).unwrap();
        let big = "a".repeat(64 * 1024);
        // The server may close before it has read everything: a failed write is fine.
        let _ = write!(
            socket,
            "GET /metrics HTTP/1.1\r\nhost: test\r\nx-big: {big}\r\n\r\n"
        );
        match read_until_closed(&mut socket) {
            Ok(raw) if !raw.is_empty() => {
                let reply = parse(&raw);
                assert!((400..500).contains(&reply.status), "{reply:?}");
            }
            // Closed (or reset) without an answer: refused too.
            Ok(_) | Err(_) => {}
        }
        assert_eq!(get(server.local_addr(), "/metrics").status, 200);
    });
}

#[test]
fn a_client_that_never_finishes_its_head_is_cut_off() {
    watchdog("probes_server_slow_client", || {
        let rt = runtime();
        let server = ProbesServer::builder()
            .header_read_timeout(Duration::from_millis(200))
            .serve(rt.handle(), "127.0.0.1:0")
            .unwrap();
        let mut socket = TcpStream::connect(server.local_addr()).unwrap();
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: te")
            .unwrap();
        // The server closes it (perhaps after a 408); a read timeout would fail the test.
        if let Ok(raw) = read_until_closed(&mut socket) {
            assert!(
                raw.is_empty() || String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 408"),
                "{raw:?}"
            );
        }
        // An idle client (no byte at all) is cut off as well.
        let mut idle = TcpStream::connect(server.local_addr()).unwrap();
        let _ = read_until_closed(&mut idle);
    });
}

#[test]
fn connections_beyond_the_cap_are_refused() {
    watchdog("probes_server_cap", || {
        let rt = runtime();
        let server = ProbesServer::builder()
            .max_connections(2)
            .header_read_timeout(Duration::from_secs(60))
            .serve(rt.handle(), "127.0.0.1:0")
            .unwrap();
        let addr = server.local_addr();
        // Two idle connections hold both slots (the accept task takes connections in order,
        // so both are counted before the third is looked at).
        let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut third = TcpStream::connect(addr).unwrap();
        match read_until_closed(&mut third) {
            Ok(raw) if !raw.is_empty() => assert_eq!(parse(&raw).status, 503),
            Ok(_) | Err(_) => {}
        }
        assert_eq!(server.connections(), 2);
        // Once they close, the slots free up: the server notices each EOF in its own time,
        // so try until a request is served (the watchdog bounds this).
        for socket in &held {
            socket.shutdown(Shutdown::Both).unwrap();
        }
        drop(held);
        loop {
            let mut socket = TcpStream::connect(addr).unwrap();
            let _ =
                socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
            if let Ok(raw) = read_until_closed(&mut socket) {
                if !raw.is_empty() && parse(&raw).status == 200 {
                    break;
                }
            }
            std::thread::yield_now();
        }
    });
}

#[test]
fn non_loopback_addresses_need_the_opt_in() {
    watchdog("probes_server_remote", || {
        let rt = runtime();
        let error = rt.handle().serve_probes("0.0.0.0:0").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
        assert!(error.to_string().contains("allow_remote"), "{error}");
        let error = ProbesServer::builder()
            .serve(rt.handle(), "0.0.0.0:0")
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
        let remote = ProbesServer::builder()
            .allow_remote(true)
            .serve(rt.handle(), "0.0.0.0:0")
            .unwrap();
        assert!(remote.local_addr().ip().is_unspecified());
        let local = rt.handle().serve_probes("localhost:0").unwrap();
        assert!(local.local_addr().ip().is_loopback());
    });
}

#[test]
fn shutdown_closes_the_listener() {
    watchdog("probes_server_shutdown", || {
        let (rt, server) = runtime_serving_probes();
        let addr = server.local_addr();
        // An open connection is cut too.
        let mut open = TcpStream::connect(addr).unwrap();
        assert_eq!(get(addr, "/metrics").status, 200);
        rt.block_on(server.shutdown());
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        let _ = read_until_closed(&mut open);
    });
}

#[test]
fn a_server_outliving_its_runtime_drops_quietly() {
    watchdog("probes_server_outlives", || {
        let (rt, server) = runtime_serving_probes();
        let mut open = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(get(server.local_addr(), "/probes.json").status, 200);
        drop(rt);
        // The runtime's shutdown ended every task: the open connection is closed.
        let _ = read_until_closed(&mut open);
        drop(server);
    });
}

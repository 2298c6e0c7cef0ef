//! Frames drawn into ratatui's `TestBackend` from the fixture (`tests/fixtures/probes.json`,
//! checked against a real snapshot's keys by `real_snapshot.rs`), read back as text.

use gpm_top::app::{App, Command, SortKey};
use gpm_top::probes::Probes;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/probes.json")).unwrap()
}

fn probes(value: &Value) -> Probes {
    Probes::from_json(value.to_string().as_bytes()).unwrap()
}

fn add(value: &mut Value, pointer: &str, delta: u64) {
    let field = value.pointer_mut(pointer).unwrap();
    *field = Value::from(field.as_u64().unwrap() + delta);
}

/// The fixture 2 s later. Per P, polls grew by 2000, 20000, 0 and 10000 (1000/s, 10000/s,
/// 0/s, 5000/s) and P0 stole 10, 4 and 2 times from its L3, its node and another node (5/s,
/// 2/s, 1/s).
fn later() -> Value {
    let mut value = fixture();
    value["uptime_s"] = Value::from(12.0);
    for (p, polls) in [(0, 2000), (1, 20000), (2, 0), (3, 10000)] {
        add(&mut value, &format!("/processors/{p}/polls"), polls);
        add(&mut value, "/polls", polls);
    }
    for (relation, steals) in [("same_l3", 10), ("same_node", 4), ("other_node", 2)] {
        add(
            &mut value,
            &format!("/processors/0/steals/{relation}"),
            steals,
        );
        add(&mut value, &format!("/steals/{relation}"), steals);
    }
    value
}

/// The screen as lines of text.
fn screen(app: &App, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| gpm_top::ui::draw(frame, app))
        .unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect()
}

/// The table's rows (the lines after the column titles), as whitespace-separated cells.
fn table(lines: &[String]) -> Vec<Vec<String>> {
    let title = lines
        .iter()
        .position(|l| l.trim_start().starts_with("P") && l.contains("polls/s"))
        .expect("the table's title row");
    lines[title + 1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn first_column(rows: &[Vec<String>]) -> Vec<&str> {
    rows.iter().map(|r| r[0].as_str()).collect()
}

fn with_two_snapshots() -> App {
    let mut app = App::new("127.0.0.1:9000", Duration::from_secs(1));
    app.on_fetch(Ok(probes(&fixture())));
    app.on_fetch(Ok(probes(&later())));
    app
}

#[test]
fn header_and_one_row_per_p_from_one_snapshot() {
    let mut app = App::new("127.0.0.1:9000", Duration::from_secs(1));
    app.on_fetch(Ok(probes(&fixture())));
    let lines = screen(&app, 180, 20);
    let text = lines.join("\n");
    assert!(
        text.contains("127.0.0.1:9000  up 10.0s  policy hierarchical"),
        "{text}"
    );
    assert!(
        text.contains("workers 4 (parked 1, searching 1)  threads 6  tasks alive 342"),
        "{text}"
    );
    assert!(
        text.contains("tasks  L 60.2 vs lambda*W 59.5 (dev +0.01, lambda 41.0k/s, W 1.45ms)"),
        "{text}"
    );
    // W and lambda*W are null in the fixture's queue view: shown as "-", not a parse error.
    assert!(
        text.contains("queues L 48.0 vs lambda*W - (dev -, lambda 121.0k/s, W -)"),
        "{text}"
    );
    assert!(
        text.contains("sojourn P50 1.21ms P99 8.45ms P999 15.90ms"),
        "{text}"
    );
    assert!(text.contains("queue wait P50 180.0us P99 2.35ms"), "{text}");
    assert!(text.contains("knee lambda 38.5k/s, L 44.0"), "{text}");
    assert!(text.contains("stop-the-world none"), "{text}");
    assert!(text.contains("injector 5  blocking 1"), "{text}");
    let rows = table(&lines);
    assert_eq!(first_column(&rows), ["0", "1", "2", "3"]);
    assert_eq!(rows[0][..5], ["0", "run", "12", "yes", "1"]);
    assert_eq!(rows[2][..5], ["2", "park", "0", "-", "0"]);
    // No rates from one snapshot.
    assert_eq!(rows[0][5], "-");
    assert_eq!(rows[0][13], "85.0us");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ok: 1 snapshots from 127.0.0.1:9000")));
}

#[test]
fn rates_come_from_two_snapshots() {
    let app = with_two_snapshots();
    let lines = screen(&app, 180, 20);
    let rows = table(&lines);
    let p0 = &rows[0];
    // P, state, queue, next, defer, polls/s, spawn/s, wake/s, done/s, L3/s, node/s, remote/s.
    assert_eq!(p0[5], "1000", "{p0:?}");
    assert_eq!(p0[6..9], ["0", "0", "0"], "{p0:?}");
    assert_eq!(p0[9..12], ["5", "2", "1"], "{p0:?}");
    assert_eq!(rows[1][5], "10.0k");
    assert_eq!(rows[3][5], "5000");
    let text = lines.join("\n");
    assert!(text.contains("polls 16.0k"), "{text}");
    assert!(text.contains("steals L3 5 node 2 remote 1"), "{text}");
    assert!(text.contains("rates over the last 2.0s"), "{text}");
}

#[test]
fn sorting_changes_the_row_order() {
    let mut app = with_two_snapshots();
    assert_eq!(
        first_column(&table(&screen(&app, 180, 20))),
        ["0", "1", "2", "3"]
    );
    app.on_command(Command::Sort);
    assert_eq!(app.sort, SortKey::Queue);
    let lines = screen(&app, 180, 20);
    assert_eq!(first_column(&table(&lines)), ["3", "0", "1", "2"]);
    assert!(
        lines.iter().any(|l| l.contains("queue*")),
        "the sorted column is marked"
    );
    assert!(lines.iter().any(|l| l.contains("s sort: queue")));
    app.on_command(Command::Sort);
    assert_eq!(
        first_column(&table(&screen(&app, 180, 20))),
        ["1", "3", "0", "2"]
    );
    app.on_command(Command::Sort);
    assert_eq!(app.sort, SortKey::Steals);
    assert_eq!(
        first_column(&table(&screen(&app, 180, 20))),
        ["0", "1", "2", "3"]
    );
    app.on_command(Command::Sort);
    assert_eq!(app.sort, SortKey::Wait);
    assert_eq!(
        first_column(&table(&screen(&app, 180, 20))),
        ["3", "0", "1", "2"]
    );
    app.on_command(Command::Sort);
    assert_eq!(app.sort, SortKey::Index);
}

#[test]
fn an_unreachable_endpoint_is_an_error_line_and_the_last_snapshot_stays() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");
    let mut app = App::new(target.clone(), Duration::from_secs(1));
    app.on_fetch(gpm_top::fetch(&target, Default::default()));
    let lines = screen(&app, 180, 20);
    let status = lines.last().unwrap();
    assert!(
        status.starts_with(&format!("error: cannot connect to {target}: ")),
        "{status}"
    );
    assert!(
        status.contains("1 failed in a row, retrying every 1000 ms"),
        "{status}"
    );
    assert!(
        lines[0].contains("waiting for the first snapshot"),
        "{:?}",
        lines[0]
    );

    // A snapshot, then the endpoint goes away: the rows stay, the error shows, and the next
    // success clears it.
    app.on_fetch(Ok(probes(&fixture())));
    app.on_fetch(gpm_top::fetch(&target, Default::default()));
    app.on_fetch(gpm_top::fetch(&target, Default::default()));
    let lines = screen(&app, 180, 20);
    assert_eq!(table(&lines).len(), 4);
    assert!(
        lines.last().unwrap().contains("2 failed in a row"),
        "{lines:?}"
    );
    app.on_fetch(Ok(probes(&later())));
    assert!(screen(&app, 180, 20)
        .last()
        .unwrap()
        .starts_with("ok: 2 snapshots"));
}

#[test]
fn a_restarted_program_gives_no_rates_rather_than_garbage() {
    let mut app = App::new("h:1", Duration::from_secs(1));
    app.on_fetch(Ok(probes(&later())));
    let mut restarted = fixture();
    restarted["uptime_s"] = Value::from(13.0);
    app.on_fetch(Ok(probes(&restarted)));
    assert!(app.rates.is_none());
    assert_eq!(table(&screen(&app, 180, 20))[0][5], "-");
}

#[test]
fn keys_change_interval_sort_pause_and_quit() {
    let key = |code| gpm_top::command(KeyEvent::new(code, KeyModifiers::NONE));
    assert_eq!(key(KeyCode::Char('q')), Some(Command::Quit));
    assert_eq!(key(KeyCode::Char('+')), Some(Command::Slower));
    assert_eq!(key(KeyCode::Char('-')), Some(Command::Faster));
    assert_eq!(key(KeyCode::Char('s')), Some(Command::Sort));
    assert_eq!(key(KeyCode::Char('p')), Some(Command::Pause));
    assert_eq!(key(KeyCode::Char('x')), None);
    assert_eq!(
        gpm_top::command(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Command::Quit)
    );

    let mut app = App::new("h:1", Duration::from_secs(1));
    for _ in 0..10 {
        assert!(app.on_command(Command::Faster));
    }
    assert_eq!(app.interval, Duration::from_millis(100));
    for _ in 0..10 {
        app.on_command(Command::Slower);
    }
    assert_eq!(app.interval, Duration::from_secs(10));
    assert!(screen(&app, 120, 12)
        .iter()
        .any(|l| l.contains("interval 10000 ms")));
    assert_eq!(
        App::new("h:1", Duration::ZERO).interval,
        Duration::from_millis(100)
    );

    app.on_fetch(Ok(probes(&fixture())));
    app.on_command(Command::Pause);
    let lines = screen(&app, 120, 12);
    assert!(lines.iter().any(|l| l.contains("p resume")), "{lines:?}");
    assert!(lines.last().unwrap().contains("PAUSED"), "{lines:?}");
    app.on_command(Command::Pause);
    assert!(!app.paused);
    assert!(!app.on_command(Command::Quit));
}

#[test]
fn small_terminals_do_not_panic() {
    let app = with_two_snapshots();
    for (w, h) in [(80, 24), (40, 8), (10, 3), (1, 1)] {
        screen(&app, w, h);
    }
}

/// Serves `body` once as a chunked HTTP response with `status`.
fn serve(status: &str, body: String) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let status = status.to_owned();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).unwrap();
        let mut reply = format!("HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n");
        for chunk in body.as_bytes().chunks(100) {
            reply.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                std::str::from_utf8(chunk).unwrap()
            ));
        }
        reply.push_str("0\r\n\r\n");
        stream.write_all(reply.as_bytes()).unwrap();
    });
    (target, server)
}

#[test]
fn fetch_over_http_ignores_unknown_fields() {
    let mut value = fixture();
    value["a_field_from_a_later_gpm"] = serde_json::json!({"nested": [1, 2, 3]});
    value["processors"][0]["another_new_counter"] = Value::from(7);
    let (target, server) = serve("200 OK", value.to_string());
    let fetched = gpm_top::fetch(&target, Default::default()).unwrap();
    server.join().unwrap();
    // Debug, not ==: the fixture's nulls are NaN.
    assert_eq!(format!("{fetched:?}"), format!("{:?}", probes(&fixture())));
}

#[test]
fn fetch_reports_a_bad_status_and_a_bad_body() {
    let (target, server) = serve("503 Service Unavailable", "busy".to_owned());
    let error = gpm_top::fetch(&target, Default::default()).unwrap_err();
    server.join().unwrap();
    assert_eq!(error, "HTTP status 503 Service Unavailable");

    let (target, server) = serve("200 OK", "{\"uptime_s\": 1.0}".to_owned());
    let error = gpm_top::fetch(&target, Default::default()).unwrap_err();
    server.join().unwrap();
    assert!(
        error.contains("not a gpm probes snapshot: missing field"),
        "{error}"
    );
}

#[test]
#[ignore = "prints the screen of two fixture snapshots (the README's picture)"]
fn print_the_screen() {
    for line in screen(&with_two_snapshots(), 124, 14) {
        println!("{line}");
    }
}

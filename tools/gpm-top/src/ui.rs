//! Drawing an [`App`]: a header of runtime totals, the table of Ps, a key line and a status
//! line. Pure: tests draw into ratatui's `TestBackend` and read the text.

use crate::app::{App, SortKey};
use crate::probes::{Little, Probes};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

/// Lines of the header.
const HEADER_LINES: u16 = 6;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let [header, table, keys, status] = Layout::vertical([
        Constraint::Length(HEADER_LINES),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(app)), header);
    frame.render_widget(processor_table(app), table);
    frame.render_widget(Paragraph::new(key_line(app)), keys);
    frame.render_widget(Paragraph::new(status_line(app)), status);
}

fn bold(text: impl Into<String>) -> Span<'static> {
    Span::styled(text.into(), Style::default().add_modifier(Modifier::BOLD))
}

fn header_lines(app: &App) -> Vec<Line<'static>> {
    let Some(p) = &app.current else {
        return vec![Line::from(vec![
            bold("gpm-top "),
            Span::raw(format!("{}: waiting for the first snapshot", app.target)),
        ])];
    };
    let rates = app.rates.as_ref();
    let per_s = |f: fn(&crate::app::Rates) -> f64| rates.map(f).map_or("-".to_owned(), si);
    let steals = |i: usize| rates.map_or("-".to_owned(), |r| si(r.steals[i]));
    let knee = match p.knee {
        Some(k) => format!("lambda {}/s, L {}", si(k.lambda), fixed(k.l, 1)),
        None => "none yet".to_owned(),
    };
    let stw = if p.stw_pending { "PENDING" } else { "none" };
    vec![
        Line::from(vec![
            bold("gpm-top "),
            Span::raw(format!(
                "{}  up {}  policy {}  workers {} (parked {}, searching {})  threads {}  tasks alive {}",
                app.target,
                duration_s(p.uptime_s),
                p.steal_policy,
                p.processors.len(),
                p.parked,
                p.searching,
                p.threads,
                p.tasks_alive,
            )),
        ]),
        Line::from(vec![
            bold("little  "),
            Span::raw(format!("tasks  {}", little(p.little_tasks.as_ref()))),
        ]),
        Line::from(vec![
            bold("little  "),
            Span::raw(format!("queues {}", little(p.little_queues.as_ref()))),
        ]),
        Line::from(vec![
            bold("latency "),
            Span::raw(format!(
                "sojourn P50 {} P99 {} P999 {}  |  queue wait P50 {} P99 {}  |  knee {knee}",
                nanos(p.sojourn.p50_ns as f64),
                nanos(p.sojourn.p99_ns as f64),
                nanos(p.sojourn.p999_ns as f64),
                nanos(p.queue_wait.p50_ns as f64),
                nanos(p.queue_wait.p99_ns as f64),
            )),
        ]),
        Line::from(vec![
            bold("rates/s "),
            Span::raw(format!(
                "polls {}  spawns {}  wakes {}  done {}  steals L3 {} node {} remote {}  injector takes {}",
                per_s(|r| r.polls),
                per_s(|r| r.spawns),
                per_s(|r| r.wakes),
                per_s(|r| r.completions),
                steals(0),
                steals(1),
                steals(2),
                per_s(|r| r.injector_takes),
            )),
        ]),
        Line::from(vec![
            bold("queues  "),
            Span::raw(format!(
                "injector {}  blocking {}  stop-the-world {stw}  |  memory {} live {} mapped {}  |  dropped samples {}",
                p.injector_depth,
                p.blocking_queue_depth,
                p.task_memory.allocator,
                bytes(p.task_memory.live_bytes as f64),
                bytes(p.task_memory.mapped_bytes as f64),
                p.dropped_samples,
            )),
        ]),
    ]
}

/// `L 12.0 vs lambda*W 11.8 (dev +0.02, lambda 1.2k/s, W 1.2ms)`.
fn little(law: Option<&Little>) -> String {
    match law {
        Some(l) => format!(
            "L {} vs lambda*W {} (dev {}, lambda {}/s, W {})",
            fixed(l.l_measured, 1),
            fixed(l.l_predicted, 1),
            if l.deviation.is_finite() {
                format!("{:+.2}", l.deviation)
            } else {
                "-".to_owned()
            },
            si(l.lambda),
            nanos(l.w_s * 1e9),
        ),
        None => "- (needs two snapshots)".to_owned(),
    }
}

/// The table's columns: title and the sort key it shows, if any.
const COLUMNS: [(&str, Option<SortKey>); 15] = [
    ("P", Some(SortKey::Index)),
    ("state", None),
    ("queue", Some(SortKey::Queue)),
    ("next", None),
    ("defer", None),
    ("polls/s", Some(SortKey::Polls)),
    ("spawn/s", None),
    ("wake/s", None),
    ("done/s", None),
    ("stl L3/s", Some(SortKey::Steals)),
    ("node/s", None),
    ("remote/s", None),
    ("taken/s", None),
    ("wait ewma", Some(SortKey::Wait)),
    ("slab hit", None),
];

fn processor_table(app: &App) -> Table<'static> {
    let header = Row::new(COLUMNS.iter().map(|&(title, key)| {
        if key == Some(app.sort) {
            Cell::from(format!("{title}*")).style(
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            )
        } else {
            Cell::from(title).style(Style::default().add_modifier(Modifier::REVERSED))
        }
    }));
    let rows: Vec<Row<'static>> = match &app.current {
        None => Vec::new(),
        Some(probes) => app
            .row_order()
            .into_iter()
            .map(|i| processor_row(app, probes, i))
            .collect(),
    };
    let widths = [
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
    ];
    Table::new(rows, widths).header(header)
}

fn processor_row(app: &App, probes: &Probes, i: usize) -> Row<'static> {
    let p = &probes.processors[i];
    let r = app
        .rates
        .as_ref()
        .and_then(|r| r.processors.get(i).copied().flatten());
    let show =
        |f: fn(&crate::app::ProcessorRates) -> f64| r.as_ref().map_or("-".to_owned(), |r| si(f(r)));
    let slab = p.slab_hits + p.slab_refills;
    let slab_hit = if slab == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", 100.0 * p.slab_hits as f64 / slab as f64)
    };
    let state = if p.parked { "park" } else { "run" };
    let style = if p.parked {
        Style::default().fg(Color::DarkGray)
    } else {
        Style::default()
    };
    Row::new(vec![
        p.index.to_string(),
        state.to_owned(),
        p.queue_depth.to_string(),
        if p.runnext { "yes" } else { "-" }.to_owned(),
        p.deferred.to_string(),
        show(|r| r.polls),
        show(|r| r.spawns),
        show(|r| r.wakes),
        show(|r| r.completions),
        show(|r| r.steals[0]),
        show(|r| r.steals[1]),
        show(|r| r.steals[2]),
        show(|r| r.tasks_stolen),
        nanos(p.queue_wait_ewma_ns as f64),
        slab_hit,
    ])
    .style(style)
}

fn key_line(app: &App) -> Line<'static> {
    Line::from(vec![Span::styled(
        format!(
            "q quit  +/- interval {} ms  s sort: {}  p {}",
            app.interval.as_millis(),
            app.sort.name(),
            if app.paused { "resume" } else { "pause" },
        ),
        Style::default().fg(Color::Cyan),
    )])
}

fn status_line(app: &App) -> Line<'static> {
    if let Some(error) = &app.error {
        let when = if app.paused {
            "paused".to_owned()
        } else {
            format!("retrying every {} ms", app.interval.as_millis())
        };
        return Line::from(Span::styled(
            format!("error: {error} ({} failed in a row, {when})", app.failures),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    let mut text = format!("ok: {} snapshots from {}", app.fetches, app.target);
    if let Some(r) = &app.rates {
        text.push_str(&format!(", rates over the last {}", duration_s(r.seconds)));
    }
    if app.paused {
        text.push_str("  PAUSED");
    }
    Line::from(text)
}

/// `value` with `decimals` decimals; `-` when it is not finite (a `null` in the JSON).
fn fixed(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "-".to_owned()
    }
}

/// `1234567` as `1.23M`; small values keep one decimal.
fn si(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let a = value.abs();
    let units = [(1e9, 1e9, 2, "G"), (1e6, 1e6, 2, "M"), (1e4, 1e3, 1, "k")];
    in_unit(value, a, &units).unwrap_or_else(|| {
        if a >= 100.0 || value == value.trunc() {
            format!("{value:.0}")
        } else {
            format!("{value:.1}")
        }
    })
}

/// `value` in the first of `units`, `(threshold, divisor, decimals, suffix)`, whose threshold
/// `magnitude` reaches; `None` below them all.
fn in_unit(value: f64, magnitude: f64, units: &[(f64, f64, usize, &str)]) -> Option<String> {
    let &(_, divisor, decimals, suffix) = units.iter().find(|unit| magnitude >= unit.0)?;
    Some(format!("{:.*}{suffix}", decimals, value / divisor))
}

/// Nanoseconds in the unit that fits.
fn nanos(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".to_owned();
    }
    let units = [(1e9, 1e9, 2, "s"), (1e6, 1e6, 2, "ms"), (1e3, 1e3, 1, "us")];
    in_unit(ns, ns, &units).unwrap_or_else(|| format!("{ns:.0}ns"))
}

fn duration_s(s: f64) -> String {
    if !s.is_finite() {
        "-".to_owned()
    } else if s >= 3600.0 {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

fn bytes(b: f64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let units = [
        (GIB, GIB, 1, "GiB"),
        (MIB, MIB, 1, "MiB"),
        (1024.0, 1024.0, 1, "KiB"),
    ];
    in_unit(b, b, &units).unwrap_or_else(|| format!("{b:.0}B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(12.5), "12.5");
        assert_eq!(si(1234.0), "1234");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(2_500_000.0), "2.50M");
        assert_eq!(si(f64::NAN), "-");
        assert_eq!(nanos(850.0), "850ns");
        assert_eq!(nanos(12_300.0), "12.3us");
        assert_eq!(nanos(4_560_000.0), "4.56ms");
        assert_eq!(nanos(f64::NAN), "-");
        assert_eq!(duration_s(75.0), "1m15s");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0MiB");
    }
}

//! gpm-top: a terminal viewer, like `top`, for a running gpm program.
//!
//! The program serves its probes over HTTP (`Handle::serve_probes(addr)`: `GET /probes.json`
//! is `serde_json::to_string(&handle.probes())`); gpm-top polls that endpoint and shows the
//! runtime's totals (workers, Little's law twice, sojourn and queue-wait quantiles, the knee,
//! stop-the-world) and one row per P (queue depth, polls, steals by relation and the other
//! counters, as rates from the difference of two snapshots).
//!
//! ```text
//! gpm-top HOST:PORT [--interval-ms 1000]
//! ```
//!
//! Keys: `q` quits, `+`/`-` lengthen or shorten the refresh interval (100 ms to 10 s), `s`
//! cycles the sort column, `p` pauses. An unreachable endpoint is an error in the status line
//! and gpm-top keeps retrying.
//!
//! The crate is the binary's parts, kept apart so tests can drive them without a terminal:
//! [`probes`] (the snapshot's JSON), [`http`] (the GET), [`app`] (state, rates, sort, keys),
//! [`ui`] (drawing).

pub mod app;
pub mod http;
pub mod probes;
pub mod ui;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// The path of the snapshot on the program's probes endpoint.
pub const PROBES_PATH: &str = "/probes.json";

/// Fetches and parses one snapshot from `authority` (`host:port`); the error is the status
/// line's text.
pub fn fetch(authority: &str, limits: http::Limits) -> Result<probes::Probes, String> {
    let response = http::get_ok(authority, PROBES_PATH, limits).map_err(|e| e.to_string())?;
    probes::Probes::from_json(&response.body)
        .map_err(|e| format!("{PROBES_PATH} is not a gpm probes snapshot: {e}"))
}

/// The command of a key press, if it has one.
pub fn command(key: KeyEvent) -> Option<app::Command> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            Some(app::Command::Quit)
        }
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(app::Command::Quit),
        KeyCode::Char('+' | '=') => Some(app::Command::Slower),
        KeyCode::Char('-' | '_') => Some(app::Command::Faster),
        KeyCode::Char('s' | 'S') => Some(app::Command::Sort),
        KeyCode::Char('p' | 'P' | ' ') => Some(app::Command::Pause),
        _ => None,
    }
}

/// `host:port` from the command line's target: `http://` and a trailing path are dropped.
pub fn authority(target: &str) -> &str {
    let target = target.strip_prefix("http://").unwrap_or(target);
    target.split('/').next().unwrap_or(target)
}

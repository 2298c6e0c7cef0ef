//! `gpm-top HOST:PORT [--interval-ms 1000]`: see the crate docs (`src/lib.rs`) and
//! `tools/gpm-top/README.md`.
//!
//! Threads: the main thread reads keys and draws; a fetcher thread polls the endpoint at the
//! current interval (unless paused) and sends each result over a channel, so a slow endpoint
//! never freezes the keys. The terminal is restored on every way out: normal exit, error
//! return (a drop guard) and panic (ratatui's hook, installed by `try_init`).

use gpm_top::app::App;
use gpm_top::http::Limits;
use ratatui::crossterm::event::{self, Event};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: gpm-top HOST:PORT [--interval-ms 1000]

Shows the probes of a gpm program that serves them (Handle::serve_probes), like top.
Keys: q quit, +/- refresh interval (100 ms .. 10 s), s sort column, p pause.";

struct Args {
    target: String,
    interval: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut target = None;
    let mut interval_ms = 1000u64;
    while let Some(arg) = args.next() {
        let value = if arg == "--interval-ms" {
            Some(args.next().ok_or("--interval-ms needs a value")?)
        } else {
            arg.strip_prefix("--interval-ms=").map(str::to_owned)
        };
        if let Some(value) = value {
            interval_ms = value
                .parse()
                .map_err(|_| format!("--interval-ms: not a number of milliseconds: {value:?}"))?;
        } else if arg == "-h" || arg == "--help" {
            return Err(String::new());
        } else if arg.starts_with('-') {
            return Err(format!("unknown option {arg}"));
        } else if target.replace(arg).is_some() {
            return Err("more than one HOST:PORT".to_owned());
        }
    }
    Ok(Args {
        target: gpm_top::authority(&target.ok_or("missing HOST:PORT")?).to_owned(),
        interval: Duration::from_millis(interval_ms),
    })
}

/// What the main thread tells the fetcher.
struct Control {
    interval_ms: AtomicU64,
    paused: AtomicBool,
    quit: AtomicBool,
}

fn fetcher(
    target: String,
    control: Arc<Control>,
    results: mpsc::Sender<Result<gpm_top::probes::Probes, String>>,
) {
    while !control.quit.load(Ordering::Relaxed) {
        let started = Instant::now();
        if !control.paused.load(Ordering::Relaxed) {
            let result = gpm_top::fetch(&target, Limits::default());
            if results.send(result).is_err() {
                return;
            }
        }
        // Sleep in small steps so quit, pause and a new interval take effect soon.
        loop {
            let interval = Duration::from_millis(control.interval_ms.load(Ordering::Relaxed));
            if control.quit.load(Ordering::Relaxed) || started.elapsed() >= interval {
                break;
            }
            std::thread::sleep(Duration::from_millis(20).min(interval));
        }
    }
}

/// Restores the terminal when dropped (every return path of `run`).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn run(args: Args) -> std::io::Result<()> {
    let mut app = App::new(args.target.clone(), args.interval);
    let control = Arc::new(Control {
        interval_ms: AtomicU64::new(app.interval.as_millis() as u64),
        paused: AtomicBool::new(false),
        quit: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel();
    {
        let control = control.clone();
        let target = args.target.clone();
        // Not joined: a fetch may sit in a read timeout; the process exit ends it.
        std::thread::Builder::new()
            .name("gpm-top-fetch".to_owned())
            .spawn(move || fetcher(target, control, tx))?;
    }
    let mut terminal = ratatui::try_init().inspect_err(|_| ratatui::restore())?;
    let _restore = Restore;
    let result = loop {
        while let Ok(result) = rx.try_recv() {
            if !app.paused {
                app.on_fetch(result);
            }
        }
        if let Err(e) = terminal.draw(|frame| gpm_top::ui::draw(frame, &app)) {
            break Err(e);
        }
        match event::poll(Duration::from_millis(50)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => break Err(e),
        }
        let command = match event::read() {
            Ok(Event::Key(key)) => gpm_top::command(key),
            Ok(_) => None,
            Err(e) => break Err(e),
        };
        if let Some(command) = command {
            if !app.on_command(command) {
                break Ok(());
            }
            control
                .interval_ms
                .store(app.interval.as_millis() as u64, Ordering::Relaxed);
            control.paused.store(app.paused, Ordering::Relaxed);
        }
    };
    control.quit.store(true, Ordering::Relaxed);
    result
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("gpm-top: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpm-top: terminal error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(ToString::to_string))
    }

    #[test]
    fn arguments() {
        let args = parse(&["127.0.0.1:9000"]).unwrap();
        assert_eq!(args.target, "127.0.0.1:9000");
        assert_eq!(args.interval, Duration::from_millis(1000));
        let args = parse(&["--interval-ms", "250", "http://localhost:9000/probes.json"]).unwrap();
        assert_eq!(args.target, "localhost:9000");
        assert_eq!(args.interval, Duration::from_millis(250));
        assert_eq!(
            parse(&["h:1", "--interval-ms=5"]).unwrap().interval,
            Duration::from_millis(5)
        );
        assert!(parse(&[]).is_err());
        assert!(parse(&["h:1", "--interval-ms"]).is_err());
        assert!(parse(&["h:1", "--interval-ms", "x"]).is_err());
        assert!(parse(&["h:1", "h:2"]).is_err());
        assert!(parse(&["h:1", "--bogus"]).is_err());
        assert_eq!(parse(&["--help"]).err(), Some(String::new()));
    }
}

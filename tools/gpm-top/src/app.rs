//! The viewer's state without a terminal: the last two snapshots and the rates between them,
//! the sort column, the refresh interval, pause, and the last error. Keys arrive as
//! [`Command`]s, snapshots as the fetcher's results; [`crate::ui`] draws an [`App`].

use crate::probes::{ByRelation, Probes};
use std::time::Duration;

/// The shortest refresh interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The longest refresh interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `q`, `Q`, Ctrl-C: leave.
    Quit,
    /// `+`: refresh less often (the interval doubles, up to [`MAX_INTERVAL`]).
    Slower,
    /// `-`: refresh more often (the interval halves, down to [`MIN_INTERVAL`]).
    Faster,
    /// `s`: the next sort column.
    Sort,
    /// `p`: stop or resume fetching; the screen keeps the last snapshot.
    Pause,
}

/// The column the P table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// P index, ascending (the default).
    Index,
    /// Local queue depth, largest first.
    Queue,
    /// Polls per second, largest first.
    Polls,
    /// Successful steals per second (all relations), largest first.
    Steals,
    /// Queue-wait EWMA, largest first.
    Wait,
}

impl SortKey {
    /// In the order `s` cycles through.
    pub const ALL: [SortKey; 5] = [
        SortKey::Index,
        SortKey::Queue,
        SortKey::Polls,
        SortKey::Steals,
        SortKey::Wait,
    ];

    /// The name in the status line.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Index => "P",
            SortKey::Queue => "queue",
            SortKey::Polls => "polls/s",
            SortKey::Steals => "steals/s",
            SortKey::Wait => "wait ewma",
        }
    }

    /// The next key in [`SortKey::ALL`], wrapping.
    pub fn next(self) -> SortKey {
        let at = SortKey::ALL.iter().position(|&k| k == self).unwrap_or(0);
        SortKey::ALL[(at + 1) % SortKey::ALL.len()]
    }
}

/// Rates of one P between two snapshots, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessorRates {
    /// Polls.
    pub polls: f64,
    /// Spawns.
    pub spawns: f64,
    /// Wake-ups.
    pub wakes: f64,
    /// Completions.
    pub completions: f64,
    /// Successful steals from the same L3, the same node, other nodes.
    pub steals: [f64; 3],
    /// Steal attempts, all relations.
    pub attempts: f64,
    /// Tasks taken by its steals, all relations.
    pub tasks_stolen: f64,
}

/// Rates of the whole runtime between two snapshots, per second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    /// The server's time between the snapshots (their `uptime_s`), seconds.
    pub seconds: f64,
    /// Polls, spawns, wake-ups, completions of the runtime.
    pub polls: f64,
    /// Spawns.
    pub spawns: f64,
    /// Wake-ups.
    pub wakes: f64,
    /// Completions.
    pub completions: f64,
    /// Steals by relation (same L3, same node, other node).
    pub steals: [f64; 3],
    /// Tasks taken from the injector.
    pub injector_takes: f64,
    /// Per P, in the order of the newer snapshot's `processors` (`None` for a P missing
    /// from the older one).
    pub processors: Vec<Option<ProcessorRates>>,
}

/// Per-second rate of a counter; `None` when it went backwards (another process behind the
/// address, or a restart).
fn rate(new: u64, old: u64, seconds: f64) -> Option<f64> {
    new.checked_sub(old).map(|d| d as f64 / seconds)
}

fn relation_rates(new: ByRelation, old: ByRelation, seconds: f64) -> Option<[f64; 3]> {
    Some([
        rate(new.same_l3, old.same_l3, seconds)?,
        rate(new.same_node, old.same_node, seconds)?,
        rate(new.other_node, old.other_node, seconds)?,
    ])
}

impl Rates {
    /// The rates from `old` to `new`, timed by their `uptime_s`; `None` if no time passed
    /// or a counter went backwards (a restarted program).
    pub fn between(old: &Probes, new: &Probes) -> Option<Rates> {
        let seconds = new.uptime_s - old.uptime_s;
        if !(seconds > 0.0 && seconds.is_finite()) {
            return None;
        }
        let processors = new
            .processors
            .iter()
            .map(|p| {
                let o = old.processors.iter().find(|o| o.index == p.index)?;
                Some(ProcessorRates {
                    polls: rate(p.polls, o.polls, seconds)?,
                    spawns: rate(p.spawns, o.spawns, seconds)?,
                    wakes: rate(p.wakes, o.wakes, seconds)?,
                    completions: rate(p.completions, o.completions, seconds)?,
                    steals: relation_rates(p.steals, o.steals, seconds)?,
                    attempts: rate(p.steal_attempts.total(), o.steal_attempts.total(), seconds)?,
                    tasks_stolen: rate(p.tasks_stolen.total(), o.tasks_stolen.total(), seconds)?,
                })
            })
            .collect();
        Some(Rates {
            seconds,
            polls: rate(new.polls, old.polls, seconds)?,
            spawns: rate(new.spawns, old.spawns, seconds)?,
            wakes: rate(new.wakes, old.wakes, seconds)?,
            completions: rate(new.completions, old.completions, seconds)?,
            steals: relation_rates(new.steals, old.steals, seconds)?,
            injector_takes: rate(new.injector_takes, old.injector_takes, seconds)?,
            processors,
        })
    }
}

/// The viewer's state.
#[derive(Debug, Clone)]
pub struct App {
    /// `host:port` of the endpoint.
    pub target: String,
    /// Time between fetches.
    pub interval: Duration,
    /// The P table's order.
    pub sort: SortKey,
    /// Whether fetching is stopped.
    pub paused: bool,
    /// The newest snapshot.
    pub current: Option<Probes>,
    /// Rates from the snapshot before it to it.
    pub rates: Option<Rates>,
    /// The last fetch's error, cleared by the next success.
    pub error: Option<String>,
    /// Failed fetches in a row.
    pub failures: u64,
    /// Successful fetches.
    pub fetches: u64,
}

impl App {
    /// A viewer of `target`, nothing fetched yet; `interval` is clamped.
    pub fn new(target: impl Into<String>, interval: Duration) -> App {
        App {
            target: target.into(),
            interval: interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            sort: SortKey::Index,
            paused: false,
            current: None,
            rates: None,
            error: None,
            failures: 0,
            fetches: 0,
        }
    }

    /// Takes the result of a fetch. A failure keeps the last snapshot on screen.
    pub fn on_fetch(&mut self, result: Result<Probes, String>) {
        match result {
            Ok(probes) => {
                self.rates = self
                    .current
                    .as_ref()
                    .and_then(|old| Rates::between(old, &probes));
                self.current = Some(probes);
                self.error = None;
                self.failures = 0;
                self.fetches += 1;
            }
            Err(error) => {
                self.error = Some(error);
                self.failures += 1;
            }
        }
    }

    /// Applies a key's command; `false` means quit.
    pub fn on_command(&mut self, command: Command) -> bool {
        match command {
            Command::Quit => return false,
            Command::Slower => {
                self.interval = (self.interval * 2).clamp(MIN_INTERVAL, MAX_INTERVAL);
            }
            Command::Faster => {
                self.interval = (self.interval / 2).clamp(MIN_INTERVAL, MAX_INTERVAL);
            }
            Command::Sort => self.sort = self.sort.next(),
            Command::Pause => self.paused = !self.paused,
        }
        true
    }

    /// Indices into `current.processors` in the table's order (ties by P index).
    pub fn row_order(&self) -> Vec<usize> {
        let Some(probes) = &self.current else {
            return Vec::new();
        };
        let rates = |i: usize| {
            self.rates
                .as_ref()
                .and_then(|r| r.processors.get(i).copied().flatten())
                .unwrap_or_default()
        };
        let key = |i: usize| -> f64 {
            let p = &probes.processors[i];
            match self.sort {
                SortKey::Index => -(p.index as f64),
                SortKey::Queue => p.queue_depth as f64,
                SortKey::Polls => rates(i).polls,
                SortKey::Steals => rates(i).steals.iter().sum(),
                SortKey::Wait => p.queue_wait_ewma_ns as f64,
            }
        };
        let mut order: Vec<usize> = (0..probes.processors.len()).collect();
        order.sort_by(|&a, &b| {
            key(b)
                .total_cmp(&key(a))
                .then(probes.processors[a].index.cmp(&probes.processors[b].index))
        });
        order
    }
}

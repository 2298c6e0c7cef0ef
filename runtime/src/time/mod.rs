//! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`], with tokio's signatures.
//!
//! Timers live in hierarchical timing wheels (1 ms ticks, `driver/wheel.rs`), one per P: a
//! timer goes into the wheel of the P that creates it (`driver/time.rs`), which fires it at
//! its maintenance turns; the M that parks in the runtime's driver fires every P's due
//! timers (see the runtime's `driver` module for who drives).
//!
//! * A [`Sleep`] registers on its first poll and unregisters when it completes or is dropped
//!   (cancel on drop: nothing is left in the wheel).
//! * Deadlines round up to the next millisecond: a sleep never ends early; it ends about a
//!   millisecond plus scheduling delay after its deadline.
//! * Creating a timer outside a runtime panics with "must be called from the context of a gpm
//!   runtime", as tokio does. After the runtime shuts down, every timer completes at once
//!   instead of hanging.
//! * [`Instant`] is tokio's: `std::time::Instant` read through the runtime's clock, which a
//!   test may [`pause`], [`advance`] and [`resume`] (`Builder::start_paused`,
//!   `#[gpm::test(start_paused = true)]`); a paused clock jumps to the next timer whenever
//!   the runtime is idle (`time/pausable.rs`). Pausing needs a runtime with one worker
//!   thread, as tokio's needs its current-thread runtime.
//!
//! ```
//! use std::time::Duration;
//! let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
//! rt.block_on(async {
//!     let start = gpm::time::Instant::now();
//!     gpm::time::sleep(Duration::from_millis(5)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(5));
//!     let slow = gpm::time::sleep(Duration::from_secs(60));
//!     let result = gpm::time::timeout(Duration::from_millis(1), slow).await;
//!     assert!(result.is_err());
//! });
//! ```

mod instant;
pub(crate) mod pausable;

pub use instant::Instant;

use crate::driver::time::{TimerPoll, TimerShard, Turn};
use crate::driver::wheel::Key;
use crate::task::coop;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

pub use std::time::Duration;

/// About 30 years: what "far in the future" means when a deadline would overflow.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The timer shard of the current runtime for a timer created here: the shard of the P this
/// thread's M holds, or the runtime's extra shard on a thread without one of its Ps.
///
/// Panics outside a runtime at the line of the user's call: the panic is in this
/// `#[track_caller]` body, not in a closure (a closure would report this file).
#[track_caller]
fn current_shard() -> Arc<TimerShard> {
    let shard = crate::rt::context::with_handle(|handle| {
        handle.map(|h| h.shared.driver.time.shard(h.shared.current_processor()))
    });
    let Some(shard) = shard else {
        panic!(
            "there is no timer running: gpm::time must be called from the context of a \
             gpm runtime (a task, Runtime::block_on, or after Runtime::enter)"
        )
    };
    shard
}

/// `duration` from now by the clock of `shard`'s runtime (one read, no second lookup of the
/// runtime).
fn deadline_after(shard: &TimerShard, duration: Duration) -> Instant {
    add_saturating(Instant::from_std(shard.now()), duration)
}

/// `instant + duration`, or a deadline far in the future (never reached) when the sum does
/// not fit in an `Instant` (`sleep(Duration::MAX)`, `interval(Duration::MAX)`).
fn add_saturating(instant: Instant, duration: Duration) -> Instant {
    instant
        .checked_add(duration)
        .unwrap_or_else(|| instant + FAR_FUTURE)
}

/// Waits until `duration` has elapsed, like `tokio::time::sleep`.
///
/// # Panics
/// Outside a gpm runtime context.
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let shard = current_shard();
    let deadline = deadline_after(&shard, duration);
    Sleep::new(shard, deadline)
}

/// Waits until `deadline`, like `tokio::time::sleep_until`.
///
/// # Panics
/// Outside a gpm runtime context.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(current_shard(), deadline)
}

/// The future of [`sleep`] and [`sleep_until`]. Cancelled when dropped.
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    shard: Arc<TimerShard>,
    deadline: Instant,
    key: Option<Key>,
    elapsed: bool,
}

impl Sleep {
    pub(crate) fn new(shard: Arc<TimerShard>, deadline: Instant) -> Sleep {
        Sleep {
            shard,
            deadline,
            key: None,
            elapsed: false,
        }
    }

    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the sleep has completed (it returned `Ready` once).
    pub fn is_elapsed(&self) -> bool {
        self.elapsed
    }

    /// Moves the deadline (the sleep may be pending again afterwards).
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().reset_unpinned(deadline);
    }

    fn reset_unpinned(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.elapsed = false;
        if let Some(key) = self.key {
            if self.shard.reset(key, deadline.into_std()) {
                self.shard.wake_driver();
            }
        }
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.elapsed {
            return Poll::Ready(());
        }
        let spent = ready!(coop::poll_proceed(cx));
        match self
            .shard
            .poll(&mut self.key, self.deadline.into_std(), cx.waker())
        {
            TimerPoll::Fired => {
                spent.made_progress();
                self.elapsed = true;
                Poll::Ready(())
            }
            TimerPoll::Pending { wake_driver } => {
                if wake_driver {
                    self.shard.wake_driver();
                }
                Poll::Pending
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_elapsed(cx)
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shard.remove(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.key.is_some())
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

/// The current runtime's handle, for `gpm::time::{what}`; panics at the user's line
/// outside a runtime.
#[track_caller]
fn current_handle(what: &str) -> crate::rt::Handle {
    match crate::rt::Handle::try_current() {
        Ok(handle) => handle,
        Err(_) => panic!("gpm::time::{what} must be called from the context of a gpm runtime"),
    }
}

/// Stops the current runtime's clock, as `tokio::time::pause` (for tests): [`Instant::now`]
/// stands still, and whenever the runtime is idle (no task to run, no `block_on` running, no
/// blocking closure queued or running) the clock jumps to the next timer instead of
/// waiting for it. See also `Builder::start_paused`.
///
/// # Panics
/// Outside a gpm runtime, if the clock is already paused, or if the runtime has more than
/// one worker thread (tokio: anything but a current-thread runtime): with several Ps, one
/// could start a task while another jumps time.
///
/// ```
/// use gpm::time::{self, Duration, Instant};
/// let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
/// rt.block_on(async {
///     time::pause();
///     let start = Instant::now();
///     time::sleep(Duration::from_secs(3600)).await; // returns at once
///     // Timers have 1 ms ticks: the jump lands on the deadline's tick (as tokio's).
///     let elapsed = start.elapsed();
///     assert!(elapsed >= Duration::from_secs(3600) && elapsed <= Duration::from_millis(3_600_001));
/// });
/// ```
#[track_caller]
pub fn pause() {
    let handle = current_handle("pause");
    let workers = handle.num_workers();
    assert!(
        workers == 1,
        "gpm::time::pause needs a runtime with one worker thread (tokio: a current-thread \
         runtime); this one has {workers}"
    );
    if let Err(e) = handle.shared.driver.time.clock().pause() {
        panic!("gpm::time::pause: {e}");
    }
}

/// Starts the current runtime's clock again from where it stands, as `tokio::time::resume`.
///
/// # Panics
/// Outside a gpm runtime, or if the clock is not paused.
#[track_caller]
pub fn resume() {
    let handle = current_handle("resume");
    let driver = &handle.shared.driver;
    if let Err(e) = driver.time.clock().resume() {
        panic!("gpm::time::resume: {e}");
    }
    // The M in the driver may sleep for ever on a paused clock: it must now wait for real
    // time.
    driver.wake();
}

/// Moves the current runtime's paused clock forward by `duration`, as
/// `tokio::time::advance`: every timer due by then fires (their tasks are woken before this
/// returns), then the caller yields once.
///
/// # Panics
/// Outside a gpm runtime, or if the clock is not paused.
#[track_caller]
pub fn advance(duration: Duration) -> impl Future<Output = ()> {
    let handle = current_handle("advance");
    let driver = &handle.shared.driver;
    if let Err(e) = driver.time.clock().advance(duration) {
        panic!("gpm::time::advance: {e}");
    }
    let mut wake = Vec::new();
    driver.time.fire_due(Turn::Advanced, &mut wake);
    crate::driver::wake_all(wake);
    driver.wake();
    crate::task::yield_now()
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(elapsed: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)
    }
}

/// Runs `future` for at most `duration`, like `tokio::time::timeout`: `Err(Elapsed)` if
/// the time runs out first (the future is then dropped with the `Timeout`).
///
/// # Panics
/// Outside a gpm runtime context.
#[track_caller]
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep(duration),
    }
}

/// Like [`timeout`] with an absolute deadline.
///
/// # Panics
/// Outside a gpm runtime context.
#[track_caller]
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep_until(deadline),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`]: the inner future's output, or [`Elapsed`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// Unwraps the future (its time limit is dropped).
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        // The inner future may have spent the budget; the deadline must still be seen.
        coop::with_unlimited_budget(|| this.sleep.poll_elapsed(cx)).map(|()| Err(Elapsed(())))
    }
}

/// How late a tick must be before it counts as missed (tokio's threshold): up to this late,
/// the next tick stays one period after the late one's schedule, whatever the
/// [`MissedTickBehavior`].
const MISSED_TICK_SLACK: Duration = Duration::from_millis(5);

/// What an [`Interval`] does when ticks were missed: when a tick completes more than 5 ms
/// after its scheduled time (the task ran late), as tokio's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (tokio's default).
    #[default]
    Burst,
    /// Start the period again from the late tick.
    Delay,
    /// Skip the missed ticks; the next tick is the next multiple of the period.
    Skip,
}

impl MissedTickBehavior {
    /// The tick after one scheduled at `scheduled` that completed late, at `now`.
    fn next_tick(self, scheduled: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            MissedTickBehavior::Burst => add_saturating(scheduled, period),
            MissedTickBehavior::Delay => add_saturating(now, period),
            MissedTickBehavior::Skip => {
                let behind = now.saturating_duration_since(scheduled).as_nanos();
                let periods = behind / period.as_nanos() + 1;
                let ahead = u32::try_from(periods)
                    .ok()
                    .and_then(|periods| period.checked_mul(periods))
                    .unwrap_or(Duration::MAX);
                add_saturating(scheduled, ahead)
            }
        }
    }
}

/// Ticks every `period`; the first tick completes at once. Like `tokio::time::interval`.
///
/// # Panics
/// If `period` is zero, or outside a gpm runtime context.
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks at `start`, then every `period`.
///
/// # Panics
/// If `period` is zero, or outside a gpm runtime context.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "gpm::time::interval: `period` must be non-zero"
    );
    Interval {
        sleep: sleep_until(start),
        period,
        missed_tick_behavior: MissedTickBehavior::Burst,
    }
}

/// A stream of ticks, from [`interval`].
#[derive(Debug)]
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed_tick_behavior: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled time.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(self.sleep.poll_elapsed(cx));
        let scheduled = self.sleep.deadline();
        let now = Instant::now();
        let next = if now > add_saturating(scheduled, MISSED_TICK_SLACK) {
            self.missed_tick_behavior
                .next_tick(scheduled, now, self.period)
        } else {
            add_saturating(scheduled, self.period)
        };
        self.sleep.reset_unpinned(next);
        Poll::Ready(scheduled)
    }

    /// Restarts the period from now: the next tick is one period away.
    pub fn reset(&mut self) {
        self.reset_after(self.period);
    }

    /// Makes the next tick complete at once; later ticks follow the period from there.
    pub fn reset_immediately(&mut self) {
        self.reset_at(Instant::now());
    }

    /// Makes the next tick come `after` from now; later ticks follow the period from there.
    pub fn reset_after(&mut self, after: Duration) {
        self.reset_at(add_saturating(Instant::now(), after));
    }

    /// Makes the next tick come at `deadline`; later ticks follow the period from there.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.sleep.reset_unpinned(deadline);
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What happens to missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed_tick_behavior
    }

    /// Chooses what happens to missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed_tick_behavior = behavior;
    }
}

//! The driver: the runtime's timer wheel and I/O reactor, driven by whichever M parks.
//!
//! # Who drives
//!
//! An M whose P has nothing to run parks (`gpm_scheduler::Processor::park`). The scheduler's
//! parker first offers it the driver through the [`ParkDriver`] hook: if no other M is in
//! the driver, this M blocks in `epoll_wait` with a timeout equal to the next timer deadline,
//! then delivers readiness and fires due timers, waking their tasks. A wake-up for its P
//! (new work) reaches it through the `mio::Waker` (an eventfd) instead of a condition
//! variable. Ms that find the driver taken sleep on their condition variable as before.
//!
//! The wakers of the tasks made ready during a parked turn are not woken inside the driver:
//! the P is still borrowed by the park and listed as asleep, so a wake would go to the global
//! queue and wake *another* M, and each event would cross threads. They are kept in a
//! thread-local list instead; the worker's park condition sees the list non-empty, the P
//! leaves its park (as a searcher), and the M wakes them with its P in hand, so they go to
//! its own local queue (`runnext` first) and run on this M; surplus work is stolen by the
//! others as usual. This is what tokio's workers do by keeping their core in the context
//! while parked, and what Go's `findRunnable` does with the goroutines `netpoll` returns.
//!
//! So a task made ready by the parked driver runs on the *driving* P, not necessarily on its
//! last P: the driving P is idle by construction, while the last P may be busy, and sending
//! the task there would cost a cross-thread hand-off (and a wake-up of that P's M if it
//! sleeps). Wakes by busy Ms' maintenance turns go through the ordinary wake path.
//!
//! A busy runtime may have no parked M for a long time, so every M also does a
//! non-blocking turn of the driver (`maintain`) every [`MAINTENANCE_INTERVAL`] polls, as
//! tokio's workers do every `event_interval` ticks: readiness and timers are then served at
//! least that often under load. A single poll that runs for a long time without yielding
//! delays timers and I/O of the whole runtime when it holds the only non-parked M: the same
//! limit as tokio.
//!
//! # Rejected options
//!
//! * **A dedicated I/O thread** (the driver always on its own thread). Each readiness event
//!   would go driver thread -> injector -> wake a parked M -> poll, two cross-thread
//!   hand-offs and a third thread competing for 2 cores. With parking-M driving, the M that
//!   receives the event is often the one that then runs the task. Tokio measured the same
//!   trade-off and chose the parking driver.
//! * **One global timer wheel behind one mutex** (gpm's design until issue 18). One
//!   uncontended lock per timer operation looked cheap, but with every P registering,
//!   cancelling and firing on the same lock and the same cache lines, a timeout-per-request
//!   workload (50k tasks on 2 cores) spent a quarter of its CPU in the contended lock and a
//!   tenth in the `Arc<Driver>` count every `Sleep` cloned. Timers are now sharded per P
//!   (`time.rs`), as Go's are.
//! * **Owner-only wheels without locks** (tokio's experimental per-worker timers). Local
//!   operations then need no atomics at all, but a timer polled, reset or cancelled from
//!   another thread must go through a queue to its owner, the fired state must live in a
//!   per-timer allocation both sides can read, and an idle worker must wake for its own
//!   wheel. A mutex per P costs two uncontended atomic operations per timer operation and
//!   keeps every path synchronous.
//! * **A binary heap of deadlines** instead of a wheel: O(log n) insert and no O(1)
//!   cancellation without extra indices; the wheel gives O(1) for both and 1 ms resolution is
//!   what services need.

#[cfg(not(gpm_loom))]
pub(crate) mod io;
pub(crate) mod scheduled_io;
pub(crate) mod sleep_gate;
#[cfg(not(gpm_loom))]
pub(crate) mod time;
#[cfg(not(gpm_loom))]
pub(crate) mod wheel;

#[cfg(not(gpm_loom))]
mod parked;
#[cfg(not(gpm_loom))]
pub(crate) use parked::*;

#[cfg(not(gpm_loom))]
pub(crate) use both::*;

/// The driver itself: the timer shards and the reactor of one runtime together, and its
/// non-blocking turn (its parked turn is `parked.rs`).
#[cfg(not(gpm_loom))]
mod both {
    use super::{io, time, wake_all};
    use std::sync::Arc;
    use std::time::Duration;

    /// Polls between two non-blocking turns of the driver by a busy M.
    pub(crate) const MAINTENANCE_INTERVAL: u32 = 61;

    /// Timers and I/O of one runtime.
    pub(crate) struct Driver {
        pub(crate) time: time::TimeDriver,
        pub(crate) io: Arc<io::Reactor>,
    }

    impl Driver {
        /// The driver of a runtime with `processors` Ps (one timer shard each), its clock paused
        /// from the start if `start_paused`.
        pub(crate) fn new(processors: usize, start_paused: bool) -> std::io::Result<Driver> {
            let io = Arc::new(io::Reactor::new()?);
            Ok(Driver {
                time: time::TimeDriver::new(processors, Arc::clone(&io), start_paused),
                io,
            })
        }

        /// A non-blocking turn by the M of P `home`: delivers ready I/O (if no M is in the
        /// driver) and fires due timers (all of `home`'s shard, the others' if free).
        pub(crate) fn maintain(&self, home: Option<usize>) {
            let mut wake = Vec::new();
            if let Some(mut poller) = self.io.try_lock_poller() {
                self.io.poll(&mut poller, Some(Duration::ZERO), &mut wake);
            }
            self.time
                .fire_due(time::Turn::Maintenance { home }, &mut wake);
            wake_all(wake);
        }

        /// Fails pending I/O, fires every timer.
        pub(crate) fn shutdown(&self) {
            self.io.shutdown();
            self.time.shutdown();
        }

        /// Wakes the M sleeping in the driver, if any (sticky).
        pub(crate) fn wake(&self) {
            self.io.wake();
        }
    }

    impl std::fmt::Debug for Driver {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Driver")
                .field("io", &self.io)
                .field("timers", &self.time.live_timers())
                .finish()
        }
    }
}

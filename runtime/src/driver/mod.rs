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
//! * **Per-P timer wheels.** They avoid a shared lock, but a timer is cancelled from wherever
//!   its future is dropped (often another P after a steal), the parking M must know the
//!   earliest deadline over all wheels, and an idle P's wheel must still be fired by someone:
//!   each of these needs cross-P synchronisation anyway. A single wheel behind one mutex
//!   costs one uncontended lock per timer operation (tens of nanoseconds); with at most a
//!   few Ps contending (this project's machines have 2 cores) the lock is not a bottleneck.
//!   Tokio went to sharded wheels only at high core counts. Revisit with a measurement if
//!   gpm runs on many cores.
//! * **A binary heap of deadlines** instead of a wheel: O(log n) insert and no O(1)
//!   cancellation without extra indices; the wheel gives O(1) for both and 1 ms resolution is
//!   what services need.

#[cfg(not(gpm_loom))]
mod due;
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

//! Stop-the-world, the runtime's side: the types a stop's closure and report show
//! ([`StoppedWorld`], [`StwReport`]) and the glue to `gpm_scheduler::stw::World`.
//!
//! The protocol (request, safepoints, idle Ps counted as stopped, the requester's own P) is
//! the scheduler's (`gpm_scheduler::stw`); each M reaches its safepoint in
//! `ProbeState::safepoint`, once per scheduling round. A stop asked for from inside the
//! `inspect` closure of a stop of the same runtime would wait for itself: a thread-local list
//! of the worlds this thread inspects turns that into a panic.

use crate::rt::shared::Shared;
use gpm_scheduler::stw::{PStop, StopKind, StopReport};
use gpm_scheduler::Local;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// One P's queues as its holder saw them when it stopped for the world.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueSnapshot {
    /// Tasks in the local FIFO.
    pub queued: usize,
    /// Whether `runnext` held a task.
    pub runnext: bool,
    /// Tasks that yielded and wait behind the injector.
    pub deferred: usize,
}

impl QueueSnapshot {
    /// What the holder of a P sees in its queues.
    pub(super) fn of<T>(local: &Local<T>) -> QueueSnapshot {
        QueueSnapshot {
            queued: local.queue_len(),
            runnext: local.has_runnext(),
            deferred: local.deferred_len(),
        }
    }

    pub(super) fn total(&self) -> usize {
        self.queued + usize::from(self.runnext) + self.deferred
    }
}

/// What a stop-the-world closure sees: every P's queues, taken while no P runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoppedWorld {
    /// Per P: its queues (all empty for a P that was idle).
    pub processors: Vec<QueueSnapshot>,
    /// Tasks in the global queue.
    pub injector_depth: usize,
    /// Tasks spawned and not yet completed.
    pub tasks_alive: usize,
}

impl StoppedWorld {
    /// Runnable tasks anywhere (local queues, `runnext`, deferred, injector).
    pub fn runnable(&self) -> usize {
        self.processors
            .iter()
            .map(QueueSnapshot::total)
            .sum::<usize>()
            + self.injector_depth
    }
}

/// What a stop-the-world cost (Go's `/sched/pauses` figures).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StwReport {
    /// Per P: how it stopped and its time to safepoint.
    pub processors: Vec<(StopKind, Duration)>,
    /// From the request until every P had stopped.
    pub time_to_stop: Duration,
    /// From the request until the world resumed.
    pub pause: Duration,
    /// The P that reached its safepoint last (the one a long poll held up), if any ran.
    pub late: Option<usize>,
}

/// Stops the world; see [`Handle::stop_the_world`](crate::rt::Handle::stop_the_world).
/// Called from a task, the task's own P is the requester: it counts as stopped, and
/// publishes its queues as this thread reads them (nothing else runs them meanwhile).
///
/// # Panics
/// Called from inside `inspect` of a stop of this same runtime: that stop cannot end
/// before the call returns, so it would wait for itself for ever.
#[track_caller]
pub(crate) fn stop_the_world<R>(
    shared: &Arc<Shared>,
    inspect: impl FnOnce(&StoppedWorld) -> R,
) -> (R, StwReport) {
    let world_id = Arc::as_ptr(shared) as usize;
    if INSPECTING.with(|worlds| worlds.borrow().contains(&world_id)) {
        panic!(
            "stop_the_world called from inside the inspect closure of a stop of the same \
             runtime: the world is already stopped, and this call would wait for itself"
        );
    }
    let inspect = |stops: &[PStop<QueueSnapshot>]| {
        let world = StoppedWorld {
            processors: stops.iter().map(|s| s.snapshot).collect(),
            injector_depth: shared.scheduler.injector().len(),
            tasks_alive: shared.owned.len(),
        };
        let _inspecting = Inspecting::enter(world_id);
        inspect(&world)
    };
    let world = &shared.probes.world;
    let (result, report) = match shared.current_processor() {
        Some(p) => world.stop_on(p, || current_queue_snapshot(shared), inspect),
        None => world.stop(inspect),
    };
    (result, stw_report(report))
}

/// The queues of the P this thread holds (empty if it holds none).
fn current_queue_snapshot(shared: &Arc<Shared>) -> QueueSnapshot {
    shared
        .with_current_processor(|processor| QueueSnapshot::of(processor.local()))
        .unwrap_or_default()
}

thread_local! {
    /// The runtimes (their `Shared`'s address) whose stopped world this thread inspects.
    static INSPECTING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks this thread as inside `inspect` of a stop of one runtime, until dropped.
struct Inspecting(usize);

impl Inspecting {
    fn enter(world_id: usize) -> Inspecting {
        INSPECTING.with(|worlds| worlds.borrow_mut().push(world_id));
        Inspecting(world_id)
    }
}

impl Drop for Inspecting {
    fn drop(&mut self) {
        let _ = INSPECTING.try_with(|worlds| {
            let mut worlds = worlds.borrow_mut();
            if let Some(at) = worlds.iter().rposition(|&id| id == self.0) {
                worlds.remove(at);
            }
        });
    }
}

fn stw_report(report: StopReport) -> StwReport {
    StwReport {
        processors: report.processors,
        time_to_stop: report.time_to_stop,
        pause: report.pause,
        late: report.late,
    }
}

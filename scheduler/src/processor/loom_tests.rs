//! Loom models of the last-P inbox protocol (module docs of [`super`], "Last P"), run on
//! the real code: [`Scheduler::push_to_processor`] and [`Scheduler::push_remote`] on the
//! pushing side, [`Processor::next_task`], [`Processor::steal_work`],
//! [`Processor::transition_from_searching`] and [`Processor::park`] on the P's side, with
//! the real [`Idle`], [`crate::park::Parker`] and inbox ([`Injector`], whose queue is
//! loom-visible under `--cfg gpm_loom`: see [`crate::inject`], "Under loom"). Run them with
//! `scripts/loom.sh`.
//!
//! Each model is two threads: a foreign thread pushing one task the way the runtime's
//! `Shared::push_off_processor` does (the P's inbox while the P is awake, else the
//! injector), and an M running the worker's loop (`find_task` then `park` in
//! `runtime/src/rt/worker.rs`) until it finds the task. The park has no timeout and,
//! unless the first model ends it (see there), its `should_wake` is false (no shutdown),
//! so only a wake-up ends it: a lost wake-up leaves the M parked for ever, which loom
//! reports as a deadlock.
//!
//! * [`an_inbox_push_racing_the_park_of_a_non_searching_p_wakes_it`]: the `asleep`
//!   handshake alone. P1 is counted as searching throughout, so P0 parks without
//!   searching (no last searcher's re-check) and `notify_parked` wakes nobody, while a
//!   task is pushed to P0's inbox. It is a store-buffer pair: P0 stores `asleep = true`,
//!   executes a `SeqCst` fence (`Processor::park`) and reads its inbox's count; the pusher
//!   increments that count, executes a `SeqCst` fence (in `Injector::push`, and again in
//!   `push_to_processor`) and reads `asleep`. Without the fences loom may let each side
//!   read the other's old value (it models `SeqCst` accesses as acquire/release; only the
//!   fences order a store before a later load): P0 sees an empty inbox, the pusher sees an
//!   awake P0, and P0 sleeps with the task in its inbox.
//! * [`an_inbox_push_racing_park_is_found`]: the same race as the worker really runs it,
//!   P1 busy in a poll: P0 finds nothing, becomes a searcher in `steal_work`, and parks
//!   as the last searcher, so besides the `asleep` handshake the idle protocol's applies
//!   (the pusher's `notify_parked` against P0's announcement of its sleep and
//!   `recheck_after_announcing_sleep`, which covers the inboxes and the injector). A
//!   pusher that saw `asleep` first takes the injector path, also covered.
//! * [`an_inbox_push_to_a_busy_p_wakes_an_idle_p`]: P0 is inside a long poll (awake, it
//!   never looks at its inbox; its `Processor` is untouched); P1 finds nothing, searches
//!   and parks. A task pushed to P0's inbox can only run on P1, through `steal_work`. The
//!   handshake is the idle protocol's: the pusher's `notify_parked` (fence, then the idle
//!   state) against P1's announcement of its sleep (a read-modify-write of the idle state)
//!   followed by `recheck_after_announcing_sleep` (fence, then every queue, inboxes
//!   included). Without the fences both may read the old value: the pusher sees P1 still
//!   searching and wakes nobody, P1's re-check sees an empty inbox and sleeps.
//!
//! Checked by hand on 2026-11-30 (`LOOM_MAX_PREEMPTIONS=2`), commenting out fences one at a
//! time: loom reports the deadlock in the first model without `Processor::park`'s fence,
//! or without both pusher fences (`Injector::push`'s and `push_to_processor`'s: either
//! one suffices, the second is redundant after the first); in the second and third models
//! without `recheck_after_announcing_sleep`'s fence, or without all three pusher fences
//! (`notify_parked`'s is the third). The second model alone passes without `park`'s fence,
//! since the last searcher's re-check covers the inbox too: that is why the first model
//! exists.
//!
//! The negative checks (`without_a_wake_...`, one per model) keep the models honest: a
//! pusher that queues the task in the inbox and wakes nobody (the protocol's wake-up steps
//! left out, no other change) must make loom find the deadlock, so the models do reach the
//! window between a P's last look at the queues and its sleep. Variants that keep the
//! wake-ups and drop only fences would need test-only switches in the production code;
//! the hand check above stands for them.
//!
//! What loom does not see: the local queues (crossbeam's `Worker`/`Stealer`, std
//! atomics). The models do not depend on them: every FIFO stays empty, so `next_task`'s
//! pop and the thief's `steal_half_into` find nothing, without any other thread touching
//! those queues. The steal counters (model 2 counts events) are plain loads and stores by
//! their one writer.

use super::*;
use crate::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;

/// The task the foreign thread pushes.
const TASK: u32 = 7;

/// Two Ps with the default fairness interval; `count_events` as asked.
fn two_ps(count_events: bool) -> (Arc<Scheduler<u32>>, Vec<Processor<u32>>) {
    let (scheduler, processors) = Scheduler::new(Config {
        processors: 2,
        global_queue_interval: DEFAULT_GLOBAL_QUEUE_INTERVAL,
        count_events,
    });
    (Arc::new(scheduler), processors)
}

/// A wake-up from a foreign thread of a task that last ran on P `index`
/// (`Shared::push_off_processor`): its inbox while it is awake, else the injector.
fn push_off_processor(scheduler: &Scheduler<u32>, index: usize, task: u32) {
    if let Err(task) = scheduler.push_to_processor(index, task) {
        scheduler.push_remote(task);
    }
}

/// The negative checks' pusher: the task lands in P `index`'s inbox and nobody is woken.
fn push_without_waking(scheduler: &Scheduler<u32>, index: usize, task: u32) {
    scheduler.remotes[index].inbox.push(task);
}

/// The worker's `find_task`: the P's own queues, else stealing; a task found ends the
/// search.
fn find_task(processor: &mut Processor<u32>, scheduler: &Scheduler<u32>) -> Option<u32> {
    let task = processor
        .next_task(scheduler)
        .or_else(|| processor.steal_work(scheduler))?;
    processor.transition_from_searching(scheduler);
    Some(task)
}

/// The worker's loop until it has a task: find one, else park until woken.
fn run_until_task(processor: &mut Processor<u32>, scheduler: &Scheduler<u32>) -> u32 {
    loop {
        if let Some(task) = find_task(processor, scheduler) {
            return task;
        }
        processor.park(scheduler, None, || false);
    }
}

/// Runs `processor` until it has a task while another thread calls `push` for P0, and
/// checks it got that task.
fn take_the_task_pushed_to_p0(
    scheduler: &Arc<Scheduler<u32>>,
    processor: &mut Processor<u32>,
    push: fn(&Scheduler<u32>, usize, u32),
) {
    let pusher = {
        let scheduler = Arc::clone(scheduler);
        thread::spawn(move || push(&scheduler, 0, TASK))
    };
    let task = run_until_task(processor, scheduler);
    pusher.join().unwrap();
    assert_eq!(task, TASK);
}

/// P0 looks for work and parks while `push` pushes a task that last ran on P0; P1 is busy
/// in a poll throughout. P0 must end up with the task.
fn push_racing_park(push: fn(&Scheduler<u32>, usize, u32)) {
    loom::model(move || {
        let (scheduler, mut processors) = two_ps(false);
        take_the_task_pushed_to_p0(&scheduler, &mut processors[0], push);
        assert!(scheduler.injector().is_empty());
        assert!(scheduler.remotes[0].inbox.is_empty());
        assert!(!processors[0].is_searching());
    });
}

#[test]
fn an_inbox_push_racing_park_is_found() {
    push_racing_park(push_off_processor);
}

/// The negative check of the model above (module docs).
#[test]
#[should_panic(expected = "deadlock")]
fn without_a_wake_an_inbox_push_racing_park_is_lost() {
    push_racing_park(push_without_waking);
}

/// P1 is a searcher that makes no progress in the model (say, preempted between two
/// victims): counted as searching throughout, so P0 cannot become a searcher (at most one
/// of two Ps), parks without the last searcher's re-check, and `notify_parked` wakes
/// nobody. `push` pushes a task that last ran on P0, racing P0's sleep; only the `asleep`
/// handshake brings P0 back for it. A push that saw P0 asleep first gives the task back
/// for the injector, where P1 would find it: the idle protocol's part, outside this model,
/// which then only ends P0's park (the `should_wake` flag and a token, as at shutdown).
fn push_racing_the_park_of_a_non_searching_p(
    push: fn(&Scheduler<u32>, usize, u32) -> Result<(), u32>,
) {
    loom::model(move || {
        let (scheduler, mut processors) = two_ps(false);
        assert_eq!(processors[1].steal_work(&scheduler), None);
        assert!(processors[1].is_searching());
        let handed_off = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (scheduler, handed_off) = (Arc::clone(&scheduler), Arc::clone(&handed_off));
            thread::spawn(move || {
                let pushed = push(&scheduler, 0, TASK);
                if pushed.is_err() {
                    handed_off.store(true, Ordering::SeqCst);
                    scheduler.unpark(0);
                }
                pushed
            })
        };
        let p0 = &mut processors[0];
        let found = loop {
            if let Some(task) = find_task(p0, &scheduler) {
                break Some(task);
            }
            if handed_off.load(Ordering::SeqCst) {
                break None;
            }
            p0.park(&scheduler, None, || handed_off.load(Ordering::SeqCst));
        };
        match pusher.join().unwrap() {
            Ok(()) => assert_eq!(found, Some(TASK)),
            Err(task) => assert_eq!((found, task), (None, TASK)),
        }
        assert!(scheduler.remotes[0].inbox.is_empty());
    });
}

#[test]
fn an_inbox_push_racing_the_park_of_a_non_searching_p_wakes_it() {
    push_racing_the_park_of_a_non_searching_p(|scheduler, index, task| {
        scheduler.push_to_processor(index, task)
    });
}

/// The negative check of the model above (module docs).
#[test]
#[should_panic(expected = "deadlock")]
fn without_a_wake_an_inbox_push_racing_the_park_of_a_non_searching_p_is_lost() {
    push_racing_the_park_of_a_non_searching_p(|scheduler, index, task| {
        push_without_waking(scheduler, index, task);
        Ok(())
    });
}

/// P0 is in a long poll (awake, never looks at its inbox); P1 looks for work, searches and
/// parks while `push` pushes a task to P0's inbox. P1 must be woken and steal the task.
fn push_to_a_busy_p(push: fn(&Scheduler<u32>, usize, u32)) {
    loom::model(move || {
        let (scheduler, mut processors) = two_ps(true);
        take_the_task_pushed_to_p0(&scheduler, &mut processors[1], push);
        // P0 stayed awake, so the task went to its inbox, and only a steal reaches that.
        let stats = scheduler.steal_stats();
        assert_eq!(stats.processors[1].tasks_stolen.total(), 1);
        assert!(scheduler.remotes[0].inbox.is_empty());
        assert_eq!(scheduler.idle().num_parked(), 0);
    });
}

#[test]
fn an_inbox_push_to_a_busy_p_wakes_an_idle_p() {
    push_to_a_busy_p(push_off_processor);
}

/// The negative check of the model above (module docs).
#[test]
#[should_panic(expected = "deadlock")]
fn without_a_wake_an_inbox_push_to_a_busy_p_is_lost() {
    push_to_a_busy_p(push_without_waking);
}

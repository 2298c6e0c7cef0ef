//! Loom models of the task state machine (run with `RUSTFLAGS="--cfg gpm_loom"`).
//!
//! A model scheduler stands in for the Ps: `schedule` pushes to a queue that the test drains
//! on its main thread. Each model races one protocol step against another thread and then
//! checks the invariants that matter: the future is polled and dropped exactly once as the
//! story requires, a task is never queued twice, join wakers are never lost.

use super::list::OwnedTasks;
use super::{new_task, Id, JoinHandle, Notified, Schedule, Task};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The model scheduler: a queue the test drains, and the owned-task list. With
/// `to_runner`, a task woken during its poll comes back to the runner, which queues it, as
/// the runtime's Ms do (the poll's reference becomes the notification's:
/// `state::PollRef::Transfer`); without, the harness queues it through `yield_now`.
struct Model {
    queue: Mutex<Vec<Notified<Arc<Model>>>>,
    owned: OwnedTasks<Arc<Model>>,
    max_queued: AtomicUsize,
    to_runner: bool,
}

impl Schedule for Arc<Model> {
    fn schedule(&self, task: Notified<Self>) {
        let mut queue = self.queue.lock().unwrap();
        queue.push(task);
        if queue.len() > self.max_queued.load(Ordering::Relaxed) {
            self.max_queued.store(queue.len(), Ordering::Relaxed);
        }
    }

    fn release(&self, task: &Task<Self>, _: super::CompletedIn) -> Option<Task<Self>> {
        self.owned.remove(task)
    }

    fn yields_to_runner(&self) -> bool {
        self.to_runner
    }
}

impl Model {
    fn new() -> Arc<Model> {
        Model::with_yields_to_runner(false)
    }

    fn with_yields_to_runner(to_runner: bool) -> Arc<Model> {
        Arc::new(Model {
            queue: Mutex::new(Vec::new()),
            owned: OwnedTasks::new(1),
            max_queued: AtomicUsize::new(0),
            to_runner,
        })
    }
}

fn spawn<F>(model: &Arc<Model>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, notified, join) = new_task(future, Arc::clone(model), Id::next());
    model.owned.bind(task).expect("model list is never closed");
    model.schedule(notified);
    join
}

impl Model {
    /// Runs queued notifications until none is left.
    fn run_until_idle(&self) {
        loop {
            let next = self.queue.lock().unwrap().pop();
            match next {
                Some(task) => match task.run() {
                    super::Ran::Yielded(task) => {
                        assert!(self.to_runner, "only a runner that asked gets it back");
                        self.schedule_as_runner(task);
                    }
                    super::Ran::Idle | super::Ran::Completed => {}
                },
                None => return,
            }
        }
    }

    /// Queues a task handed back by its poll, as the runtime's M does.
    fn schedule_as_runner(&self, task: Notified<Arc<Model>>) {
        let mut queue = self.queue.lock().unwrap();
        queue.push(task);
        if queue.len() > self.max_queued.load(Ordering::Relaxed) {
            self.max_queued.store(queue.len(), Ordering::Relaxed);
        }
    }

    /// Runs queued notifications while `other` runs, then, once it has finished, what it
    /// left queued.
    fn run_racing(&self, other: thread::JoinHandle<()>) {
        self.run_until_idle();
        other.join().unwrap();
        self.run_until_idle();
    }

    /// Cancels what is left, as runtime shutdown does, so the model leaks nothing.
    fn shutdown(&self) {
        self.owned
            .close_and_take_all()
            .into_iter()
            .for_each(Task::shutdown);
        drop(std::mem::take(&mut *self.queue.lock().unwrap()));
    }
}

/// Counts drops, so "dropped exactly once" can be asserted.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How often a model future was polled and dropped.
struct Counts {
    polls: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            polls: Arc::new(AtomicUsize::new(0)),
            drops: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The guard a future holds so that its drop is counted.
    fn drop_guard(&self) -> DropCount {
        DropCount(Arc::clone(&self.drops))
    }

    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
}

/// Pending on the first poll (after publishing its waker), ready on the second.
struct TwoPolls {
    polls: Arc<AtomicUsize>,
    waker_slot: Arc<Mutex<Option<Waker>>>,
    _guard: DropCount,
}

impl Future for TwoPolls {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let polls = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if polls == 1 {
            *self.waker_slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(polls)
        }
    }
}

/// Spawns a [`TwoPolls`] on `model`: its join handle, its counts and the slot where it
/// publishes its waker.
fn spawn_two_polls(model: &Arc<Model>) -> (JoinHandle<usize>, Counts, Arc<Mutex<Option<Waker>>>) {
    let counts = Counts::new();
    let waker_slot = Arc::new(Mutex::new(None));
    let future = TwoPolls {
        polls: Arc::clone(&counts.polls),
        waker_slot: Arc::clone(&waker_slot),
        _guard: counts.drop_guard(),
    };
    (spawn(model, future), counts, waker_slot)
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// A wake from another thread, racing the first poll: the task is rescheduled exactly once
/// (never two queue entries), polled exactly twice, and its future dropped exactly once;
/// whether the harness or the runner queues a task woken during its poll.
#[test]
fn wake_racing_poll_reschedules_once() {
    for to_runner in [false, true] {
        loom::model(move || wake_racing_poll(Model::with_yields_to_runner(to_runner)));
    }
}

fn wake_racing_poll(model: Arc<Model>) {
    let (join, counts, waker_slot) = spawn_two_polls(&model);
    model.run_racing(thread::spawn(move || loop {
        let waker = waker_slot.lock().unwrap().take();
        match waker {
            Some(waker) => break waker.wake(),
            None => thread::yield_now(),
        }
    }));

    assert_eq!(counts.polls(), 2);
    assert_eq!(counts.drops(), 1);
    assert!(model.max_queued.load(Ordering::Relaxed) <= 1);
    assert!(join.is_finished());
    let mut join = join;
    match poll_once(&mut join, Waker::noop()) {
        Poll::Ready(Ok(2)) => {}
        other => panic!("unexpected join result {other:?}"),
    }
    drop(join);
    model.shutdown();
}

/// Never completes on its own.
struct Forever {
    polls: Arc<AtomicUsize>,
    _guard: DropCount,
}

impl Future for Forever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Pending
    }
}

/// `abort` from another thread racing the poll (before, during or after it): the task ends
/// cancelled, its future is dropped exactly once, and it is polled at most once; whether
/// the harness or the runner queues a task woken during its poll.
#[test]
fn abort_racing_poll_cancels_once() {
    for to_runner in [false, true] {
        loom::model(move || abort_racing_poll(Model::with_yields_to_runner(to_runner)));
    }
}

fn abort_racing_poll(model: Arc<Model>) {
    let counts = Counts::new();
    let join = Arc::new(spawn(
        &model,
        Forever {
            polls: Arc::clone(&counts.polls),
            _guard: counts.drop_guard(),
        },
    ));

    let remote = Arc::clone(&join);
    model.run_racing(thread::spawn(move || remote.abort()));

    assert_eq!(counts.drops(), 1);
    assert!(counts.polls() <= 1);
    let mut join = Arc::try_unwrap(join).expect("aborter is gone");
    match poll_once(&mut join, Waker::noop()) {
        Poll::Ready(Err(error)) => assert!(error.is_cancelled()),
        other => panic!("expected cancellation, got {other:?}"),
    }
    drop(join);
    model.shutdown();
}

/// Counts wake-ups of the join waker.
struct CountingWaker(Arc<AtomicUsize>);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The join handle registers its waker while another thread completes the task: either the
/// first poll sees the output, or the waker is woken and the next poll sees it.
#[test]
fn join_waker_registration_racing_completion() {
    loom::model(|| {
        let model = Model::new();
        let mut join = spawn(&model, async { 7usize });
        let runner_model = Arc::clone(&model);
        let runner = thread::spawn(move || runner_model.run_until_idle());

        let wakes = Arc::new(AtomicUsize::new(0));
        let waker = Waker::from(std::sync::Arc::new(CountingWaker(Arc::clone(&wakes))));
        let first = poll_once(&mut join, &waker);
        runner.join().unwrap();
        match first {
            Poll::Ready(Ok(7)) => {}
            Poll::Pending => {
                assert_eq!(wakes.load(Ordering::SeqCst), 1, "join waker lost");
                match poll_once(&mut join, &waker) {
                    Poll::Ready(Ok(7)) => {}
                    other => panic!("unexpected second poll {other:?}"),
                }
            }
            other => panic!("unexpected first poll {other:?}"),
        }
        drop(join);
        model.shutdown();
    });
}

/// The join handle is dropped while another thread completes the task: the output is
/// dropped exactly once, by one side or the other.
#[test]
fn join_handle_drop_racing_completion_drops_output_once() {
    loom::model(|| {
        let model = Model::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let output = DropCount(Arc::clone(&drops));
        let join = spawn(&model, async move { output });
        let runner_model = Arc::clone(&model);
        let runner = thread::spawn(move || runner_model.run_until_idle());
        drop(join);
        runner.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        model.shutdown();
    });
}

/// Shutdown racing a wake from another thread: the future is dropped exactly once and
/// nothing is left queued that could run it again.
#[test]
fn shutdown_racing_wake_drops_future_once() {
    loom::model(|| {
        let model = Model::new();
        let (join, counts, waker_slot) = spawn_two_polls(&model);
        model.run_until_idle();
        let waker = waker_slot.lock().unwrap().take().expect("first poll ran");
        let waker_thread = thread::spawn(move || waker.wake());
        model.shutdown();
        waker_thread.join().unwrap();
        model.run_until_idle();
        assert_eq!(counts.drops(), 1);
        assert_eq!(counts.polls(), 1);
        drop(join);
        model.shutdown();
    });
}

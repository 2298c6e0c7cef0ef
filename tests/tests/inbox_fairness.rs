//! A task woken from a foreign thread goes to its last P's inbox; it must run within a few
//! scheduling rounds whatever that P does: while the P is kept busy by short polls (the
//! fairness tick drains the inbox) and while it is stuck in one long poll (an idle P is
//! woken and takes the task). Each test asserts the order of events, never a duration: the
//! woken task must run while the load is still running, and the load only ends once the
//! task has run or a generous cap has passed.

use futures::channel::mpsc as async_mpsc;
use futures::StreamExt;
use gpm_tests::watchdog;
use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// How long the load runs at most when the woken task does not show up (the bug: it waited
/// for the load to end). Far above the few scheduling rounds the task may wait.
const LOAD_CAP: Duration = Duration::from_secs(10);
/// How long a step of the set-up may take before the test declares it hung.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// Ping-pong pairs of the load: more than one per P, so every P holds some.
const LOAD_PAIRS: usize = 8;
/// Load rounds each worker thread makes before the foreign wake: then every P runs pairs.
const WARM_ROUNDS_PER_THREAD: usize = 5_000;

thread_local! {
    /// Load rounds made on this thread (each worker thread belongs to one P here).
    static LOAD_ROUNDS: Cell<usize> = const { Cell::new(0) };
}

fn runtime(workers: usize) -> gpm::Runtime {
    gpm::Runtime::builder()
        .worker_threads(workers)
        .last_p_wakeups(true)
        .build()
        .expect("could not build the runtime")
}

/// A task's side of a foreign wake: it parks its waker here, a foreign thread wakes it.
#[derive(Default)]
struct ForeignWake {
    waker: Mutex<Option<Waker>>,
    woken: AtomicBool,
}

impl ForeignWake {
    /// Called by the foreign thread: marks the task woken, then wakes it.
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap().take();
        waker.expect("the task has not registered its waker").wake();
    }

    /// Pending until [`ForeignWake::wake`]; `registered` hears of the first poll.
    fn wait(self: Arc<Self>, registered: Sender<()>) -> WaitForeign {
        WaitForeign {
            wake: self,
            registered: Some(registered),
        }
    }
}

struct WaitForeign {
    wake: Arc<ForeignWake>,
    registered: Option<Sender<()>>,
}

impl Future for WaitForeign {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.wake.woken.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.wake.waker.lock().unwrap() = Some(cx.waker().clone());
        if let Some(registered) = self.registered.take() {
            let _ = registered.send(());
        }
        Poll::Pending
    }
}

/// A ping-pong pair: two tasks waking each other through `runnext` (short polls, and the
/// P's local queue never runs dry) until `stop`. The pinger counts its rounds per thread and
/// tells `warm` when a thread reaches [`WARM_ROUNDS_PER_THREAD`].
async fn ping_pong(stop: Arc<AtomicBool>, warm: Sender<ThreadId>) {
    let (to_pong, mut pong_rx) = async_mpsc::unbounded::<()>();
    let (to_ping, mut ping_rx) = async_mpsc::unbounded::<()>();
    let pong = gpm::spawn(async move {
        while pong_rx.next().await.is_some() {
            if to_ping.unbounded_send(()).is_err() {
                break;
            }
        }
    });
    while !stop.load(Ordering::Relaxed) {
        to_pong.unbounded_send(()).unwrap();
        ping_rx.next().await.unwrap();
        let rounds = LOAD_ROUNDS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        if rounds == WARM_ROUNDS_PER_THREAD {
            let _ = warm.send(thread::current().id());
        }
    }
    drop(to_pong);
    pong.await.unwrap();
}

/// The load: [`LOAD_PAIRS`] ping-pong pairs, running until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    pairs: Vec<gpm::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the load and returns once it runs on every worker thread of `rt`.
    fn start(rt: &gpm::Runtime) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (warm_tx, warm_rx) = mpsc::channel();
        let pairs = (0..LOAD_PAIRS)
            .map(|_| rt.spawn(ping_pong(stop.clone(), warm_tx.clone())))
            .collect();
        let mut warm_threads = HashSet::new();
        while warm_threads.len() < rt.handle().num_workers() {
            let thread = warm_rx
                .recv_timeout(STEP_TIMEOUT)
                .expect("the load did not spread to every P");
            warm_threads.insert(thread);
        }
        Load { stop, pairs }
    }

    fn stop(self, rt: &gpm::Runtime) {
        self.stop.store(true, Ordering::SeqCst);
        rt.block_on(async {
            for pair in self.pairs {
                pair.await.unwrap();
            }
        });
    }
}

/// Waits for the woken task's report: within [`LOAD_CAP`] while the load runs, or (the bug)
/// only after `end_load` has ended it, which fails the test.
fn expect_run_during_load<T>(
    ran: &Receiver<T>,
    what: &str,
    woken_at: Instant,
    end_load: impl FnOnce(),
) -> T {
    match ran.recv_timeout(LOAD_CAP) {
        Ok(report) => {
            eprintln!(
                "{what}: woken task first polled {:?} after the wake",
                woken_at.elapsed()
            );
            end_load();
            report
        }
        Err(RecvTimeoutError::Timeout) => {
            end_load();
            let late = ran.recv_timeout(STEP_TIMEOUT).is_ok();
            panic!(
                "{what}: the task woken from a foreign thread did not run during the \
                 {LOAD_CAP:?} of load (run after the load ended: {late}): its inbox starved"
            );
        }
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the woken task died"),
    }
}

/// Waits (yielding, under a deadline: a state, not a duration) until `count` Ps sleep.
fn wait_until_parked(rt: &gpm::Runtime, count: usize) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while rt.handle().probes().parked < count {
        assert!(
            Instant::now() < deadline,
            "{count} P(s) never went to sleep"
        );
        thread::yield_now();
    }
}

/// With every P busy with short polls (ping-pong pairs, so `runnext` and the local queue
/// never run dry), a task woken from a foreign thread into its last P's inbox runs while
/// the load is still running: the fairness tick drains the inbox as it drains the injector.
#[test]
fn inbox_task_runs_while_its_processor_is_busy_with_short_polls() {
    watchdog("inbox-busy-short-polls", || {
        for workers in [2, 1] {
            let rt = runtime(workers);
            let wake = Arc::new(ForeignWake::default());
            let (registered_tx, registered_rx) = mpsc::channel();
            let (ran_tx, ran_rx) = mpsc::channel::<()>();
            let target = rt.spawn({
                let wake = Arc::clone(&wake);
                async move {
                    wake.wait(registered_tx).await;
                    ran_tx.send(()).unwrap();
                }
            });
            registered_rx
                .recv_timeout(STEP_TIMEOUT)
                .expect("the task was not polled");
            let load = Load::start(&rt);
            // The test thread is foreign: the wake goes to the task's last P, which is busy.
            let woken_at = Instant::now();
            wake.wake();
            let what = format!("{workers} workers");
            expect_run_during_load(&ran_rx, &what, woken_at, || load.stop(&rt));
            rt.block_on(target).unwrap();
        }
    });
}

/// With 2 Ps, the woken task's last P stuck in one long blocking poll and the other P idle,
/// the task is run by the other P while the long poll still blocks: the inbox push wakes
/// the idle P and thieves take from a busy victim's inbox.
#[test]
fn inbox_task_of_a_processor_in_a_long_poll_runs_on_another_processor() {
    watchdog("inbox-long-poll", || {
        let rt = runtime(2);
        let wake = Arc::new(ForeignWake::default());
        let (registered_tx, registered_rx) = mpsc::channel();
        let (blocking_tx, blocking_rx) = mpsc::channel::<ThreadId>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (ran_tx, ran_rx) = mpsc::channel::<ThreadId>();
        let target = rt.spawn({
            let wake = Arc::clone(&wake);
            async move {
                // Spawned from this task, the long poll goes to this P's `runnext` (never
                // stolen) and runs on this P as soon as this poll returns.
                let long_poll = gpm::spawn(async move {
                    blocking_tx.send(thread::current().id()).unwrap();
                    // Blocks its P until the test releases it (watchdog: give up late).
                    release_rx.recv_timeout(2 * STEP_TIMEOUT).is_ok()
                });
                wake.wait(registered_tx).await;
                ran_tx.send(thread::current().id()).unwrap();
                long_poll.await.unwrap()
            }
        });
        registered_rx
            .recv_timeout(STEP_TIMEOUT)
            .expect("the task was not polled");
        let blocked_thread = blocking_rx
            .recv_timeout(STEP_TIMEOUT)
            .expect("the long poll did not start");
        // The other P has nothing to do: wait until it sleeps (else, still searching, it
        // would find the task without any wake-up).
        wait_until_parked(&rt, 1);
        // The task's last P is inside the long poll (awake): the wake goes to its inbox.
        let woken_at = Instant::now();
        wake.wake();
        let ran_thread = expect_run_during_load(&ran_rx, "long poll", woken_at, || {
            release_tx.send(()).unwrap();
        });
        assert_ne!(ran_thread, blocked_thread);
        let released = rt.block_on(target).unwrap();
        assert!(released, "the long poll was not released");
    });
}

//! Shared helpers for gpm's integration tests (the tests themselves live in `tests/`).
//!
//! * [`rt_test!`] turns one test body into a test per runtime shape of [`shapes`] (1, 2 and
//!   4 workers under each stealing policy, plus the system allocator, no last-P wake-ups
//!   and probes off on 2 workers), each run under the [`watchdog`].
//! * [`watchdog`] runs a test body on its own thread and fails the test with a clear message
//!   if it has not finished within [`WATCHDOG_TIMEOUT`]: a hang detector, never a timer.
//! * [`with_runtime`] runs a test body with a fresh runtime, and [`output_of_task`] a future
//!   as a task on one, under the watchdog.
//! * [`DropCounter`] / [`DropGuard`] count drops, to check that a future or output is dropped
//!   exactly once.
//! * [`assert_invalid_setting`] checks that a build failed on a setting, with a message.
//! * [`RunProbe`] tells whether a task body or blocking closure ran, and counts the drops of
//!   what it held: cancelled work must never run and be dropped once.
//! * [`panic_message`] and [`catch_panic_message`] read the message out of a panic payload;
//!   [`test_panic`] (tokio's) tells which file a panic points at.
//! * [`ms`] and [`elapsed_within`] (tokio-test's `assert_elapsed!`) for the timer tests.
//! * [`poll_once`] polls a future once with a no-op waker; [`poll_once_unconstrained`]
//!   does so outside the cooperative budget, to ask about readiness only.
//! * [`panicking_waker`] is a foreign executor's waker that reports its wake and then panics.
//! * [`OnDrop`] is a future that runs a closure when it is dropped.
//! * [`tasks_waiting_in_a_chain`] are tokio's `acquire_mutex_in_drop` tasks, which never
//!   complete and are dropped with what runs them.
//! * [`join_all`] awaits join handles in order and collects their outputs.
//! * [`spawn_and_sum`] spawns `n` tasks from the current context and sums their outputs.
//! * [`consume_budget_yields`] is tokio's `coop_consume_budget` check.
//! * [`spawn_parked_tasks`] spawns tasks that hold a value (a drop guard) and never complete,
//!   and waits until each has been polled.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// How long a test body may run before the watchdog declares it hung.
pub const WATCHDOG_TIMEOUT: Duration = Duration::from_secs(60);

/// The worker counts every [`rt_test!`] test runs with.
pub const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

/// Runs `body` on a fresh thread and waits for it. Panics in `body` are re-raised here
/// unchanged; if `body` has not returned after [`WATCHDOG_TIMEOUT`], the test fails with a
/// message naming it (the stuck thread is left behind: the test has failed anyway).
#[track_caller]
pub fn watchdog<F>(name: &str, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("test-{name}"))
        .spawn(move || {
            body();
            let _ = done_tx.send(());
        })
        .expect("watchdog: could not start the test thread");
    match done_rx.recv_timeout(WATCHDOG_TIMEOUT) {
        // Finished, or panicked (the sender was dropped while unwinding): join tells which.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = thread.join() {
                panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "watchdog: test `{name}` did not finish within {WATCHDOG_TIMEOUT:?}: \
             it is hung (deadlock or lost wake-up)"
        ),
    }
}

/// A runtime with `workers` Ps and otherwise default settings.
#[track_caller]
pub fn runtime(workers: usize) -> gpm::Runtime {
    gpm::Runtime::builder()
        .worker_threads(workers)
        .build()
        .unwrap_or_else(|e| panic!("could not build a runtime with {workers} workers: {e}"))
}

/// Runs `body` under the [`watchdog`] named `name` with a fresh runtime of `workers` Ps,
/// which `body` owns (it is dropped when `body` returns, unless `body` drops it first).
#[track_caller]
pub fn with_runtime<F>(name: &str, workers: usize, body: F)
where
    F: FnOnce(gpm::Runtime) + Send + 'static,
{
    watchdog(name, move || body(runtime(workers)));
}

/// Runs `future` as a task on a fresh runtime of `workers` Ps, under the [`watchdog`]
/// named `name`, and returns the task's output: for a test whose body must run inside a
/// task (on a worker, with its P's queues), checked afterwards.
#[track_caller]
pub fn output_of_task<F>(name: &str, workers: usize, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (output_tx, output_rx) = mpsc::channel();
    watchdog(name, move || {
        let rt = runtime(workers);
        let output = rt.block_on(rt.spawn(future)).unwrap();
        output_tx.send(output).unwrap();
    });
    output_rx.recv().unwrap()
}

/// One runtime shape every [`rt_test!`] body runs on: a worker count, a stealing policy,
/// and the settings that change which code paths a task takes.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Worker threads (Ps).
    pub workers: usize,
    /// The stealing policy.
    pub policy: gpm::steal::StealPolicy,
    /// Task memory from the system allocator instead of the slab.
    pub system_allocator: bool,
    /// Wake-ups from off the Ps go to the last P's inbox (the default) or the injector.
    pub last_p_wakeups: bool,
    /// Probes on (the default) or off.
    pub probes: bool,
}

impl Shape {
    /// `workers` Ps stealing by `policy`, every other setting at its default.
    pub const fn new(workers: usize, policy: gpm::steal::StealPolicy) -> Shape {
        Shape {
            workers,
            policy,
            system_allocator: false,
            last_p_wakeups: true,
            probes: true,
        }
    }

    /// Builds the runtime of this shape.
    #[track_caller]
    pub fn build(self) -> gpm::Runtime {
        let mut builder = gpm::Runtime::builder();
        builder
            .worker_threads(self.workers)
            .steal_policy(self.policy)
            .last_p_wakeups(self.last_p_wakeups)
            .enable_probes(self.probes);
        if self.system_allocator {
            builder.task_allocator(gpm::TaskAllocator::System);
        }
        builder
            .build()
            .unwrap_or_else(|e| panic!("could not build a runtime of shape {self:?}: {e}"))
    }
}

/// The shapes of [`rt_test!`], by the name of the test each one generates: 1, 2 and 4
/// workers under each stealing policy, then three settings on 2 workers that take other
/// code paths (system allocator, no last-P wake-ups, probes off). One table instead of CI
/// re-running the suite per `GPM_STEAL`.
pub mod shapes {
    use super::Shape;
    use gpm::steal::AffinityWeights;
    use gpm::steal::StealPolicy::{self, Hierarchical, Random};

    const AFFINITY: StealPolicy = StealPolicy::Affinity(AffinityWeights::DEFAULT);

    /// 1 worker, random stealing.
    pub const W1_RANDOM: Shape = Shape::new(1, Random);
    /// 1 worker, affinity stealing.
    pub const W1_AFFINITY: Shape = Shape::new(1, AFFINITY);
    /// 1 worker, hierarchical stealing.
    pub const W1_HIERARCHICAL: Shape = Shape::new(1, Hierarchical);
    /// 2 workers, random stealing.
    pub const W2_RANDOM: Shape = Shape::new(2, Random);
    /// 2 workers, affinity stealing.
    pub const W2_AFFINITY: Shape = Shape::new(2, AFFINITY);
    /// 2 workers, hierarchical stealing.
    pub const W2_HIERARCHICAL: Shape = Shape::new(2, Hierarchical);
    /// 4 workers, random stealing.
    pub const W4_RANDOM: Shape = Shape::new(4, Random);
    /// 4 workers, affinity stealing.
    pub const W4_AFFINITY: Shape = Shape::new(4, AFFINITY);
    /// 4 workers, hierarchical stealing.
    pub const W4_HIERARCHICAL: Shape = Shape::new(4, Hierarchical);
    /// 2 workers, task memory from the system allocator.
    pub const W2_SYSTEM_ALLOCATOR: Shape = Shape {
        system_allocator: true,
        ..Shape::new(2, AFFINITY)
    };
    /// 2 workers, wake-ups from off the Ps through the injector.
    pub const W2_NO_LAST_P: Shape = Shape {
        last_p_wakeups: false,
        ..Shape::new(2, AFFINITY)
    };
    /// 2 workers, probes off.
    pub const W2_PROBES_OFF: Shape = Shape {
        probes: false,
        ..Shape::new(2, AFFINITY)
    };
}

/// Runs `body` with a fresh runtime of `shape` under the watchdog, then drops the runtime
/// (still under the watchdog, so a hanging shutdown fails the test too).
pub fn run_with_runtime(name: &str, shape: Shape, body: fn(&gpm::Runtime)) {
    watchdog(&format!("{name}-{shape:?}"), move || {
        let rt = shape.build();
        assert_eq!(rt.handle().num_workers(), shape.workers);
        body(&rt);
        drop(rt);
    });
}

/// Like [`run_with_runtime`], but `body` owns the runtime (to shut it down itself).
pub fn run_with_owned_runtime(name: &str, shape: Shape, body: fn(gpm::Runtime)) {
    watchdog(&format!("{name}-{shape:?}"), move || {
        let rt = shape.build();
        assert_eq!(rt.handle().num_workers(), shape.workers);
        body(rt);
    });
}

/// Expands one test body into a module holding a `#[test]` per runtime shape of
/// [`shapes`] (named after it: `w1_random` ... `w2_probes_off`), each run under the
/// [`watchdog`] with a fresh runtime.
///
/// ```text
/// rt_test! {
///     /// What the test checks.
///     fn adds(rt: &gpm::Runtime) {
///         assert_eq!(rt.block_on(async { 1 + 1 }), 2);
///     }
/// }
/// ```
///
/// With `rt: gpm::Runtime` (by value) the body owns the runtime and may shut it down.
/// Attributes (doc comments, `#[ignore]`) are copied onto every generated test.
#[macro_export]
macro_rules! rt_test {
    ($(#[$meta:meta])* fn $name:ident($rt:ident : &gpm::Runtime) $body:block) => {
        $crate::rt_test!(@shapes $(#[$meta])* $name, run_with_runtime, fn body($rt: &gpm::Runtime) $body);
    };
    ($(#[$meta:meta])* fn $name:ident($rt:ident : gpm::Runtime) $body:block) => {
        $crate::rt_test!(@shapes $(#[$meta])* $name, run_with_owned_runtime, fn body($rt: gpm::Runtime) $body);
    };
    (@shapes $(#[$meta:meta])* $name:ident, $run:ident, $body_fn:item) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $body_fn

            $crate::rt_test!(@tests [$(#[$meta])*] $name, $run,
                w1_random W1_RANDOM, w1_affinity W1_AFFINITY, w1_hierarchical W1_HIERARCHICAL,
                w2_random W2_RANDOM, w2_affinity W2_AFFINITY, w2_hierarchical W2_HIERARCHICAL,
                w4_random W4_RANDOM, w4_affinity W4_AFFINITY, w4_hierarchical W4_HIERARCHICAL,
                w2_system_allocator W2_SYSTEM_ALLOCATOR, w2_no_last_p W2_NO_LAST_P,
                w2_probes_off W2_PROBES_OFF,);
        }
    };
    (@tests [$($attr:tt)*] $name:ident, $run:ident, $test:ident $shape:ident, $($rest:tt)*) => {
        $($attr)*
        #[test]
        fn $test() {
            $crate::$run(stringify!($name), $crate::shapes::$shape, body);
        }
        $crate::rt_test!(@tests [$($attr)*] $name, $run, $($rest)*);
    };
    (@tests [$($attr:tt)*] $name:ident, $run:ident,) => {};
}

/// `built` failed with an invalid-setting error whose message contains `message`.
#[track_caller]
pub fn assert_invalid_setting(built: Result<gpm::Runtime, gpm::BuildError>, message: &str) {
    let error = built.unwrap_err();
    assert!(error.is_invalid_setting());
    assert!(error.to_string().contains(message), "{error}");
}

/// Counts how many [`DropGuard`]s made from it have been dropped.
#[derive(Debug, Clone, Default)]
pub struct DropCounter {
    drops: Arc<AtomicUsize>,
}

impl DropCounter {
    /// A counter at zero.
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A guard that adds one to this counter when dropped.
    pub fn guard(&self) -> DropGuard {
        DropGuard {
            drops: Arc::clone(&self.drops),
        }
    }

    /// Guards dropped so far.
    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
}

/// Adds one to its [`DropCounter`] when dropped. Move it into a future or an output to see
/// when (and how many times) that is dropped.
pub struct DropGuard {
    drops: Arc<AtomicUsize>,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

impl fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuard").finish_non_exhaustive()
    }
}

/// The tasks of tokio's `acquire_mutex_in_drop` (in its `rt_basic.rs` and `task_local_set.rs`
/// alike), in spawn order: the first waits for the second, the second for the third, and the
/// third never notifies. None completes: they are dropped with the runtime or `LocalSet` that
/// spawned them, each dropping a channel end another one waits on.
pub fn tasks_waiting_in_a_chain() -> [Pin<Box<dyn Future<Output = ()> + Send>>; 3] {
    use futures::channel::oneshot;
    let (tx1, rx1) = oneshot::channel::<()>();
    let (tx2, rx2) = oneshot::channel::<()>();
    [
        Box::pin(async move {
            let _ = rx2.await;
            unreachable!();
        }),
        Box::pin(async move {
            let _ = rx1.await;
            tx2.send(()).unwrap();
            unreachable!();
        }),
        // A task that never notifies.
        Box::pin(async move {
            futures::future::pending::<()>().await;
            tx1.send(()).unwrap();
        }),
    ]
}

/// tokio's `coop_consume_budget` (in its `rt_common.rs` and `coop.rs` alike), to await in a
/// task: a future that calls `consume_budget` 1000 times, polled once, yields before it has
/// finished (the budget is 128).
pub async fn consume_budget_yields() {
    std::future::poll_fn(|cx| {
        let counter = Arc::new(Mutex::new(0));
        let counter_clone = Arc::clone(&counter);
        let mut worker = Box::pin(async move {
            // Consume the budget until a yield happens
            for _ in 0..1000 {
                *counter.lock().unwrap() += 1;
                gpm::task::consume_budget().await
            }
        });
        // Assert that the worker was yielded and it didn't manage
        // to finish the whole work (assuming the total budget of 128)
        assert!(Pin::new(&mut worker).poll(cx).is_pending());
        assert!(*counter_clone.lock().unwrap() < 1000);
        Poll::Ready(())
    })
    .await;
}

/// Awaits the join handles in order and returns their outputs; a task that panicked or was
/// cancelled fails the test.
pub async fn join_all<T>(handles: impl IntoIterator<Item = gpm::JoinHandle<T>>) -> Vec<T> {
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

/// Spawns `n` tasks with `gpm::spawn` (from a task or from `block_on`), the `i`-th
/// returning `i`, joins them in spawn order and returns the sum of their outputs:
/// `n * (n - 1) / 2` when every one of them ran once.
pub async fn spawn_and_sum(n: u64) -> u64 {
    let handles: Vec<_> = (0..n).map(|i| gpm::spawn(async move { i })).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    sum
}

/// Spawns `n` tasks on `rt`, each holding a `value()` (a [`DropGuard`], say) and never
/// completing, and returns their handles once every one of them has been polled: the tasks
/// are parked in `pending()`, not waiting in a queue. A value is dropped only when the
/// runtime drops its task (abort, shutdown).
pub fn spawn_parked_tasks<T: Send + 'static>(
    rt: &gpm::Runtime,
    n: usize,
    mut value: impl FnMut() -> T,
) -> Vec<gpm::JoinHandle<()>> {
    let (started_tx, started_rx) = mpsc::channel();
    let tasks = (0..n)
        .map(|_| {
            let value = value();
            let started_tx = started_tx.clone();
            rt.spawn(async move {
                let _value = value;
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await;
                unreachable!("pending() completed");
            })
        })
        .collect();
    for _ in 0..n {
        started_rx.recv().unwrap();
    }
    tasks
}

/// One task of [`spawn_parked_tasks`], holding `value`.
pub fn spawn_parked_task<T: Send + 'static>(rt: &gpm::Runtime, value: T) -> gpm::JoinHandle<()> {
    let mut value = Some(value);
    let mut tasks = spawn_parked_tasks(rt, 1, || value.take().expect("one task, one value"));
    tasks.pop().expect("one task")
}

/// Whether the bodies made by [`RunProbe::task`] / [`RunProbe::closure`] ran, and how many
/// of them were dropped: spawn one where the runtime must cancel the work (an abort before
/// the first poll, a spawn after shutdown) and check it never ran and was dropped once.
#[derive(Debug, Clone, Default)]
pub struct RunProbe {
    ran: Arc<AtomicBool>,
    drops: DropCounter,
}

impl RunProbe {
    /// A probe that has seen nothing run and nothing dropped.
    pub fn new() -> RunProbe {
        RunProbe::default()
    }

    /// A blocking closure that records that it ran; it holds a [`DropGuard`].
    pub fn closure(&self) -> impl FnOnce() + Send + 'static {
        let guard = self.drops.guard();
        let ran = Arc::clone(&self.ran);
        move || {
            let _guard = guard;
            ran.store(true, Ordering::SeqCst);
        }
    }

    /// A task body that records that it ran; it holds a [`DropGuard`].
    pub fn task(&self) -> impl Future<Output = ()> + Send + 'static {
        let closure = self.closure();
        async move { closure() }
    }

    /// Whether any body of this probe ran.
    pub fn ran(&self) -> bool {
        self.ran.load(Ordering::SeqCst)
    }

    /// Bodies of this probe dropped so far (run or not).
    pub fn drops(&self) -> usize {
        self.drops.drops()
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder for other types.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Runs `f`, which must panic, and returns its panic message. Fails the test if `f` returns.
#[track_caller]
pub fn catch_panic_message<R>(f: impl FnOnce() -> R) -> String {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, but the call returned normally"),
        Err(payload) => panic_message(&*payload),
    }
}

/// tokio's `support::panic::test_panic`: runs `func`, and returns the file of its panic's
/// location if it panicked (`#[track_caller]` APIs must point at their caller's file). The
/// panic hook is process-wide: one caller at a time installs it, and it records only the
/// calling thread's panics (other tests of the binary may panic meanwhile).
pub fn test_panic(func: impl FnOnce()) -> Option<String> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let location = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&location);
    let caller = std::thread::current().id();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == caller {
            *seen.lock().unwrap() = info.location().map(|l| l.file().to_string());
        }
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(func));
    panic::set_hook(previous);
    let file = location.lock().unwrap().take();
    result.err().and(file)
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls `future` once with a waker that does nothing (then drops it, and so its waiter),
/// outside the cooperative budget: the answer is about readiness only.
pub fn poll_once_unconstrained<F: Future>(future: F) -> Poll<F::Output> {
    poll_once(std::pin::pin!(gpm::task::unconstrained(future)))
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// tokio-test's `assert_elapsed!`: at least `duration` since `start`, at most a millisecond
/// more.
#[track_caller]
pub fn elapsed_within(start: gpm::time::Instant, duration: Duration) {
    let elapsed = start.elapsed();
    assert!(
        elapsed >= duration && elapsed <= duration + ms(1),
        "elapsed {elapsed:?}, expected {duration:?} (+1 ms)"
    );
}

/// A future that calls `on_drop` when it is dropped: ready at its first poll
/// ([`OnDrop::ready`]) or never ([`OnDrop::pending`]). Spawn one to see what the task's
/// context holds (its id, a task-local value, the runtime handle) while the runtime drops
/// the future, on completion or on abort and shutdown.
pub struct OnDrop<F: FnOnce()> {
    on_drop: Option<F>,
    ready: bool,
}

impl<F: FnOnce()> OnDrop<F> {
    /// Completes at its first poll, then is dropped as a completed future.
    pub fn ready(on_drop: F) -> OnDrop<F> {
        OnDrop {
            on_drop: Some(on_drop),
            ready: true,
        }
    }

    /// Never completes: dropped only by an abort or a shutdown.
    pub fn pending(on_drop: F) -> OnDrop<F> {
        OnDrop {
            on_drop: Some(on_drop),
            ready: false,
        }
    }
}

impl<F: FnOnce()> Future for OnDrop<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

impl<F: FnOnce()> fmt::Debug for OnDrop<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnDrop")
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// A waker of some other executor that misbehaves: each wake first sends `()` on the
/// returned channel, then panics. Poll a gpm future with it from outside the runtime to
/// check that the runtime's driver survives firing it.
pub fn panicking_waker() -> (Waker, mpsc::Receiver<()>) {
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(PanickingWaker(Mutex::new(woken_tx))));
    (waker, woken_rx)
}

struct PanickingWaker(Mutex<mpsc::Sender<()>>);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.0.lock().unwrap_or_else(|e| e.into_inner()).send(());
        panic!("a foreign waker panics on wake (expected by this test)");
    }
}

/// Stops the world of `rt` and checks that every P took part: a P whose M died (or hangs)
/// never reaches a safepoint, so this call never returns and the watchdog fails the test.
/// Then runs a task on the runtime.
pub fn assert_every_processor_answers(rt: &gpm::Runtime) {
    let workers = rt.handle().num_workers();
    let (seen, report) = rt.handle().stop_the_world(|world| world.processors.len());
    assert_eq!(seen, workers);
    assert_eq!(report.processors.len(), workers);
    assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
}

/// docs/MIGRATING.md: its Rust blocks are doc tests of this crate, so the guide compiles.
#[cfg(doctest)]
#[doc = include_str!("../../docs/MIGRATING.md")]
pub struct MigratingGuide;

//! The chaos soak: rounds of runtimes that run a random mix of everything users do to a
//! runtime that could hang it, leak a task or take a P away, each shut down mid-flight.
//!
//! A round builds a runtime (1 to 3 workers, 1 to 3 blocking threads), launches a few
//! hundred actors of random kinds (panics in polls, drops and join wakers; aborts; join
//! handles dropped on foreign threads; `block_in_place` while the blocking pool is
//! saturated; stop-the-world from tasks and from threads; one TCP listener and one UDP
//! socket shared by several waiting tasks; timers; yielding spinners; wake-ups from foreign
//! threads). Half of the rounds let a random share of the actors finish and shut the
//! runtime down while the rest are in flight; the other half first wait for every actor
//! that must end on its own (all but the spinners, the aborted and the panicking ones), so
//! a lost wake-up (a second waiter on a socket never woken, say) fails the round. Then it
//! checks:
//!
//! * every future (and blocking closure) was dropped exactly once: each carries a
//!   `DropGuard`, and the drops equal the spawns;
//! * no thread is left: the process has as many threads as before the round;
//! * no task waited unboundedly after its wake-up: a task woken from a foreign thread is
//!   polled within [`WAKE_BOUND`] of the wake (a liveness bound, generous for a loaded CI
//!   machine: starvation shows up as seconds, not milliseconds);
//! * nothing hung: each round runs under the watchdog.
//!
//! CI runs it for a couple of seconds; `GPM_SOAK_SECS=600` soaks for ten minutes. The
//! seed of each round is printed when it fails; `GPM_SOAK_SEED` replays one round.

use futures::channel::oneshot;
use gpm::net::{TcpListener, TcpStream, UdpSocket};
use gpm::time::{self, Duration, Instant};
use gpm_tests::{watchdog, DropCounter};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Wake, Waker};
use std::thread::JoinHandle as ThreadHandle;

/// The longest a woken task may wait for its poll before the round fails.
const WAKE_BOUND: Duration = Duration::from_secs(5);
/// Actors launched per round.
const ACTORS: usize = 300;
/// Actor kinds (see [`launch`]).
const KINDS: u64 = 13;
/// Panics raised on purpose start with this, and the panic hook keeps them quiet.
const CHAOS: &str = "chaos:";

#[test]
fn chaos_soak() {
    quiet_chaos_panics();
    let seconds: f64 = std::env::var("GPM_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    if let Some(seed) = std::env::var("GPM_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return run_round_under_watchdog(seed);
    }
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut seed = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut rounds = 0;
    while rounds < 2 || Instant::now() < end {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        run_round_under_watchdog(seed);
        rounds += 1;
    }
    eprintln!("chaos soak: {rounds} rounds in {seconds} s");
}

fn run_round_under_watchdog(seed: u64) {
    watchdog(&format!("chaos round seed {seed}"), move || {
        let result = std::panic::catch_unwind(|| run_round(seed));
        if let Err(panic) = result {
            eprintln!("chaos soak: round failed; replay with GPM_SOAK_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    });
}

/// What the actors of one round share.
struct Round {
    handle: gpm::Handle,
    drops: DropCounter,
    spawned: AtomicUsize,
    finished: AtomicUsize,
    /// Actors that must end on their own, and those of them that have.
    must_finish: AtomicUsize,
    finished_must: AtomicUsize,
    foreign: Mutex<Vec<ThreadHandle<()>>>,
    max_wake_ns: AtomicU64,
}

impl Round {
    /// Spawns `body` as a counted task (its future carries a drop guard) that may end by
    /// panicking, being aborted, or never.
    fn spawn<F>(self: &Arc<Self>, body: F) -> gpm::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_counted(body, false)
    }

    /// Spawns `body` as a counted task that must end on its own (see `drain`).
    fn spawn_must<F>(self: &Arc<Self>, body: F) -> gpm::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_counted(body, true)
    }

    fn spawn_counted<F>(self: &Arc<Self>, body: F, must: bool) -> gpm::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let guard = self.drops.guard();
        self.spawned.fetch_add(1, Ordering::SeqCst);
        if must {
            self.must_finish.fetch_add(1, Ordering::SeqCst);
        }
        let round = Arc::clone(self);
        self.handle.spawn(async move {
            let _guard = guard;
            body.await;
            round.finished.fetch_add(1, Ordering::SeqCst);
            if must {
                round.finished_must.fetch_add(1, Ordering::SeqCst);
            }
        })
    }

    /// Spawns a counted blocking closure.
    fn spawn_blocking(self: &Arc<Self>, body: impl FnOnce() + Send + 'static) {
        let guard = self.drops.guard();
        self.spawned.fetch_add(1, Ordering::SeqCst);
        drop(self.handle.spawn_blocking(move || {
            let _guard = guard;
            body();
        }));
    }

    /// Runs `body` on a foreign thread, joined at the end of the round.
    fn foreign(&self, body: impl FnOnce() + Send + 'static) {
        let thread = std::thread::spawn(body);
        self.foreign.lock().unwrap().push(thread);
    }

    fn record_wake(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.max_wake_ns.fetch_max(nanos, Ordering::SeqCst);
    }
}

fn run_round(seed: u64) {
    let mut rng = Rng(seed | 1);
    let threads_before = os_threads();
    let rt = gpm::Runtime::builder()
        .worker_threads(1 + rng.below(3) as usize)
        .max_blocking_threads(1 + rng.below(3) as usize)
        .build()
        .unwrap();
    let round = Arc::new(Round {
        handle: rt.handle().clone(),
        drops: DropCounter::new(),
        spawned: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        must_finish: AtomicUsize::new(0),
        finished_must: AtomicUsize::new(0),
        foreign: Mutex::new(Vec::new()),
        max_wake_ns: AtomicU64::new(0),
    });
    let drain = rng.below(2) == 0;
    let share_to_finish = rng.below(ACTORS as u64) as usize;
    rt.block_on(async {
        for _ in 0..ACTORS {
            launch(&round, rng.below(KINDS), rng.next());
        }
        if drain {
            wait_for_every_actor_that_must_finish(&round).await;
        } else {
            wait_for_finished(&round, share_to_finish).await;
        }
    });
    shut_down(rt, rng.below(2) == 0);
    let foreign: Vec<_> = std::mem::take(&mut *round.foreign.lock().unwrap());
    foreign.into_iter().for_each(|t| t.join().unwrap());
    check_round(&round, threads_before);
}

/// Polls the counter every millisecond (the point of shutdown is random anyway).
async fn wait_for_finished(round: &Round, count: usize) {
    let start = Instant::now();
    while round.finished.load(Ordering::SeqCst) < count && start.elapsed() < WAKE_BOUND {
        time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until every actor that must end on its own has; fails the round after
/// `2 * WAKE_BOUND` (a lost wake-up: a task that is never polled again).
async fn wait_for_every_actor_that_must_finish(round: &Round) {
    let start = Instant::now();
    loop {
        let expected = round.must_finish.load(Ordering::SeqCst);
        let done = round.finished_must.load(Ordering::SeqCst);
        if done == expected {
            return;
        }
        assert!(
            start.elapsed() < 2 * WAKE_BOUND,
            "{} of {expected} actors never finished: a lost wake-up",
            expected - done
        );
        time::sleep(Duration::from_millis(1)).await;
    }
}

fn shut_down(rt: gpm::Runtime, by_drop: bool) {
    if by_drop {
        drop(rt);
    } else {
        // Long enough for every (finite) blocking closure: the threads are then all gone.
        rt.shutdown_timeout(Duration::from_secs(30));
    }
}

fn check_round(round: &Round, threads_before: usize) {
    let spawned = round.spawned.load(Ordering::SeqCst);
    assert_eq!(
        round.drops.drops(),
        spawned,
        "every future and closure is dropped exactly once"
    );
    assert_eq!(
        os_threads(),
        threads_before,
        "a thread outlived its runtime"
    );
    let waited = Duration::from_nanos(round.max_wake_ns.load(Ordering::SeqCst));
    assert!(
        waited < WAKE_BOUND,
        "a woken task waited {waited:?} for its poll"
    );
}

/// Starts one actor of kind `kind`.
fn launch(round: &Arc<Round>, kind: u64, salt: u64) {
    match kind {
        0 => panic_in_poll(round),
        1 => panic_in_drop(round),
        2 => panicking_join_waker(round),
        3 => abort_from_task_or_thread(round, salt),
        4 => join_handle_dropped_on_foreign_thread(round),
        5 => block_in_place_with_saturated_pool(round),
        6 => stop_the_world_from_task(round),
        7 => stop_the_world_from_thread(round),
        8 => shared_listener(round),
        9 => shared_udp_socket(round),
        10 => timers(round, salt),
        11 => yielding_spinner(round),
        _ => foreign_wake(round),
    }
}

fn panic_in_poll(round: &Arc<Round>) {
    round.spawn(async {
        gpm::task::yield_now().await;
        panic!("chaos: a poll panics");
    });
}

fn panic_in_drop(round: &Arc<Round>) {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("chaos: a drop panics");
            }
        }
    }
    round.spawn(async {
        let _bomb = PanicOnDrop;
        gpm::task::yield_now().await;
    });
}

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("chaos: a join waker panics");
    }
}

fn panicking_join_waker(round: &Arc<Round>) {
    let (tx, rx) = oneshot::channel::<()>();
    let mut join = round.spawn_must(async move {
        let _ = rx.await;
    });
    round.foreign(move || {
        let waker = Waker::from(Arc::new(PanickingWaker));
        let _ = Pin::new(&mut join).poll(&mut Context::from_waker(&waker));
        let _ = tx.send(());
        // Completion (or cancellation at shutdown) wakes the panicking waker.
        let start = std::time::Instant::now();
        while !join.is_finished() && start.elapsed() < WAKE_BOUND {
            std::thread::yield_now();
        }
    });
}

fn abort_from_task_or_thread(round: &Arc<Round>, salt: u64) {
    let victim = round.spawn(std::future::pending());
    if salt & 1 == 0 {
        round.spawn_must(async move {
            gpm::task::yield_now().await;
            victim.abort();
        });
    } else {
        round.foreign(move || victim.abort());
    }
}

fn join_handle_dropped_on_foreign_thread(round: &Arc<Round>) {
    let join = round.spawn_must(async {
        time::sleep(Duration::from_millis(1)).await;
    });
    round.foreign(move || drop(join));
}

fn block_in_place_with_saturated_pool(round: &Arc<Round>) {
    for _ in 0..4 {
        round.spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)));
    }
    round.spawn_must(async {
        gpm::task::block_in_place(|| std::thread::sleep(Duration::from_millis(1)));
        gpm::task::yield_now().await;
    });
}

fn stop_the_world_from_task(round: &Arc<Round>) {
    round.spawn_must(async {
        let (runnable, report) = gpm::Handle::current().stop_the_world(|world| world.runnable());
        assert!(report.pause >= report.time_to_stop, "{runnable} runnable");
    });
}

fn stop_the_world_from_thread(round: &Arc<Round>) {
    let handle = round.handle.clone();
    round.foreign(move || {
        let (_, report) = handle.stop_the_world(|world| world.processors.len());
        assert_eq!(report.processors.len(), handle.num_workers());
    });
}

/// Three tasks accept on one listener while three connect: every accept finishes.
fn shared_listener(round: &Arc<Round>) {
    let round_inner = Arc::clone(round);
    round.spawn_must(async move {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let addr = listener.local_addr().unwrap();
        let listener = Arc::new(listener);
        for _ in 0..3 {
            let listener = Arc::clone(&listener);
            round_inner.spawn_must(async move {
                let _ = listener.accept().await;
            });
            round_inner.spawn_must(async move {
                let _ = TcpStream::connect(addr).await;
            });
        }
    });
}

/// Two tasks receive on one UDP socket while a third sends two datagrams.
fn shared_udp_socket(round: &Arc<Round>) {
    let round_inner = Arc::clone(round);
    round.spawn_must(async move {
        let (Ok(receiver), Ok(sender)) = (
            UdpSocket::bind("127.0.0.1:0").await,
            UdpSocket::bind("127.0.0.1:0").await,
        ) else {
            return;
        };
        let addr = receiver.local_addr().unwrap();
        let receiver = Arc::new(receiver);
        for _ in 0..2 {
            let receiver = Arc::clone(&receiver);
            round_inner.spawn_must(async move {
                let mut buf = [0u8; 16];
                let _ = receiver.recv_from(&mut buf).await;
            });
        }
        round_inner.spawn_must(async move {
            for _ in 0..2 {
                let _ = sender.send_to(b"chaos", addr).await;
            }
        });
    });
}

fn timers(round: &Arc<Round>, salt: u64) {
    round.spawn_must(async move {
        time::sleep(Duration::from_micros(salt % 3_000)).await;
        let late = time::timeout(
            Duration::from_millis(1),
            time::sleep(Duration::from_secs(5)),
        );
        assert!(
            late.await.is_err(),
            "a 5 s sleep finished within a 1 ms timeout"
        );
    });
}

/// Keeps a P busy with short polls until the runtime shuts down (the load under which
/// woken tasks must still run soon).
fn yielding_spinner(round: &Arc<Round>) {
    round.spawn(async {
        loop {
            gpm::task::yield_now().await;
        }
    });
}

/// A task woken from a foreign thread: the time from the wake to its poll is recorded.
fn foreign_wake(round: &Arc<Round>) {
    let (tx, rx) = oneshot::channel::<std::time::Instant>();
    let round_inner = Arc::clone(round);
    round.spawn_must(async move {
        if let Ok(sent) = rx.await {
            round_inner.record_wake(sent.elapsed());
        }
    });
    round.foreign(move || {
        let _ = tx.send(std::time::Instant::now());
    });
}

/// The number of threads of this process.
fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Keeps the panics raised on purpose out of the test output; others print as usual.
fn quiet_chaos_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|m| m.starts_with(CHAOS)) {
                default(info);
            }
        }));
    });
}

/// xorshift64: a seeded generator, so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

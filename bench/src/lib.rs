//! Benchmarks of gpm against tokio, and the experiment lab.
//!
//! [`Rt`] is the small surface both runtimes share, so a workload is written once, generic
//! over it, and the two sides provably run the same code: only the executor differs. The
//! workloads synchronise with runtime-neutral primitives (std channels and atomics,
//! `futures::channel`), never with one runtime's own.
#![allow(missing_docs)]

use std::future::Future;

pub mod http;
pub mod lab;
pub mod pin;
pub mod sim;
pub mod stats;
pub mod timers;

/// Worker count for the comparisons: `GPM_BENCH_WORKERS`, default 2.
pub fn bench_workers() -> usize {
    std::env::var("GPM_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

/// What a workload needs from a runtime.
pub trait Rt: Send + Sync + 'static {
    /// The runtime's join handle for an output `T`.
    type Handle<T: Send + 'static>: Send + 'static;

    /// A runtime with `workers` worker threads.
    fn with_workers(workers: usize) -> Self;

    /// Drives `future` on the calling thread.
    fn block_on<F: Future>(&self, future: F) -> F::Output;

    /// Spawns from outside the runtime, through its handle.
    fn spawn_remote<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns on the current runtime (`tokio::spawn`, `gpm::spawn`).
    fn spawn<F>(future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Awaits a join handle, panicking if the task failed.
    fn join<T: Send + 'static>(handle: Self::Handle<T>) -> impl Future<Output = T> + Send;

    /// The runtime's `yield_now`.
    fn yield_now() -> impl Future<Output = ()> + Send;
}

/// tokio's multi-threaded runtime.
#[derive(Debug)]
pub struct Tokio(pub tokio::runtime::Runtime);

/// gpm's runtime.
#[derive(Debug)]
pub struct Gpm(pub gpm::Runtime);

/// The methods of [`Rt`] both runtimes implement alike, for the runtime crate `$rt`
/// (`tokio` or `gpm`): `block_on` and `spawn_remote` go to the runtime in `self.0`, the
/// others to `$rt::spawn` and `$rt::task::yield_now`.
macro_rules! rt_methods {
    ($rt:ident) => {
        fn block_on<F: Future>(&self, future: F) -> F::Output {
            self.0.block_on(future)
        }

        fn spawn_remote<F>(&self, future: F) -> Self::Handle<F::Output>
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            self.0.spawn(future)
        }

        fn spawn<F>(future: F) -> Self::Handle<F::Output>
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            $rt::spawn(future)
        }

        async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
            handle
                .await
                .expect(concat!(stringify!($rt), " task failed"))
        }

        fn yield_now() -> impl Future<Output = ()> + Send {
            $rt::task::yield_now()
        }
    };
}

impl Rt for Tokio {
    type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    /// Pins its threads as `GPM_BENCH_CPUS` / `GPM_BENCH_NODE` say (see [`pin`]).
    fn with_workers(workers: usize) -> Self {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers).enable_all();
        if let Some(pinning) = pin::global() {
            builder.on_thread_start(pinning.thread_start_hook());
        }
        Tokio(pin::build_confined(|| builder.build()).expect("tokio runtime"))
    }

    rt_methods!(tokio);
}

impl Gpm {
    /// A gpm runtime with `workers` Ps and its probes on, timing one schedule in
    /// `sampling` (`Some(n)`), or probes and timestamps off (`None`).
    pub fn with_probes(workers: usize, sampling: Option<u32>) -> Gpm {
        let rt = gpm::Runtime::builder()
            .worker_threads(workers)
            .enable_probes(sampling.is_some())
            .probe_sampling(sampling.unwrap_or(0))
            .build()
            .expect("gpm runtime");
        Gpm(rt)
    }

    /// A gpm runtime with `workers` Ps stealing by `policy`.
    pub fn with_policy(workers: usize, policy: gpm::steal::StealPolicy) -> Gpm {
        let rt = gpm::Runtime::builder()
            .worker_threads(workers)
            .steal_policy(policy)
            .build()
            .expect("gpm runtime");
        Gpm(rt)
    }

    /// A gpm runtime with `workers` Ps taking task memory from `allocator`.
    pub fn with_allocator(workers: usize, allocator: gpm::TaskAllocator) -> Gpm {
        let rt = gpm::Runtime::builder()
            .worker_threads(workers)
            .task_allocator(allocator)
            .build()
            .expect("gpm runtime");
        Gpm(rt)
    }
}

impl Rt for Gpm {
    type Handle<T: Send + 'static> = gpm::JoinHandle<T>;

    /// Built on a thread confined to the pinning's CPUs (see [`pin::build_confined`]); with
    /// `GPM_BENCH_CPUS` / `GPM_BENCH_NODE` the workers are pinned one per CPU through
    /// `Builder::placement`, like tokio's.
    fn with_workers(workers: usize) -> Self {
        let rt = pin::build_confined(|| {
            let mut builder = gpm::Runtime::builder();
            builder.worker_threads(workers);
            pin::apply_to_gpm(&mut builder);
            builder.build()
        });
        Gpm(rt.expect("gpm runtime"))
    }

    rt_methods!(gpm);
}

/// The workloads of tokio's `benches/rt_multi_threaded.rs`, with its parameters.
pub mod workloads {
    use super::Rt;
    use futures::channel::oneshot;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// Tasks per spawn workload.
    pub const NUM_SPAWN: usize = 10_000;
    /// Tasks of `spawn_many_remote_busy2`.
    pub const NUM_SPAWN_BUSY2: usize = 1_000;
    /// Yields per task in `yield_many`.
    pub const NUM_YIELD: usize = 1_000;
    /// Tasks in `yield_many`.
    pub const YIELD_TASKS: usize = 200;
    /// Ping-pong pairs.
    pub const NUM_PINGS: usize = 1_000;
    /// Length of the spawn chain.
    pub const CHAIN: usize = 1_000;
    /// How long a busy task burns the CPU between yields.
    pub const STALL: Duration = Duration::from_micros(10);

    /// Burns `STALL` of CPU time, letting the OS run other threads.
    pub fn stall() {
        let start = Instant::now();
        while start.elapsed() < STALL {
            std::thread::yield_now();
        }
    }

    /// The state `spawn_many_local` keeps across iterations.
    #[derive(Debug)]
    pub struct SpawnMany {
        tx: mpsc::SyncSender<()>,
        rx: mpsc::Receiver<()>,
        remaining: Arc<AtomicUsize>,
    }

    impl Default for SpawnMany {
        fn default() -> Self {
            let (tx, rx) = mpsc::sync_channel(1000);
            SpawnMany {
                tx,
                rx,
                remaining: Arc::new(AtomicUsize::new(0)),
            }
        }
    }

    /// `NUM_SPAWN` empty tasks spawned from `block_on`; the last one to run signals.
    pub fn spawn_many_local<R: Rt>(rt: &R, state: &SpawnMany) {
        state.remaining.store(NUM_SPAWN, Relaxed);
        rt.block_on(async {
            for _ in 0..NUM_SPAWN {
                let tx = state.tx.clone();
                let remaining = Arc::clone(&state.remaining);
                drop(R::spawn(async move {
                    if remaining.fetch_sub(1, Relaxed) == 1 {
                        tx.send(()).unwrap();
                    }
                }));
            }
            state.rx.recv().unwrap();
        });
    }

    /// `count` empty tasks spawned through the handle, then all joined.
    pub fn spawn_many_remote<R: Rt>(rt: &R, handles: &mut Vec<R::Handle<()>>, count: usize) {
        for _ in 0..count {
            handles.push(rt.spawn_remote(async {}));
        }
        rt.block_on(async {
            for handle in handles.drain(..) {
                R::join(handle).await;
            }
        });
    }

    /// Keeps every worker busy with `2 * workers` tasks that stall and yield, until `flag`
    /// is cleared (`spawn_many_remote_busy1`).
    pub fn start_yielding_load<R: Rt>(rt: &R, workers: usize, flag: &Arc<AtomicBool>) {
        for _ in 0..2 * workers {
            let flag = Arc::clone(flag);
            drop(rt.spawn_remote(async move {
                while flag.load(Relaxed) {
                    R::yield_now().await;
                    stall();
                }
            }));
        }
    }

    /// Keeps every worker busy with `workers` chains of tasks that stall and spawn their
    /// successor, until `flag` is cleared (`spawn_many_remote_busy2`).
    pub fn start_spawning_load<R: Rt>(rt: &R, workers: usize, flag: &Arc<AtomicBool>) {
        fn link<R: Rt>(flag: Arc<AtomicBool>) {
            drop(R::spawn(async move {
                if flag.load(Relaxed) {
                    stall();
                    link::<R>(flag);
                }
            }));
        }
        for _ in 0..workers {
            let flag = Arc::clone(flag);
            drop(rt.spawn_remote(async move { link::<R>(flag) }));
        }
    }

    /// `YIELD_TASKS` tasks that each yield `NUM_YIELD` times.
    pub fn yield_many<R: Rt>(rt: &R, tx: &mpsc::SyncSender<()>, rx: &mpsc::Receiver<()>) {
        for _ in 0..YIELD_TASKS {
            let tx = tx.clone();
            drop(rt.spawn_remote(async move {
                for _ in 0..NUM_YIELD {
                    R::yield_now().await;
                }
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..YIELD_TASKS {
            rx.recv().unwrap();
        }
    }

    /// `NUM_PINGS` pairs of tasks exchanging two oneshot messages.
    pub fn ping_pong<R: Rt>(rt: &R, state: &SpawnMany) {
        let done = state.tx.clone();
        let remaining = Arc::clone(&state.remaining);
        remaining.store(NUM_PINGS, Relaxed);
        rt.block_on(async {
            drop(R::spawn(async move {
                for _ in 0..NUM_PINGS {
                    let remaining = Arc::clone(&remaining);
                    let done = done.clone();
                    drop(R::spawn(async move {
                        let (tx1, rx1) = oneshot::channel::<()>();
                        let (tx2, rx2) = oneshot::channel::<()>();
                        drop(R::spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        }));
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if remaining.fetch_sub(1, Relaxed) == 1 {
                            done.send(()).unwrap();
                        }
                    }));
                }
            }));
            state.rx.recv().unwrap();
        });
    }

    /// A chain of `CHAIN` tasks, each spawning the next.
    pub fn chained_spawn<R: Rt>(rt: &R, state: &SpawnMany) {
        fn link<R: Rt>(done: mpsc::SyncSender<()>, n: usize) {
            if n == 0 {
                done.send(()).unwrap();
            } else {
                drop(R::spawn(async move { link::<R>(done, n - 1) }));
            }
        }
        let done = state.tx.clone();
        rt.block_on(async {
            drop(R::spawn(async move { link::<R>(done, CHAIN) }));
            state.rx.recv().unwrap();
        });
    }
}

/// Imbalanced workloads for comparing stealing policies: all the work starts on one P.
pub mod imbalanced {
    use super::Rt;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{mpsc, Arc};

    /// Children of `one_spawns_all` and tasks of `skewed_producer`.
    pub const TASKS: usize = 10_000;
    /// Depth of the `fork_join` tree (2^13 - 1 tasks).
    pub const TREE_DEPTH: u32 = 12;

    /// Spins for `units` units of about 100 loop iterations each.
    pub fn burn(units: u32) -> u64 {
        let mut x = 0u64;
        for i in 0..units * 100 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(u64::from(i)));
        }
        x
    }

    /// Counts completions and signals the waiting bench thread at the last one.
    struct Countdown {
        left: AtomicUsize,
        done: mpsc::SyncSender<()>,
    }

    impl Countdown {
        fn new(count: usize) -> (Arc<Countdown>, mpsc::Receiver<()>) {
            let (done, wait) = mpsc::sync_channel(1);
            let countdown = Countdown {
                left: AtomicUsize::new(count),
                done,
            };
            (Arc::new(countdown), wait)
        }

        fn tick(&self) {
            if self.left.fetch_sub(1, Relaxed) == 1 {
                self.done.send(()).unwrap();
            }
        }
    }

    /// One task spawns `TASKS` small tasks (1 unit of work each): the other Ps only get
    /// work by stealing it (or from the spawner's overflow into the injector).
    pub fn one_spawns_all<R: Rt>(rt: &R) {
        let (countdown, wait) = Countdown::new(TASKS);
        drop(rt.spawn_remote(async move {
            for _ in 0..TASKS {
                let countdown = Arc::clone(&countdown);
                drop(R::spawn(async move {
                    std::hint::black_box(burn(1));
                    countdown.tick();
                }));
            }
        }));
        wait.recv().unwrap();
    }

    /// A binary fork-join tree of depth `TREE_DEPTH`: each node spawns two children and
    /// awaits them; leaves burn 1 unit.
    pub fn fork_join<R: Rt>(rt: &R) {
        fn node<R: Rt>(depth: u32) -> R::Handle<u64> {
            R::spawn(async move {
                if depth == 0 {
                    return burn(1) & 1;
                }
                let left = node::<R>(depth - 1);
                let right = node::<R>(depth - 1);
                R::join(left).await + R::join(right).await
            })
        }
        let (done, wait) = mpsc::sync_channel(1);
        drop(rt.spawn_remote(async move {
            let total = R::join(node::<R>(TREE_DEPTH)).await;
            done.send(std::hint::black_box(total)).unwrap();
        }));
        wait.recv().unwrap();
    }

    /// One producer spawns `TASKS` tasks of skewed cost: every 32nd burns 32 units, the
    /// rest 1, so a few victims hold most of the work.
    pub fn skewed_producer<R: Rt>(rt: &R) {
        let (countdown, wait) = Countdown::new(TASKS);
        drop(rt.spawn_remote(async move {
            for i in 0..TASKS {
                let countdown = Arc::clone(&countdown);
                let units = if i % 32 == 0 { 32 } else { 1 };
                drop(R::spawn(async move {
                    std::hint::black_box(burn(units));
                    countdown.tick();
                }));
                if i % 64 == 0 {
                    R::yield_now().await;
                }
            }
        }));
        wait.recv().unwrap();
    }
}

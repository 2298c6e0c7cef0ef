//! `Builder`: configure and start a runtime, reporting bad settings as `BuildError`.

use super::blocking::{Pool, PoolConfig, ThreadHook, ThreadName};
use super::handle::Handle;
use super::runtime::Runtime;
use super::shared::{Shared, SharedOptions};
use super::task_memory::TaskMemory;
use crate::alloc::{Slab, SlabConfig};
use crate::overload::{ConfigError, PoolSizingConfig};
use crate::TaskAllocator;
use gpm_numa::{Placement, Topology};
use gpm_scheduler::steal::{AffinityWeights, StealPolicy, StealTopology};
use gpm_scheduler::{Config as SchedulerConfig, StealConfig, DEFAULT_GLOBAL_QUEUE_INTERVAL};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Most Ps a runtime may have. Far above any machine gpm targets; a larger number is a typo.
pub const MAX_WORKER_THREADS: usize = 4096;
/// Most blocking threads a runtime may have (on top of its Ms).
pub const MAX_BLOCKING_THREADS: usize = 100_000;
/// Smallest thread stack accepted.
pub const MIN_STACK_SIZE: usize = 64 * 1024;

/// Configures a runtime, like tokio's `runtime::Builder` for the multi-threaded flavour.
///
/// Settings are checked by [`Builder::build`], which returns a [`BuildError`] naming the bad
/// value instead of panicking.
///
/// # Stealing and placement
///
/// Which P an idle P steals from is decided by a [`StealPolicy`] (see
/// `gpm_scheduler::steal`). The policy in force is, first that applies: the one given to
/// [`Builder::steal_policy`]; the environment variable `GPM_STEAL`
/// (a name of [`StealPolicy::ALL`], read by `build`); the cargo feature (`steal-affinity`
/// by default; several on: [`StealPolicy::compiled_default`]).
/// [`Builder::steal_weights`] sets the affinity weights whichever way affinity was chosen.
///
/// The policies read the machine from [`Builder::topology`] (default: this machine as
/// detected once per process, or a flat one-node model if detection fails) and the P -> PU
/// map from [`Builder::placement`] (default compact). A synthetic or XML topology lets a
/// small machine run "a 4-node machine" for tests and experiments; nothing is pinned then.
///
/// ```
/// use gpm::numa::{Placement, Topology};
/// use gpm::steal::StealPolicy;
///
/// let machine = Topology::from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2").unwrap();
/// let rt = gpm::Runtime::builder()
///     .worker_threads(4)
///     .topology(machine)
///     .placement(Placement::ScatterNodes)
///     .steal_policy(StealPolicy::Hierarchical)
///     .build()
///     .unwrap();
/// assert_eq!(rt.handle().steal_stats().policy, "hierarchical");
/// ```
///
/// ```
/// let rt = gpm::Runtime::builder()
///     .worker_threads(2)
///     .thread_name("my-worker")
///     .max_blocking_threads(16)
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 2 + 2 }), 4);
/// assert!(gpm::Runtime::builder().worker_threads(0).build().is_err());
/// ```
///
/// # tokio's settings that gpm always has on
///
/// [`Builder::enable_all`], [`Builder::enable_io`] and [`Builder::enable_time`] are accepted
/// and do nothing: gpm's I/O and timer driver is part of every runtime, so a builder line
/// ported from tokio compiles unchanged.
#[derive(Debug, Clone)]
pub struct Builder {
    worker_threads: Option<usize>,
    max_blocking_threads: usize,
    thread_name: ThreadName,
    on_thread_start: Option<ThreadHook>,
    on_thread_stop: Option<ThreadHook>,
    thread_stack_size: Option<usize>,
    thread_keep_alive: Duration,
    global_queue_interval: u32,
    probe_sampling: u32,
    probes_enabled: bool,
    topology: Option<Topology>,
    placement: Placement,
    pin_workers: bool,
    steal_policy: Option<StealPolicy>,
    steal_weights: Option<(f64, f64, f64)>,
    last_p_wakeups: bool,
    task_allocator: TaskAllocator,
    processor_nodes: Option<Vec<usize>>,
    start_paused: bool,
    current_thread: bool,
    blocking_pool_sizing: Option<PoolSizingConfig>,
    name: Option<String>,
}

/// Why a runtime could not be built.
#[derive(Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(Debug)]
enum BuildErrorKind {
    Invalid {
        setting: &'static str,
        reason: String,
    },
    Spawn(std::io::Error),
    Driver(std::io::Error),
    /// A `gpm::overload` configuration given to a setting; the error names its field.
    Overload {
        setting: &'static str,
        error: ConfigError,
    },
}

impl BuildError {
    fn invalid(setting: &'static str, reason: String) -> BuildError {
        BuildError {
            kind: BuildErrorKind::Invalid { setting, reason },
        }
    }

    /// Whether a setting was out of range (as opposed to the OS refusing a thread).
    pub fn is_invalid_setting(&self) -> bool {
        matches!(
            self.kind,
            BuildErrorKind::Invalid { .. } | BuildErrorKind::Overload { .. }
        )
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::Invalid { setting, reason } => {
                write!(f, "invalid runtime setting `{setting}`: {reason}")
            }
            BuildErrorKind::Spawn(error) => write!(f, "could not start a runtime thread: {error}"),
            BuildErrorKind::Driver(error) => {
                write!(f, "could not create the I/O driver (epoll): {error}")
            }
            BuildErrorKind::Overload { setting, error } => write!(
                f,
                "invalid runtime setting `{setting}.{}`: {}",
                error.field, error.reason
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BuildErrorKind::Spawn(error) | BuildErrorKind::Driver(error) => Some(error),
            BuildErrorKind::Overload { error, .. } => Some(error),
            BuildErrorKind::Invalid { .. } => None,
        }
    }
}

impl From<BuildError> for std::io::Error {
    fn from(error: BuildError) -> std::io::Error {
        match error.kind {
            BuildErrorKind::Spawn(error) | BuildErrorKind::Driver(error) => error,
            kind @ (BuildErrorKind::Invalid { .. } | BuildErrorKind::Overload { .. }) => {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    BuildError { kind }.to_string(),
                )
            }
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new_multi_thread()
    }
}

impl Builder {
    /// The default configuration: one P per available core.
    pub fn new_multi_thread() -> Builder {
        Builder {
            worker_threads: None,
            max_blocking_threads: 512,
            thread_name: ThreadName::Fixed("gpm-worker".to_owned()),
            on_thread_start: None,
            on_thread_stop: None,
            thread_stack_size: None,
            thread_keep_alive: Duration::from_secs(10),
            global_queue_interval: DEFAULT_GLOBAL_QUEUE_INTERVAL,
            probe_sampling: super::probes::DEFAULT_SAMPLE_EVERY,
            probes_enabled: true,
            topology: None,
            placement: Placement::Compact,
            pin_workers: false,
            steal_policy: None,
            steal_weights: None,
            last_p_wakeups: true,
            task_allocator: TaskAllocator::default(),
            processor_nodes: None,
            start_paused: false,
            current_thread: false,
            blocking_pool_sizing: None,
            name: None,
        }
    }

    /// A builder of a current-thread runtime, as tokio's `Builder::new_current_thread`: one
    /// P and no worker thread; the thread that calls `block_on` runs the spawned tasks
    /// while it is inside `block_on` (see `rt/current_thread.rs`). `worker_threads` other
    /// than 1, placement and pinning do not apply (`build` refuses more than one worker).
    pub fn new_current_thread() -> Builder {
        let mut builder = Builder::new_multi_thread();
        builder.current_thread = true;
        builder
    }

    /// Where task memory comes from (default [`TaskAllocator::Slab`]): per-P slab caches
    /// over NUMA-node pools, or the global allocator for comparison.
    ///
    /// ```
    /// use gpm::TaskAllocator;
    /// let rt = gpm::Runtime::builder()
    ///     .worker_threads(1)
    ///     .task_allocator(TaskAllocator::System)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(async { gpm::spawn(async { 7 }).await.unwrap() }), 7);
    /// assert_eq!(rt.handle().task_allocator_stats().allocator, TaskAllocator::System);
    /// ```
    pub fn task_allocator(&mut self, allocator: TaskAllocator) -> &mut Self {
        self.task_allocator = allocator;
        self
    }

    /// The OS NUMA node of each P (one entry per worker thread, each an online node): the
    /// slab takes each P's task memory from its node. Default: with
    /// [`pin_workers`](Builder::pin_workers) on this machine, the node of each P's PU (from
    /// the [`placement`](Builder::placement)); else the machine's node when it has one, else
    /// one unbound pool (unpinned Ms move between nodes).
    ///
    /// ```
    /// let rt = gpm::Runtime::builder()
    ///     .worker_threads(2)
    ///     .processor_nodes(vec![0, 0])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.handle().task_allocator_stats().nodes[0].os_node, Some(0));
    /// let bad = gpm::Runtime::builder().worker_threads(2).processor_nodes(vec![0]).build();
    /// assert!(bad.unwrap_err().is_invalid_setting());
    /// ```
    pub fn processor_nodes(&mut self, nodes: Vec<usize>) -> &mut Self {
        self.processor_nodes = Some(nodes);
        self
    }

    /// Number of Ps (GOMAXPROCS). Default: the number of available cores. Must be in
    /// `1..=MAX_WORKER_THREADS`.
    pub fn worker_threads(&mut self, count: usize) -> &mut Self {
        self.worker_threads = Some(count);
        self
    }

    /// Most threads for `spawn_blocking` (default 512), in `1..=MAX_BLOCKING_THREADS`.
    /// [`Builder::blocking_pool_sizing`] replaces this cap.
    pub fn max_blocking_threads(&mut self, count: usize) -> &mut Self {
        self.max_blocking_threads = count;
        self
    }

    /// Sizes the blocking pool by Little's law instead of a fixed cap: at most
    /// `ceil(lambda * S)` threads for blocking closures (on top of the Ms), where `lambda` is
    /// the closures' arrival rate and `S` their mean time on a thread, measured over each
    /// `sizing.window` (closures still running count with their time so far), clamped to
    /// `[sizing.min, sizing.max]`. It grows at once (even within a window, as arrivals
    /// come) and shrinks only once every window of `sizing.shrink_after` asked for less,
    /// then to the most they asked for; surplus threads leave when they find no work,
    /// never during a closure. The closures themselves are never refused: past the size
    /// they queue, as past `max_blocking_threads`. `Handle::blocking_pool_size` reads the
    /// size; the rule is [`PoolSizer`](crate::overload::PoolSizer)'s (gpm::overload).
    ///
    /// A bad setting (`min` 0, `min > max`, `max` 0 or over [`MAX_BLOCKING_THREADS`], a
    /// zero `window`) makes [`build`](Builder::build) return a [`BuildError`] naming the
    /// field, e.g. ``invalid runtime setting `blocking_pool_sizing.min/max`: need min <=
    /// max``, whose `source()` is the [`ConfigError`](crate::overload::ConfigError).
    ///
    /// ```
    /// use gpm::overload::PoolSizingConfig;
    /// use std::time::Duration;
    ///
    /// let sizing = PoolSizingConfig {
    ///     window: Duration::from_millis(50),
    ///     shrink_after: Duration::from_secs(2),
    ///     ..PoolSizingConfig::new(1, 64)
    /// };
    /// let rt = gpm::Runtime::builder().blocking_pool_sizing(sizing).build().unwrap();
    /// let sum = rt.block_on(async {
    ///     gpm::task::spawn_blocking(|| (1..=10u64).sum::<u64>()).await.unwrap()
    /// });
    /// assert_eq!(sum, 55);
    ///
    /// let error = gpm::Runtime::builder()
    ///     .blocking_pool_sizing(PoolSizingConfig::new(8, 2))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(error.is_invalid_setting());
    /// assert!(error.to_string().contains("blocking_pool_sizing.min/max"), "{error}");
    /// ```
    pub fn blocking_pool_sizing(&mut self, sizing: PoolSizingConfig) -> &mut Self {
        self.blocking_pool_sizing = Some(sizing);
        self
    }

    /// The runtime's name, as tokio's `Builder::name`: [`Handle::name`] returns it (default:
    /// none). It names the runtime, not its threads ([`Builder::thread_name`] does that).
    /// An empty or all-whitespace name makes [`build`](Builder::build) return a
    /// [`BuildError`] naming `name` (tokio's setter panics).
    ///
    /// ```
    /// let rt = gpm::Runtime::builder().worker_threads(1).name("ingest").build().unwrap();
    /// assert_eq!(rt.handle().name(), Some("ingest"));
    /// let seen = rt.block_on(async { gpm::Handle::current().name().map(str::to_owned) });
    /// assert_eq!(seen.as_deref(), Some("ingest"));
    /// assert!(gpm::Runtime::builder().name(" ").build().unwrap_err().is_invalid_setting());
    /// ```
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = Some(name.into());
        self
    }

    /// Name of the runtime's threads (default `gpm-worker`); no NUL bytes.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.thread_name = ThreadName::Fixed(name.into());
        self
    }

    /// Names each runtime thread with what `make` returns when the thread starts (replacing
    /// [`Builder::thread_name`]), like tokio's. A name is cut at its first NUL byte.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// static NEXT: AtomicUsize = AtomicUsize::new(0);
    /// let rt = gpm::Runtime::builder()
    ///     .worker_threads(1)
    ///     .thread_name_fn(|| format!("my-pool-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    ///     .build()
    ///     .unwrap();
    /// let name = rt.block_on(rt.spawn(async {
    ///     std::thread::current().name().unwrap().to_owned()
    /// }));
    /// assert!(name.unwrap().starts_with("my-pool-"));
    /// ```
    pub fn thread_name_fn<F>(&mut self, make: F) -> &mut Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.thread_name = ThreadName::Generated(Arc::new(make));
        self
    }

    /// Runs `hook` on every runtime thread (the Ms and the blocking pool's threads: gpm
    /// takes both from one pool) when it starts, before it runs anything, inside the
    /// runtime context. A panic in the hook is caught and reported on stderr.
    pub fn on_thread_start<F>(&mut self, hook: F) -> &mut Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_start = Some(ThreadHook(Arc::new(hook)));
        self
    }

    /// Runs `hook` on every runtime thread just before it exits (idle past its keep-alive,
    /// or at shutdown; dropping the runtime waits for it). A panic in the hook is caught
    /// and reported on stderr.
    pub fn on_thread_stop<F>(&mut self, hook: F) -> &mut Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_stop = Some(ThreadHook(Arc::new(hook)));
        self
    }

    /// Accepted for tokio compatibility; does nothing: gpm's I/O and timer driver is always
    /// on.
    pub fn enable_all(&mut self) -> &mut Self {
        self
    }

    /// Accepted for tokio compatibility; does nothing: the I/O driver is always on.
    pub fn enable_io(&mut self) -> &mut Self {
        self
    }

    /// Accepted for tokio compatibility; does nothing: the timer driver is always on.
    pub fn enable_time(&mut self) -> &mut Self {
        self
    }

    /// Stack size of the runtime's threads; at least `MIN_STACK_SIZE`.
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// How long an idle blocking thread waits for work before exiting (default 10 s).
    pub fn thread_keep_alive(&mut self, duration: Duration) -> &mut Self {
        self.thread_keep_alive = duration;
        self
    }

    /// Starts the runtime's clock paused, as [`gpm::time::pause`](crate::time::pause) right
    /// after the build (tokio's `start_paused`, for tests): timers then run on virtual time
    /// that jumps to the next timer whenever the runtime is idle. Needs one worker thread;
    /// [`build`](Builder::build) refuses more.
    pub fn start_paused(&mut self, paused: bool) -> &mut Self {
        self.start_paused = paused;
        self
    }

    /// Ticks between a P's forced looks at the global queue (default 61, as Go); at least 1.
    pub fn global_queue_interval(&mut self, ticks: u32) -> &mut Self {
        self.global_queue_interval = ticks;
        self
    }

    /// Timestamps one task schedule in `every` (per M, and per thread off the Ms; default
    /// 32) for the probes' latency histograms and Little's law, and for the affinity
    /// policy's latency history (a low-rate service that wants tight quantiles may time
    /// more, down to `1`: every schedule);
    /// `0` turns timing off (the event counters stay on, the affinity policy loses its
    /// latency term). See [`Handle::probes`].
    pub fn probe_sampling(&mut self, every: u32) -> &mut Self {
        self.probe_sampling = every;
        self
    }

    /// Whether the probes count events and time samples (default: on). Off, a snapshot
    /// still shows queue depths, threads and tasks alive, and stop-the-world still works,
    /// but the event counters (steals by relation included: `Handle::steal_stats` then
    /// reads zeros), latencies and Little's law stay at zero.
    pub fn enable_probes(&mut self, enabled: bool) -> &mut Self {
        self.probes_enabled = enabled;
        self
    }

    /// The machine the stealing policies and the placement work on. Default: this machine,
    /// detected once per process (a flat one-node model if detection fails).
    pub fn topology(&mut self, topology: Topology) -> &mut Self {
        self.topology = Some(topology);
        self
    }

    /// Which PU each P sits on (default [`Placement::Compact`]); with more Ps than PUs the
    /// list wraps around. A PU the topology lacks is a [`BuildError`] naming `placement`.
    pub fn placement(&mut self, placement: Placement) -> &mut Self {
        self.placement = placement;
        self
    }

    /// Pin each M to its P's PU whenever it holds the P (default off). Only done when the
    /// topology is this machine ([`Topology::is_this_system`]); with a synthetic or XML
    /// topology the setting is ignored. A PU outside the process's allowed CPUs is a
    /// [`BuildError`] naming `pin_workers`.
    pub fn pin_workers(&mut self, pin: bool) -> &mut Self {
        self.pin_workers = pin;
        self
    }

    /// The stealing policy, overriding `GPM_STEAL` and the cargo feature.
    pub fn steal_policy(&mut self, policy: StealPolicy) -> &mut Self {
        self.steal_policy = Some(policy);
        self
    }

    /// The affinity policy's weights (default 0.5, 0.3, 0.2): shared L3, NUMA proximity,
    /// victim's queue wait. They apply whenever the policy in force is affinity. A
    /// negative, infinite or NaN weight is a [`BuildError`] naming `steal_weights`.
    pub fn steal_weights(&mut self, cache: f64, numa: f64, latency: f64) -> &mut Self {
        self.steal_weights = Some((cache, numa, latency));
        self
    }

    /// Whether a task woken off the runtime's Ps (from another thread, `block_on`, the
    /// blocking pool) goes back to the P that last polled it while that P is awake
    /// (default on), instead of the global injector.
    pub fn last_p_wakeups(&mut self, enabled: bool) -> &mut Self {
        self.last_p_wakeups = enabled;
        self
    }

    /// Checks the settings and starts the runtime's Ms.
    pub fn build(&mut self) -> Result<Runtime, BuildError> {
        let workers = self.checked_worker_threads()?;
        self.check_settings()?;
        let policy = self.resolved_steal_policy()?;
        let (topology, pins) = self.placed_topology(workers)?;
        let pool = Pool::new(PoolConfig {
            thread_name: self.thread_name.clone(),
            on_thread_start: self.on_thread_start.clone(),
            on_thread_stop: self.on_thread_stop.clone(),
            stack_size: self.thread_stack_size,
            max_threads: self.max_blocking_threads + workers,
            keep_alive: self.thread_keep_alive,
            workers,
            sizing: self.blocking_pool_sizing.clone(),
        });
        let config = SchedulerConfig {
            processors: workers,
            global_queue_interval: self.global_queue_interval,
            count_events: self.probes_enabled,
        };
        if self.start_paused && workers != 1 {
            let reason = format!(
                "a paused clock needs one worker thread (tokio: the current-thread runtime), \
                 got {workers}"
            );
            return Err(BuildError::invalid("start_paused", reason));
        }
        let driver =
            crate::driver::Driver::new(workers, self.start_paused).map_err(|e| BuildError {
                kind: BuildErrorKind::Driver(e),
            })?;
        let task_memory = self.task_memory(workers, pins.as_deref())?;
        let steal = StealConfig { policy, topology };
        let options = SharedOptions {
            pins,
            last_p_wakeups: self.last_p_wakeups,
            probes_enabled: self.probes_enabled,
            sample_every: self.probe_sampling,
            current_thread: self.current_thread,
            name: self.name.clone(),
        };
        let (shared, processors) = Shared::new(config, steal, options, pool, driver, task_memory);
        let runtime = Runtime::from_handle(Handle { shared });
        if self.current_thread {
            for processor in processors {
                let shared = &runtime.handle().shared;
                shared.release_current_thread_processor(Box::new(processor));
            }
            return Ok(runtime);
        }
        for processor in processors {
            // On failure the runtime built so far is dropped, which shuts it down.
            runtime
                .handle()
                .shared
                .start_m(Box::new(processor))
                .map_err(|e| BuildError {
                    kind: BuildErrorKind::Spawn(e),
                })?;
        }
        Ok(runtime)
    }

    /// Builder, else `GPM_STEAL`, else the cargo feature; then the weights.
    fn resolved_steal_policy(&self) -> Result<StealPolicy, BuildError> {
        let policy = match self.steal_policy {
            Some(policy) => policy,
            None => StealPolicy::from_env()
                .map_err(|e| BuildError::invalid("GPM_STEAL", e.to_string()))?
                .unwrap_or_else(StealPolicy::compiled_default),
        };
        let Some((cache, numa, latency)) = self.steal_weights else {
            return Ok(policy);
        };
        let weights = AffinityWeights::new(cache, numa, latency)
            .map_err(|e| BuildError::invalid("steal_weights", e.to_string()))?;
        Ok(match policy {
            StealPolicy::Affinity(_) => StealPolicy::Affinity(weights),
            other => other,
        })
    }

    /// Places the Ps on the topology; returns the PUs to pin to when pinning applies.
    fn placed_topology(&self, workers: usize) -> Result<(StealTopology, Option<Pins>), BuildError> {
        let Some(machine) = self.topology.as_ref().or_else(|| detected_topology()) else {
            return Ok((StealTopology::flat(workers), None));
        };
        let placement_error = |e: gpm_numa::Error| {
            BuildError::invalid(
                "placement",
                format!("{} on {}: {e}", self.placement, machine.source()),
            )
        };
        let pus = self
            .placement
            .assign(machine, workers)
            .map_err(placement_error)?;
        let topology = StealTopology::from_topology(machine, &pus).map_err(placement_error)?;
        if !(self.pin_workers && machine.is_this_system()) {
            return Ok((topology, None));
        }
        let allowed = gpm_numa::allowed_cpus();
        if let Some(pu) = pus.iter().find(|pu| !allowed.contains(pu)) {
            return Err(BuildError::invalid(
                "pin_workers",
                format!(
                    "PU {pu} is not among this process's allowed CPUs ({})",
                    gpm_numa::format_list(&allowed)
                ),
            ));
        }
        Ok((topology, Some(pus.into_boxed_slice())))
    }

    fn checked_worker_threads(&self) -> Result<usize, BuildError> {
        let workers = match self.worker_threads {
            Some(count) => count,
            None if self.current_thread => 1,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.current_thread && workers != 1 {
            return Err(BuildError::invalid(
                "worker_threads",
                format!("a current-thread runtime has one P, not {workers}"),
            ));
        }
        if !(1..=MAX_WORKER_THREADS).contains(&workers) {
            return Err(BuildError::invalid(
                "worker_threads",
                format!(
                    "{workers} is outside 1..={MAX_WORKER_THREADS}; a runtime needs at least one P"
                ),
            ));
        }
        Ok(workers.min(gpm_scheduler::idle::MAX_PROCESSORS))
    }

    /// The task memory. Each P's slab pool is on the node of `processor_nodes`, else, when
    /// the Ms are pinned (`pins`), on the node of the P's PU, else one pool as below.
    fn task_memory(
        &self,
        workers: usize,
        pins: Option<&[usize]>,
    ) -> Result<TaskMemory, BuildError> {
        let online = gpm_numa::online_nodes();
        if let Some(nodes) = &self.processor_nodes {
            // Checked whatever the allocator, so a bad map is reported, not ignored.
            check_processor_nodes(nodes, workers, &online)?;
        }
        if self.task_allocator == TaskAllocator::System {
            return Ok(TaskMemory::System);
        }
        let pinned_nodes = pins.and_then(nodes_of_pus);
        let config = match self.processor_nodes.as_ref().or(pinned_nodes.as_ref()) {
            Some(nodes) => SlabConfig::for_processor_nodes(nodes),
            None if online.len() == 1 => SlabConfig::for_processor_nodes(&vec![online[0]; workers]),
            None => SlabConfig {
                pools: vec![None],
                processor_pool: vec![0; workers],
            },
        };
        Ok(TaskMemory::Slab(Slab::new(&config)))
    }

    fn check_settings(&self) -> Result<(), BuildError> {
        if !(1..=MAX_BLOCKING_THREADS).contains(&self.max_blocking_threads) {
            return Err(BuildError::invalid(
                "max_blocking_threads",
                format!(
                    "{} is outside 1..={MAX_BLOCKING_THREADS}",
                    self.max_blocking_threads
                ),
            ));
        }
        if let Some(sizing) = &self.blocking_pool_sizing {
            let error = |error| BuildError {
                kind: BuildErrorKind::Overload {
                    setting: "blocking_pool_sizing",
                    error,
                },
            };
            sizing.validate().map_err(error)?;
            if sizing.max > MAX_BLOCKING_THREADS {
                return Err(error(ConfigError {
                    field: "max".to_owned(),
                    reason: format!("{} is over {MAX_BLOCKING_THREADS}", sizing.max),
                }));
            }
        }
        if let Some(name) = self.name.as_ref().filter(|name| name.trim().is_empty()) {
            return Err(BuildError::invalid(
                "name",
                format!("{name:?} is empty or only whitespace; a runtime name needs a character"),
            ));
        }
        if let ThreadName::Fixed(name) = &self.thread_name {
            if name.contains('\0') {
                return Err(BuildError::invalid(
                    "thread_name",
                    format!("{name:?} contains a NUL byte"),
                ));
            }
        }
        if let Some(size) = self.thread_stack_size.filter(|&s| s < MIN_STACK_SIZE) {
            return Err(BuildError::invalid(
                "thread_stack_size",
                format!("{size} bytes is below the minimum of {MIN_STACK_SIZE}"),
            ));
        }
        if self.global_queue_interval == 0 {
            return Err(BuildError::invalid(
                "global_queue_interval",
                "0 ticks: the global queue would never be checked first; use at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The PU of each P, for pinning.
type Pins = Box<[usize]>;

/// This machine's topology, detected once per process; `None` if hwloc fails.
fn detected_topology() -> Option<&'static Topology> {
    static DETECTED: OnceLock<Option<Topology>> = OnceLock::new();
    DETECTED
        .get_or_init(|| match Topology::detect() {
            Ok(topology) => Some(topology),
            Err(error) => {
                eprintln!("gpm: topology detection failed, stealing as on one node: {error}");
                None
            }
        })
        .as_ref()
}

/// The OS node of each pinned PU on this machine (`None` if the topology cannot say).
fn nodes_of_pus(pus: &[usize]) -> Option<Vec<usize>> {
    let machine = detected_topology()?;
    pus.iter()
        .map(|&pu| {
            let node = machine.node_of(pu).ok()?;
            machine.nodes().get(node).map(|n| n.os_index)
        })
        .collect()
}

fn check_processor_nodes(
    nodes: &[usize],
    workers: usize,
    online: &[usize],
) -> Result<(), BuildError> {
    if nodes.len() != workers {
        return Err(BuildError::invalid(
            "processor_nodes",
            format!(
                "{} entries for {workers} worker threads; give one node per P",
                nodes.len()
            ),
        ));
    }
    if let Some(node) = nodes.iter().find(|node| !online.contains(node)) {
        return Err(BuildError::invalid(
            "processor_nodes",
            format!(
                "node {node} is not an online NUMA node (online: {})",
                gpm_numa::format_list(online)
            ),
        ));
    }
    Ok(())
}

//! `Builder`: configure and start a runtime, reporting bad settings as `BuildError`.

use super::blocking::{Pool, PoolConfig};
use super::handle::Handle;
use super::runtime::Runtime;
use super::worker::{Shared, TaskMemory};
use crate::alloc::{Slab, SlabConfig};
use crate::TaskAllocator;
use gpm_scheduler::{Config as SchedulerConfig, DEFAULT_GLOBAL_QUEUE_INTERVAL};
use std::fmt;
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
#[derive(Debug, Clone)]
pub struct Builder {
    worker_threads: Option<usize>,
    max_blocking_threads: usize,
    thread_name: String,
    thread_stack_size: Option<usize>,
    thread_keep_alive: Duration,
    global_queue_interval: u32,
    task_allocator: TaskAllocator,
    processor_nodes: Option<Vec<usize>>,
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
}

impl BuildError {
    fn invalid(setting: &'static str, reason: String) -> BuildError {
        BuildError {
            kind: BuildErrorKind::Invalid { setting, reason },
        }
    }

    /// Whether a setting was out of range (as opposed to the OS refusing a thread).
    pub fn is_invalid_setting(&self) -> bool {
        matches!(self.kind, BuildErrorKind::Invalid { .. })
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::Invalid { setting, reason } => {
                write!(f, "invalid runtime setting `{setting}`: {reason}")
            }
            BuildErrorKind::Spawn(error) => write!(f, "could not start a runtime thread: {error}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BuildErrorKind::Spawn(error) => Some(error),
            BuildErrorKind::Invalid { .. } => None,
        }
    }
}

impl From<BuildError> for std::io::Error {
    fn from(error: BuildError) -> std::io::Error {
        match error.kind {
            BuildErrorKind::Spawn(error) => error,
            kind @ BuildErrorKind::Invalid { .. } => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                BuildError { kind }.to_string(),
            ),
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
            thread_name: "gpm-worker".to_owned(),
            thread_stack_size: None,
            thread_keep_alive: Duration::from_secs(10),
            global_queue_interval: DEFAULT_GLOBAL_QUEUE_INTERVAL,
            task_allocator: TaskAllocator::default(),
            processor_nodes: None,
        }
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
    /// slab takes each P's task memory from its node. Default: the machine's node when it
    /// has one, else one unbound pool (unpinned Ms move between nodes).
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
    pub fn max_blocking_threads(&mut self, count: usize) -> &mut Self {
        self.max_blocking_threads = count;
        self
    }

    /// Name of the runtime's threads (default `gpm-worker`); no NUL bytes.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.thread_name = name.into();
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

    /// Ticks between a P's forced looks at the global queue (default 61, as Go); at least 1.
    pub fn global_queue_interval(&mut self, ticks: u32) -> &mut Self {
        self.global_queue_interval = ticks;
        self
    }

    /// Checks the settings and starts the runtime's Ms.
    pub fn build(&mut self) -> Result<Runtime, BuildError> {
        let workers = self.checked_worker_threads()?;
        self.check_settings()?;
        let pool = Pool::new(PoolConfig {
            thread_name: self.thread_name.clone(),
            stack_size: self.thread_stack_size,
            max_threads: self.max_blocking_threads + workers,
            keep_alive: self.thread_keep_alive,
        });
        let config = SchedulerConfig {
            processors: workers,
            global_queue_interval: self.global_queue_interval,
        };
        let task_memory = self.task_memory(workers)?;
        let (shared, processors) = Shared::new(config, pool, task_memory);
        let runtime = Runtime::from_handle(Handle { shared });
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

    fn checked_worker_threads(&self) -> Result<usize, BuildError> {
        let workers = match self.worker_threads {
            Some(count) => count,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
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

    fn task_memory(&self, workers: usize) -> Result<TaskMemory, BuildError> {
        let online = gpm_numa::online_nodes();
        if let Some(nodes) = &self.processor_nodes {
            // Checked whatever the allocator, so a bad map is reported, not ignored.
            check_processor_nodes(nodes, workers, &online)?;
        }
        if self.task_allocator == TaskAllocator::System {
            return Ok(TaskMemory::System);
        }
        let config = match &self.processor_nodes {
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
        if self.thread_name.contains('\0') {
            return Err(BuildError::invalid(
                "thread_name",
                format!("{:?} contains a NUL byte", self.thread_name),
            ));
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

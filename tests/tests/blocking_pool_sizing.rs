//! `Builder::blocking_pool_sizing`: the blocking pool sized by Little's law still runs every
//! closure, never more at once than its `max`, grows under a backlog, shrinks after a
//! light phase, shuts down cleanly; bad settings are errors naming the field.

use gpm::overload::{ConfigError, PoolSizingConfig};
use gpm_tests::watchdog;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A safety net for the loops that wait for the pool to change, not a speed requirement:
/// the changes take tens of milliseconds.
const GIVE_UP: Duration = Duration::from_secs(20);

/// Counts closures running now and the most seen at once.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Concurrency {
    fn run<T>(&self, work: impl FnOnce() -> T) -> T {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let output = work();
        self.now.fetch_sub(1, Ordering::SeqCst);
        output
    }
}

#[test]
fn every_closure_runs_the_pool_grows_to_max_shrinks_and_shuts_down() {
    watchdog("blocking_pool_sizing", || {
        let (started, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (on_start, on_stop) = (Arc::clone(&started), Arc::clone(&stopped));
        let sizing = PoolSizingConfig {
            window: Duration::from_millis(5),
            shrink_after: Duration::from_millis(20),
            ..PoolSizingConfig::new(1, 3)
        };
        let rt = gpm::Runtime::builder()
            .worker_threads(2)
            .blocking_pool_sizing(sizing)
            // Longer than GIVE_UP: surplus threads must leave because the pool shrank, not
            // because they idled out.
            .thread_keep_alive(Duration::from_secs(3600))
            .on_thread_start(move || {
                on_start.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                on_stop.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        assert_eq!(handle.blocking_pool_size(), Some(1));

        // A backlog: 300 closures of 1 ms at once want far more than 3 threads.
        let concurrency = Arc::new(Concurrency::default());
        let results = rt.block_on(async {
            let handles: Vec<_> = (0..300u64)
                .map(|i| {
                    let concurrency = Arc::clone(&concurrency);
                    gpm::task::spawn_blocking(move || {
                        concurrency.run(|| {
                            std::thread::sleep(Duration::from_millis(1));
                            i * 2
                        })
                    })
                })
                .collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await.unwrap());
            }
            results
        });
        assert_eq!(results, (0..300u64).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(
            concurrency.most.load(Ordering::SeqCst),
            3,
            "the backlog grows the pool to its max, and no further"
        );

        // A light phase: one short closure at a time asks for 1 thread; after 20 ms of
        // such windows the pool shrinks and its surplus threads leave.
        let deadline = Instant::now() + GIVE_UP;
        let mut light = 0u64;
        while handle.blocking_pool_size() != Some(1) {
            assert!(Instant::now() < deadline, "the pool never shrank");
            let value = rt.block_on(handle.spawn_blocking(move || light + 1));
            light = value.unwrap();
        }
        assert!(light > 0);
        while handle.num_threads() > 2 + 1 {
            assert!(
                Instant::now() < deadline,
                "{} threads stayed after the pool shrank to 1 (+2 Ms)",
                handle.num_threads()
            );
            std::thread::yield_now();
        }

        // Shutdown: every thread that started stops.
        drop(rt);
        assert!(started.load(Ordering::SeqCst) >= 2 + 3);
        assert_eq!(
            started.load(Ordering::SeqCst),
            stopped.load(Ordering::SeqCst)
        );
    });
}

#[test]
fn bad_sizings_are_errors_naming_the_field() {
    let field = |sizing: PoolSizingConfig| {
        let error = gpm::Runtime::builder()
            .worker_threads(1)
            .blocking_pool_sizing(sizing)
            .build()
            .unwrap_err();
        assert!(error.is_invalid_setting(), "{error}");
        let source = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<ConfigError>())
            .unwrap_or_else(|| panic!("no ConfigError behind {error}"));
        let message = error.to_string();
        assert!(
            message.contains(&format!("blocking_pool_sizing.{}", source.field)),
            "{message}"
        );
        source.field.clone()
    };
    assert_eq!(field(PoolSizingConfig::new(4, 2)), "min/max");
    assert_eq!(field(PoolSizingConfig::new(1, 0)), "max");
    assert_eq!(field(PoolSizingConfig::new(0, 4)), "min");
    assert_eq!(
        field(PoolSizingConfig::new(
            1,
            gpm::runtime::MAX_BLOCKING_THREADS + 1
        )),
        "max"
    );
    let no_window = PoolSizingConfig {
        window: Duration::ZERO,
        ..PoolSizingConfig::new(1, 2)
    };
    assert_eq!(field(no_window), "window");
}

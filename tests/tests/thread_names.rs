//! Runtime threads carry the configured name.

use gpm_tests::watchdog;
use std::sync::mpsc;

fn current_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

/// Tasks spawned through `Handle::spawn`, blocking closures, and the M that takes over a P
/// after `block_in_place` all run on threads with the configured `thread_name`.
#[test]
fn threads_use_configured_name() {
    watchdog("threads_use_configured_name", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(2)
            .thread_name("custom-gpm-name")
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let names = rt.block_on(async move {
            let tasks: Vec<_> = (0..16)
                .map(|_| handle.spawn(async { current_name() }))
                .collect();
            let mut names = Vec::new();
            for task in tasks {
                names.push(task.await.unwrap());
            }
            names
        });
        assert!(
            names
                .iter()
                .all(|n| n.as_deref() == Some("custom-gpm-name")),
            "task thread names: {names:?}"
        );
        let blocking = rt.block_on(rt.spawn_blocking(current_name)).unwrap();
        assert_eq!(blocking.as_deref(), Some("custom-gpm-name"));

        // A task spawned while a worker sits in block_in_place runs on whichever M holds a P
        // then, possibly the new one started for the hand-off.
        let (inside_tx, inside_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let blocked = rt.spawn(async move {
            gpm::task::block_in_place(|| {
                inside_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            current_name()
        });
        inside_rx.recv().unwrap();
        let during = rt.block_on(rt.spawn(async { current_name() })).unwrap();
        release_tx.send(()).unwrap();
        assert_eq!(during.as_deref(), Some("custom-gpm-name"));
        assert_eq!(
            rt.block_on(blocked).unwrap().as_deref(),
            Some("custom-gpm-name")
        );
    });
}

/// Without a configured name, runtime threads are called `gpm-worker`.
#[test]
fn default_thread_name() {
    let name = gpm_tests::output_of_task("default_thread_name", 1, async { current_name() });
    assert_eq!(name.as_deref(), Some("gpm-worker"));
}

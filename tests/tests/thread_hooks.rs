//! `Builder::{on_thread_start, on_thread_stop, thread_name_fn, enable_*}` and `Handle::id`.
//! `start_stop_callbacks_called` is tokio's (`tests/rt_threaded.rs`), ported.

use futures::channel::oneshot;
use gpm_tests::watchdog;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};

#[test]
fn start_stop_callbacks_called() {
    watchdog("start_stop_callbacks_called", || {
        let after_start = Arc::new(AtomicUsize::new(0));
        let before_stop = Arc::new(AtomicUsize::new(0));

        let after_inner = after_start.clone();
        let before_inner = before_stop.clone();
        let rt = gpm::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_start(move || {
                after_inner.clone().fetch_add(1, Ordering::Relaxed);
            })
            .on_thread_stop(move || {
                before_inner.clone().fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();

        let (tx, rx) = oneshot::channel();

        rt.spawn(async move {
            tx.send(()).unwrap();
        });

        rt.block_on(rx).unwrap();

        drop(rt);

        assert!(after_start.load(Ordering::Relaxed) > 0);
        assert!(before_stop.load(Ordering::Relaxed) > 0);
    });
}

/// Every runtime thread runs both hooks exactly once: the Ms and the blocking threads,
/// counted by thread id; once the runtime is dropped, every started thread has stopped.
/// The start hook runs inside the runtime context.
#[test]
fn hooks_run_once_on_every_thread() {
    watchdog("hooks_run_once_on_every_thread", || {
        let started = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(Mutex::new(Vec::new()));
        let in_context = Arc::new(AtomicUsize::new(0));
        let rt = {
            let (started, stopped, in_context) =
                (started.clone(), stopped.clone(), in_context.clone());
            gpm::Runtime::builder()
                .worker_threads(2)
                .enable_io()
                .enable_time()
                .on_thread_start(move || {
                    started.lock().unwrap().push(std::thread::current().id());
                    if gpm::Handle::try_current().is_ok() {
                        in_context.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .on_thread_stop(move || stopped.lock().unwrap().push(std::thread::current().id()))
                .build()
                .unwrap()
        };
        // Four blocking closures held at a barrier at once: four blocking threads.
        let barrier = Arc::new(Barrier::new(5));
        let blocking: Vec<_> = (0..4)
            .map(|_| {
                let barrier = barrier.clone();
                rt.spawn_blocking(move || {
                    barrier.wait();
                    std::thread::current().id()
                })
            })
            .collect();
        barrier.wait();
        let blocking_threads: HashSet<_> = blocking
            .into_iter()
            .map(|handle| rt.block_on(handle).unwrap())
            .collect();
        assert_eq!(blocking_threads.len(), 4);
        drop(rt);

        let started = started.lock().unwrap().clone();
        let stopped = stopped.lock().unwrap().clone();
        let started_set: HashSet<_> = started.iter().copied().collect();
        let stopped_set: HashSet<_> = stopped.iter().copied().collect();
        assert_eq!(started.len(), started_set.len(), "a thread started twice");
        assert_eq!(stopped.len(), stopped_set.len(), "a thread stopped twice");
        assert_eq!(started_set, stopped_set);
        assert!(started.len() >= 2 + 4, "{} threads", started.len());
        assert!(blocking_threads.is_subset(&started_set));
        assert_eq!(in_context.load(Ordering::SeqCst), started.len());
    });
}

/// A panicking hook is contained: the runtime still runs tasks and shuts down.
#[test]
fn panicking_hooks_are_contained() {
    watchdog("panicking_hooks_are_contained", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(2)
            .on_thread_start(|| panic!("start hook"))
            .on_thread_stop(|| panic!("stop hook"))
            .build()
            .unwrap();
        assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 8)).unwrap(), 8);
        drop(rt);
    });
}

/// `thread_name_fn` names each thread as it starts: Ms and blocking threads alike.
#[test]
fn thread_name_fn_names_every_thread() {
    watchdog("thread_name_fn_names_every_thread", || {
        let next = Arc::new(AtomicUsize::new(0));
        let rt = {
            let next = next.clone();
            gpm::Runtime::builder()
                .worker_threads(2)
                .thread_name_fn(move || format!("pool-{}", next.fetch_add(1, Ordering::SeqCst)))
                .build()
                .unwrap()
        };
        let name = || std::thread::current().name().unwrap_or("").to_owned();
        let task_name = rt.block_on(rt.spawn(async move { name() })).unwrap();
        let blocking_name = rt.block_on(rt.spawn_blocking(name)).unwrap();
        for name in [&task_name, &blocking_name] {
            let n: usize = name
                .strip_prefix("pool-")
                .unwrap_or_else(|| panic!("unexpected thread name {name:?}"))
                .parse()
                .unwrap();
            assert!(n < next.load(Ordering::SeqCst));
        }
        assert!(next.load(Ordering::SeqCst) >= 2);
    });
}

/// A NUL byte in a generated name cuts the name there (the OS cannot take it).
#[test]
fn thread_name_fn_with_nul_is_cut() {
    watchdog("thread_name_fn_with_nul_is_cut", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(1)
            .thread_name_fn(|| "before\0after".to_owned())
            .build()
            .unwrap();
        let name = rt
            .block_on(rt.spawn(async { std::thread::current().name().map(str::to_owned) }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("before"));
    });
}

/// `Handle::id`: one per runtime, shared by its handles (current and cloned), shown as
/// tokio shows `runtime::Id`.
#[test]
fn handle_id() {
    watchdog("handle_id", || {
        let a = gpm_tests::runtime(1);
        let b = gpm_tests::runtime(1);
        let id: gpm::runtime::Id = a.handle().id();
        assert_eq!(a.handle().clone().id(), id);
        assert_ne!(b.handle().id(), id);
        assert_eq!(a.block_on(async { gpm::Handle::current().id() }), id);
        let (tx, rx) = mpsc::channel();
        a.spawn(async move { tx.send(gpm::Handle::current().id()).unwrap() });
        assert_eq!(rx.recv().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("Id({id})"));
        assert!(id.to_string().parse::<u64>().unwrap() > 0);
    });
}

//! Task memory with both allocators: many tasks, tasks outliving the runtime through their
//! join handles, large tasks, and the slab's live bytes returning to zero.

use gpm::{Runtime, TaskAllocator};
use gpm_tests::{join_all, spawn_and_sum, watchdog, WORKER_COUNTS};

const ALLOCATORS: [TaskAllocator; 2] = [TaskAllocator::Slab, TaskAllocator::System];

fn runtime(workers: usize, allocator: TaskAllocator) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .task_allocator(allocator)
        .build()
        .unwrap_or_else(|e| panic!("could not build a {allocator:?} runtime: {e}"))
}

/// Runs `body` for every allocator and worker count, each under the watchdog.
fn for_each_runtime(name: &str, body: fn(Runtime, TaskAllocator)) {
    for allocator in ALLOCATORS {
        for workers in WORKER_COUNTS {
            let name = format!("{name}-{allocator:?}-{workers}");
            watchdog(&name, move || body(runtime(workers, allocator), allocator));
        }
    }
}

/// Waits until every task is freed (completed tasks leave the list, then the last
/// reference frees the cell, shortly after the join handle read the output).
fn wait_until_freed(rt: &Runtime) {
    let handle = rt.handle();
    while handle.num_alive_tasks() != 0 || handle.task_allocator_stats().live_bytes() != 0 {
        std::thread::yield_now();
    }
}

#[test]
fn many_tasks_from_a_task_and_from_block_on_free_all_their_memory() {
    for_each_runtime("many", |rt, allocator| {
        const TASKS: u64 = 20_000;
        let from_task = rt.block_on(rt.spawn(spawn_and_sum(TASKS))).unwrap();
        let from_block_on = rt.block_on(spawn_and_sum(TASKS));
        assert_eq!(from_task, TASKS * (TASKS - 1) / 2);
        assert_eq!(from_block_on, from_task);
        wait_until_freed(&rt);
        let stats = rt.handle().task_allocator_stats();
        assert_eq!(stats.allocator, allocator);
        if allocator == TaskAllocator::Slab {
            // Spawns from a task take memory from that P's cache.
            assert!(stats.hits() > TASKS / 2, "{stats:#?}");
            assert!(stats.nodes[0].unowned_allocations >= TASKS, "{stats:#?}");
        } else {
            assert_eq!(stats.hits(), 0);
        }
    });
}

#[test]
fn join_handles_outliving_the_runtime_free_their_tasks_into_live_memory() {
    for_each_runtime("outlive", |rt, allocator| {
        const TASKS: usize = 2_000;
        let handle = rt.handle().clone();
        // Half complete, half never do (cancelled at shutdown); all keep their handles.
        let joins: Vec<_> = (0..TASKS)
            .map(|i| {
                rt.spawn(async move {
                    if i % 2 == 1 {
                        std::future::pending::<()>().await;
                    }
                    vec![i; 4]
                })
            })
            .collect();
        drop(rt);
        let mut completed = 0;
        let mut cancelled = 0;
        for (i, join) in joins.into_iter().enumerate() {
            match futures::executor::block_on(join) {
                Ok(output) => {
                    assert_eq!(output, vec![i; 4]);
                    completed += 1;
                }
                Err(error) => {
                    assert!(error.is_cancelled(), "task {i}: {error}");
                    cancelled += 1;
                }
            }
        }
        // Even ones may have been cancelled before they ran; odd ones never complete.
        assert!(cancelled >= TASKS / 2);
        assert_eq!(completed + cancelled, TASKS);
        let stats = handle.task_allocator_stats();
        assert_eq!(stats.live_bytes(), 0, "{allocator:?}: {stats:#?}");
        assert_eq!(handle.num_alive_tasks(), 0);
    });
}

#[test]
fn join_handles_dropped_on_a_foreign_thread_after_the_runtime() {
    let rt = runtime(2, TaskAllocator::Slab);
    let handle = rt.handle().clone();
    let joins: Vec<_> = (0..1_000).map(|i| rt.spawn(async move { i })).collect();
    rt.block_on(async {
        while gpm::Handle::current().num_alive_tasks() != 0 {
            gpm::task::yield_now().await;
        }
    });
    drop(rt);
    assert!(
        handle.task_allocator_stats().live_bytes() > 0,
        "the handles keep their tasks"
    );
    std::thread::spawn(move || drop(joins)).join().unwrap();
    let stats = handle.task_allocator_stats();
    assert_eq!(stats.live_bytes(), 0, "{stats:#?}");
    assert!(
        stats.nodes[0].remote_frees >= 1_000,
        "foreign frees go to the remote list"
    );
}

#[test]
fn tasks_bigger_than_the_largest_class_use_the_global_allocator() {
    for_each_runtime("large", |rt, allocator| {
        let outputs = rt.block_on(async {
            let handles: Vec<_> = (0..100u8)
                .map(|i| {
                    let payload = [i; 8192];
                    gpm::spawn(async move {
                        gpm::task::yield_now().await;
                        payload.iter().map(|&b| u64::from(b)).sum::<u64>()
                    })
                })
                .collect();
            join_all(handles).await
        });
        for (i, sum) in outputs.into_iter().enumerate() {
            assert_eq!(sum, i as u64 * 8192);
        }
        wait_until_freed(&rt);
        let stats = rt.handle().task_allocator_stats();
        if allocator == TaskAllocator::Slab {
            assert!(stats.large_allocations >= 100, "{stats:#?}");
        }
        assert_eq!(stats.large_live_bytes, 0);
    });
}

#[test]
fn blocking_tasks_take_and_return_slab_memory() {
    for_each_runtime("blocking", |rt, _| {
        let total = rt.block_on(async {
            let handles: Vec<_> = (0..200u64)
                .map(|i| gpm::task::spawn_blocking(move || i * 2))
                .collect();
            let mut total = 0;
            for handle in handles {
                total += handle.await.unwrap();
            }
            total
        });
        assert_eq!(total, 199 * 200);
        wait_until_freed(&rt);
    });
}

#[test]
fn shutdown_gives_every_idle_span_back_to_the_os() {
    for workers in WORKER_COUNTS {
        let rt = runtime(workers, TaskAllocator::Slab);
        let handle = rt.handle().clone();
        rt.block_on(rt.spawn(async {
            let handles: Vec<_> = (0..50_000u32)
                .map(|i| gpm::spawn(async move { i }))
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        }))
        .unwrap();
        wait_until_freed(&rt);
        let before = handle.task_allocator_stats();
        assert!(before.nodes[0].spans_carved > 0);
        drop(rt);
        // The Ms flushed their caches on the way out, and shutdown ran the scavenger: every
        // span is idle and released, nothing is left in the pool.
        let after = handle.task_allocator_stats();
        let node = &after.nodes[0];
        assert_eq!(node.spans_released, node.spans_carved, "{after:#?}");
        assert_eq!(node.central_free_bytes, 0, "{after:#?}");
        assert_eq!(after.live_bytes(), 0);
    }
}

#[test]
fn processor_nodes_must_name_one_online_node_per_p() {
    let wrong_length = Runtime::builder()
        .worker_threads(2)
        .processor_nodes(vec![0, 0, 0])
        .build();
    let error = wrong_length.unwrap_err();
    assert!(error.is_invalid_setting());
    assert!(error.to_string().contains("processor_nodes"), "{error}");
    let offline = Runtime::builder()
        .worker_threads(1)
        .processor_nodes(vec![4095])
        .build()
        .unwrap_err();
    assert!(offline.to_string().contains("4095"), "{offline}");
    // Checked with the system allocator too, where the map is not used yet.
    let ignored = Runtime::builder()
        .worker_threads(1)
        .task_allocator(TaskAllocator::System)
        .processor_nodes(vec![0, 1])
        .build()
        .unwrap_err();
    assert!(ignored.is_invalid_setting(), "{ignored}");
}

#[test]
fn tasks_of_one_runtime_spawned_from_another_runtimes_workers() {
    watchdog("cross-runtime", || {
        let a = runtime(2, TaskAllocator::Slab);
        let b = runtime(2, TaskAllocator::Slab);
        let a_handle = a.handle().clone();
        // b's workers spawn (and drop the last references of) a's tasks: they must use a's
        // pools, never b's P caches.
        let sum = b.block_on(b.spawn(async move {
            let handles: Vec<_> = (0..5_000u64)
                .map(|i| a_handle.spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        }));
        assert_eq!(sum.unwrap(), 5_000 * 4_999 / 2);
        wait_until_freed(&a);
        wait_until_freed(&b);
        let a_stats = a.handle().task_allocator_stats();
        assert!(
            a_stats.nodes[0].unowned_allocations >= 5_000,
            "{a_stats:#?}"
        );
    });
}

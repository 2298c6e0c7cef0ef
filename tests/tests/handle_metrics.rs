//! `Handle::num_workers`, `num_alive_tasks` and `num_threads` report the runtime's state.

use gpm_tests::rt_test;

rt_test! {
    /// `num_alive_tasks` counts spawned, unfinished tasks exactly and drops back to zero once
    /// they are aborted and joined; `num_threads` covers at least one thread per worker.
    fn alive_task_and_thread_counts(rt: &gpm::Runtime) {
        let handle = rt.handle();
        assert!(handle.num_threads() >= handle.num_workers());
        while handle.num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
        let tasks: Vec<_> = (0..50)
            .map(|_| rt.spawn(futures::future::pending::<()>()))
            .collect();
        assert_eq!(handle.num_alive_tasks(), 50);
        for task in &tasks {
            task.abort();
        }
        rt.block_on(async {
            for task in tasks {
                assert!(task.await.unwrap_err().is_cancelled());
            }
        });
        // Completion is published to the join handle just before the task leaves the list.
        while handle.num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
    }
}

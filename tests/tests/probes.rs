//! `Handle::probes`: counters, queue depths, L, latency quantiles, and the two exports.

use futures::channel::oneshot;
use gpm_tests::watchdog;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn sampled_runtime(workers: usize) -> gpm::Runtime {
    gpm::Runtime::builder()
        .worker_threads(workers)
        .probe_sampling(1)
        .build()
        .unwrap()
}

/// Spins (without sleeping) until `done` holds for the runtime's probes.
fn wait_for(rt: &gpm::Runtime, done: impl Fn(&gpm::probe::Probes) -> bool) -> gpm::probe::Probes {
    loop {
        let probes = rt.handle().probes();
        if done(&probes) {
            return probes;
        }
        std::thread::yield_now();
    }
}

/// Spins (without sleeping) until every P is idle and nothing is runnable, checked with
/// stop-the-world, which reads no histogram.
fn wait_until_idle(rt: &gpm::Runtime) {
    loop {
        let (runnable, report) = rt.handle().stop_the_world(|world| world.runnable());
        let all_idle = report
            .processors
            .iter()
            .all(|(reason, _)| *reason == gpm::probe::StopKind::Idle);
        if runnable == 0 && all_idle {
            return;
        }
        std::thread::yield_now();
    }
}

#[test]
fn tasks_alive_is_the_number_of_pending_tasks() {
    watchdog("probes_alive", || {
        let rt = sampled_runtime(2);
        let (senders, tasks): (Vec<_>, Vec<_>) = (0..100)
            .map(|i| {
                let (tx, rx) = oneshot::channel::<u32>();
                (tx, rt.spawn(async move { rx.await.unwrap() + i }))
            })
            .unzip();
        // Read the probes only while no P runs: a reader merging the histograms makes a
        // concurrent record a dropped sample (by design), and this test counts samples.
        wait_until_idle(&rt);
        let probes = rt.handle().probes();
        assert_eq!(probes.tasks_alive, 100);
        assert_eq!(probes.spawns, 100);
        for tx in senders {
            tx.send(1).unwrap();
        }
        let total: u32 = rt.block_on(async {
            let mut total = 0;
            for task in tasks {
                total += task.await.unwrap();
            }
            total
        });
        assert_eq!(total, 100 + (0..100).sum::<u32>());
        // A task leaves the owned list after its sojourn is recorded; wait on the list, not
        // on the probes, for the same reason as above. An M tallies its polls, yields and
        // completions and publishes them on its driver turns and when its P parks: wait
        // for every P to park before counting them.
        while rt.handle().num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
        wait_until_idle(&rt);
        let probes = rt.handle().probes();
        assert_eq!(probes.completions, 100);
        // Every poll follows a spawn or a wake-up, one for one.
        assert_eq!(probes.polls, probes.spawns + probes.wakes, "{probes:?}");
        // Every task was sampled: 100 sojourns, one queue wait per poll.
        assert_eq!(probes.sojourn.count, 100);
        assert_eq!(probes.queue_wait.count, probes.polls);
        assert!(probes.sojourn.p50_ns <= probes.sojourn.p99_ns);
        assert!(probes.sojourn.p99_ns <= probes.sojourn.max_ns);
    });
}

#[test]
fn injector_depth_shows_work_queued_behind_a_busy_processor() {
    gpm_tests::with_runtime("probes_injector", 1, |rt| {
        let (started, release) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (s, r) = (started.clone(), release.clone());
        let busy = rt.spawn(async move {
            s.store(true, Ordering::SeqCst);
            while !r.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // Spawned from outside: into the global queue, which the busy P cannot look at.
        let queued: Vec<_> = (0..50).map(|i| rt.spawn(async move { i })).collect();
        let probes = rt.handle().probes();
        assert_eq!(probes.injector_depth, 50);
        assert_eq!(probes.processors[0].queue_depth, 0);
        assert!(!probes.processors[0].parked);
        release.store(true, Ordering::SeqCst);
        rt.block_on(busy).unwrap();
        let sum: i32 = rt.block_on(async {
            let mut sum = 0;
            for task in queued {
                sum += task.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..50).sum::<i32>());
        assert_eq!(rt.handle().probes().injector_depth, 0);
    });
}

#[test]
fn little_law_appears_from_the_second_snapshot() {
    watchdog("probes_little", || {
        let rt = sampled_runtime(2);
        assert!(rt.handle().probes().little_tasks.is_none());
        rt.block_on(async {
            for _ in 0..1000 {
                gpm::spawn(async {}).await.unwrap();
            }
        });
        let probes = wait_for(&rt, |p| p.completions == 1000);
        let law = probes.little_tasks.expect("two snapshots make a window");
        assert!(law.lambda > 0.0);
        assert!(law.w_s > 0.0);
        assert!((-1.0..=1.0).contains(&law.deviation));
        assert!(probes.little_queues.is_some());
    });
}

#[test]
fn sampling_off_keeps_counters_but_times_nothing() {
    watchdog("probes_off", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(1)
            .probe_sampling(0)
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..100 {
                gpm::spawn(async {}).await.unwrap();
            }
        });
        let probes = wait_for(&rt, |p| p.completions == 100);
        assert_eq!(probes.spawns, 100);
        assert_eq!(probes.sojourn.count, 0);
        assert_eq!(probes.queue_wait.count, 0);
    });
}

#[test]
fn disabled_probes_count_nothing_but_still_see_the_queues() {
    watchdog("probes_disabled", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(1)
            .enable_probes(false)
            .build()
            .unwrap();
        let pending: Vec<_> = (0..10)
            .map(|_| rt.spawn(futures::future::pending::<()>()))
            .collect();
        let probes = rt.handle().probes();
        assert_eq!((probes.spawns, probes.sojourn.count), (0, 0));
        assert_eq!(probes.tasks_alive, 10);
        pending.iter().for_each(|task| task.abort());
    });
}

#[test]
fn json_and_prometheus_exports_are_well_formed() {
    watchdog("probes_export", || {
        let rt = sampled_runtime(2);
        rt.block_on(async { gpm::spawn(async { 1 }).await.unwrap() });
        let probes = rt.handle().probes();
        let json: serde_json::Value = serde_json::from_str(&probes.to_json()).unwrap();
        assert_eq!(json["processors"].as_array().unwrap().len(), 2);
        assert_eq!(json["spawns"], 1);
        let text = probes.to_prometheus();
        for name in [
            "gpm_injector_depth",
            "gpm_tasks_alive",
            "gpm_processor_queue_depth",
            "gpm_processor_polls_total",
            "gpm_task_sojourn_seconds",
            "gpm_queue_wait_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        // Every per-P event, from the one table, in both exports.
        for event in gpm::probe::Event::ALL {
            let info = event.describe();
            let family = format!("# TYPE gpm_processor_{}_total counter", info.family);
            assert!(text.contains(&family), "{family} missing:\n{text}");
            assert!(
                json["processors"][1]["events"][info.name].is_u64(),
                "{info:?}"
            );
            assert_eq!(probes.events[event], json["events"][info.name], "{info:?}");
        }
        assert_eq!(probes.events[gpm::probe::Event::Spawn], probes.spawns);
        // Every sample line is `name{labels} value` with a number (or NaN/Inf) as value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(
                value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
                "bad sample line: {line}"
            );
        }
    });
}

#[test]
fn steals_and_task_memory_appear_in_the_snapshot() {
    gpm_tests::with_runtime("probes_steals_memory", 2, |rt| {
        // One task spawns many children from its P: the other P can only get them by
        // stealing (or from the injector after an overflow).
        let total: u64 = rt
            .block_on(rt.spawn(async {
                let children: Vec<_> = (0..20_000u64)
                    .map(|i| {
                        gpm::spawn(async move {
                            std::hint::black_box((0..200).sum::<u64>());
                            i
                        })
                    })
                    .collect();
                let mut total = 0;
                for child in children {
                    total += child.await.unwrap();
                }
                total
            }))
            .unwrap();
        assert_eq!(total, (0..20_000u64).sum::<u64>());
        // Live task memory returns to zero once every cell is freed (a leak hangs here and
        // the watchdog fails the test).
        let probes = wait_for(&rt, |p| p.tasks_alive == 0 && p.task_memory.live_bytes == 0);
        let stats = rt.handle().steal_stats();
        let successes: u64 = stats
            .processors
            .iter()
            .map(|p| p.successes.same_l3 + p.successes.same_node + p.successes.other_node)
            .sum();
        // The probes report the scheduler's counters (they only grow, so >=).
        assert!(successes >= probes.steals.total());
        assert_eq!(
            probes.steals.total(),
            probes
                .processors
                .iter()
                .map(|p| p.steals.total())
                .sum::<u64>()
        );
        assert_eq!(probes.steal_policy, stats.policy);
        assert_eq!(probes.task_memory.allocator, "slab");
        assert!(probes.processors.iter().map(|p| p.slab_hits).sum::<u64>() > 0);
        assert!(probes
            .to_prometheus()
            .contains("gpm_processor_steals_total{processor=\"0\",relation=\"same_l3\"}"));
    });
}

#[test]
fn completions_after_block_in_place_hand_offs_are_all_counted() {
    // A task that calls `block_in_place` hands its P to another M and completes without a
    // P (or on the P it takes back): every completion must be counted once, on the P that
    // ran it or in the shared row, and the per-P rows must add up to the total.
    watchdog("probes_hand_off", || {
        let rt = sampled_runtime(2);
        let total = 200u64;
        rt.block_on(async {
            let tasks: Vec<_> = (0..total)
                .map(|i| {
                    gpm::spawn(async move {
                        if i % 2 == 0 {
                            gpm::task::block_in_place(|| std::hint::black_box(i));
                        }
                        gpm::task::yield_now().await;
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        while rt.handle().num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
        // Ms publish what they tallied when their P parks (an M left without a P by a
        // hand-off, in the shared row when it exits).
        wait_until_idle(&rt);
        let probes = rt.handle().probes();
        assert_eq!(probes.completions, total, "{probes:?}");
        assert_eq!(probes.spawns, total);
        let per_processor: u64 = probes.processors.iter().map(|p| p.completions).sum();
        assert!(per_processor <= total);
    });
}

#[test]
fn idle_processors_count_their_parks() {
    // A runtime with nothing to do parks every P: each P's `parks` row grows, and it shows
    // in both exports without any exporter naming it (the one event table).
    watchdog("probes_parks", || {
        let rt = sampled_runtime(2);
        rt.block_on(async { gpm::spawn(async {}).await.unwrap() });
        let parks = gpm::probe::Event::Park;
        let probes = wait_for(&rt, |p| p.processors.iter().all(|p| p.events[parks] > 0));
        assert!(probes.events[parks] >= 2, "{probes:?}");
        assert!(probes
            .to_prometheus()
            .contains("gpm_processor_parks_total{processor=\"1\"}"));
        let json: serde_json::Value = serde_json::from_str(&probes.to_json()).unwrap();
        assert!(json["processors"][0]["events"]["parks"].as_u64().unwrap() > 0);
    });
}

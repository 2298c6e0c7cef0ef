//! `gpm::time`: sleeps never end early and fire in deadline order, `timeout` gives `Elapsed`,
//! intervals tick on schedule, a million timers leave nothing behind, timers fire while every
//! worker is busy, misuse panics with a clear message instead of hanging, and a foreign
//! waker that panics when the timer wheel fires it harms nothing else.

use gpm::time::{self, Duration, Elapsed, Instant, MissedTickBehavior};
use gpm_tests::{catch_panic_message, panicking_waker, poll_once, rt_test, watchdog};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Context;

rt_test! {
    /// A sleep lasts at least its duration, from a task and from `block_on`.
    fn sleep_lasts_at_least_its_duration(rt: &gpm::Runtime) {
        let start = Instant::now();
        rt.block_on(async { time::sleep(Duration::from_millis(15)).await });
        assert!(start.elapsed() >= Duration::from_millis(15));
        let waited = rt.block_on(rt.spawn(async {
            let start = Instant::now();
            time::sleep(Duration::from_millis(15)).await;
            start.elapsed()
        }));
        assert!(waited.unwrap() >= Duration::from_millis(15));
    }
}

rt_test! {
    /// When a sleep completes, every sleep with an earlier deadline has fired too: polling
    /// them (with a no-op waker) gives `Ready` at once. Deadlines are registered shuffled.
    fn sleeps_fire_in_deadline_order(rt: &gpm::Runtime) {
        rt.block_on(async {
            let start = Instant::now();
            let order = [7u64, 2, 9, 4, 1, 8, 3, 6, 5];
            let mut sleeps: Vec<(u64, time::Sleep)> = order
                .iter()
                .map(|&k| (k, time::sleep_until(start + Duration::from_millis(4 * k))))
                .collect();
            for (_, sleep) in &mut sleeps {
                // Registers each timer in the wheel.
                let _ = poll_once(Pin::new(sleep));
            }
            sleeps.sort_by_key(|(k, _)| *k);
            for index in 0..sleeps.len() {
                (&mut sleeps[index].1).await;
                assert!(Instant::now() >= sleeps[index].1.deadline());
                for (k, earlier) in &mut sleeps[..index] {
                    assert!(poll_once(Pin::new(earlier)).is_ready(), "sleep {k} not fired");
                }
            }
        });
    }
}

rt_test! {
    /// `timeout` returns the output of a future that finishes in time, and `Elapsed` (not
    /// before the deadline) for one that does not; the slow future is dropped.
    fn timeout_returns_output_or_elapsed(rt: &gpm::Runtime) {
        rt.block_on(async {
            let fast = time::timeout(Duration::from_secs(60), async { 7 }).await;
            assert_eq!(fast, Ok(7));
            let start = Instant::now();
            let slow = time::timeout(Duration::from_millis(20), std::future::pending::<()>()).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
            let elapsed: Elapsed = slow.unwrap_err();
            assert_eq!(elapsed.to_string(), "deadline has elapsed");
            let inner = time::timeout(Duration::from_millis(50), time::sleep(Duration::from_millis(5)));
            assert_eq!(inner.await, Ok(()));
            let error: std::io::Error = elapsed.into();
            assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        });
        while rt.handle().num_active_timers() != 0 {
            std::thread::yield_now();
        }
    }
}

rt_test! {
    /// An interval's first tick is immediate; then each tick is scheduled exactly one period
    /// after the previous one and never returns before its scheduled time.
    fn interval_ticks_every_period(rt: &gpm::Runtime) {
        rt.block_on(async {
            let period = Duration::from_millis(5);
            let mut interval = time::interval(period);
            let first = interval.tick().await;
            for k in 1..=6u32 {
                let tick = interval.tick().await;
                assert_eq!(tick, first + period * k);
                assert!(Instant::now() >= tick);
            }
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            time::sleep(Duration::from_millis(23)).await;
            // The late tick fires at once; the ticks missed during the 23 ms are skipped and
            // the next one stays on the grid of the period.
            let late = interval.tick().await;
            let next = interval.tick().await;
            assert!(next.duration_since(late) >= 2 * period);
            assert_eq!(next.duration_since(first).as_nanos() % period.as_nanos(), 0);
        });
    }
}

rt_test! {
    /// One million timers registered in the wheel and then cancelled by dropping them: the
    /// wheel's live count goes to 1e6, then back to 0. Half are sleeps, half timeouts.
    fn million_timers_scheduled_and_cancelled(rt: &gpm::Runtime) {
        const TIMERS: usize = 1_000_000;
        rt.block_on(async {
            let base = Instant::now() + Duration::from_secs(10);
            let mut sleeps: Vec<time::Sleep> = (0..TIMERS / 2)
                .map(|i| time::sleep_until(base + Duration::from_millis((i as u64 * 7919) % 3_600_000)))
                .collect();
            let mut timeouts: Vec<_> = (0..TIMERS / 2)
                .map(|i| time::timeout(Duration::from_secs(1 + i as u64 % 5000), std::future::pending::<()>()))
                .collect();
            for sleep in &mut sleeps {
                assert!(poll_once(Pin::new(sleep)).is_pending());
            }
            for timeout in &mut timeouts {
                assert!(poll_once(Pin::new(timeout)).is_pending());
            }
            assert_eq!(gpm::Handle::current().num_active_timers(), TIMERS);
            // Cancel in an order unrelated to the insertion order.
            let mut sleeps: Vec<Option<time::Sleep>> = sleeps.into_iter().map(Some).collect();
            let count = sleeps.len();
            for i in (0..count).map(|i| (i * 7) % count) {
                sleeps[i] = None;
            }
            assert!(sleeps.iter().all(Option::is_none));
            drop(timeouts);
        });
        assert_eq!(rt.handle().num_active_timers(), 0);
    }
}

rt_test! {
    /// Tasks aborted while sleeping drop their timers: nothing stays in the wheel.
    fn aborted_sleepers_leave_no_timer(rt: &gpm::Runtime) {
        let handles: Vec<_> = (0..1000u64)
            .map(|i| rt.spawn(async move { time::sleep(Duration::from_secs(100 + i)).await }))
            .collect();
        while rt.handle().num_active_timers() != 1000 {
            std::thread::yield_now();
        }
        handles.iter().for_each(gpm::JoinHandle::abort);
        for handle in handles {
            assert!(rt.block_on(handle).unwrap_err().is_cancelled());
        }
        while rt.handle().num_alive_tasks() != 0 {
            std::thread::yield_now();
        }
        assert_eq!(rt.handle().num_active_timers(), 0);
    }
}

rt_test! {
    /// Timers fire while every worker is busy running tasks that never park (they only
    /// yield): the busy Ms turn the driver between polls. 2000 sleeps of 1-40 ms all
    /// complete, none before its deadline.
    fn timers_fire_under_load(rt: &gpm::Runtime) {
        let done = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..rt.handle().num_workers() * 2)
            .map(|_| {
                let done = Arc::clone(&done);
                rt.spawn(async move {
                    let mut spins = 0u64;
                    while !done.load(Ordering::Acquire) {
                        spins += 1;
                        gpm::task::yield_now().await;
                    }
                    spins
                })
            })
            .collect();
        let early = Arc::new(AtomicUsize::new(0));
        let sleepers: Vec<_> = (0..2000u64)
            .map(|i| {
                let early = Arc::clone(&early);
                rt.spawn(async move {
                    let deadline = Instant::now() + Duration::from_millis(1 + i % 40);
                    time::sleep_until(deadline).await;
                    if Instant::now() < deadline {
                        early.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for sleeper in sleepers {
            rt.block_on(sleeper).unwrap();
        }
        done.store(true, Ordering::Release);
        for task in busy {
            assert!(rt.block_on(task).unwrap() > 0);
        }
        assert_eq!(early.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn sleep_outside_a_runtime_panics_with_a_clear_message() {
    let message = catch_panic_message(|| time::sleep(Duration::from_millis(1)));
    assert!(
        message.contains("must be called from the context of a gpm runtime"),
        "{message}"
    );
}

#[test]
fn zero_period_interval_panics_with_a_clear_message() {
    watchdog("zero_period_interval", || {
        let rt = gpm_tests::runtime(1);
        let _guard = rt.enter();
        let message = catch_panic_message(|| time::interval(Duration::ZERO));
        assert!(message.contains("`period` must be non-zero"), "{message}");
    });
}

#[test]
fn timers_on_a_shut_down_runtime_complete_instead_of_hanging() {
    watchdog("timers_after_shutdown", || {
        let rt = gpm_tests::runtime(2);
        let handle = rt.handle().clone();
        // A task asleep for an hour when the runtime goes away: shutdown must not wait for it.
        let sleeper = rt.spawn(async { time::sleep(Duration::from_secs(3600)).await });
        // Asleep: its timer is registered. (A first poll racing the shutdown would find the
        // driver shut down and its sleep complete at once, and the task would end `Ok`:
        // the other half of this test's promise, not a cancellation. CI saw it once.)
        while handle.num_active_timers() != 1 {
            std::thread::yield_now();
        }
        drop(rt);
        assert!(handle.block_on(sleeper).unwrap_err().is_cancelled());
        handle.block_on(async { time::sleep(Duration::from_secs(3600)).await });
        assert_eq!(handle.num_active_timers(), 0);
    });
}

rt_test! {
    /// Every worker sleeps in the driver until an hour-long deadline; a new 10 ms timer from
    /// another thread must wake the driving M (else this hangs and the watchdog fails it).
    fn earlier_deadline_wakes_the_sleeping_driver(rt: &gpm::Runtime) {
        let long = rt.spawn(async { time::sleep(Duration::from_secs(3600)).await });
        while rt.handle().num_active_timers() != 1 {
            std::thread::yield_now();
        }
        for _ in 0..20 {
            let start = Instant::now();
            rt.block_on(async { time::sleep(Duration::from_millis(10)).await });
            assert!(start.elapsed() >= Duration::from_millis(10));
        }
        long.abort();
    }
}

rt_test! {
    /// `interval(Duration::MAX)`: the first tick completes at once and the next one is
    /// never due (no `Instant` overflow panic in `tick`, `reset` or any missed-tick mode).
    fn interval_with_the_largest_period_does_not_overflow(rt: &gpm::Runtime) {
        rt.block_on(async {
            for behavior in [
                MissedTickBehavior::Burst,
                MissedTickBehavior::Delay,
                MissedTickBehavior::Skip,
            ] {
                let mut interval = time::interval(Duration::MAX);
                interval.set_missed_tick_behavior(behavior);
                interval.tick().await;
                let second = time::timeout(Duration::from_millis(5), interval.tick()).await;
                assert!(second.is_err(), "{behavior:?}: a second tick of a MAX period");
                interval.reset();
            }
        });
    }
}

rt_test! {
    /// A future of some other executor waits on a gpm sleep with a waker that panics on
    /// wake. The timer wheel fires it; the panic stays inside that one wake: the runtime
    /// still runs tasks and timers on every worker, and drops without hanging (watchdog).
    fn panicking_foreign_waker_on_a_timer(rt: &gpm::Runtime) {
        let mut sleep = {
            let _guard = rt.enter();
            Box::pin(time::sleep(Duration::from_millis(1)))
        };
        let (waker, woken) = panicking_waker();
        assert!(sleep.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        woken.recv().unwrap();
        assert!(poll_once(Pin::new(&mut sleep)).is_ready());
        let tasks = 4 * rt.handle().num_workers();
        let sum: usize = rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|i| {
                    gpm::spawn(async move {
                        time::sleep(Duration::from_millis(1)).await;
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, tasks * (tasks - 1) / 2);
    }
}

rt_test! {
    /// tokio's `Interval::reset_*`: `reset_immediately` makes the next tick ready at once,
    /// `reset_after` and `reset_at` move it (never earlier than asked), and the period goes
    /// on from the new tick.
    fn interval_resets_move_the_next_tick(rt: &gpm::Runtime) {
        rt.block_on(async {
            let period = Duration::from_secs(3600);
            let mut interval = time::interval(period);
            interval.tick().await;
            let before = Instant::now();
            interval.reset_immediately();
            let tick = interval.tick().await;
            assert!(before <= tick && tick <= Instant::now());
            assert!(time::timeout(Duration::from_millis(2), interval.tick()).await.is_err());

            let asked = Duration::from_millis(5);
            let start = Instant::now();
            interval.reset_after(asked);
            interval.tick().await;
            assert!(start.elapsed() >= asked);

            let at = Instant::now() + Duration::from_millis(3);
            interval.reset_at(at);
            assert_eq!(interval.tick().await, at);
            assert!(Instant::now() >= at);
            assert!(time::timeout(Duration::from_millis(2), interval.tick()).await.is_err());
        });
    }
}

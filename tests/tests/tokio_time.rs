//! tokio's timer tests run on gpm: `tests/time_sleep.rs`, `time_timeout.rs`,
//! `time_interval.rs`, `time_rt.rs` and `time_panic.rs` of tokio's repository, with their
//! assertions kept. What changed in the port:
//!
//! * tokio-test's mock task (`task::spawn`) is [`MockTask`]: a future polled by hand with a
//!   waker that records whether it was woken; `assert_elapsed!` is `gpm_tests::elapsed_within`,
//!   tokio's `support::panic::test_panic` is `gpm_tests::test_panic`.
//! * `tokio::time::pause()` needs tokio's current-thread runtime, gpm's a runtime with one
//!   worker; `#[gpm::test]` without arguments is that runtime.
//! * tokio's `rt_combinations` (current-thread, 1 and 4 workers) is [`runtimes`].
//! * `timeout_is_not_exhausted_by_future` spins on `tokio::io::empty()`, which takes budget
//!   only from tokio's own scheduler; here it spins on [`gpm::task::consume_budget`], the
//!   same cooperative budget taken from gpm's.
//! * `tokio::sync` channels are used as they are (they need no runtime).

use futures::StreamExt;
use gpm::time::{self, Duration, Instant, Interval, MissedTickBehavior, Sleep};
use gpm_tests::{elapsed_within, ms, poll_once};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that remembers being woken.
#[derive(Default)]
struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// tokio-test's `task::Spawn`: a future polled by hand, which tells whether it was woken
/// since its last poll.
struct MockTask<F> {
    future: Pin<Box<F>>,
    woken: Arc<WakeFlag>,
}

fn mock<F>(future: F) -> MockTask<F> {
    MockTask {
        future: Box::pin(future),
        woken: Arc::default(),
    }
}

impl<F> MockTask<F> {
    /// Runs `f` with the future and a context whose waker is this task's.
    fn enter<R>(&mut self, f: impl FnOnce(&mut Context<'_>, Pin<&mut F>) -> R) -> R {
        self.woken.0.store(false, SeqCst);
        let waker = Waker::from(Arc::clone(&self.woken));
        f(&mut Context::from_waker(&waker), self.future.as_mut())
    }

    fn is_woken(&self) -> bool {
        self.woken.0.load(SeqCst)
    }

    fn into_inner(self) -> Pin<Box<F>> {
        self.future
    }
}

impl<F: Future> MockTask<F> {
    fn poll(&mut self) -> Poll<F::Output> {
        self.enter(|cx, future| future.poll(cx))
    }
}

/// tokio's `rt_combinations`: the current-thread runtime, one worker, four workers.
fn runtimes() -> Vec<gpm::Runtime> {
    let current = gpm::Builder::new_current_thread().enable_all().build();
    let one = gpm::Builder::new_multi_thread().worker_threads(1).build();
    let four = gpm::Builder::new_multi_thread().worker_threads(4).build();
    vec![current.unwrap(), one.unwrap(), four.unwrap()]
}

mod sleep {
    use super::*;

    #[gpm::test(start_paused = true)]
    async fn immediate_sleep() {
        let now = Instant::now();
        let mut sleep = Box::pin(time::sleep_until(now));
        assert!(!sleep.is_elapsed());
        sleep.as_mut().await;
        elapsed_within(now, ms(0));
        assert!(sleep.is_elapsed());
    }

    #[gpm::test]
    async fn is_elapsed() {
        time::pause();
        let mut sleep = Box::pin(time::sleep(ms(10)));
        assert!(!sleep.is_elapsed());
        assert!(futures::poll!(sleep.as_mut()).is_pending());
        assert!(!sleep.is_elapsed());
        sleep.as_mut().await;
        assert!(sleep.is_elapsed());
    }

    #[gpm::test]
    async fn delayed_sleep_level_0() {
        time::pause();
        for i in [1, 10, 60] {
            let now = Instant::now();
            time::sleep_until(now + ms(i)).await;
            elapsed_within(now, ms(i));
        }
    }

    #[gpm::test]
    async fn sub_ms_delayed_sleep() {
        time::pause();
        for _ in 0..5 {
            let now = Instant::now();
            let deadline = now + ms(1) + Duration::new(0, 1);
            time::sleep_until(deadline).await;
            elapsed_within(now, ms(1));
        }
    }

    #[gpm::test]
    async fn delayed_sleep_wrapping_level_0() {
        time::pause();
        time::sleep(ms(5)).await;
        let now = Instant::now();
        time::sleep_until(now + ms(60)).await;
        elapsed_within(now, ms(60));
    }

    #[gpm::test]
    async fn reset_future_sleep_before_fire() {
        time::pause();
        let now = Instant::now();
        let mut sleep = mock(time::sleep_until(now + ms(100)));
        assert!(sleep.poll().is_pending());
        let mut sleep = sleep.into_inner();
        sleep.as_mut().reset(Instant::now() + ms(200));
        sleep.await;
        elapsed_within(now, ms(200));
    }

    #[gpm::test]
    async fn reset_past_sleep_before_turn() {
        time::pause();
        let now = Instant::now();
        let mut sleep = mock(time::sleep_until(now + ms(100)));
        assert!(sleep.poll().is_pending());
        let mut sleep = sleep.into_inner();
        sleep.as_mut().reset(now + ms(80));
        sleep.await;
        elapsed_within(now, ms(80));
    }

    #[gpm::test]
    async fn reset_past_sleep_before_fire() {
        time::pause();
        let now = Instant::now();
        let mut sleep = mock(time::sleep_until(now + ms(100)));
        assert!(sleep.poll().is_pending());
        let mut sleep = sleep.into_inner();
        time::sleep(ms(10)).await;
        sleep.as_mut().reset(now + ms(80));
        sleep.await;
        elapsed_within(now, ms(80));
    }

    #[gpm::test]
    async fn reset_future_sleep_after_fire() {
        time::pause();
        let now = Instant::now();
        let mut sleep = Box::pin(time::sleep_until(now + ms(100)));
        sleep.as_mut().await;
        elapsed_within(now, ms(100));
        sleep.as_mut().reset(now + ms(110));
        sleep.await;
        elapsed_within(now, ms(110));
    }

    #[gpm::test]
    async fn reset_sleep_to_past() {
        time::pause();
        let now = Instant::now();
        let mut sleep = mock(time::sleep_until(now + ms(100)));
        assert!(sleep.poll().is_pending());
        time::sleep(ms(50)).await;
        assert!(!sleep.is_woken());
        sleep.enter(|_, sleep| sleep.reset(now + ms(40)));
        assert!(sleep.poll().is_ready());
    }

    #[test]
    #[should_panic]
    fn creating_sleep_outside_of_context() {
        let _sleep = time::sleep_until(Instant::now() + ms(500));
    }

    #[gpm::test]
    async fn greater_than_max() {
        const FIVE_YEARS_MS: u64 = 5 * 365 * 24 * 60 * 60 * 1000;
        time::pause();
        time::sleep_until(Instant::now() + ms(FIVE_YEARS_MS)).await;
    }

    #[gpm::test]
    async fn short_sleeps() {
        for _ in 0..1000 {
            time::sleep(ms(0)).await;
        }
    }

    #[gpm::test]
    async fn multi_long_sleeps() {
        time::pause();
        for _ in 0..5 {
            time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600);
        time::sleep_until(deadline).await;
        assert!(Instant::now() >= deadline);
    }

    #[gpm::test]
    async fn long_sleeps() {
        time::pause();
        let deadline = Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600);
        time::sleep_until(deadline).await;
        assert!(Instant::now() >= deadline);
        assert!(Instant::now() <= deadline + ms(1));
    }

    #[gpm::test]
    async fn reset_after_firing() {
        let mut timer = Box::pin(time::sleep(ms(1)));
        let deadline = timer.deadline();
        timer.as_mut().await;
        assert!(poll_once(timer.as_mut()).is_ready());
        timer
            .as_mut()
            .reset(Instant::now() + Duration::from_secs(600));
        assert_ne!(deadline, timer.deadline());
        assert!(poll_once(timer.as_mut()).is_pending());
        assert!(poll_once(timer.as_mut()).is_pending());
    }

    #[gpm::test]
    async fn exactly_max() {
        time::pause();
        time::sleep(Duration::MAX).await;
    }

    #[gpm::test]
    async fn issue_5183() {
        time::pause();
        let big = Duration::from_secs(u64::MAX / 10);
        futures::select_biased! {
            () = futures::FutureExt::fuse(time::sleep(big)) => {}
            () = futures::FutureExt::fuse(time::sleep(Duration::from_nanos(1))) => {}
        }
    }

    #[gpm::test]
    async fn no_out_of_bounds_close_to_max() {
        time::pause();
        time::sleep(Duration::MAX - ms(1)).await;
    }

    #[gpm::test]
    async fn drop_after_reschedule_at_new_scheduled_time() {
        time::pause();
        let start = Instant::now();
        let mut a = Box::pin(time::sleep(ms(5)));
        let mut b = Box::pin(time::sleep(ms(5)));
        let mut c = Box::pin(time::sleep(ms(10)));
        let _ = futures::poll!(&mut a);
        let _ = futures::poll!(&mut b);
        let _ = futures::poll!(&mut c);
        b.as_mut().reset(start + ms(10));
        a.await;
        drop(b);
    }

    type SleepList = Arc<Mutex<Vec<Pin<Box<Sleep>>>>>;

    /// Drops every sleep of its list when woken, i.e. while the timer driver fires them.
    struct DropWaker {
        panicked: Arc<AtomicBool>,
        list: SleepList,
    }

    impl Wake for DropWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                *self.list.lock().expect("panic in lock") = Vec::new();
            }));
            if result.is_err() {
                self.panicked.store(true, SeqCst);
            }
        }
    }

    #[gpm::test]
    async fn drop_from_wake() {
        let panicked = Arc::new(AtomicBool::new(false));
        let list = SleepList::default();
        let waker = Waker::from(Arc::new(DropWaker {
            panicked: Arc::clone(&panicked),
            list: Arc::clone(&list),
        }));
        time::pause();
        {
            let mut lock = list.lock().unwrap();
            for _ in 0..100 {
                let mut timer = Box::pin(time::sleep(ms(10)));
                let _ = timer.as_mut().poll(&mut Context::from_waker(&waker));
                lock.push(timer);
            }
        }
        time::sleep(ms(11)).await;
        assert!(!panicked.load(SeqCst), "panicked when dropping timers");
    }
}

mod timeout {
    use super::*;
    use time::{timeout, timeout_at};
    use tokio::sync::oneshot;

    #[gpm::test]
    async fn simultaneous_deadline_future_completion() {
        let mut fut = mock(timeout_at(Instant::now(), async {}));
        assert!(matches!(fut.poll(), Poll::Ready(Ok(()))));
    }

    #[gpm::test]
    async fn completed_future_past_deadline() {
        let mut fut = mock(timeout_at(Instant::now() - ms(1000), async {}));
        assert!(matches!(fut.poll(), Poll::Ready(Ok(()))));
    }

    #[gpm::test]
    async fn future_and_deadline_in_future() {
        time::pause();
        let (tx, rx) = oneshot::channel();
        let mut fut = mock(timeout_at(Instant::now() + ms(100), rx));
        assert!(fut.poll().is_pending());
        time::advance(ms(90)).await;
        assert!(fut.poll().is_pending());
        tx.send(()).unwrap();
        assert!(fut.is_woken());
        assert!(matches!(fut.poll(), Poll::Ready(Ok(Ok(())))));
    }

    #[gpm::test]
    async fn future_and_timeout_in_future() {
        time::pause();
        let (tx, rx) = oneshot::channel();
        let mut fut = mock(timeout(ms(100), rx));
        assert!(fut.poll().is_pending());
        time::advance(ms(90)).await;
        assert!(fut.poll().is_pending());
        tx.send(()).unwrap();
        assert!(matches!(fut.poll(), Poll::Ready(Ok(Ok(())))));
    }

    #[gpm::test]
    async fn very_large_timeout() {
        time::pause();
        let (tx, rx) = oneshot::channel();
        let mut fut = mock(timeout(Duration::MAX, rx));
        assert!(fut.poll().is_pending());
        time::advance(Duration::from_secs(86400 * 365 * 10)).await;
        assert!(fut.poll().is_pending());
        tx.send(()).unwrap();
        assert!(matches!(fut.poll(), Poll::Ready(Ok(Ok(())))));
    }

    #[gpm::test]
    async fn deadline_now_elapses() {
        time::pause();
        let mut fut = mock(timeout_at(Instant::now(), std::future::pending::<()>()));
        time::advance(ms(1)).await;
        assert!(matches!(fut.poll(), Poll::Ready(Err(_))));
    }

    #[gpm::test]
    async fn deadline_future_elapses() {
        time::pause();
        let mut fut = mock(timeout_at(
            Instant::now() + ms(300),
            std::future::pending::<()>(),
        ));
        assert!(fut.poll().is_pending());
        time::advance(ms(301)).await;
        assert!(fut.is_woken());
        assert!(matches!(fut.poll(), Poll::Ready(Err(_))));
    }

    #[gpm::test]
    async fn timeout_is_not_exhausted_by_future() {
        let fut = timeout(ms(1), async {
            loop {
                gpm::task::consume_budget().await;
            }
        });
        assert!(fut.await.is_err());
    }
}

mod interval {
    use super::*;

    fn poll_next(interval: &mut MockTask<Interval>) -> Poll<Instant> {
        interval.enter(|cx, interval| interval.get_mut().poll_tick(cx))
    }

    /// tokio's `check_interval_poll!`: one ready tick at `start + delta` for each delta,
    /// then pending.
    #[track_caller]
    fn check_interval_poll(interval: &mut MockTask<Interval>, start: Instant, deltas: &[u64]) {
        for &delta in deltas {
            assert_eq!(poll_next(interval), Poll::Ready(start + ms(delta)));
        }
        assert!(poll_next(interval).is_pending());
    }

    /// The interval of every test below: ticks from `start` every 300 ms, first polled a
    /// millisecond after `start` (tokio: "the timer is only so granular").
    async fn interval_300_ms(behavior: MissedTickBehavior) -> (MockTask<Interval>, Instant) {
        let start = Instant::now();
        time::advance(ms(1)).await;
        let mut interval = mock(time::interval_at(start, ms(300)));
        interval.future.set_missed_tick_behavior(behavior);
        check_interval_poll(&mut interval, start, &[0]);
        time::advance(ms(100)).await;
        check_interval_poll(&mut interval, start, &[]);
        time::advance(ms(200)).await;
        check_interval_poll(&mut interval, start, &[300]);
        (interval, start)
    }

    #[gpm::test]
    #[should_panic]
    async fn interval_zero_duration() {
        let _ = time::interval_at(Instant::now(), ms(0));
    }

    #[gpm::test(start_paused = true)]
    async fn burst() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Burst).await;
        time::advance(ms(650)).await;
        check_interval_poll(&mut i, start, &[600, 900]);
        time::advance(ms(200)).await;
        check_interval_poll(&mut i, start, &[]);
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[1200]);
        time::advance(ms(250)).await;
        check_interval_poll(&mut i, start, &[1500]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1800]);
    }

    #[gpm::test(start_paused = true)]
    async fn delay() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Delay).await;
        time::advance(ms(650)).await;
        check_interval_poll(&mut i, start, &[600]);
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        // tokio: `Delay` restarts the period from `Instant::now()`, a millisecond behind.
        time::advance(ms(201)).await;
        check_interval_poll(&mut i, start, &[1251]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1551]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1851]);
    }

    #[gpm::test(start_paused = true)]
    async fn skip() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Skip).await;
        time::advance(ms(650)).await;
        check_interval_poll(&mut i, start, &[600]);
        time::advance(ms(250)).await;
        check_interval_poll(&mut i, start, &[1200]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1500]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1800]);
    }

    #[gpm::test(start_paused = true)]
    async fn reset() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Burst).await;
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        i.future.reset();
        time::advance(ms(250)).await;
        check_interval_poll(&mut i, start, &[]);
        time::advance(ms(50)).await;
        check_interval_poll(&mut i, start, &[701]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1001]);
    }

    #[gpm::test(start_paused = true)]
    async fn reset_immediately() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Burst).await;
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        i.future.reset_immediately();
        check_interval_poll(&mut i, start, &[401]);
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        time::advance(ms(200)).await;
        check_interval_poll(&mut i, start, &[701]);
    }

    #[gpm::test(start_paused = true)]
    async fn reset_after() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Burst).await;
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        i.future.reset_after(ms(20));
        time::advance(ms(20)).await;
        check_interval_poll(&mut i, start, &[421]);
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        time::advance(ms(200)).await;
        check_interval_poll(&mut i, start, &[721]);
    }

    #[gpm::test(start_paused = true)]
    async fn reset_at() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Burst).await;
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        i.future.reset_at(Instant::now() + ms(40));
        time::advance(ms(40)).await;
        check_interval_poll(&mut i, start, &[441]);
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        time::advance(ms(200)).await;
        check_interval_poll(&mut i, start, &[741]);
    }

    #[gpm::test(start_paused = true)]
    async fn reset_at_bigger_than_interval() {
        let (mut i, start) = interval_300_ms(MissedTickBehavior::Burst).await;
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[]);
        i.future.reset_at(Instant::now() + ms(1000));
        for _ in 0..3 {
            time::advance(ms(300)).await;
            check_interval_poll(&mut i, start, &[]);
        }
        time::advance(ms(100)).await;
        check_interval_poll(&mut i, start, &[1401]);
        time::advance(ms(300)).await;
        check_interval_poll(&mut i, start, &[1701]);
    }

    /// tokio's `IntervalStreamer`: counts ticks and yields every fourth count; whether it
    /// wakes itself after a tick it does not yield is `wake_on_pending`. `poll_tick` must
    /// register the waker only when it returns `Pending`, so without self-waking the
    /// stream stalls.
    struct IntervalStreamer {
        counter: u32,
        timer: Interval,
        wake_on_pending: bool,
    }

    impl futures::Stream for IntervalStreamer {
        type Item = u32;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            let this = Pin::into_inner(self);
            if this.counter > 12 {
                return Poll::Ready(None);
            }
            std::task::ready!(this.timer.poll_tick(cx));
            this.counter += 1;
            if this.counter.is_multiple_of(4) {
                return Poll::Ready(Some(this.counter));
            }
            if this.wake_on_pending {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    async fn stream_items(wake_on_pending: bool) -> Vec<u32> {
        let stream = IntervalStreamer {
            counter: 0,
            timer: time::interval(ms(10)),
            wake_on_pending,
        };
        let (res_tx, mut res_rx) = tokio::sync::mpsc::channel(12);
        // In a timeout so that it ends even if the stream stalls.
        gpm::spawn(time::timeout(ms(150), async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                res_tx.send(item).await.ok();
            }
        }));
        let mut items = Vec::new();
        while let Some(item) = res_rx.recv().await {
            items.push(item);
        }
        items
    }

    #[gpm::test(start_paused = true)]
    async fn stream_with_interval_poll_tick_self_waking() {
        assert_eq!(stream_items(true).await, vec![4, 8, 12]);
    }

    #[gpm::test(start_paused = true)]
    async fn stream_with_interval_poll_tick_no_waking() {
        assert_eq!(stream_items(false).await, Vec::<u32>::new());
    }

    #[gpm::test(start_paused = true)]
    async fn interval_doesnt_panic_max_duration_when_polling() {
        let mut timer = mock(time::interval(Duration::MAX));
        assert!(poll_next(&mut timer).is_ready());
    }
}

mod rt {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn timer_with_threaded_runtime() {
        let rt = gpm::Runtime::new().unwrap();
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            let when = Instant::now() + ms(10);
            time::sleep_until(when).await;
            assert!(Instant::now() >= when);
            tx.send(()).unwrap();
        });
        rx.recv().unwrap();
    }

    #[test]
    fn timer_with_current_thread_scheduler() {
        let rt = gpm::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        rt.block_on(async move {
            let when = Instant::now() + ms(10);
            time::sleep_until(when).await;
            assert!(Instant::now() >= when);
            tx.send(()).unwrap();
        });
        rx.recv().unwrap();
    }

    /// Wakes itself on every poll until its inner future is ready; counts the polls.
    struct Starve<T: Future<Output = ()> + Unpin>(T, u64);

    impl<T: Future<Output = ()> + Unpin> Future for Starve<T> {
        type Output = u64;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
            if Pin::new(&mut self.0).poll(cx).is_ready() {
                return Poll::Ready(self.1);
            }
            self.1 += 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn starving() {
        for rt in runtimes() {
            rt.block_on(async {
                let when = Instant::now() + ms(10);
                Starve(Box::pin(time::sleep_until(when)), 0).await;
                assert!(Instant::now() >= when);
            });
        }
    }

    #[test]
    fn timeout_value() {
        for rt in runtimes() {
            rt.block_on(async {
                let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
                let now = Instant::now();
                let dur = ms(10);
                assert!(time::timeout(dur, rx).await.is_err());
                assert!(Instant::now() >= now + dur);
            });
        }
    }

    #[test]
    fn tickspace() {
        let paused = || {
            gpm::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap()
        };
        let rt_past = paused();
        std::thread::sleep(ms(1));
        let rt = paused();
        let _guard = rt_past.enter();
        let mut sleep = std::pin::pin!(time::sleep(ms(1)));
        assert!(poll_once(sleep.as_mut()).is_pending());
        let deadline = sleep.deadline();
        rt.block_on(async { sleep.as_mut().reset(deadline + ms(1)) });
        let now = Instant::now();
        rt_past.block_on(sleep);
        assert_eq!(now.elapsed(), ms(2));
    }
}

/// tokio's `time_panic.rs`: a misused timer API panics at the caller's line, not inside
/// the runtime.
mod panic_location {
    use super::*;

    /// The file the panic of `f` points at; fails the test if `f` does not panic.
    fn panic_file_of(f: impl FnOnce()) -> String {
        gpm_tests::test_panic(f).expect("expected a panic")
    }

    fn current_thread() -> gpm::Runtime {
        gpm::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn pause_panic_caller() {
        for rt in runtimes() {
            let file = panic_file_of(|| {
                rt.block_on(async {
                    time::pause();
                    time::pause();
                });
            });
            assert_eq!(file, file!());
        }
    }

    #[test]
    fn resume_panic_caller() {
        let file = panic_file_of(|| {
            let rt = current_thread();
            rt.block_on(async { time::resume() });
        });
        assert_eq!(file, file!());
    }

    #[test]
    fn interval_panic_caller() {
        let file = panic_file_of(|| {
            let _ = time::interval(ms(0));
        });
        assert_eq!(file, file!());
    }

    #[test]
    fn interval_at_panic_caller() {
        let file = panic_file_of(|| {
            let _ = time::interval_at(Instant::now(), ms(0));
        });
        assert_eq!(file, file!());
    }

    #[test]
    fn timeout_panic_caller() {
        let file = panic_file_of(|| {
            // A runtime without timers would panic here too; gpm's always has them, so
            // the panic is the one of being outside a runtime.
            let _timeout = time::timeout(ms(5), async {});
        });
        assert_eq!(file, file!());
    }

    #[test]
    fn timeout_at_panic_caller() {
        let file = panic_file_of(|| {
            let _timeout = time::timeout_at(Instant::now() + ms(5), async {});
        });
        assert_eq!(file, file!());
    }
}

//! The paused clock, ported from tokio's `tests/time_pause.rs` and
//! `tests/rt_time_start_paused.rs` (assertions kept; tokio-test's mock task is a future
//! polled by hand with a no-op waker, its `assert_elapsed!` is `gpm_tests::elapsed_within`).
//! gpm's `pause` needs a runtime with one worker where tokio's needs its current-thread
//! runtime, so tokio's `multi_thread, worker_threads = 1` panics become `worker_threads = 2`.

use gpm::time::{self, Duration, Instant, Sleep};
use gpm_tests::{elapsed_within, ms, poll_once};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Advances the paused clock by `dur` and checks that exactly `dur` has elapsed (tokio's
/// `advance` tests repeat these three lines for each step).
async fn advance_exactly(dur: Duration) {
    let now = Instant::now();
    time::advance(dur).await;
    assert_eq!(now.elapsed(), dur);
}

#[gpm::test]
async fn pause_time_in_main() {
    time::pause();
}

#[gpm::test]
async fn pause_time_in_task() {
    let t = gpm::spawn(async {
        time::pause();
    });
    t.await.unwrap();
}

#[gpm::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "one worker thread")]
async fn pause_time_in_main_threads() {
    time::pause();
}

#[gpm::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_time_in_spawn_threads() {
    let t = gpm::spawn(async {
        time::pause();
    });
    assert!(t.await.unwrap_err().is_panic());
}

#[test]
fn paused_time_is_deterministic() {
    let run_1 = paused_time_stress_run();
    let run_2 = paused_time_stress_run();
    assert_eq!(run_1, run_2);
}

#[gpm::main(flavor = "current_thread", start_paused = true)]
async fn paused_time_stress_run() -> Vec<Duration> {
    let mut rng = 1_u64;
    let mut times = vec![];
    let start = Instant::now();
    for _ in 0..10_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let sleep = Duration::from_nanos(rng % 1_000_000_000);
        time::sleep(sleep).await;
        times.push(start.elapsed());
    }
    times
}

#[gpm::test(start_paused = true)]
async fn advance_after_poll() {
    time::sleep(ms(1)).await;
    let start = Instant::now();
    let mut sleep = Box::pin(time::sleep_until(start + ms(300)));
    assert!(poll_once(sleep.as_mut()).is_pending());
    let before = Instant::now();
    time::advance(ms(100)).await;
    elapsed_within(before, ms(100));
    assert!(poll_once(sleep.as_mut()).is_pending());
}

#[gpm::test(start_paused = true)]
async fn sleep_no_poll() {
    let start = Instant::now();
    time::advance(ms(1)).await;
    let mut sleep = Box::pin(time::sleep_until(start + ms(300)));
    let before = Instant::now();
    time::advance(ms(100)).await;
    elapsed_within(before, ms(100));
    assert!(poll_once(sleep.as_mut()).is_pending());
}

enum State {
    Begin,
    AwaitingAdvance(Pin<Box<dyn Future<Output = ()>>>),
    AfterAdvance,
}

struct Tester {
    sleep: Pin<Box<Sleep>>,
    state: State,
    before: Option<Instant>,
    poll: bool,
}

impl Future for Tester {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Begin => {
                if self.poll {
                    assert!(self.sleep.as_mut().poll(cx).is_pending());
                }
                self.before = Some(Instant::now());
                let advance_fut = Box::pin(time::advance(ms(100)));
                self.state = State::AwaitingAdvance(advance_fut);
                self.poll(cx)
            }
            State::AwaitingAdvance(ref mut advance_fut) => match advance_fut.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    self.state = State::AfterAdvance;
                    self.poll(cx)
                }
            },
            State::AfterAdvance => {
                elapsed_within(self.before.unwrap(), ms(100));
                assert!(self.sleep.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            }
        }
    }
}

/// tokio's `sleep_same_task` and `sleep_same_task_no_poll`: a sleep due in 299 ms, the clock
/// advanced 100 ms from inside the task that holds it (polling the sleep first or not).
async fn sleep_same_task_test(poll: bool) {
    let start = Instant::now();
    time::advance(ms(1)).await;
    let sleep = Box::pin(time::sleep_until(start + ms(300)));
    Tester {
        sleep,
        state: State::Begin,
        before: None,
        poll,
    }
    .await;
}

#[gpm::test(start_paused = true)]
async fn sleep_same_task() {
    sleep_same_task_test(true).await;
}

#[gpm::test(start_paused = true)]
async fn sleep_same_task_no_poll() {
    sleep_same_task_test(false).await;
}

fn poll_next(interval: &mut time::Interval) -> Poll<Instant> {
    interval.poll_tick(&mut Context::from_waker(Waker::noop()))
}

#[gpm::test(start_paused = true)]
async fn interval() {
    let start = Instant::now();
    time::advance(ms(1)).await;
    let mut i = time::interval_at(start, ms(300));
    assert_eq!(poll_next(&mut i), Poll::Ready(start));
    assert!(poll_next(&mut i).is_pending());

    let before = Instant::now();
    time::advance(ms(100)).await;
    elapsed_within(before, ms(100));
    assert!(poll_next(&mut i).is_pending());

    let before = Instant::now();
    time::advance(ms(200)).await;
    elapsed_within(before, ms(200));
    assert_eq!(poll_next(&mut i), Poll::Ready(start + ms(300)));
    assert!(poll_next(&mut i).is_pending());

    let before = Instant::now();
    time::advance(ms(400)).await;
    elapsed_within(before, ms(400));
    assert_eq!(poll_next(&mut i), Poll::Ready(start + ms(600)));
    assert!(poll_next(&mut i).is_pending());

    let before = Instant::now();
    time::advance(ms(500)).await;
    elapsed_within(before, ms(500));
    assert_eq!(poll_next(&mut i), Poll::Ready(start + ms(900)));
    assert_eq!(poll_next(&mut i), Poll::Ready(start + ms(1200)));
    assert!(poll_next(&mut i).is_pending());
}

#[gpm::test(start_paused = true)]
async fn test_time_advance_sub_ms() {
    advance_exactly(Duration::from_micros(51_592)).await;
    advance_exactly(Duration::from_micros(1)).await;
}

#[gpm::test(start_paused = true)]
async fn test_time_advance_3ms_and_change() {
    advance_exactly(Duration::from_micros(3_141_592)).await;
    advance_exactly(Duration::from_micros(3_123_456)).await;
}

#[gpm::test(start_paused = true)]
async fn regression_3710_with_submillis_advance() {
    let start = Instant::now();
    time::advance(ms(1)).await;
    let mut sleep = Box::pin(time::sleep_until(start + Duration::from_secs(60)));
    assert!(poll_once(sleep.as_mut()).is_pending());
    advance_exactly(Duration::from_micros(51_592)).await;
    assert!(poll_once(sleep.as_mut()).is_pending());
}

#[gpm::test(start_paused = true)]
async fn exact_1ms_advance() {
    advance_exactly(ms(1)).await;
    advance_exactly(ms(1)).await;
}

/// Advances the paused clock by `micros` microseconds, then polls `sleep` once (tokio's
/// `advance_*_with_timer` steps).
async fn advance_us_then_poll(sleep: Pin<&mut Sleep>, micros: u64) -> Poll<()> {
    time::advance(Duration::from_micros(micros)).await;
    poll_once(sleep)
}

#[gpm::test(start_paused = true)]
async fn advance_once_with_timer() {
    let mut sleep = Box::pin(time::sleep(ms(1)));
    assert!(poll_once(sleep.as_mut()).is_pending());
    assert!(advance_us_then_poll(sleep.as_mut(), 250).await.is_pending());
    assert!(advance_us_then_poll(sleep.as_mut(), 1500).await.is_ready());
}

#[gpm::test(start_paused = true)]
async fn advance_multi_with_timer() {
    let mut sleep = Box::pin(time::sleep(ms(1)));
    assert!(poll_once(sleep.as_mut()).is_pending());
    for _ in 0..3 {
        assert!(advance_us_then_poll(sleep.as_mut(), 250).await.is_pending());
    }
    assert!(advance_us_then_poll(sleep.as_mut(), 250).await.is_ready());
}

#[gpm::test(start_paused = true)]
async fn test_start_paused() {
    let now = Instant::now();
    // Pause a few times with a std sleep and check that `now` stays the same.
    for _ in 0..5 {
        std::thread::sleep(ms(1));
        assert_eq!(now, Instant::now());
    }
}

#[gpm::test(start_paused = true)]
async fn paused_time_join_unix_datagram_and_sleep() {
    use gpm::net::UnixDatagram;
    let time = Instant::now();
    let (sock1, sock2) = UnixDatagram::pair().unwrap();
    let mut buf = [0u8; 1];
    futures::join!(
        async {
            sock1.send(&[1u8]).await.unwrap();
            time::sleep(ms(100)).await;
        },
        async {
            sock2.recv(&mut buf).await.unwrap();
            assert_eq!(time.elapsed(), Duration::ZERO);
        },
    );
}

#[gpm::test(start_paused = true)]
async fn paused_time_spawn_unix_datagram_and_sleep() {
    use gpm::net::UnixDatagram;
    let time = Instant::now();
    let (sock1, sock2) = UnixDatagram::pair().unwrap();
    sock1.send(&[1u8]).await.unwrap();
    let h = gpm::spawn(async move {
        let mut buf = [0u8; 1];
        sock2.recv(&mut buf).await.unwrap();
        assert_eq!(time.elapsed(), Duration::ZERO);
    });
    time::sleep(ms(100)).await;
    h.await.unwrap();
    assert_eq!(time.elapsed(), ms(100));
}

/// Beyond tokio's file: what gpm adds or documents.
mod gpm_specific {
    use super::*;

    #[gpm::test(start_paused = true)]
    async fn an_hour_of_sleeps_takes_no_real_time() {
        let real = std::time::Instant::now();
        let start = Instant::now();
        time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
        assert!(
            real.elapsed() < Duration::from_secs(60),
            "time did not jump"
        );
    }

    #[gpm::test(start_paused = true)]
    async fn a_task_sleeping_in_the_runtime_is_advanced_to() {
        let start = Instant::now();
        let task = gpm::spawn(async move {
            time::sleep(ms(500)).await;
            Instant::now()
        });
        let woke_at = task.await.unwrap();
        assert_eq!(woke_at, start + ms(500));
    }

    /// While a blocking closure runs, the idle runtime must not jump to the sleeper's
    /// timer. The closure stays busy for 20 ms of real time, which gives a wrong jump (the
    /// driver reacts within microseconds) every chance to happen before it reads the clock;
    /// without the bug the test passes whatever that duration.
    #[gpm::test(start_paused = true)]
    async fn a_running_blocking_closure_holds_time_back() {
        let start = Instant::now();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocking = gpm::task::spawn_blocking(move || {
            started.send(()).unwrap();
            std::thread::sleep(ms(20));
            Instant::now()
        });
        running.recv().unwrap();
        let sleeper = gpm::spawn(async {
            time::sleep(ms(50)).await;
            Instant::now()
        });
        // block_on parks here: only the blocking closure holds time back.
        let seen_by_blocking = blocking.await.unwrap();
        assert_eq!(
            seen_by_blocking, start,
            "time jumped under a running blocking closure"
        );
        assert_eq!(sleeper.await.unwrap(), start + ms(50));
    }

    #[gpm::test(start_paused = true)]
    async fn resume_lets_real_time_flow_again() {
        let start = Instant::now();
        time::resume();
        let real = std::time::Instant::now();
        time::sleep(ms(5)).await;
        assert!(real.elapsed() >= ms(5));
        assert!(start.elapsed() >= ms(5));
    }

    #[gpm::test]
    async fn resume_or_advance_on_a_running_clock_panics() {
        let resume = gpm::spawn(async { time::resume() });
        assert!(resume.await.unwrap_err().is_panic());
        let advance = gpm::spawn(async { time::advance(ms(1)).await });
        assert!(advance.await.unwrap_err().is_panic());
    }

    #[test]
    fn start_paused_with_two_workers_is_a_build_error() {
        gpm_tests::assert_invalid_setting(
            gpm::Runtime::builder()
                .worker_threads(2)
                .start_paused(true)
                .build(),
            "one worker thread",
        );
    }

    #[test]
    fn pausing_outside_a_runtime_panics_with_a_clear_message() {
        let panic = std::panic::catch_unwind(time::pause).unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("context of a gpm runtime"), "{message}");
    }

    #[test]
    fn instant_outside_a_runtime_is_the_real_clock() {
        let before = std::time::Instant::now();
        let now = Instant::now().into_std();
        assert!(before <= now && now <= std::time::Instant::now());
    }
}

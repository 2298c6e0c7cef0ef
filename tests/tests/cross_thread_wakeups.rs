//! One million wake-ups of tasks by threads outside the runtime, every one counted.

use futures::channel::mpsc;
use futures::StreamExt;
use gpm_tests::{join_all, rt_test};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const TASKS: usize = 1000;
const ROUND_TRIPS: usize = 1000;
const TOTAL: usize = TASKS * ROUND_TRIPS;
const FOREIGN_THREADS: usize = 2;

/// What a task hands to a foreign thread: whom to wake and what to set first.
struct WakeRequest {
    waker: Waker,
    done: Arc<AtomicBool>,
}

/// A future that, on its first poll, asks a foreign thread to wake it and is ready only
/// once that thread has done so. Each one therefore costs exactly one cross-thread wake.
struct ForeignWake {
    requests: std::sync::mpsc::Sender<WakeRequest>,
    done: Option<Arc<AtomicBool>>,
}

impl Future for ForeignWake {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.done {
            None => {
                let done = Arc::new(AtomicBool::new(false));
                self.done = Some(Arc::clone(&done));
                self.requests
                    .send(WakeRequest {
                        waker: cx.waker().clone(),
                        done,
                    })
                    .expect("the foreign thread is gone");
                Poll::Pending
            }
            // Only the foreign thread wakes this task, and it sets `done` first.
            Some(done) if done.load(Ordering::Acquire) => Poll::Ready(()),
            Some(_) => Poll::Pending,
        }
    }
}

/// Drops the caller's request senders (the tasks hold clones), joins the tasks, each of
/// which must have made `ROUND_TRIPS` round trips, then the foreign threads, which must have
/// served `TOTAL` requests between them: once every task is done, every sender is gone and
/// the threads finish.
fn join_tasks_then_threads<S>(
    rt: &gpm::Runtime,
    tasks: Vec<gpm::JoinHandle<usize>>,
    request_senders: Vec<S>,
    threads: Vec<std::thread::JoinHandle<usize>>,
) {
    drop(request_senders);
    let per_task: Vec<usize> = rt.block_on(join_all(tasks));
    assert!(per_task.iter().all(|&n| n == ROUND_TRIPS));
    // Every task is done, so every request sender is gone and the threads finish.
    let served: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, TOTAL);
}

rt_test! {
    /// 1000 tasks x 1000 custom futures, each completed by a wake from one of two foreign
    /// threads: exactly 1 000 000 `wake` calls and 1 000 000 completions, none lost.
    fn million_foreign_wakes_with_custom_future(rt: &gpm::Runtime) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let completions = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..FOREIGN_THREADS {
            let (tx, rx) = std::sync::mpsc::channel::<WakeRequest>();
            senders.push(tx);
            let wakes = Arc::clone(&wakes);
            threads.push(std::thread::spawn(move || {
                let mut served = 0usize;
                for request in rx {
                    request.done.store(true, Ordering::Release);
                    wakes.fetch_add(1, Ordering::Relaxed);
                    request.waker.wake();
                    served += 1;
                }
                served
            }));
        }
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let requests = senders[i % FOREIGN_THREADS].clone();
                let completions = Arc::clone(&completions);
                rt.spawn(async move {
                    for _ in 0..ROUND_TRIPS {
                        ForeignWake { requests: requests.clone(), done: None }.await;
                        completions.fetch_add(1, Ordering::Relaxed);
                    }
                    ROUND_TRIPS
                })
            })
            .collect();
        join_tasks_then_threads(rt, tasks, senders, threads);
        assert_eq!(wakes.load(Ordering::SeqCst), TOTAL);
        assert_eq!(completions.load(Ordering::SeqCst), TOTAL);
    }
}

rt_test! {
    /// 1000 tasks x 1000 round trips through `futures::channel::mpsc`: each task sends a
    /// request to one of two foreign threads and awaits the reply on its own channel. Every
    /// one of the 1 000 000 replies is received, in order, and counted.
    fn million_round_trips_through_mpsc(rt: &gpm::Runtime) {
        let receives = Arc::new(AtomicUsize::new(0));
        let (reply_txs, reply_rxs): (Vec<_>, Vec<_>) =
            (0..TASKS).map(|_| mpsc::unbounded::<usize>()).unzip();
        let reply_txs = Arc::new(reply_txs);
        let mut request_txs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..FOREIGN_THREADS {
            let (tx, rx) = mpsc::unbounded::<(usize, usize)>();
            request_txs.push(tx);
            let reply_txs = Arc::clone(&reply_txs);
            threads.push(std::thread::spawn(move || {
                let mut served = 0usize;
                for (task, seq) in futures::executor::block_on_stream(rx) {
                    reply_txs[task]
                        .unbounded_send(seq + 1)
                        .expect("the task dropped its reply channel");
                    served += 1;
                }
                served
            }));
        }
        let tasks: Vec<_> = reply_rxs
            .into_iter()
            .enumerate()
            .map(|(i, mut replies)| {
                let requests = request_txs[i % FOREIGN_THREADS].clone();
                let receives = Arc::clone(&receives);
                rt.spawn(async move {
                    for seq in 0..ROUND_TRIPS {
                        requests.unbounded_send((i, seq)).unwrap();
                        let reply = replies.next().await.expect("reply channel closed");
                        assert_eq!(reply, seq + 1, "task {i} got a reply out of order");
                        receives.fetch_add(1, Ordering::Relaxed);
                    }
                    ROUND_TRIPS
                })
            })
            .collect();
        join_tasks_then_threads(rt, tasks, request_txs, threads);
        assert_eq!(receives.load(Ordering::SeqCst), TOTAL);
    }
}

//! `gpm::signal::ctrl_c`, in its own test binary: its SIGINT handler stays installed for
//! the rest of the process. `libc::raise(SIGINT)` runs the handler on the raising thread
//! before returning, so each future is polled (listening) before the signal is raised.
#![cfg(unix)]

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll};

fn raise_sigint() {
    // SAFETY: `raise` takes an integer; SIGINT's handler is gpm's (installed by the first
    // `ctrl_c` poll, before any call here), which only bumps a counter and writes a byte.
    let rc = unsafe { libc::raise(libc::SIGINT) };
    assert_eq!(rc, 0);
}

/// Polls `future` once with the current task's waker.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx: &mut Context<'_>| {
        Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx))
    })
    .await
}

/// A listening future resolves on SIGINT, whether the signal came before its next poll or
/// while its task waited (woken by the signal thread, from another runtime's task too);
/// a future first polled after a SIGINT waits for the next one; dropping a pending future
/// leaves nothing behind.
#[test]
fn ctrl_c_resolves_on_sigint() {
    gpm_tests::watchdog("ctrl_c", || {
        let rt = gpm_tests::runtime(2);
        rt.block_on(async {
            // Raised before the next poll: the counter has moved, ready at once.
            let mut first = pin!(gpm::signal::ctrl_c());
            assert!(poll_once(&mut first).await.is_pending());
            raise_sigint();
            first.await.unwrap();

            // Raised while a task waits: the signal thread wakes it.
            let (listening_tx, listening_rx) = mpsc::channel();
            let waiter = gpm::spawn(async move {
                let mut ctrl_c = pin!(gpm::signal::ctrl_c());
                assert!(poll_once(&mut ctrl_c).await.is_pending());
                listening_tx.send(()).unwrap();
                ctrl_c.await.unwrap();
            });
            let mut late = pin!(gpm::signal::ctrl_c());
            let mut dropped = Box::pin(gpm::signal::ctrl_c());
            assert!(poll_once(&mut dropped).await.is_pending());
            drop(dropped);
            gpm::task::spawn_blocking(move || listening_rx.recv().unwrap())
                .await
                .unwrap();
            raise_sigint();
            waiter.await.unwrap();

            // First polled after that SIGINT: waits for the next one.
            assert!(poll_once(&mut late).await.is_pending());
            raise_sigint();
            late.await.unwrap();
        });
    });
}

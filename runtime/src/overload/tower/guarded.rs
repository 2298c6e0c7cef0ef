//! [`GuardedFuture`]: the future of a call that a layer either refused or let through
//! holding a guard (a permit, a latency record) until the call ends.
//!
//! The admission and limit layers had one future type each (`AdmissionFuture`,
//! `LimitFuture`), the same code with a different guard. Both kept "refused" and "running"
//! in two `Option`s, so a third state, neither, could be written down though no constructor
//! built it, and the two disagreed on it: admission answered a made-up refusal (P99 `None`,
//! target zero), the limit future returned `Pending` without registering a waker, a hang
//! that would have held a connection for ever. Here the state is one enum, so that state
//! cannot exist; the names stay as aliases ([`AdmissionFuture`](super::AdmissionFuture),
//! [`LimitFuture`](super::LimitFuture)).
//!
//! The one misuse left is polling again after `Ready`: it panics with a message, as an
//! `async fn`'s future does (the `Future` contract allows any behaviour there, and a panic
//! finds the caller's bug where a made-up answer or a silent `Pending` would hide it).
//!
//! The breaker's future stays its own: its guard needs the call's output (to classify it),
//! not just the end of the call.

use super::{BoxError, Overloaded};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// The future of a guarded call: a refusal, resolved at its first poll without calling
    /// the inner service, or the inner future with a guard `G` that is dropped the moment
    /// the inner future completes (or when this future is dropped before that). Polling it
    /// again after it returned `Ready` panics (see the module docs).
    pub struct GuardedFuture<F, G> {
        #[pin]
        state: State<F, G>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<F, G> {
        Refused { refusal: Overloaded },
        Running { #[pin] inner: F, guard: G },
        Done,
    }
}

impl<F, G> GuardedFuture<F, G> {
    /// A call refused with `refusal`.
    pub(super) fn refused(refusal: Overloaded) -> GuardedFuture<F, G> {
        GuardedFuture {
            state: State::Refused { refusal },
        }
    }

    /// A call let through: `inner` runs, `guard` is held until it ends.
    pub(super) fn running(inner: F, guard: G) -> GuardedFuture<F, G> {
        GuardedFuture {
            state: State::Running { inner, guard },
        }
    }
}

impl<F, G> fmt::Debug for GuardedFuture<F, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("GuardedFuture");
        match &self.state {
            State::Refused { refusal } => debug.field("refused", refusal),
            State::Running { .. } => debug.field("running", &true),
            State::Done => debug.field("done", &true),
        };
        debug.finish()
    }
}

impl<F, G, T, E> Future for GuardedFuture<F, G>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        if let StateProj::Running { inner, .. } = state.as_mut().project() {
            let output = std::task::ready!(inner.poll(cx));
            // Done: the inner future and the guard are dropped here, when the work ended,
            // not whenever the caller drops this future.
            state.set(State::Done);
            return Poll::Ready(output.map_err(Into::into));
        }
        match state.project_replace(State::Done) {
            StateReplace::Refused { refusal } => Poll::Ready(Err(Box::new(refusal))),
            // `Running` returned above; `Done` is a poll after `Ready`.
            _ => panic!("a gpm::overload::tower future was polled after it completed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload::tower::test_support::{now, overloaded};
    use crate::overload::tower::Reason;
    use crate::overload::LimitExceeded;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Waker;
    use std::time::Duration;

    /// Counts its drops.
    struct Guard(Arc<AtomicUsize>);

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn refusal() -> Overloaded {
        Overloaded {
            reason: Reason::ConcurrencyLimit(LimitExceeded {
                limit: 1,
                in_flight: 1,
            }),
            retry_after: Duration::from_millis(7),
        }
    }

    type Inner = std::future::Ready<Result<i32, BoxError>>;

    #[test]
    fn a_refusal_resolves_to_the_boxed_overloaded() {
        let future = GuardedFuture::<Inner, Guard>::refused(refusal());
        let error = now(future).unwrap_err();
        assert_eq!(overloaded(&error), &refusal());
    }

    #[test]
    fn the_guard_is_released_when_the_inner_future_ends_not_when_dropped() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (sender, receiver) = futures::channel::oneshot::channel::<i32>();
        let inner = async move { Ok::<_, BoxError>(receiver.await.unwrap_or(-1)) };
        let mut future = pin!(GuardedFuture::running(inner, Guard(Arc::clone(&drops))));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(drops.load(Ordering::SeqCst), 0, "released while running");
        sender.send(5).unwrap();
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(5)) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1, "kept after the end");
    }

    #[test]
    fn dropping_a_running_call_releases_its_guard_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let inner = std::future::pending::<Result<i32, BoxError>>();
        let future = GuardedFuture::running(inner, Guard(Arc::clone(&drops)));
        drop(future);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn inner_errors_pass_through_boxed() {
        let drops = Arc::new(AtomicUsize::new(0));
        let inner = std::future::ready(Err::<i32, &str>("boom"));
        let future = GuardedFuture::running(inner, Guard(Arc::clone(&drops)));
        let error = now(future).unwrap_err();
        assert_eq!(error.to_string(), "boom");
        assert!(error.downcast_ref::<Overloaded>().is_none());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    #[should_panic(expected = "polled after it completed")]
    fn polling_after_completion_panics() {
        let mut future = pin!(GuardedFuture::<Inner, Guard>::refused(refusal()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_ready());
        let _ = future.as_mut().poll(&mut cx);
    }
}

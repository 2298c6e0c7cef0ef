//! A P's parker: where the M holding an idle P sleeps until someone has work for it.
//!
//! The parker belongs to the P, not to the M: when an M hands its P to another M
//! (`block_in_place`), wake-ups addressed to the P reach whichever M holds it now.
//!
//! # Protocol
//!
//! The state is `EMPTY`, `PARKED` or `NOTIFIED`. `unpark` always leaves a token
//! (`NOTIFIED`); `park` consumes a token if one is there and otherwise sleeps until one
//! arrives. A token left before the sleep therefore ends the sleep at once: no wake-up is
//! lost between deciding to sleep and sleeping. The mutex is taken by `unpark` only when the
//! sleeper may be inside the condition-variable wait, so that the notification cannot fall
//! between its check of the state and its wait.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// Sleep/wake for one P. Shared (`Sync`): any thread may unpark, the holder of the P parks.
pub struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl Parker {
    /// A parker without a token.
    pub fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Sleeps until a token is available, then consumes it. Only the M holding the P calls it.
    pub fn park(&self) {
        self.park_inner(None);
    }

    /// Like [`Parker::park`] but returns after `timeout` at the latest.
    pub fn park_timeout(&self, timeout: Duration) {
        self.park_inner(Some(timeout));
    }

    fn park_inner(&self, timeout: Option<Duration>) {
        if self.try_consume_token() {
            return;
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(NOTIFIED) => {
                self.state.store(EMPTY, Ordering::SeqCst);
                return;
            }
            Err(actual) => unreachable!("parker state {actual} while parking"),
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            guard = match deadline {
                None => self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        break;
                    }
                    self.condvar
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            if self.try_consume_token() {
                return;
            }
        }
        // Timed out: withdraw the PARKED state unless a token raced in, then consume it.
        self.state.swap(EMPTY, Ordering::SeqCst);
        drop(guard);
    }

    fn try_consume_token(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Leaves a token and wakes the sleeper if there is one.
    pub fn unpark(&self) {
        match self.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // The sleeper checked the state under the lock before waiting; taking the
                // lock here orders this notification after its wait began.
                drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
                self.condvar.notify_one();
            }
            actual => unreachable!("parker state {actual} while unparking"),
        }
    }
}

impl Default for Parker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Relaxed) {
            EMPTY => "empty",
            PARKED => "parked",
            _ => "notified",
        };
        f.debug_struct("Parker").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn token_before_park_returns_at_once() {
        let parker = Parker::new();
        parker.unpark();
        parker.park();
    }

    #[test]
    fn unpark_from_other_thread_wakes_sleeper() {
        let parker = Arc::new(Parker::new());
        let other = Arc::clone(&parker);
        let waker = std::thread::spawn(move || other.unpark());
        parker.park();
        waker.join().unwrap();
    }

    #[test]
    fn timeout_returns_without_token() {
        let parker = Parker::new();
        parker.park_timeout(Duration::from_millis(1));
        // The token was not consumed by anyone: a later unpark still works.
        parker.unpark();
        parker.park();
    }
}

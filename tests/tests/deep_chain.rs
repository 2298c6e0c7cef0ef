//! A 1000-deep chain of tasks, each spawning the next.

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt};
use gpm_tests::rt_test;

const DEPTH: u64 = 1000;

/// Task `depth` spawns task `depth - 1`, awaits it and adds one.
fn awaiting_chain(depth: u64) -> BoxFuture<'static, u64> {
    async move {
        if depth == 0 {
            0
        } else {
            gpm::spawn(awaiting_chain(depth - 1)).await.unwrap() + 1
        }
    }
    .boxed()
}

/// Task `depth` spawns task `depth - 1` (detached) with the running sum and the oneshot;
/// the last one sends the sum.
fn oneshot_chain(depth: u64, acc: u64, tx: oneshot::Sender<u64>) {
    if depth == 0 {
        tx.send(acc).unwrap();
    } else {
        drop(gpm::spawn(async move {
            oneshot_chain(depth - 1, acc + depth, tx)
        }));
    }
}

rt_test! {
    /// Each of 1000 nested tasks spawns the next and awaits it; every level adds one.
    fn thousand_deep_awaiting_chain(rt: &gpm::Runtime) {
        assert_eq!(rt.block_on(rt.spawn(awaiting_chain(DEPTH))).unwrap(), DEPTH);
        assert_eq!(rt.block_on(awaiting_chain(DEPTH)), DEPTH);
    }
}

rt_test! {
    /// A oneshot sender is passed down a chain of 1000 detached tasks; the last one sends
    /// the sum 1 + 2 + ... + 1000.
    fn thousand_deep_oneshot_chain(rt: &gpm::Runtime) {
        let (tx, rx) = oneshot::channel();
        rt.spawn(async move { oneshot_chain(DEPTH, 0, tx) });
        assert_eq!(rt.block_on(rx).unwrap(), DEPTH * (DEPTH + 1) / 2);
    }
}

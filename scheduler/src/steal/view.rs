//! What a planner may read about the victims when it plans: a racy snapshot of each victim's
//! queue length and its average queue wait (issue 20: "`plan` takes a view of the victims").
//!
//! The runtime reads both from the victims' shared parts (one relaxed load of the queue's
//! indices and one of the latency history per victim); the simulator reads its own queues.
//! A planner must not rely on two reads agreeing: the victims run while it plans.

/// A snapshot view of the victims, read by [`VictimPlanner::plan`](super::VictimPlanner::plan).
pub trait VictimView {
    /// Tasks a thief could take from P `p` right now (its FIFO plus its inbox); racy.
    fn queue_len(&self, p: usize) -> usize;
    /// P `p`'s average queue wait in nanoseconds (its [`LatencyHistory`]; 0: no sample).
    ///
    /// [`LatencyHistory`]: super::LatencyHistory
    fn queue_wait_ns(&self, p: usize) -> u64;
}

/// A [`VictimView`] made of two closures: queue length, then queue wait.
#[derive(Debug, Clone, Copy)]
pub struct FnView<L, W>(pub L, pub W);

impl<L, W> VictimView for FnView<L, W>
where
    L: Fn(usize) -> usize,
    W: Fn(usize) -> u64,
{
    fn queue_len(&self, p: usize) -> usize {
        (self.0)(p)
    }

    fn queue_wait_ns(&self, p: usize) -> u64 {
        (self.1)(p)
    }
}

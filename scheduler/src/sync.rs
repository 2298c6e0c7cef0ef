//! The loom facade: std's synchronisation types in a normal build, loom's model-checked ones
//! under `--cfg gpm_loom` (our own cfg name: `--cfg loom` would also switch tokio, a
//! dev-dependency of the workspace, into its loom mode). Only the protocols that have loom
//! models use it.

#[cfg(gpm_loom)]
pub(crate) use loom::sync::{atomic, Condvar, Mutex, MutexGuard};

#[cfg(not(gpm_loom))]
pub(crate) use std::sync::{atomic, Condvar, Mutex, MutexGuard};

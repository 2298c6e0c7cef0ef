//! criterion's async benchmarking on gpm: [`criterion::async_executor::AsyncExecutor`] for
//! [`Runtime`], `&Runtime`, [`Handle`] and `&Handle`, so that `b.to_async(&rt).iter(..)`
//! runs the benchmarked future on a gpm runtime as it does on tokio's.
//!
//! Each call is `block_on`: the routine's future runs on the benchmark's thread (spawn from
//! it to reach the workers), exactly as criterion's tokio executor does.
//!
//! ```
//! use criterion::async_executor::AsyncExecutor;
//! let rt = gpm::Runtime::builder().worker_threads(1).build().unwrap();
//! let doubled = (&rt).block_on(async { gpm::spawn(async { 21 }).await.unwrap() * 2 });
//! assert_eq!(doubled, 42);
//! ```

use crate::{Handle, Runtime};
use criterion::async_executor::AsyncExecutor;
use std::future::Future;

/// `AsyncExecutor` for each `$executor`, by `$owner::block_on`.
macro_rules! block_on_executors {
    ($($executor:ty => $owner:ident),*) => {
        $(
            impl AsyncExecutor for $executor {
                fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
                    $owner::block_on(self, future)
                }
            }
        )*
    };
}

block_on_executors!(
    Runtime => Runtime,
    &Runtime => Runtime,
    Handle => Handle,
    &Handle => Handle
);

//! The loom facade: the task core uses these names, which are std's types in a normal
//! build and loom's model-checked ones under `--cfg gpm_loom`. (Not `--cfg loom`: that
//! switches tokio, a dev-dependency of the workspace, into its own loom mode.)

#[cfg(gpm_loom)]
pub(crate) use loom::{cell, sync, thread};

#[cfg(not(gpm_loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::*;
}

#[cfg(not(gpm_loom))]
pub(crate) mod cell {
    /// `std::cell::UnsafeCell` with loom's closure-based access API, so that the same code
    /// compiles under both.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

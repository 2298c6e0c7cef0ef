//! Adapters to other crates' runtime traits, each behind a cargo feature.
//!
//! * `hyper`: `compat::hyper` — hyper 1.x's `rt::Executor`, `rt::Timer` and
//!   `rt::Read`/`rt::Write` for [`crate::net::TcpStream`].
//! * `criterion`: `compat::criterion` — criterion's `AsyncExecutor` for
//!   [`crate::Runtime`] and [`crate::Handle`] (`b.to_async(&rt)`).

#[cfg(feature = "hyper")]
pub mod hyper;

#[cfg(feature = "criterion")]
pub mod criterion;

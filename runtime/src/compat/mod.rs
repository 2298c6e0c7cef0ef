//! Adapters to other crates' runtime traits, each behind a cargo feature.
//!
//! * `hyper`: [`hyper`](self::hyper) — hyper 1.x's `rt::Executor`, `rt::Timer` and
//!   `rt::Read`/`rt::Write` for [`crate::net::TcpStream`].

#[cfg(feature = "hyper")]
pub mod hyper;

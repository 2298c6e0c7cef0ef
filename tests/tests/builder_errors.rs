//! `Builder::build` rejects bad settings with a `BuildError` naming the setting, and
//! accepts the edges of the valid ranges.

use gpm_tests::watchdog;

/// Builds with `configure` applied and checks the build fails with an invalid-setting error
/// naming `setting` ([`build_error`], then [`assert_invalid`]).
#[track_caller]
fn assert_rejected(setting: &str, configure: impl FnOnce(&mut gpm::Builder) -> &mut gpm::Builder) {
    assert_invalid(build_error(configure), setting);
}

/// Builds with `configure` applied and returns the error, failing if the build succeeded.
#[track_caller]
fn build_error(configure: impl FnOnce(&mut gpm::Builder) -> &mut gpm::Builder) -> gpm::BuildError {
    let mut builder = gpm::Runtime::builder();
    configure(&mut builder);
    match builder.build() {
        Ok(rt) => panic!("build succeeded with an invalid setting: {rt:?}"),
        Err(error) => error,
    }
}

/// The error is an invalid-setting error naming `setting`, also once converted to
/// `io::Error` (kind `InvalidInput`).
#[track_caller]
fn assert_invalid(error: gpm::BuildError, setting: &str) {
    assert!(
        error.is_invalid_setting(),
        "{error:?} is not an invalid-setting error"
    );
    let message = error.to_string();
    assert!(
        message.contains(setting),
        "the message {message:?} does not name `{setting}`"
    );
    let io: std::io::Error = error.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    assert!(io.to_string().contains(setting), "{io}");
}

/// A test per rejected setting: each builder configuration listed is rejected with an
/// invalid-setting error naming the setting ([`assert_rejected`]).
macro_rules! rejected_settings {
    ($($(#[$doc:meta])* $name:ident: $setting:literal => [$($configure:expr),+ $(,)?];)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                $(assert_rejected($setting, $configure);)+
            }
        )*
    };
}

rejected_settings! {
    /// `worker_threads(0)` is rejected with a message naming `worker_threads`.
    zero_worker_threads_is_an_error: "worker_threads" => [|b| b.worker_threads(0)];

    /// `worker_threads(1_000_000)` (above `MAX_WORKER_THREADS`) is rejected without starting
    /// a million threads.
    huge_worker_threads_is_an_error: "worker_threads" => [
        |b| b.worker_threads(1_000_000),
        |b| b.worker_threads(gpm::runtime::MAX_WORKER_THREADS + 1),
    ];

    /// `max_blocking_threads(0)` and values above `MAX_BLOCKING_THREADS` are rejected.
    bad_max_blocking_threads_is_an_error: "max_blocking_threads" => [
        |b| b.max_blocking_threads(0),
        |b| b.max_blocking_threads(gpm::runtime::MAX_BLOCKING_THREADS + 1),
    ];

    /// A thread name containing a NUL byte is rejected.
    thread_name_with_nul_is_an_error: "thread_name" => [|b| b.thread_name("bad\0name")];

    /// `global_queue_interval(0)` is rejected.
    zero_global_queue_interval_is_an_error: "global_queue_interval" => [
        |b| b.global_queue_interval(0),
    ];

    /// `thread_stack_size(1)` (below `MIN_STACK_SIZE`) is rejected.
    tiny_thread_stack_size_is_an_error: "thread_stack_size" => [
        |b| b.thread_stack_size(1),
        |b| b.thread_stack_size(gpm::runtime::MIN_STACK_SIZE - 1),
    ];
}

/// An error in one setting is reported even when the others are valid, and a builder that
/// failed can be fixed and reused (`build` takes `&mut self`).
#[test]
fn builder_is_reusable_after_an_error() {
    watchdog("builder_is_reusable_after_an_error", || {
        let mut builder = gpm::Runtime::builder();
        builder
            .worker_threads(2)
            .thread_name("reused")
            .global_queue_interval(0);
        let error = builder.build().unwrap_err();
        assert!(
            error.to_string().contains("global_queue_interval"),
            "{error}"
        );
        builder.global_queue_interval(1);
        let rt = builder.build().expect("fixed settings");
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
        // The same builder builds a second, independent runtime.
        let rt2 = builder.build().unwrap();
        assert_eq!(rt2.handle().num_workers(), 2);
        drop(rt);
        assert_eq!(rt2.block_on(rt2.spawn(async { 4 })).unwrap(), 4);
    });
}

/// The edges of the valid ranges build working runtimes: 1 worker, 1 blocking thread,
/// `MIN_STACK_SIZE` stacks, a global queue interval of 1, and the default builder.
#[test]
fn valid_edge_settings_build() {
    watchdog("valid_edge_settings_build", || {
        let rt = gpm::Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_stack_size(gpm::runtime::MIN_STACK_SIZE)
            .global_queue_interval(1)
            .build()
            .expect("edge settings are valid");
        let value = rt.block_on(async {
            let a = gpm::spawn(async { 1 });
            let b = gpm::task::spawn_blocking(|| 2);
            a.await.unwrap() + b.await.unwrap()
        });
        assert_eq!(value, 3);
        let default = gpm::Runtime::new().expect("default settings");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default.handle().num_workers(), cores);
        assert!(default.handle().num_threads() >= 1);
    });
}

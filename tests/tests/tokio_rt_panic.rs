//! tokio's `tests/rt_panic.rs` run on gpm: a panic of a runtime API called wrongly points
//! at the caller (`#[track_caller]`), not into the runtime. tokio's `support::panic::
//! test_panic` is `gpm_tests::test_panic`. What changed in the port:
//!
//! * tokio's builder setters panic on a bad value; gpm's `Builder::build` returns a
//!   `BuildError` naming the setting instead (docs/MIGRATING.md, "Bad settings are
//!   errors"). The `builder_*_panic_caller` tests therefore check that nothing panics and
//!   that `build` reports the setting: `worker_threads(0)`, `max_blocking_threads(0)`,
//!   `global_queue_interval(0)` and `name(" ")`.
//! * `Builder::name` (with `Handle::name`) was added to gpm for this port.
//!
//! Skipped: `builder_event_interval_interval_panic_caller`. gpm has no
//! `Builder::event_interval`: its Ms turn the driver every 61 polls, a constant of the
//! driver (`MAINTENANCE_INTERVAL`), not a setting.

use futures::future;
use gpm::runtime::{Builder, Handle, Runtime};
use gpm_tests::test_panic;
use std::error::Error;

/// The gpm side of tokio's `builder_*_panic_caller` tests: building with `configure`
/// applied panics nowhere, and fails with an invalid-setting error naming `setting`.
#[track_caller]
fn assert_build_error(setting: &str, configure: fn(&mut Builder) -> &mut Builder) {
    let panic_location_file = test_panic(|| {
        let error = configure(&mut Builder::new_multi_thread())
            .build()
            .expect_err("the build should fail");
        assert!(error.is_invalid_setting(), "{error:?}");
        let named = format!("`{setting}`");
        assert!(error.to_string().contains(&named), "{error}");
    });

    // Nothing panicked: neither the setter nor `build`.
    assert_eq!(panic_location_file, None);
}

#[test]
fn current_handle_panic_caller() -> Result<(), Box<dyn Error>> {
    let panic_location_file = test_panic(|| {
        let _ = Handle::current();
    });

    // The panic location should be in this file
    assert_eq!(&panic_location_file.unwrap(), file!());

    Ok(())
}

#[test]
fn into_panic_panic_caller() -> Result<(), Box<dyn Error>> {
    let panic_location_file = test_panic(move || {
        let rt = current_thread();
        rt.block_on(async {
            let handle = gpm::spawn(future::pending::<()>());

            handle.abort();

            let err = handle.await.unwrap_err();
            assert!(!&err.is_panic());

            let _ = err.into_panic();
        });
    });

    // The panic location should be in this file
    assert_eq!(&panic_location_file.unwrap(), file!());

    Ok(())
}

#[test]
fn builder_worker_threads_panic_caller() -> Result<(), Box<dyn Error>> {
    assert_build_error("worker_threads", |builder| builder.worker_threads(0));

    Ok(())
}

#[test]
fn builder_max_blocking_threads_panic_caller() -> Result<(), Box<dyn Error>> {
    assert_build_error("max_blocking_threads", |builder| {
        builder.max_blocking_threads(0)
    });

    Ok(())
}

#[test]
fn builder_global_queue_interval_panic_caller() -> Result<(), Box<dyn Error>> {
    assert_build_error("global_queue_interval", |builder| {
        builder.global_queue_interval(0)
    });

    Ok(())
}

#[test]
fn builder_name_panic_caller() -> Result<(), Box<dyn Error>> {
    assert_build_error("name", |builder| builder.name(" "));

    Ok(())
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

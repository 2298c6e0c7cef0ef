//! `#[gpm::main]` and `#[gpm::test]`: tokio's `tests/macros_test.rs`, ported (its
//! runtime-name and unhandled-panic cases are left out: gpm has neither option), plus the
//! arguments gpm adds. The compile errors for bad arguments are checked by `compile_fail`
//! doc tests on `gpm::MacroErrors` (runtime/src/lib.rs).

use gpm::test;

#[test]
async fn test_macro_can_be_used_via_use() {
    gpm::spawn(async {}).await.unwrap();
}

#[gpm::test]
async fn test_macro_is_resilient_to_shadowing() {
    gpm::spawn(async {}).await.unwrap();
}

// https://github.com/tokio-rs/tokio/issues/3403
#[rustfmt::skip] // this `rustfmt::skip` is necessary because unused_braces does not warn if the block contains newline.
#[gpm::main]
pub async fn unused_braces_main() { println!("hello") }
#[rustfmt::skip] // this `rustfmt::skip` is necessary because unused_braces does not warn if the block contains newline.
#[gpm::test]
async fn unused_braces_test() { assert_eq!(1 + 1, 2) }

// https://github.com/tokio-rs/tokio/pull/3766#issuecomment-835508651
#[std::prelude::v1::test]
fn trait_method() {
    trait A {
        fn f(self);

        fn g(self);
    }
    impl A for () {
        #[gpm::main]
        async fn f(self) {
            self.g()
        }

        fn g(self) {}
    }
    ().f()
}

// https://github.com/tokio-rs/tokio/issues/4175
#[gpm::main]
pub async fn issue_4175_main_1() -> ! {
    panic!();
}
#[gpm::main]
pub async fn issue_4175_main_2() -> std::io::Result<()> {
    panic!();
}
#[allow(unreachable_code)]
#[gpm::test]
pub async fn issue_4175_test() -> std::io::Result<()> {
    return Ok(());
    panic!();
}

// https://github.com/tokio-rs/tokio/issues/4175
#[allow(clippy::let_unit_value)]
pub mod clippy_semicolon_if_nothing_returned {
    #![deny(clippy::semicolon_if_nothing_returned)]

    #[gpm::main]
    pub async fn local() {
        let _x = ();
    }
    #[gpm::main]
    pub async fn item() {
        fn _f() {}
    }
    #[gpm::main]
    pub async fn semi() {
        panic!();
    }
    #[gpm::main]
    pub async fn empty() {
        // To trigger clippy::semicolon_if_nothing_returned lint, the block needs to contain newline.
    }
}

// https://github.com/tokio-rs/tokio/issues/5243
pub mod issue_5243 {
    macro_rules! mac {
        (async fn $name:ident() $b:block) => {
            #[::gpm::test]
            async fn $name() {
                $b
            }
        };
    }
    mac!(
        async fn foo() {}
    );
}

// gpm's arguments.

#[gpm::test(worker_threads = 3)]
async fn worker_threads_is_applied() {
    assert_eq!(gpm::Handle::current().num_workers(), 3);
}

#[gpm::test(flavor = "current_thread")]
async fn current_thread_flavor_is_one_worker() {
    let handle = gpm::Handle::current();
    assert_eq!(handle.num_workers(), 1);
    assert_eq!(
        handle.runtime_flavor(),
        gpm::runtime::RuntimeFlavor::CurrentThread
    );
}

#[gpm::test]
async fn a_test_runs_on_the_current_thread_runtime_by_default() {
    let flavor = gpm::Handle::current().runtime_flavor();
    assert_eq!(flavor, gpm::runtime::RuntimeFlavor::CurrentThread);
}

#[gpm::main]
async fn main_default() -> gpm::runtime::RuntimeFlavor {
    gpm::Handle::current().runtime_flavor()
}

#[::core::prelude::v1::test]
fn main_runs_on_the_multi_thread_runtime_by_default() {
    assert_eq!(main_default(), gpm::runtime::RuntimeFlavor::MultiThread);
}

#[gpm::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_flavor_with_workers() {
    assert_eq!(gpm::Handle::current().num_workers(), 2);
}

#[gpm::test(steal_policy = "random")]
async fn steal_policy_random() {
    assert_eq!(gpm::Handle::current().steal_policy().name(), "random");
}

#[gpm::test(steal_policy = "affinity", worker_threads = 2)]
async fn steal_policy_affinity() {
    assert_eq!(gpm::Handle::current().steal_policy().name(), "affinity");
}

#[gpm::test(steal_policy = "hierarchical")]
async fn steal_policy_hierarchical() {
    assert_eq!(gpm::Handle::current().steal_policy().name(), "hierarchical");
}

#[gpm::test(crate = "gpm")]
async fn crate_path() {
    gpm::task::yield_now().await;
}

#[gpm::test]
async fn question_mark_in_body() -> Result<(), gpm::JoinError> {
    let value = gpm::spawn(async { 5 }).await?;
    assert_eq!(value, 5);
    Ok(())
}

#[gpm::test]
#[should_panic(expected = "boom")]
async fn should_panic_is_kept() {
    panic!("boom");
}

#[gpm::test]
#[ignore = "checks that attributes after the macro are kept"]
async fn ignore_is_kept() {
    unreachable!("ignored tests do not run");
}

#[std::prelude::v1::test]
fn main_runs_body_and_returns_its_output() {
    #[gpm::main(worker_threads = 2)]
    async fn main() -> usize {
        gpm::Handle::current().num_workers()
    }
    assert_eq!(main(), 2);
}

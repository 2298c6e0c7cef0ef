//! `GPM_STEAL` selects the policy at run time, the builder overrides it, and a bad value is
//! a build error naming the variable and the value. One test in its own binary: it changes
//! the process environment, which other tests (building runtimes) must not see; this
//! binary holds this single test.

use gpm::steal::StealPolicy;

fn policy_of(builder: &mut gpm::Builder) -> Result<StealPolicy, String> {
    builder
        .worker_threads(1)
        .build()
        .map(|rt| rt.handle().steal_policy())
        .map_err(|e| e.to_string())
}

#[test]
fn environment_selects_and_builder_overrides() {
    std::env::set_var("GPM_STEAL", "hierarchical");
    assert_eq!(
        policy_of(&mut gpm::Runtime::builder()),
        Ok(StealPolicy::Hierarchical)
    );
    assert_eq!(
        policy_of(gpm::Runtime::builder().steal_policy(StealPolicy::Random)),
        Ok(StealPolicy::Random)
    );
    std::env::set_var("GPM_STEAL", "RANDOM");
    assert_eq!(
        policy_of(&mut gpm::Runtime::builder()),
        Ok(StealPolicy::Random)
    );

    std::env::set_var("GPM_STEAL", "work-first");
    let error = policy_of(&mut gpm::Runtime::builder()).unwrap_err();
    assert!(
        error.contains("GPM_STEAL") && error.contains("work-first"),
        "{error}"
    );
    // The builder's choice does not even read the bad variable.
    assert_eq!(
        policy_of(gpm::Runtime::builder().steal_policy(StealPolicy::Hierarchical)),
        Ok(StealPolicy::Hierarchical)
    );

    std::env::remove_var("GPM_STEAL");
    assert_eq!(
        policy_of(&mut gpm::Runtime::builder()),
        Ok(StealPolicy::compiled_default())
    );
}

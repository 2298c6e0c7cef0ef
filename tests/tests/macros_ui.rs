//! Compile errors of `#[gpm::main]` / `#[gpm::test]` point at the bad argument: each case in
//! `tests/ui/` must fail to compile with exactly the message and span in its `.stderr`
//! (trybuild; regenerate with `TRYBUILD=overwrite` after reading the new output).

#[test]
fn bad_macro_arguments_point_at_the_argument() {
    if std::env::var_os("GPM_STEAL").is_some() {
        // CI re-runs this crate under each stealing policy; compile errors do not depend on
        // it, and each run of these cases costs a compilation of gpm.
        return;
    }
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}

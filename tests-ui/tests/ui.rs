//! The compile-fail suite: the specification of the `network!` macro's errors.
//!
//! Each `ui/fail_*.rs` is a small network with one mistake, and its `.stderr` the exact error
//! the compiler prints. Regenerate them with `TRYBUILD=overwrite cargo test -p miniflow-ui-tests` and read
//! the diff. The `ui/pass_*.rs` files must compile (without warnings) and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests-ui/tests/ui/fail_*.rs");
    t.pass("tests-ui/tests/ui/pass_*.rs");
}

//! The integration tests, as one test binary: one link instead of one per file, and the
//! kernels the networks call compiled once rather than in every file's crate (most of the
//! test build's time). `tests/allocations.rs` and `tests/optim_alloc.rs` stay binaries of
//! their own, because each installs a counting global allocator, and the compile-fail suite
//! is the `tests-ui` package. Run one file's tests with `cargo test --test suite <file>::`.

#[path = "../common/mod.rs"]
mod common;

// The examples the tests run, compiled in once (so a test and the example it checks cannot
// drift apart).
#[allow(dead_code)]
#[path = "../../examples/boston.rs"]
mod example_boston;
#[allow(dead_code)]
#[path = "../../examples/course.rs"]
mod example_course;
#[allow(dead_code)]
#[cfg(feature = "safetensors")]
#[path = "../../examples/digits.rs"]
mod example_digits;
#[allow(dead_code)]
#[path = "../../examples/iris.rs"]
mod example_iris;
#[allow(dead_code)]
#[path = "../../examples/xor.rs"]
mod example_xor;

mod bare;
mod borrowed_batch;
mod boston;
mod check_finite;
mod course;
mod data_files;
mod digits;
mod digits_predict;
mod dot;
mod failed_step;
mod generated_vs_graph;
mod gradcheck;
mod init;
mod iris;
mod nested;
mod ops_generated;
mod optim_errors;
mod optimizers;
mod persist;
mod pitfalls;
mod resume;
mod simd_levels;
mod torch_fixture;
mod train;
mod training_step;
mod xor;

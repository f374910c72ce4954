//! The kernel and runtime-graph tests, as one test binary (one link; the kernels compiled
//! once rather than in every file's crate). `tests/kernel_alloc.rs` stays a binary of its own
//! (a counting global allocator), and so does `tests/products.rs`, which CI also runs with
//! the `threads` feature. Run one file's tests with `cargo test -p miniflow-core --test suite
//! <file>::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../tests-gen/src/netgen.rs"]
mod netgen;

mod graph_course;
mod graph_robust;
mod kernels_fd;
mod levels;
mod numerics_graph;
mod ops_fd;
mod plan_rules;
mod prop_graph;

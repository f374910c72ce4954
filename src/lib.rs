// The crate's documentation: an overview and whole-program recipes, compiled and run as
// doctests. The DSL reference is `network!`'s (miniflow-macros/docs/dsl.md).
#![doc = include_str!("../docs/guide.md")]
#![forbid(unsafe_code)]

// No `core` alias: `use miniflow::*` would make a user's `use core::...` ambiguous.
pub use miniflow_core::{
    data, dot, error, exec, gradcheck, init, metrics, plan, rng, train, Adam, Momentum, Rng,
};
pub use miniflow_core::{
    kind, ndarray, ops, sgd, DimSpec, Error, Graph, Handle, InputKey, Network, NetworkSpec, NodeId,
    NodeKey, NodeKind, NodeSpec, Op, Optimizer, OutputKey, ParamKey, ParamMut, Result, Scalar, Sgd,
};
pub use miniflow_macros::network;

// Apart from the list above so that it merges (and formats) on its own.
#[cfg(feature = "safetensors")]
pub use miniflow_core::persist;

/// What `network!` expands to refers to, by this path, so that it works from any crate that
/// depends on `miniflow` alone. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use miniflow_core;
    pub use miniflow_core::ndarray;
}

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The DSL reference in `network!`'s documentation, whose examples run here: a proc-macro
/// crate's doctests cannot use its own macro.
#[cfg(doctest)]
#[doc = include_str!("../miniflow-macros/docs/dsl.md")]
pub struct DslDoctests;

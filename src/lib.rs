//! miniflow: neural networks written in a small DSL and compiled, by the [`network!`] macro,
//! into straight-line forward and backward code over the kernels of [`core`].
//!
//! See the README for the DSL, the ops and the errors.

#![forbid(unsafe_code)]

pub use miniflow_core as core;
pub use miniflow_core::{data, dot, gradcheck, init, rng, train, Adam, Momentum, Rng};
pub use miniflow_core::{
    ndarray, ops, sgd, DimSpec, Error, Graph, Network, NetworkSpec, NodeId, NodeKind, NodeSpec, Op,
    Optimizer, ParamMut, Result, Scalar, Sgd,
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

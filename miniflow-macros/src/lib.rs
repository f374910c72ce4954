//! The `network!` procedural macro of miniflow. The compiler itself lives in
//! `miniflow-codegen` (parse -> validate -> shapes -> plan -> expand), a plain library so it
//! can be tested and fuzzed; this crate only hands it the tokens.

#![forbid(unsafe_code)]

/// Compiles a network written in miniflow's DSL into a struct with straight-line forward and
/// backward passes that implements `miniflow::Network`.
///
/// ```ignore
/// miniflow::network! {
///     /// The seed's test network.
///     pub struct Course {
///         #[grad] input X: [batch, 2];
///         #[grad] input y: [batch];
///         param W: [2, 1];
///         param b: [1];
///
///         f = linear(X, W, b);
///         output a = sigmoid(f);
///         loss cost = mse(y, a);
///     }
/// }
/// ```
///
/// See the `miniflow` crate's README for the DSL, the ops and every compile error.
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    miniflow_codegen::network(input.into()).into()
}

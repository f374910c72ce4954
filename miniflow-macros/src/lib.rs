//! The `network!` procedural macro of miniflow.
//!
//! A pipeline, one module per stage, each with its own tests:
//! [`ast`] (parse) -> [`validate`] -> [`shapes`] -> [`plan`] -> [`expand`].
//! Every stage reports problems as `syn::Error`s spanned on the user's tokens.

mod ast;
mod expand;
mod plan;
mod shapes;
mod suggest;
mod validate;

use proc_macro2::TokenStream;

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
    network_impl(input.into()).into()
}

/// The whole pipeline on `proc_macro2` tokens, so tests can run it outside a compiler.
fn network_impl(input: TokenStream) -> TokenStream {
    pipeline(input).unwrap_or_else(syn::Error::into_compile_error)
}

fn pipeline(input: TokenStream) -> syn::Result<TokenStream> {
    let def: ast::NetworkDef = syn::parse2(input)?;
    let model = validate::validate(&def)?;
    let shapes = shapes::infer(&def, &model)?;
    let plan = plan::plan(&model);
    Ok(expand::expand(&def, &model, &shapes, &plan))
}

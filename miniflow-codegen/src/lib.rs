//! The compiler behind miniflow's `network!` macro, as a plain library on `proc_macro2`
//! tokens, so it can be tested and fuzzed outside a compiler.
//!
//! A pipeline, one module per stage, each with its own tests:
//! [`ast`] (parse) -> [`validate`] -> [`shapes`] -> [`plan`] -> [`expand`].
//! Every stage reports problems as `syn::Error`s spanned on the user's tokens.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod ast;
pub mod expand;
pub mod plan;
pub mod shapes;
mod suggest;
pub mod validate;

use proc_macro2::TokenStream;

/// Compiles a `network! { ... }` body: the generated code, or `compile_error!` invocations
/// carrying every error found, spanned on the offending tokens. Never panics.
pub fn network(input: TokenStream) -> TokenStream {
    pipeline(input).unwrap_or_else(syn::Error::into_compile_error)
}

/// The pipeline, returning the first stage's errors as a `syn::Error`.
pub fn pipeline(input: TokenStream) -> syn::Result<TokenStream> {
    let def: ast::NetworkDef = syn::parse2(input)?;
    let model = validate::validate(&def)?;
    let shapes = shapes::infer(&def, &model)?;
    let plan = plan::plan(&model)?;
    Ok(expand::expand(&def, &model, &shapes, &plan))
}

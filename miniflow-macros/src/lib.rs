//! The `network!` procedural macro of miniflow, re-exported as `miniflow::network!`: read its
//! documentation there, where its links and examples work. The compiler itself lives in
//! `miniflow-codegen` (parse -> validate -> shapes -> plan -> expand), a plain library so it
//! can be tested and fuzzed; this crate only hands it the tokens.

#![forbid(unsafe_code)]

// The reference is written for the `miniflow` crate's page (its links are relative to it)
// and its examples run as the facade's doctests: a proc-macro crate's own doctests cannot
// use its macro, so this crate has none (`doctest = false`).
#[doc = include_str!("../docs/dsl.md")]
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    miniflow_codegen::network(input.into()).into()
}

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

/// How deeply groups (`(...)`, `[...]`, `{...}`) may nest in a network's tokens. Far beyond
/// any real network; it keeps syn's recursive parsers from overflowing the compiler's stack
/// on hostile input (`#[doc = ((((...))))]` 700 deep).
pub const MAX_NESTING: usize = 64;

/// The pipeline, returning the first stage's errors as a `syn::Error`.
pub fn pipeline(input: TokenStream) -> syn::Result<TokenStream> {
    check_nesting(&input)?;
    let def: ast::NetworkDef = syn::parse2(input)?;
    let model = validate::validate(&def)?;
    if def.bare {
        validate::late(&model)?;
        let plan = plan::plan(&model)?;
        return Ok(expand::expand_bare(&def, &model, &plan));
    }
    // Shape errors first, then unused nodes: both are reported when both apply.
    let shapes = match (shapes::infer(&def, &model), validate::late(&model)) {
        (Ok(shapes), Ok(())) => shapes,
        (Err(mut e), Err(late)) => {
            e.combine(late);
            return Err(e);
        }
        (Err(e), Ok(())) | (Ok(_), Err(e)) => return Err(e),
    };
    let plan = plan::plan(&model)?;
    Ok(expand::expand(&def, &model, &shapes, &plan))
}

/// Rejects tokens nested deeper than [`MAX_NESTING`], without recursion.
fn check_nesting(input: &TokenStream) -> syn::Result<()> {
    let mut stack: Vec<(proc_macro2::token_stream::IntoIter, usize)> =
        vec![(input.clone().into_iter(), 0)];
    while let Some((mut iter, depth)) = stack.pop() {
        if let Some(tt) = iter.next() {
            stack.push((iter, depth));
            if let proc_macro2::TokenTree::Group(g) = tt {
                if depth + 1 > MAX_NESTING {
                    return Err(syn::Error::new(
                        g.span(),
                        format!(
                            "this is nested more than {MAX_NESTING} levels deep; a network never needs that"
                        ),
                    ));
                }
                stack.push((g.stream().into_iter(), depth + 1));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 5_000;
        let src = format!(
            "struct N {{ #[doc = {}\"x\"{}] input x: [2]; param w: [2]; loss l = mse(x, w); }}",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        let tokens: proc_macro2::TokenStream = src.parse().unwrap();
        let out = super::network(tokens).to_string();
        assert!(out.contains("nested more than 64 levels"), "{out:.200}");
    }
}

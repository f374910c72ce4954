//! Stage 3, shapes: infer every node's shape from the declared leaf shapes, with the op
//! table's rules (the same ones the runtime graph checks), on symbolic dims: a dim is a
//! literal or a name bound at run time, and two dims are equal only if they are provably so.

use crate::ast::{DimExpr, LeafKind, NetworkDef, Stmt};
use crate::plan::topo_order;
use crate::validate::{Kind, Model};
use miniflow_ops::{format_shape, Dim, Op, ShapeErrorKind};
use quote::ToTokens;
use std::fmt;
use syn::ext::IdentExt;
use syn::Error;

/// A dimension known at compile time: a literal, or a name whose size is fed at run time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SymDim {
    Fixed(usize),
    Named(String),
}

impl fmt::Display for SymDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymDim::Fixed(n) => write!(f, "{n}"),
            SymDim::Named(s) => f.write_str(s),
        }
    }
}

impl Dim for SymDim {
    fn same_count(a: &[Self], b: &[Self]) -> bool {
        // Equal products for every binding of the names: same literal product, same names.
        fn split(s: &[SymDim]) -> (usize, Vec<&str>) {
            let mut names = Vec::new();
            let mut product = 1usize;
            for d in s {
                match d {
                    SymDim::Fixed(n) => product = product.saturating_mul(*n),
                    SymDim::Named(x) => names.push(x.as_str()),
                }
            }
            names.sort_unstable();
            (product, names)
        }
        split(a) == split(b)
    }
}

pub type Shape = Vec<SymDim>;

/// What to do about a shape error, when the cause is a common one: two names for one
/// dimension, or a weight written `[out, in]` as PyTorch stores it.
fn hint(op: Op, kind: &ShapeErrorKind<SymDim>, args: &[&[SymDim]], names: &[&str]) -> String {
    let named = |s: &[SymDim]| -> Vec<String> {
        s.iter()
            .filter_map(|d| match d {
                SymDim::Named(n) => Some(n.clone()),
                SymDim::Fixed(_) => None,
            })
            .collect()
    };
    let (a, b) = match kind {
        ShapeErrorKind::Dim {
            found: SymDim::Named(a),
            expected: SymDim::Named(b),
            ..
        } => (vec![a.clone()], vec![b.clone()]),
        ShapeErrorKind::Count { expected, found } | ShapeErrorKind::Shape { expected, found } => {
            (named(expected), named(found))
        }
        _ => (Vec::new(), Vec::new()),
    };
    let (only_a, only_b): (Vec<&String>, Vec<&String>) = (
        a.iter().filter(|n| !b.contains(n)).collect(),
        b.iter().filter(|n| !a.contains(n)).collect(),
    );
    if let ([x], [y]) = (only_a.as_slice(), only_b.as_slice()) {
        return format!(
            "; `{x}` and `{y}` are different names, so their sizes are not known to be equal: if they are one dimension, use one name for both (e.g. `{y}`)"
        );
    }
    // linear(x: [m, k], w: [n, k]) or matmul(a: [m, k], b: [n, k]): a weight stored [out, in].
    if let (Op::Linear | Op::Matmul, ShapeErrorKind::Dim { axis: 0, .. }) = (op, kind) {
        if let ([_, k], [out, k2]) = (args[0], args.get(1).copied().unwrap_or(&[])) {
            if k == k2 {
                return format!(
                    "; miniflow weights are `[in, out]` (`{}` computes `{}·{}`), unlike PyTorch's `nn.Linear.weight`, which is `[out, in]`: declare `{}: [{k}, {out}]`",
                    op,
                    names.first().unwrap_or(&"x"),
                    names.get(1).unwrap_or(&"w"),
                    names.get(1).unwrap_or(&"w"),
                );
            }
        }
    }
    String::new()
}

/// The largest number of elements a node's fixed dims may multiply to: an array's size in
/// bytes must fit in an `isize` (what `ndarray` and the allocator allow), for the element type.
fn max_elements(def: &NetworkDef) -> u128 {
    let bytes = if def.elem == "f32" { 4 } else { 8 };
    (isize::MAX as u128) / bytes
}

/// Every node's fixed dims multiply to an array that can exist: otherwise `new()` (or the
/// first forward) would panic allocating it. Spanned on a leaf's dims, or on an op's name.
fn check_sizes(def: &NetworkDef, model: &Model, shapes: &[Shape]) -> syn::Result<()> {
    let max = max_elements(def);
    for (i, shape) in shapes.iter().enumerate() {
        let product = shape.iter().try_fold(1u128, |p, d| match d {
            SymDim::Fixed(n) => p.checked_mul(*n as u128),
            SymDim::Named(_) => Some(p),
        });
        if product.is_some_and(|p| p <= max) {
            continue;
        }
        let node = &model.nodes[i];
        let named = if shape.iter().any(|d| matches!(d, SymDim::Named(_))) {
            " before its named dims"
        } else {
            ""
        };
        let message = format!(
            "`{}` has shape {}: {} elements{named}, more than an `{}` array can hold (at most {max}); use smaller dimensions",
            node.name,
            format_shape(shape),
            product.map_or("over 2^128".to_string(), |p| p.to_string()),
            def.elem,
        );
        let error = match (&node.kind, &def.stmts[i]) {
            (_, Stmt::Leaf(leaf)) => {
                let dims = leaf.dims.iter().map(|d| match d {
                    DimExpr::Fixed(lit) => lit.to_token_stream(),
                    DimExpr::Named(name) => name.to_token_stream(),
                });
                Error::new_spanned(quote::quote!(#(#dims)*), message)
            }
            (Kind::Op { op_ident, .. }, _) => Error::new(op_ident.span(), message),
            (Kind::Leaf(_), _) => Error::new(node.name.span(), message),
        };
        return Err(error);
    }
    Ok(())
}

/// The shape of every node, by node index.
pub fn infer(def: &NetworkDef, model: &Model) -> syn::Result<Vec<Shape>> {
    let mut shapes: Vec<Shape> = vec![Vec::new(); model.nodes.len()];
    let mut errors: Option<Error> = None;
    let mut push = |e: Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for (i, stmt) in def.stmts.iter().enumerate() {
        if let Stmt::Leaf(leaf) = stmt {
            for d in &leaf.dims {
                match d {
                    DimExpr::Fixed(lit) => match lit.base10_parse::<usize>() {
                        Ok(0) => push(Error::new(
                            lit.span(),
                            "a dimension must be at least 1; a zero-sized node holds no values",
                        )),
                        Ok(n) => shapes[i].push(SymDim::Fixed(n)),
                        Err(_) => push(Error::new(
                            lit.span(),
                            format!("the dimension `{lit}` is too large for this machine's `usize`"),
                        )),
                    },
                    DimExpr::Named(name) if leaf.kind == LeafKind::Param => push(Error::new(
                        name.span(),
                        format!(
                            "param `{}` needs a fixed shape, but `{name}` is a named dimension; write its size, e.g. `[13, 10]`",
                            leaf.name
                        ),
                    )),
                    DimExpr::Named(name) => shapes[i].push(SymDim::Named(name.unraw().to_string())),
                }
            }
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let order = topo_order(model).unwrap_or_default();
    for i in order {
        let Kind::Op {
            op,
            args,
            arg_idents,
            op_ident,
            ..
        } = &model.nodes[i].kind
        else {
            continue;
        };
        let arg_shapes: Vec<&[SymDim]> = args.iter().map(|&a| shapes[a].as_slice()).collect();
        match op.infer_shape(&arg_shapes) {
            Ok(shape) => shapes[i] = shape,
            Err(e) => {
                let names: Vec<String> = arg_idents.iter().map(ToString::to_string).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let described: Vec<String> = args
                    .iter()
                    .zip(&names)
                    .map(|(&a, n)| format!("`{n}`: {}", format_shape(&shapes[a])))
                    .collect();
                let span = arg_idents.get(e.arg).map_or(op_ident.span(), |a| a.span());
                // Rank and dim messages name one axis; show every argument's shape beside them.
                let mut context = match e.kind {
                    ShapeErrorKind::Rank { .. } | ShapeErrorKind::Dim { .. } => {
                        format!(" (here {})", described.join(", "))
                    }
                    _ => String::new(),
                };
                context.push_str(&hint(*op, &e.kind, &arg_shapes, &names));
                return Err(Error::new(
                    span,
                    format!(
                        "shape mismatch in `{}`: {}{context}",
                        model.nodes[i].name,
                        e.message(*op, &names),
                    ),
                ));
            }
        }
    }
    check_sizes(def, model, &shapes)?;
    let loss = &model.nodes[model.loss];
    if !shapes[model.loss].is_empty() {
        let span = match &loss.kind {
            Kind::Op { op_ident, .. } => op_ident.span(),
            Kind::Leaf(_) => loss.name.span(),
        };
        return Err(Error::new(
            span,
            format!(
                "the loss must be a scalar, but `{}` has shape {}; compute it with a loss op such as `mse`",
                loss.name,
                format_shape(&shapes[model.loss])
            ),
        ));
    }
    Ok(shapes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn shapes(tokens: proc_macro2::TokenStream) -> Result<Vec<String>, String> {
        let def: NetworkDef = syn::parse2(tokens).map_err(|e| e.to_string())?;
        let model = crate::validate::validate(&def).map_err(|e| e.to_string())?;
        infer(&def, &model)
            .map(|s| s.iter().map(|s| format_shape(s)).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn infers_the_two_layer_net() {
        let s = shapes(quote! { struct N {
            input X: [batch, 13]; input y: [batch];
            param W1: [13, 10]; param b1: [10]; param W2: [10, 1]; param b2: [1];
            l1 = linear(X, W1, b1); s1 = sigmoid(l1); l2 = linear(s1, W2, b2);
            loss cost = mse(y, l2);
        }})
        .unwrap();
        assert_eq!(s[6], "[batch, 10]");
        assert_eq!(s[8], "[batch, 1]");
        assert_eq!(s[9], "[]");
    }

    #[test]
    fn linear_inner_dim_mismatch_blames_w() {
        let e = shapes(quote! { struct N {
            input X: [batch, 3]; input y: [batch]; param W: [2, 1]; param b: [1];
            f = linear(X, W, b); loss c = mse(y, f);
        }})
        .err()
        .unwrap();
        assert!(e.starts_with("shape mismatch in `f`: dimension 0 of `W` is 2, but it must equal dimension 1 of `X`, which is 3"), "{e}");
    }

    #[test]
    fn named_dims_are_equal_only_by_name() {
        let e = shapes(quote! { struct N {
            input X: [batch, 2]; input y: [rows]; param W: [2, 1]; param b: [1];
            f = linear(X, W, b); loss c = mse(y, f);
        }})
        .err()
        .unwrap();
        assert!(e.contains("same number of elements"), "{e}");
    }

    #[test]
    fn zero_dims_named_param_dims_and_non_scalar_loss() {
        let e = shapes(quote! { struct N { input x: [0]; loss l = sigmoid(x); } })
            .err()
            .unwrap();
        assert!(e.starts_with("a dimension must be at least 1"), "{e}");
        let e = shapes(quote! { struct N { input x: [n]; param w: [n]; loss l = add(x, w); } })
            .err()
            .unwrap();
        assert!(e.starts_with("param `w` needs a fixed shape"), "{e}");
        let e = shapes(quote! { struct N { input x: [n]; loss l = sigmoid(x); } })
            .err()
            .unwrap();
        assert!(
            e.starts_with("the loss must be a scalar, but `l` has shape [n]"),
            "{e}"
        );
    }

    #[test]
    fn symbolic_counts() {
        let n = |s: &str| SymDim::Named(s.into());
        let f = SymDim::Fixed;
        assert!(SymDim::same_count(&[n("b")], &[n("b"), f(1)]));
        assert!(SymDim::same_count(
            &[n("a"), n("b"), f(6)],
            &[f(2), n("b"), f(3), n("a")]
        ));
        assert!(!SymDim::same_count(&[n("b")], &[n("b"), f(2)]));
    }
}

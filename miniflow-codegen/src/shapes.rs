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

/// A leaf's written dims as a shape; a zero, an oversized literal or a named dim on a param
/// is reported through `push`.
fn leaf_shape(leaf: &crate::ast::Leaf, push: &mut impl FnMut(Error)) -> Shape {
    let mut shape = Shape::new();
    for d in &leaf.dims {
        match d {
            DimExpr::Fixed(lit) => match lit.base10_parse::<usize>() {
                Ok(0) => push(Error::new(
                    lit.span(),
                    "a dimension must be at least 1; a zero-sized node holds no values",
                )),
                Ok(n) => shape.push(SymDim::Fixed(n)),
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
            DimExpr::Named(name) => shape.push(SymDim::Named(name.unraw().to_string())),
        }
    }
    shape
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
            shapes[i] = leaf_shape(leaf, &mut push);
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

/// The bare form's shapes stage: leaves are sized at run time, but ranks are known where an
/// op fixes them ([`Op::arg_rank`]). Each leaf gets the rank its uses (or its written dims)
/// fix; every op argument of a known rank is checked against what the op needs. Errors are
/// spanned on the argument as written.
pub fn bare_ranks(def: &NetworkDef, model: &Model) -> syn::Result<Vec<Option<usize>>> {
    let mut ranks: Vec<Option<usize>> = vec![None; model.nodes.len()];
    // Where each leaf's rank came from, for a conflict: (op, argument name).
    let mut source: Vec<Option<String>> = vec![None; model.nodes.len()];
    let mut errors: Option<Error> = None;
    let mut push = |e: Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    // Written dims are checked as in a struct (zero, size, named dims on params), so that
    // building the graph cannot fail at run time.
    let mut written: Vec<Shape> = vec![Vec::new(); model.nodes.len()];
    for (i, stmt) in def.stmts.iter().enumerate() {
        if let Stmt::Leaf(leaf) = stmt {
            if leaf.sized {
                written[i] = leaf_shape(leaf, &mut push);
                ranks[i] = Some(leaf.dims.len());
                source[i] = Some("its declared shape".to_string());
            }
        }
    }
    if let Err(e) = check_sizes(def, model, &written) {
        push(e);
    }
    // Leaves first: a leaf may be used before the op that fixes its rank.
    for node in &model.nodes {
        let Kind::Op {
            op,
            args,
            arg_idents,
            ..
        } = &node.kind
        else {
            continue;
        };
        for (k, (&a, ident)) in args.iter().zip(arg_idents).enumerate() {
            let (Some(r), Kind::Leaf(_)) = (op.arg_rank(k), &model.nodes[a].kind) else {
                continue;
            };
            let here = format!("`{}` of `{op}`", param_name(*op, k));
            match ranks[a] {
                None => {
                    ranks[a] = Some(r);
                    source[a] = Some(here);
                }
                Some(known) if known != r => push(Error::new(
                    ident.span(),
                    format!(
                        "`{}` must have rank {r} as {here}, but it has rank {known} from {}; a leaf has one rank",
                        ident.unraw(),
                        source[a].as_deref().unwrap_or("another use"),
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    let order = topo_order(model).unwrap_or_else(|_| (0..model.nodes.len()).collect());
    for &i in &order {
        let Kind::Op {
            op,
            args,
            arg_idents,
            ..
        } = &model.nodes[i].kind
        else {
            continue;
        };
        for (k, (&a, ident)) in args.iter().zip(arg_idents).enumerate() {
            if let (Some(r), Some(found)) = (op.arg_rank(k), ranks[a]) {
                if r != found && !matches!(model.nodes[a].kind, Kind::Leaf(_)) {
                    push(Error::new(
                        ident.span(),
                        format!(
                            "`{}` has rank {found}, but the `{}` of `{op}` must have rank {r}; expected {}",
                            ident.unraw(),
                            param_name(*op, k),
                            op.signature(),
                        ),
                    ));
                }
            }
        }
        let arg_ranks: Vec<Option<usize>> = args.iter().map(|&a| ranks[a]).collect();
        ranks[i] = op.output_rank(&arg_ranks);
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(ranks),
    }
}

/// The name of node argument `k` of `op` in its signature (literals skipped).
fn param_name(op: Op, k: usize) -> &'static str {
    (0..64)
        .map_while(|p| op.param(p))
        .filter(|p| !matches!(p.kind, miniflow_ops::ParamKind::Literal))
        .nth(k)
        .map_or("argument", |p| p.name)
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

    /// The bare form's ranks, by node name.
    fn ranks(tokens: proc_macro2::TokenStream) -> Result<Vec<(String, Option<usize>)>, String> {
        let def: NetworkDef = syn::parse2(tokens).map_err(|e| e.to_string())?;
        let model = crate::validate::validate(&def).map_err(|e| e.to_string())?;
        let ranks = bare_ranks(&def, &model).map_err(|e| e.to_string())?;
        Ok(model
            .nodes
            .iter()
            .map(|n| n.name.to_string())
            .zip(ranks)
            .collect())
    }

    #[test]
    fn bare_leaves_take_their_rank_from_their_positions() {
        let r = ranks(quote!(f = linear(X, W, b); a = sigmoid(f); cost = mse(y, a))).unwrap();
        let get = |n: &str| r.iter().find(|(m, _)| m == n).and_then(|(_, r)| *r);
        assert_eq!(get("X"), Some(2));
        assert_eq!(get("W"), Some(2));
        assert_eq!(get("b"), Some(1));
        assert_eq!(get("y"), None); // mse takes any rank
        assert_eq!(get("a"), Some(2)); // through the elementwise sigmoid
        assert_eq!(get("cost"), Some(0));
    }

    #[test]
    fn bare_ranks_conflict_and_mismatch_are_errors() {
        let e = ranks(quote!(a = linear(X, W, b); c = matmul(X, b); cost = mse(a, c))).unwrap_err();
        assert!(e.contains("`b` must have rank 2"), "{e}");
        let e = ranks(quote!(s = sum(X); f = linear(s, W, b); cost = mse(y, f))).unwrap_err();
        assert!(e.contains("`s` has rank 0"), "{e}");
        // A declared leaf's dims give its rank.
        let e = ranks(quote!(input X: [n]; f = linear(X, W, b); cost = mse(y, f))).unwrap_err();
        assert!(e.contains("its declared shape"), "{e}");
    }

    #[test]
    fn bare_written_dims_are_checked_as_in_a_struct() {
        // Building the graph would fail at run time on these: they must not compile.
        let e =
            ranks(quote!(param W: [4294967296, 4294967296]; f = linear(X, W, b); cost = mse(y, f)))
                .unwrap_err();
        assert!(e.contains("more than an `f64` array can hold"), "{e}");
        let e = ranks(quote!(input X: [0, 2]; f = linear(X, W, b); cost = mse(y, f))).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = ranks(quote!(param W: [n, 1]; f = linear(X, W, b); cost = mse(y, f))).unwrap_err();
        assert!(e.contains("needs a fixed shape"), "{e}");
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

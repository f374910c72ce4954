//! Stage 2, validate: resolve names and ops, and reject graphs that are not a network:
//! duplicates, undefined names, unknown ops, wrong arity, a literal where a node goes or a
//! node where a literal goes, literals that are not finite numbers, cycles, a missing or extra
//! loss, dead nodes, params that cannot affect the loss, and params or `#[grad]` inputs
//! flowing into an argument that gets no gradient (the labels of `softmax_cross_entropy`).
//! Every error is spanned on the user's token that is wrong.

use crate::ast::{Arg, LeafKind, NetworkDef, Role, Stmt};
use crate::plan::topo_order;
use crate::suggest::did_you_mean;
use miniflow_ops::Op;
use proc_macro2::Span;
use std::collections::BTreeMap;
use syn::ext::IdentExt;
use syn::{Error, Ident};

/// The network as a resolved graph: nodes in source order, arguments as indices.
pub struct Model {
    pub nodes: Vec<Node>,
    /// The loss node.
    pub loss: usize,
    /// Output nodes, in source order.
    pub outputs: Vec<usize>,
}

pub struct Node {
    pub name: Ident,
    pub kind: Kind,
}

pub enum Kind {
    Leaf(LeafKind),
    Op {
        op: Op,
        /// The op's name token, for errors about the call.
        op_ident: Ident,
        /// Arguments by node index.
        args: Vec<usize>,
        /// Node arguments as written (literals left out, so parallel to `args`), for errors
        /// about one argument.
        arg_idents: Vec<Ident>,
        /// The literal arguments' values, in order.
        attrs: Vec<f64>,
    },
}

impl Node {
    pub fn args(&self) -> &[usize] {
        match &self.kind {
            Kind::Leaf(_) => &[],
            Kind::Op { args, .. } => args,
        }
    }

    pub fn is_param(&self) -> bool {
        matches!(self.kind, Kind::Leaf(LeafKind::Param))
    }

    pub fn is_input(&self) -> bool {
        matches!(self.kind, Kind::Leaf(LeafKind::Input { .. }))
    }

    /// Whether backward must produce this leaf's gradient.
    pub fn wants_grad(&self) -> bool {
        matches!(
            self.kind,
            Kind::Leaf(LeafKind::Param | LeafKind::Input { grad: true })
        )
    }
}

/// Collects errors so one stage reports all of its findings at once.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, e: Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

pub fn validate(def: &NetworkDef) -> syn::Result<Model> {
    if def.stmts.is_empty() {
        return Err(Error::new(
            def.name.span(),
            format!(
                "network `{}` is empty; declare its inputs and params, then the nodes computed from them",
                def.name
            ),
        ));
    }
    let index = define(def)?;
    let nodes = resolve(def, &index)?;
    let (loss, outputs) = roles(def, &nodes)?;
    let model = Model {
        nodes,
        loss,
        outputs,
    };
    acyclic(&model)?;
    data_args(&model)?;
    Ok(model)
}

/// The checks that run after shapes, so that a shape error (a non-scalar loss, say) is
/// reported even when it leaves some node unused: nodes and inputs that reach neither the
/// loss nor an output, and params that cannot affect the loss.
pub fn late(model: &Model) -> syn::Result<()> {
    reachability(model)
}

/// Names the generated struct's own associated functions take, which a node's handle (an
/// associated constant of the same name) would clash with.
pub const RESERVED: [&str; 3] = ["new", "seeded", "zeroed"];

/// Names to indices, rejecting duplicates, reserved names and assignments to leaves.
fn define(def: &NetworkDef) -> syn::Result<BTreeMap<String, usize>> {
    let mut index = BTreeMap::new();
    let mut errors = Errors::default();
    for (i, stmt) in def.stmts.iter().enumerate() {
        let name = stmt.name();
        if let Some(&reserved) = RESERVED.iter().find(|r| name.unraw() == **r) {
            errors.push(Error::new(
                name.span(),
                format!(
                    "`{reserved}` cannot name a node: `{}::{reserved}` is the network's constructor, and each node's typed handle is `{}::NAME`; choose another name",
                    def.name, def.name
                ),
            ));
        }
        if let Some(&first) = index.get(&name.unraw().to_string()) {
            let first: &Stmt = &def.stmts[first];
            let msg = match (first, stmt) {
                (Stmt::Leaf(leaf), Stmt::Node(_)) => format!(
                    "cannot assign to `{name}`: it is {}, which is {}, not computed",
                    if leaf.keyword == "input" {
                        "an input"
                    } else {
                        "a param"
                    },
                    if leaf.keyword == "input" {
                        "fed"
                    } else {
                        "trained"
                    },
                ),
                _ => format!("`{name}` is defined more than once; give each node its own name"),
            };
            let mut e = Error::new(name.span(), msg);
            e.combine(Error::new(
                first.name().span(),
                format!("`{name}` is first defined here"),
            ));
            errors.push(e);
        } else {
            index.insert(name.unraw().to_string(), i);
        }
    }
    errors.finish().map(|()| index)
}

/// Resolves ops and arguments.
fn resolve(def: &NetworkDef, index: &BTreeMap<String, usize>) -> syn::Result<Vec<Node>> {
    let mut errors = Errors::default();
    let mut nodes = Vec::with_capacity(def.stmts.len());
    for (i, stmt) in def.stmts.iter().enumerate() {
        let kind = match stmt {
            Stmt::Leaf(leaf) => Kind::Leaf(leaf.kind),
            Stmt::Node(n) => {
                let op = Op::from_any_name(&n.op.to_string());
                let op = match op {
                    Some(op) => op,
                    None => {
                        let name = n.op.to_string();
                        let hint = did_you_mean(&name, Op::ALL.iter().map(|o| o.name()));
                        let all: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                        errors.push(Error::new(
                            n.op.span(),
                            if hint.is_empty() {
                                format!("unknown op `{name}`; the ops are {}", all.join(", "))
                            } else {
                                format!("unknown op `{name}`{hint}")
                            },
                        ));
                        Op::Add // placeholder so argument errors are still reported
                    }
                };
                let known = Op::from_any_name(&n.op.to_string()).is_some();
                let arity_ok = known && op.arity().accepts(n.args.len());
                if known && !arity_ok {
                    errors.push(Error::new(
                        n.parens,
                        format!(
                            "`{op}` takes {}, found {}; expected {}",
                            op.arity(),
                            n.args.len(),
                            op.signature()
                        ),
                    ));
                }
                let mut args = Vec::with_capacity(n.args.len());
                let mut arg_idents = Vec::with_capacity(n.args.len());
                let mut attrs = Vec::new();
                for (pos, arg) in n.args.iter().enumerate() {
                    // Which positions take literals is known only for a known op of the right
                    // arity; otherwise the call is already reported.
                    let literal_here = arity_ok && op.is_literal(pos);
                    let param = op.param(pos).map_or("?", |p| p.name);
                    match arg {
                        // The parser lifts nested calls into statements of their own.
                        Arg::Call(_) => errors.push(arg.error(
                            "internal error in miniflow: a nested call reached validation",
                        )),
                        Arg::Lit(_) if !arity_ok => {}
                        Arg::Lit(lit) if !literal_here => errors.push(arg.error(format!(
                            "argument {} of `{op}` (`{param}`) must be a node, not the number `{}`; expected {}",
                            pos + 1,
                            lit.text(),
                            op.signature()
                        ))),
                        Arg::Lit(lit) => match lit.value() {
                            // A literal becomes the element type at the call: it must be
                            // finite there too (`1e39` is `inf` as an `f32`).
                            Ok(v) if def.elem == "f32" && v.is_finite() && !(v as f32).is_finite() => {
                                errors.push(arg.error(format!(
                                    "`{}` is too large for `f32`, this network's element type (at most {:e})",
                                    lit.text(),
                                    f32::MAX
                                )))
                            }
                            Ok(v) => match op.check_literal(pos, v) {
                                Ok(()) => attrs.push(v),
                                Err(msg) => errors
                                    .push(arg.error(format!("{msg} (written `{}`)", lit.text()))),
                            },
                            Err(msg) => errors.push(arg.error(msg)),
                        },
                        Arg::Node(id) if literal_here => errors.push(arg.error(format!(
                            "argument {} of `{op}` (`{param}`) must be a number written in the source, like `0.01`, not the node `{id}`; expected {}",
                            pos + 1,
                            op.signature()
                        ))),
                        Arg::Node(arg) => {
                            let key = arg.unraw().to_string();
                            match index.get(&key) {
                                Some(&j) if j == i => errors.push(Error::new(
                                    arg.span(),
                                    format!("`{key}` is computed from itself; a network must be acyclic"),
                                )),
                                Some(&j) => {
                                    args.push(j);
                                    arg_idents.push(arg.clone());
                                }
                                None => errors.push(Error::new(
                                    arg.span(),
                                    format!(
                                        "cannot find node `{key}` in this network{}",
                                        did_you_mean(&key, index.keys().map(String::as_str))
                                    ),
                                )),
                            }
                        }
                    }
                }
                Kind::Op {
                    op,
                    op_ident: n.op.clone(),
                    args,
                    arg_idents,
                    attrs,
                }
            }
        };
        nodes.push(Node {
            name: stmt.name().clone(),
            kind,
        });
    }
    errors.finish().map(|()| nodes)
}

/// Finds the one loss and the outputs.
fn roles(def: &NetworkDef, nodes: &[Node]) -> syn::Result<(usize, Vec<usize>)> {
    let mut loss: Option<(usize, proc_macro2::Span)> = None;
    let mut outputs = Vec::new();
    let mut errors = Errors::default();
    for (i, stmt) in def.stmts.iter().enumerate() {
        let Stmt::Node(n) = stmt else { continue };
        match n.role {
            Role::Loss(span) => match loss {
                Some((first, first_span)) => {
                    let mut e = Error::new(
                        span,
                        format!(
                            "a network has one loss, but `{}` is marked `loss` after `{}`; combine them with `add` and mark the sum `loss`",
                            n.name, nodes[first].name
                        ),
                    );
                    e.combine(Error::new(first_span, "the first `loss` is here"));
                    errors.push(e);
                }
                None => loss = Some((i, span)),
            },
            Role::Output => outputs.push(i),
            Role::Plain => {}
        }
    }
    errors.finish()?;
    if loss.is_none() && def.bare {
        // The bare form takes the seed's way: the one node nothing consumes is the loss.
        let mut used = vec![false; nodes.len()];
        for n in nodes {
            for &a in n.args() {
                used[a] = true;
            }
        }
        let sinks: Vec<usize> = (0..nodes.len())
            .filter(|&i| !used[i] && !nodes[i].args().is_empty() && !outputs.contains(&i))
            .collect();
        return match sinks.as_slice() {
            [one] => Ok((*one, outputs)),
            [] => Err(Error::new(
                Span::call_site(),
                "this network has no node that nothing consumes, so no loss; end it with the cost, e.g. `cost = mse(y, a)`",
            )),
            many => {
                let names: Vec<String> = many.iter().map(|&i| format!("`{}`", nodes[i].name)).collect();
                let mut e = Error::new(
                    nodes[many[1]].name.span(),
                    format!(
                        "{} are each consumed by nothing, so the loss is ambiguous; mark it `loss NAME = ...`, mark the others `output`, or combine them with `add`",
                        names.join(" and ")
                    ),
                );
                e.combine(Error::new(nodes[many[0]].name.span(), "the first is here"));
                Err(e)
            }
        };
    }
    match loss {
        Some((loss, _)) => Ok((loss, outputs)),
        None => Err(Error::new(
            def.name.span(),
            format!(
                "network `{}` has no loss; mark the node backward starts from with `loss`, e.g. `loss cost = mse(y, a);`",
                def.name
            ),
        )),
    }
}

fn acyclic(model: &Model) -> syn::Result<()> {
    let Err(cycle) = topo_order(model) else {
        return Ok(());
    };
    // `cycle` lists nodes in data-flow order; blame the argument that closes it in the
    // first statement (in source order) on the cycle.
    let pos = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
    let node = cycle[pos];
    let prev = cycle[(pos + cycle.len() - 1) % cycle.len()];
    let mut path: Vec<String> = (0..=cycle.len())
        .map(|k| format!("`{}`", model.nodes[cycle[(pos + k) % cycle.len()]].name))
        .collect();
    path.dedup();
    let span = match &model.nodes[node].kind {
        Kind::Op {
            args, arg_idents, ..
        } => args
            .iter()
            .position(|&a| a == prev)
            .map_or(model.nodes[node].name.span(), |k| arg_idents[k].span()),
        Kind::Leaf(_) => model.nodes[node].name.span(),
    };
    Err(Error::new(
        span,
        format!(
            "cycle: {}; a network must be acyclic, so no node may depend on itself",
            path.join(" -> ")
        ),
    ))
}

/// Marks the ancestors of `roots`, roots included.
pub fn ancestors(model: &Model, roots: &[usize]) -> Vec<bool> {
    let mut seen = vec![false; model.nodes.len()];
    let mut stack = roots.to_vec();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend_from_slice(model.nodes[i].args());
        }
    }
    seen
}

/// Every node must reach the loss or an output; every param and `#[grad]` input the loss.
fn reachability(model: &Model) -> syn::Result<()> {
    let mut roots = model.outputs.clone();
    roots.push(model.loss);
    let used = ancestors(model, &roots);
    let feeds_loss = ancestors(model, &[model.loss]);
    let loss_name = &model.nodes[model.loss].name;
    let mut errors = Errors::default();
    for (i, node) in model.nodes.iter().enumerate() {
        let name = &node.name;
        let what = match node.kind {
            Kind::Leaf(LeafKind::Input { .. }) => "input",
            Kind::Leaf(LeafKind::Param) => "param",
            Kind::Op { .. } => "node",
        };
        if !used[i] {
            let fix = if node.args().is_empty() {
                "remove it or use it"
            } else {
                "remove it, use it, or mark it `output`"
            };
            errors.push(Error::new(
                name.span(),
                format!("{what} `{name}` is never used: it reaches neither the loss nor an output; {fix}"),
            ));
        } else if node.wants_grad() && !feeds_loss[i] {
            let why = if node.is_param() {
                "so it would never be trained"
            } else {
                "so its `#[grad]` would always be zero"
            };
            errors.push(Error::new(
                name.span(),
                format!("{what} `{name}` cannot affect the loss `{loss_name}`, {why}; use it on the path to the loss"),
            ));
        }
    }
    errors.finish()
}

/// An argument that gets no gradient (the labels of `softmax_cross_entropy`) must not depend
/// on a param or a `#[grad]` input: the param would not be trained through it (or only
/// partly), the input's gradient would miss that use.
/// The span of a node's call (its op name).
fn node_call_span(node: &Node) -> proc_macro2::Span {
    match &node.kind {
        Kind::Op { op_ident, .. } => op_ident.span(),
        Kind::Leaf(_) => node.name.span(),
    }
}

fn data_args(model: &Model) -> syn::Result<()> {
    // For each node, a param or `#[grad]` input it is computed from (itself, for such a leaf).
    let mut source: Vec<Option<usize>> = model
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.wants_grad().then_some(i))
        .collect();
    for i in topo_order(model).unwrap_or_default() {
        if source[i].is_none() {
            source[i] = model.nodes[i].args().iter().find_map(|&a| source[a]);
        }
    }
    let mut errors = Errors::default();
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
            let Some(leaf) = source[a].filter(|_| !op.differentiable(k)) else {
                continue;
            };
            // Data where the gradient goes and a trained value where the data goes: the
            // arguments are most likely swapped, which is what to say.
            let data_at = |j: usize| source[j].is_none() && model.nodes[j].is_input();
            if let Some(j) =
                (0..args.len()).find(|&j| j != k && op.differentiable(j) && data_at(args[j]))
            {
                let data_param = op.node_param(k).map_or("?", |p| p.name);
                let grad_param = op.node_param(j).map_or("?", |p| p.name);
                errors.push(Error::new(
                    node_call_span(node),
                    format!(
                        "the arguments of `{op}` look swapped: `{}` is data (an input) but is passed as `{grad_param}`, and `{ident}` is computed from param `{}` but is passed as `{data_param}`; expected {}",
                        arg_idents[j],
                        model.nodes[leaf].name,
                        op.signature()
                    ),
                ));
                continue;
            }
            let param = op.node_param(k).map_or("?", |p| p.name);
            let leaf_node = &model.nodes[leaf];
            let why = match (leaf == a, leaf_node.is_param()) {
                (true, true) => format!("`{ident}` is a param, which would never be trained through it"),
                (true, false) => format!("`{ident}` has `#[grad]`, and its gradient would miss this use"),
                (false, true) => format!(
                    "`{ident}` is computed from param `{}`, which would not be trained through it",
                    leaf_node.name
                ),
                (false, false) => format!(
                    "`{ident}` is computed from `{}`, which has `#[grad]`, and its gradient would miss this use",
                    leaf_node.name
                ),
            };
            let mut e = Error::new(
                ident.span(),
                format!(
                    "the `{param}` argument of `{op}` gets no gradient, but {why}; `{param}` must be data: an input without `#[grad]`, or a node computed only from such inputs"
                ),
            );
            e.combine(Error::new(
                leaf_node.name.span(),
                if leaf_node.is_param() {
                    format!("`{}` is declared a param here", leaf_node.name)
                } else {
                    format!("`{}` is declared with `#[grad]` here", leaf_node.name)
                },
            ));
            errors.push(e);
        }
    }
    errors.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(tokens: proc_macro2::TokenStream) -> Result<Model, String> {
        let def: NetworkDef = syn::parse2(tokens).map_err(|e| e.to_string())?;
        validate(&def)
            .and_then(|m| late(&m).map(|()| m))
            .map_err(|e| {
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
    }

    #[test]
    fn resolves_the_course_network() {
        let m = check(quote! { struct N {
            input X: [b, 2]; input y: [b]; param W: [2, 1]; param c: [1];
            f = linear(X, W, c); a = sigmoid(f); loss cost = mse(y, a);
        }})
        .unwrap();
        assert_eq!(m.loss, 6);
        assert_eq!(m.nodes[4].args(), &[0, 2, 3]);
        assert!(m.outputs.is_empty());
    }

    #[test]
    fn undefined_name_suggests() {
        let e = check(quote! { struct N { input x: [1]; loss l = sigmoid(xx); } })
            .err()
            .unwrap();
        assert_eq!(
            e,
            "cannot find node `xx` in this network; did you mean `x`?"
        );
    }

    #[test]
    fn duplicates_and_leaf_assignment() {
        let e = check(quote! { struct N { input x: [1]; x = sigmoid(x); loss l = sigmoid(x); } })
            .err()
            .unwrap();
        assert!(
            e.starts_with("cannot assign to `x`: it is an input, which is fed"),
            "{e}"
        );
        let e = check(quote! { struct N { input x: [1]; a = sigmoid(x); a = sigmoid(x); loss l = sigmoid(a); } })
            .err()
            .unwrap();
        assert!(e.starts_with("`a` is defined more than once"), "{e}");
    }

    #[test]
    fn cycles_name_their_path() {
        let e = check(quote! { struct N {
            input x: [1]; a = add(x, c); b = sigmoid(a); c = sigmoid(b); loss l = mse(x, c);
        }})
        .err()
        .unwrap();
        assert!(e.starts_with("cycle: `a` -> `b` -> `c` -> `a`"), "{e}");
        let e = check(quote! { struct N { input x: [1]; loss a = add(x, a); } })
            .err()
            .unwrap();
        assert!(e.contains("computed from itself"), "{e}");
    }

    #[test]
    fn ops_and_arity() {
        let e = check(quote! { struct N { input x: [1]; loss a = sigmod(x); } })
            .err()
            .unwrap();
        assert_eq!(e, "unknown op `sigmod`; did you mean `sigmoid`?");
        let e = check(quote! { struct N { input x: [1]; loss a = sigmoid(x, x); } })
            .err()
            .unwrap();
        assert!(e.starts_with("`sigmoid` takes 1 argument, found 2"), "{e}");
    }

    #[test]
    fn loss_rules() {
        let e = check(quote! { struct N { input x: [1]; output a = sigmoid(x); } })
            .err()
            .unwrap();
        assert!(e.starts_with("network `N` has no loss"), "{e}");
        let e =
            check(quote! { struct N { input x: [1]; loss a = sigmoid(x); loss b = sigmoid(x); } })
                .err()
                .unwrap();
        assert!(e.starts_with("a network has one loss"), "{e}");
    }

    #[test]
    fn dead_nodes_and_untrainable_params() {
        let e = check(quote! { struct N { input x: [1]; d = sigmoid(x); loss l = sigmoid(x); } })
            .err()
            .unwrap();
        assert!(e.starts_with("node `d` is never used"), "{e}");
        let e = check(quote! { struct N {
            input x: [1]; param w: [1]; output o = add(x, w); loss l = sigmoid(x);
        }})
        .err()
        .unwrap();
        assert!(e.starts_with("param `w` cannot affect the loss `l`"), "{e}");
    }

    #[test]
    fn literal_arguments() {
        let m = check(quote! { struct N {
            input z: [n, 2]; input y: [n, 2]; h = leaky_relu(z, -0.5); loss l = mse(y, h);
        }})
        .unwrap();
        let Kind::Op { args, attrs, .. } = &m.nodes[2].kind else {
            panic!("h is an op")
        };
        assert_eq!((args.as_slice(), attrs.as_slice()), (&[0][..], &[-0.5][..]));

        let e = check(quote! { struct N { input x: [1]; loss l = sigmoid(0.5); } })
            .err()
            .unwrap();
        assert!(
            e.starts_with("argument 1 of `sigmoid` (`x`) must be a node, not the number `0.5`"),
            "{e}"
        );
        let e =
            check(quote! { struct N { input x: [1]; input s: [1]; loss l = leaky_relu(x, s); } })
                .err()
                .unwrap();
        assert!(
            e.starts_with("argument 2 of `leaky_relu` (`slope`) must be a number written in the source, like `0.01`, not the node `s`"),
            "{e}"
        );
        let e = check(quote! { struct N { input x: [1]; loss l = leaky_relu(x, 1e999); } })
            .err()
            .unwrap();
        assert_eq!(
            e,
            "the `slope` of `leaky_relu` must be a finite number, found inf (written `1e999`)"
        );
        let e = check(quote! { struct N { input x: [1]; loss l = leaky_relu(x, 1u8); } })
            .err()
            .unwrap();
        assert_eq!(
            e,
            "`1u8` has the suffix `u8`; write a plain number such as `0.01` (an `f32` or `f64` suffix is allowed)"
        );
        // Wrong arity: one error, about the arity, not about each argument.
        let e = check(quote! { struct N { input x: [1]; loss l = leaky_relu(x); } })
            .err()
            .unwrap();
        assert!(
            e.starts_with("`leaky_relu` takes 2 arguments, found 1"),
            "{e}"
        );
    }

    #[test]
    fn labels_must_not_depend_on_what_is_trained() {
        let net = |labels: proc_macro2::TokenStream| {
            quote! { struct N {
                input x: [n, 3]; param w: [3, 4]; #labels
                z = matmul(x, w);
                loss l = softmax_cross_entropy(z, t);
            }}
        };
        check(net(quote! { input t: [n]; })).unwrap();
        let e = check(net(quote! { #[grad] input t: [n]; })).err().unwrap();
        assert_eq!(
            e,
            "the `labels` argument of `softmax_cross_entropy` gets no gradient, but `t` has \
             `#[grad]`, and its gradient would miss this use; `labels` must be data: an input \
             without `#[grad]`, or a node computed only from such inputs \
             | `t` is declared with `#[grad]` here"
        );
        let e = check(net(quote! { param t: [n]; })).err().unwrap();
        assert!(
            e.contains("but `t` is a param, which would never be trained through it"),
            "{e}"
        );
        let e = check(quote! { struct N {
            input x: [5, 4]; input y: [5]; param w: [4, 4]; param b: [5];
            t = add(y, b);
            z = matmul(x, w);
            loss l = softmax_cross_entropy(z, t);
        }})
        .err()
        .unwrap();
        assert!(
            e.contains("but `t` is computed from param `b`, which would not be trained through it"),
            "{e}"
        );
    }

    #[test]
    fn empty_network() {
        let e = check(quote! { struct N {} }).err().unwrap();
        assert!(e.starts_with("network `N` is empty"), "{e}");
    }
}

//! Stage 2, validate: resolve names and ops, and reject graphs that are not a network:
//! duplicates, undefined names, unknown ops, wrong arity, cycles, a missing or extra loss,
//! dead nodes and params that cannot affect the loss. Every error is spanned on the user's
//! token that is wrong.

use crate::ast::{LeafKind, NetworkDef, Role, Stmt};
use crate::plan::topo_order;
use crate::suggest::did_you_mean;
use miniflow_ops::Op;
use std::collections::BTreeMap;
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
        /// Arguments as written, for errors about one argument.
        arg_idents: Vec<Ident>,
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
    reachability(&model)?;
    Ok(model)
}

/// Names to indices, rejecting duplicates and assignments to leaves.
fn define(def: &NetworkDef) -> syn::Result<BTreeMap<String, usize>> {
    let mut index = BTreeMap::new();
    let mut errors = Errors::default();
    for (i, stmt) in def.stmts.iter().enumerate() {
        let name = stmt.name();
        if let Some(&first) = index.get(&name.to_string()) {
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
            index.insert(name.to_string(), i);
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
                let op = Op::from_name(&n.op.to_string());
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
                if Op::from_name(&n.op.to_string()).is_some() && !op.arity().accepts(n.args.len()) {
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
                for arg in &n.args {
                    let key = arg.to_string();
                    match index.get(&key) {
                        Some(&j) if j == i => errors.push(Error::new(
                            arg.span(),
                            format!("`{key}` is computed from itself; a network must be acyclic"),
                        )),
                        Some(&j) => args.push(j),
                        None => errors.push(Error::new(
                            arg.span(),
                            format!(
                                "cannot find node `{key}` in this network{}",
                                did_you_mean(&key, index.keys().map(String::as_str))
                            ),
                        )),
                    }
                }
                Kind::Op {
                    op,
                    op_ident: n.op.clone(),
                    args,
                    arg_idents: n.args.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(tokens: proc_macro2::TokenStream) -> Result<Model, String> {
        let def: NetworkDef = syn::parse2(tokens).map_err(|e| e.to_string())?;
        validate(&def).map_err(|e| {
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
    fn empty_network() {
        let e = check(quote! { struct N {} }).err().unwrap();
        assert!(e.starts_with("network `N` is empty"), "{e}");
    }
}

//! Stage 4, plan: the order forward computes nodes in, what each target (the loss, each
//! output) needs, and the backward schedule: reverse order, the first contribution to a
//! gradient written and later ones added, and no gradient that reaches neither a param nor a
//! `#[grad]` input.

use crate::validate::{ancestors, Model};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Kahn's algorithm over the model, ties broken by source order so the expansion is
/// deterministic. On a cycle, returns one cycle's nodes in data-flow order.
pub fn topo_order(model: &Model) -> Result<Vec<usize>, Vec<usize>> {
    let n = model.nodes.len();
    let mut consumers = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (i, node) in model.nodes.iter().enumerate() {
        for &a in node.args() {
            consumers[a].push(i);
            indegree[i] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &consumers[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push(Reverse(c));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk unresolved arguments from the first stuck node until one repeats.
    let stuck = |i: usize| indegree[i] > 0;
    let mut path = vec![(0..n).find(|&i| stuck(i)).unwrap_or(0)];
    loop {
        let last = path[path.len() - 1];
        let Some(&next) = model.nodes[last].args().iter().find(|&&a| stuck(a)) else {
            return Err(path);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            cycle.reverse();
            return Err(cycle);
        }
        path.push(next);
    }
}

/// What computing one target takes.
#[derive(Debug, PartialEq, Eq)]
pub struct Forward {
    /// The target node.
    pub target: usize,
    /// Op nodes to compute, in order.
    pub ops: Vec<usize>,
    /// Inputs that must be fed.
    pub inputs: Vec<usize>,
}

/// One gradient contribution: op `node`'s backward into its argument at `arg_pos`.
#[derive(Debug, PartialEq, Eq)]
pub struct Contribution {
    pub node: usize,
    pub arg_pos: usize,
    /// The argument node receiving the gradient.
    pub target: usize,
    /// `false` for the first contribution to `target` (overwrite), `true` after.
    pub accumulate: bool,
}

pub struct Plan {
    /// Every node, in forward order.
    pub order: Vec<usize>,
    pub loss: Forward,
    pub outputs: Vec<Forward>,
    /// Contributions in the order backward makes them.
    pub backward: Vec<Contribution>,
    /// Which nodes get a gradient buffer.
    pub has_grad: Vec<bool>,
}

pub fn plan(model: &Model) -> Plan {
    // Validation has rejected cycles already.
    let order = topo_order(model).unwrap_or_default();
    let forward = |target: usize| {
        let needed = ancestors(model, &[target]);
        Forward {
            target,
            ops: order
                .iter()
                .copied()
                .filter(|&i| needed[i] && !model.nodes[i].args().is_empty())
                .collect(),
            inputs: (0..model.nodes.len())
                .filter(|&i| needed[i] && model.nodes[i].is_input())
                .collect(),
        }
    };

    // A node needs a gradient if it lies on a path from a gradient-wanting leaf to the loss.
    let feeds_loss = ancestors(model, &[model.loss]);
    let mut from_grad_leaf: Vec<bool> = model.nodes.iter().map(|n| n.wants_grad()).collect();
    for &i in &order {
        if model.nodes[i].args().iter().any(|&a| from_grad_leaf[a]) {
            from_grad_leaf[i] = true;
        }
    }
    let has_grad: Vec<bool> = (0..model.nodes.len())
        .map(|i| feeds_loss[i] && from_grad_leaf[i])
        .collect();

    let mut written = vec![false; model.nodes.len()];
    let mut backward = Vec::new();
    for &i in order.iter().rev() {
        if !has_grad[i] {
            continue;
        }
        for (arg_pos, &a) in model.nodes[i].args().iter().enumerate() {
            if has_grad[a] {
                backward.push(Contribution {
                    node: i,
                    arg_pos,
                    target: a,
                    accumulate: std::mem::replace(&mut written[a], true),
                });
            }
        }
    }

    Plan {
        loss: forward(model.loss),
        outputs: model.outputs.iter().map(|&o| forward(o)).collect(),
        order,
        backward,
        has_grad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn model(tokens: proc_macro2::TokenStream) -> Model {
        let def = syn::parse2(tokens).unwrap();
        crate::validate::validate(&def).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn orders_out_of_order_statements_deterministically() {
        let m = model(quote! { struct N {
            loss c = mse(y, a); a = sigmoid(f); f = linear(X, W, b);
            input X: [n, 2]; input y: [n]; param W: [2, 1]; param b: [1];
        }});
        // Leaves are ready first, in source order; then f, a, c.
        assert_eq!(topo_order(&m).unwrap(), vec![3, 4, 5, 6, 2, 1, 0]);
    }

    #[test]
    fn backward_skips_inputs_without_grad_and_sums_fan_out() {
        let m = model(quote! { struct N {
            input x: [n, 2]; input y: [n]; param w: [2, 2]; param b: [2]; param v: [2, 1]; param c: [1];
            h = linear(x, w, b); s = sigmoid(h); t = add(s, h); o = linear(t, v, c);
            loss l = mse(y, o);
        }});
        let p = plan(&m);
        assert!(
            !p.has_grad[0] && !p.has_grad[1],
            "plain inputs get no gradient"
        );
        let by_target = |t: usize| -> Vec<(usize, bool)> {
            p.backward
                .iter()
                .filter(|c| c.target == t)
                .map(|c| (c.node, c.accumulate))
                .collect()
        };
        // h feeds s and t: t's contribution (later in forward order) comes first, written;
        // s's is added.
        assert_eq!(by_target(6), vec![(8, false), (7, true)]);
        assert_eq!(by_target(2), vec![(6, false)]);
        assert!(p.backward.iter().all(|c| c.target != 0 && c.target != 1));
    }

    #[test]
    fn outputs_compute_only_what_they_need() {
        let m = model(quote! { struct N {
            input x: [n, 2]; input y: [n, 2]; param w: [2, 2]; param b: [2];
            h = linear(x, w, b); output s = sigmoid(h); loss l = mse(y, s);
        }});
        let p = plan(&m);
        assert_eq!(
            p.outputs[0],
            Forward {
                target: 5,
                ops: vec![4, 5],
                inputs: vec![0]
            }
        );
        assert_eq!(p.loss.inputs, vec![0, 1]);
        assert_eq!(p.loss.ops, vec![4, 5, 6]);
    }

    #[test]
    fn grad_inputs_are_planned() {
        let m = model(quote! { struct N {
            #[grad] input x: [n]; input y: [n]; loss l = mse(y, x);
        }});
        let p = plan(&m);
        assert_eq!(
            p.backward,
            vec![Contribution {
                node: 2,
                arg_pos: 1,
                target: 0,
                accumulate: false
            }]
        );
    }
}

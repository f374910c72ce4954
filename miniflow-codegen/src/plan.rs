//! Stage 4, plan: the order forward computes nodes in, what each target (the loss, each
//! output) needs, and the backward schedule: reverse order, the first contribution to a
//! gradient written and later ones added, and no gradient that reaches neither a param nor a
//! `#[grad]` input.

use crate::validate::{ancestors, Kind, Model};
use miniflow_ops::Op;
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
    /// The node receiving the gradient: the argument, or with `through_sigmoid` the
    /// sigmoid's own argument.
    pub target: usize,
    /// `false` for the first contribution to `target` (overwrite), `true` after.
    pub accumulate: bool,
    /// `Some(s)`: `node` is a linear whose argument 0 is `s = sigmoid(target)`, used nowhere
    /// else; the sigmoid's derivative is fused into this contribution and `s` gets no
    /// gradient buffer.
    pub through_sigmoid: Option<usize>,
}

pub struct Plan {
    /// Every node, in forward order.
    pub order: Vec<usize>,
    pub loss: Forward,
    pub outputs: Vec<Forward>,
    /// Contributions in the order `backward` makes them: every gradient on the path is
    /// stored, so any can be read by name.
    pub backward: Vec<Contribution>,
    /// The schedule of a training step (`sgd_step`): only the gradients the params need (no
    /// `#[grad]` input's), and a sigmoid used only by a linear is folded into that linear's
    /// contribution and stores no gradient.
    pub training: Vec<Contribution>,
    /// Which nodes' gradients are computed (on a path from a param or `#[grad]` input to
    /// the loss).
    pub has_grad: Vec<bool>,
    /// Params an SGD step can update inside the backward pass (`value += -lr·contribution`
    /// as each contribution is made), because no later step reads their value.
    pub sgd_in_place: Vec<bool>,
}

/// The nodes whose values the backward kernel of contribution `c` reads: the operands of the
/// op table's kernel template for that argument (what `expand` passes), plus, for a
/// contribution through a fused sigmoid, the sigmoid's output.
pub fn reads(model: &Model, c: &Contribution) -> Vec<usize> {
    let Kind::Op { op, args, .. } = &model.nodes[c.node].kind else {
        return Vec::new();
    };
    let mut reads = op
        .backward_kernel(c.arg_pos)
        .map(|k| k.reads(args, c.node))
        .unwrap_or_default();
    if let Some(s) = c.through_sigmoid {
        reads.push(s);
    }
    reads
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

    // A node needs a gradient if it lies on a path from a gradient-wanting leaf to the loss:
    // any such leaf for `backward`, params only for a training step.
    let feeds_loss = ancestors(model, &[model.loss]);
    let on_path = |leaf: &dyn Fn(&crate::validate::Node) -> bool| -> Vec<bool> {
        let mut from: Vec<bool> = model.nodes.iter().map(leaf).collect();
        for &i in &order {
            if model.nodes[i].args().iter().any(|&a| from[a]) {
                from[i] = true;
            }
        }
        (0..model.nodes.len())
            .map(|i| feeds_loss[i] && from[i])
            .collect()
    };
    let has_grad = on_path(&|n| n.wants_grad());
    let trains = on_path(&|n| n.is_param());

    // Uses of each node as an argument, as (consumer, position).
    let mut uses: Vec<Vec<(usize, usize)>> = vec![Vec::new(); model.nodes.len()];
    for (i, node) in model.nodes.iter().enumerate() {
        for (pos, &a) in node.args().iter().enumerate() {
            uses[a].push((i, pos));
        }
    }
    let op = |i: usize| match &model.nodes[i].kind {
        Kind::Op { op, .. } => Some(*op),
        Kind::Leaf(_) => None,
    };
    // s = sigmoid(l) folds into the linear consuming it when each has exactly one use.
    let fused: Vec<bool> = (0..model.nodes.len())
        .map(|s| {
            op(s) == Some(Op::Sigmoid)
                && s != model.loss
                && trains[s]
                && matches!(uses[s].as_slice(), [(c, 0)] if op(*c) == Some(Op::Linear))
                && trains[model.nodes[s].args()[0]]
                && uses[model.nodes[s].args()[0]].len() == 1
        })
        .collect();

    let schedule = |need: &[bool], fused: &[bool]| {
        let mut written = vec![false; model.nodes.len()];
        let mut steps = Vec::new();
        for &i in order.iter().rev() {
            if !need[i] || fused[i] {
                continue;
            }
            for (arg_pos, &a) in model.nodes[i].args().iter().enumerate() {
                if !need[a] || op(i).is_some_and(|op| !op.differentiable(arg_pos)) {
                    continue;
                }
                let (target, through_sigmoid) = if fused[a] {
                    (model.nodes[a].args()[0], Some(a))
                } else {
                    (a, None)
                };
                steps.push(Contribution {
                    node: i,
                    arg_pos,
                    target,
                    accumulate: std::mem::replace(&mut written[target], true),
                    through_sigmoid,
                });
            }
        }
        steps
    };
    let backward = schedule(&has_grad, &vec![false; model.nodes.len()]);
    let training = schedule(&trains, &fused);

    let sgd_in_place = (0..model.nodes.len())
        .map(|p| {
            model.nodes[p].is_param()
                && training
                    .iter()
                    .position(|c| c.target == p)
                    .is_some_and(|first| {
                        training[first..]
                            .iter()
                            .all(|c| !reads(model, c).contains(&p))
                    })
        })
        .collect();

    Plan {
        loss: forward(model.loss),
        outputs: model.outputs.iter().map(|&o| forward(o)).collect(),
        order,
        backward,
        training,
        has_grad,
        sgd_in_place,
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
        // s's is added. (s has one use, but h has two, so s is not fused.)
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
                accumulate: false,
                through_sigmoid: None,
            }]
        );
    }

    #[test]
    fn training_skips_input_gradients() {
        let m = model(quote! { struct N {
            #[grad] input x: [n, 2]; input y: [n]; param w: [2, 1]; param b: [1];
            f = linear(x, w, b); loss l = mse(y, f);
        }});
        let p = plan(&m);
        assert!(
            p.backward.iter().any(|c| c.target == 0),
            "backward computes dx"
        );
        assert!(
            p.training.iter().all(|c| c.target != 0),
            "a training step does not"
        );
        assert!(
            p.training.iter().any(|c| c.target == 2) && p.training.iter().any(|c| c.target == 3)
        );
    }

    #[test]
    fn sigmoid_folds_into_the_linear_consuming_it() {
        let m = model(quote! { struct N {
            input x: [n, 13]; input y: [n]; param w1: [13, 10]; param b1: [10];
            param w2: [10, 1]; param b2: [1];
            l1 = linear(x, w1, b1); s1 = sigmoid(l1); l2 = linear(s1, w2, b2);
            loss c = mse(y, l2);
        }});
        let p = plan(&m);
        let into_l1: Vec<&Contribution> = p.training.iter().filter(|c| c.target == 6).collect();
        assert_eq!(into_l1.len(), 1);
        assert_eq!(into_l1[0].node, 8);
        assert_eq!(into_l1[0].through_sigmoid, Some(7));
        assert!(
            p.training.iter().all(|c| c.node != 7 && c.target != 7),
            "no sigmoid step"
        );
        // The plain backward keeps every gradient readable.
        assert!(p.backward.iter().any(|c| c.node == 7 && c.target == 6));
        assert!(p.backward.iter().all(|c| c.through_sigmoid.is_none()));
        // Every param's value is read only before its own contributions.
        assert!([2, 3, 4, 5].iter().all(|&i| p.sgd_in_place[i]));
    }

    #[test]
    fn reads_come_from_the_kernel_templates() {
        // mul(w, h): dw reads h, dh reads w, after w's contribution: w is not updated in place.
        let m = model(quote! { struct N {
            input x: [4, 2]; input y: [4, 2]; param w: [4, 2]; param u: [2, 2]; param b: [2];
            h = linear(x, u, b); p = mul(w, h); loss l = mse(y, p);
        }});
        let p = plan(&m);
        let c = |node: usize, pos: usize| {
            p.training
                .iter()
                .find(|c| c.node == node && c.arg_pos == pos)
                .unwrap()
        };
        assert_eq!(reads(&m, c(6, 0)), [5], "dw reads h");
        assert_eq!(reads(&m, c(6, 1)), [2], "dh reads w");
        assert!(!p.sgd_in_place[2], "w is read after its update");
        assert!(p.sgd_in_place[3] && p.sgd_in_place[4]);
        // leaky_relu reads its input; relu, tanh and softmax their output.
        let m = model(quote! { struct N {
            input y: [2, 2]; param w: [2, 2];
            a = leaky_relu(w, 0.1); r = relu(a); t = tanh(r); s = softmax(t); loss l = mse(y, s);
        }});
        let p = plan(&m);
        let c = |node: usize| p.training.iter().find(|c| c.node == node).unwrap();
        assert_eq!(reads(&m, c(2)), [1], "leaky_relu reads w");
        assert_eq!(reads(&m, c(3)), [3]);
        assert_eq!(reads(&m, c(4)), [4]);
        assert_eq!(reads(&m, c(5)), [5]);
        assert!(
            !p.sgd_in_place[1],
            "leaky_relu reads w in the same call that updates it"
        );
    }

    #[test]
    fn labels_get_no_contribution() {
        let m = model(quote! { struct N {
            input x: [n, 3]; input t: [n]; param w: [3, 4];
            z = matmul(x, w); loss l = softmax_cross_entropy(z, t);
        }});
        let p = plan(&m);
        assert!(!p.has_grad[1]);
        assert!(p.backward.iter().all(|c| !(c.node == 4 && c.arg_pos == 1)));
        assert_eq!(
            p.backward
                .iter()
                .map(|c| (c.node, c.arg_pos, c.target))
                .collect::<Vec<_>>(),
            [(4, 0, 3), (3, 1, 2)]
        );
    }

    #[test]
    fn a_param_read_after_its_update_is_not_updated_in_place() {
        // In linear(w, w, b) the dw contribution reads w (as x) after dx has updated it.
        let m = model(quote! { struct N {
            input y: [2, 2]; param w: [2, 2]; param b: [2];
            o = linear(w, w, b); loss c = mse(y, o);
        }});
        let p = plan(&m);
        assert!(!p.sgd_in_place[1]);
        assert!(p.sgd_in_place[2], "b is never read by backward");
        // Used by two linears, w is still safe: each dx reading it precedes its updates.
        let m = model(quote! { struct N {
            input x: [n, 2]; input y: [n, 2]; param w: [2, 2]; param b: [2];
            h = linear(x, w, b); o = linear(h, w, b); loss c = mse(y, o);
        }});
        assert!(plan(&m).sgd_in_place[2]);
    }
}

//! Stage 4, plan: the model handed to the planner of the op crate
//! ([`miniflow_ops::plan`]), which decides the forward order, what each target needs, and the
//! backward schedules, with every optimization a named rule kept there in one place. This
//! stage only translates: the macro and the run-time plan executor of `miniflow-core` follow
//! the same plan, so the expansion can be tested against the executor.

use crate::validate::{Kind, Model};
use miniflow_ops::plan::{self as planner, Dag, Node, Rules};
pub use miniflow_ops::plan::{Forward, Plan, Schedule, Sink, Step};

use crate::ast::LeafKind;

/// Kahn's algorithm over the model, ties broken by source order so the expansion is
/// deterministic. On a cycle, returns one cycle's nodes in data-flow order.
pub fn topo_order(model: &Model) -> Result<Vec<usize>, Vec<usize>> {
    let args: Vec<Vec<usize>> = model.nodes.iter().map(|n| n.args().to_vec()).collect();
    planner::topo_order(&args)
}

/// The model as the planner's graph.
pub fn dag(model: &Model) -> Dag {
    Dag {
        nodes: model
            .nodes
            .iter()
            .map(|n| match &n.kind {
                Kind::Leaf(LeafKind::Input { grad }) => Node::input(*grad),
                Kind::Leaf(LeafKind::Param) => Node::param(),
                Kind::Op { op, args, .. } => Node::op(*op, args.clone()),
            })
            .collect(),
        loss: model.loss,
        outputs: model.outputs.clone(),
    }
}

/// The plan `network!` expands: every rule on.
pub fn plan(model: &Model) -> syn::Result<Plan> {
    planner::plan(&dag(model), Rules::ALL).map_err(|e| {
        // Validation rejects every graph the planner would (cycles, bad names).
        syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("internal error in miniflow's planner: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    //! The planner has its own tests on graphs (`miniflow_ops::plan`); these check the
    //! translation from DSL source.
    use super::*;
    use miniflow_ops::plan::Rule;
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
        assert_eq!(plan(&m).unwrap().order, vec![3, 4, 5, 6, 2, 1, 0]);
    }

    #[test]
    fn backward_skips_inputs_without_grad_and_sums_fan_out() {
        let m = model(quote! { struct N {
            input x: [n, 2]; input y: [n]; param w: [2, 2]; param b: [2]; param v: [2, 1]; param c: [1];
            h = linear(x, w, b); s = sigmoid(h); t = add(s, h); o = linear(t, v, c);
            loss l = mse(y, o);
        }});
        let p = plan(&m).unwrap();
        assert!(
            !p.backward.grads[0] && !p.backward.grads[1],
            "plain inputs get no gradient"
        );
        let by_target = |t: usize| -> Vec<(usize, Sink)> {
            p.backward
                .steps
                .iter()
                .filter(|c| c.target == t)
                .map(|c| (c.node, c.sink))
                .collect()
        };
        // h feeds s and t: t's contribution (later in forward order) comes first, written;
        // s's is added.
        assert_eq!(by_target(6), vec![(8, Sink::Write), (7, Sink::Add)]);
        assert_eq!(by_target(2), vec![(6, Sink::Write)]);
    }

    #[test]
    fn grad_inputs_and_outputs_are_planned() {
        let m = model(quote! { struct N {
            #[grad] input x: [n, 2]; input y: [n, 2]; param w: [2, 2]; param b: [2];
            h = linear(x, w, b); output s = sigmoid(h); loss l = mse(y, s);
        }});
        let p = plan(&m).unwrap();
        assert!(p.backward.grads[0] && !p.training.grads[0]);
        assert_eq!(p.outputs[0].ops, [4, 5]);
        assert_eq!(p.outputs[0].inputs, [0]);
        assert_eq!(p.count(Rule::TrainParamsOnly), 1);
    }

    #[test]
    fn the_two_layer_course_network_fuses_and_updates_in_place() {
        let m = model(quote! { struct N {
            input x: [n, 13]; input y: [n]; param w1: [13, 10]; param b1: [10];
            param w2: [10, 1]; param b2: [1];
            l1 = linear(x, w1, b1); s1 = sigmoid(l1); l2 = linear(s1, w2, b2);
            loss c = mse(y, l2);
        }});
        let p = plan(&m).unwrap();
        assert_eq!(p.count(Rule::FuseSigmoidLinear), 1);
        assert_eq!(p.count(Rule::SgdInPlace), 4);
    }
}

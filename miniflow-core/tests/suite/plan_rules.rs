//! Every rule of the plan (`miniflow_ops::plan::RULES`), tested differentially on random
//! networks grown to trigger it (issue 8).
//!
//! Each network is planned with every rule, with no rule (the reference: every gradient,
//! zeroed buffers, no fusion, every param updated after backward), with each rule left out
//! and with each rule alone, and run by the plan executor (`miniflow_core::exec`), which runs
//! a plan with the same kernels, order and sinks as the code `network!` expands. For every
//! plan, `sgd_step` must give the reference's loss and params, and `backward` the reference's
//! gradients (and every gradient that is wanted); the runtime `Graph` on the same network must
//! agree too. Tolerance: 1e-12 relative in f64 (1e-4 in f32), against the array's scale.
//!
//! The networks come from `tests-gen/src/netgen.rs` with `motifs` on: besides random ops it
//! grows the patterns the rules look for, with the node a rule acts on in every role (a param,
//! a `#[grad]` input, a plain input, an intermediate; one consumer or several) and params read
//! again after their contribution. The test counts each rule's firings per role, and the
//! patterns each rule declined, and fails if any is below its minimum: a rule no network
//! triggers is a rule nothing tests.
//!
//! `MINIFLOW_PLAN_NETS` sets the number of networks (10,000 by default; 100,000 on demand:
//! `MINIFLOW_PLAN_NETS=100000 cargo test --release -p miniflow-core --test suite plan_rules::`), and
//! `MINIFLOW_PLAN_SEED` the seed.

use crate::netgen;

use miniflow_core::exec::Executor;
use miniflow_core::ndarray::{ArrayD, ArrayViewD, IxDyn};
use miniflow_core::plan::{Dag, Node, Plan, Rule, Rules, Sink};
use miniflow_core::{Graph, Network, NodeId, Op, Scalar};
use netgen::{concrete, generate, Choices, Domain, Kind, Net, Options, SplitMix};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const DEFAULT_NETS: usize = 10_000;
const DEFAULT_SEED: u64 = 0x91a7_2026;
/// Each rule must fire at least this often per 10,000 networks...
const MIN_FIRINGS: usize = 500;
/// ... and each role of each rule (and each kind of decline) at least this often.
const MIN_ROLE: usize = 25;
const LR: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// A case: a network as the planner's graph, with values.
// ---------------------------------------------------------------------------------------------

struct Case {
    net: Net,
    dag: Dag,
    names: Vec<String>,
    attrs: Vec<Vec<f64>>,
    /// A value per node (empty for op nodes).
    values: Vec<ArrayD<f64>>,
    sizes: [usize; 2],
}

impl Case {
    fn new(seed: u64) -> Case {
        let mut rng = SplitMix(seed);
        let options = Options {
            max_ops: 2 + rng.below(6),
            max_dim: 4,
            named_dims: true,
            dsl: true,
            motifs: true,
        };
        let net = generate(&mut rng, options);
        let sizes = [1 + rng.below(4), 1 + rng.below(4)];
        // Number nodes in source order, as `network!` does.
        let pos: Vec<usize> = {
            let mut pos = vec![0; net.nodes.len()];
            for (k, &i) in net.order.iter().enumerate() {
                pos[i] = k;
            }
            pos
        };
        let mut nodes = Vec::new();
        let mut names = Vec::new();
        let mut attrs = Vec::new();
        let mut values = Vec::new();
        let mut outputs = Vec::new();
        for &i in &net.order {
            let n = &net.nodes[i];
            names.push(n.name.clone());
            match &n.kind {
                Kind::Leaf { param: true, .. } => nodes.push(Node::param()),
                Kind::Leaf { grad, .. } => nodes.push(Node::input(*grad)),
                Kind::Op { op, args, literals } => {
                    nodes.push(Node::op(*op, args.iter().map(|&a| pos[a]).collect()));
                    attrs.push(literals.clone());
                    values.push(ArrayD::zeros(IxDyn(&[0])));
                    if n.role == netgen::Role::Output {
                        outputs.push(pos[i]);
                    }
                    continue;
                }
            }
            attrs.push(Vec::new());
            let shape = concrete(&n.shape, &sizes);
            let param = matches!(n.kind, Kind::Leaf { param: true, .. });
            values.push(ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
                match n.domain {
                    Domain::Any if param => 0.8 * rng.uniform(),
                    Domain::Any => 2.0 * rng.uniform(),
                    Domain::Prob => 0.5 + 0.45 * rng.uniform(),
                    Domain::Labels(c) => {
                        let c = concrete(&[c], &sizes)[0];
                        rng.below(c) as f64
                    }
                }
            }));
        }
        let dag = Dag {
            nodes,
            loss: pos[net.loss],
            outputs,
        };
        Case {
            net,
            dag,
            names,
            attrs,
            values,
            sizes,
        }
    }

    fn executor<T: Scalar>(&self, rules: Rules) -> Executor<T> {
        let mut ex = Executor::new(
            self.names.clone(),
            self.dag.clone(),
            self.attrs.clone(),
            rules,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", self.describe()));
        for (i, v) in self.values.iter().enumerate() {
            if self.dag.nodes[i].as_op().is_none() {
                ex.set_value(i, v.mapv(T::from_f64)).unwrap();
            }
        }
        ex
    }

    fn leaves(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.dag.nodes.len()).filter(|&i| self.dag.nodes[i].as_op().is_none())
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "network (batch = {}, n = {}; loss `{}`):\n{:?}values:\n",
            self.sizes[0], self.sizes[1], self.names[self.dag.loss], self.net
        );
        for i in self.leaves() {
            let _ = writeln!(s, "    {} = {}", self.names[i], self.values[i]);
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison.
// ---------------------------------------------------------------------------------------------

fn rtol<T: Scalar>() -> f64 {
    if Scalar::to_f64(T::epsilon()) < 1e-10 {
        1e-12
    } else {
        1e-4
    }
}

/// Every element within `rtol` of the reference, relative to the larger of the two or, for
/// elements near zero, to the reference's largest element.
fn close<T: Scalar>(got: &ArrayViewD<'_, T>, want: &ArrayViewD<'_, T>) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?}, want {:?}", got.shape(), want.shape()));
    }
    let tol = rtol::<T>();
    let scale = want
        .iter()
        .fold(0.0f64, |m, x| m.max(Scalar::to_f64(*x).abs()));
    for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        let (g, w) = (Scalar::to_f64(*g), Scalar::to_f64(*w));
        let err = (g - w).abs();
        let ok =
            err <= tol * g.abs().max(w.abs()) || err <= tol * scale || (g.is_nan() && w.is_nan());
        if !ok {
            return Err(format!("element {k}: {g:e}, want {w:e} (error {err:e})"));
        }
    }
    Ok(())
}

fn rules_text(rules: Rules) -> String {
    let on: Vec<&str> = Rule::ALL
        .iter()
        .filter(|r| rules.has(**r))
        .map(|r| r.name())
        .collect();
    format!("[{}]", on.join(", "))
}

/// The rule sets each network is planned with (besides the reference, `Rules::NONE`).
fn variants() -> Vec<Rules> {
    let mut v = vec![Rules::ALL];
    for r in Rule::ALL {
        v.push(Rules::ALL.without(r));
        v.push(Rules::NONE.with(r));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Roles and counts.
// ---------------------------------------------------------------------------------------------

/// What the node a rule acted on is.
fn role(dag: &Dag, node: usize) -> &'static str {
    match dag.nodes[node].kind {
        miniflow_core::plan::NodeKind::Leaf(miniflow_core::plan::Leaf::Param) => "param",
        miniflow_core::plan::NodeKind::Leaf(miniflow_core::plan::Leaf::Input { grad: true }) => {
            "#[grad] input"
        }
        miniflow_core::plan::NodeKind::Leaf(_) => "input",
        miniflow_core::plan::NodeKind::Op(_) => "intermediate",
    }
}

fn uses(dag: &Dag, node: usize) -> usize {
    dag.nodes
        .iter()
        .map(|n| n.args.iter().filter(|&&a| a == node).count())
        .sum()
}

#[derive(Default)]
struct Counts {
    /// (rule, role) -> firings.
    roles: BTreeMap<(&'static str, String), usize>,
    /// rule -> firings.
    total: BTreeMap<&'static str, usize>,
    nets: usize,
    runs: usize,
}

impl Counts {
    fn add(&mut self, rule: &'static str, role: String) {
        *self.roles.entry((rule, role)).or_default() += 1;
        *self.total.entry(rule).or_default() += 1;
    }

    /// Records the decisions (and declined patterns) of one plan.
    fn record(&mut self, dag: &Dag, plan: &Plan) {
        for f in &plan.fired {
            let name = f.rule.name();
            let many = if uses(dag, f.node) > 1 {
                "several consumers"
            } else {
                "one consumer"
            };
            match f.rule {
                Rule::FuseSigmoidLinear => {
                    let l = dag.nodes[f.node].args[0];
                    self.add(name, format!("into {}", role(dag, l)));
                }
                Rule::WriteFirst | Rule::SgdInPlace => {
                    self.add(name, format!("{}, {many}", role(dag, f.node)));
                }
                Rule::PruneGradients | Rule::TrainParamsOnly => {
                    self.add(name, role(dag, f.node).to_string());
                }
            }
        }
        // Patterns a rule must decline.
        if plan.rules.has(Rule::SgdInPlace) {
            for (p, node) in dag.nodes.iter().enumerate() {
                if node.is_param() && plan.training.grads[p] && !plan.training.in_place[p] {
                    *self
                        .roles
                        .entry((
                            Rule::SgdInPlace.name(),
                            "declined: read after update".into(),
                        ))
                        .or_default() += 1;
                }
            }
        }
        if plan.rules.has(Rule::FuseSigmoidLinear) {
            let fused: Vec<usize> = plan
                .fired
                .iter()
                .filter(|f| f.rule == Rule::FuseSigmoidLinear)
                .map(|f| f.node)
                .collect();
            for (s, node) in dag.nodes.iter().enumerate() {
                let feeds_linear = dag
                    .nodes
                    .iter()
                    .any(|c| c.as_op() == Some(Op::Linear) && c.args.contains(&s));
                if node.as_op() == Some(Op::Sigmoid)
                    && feeds_linear
                    && plan.training.grads.get(s) == Some(&true)
                    && !fused.contains(&s)
                {
                    *self
                        .roles
                        .entry((Rule::FuseSigmoidLinear.name(), "declined".into()))
                        .or_default() += 1;
                }
            }
        }
    }

    fn report(&self) -> String {
        let mut s = format!(
            "{} networks, {} plans run; firings per rule and role:\n",
            self.nets, self.runs
        );
        for r in Rule::ALL {
            let _ = writeln!(
                s,
                "  {:<20} {:>8}",
                r.name(),
                self.total.get(r.name()).unwrap_or(&0)
            );
            for ((rule, role), n) in &self.roles {
                if *rule == r.name() {
                    let _ = writeln!(s, "      {role:<34} {n:>8}");
                }
            }
        }
        s
    }

    /// The roles each rule must have been seen in.
    fn check(&self, scale: f64) -> Result<(), String> {
        let need: &[(&str, &[&str])] = &[
            ("prune-gradients", &["input", "intermediate"]),
            ("train-params-only", &["#[grad] input", "intermediate"]),
            (
                "write-first",
                &[
                    "param, one consumer",
                    "param, several consumers",
                    "#[grad] input, one consumer",
                    "#[grad] input, several consumers",
                    "input, one consumer",
                    "intermediate, one consumer",
                    "intermediate, several consumers",
                ],
            ),
            (
                "fuse-sigmoid-linear",
                &[
                    "into param",
                    "into #[grad] input",
                    "into input",
                    "into intermediate",
                    "declined",
                ],
            ),
            (
                "sgd-in-place",
                &[
                    "param, one consumer",
                    "param, several consumers",
                    "declined: read after update",
                ],
            ),
        ];
        let mut missing = Vec::new();
        let min_total = (MIN_FIRINGS as f64 * scale).ceil() as usize;
        let min_role = (MIN_ROLE as f64 * scale).ceil() as usize;
        for r in Rule::ALL {
            let n = *self.total.get(r.name()).unwrap_or(&0);
            if n < min_total {
                missing.push(format!(
                    "rule `{}` fired {n} times (< {min_total})",
                    r.name()
                ));
            }
            let Some((_, roles)) = need.iter().find(|(name, _)| *name == r.name()) else {
                missing.push(format!(
                    "rule `{}` has no roles listed in this test",
                    r.name()
                ));
                continue;
            };
            for role in *roles {
                let n = *self.roles.get(&(r.name(), role.to_string())).unwrap_or(&0);
                if n < min_role {
                    missing.push(format!(
                        "rule `{}` as `{role}`: {n} (< {min_role})",
                        r.name()
                    ));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("\n"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One case.
// ---------------------------------------------------------------------------------------------

/// The reference: loss and every node's value after one SGD step; gradients of `backward`.
struct Reference<T> {
    loss: f64,
    after_step: Vec<ArrayD<T>>,
    grads: Vec<Option<ArrayD<T>>>,
}

fn reference<T: Scalar>(case: &Case) -> Result<Reference<T>, String> {
    let mut ex = case.executor::<T>(Rules::NONE);
    ex.forward()
        .map_err(|e| format!("reference forward: {e}"))?;
    ex.backward()
        .map_err(|e| format!("reference backward: {e}"))?;
    let grads = (0..case.dag.nodes.len())
        .map(|i| ex.grad(i).map(|g| g.to_owned()))
        .collect();
    let mut ex = case.executor::<T>(Rules::NONE);
    let loss = ex
        .sgd_step(T::from_f64(LR))
        .map(Scalar::to_f64)
        .map_err(|e| format!("reference step: {e}"))?;
    let after_step = (0..case.dag.nodes.len())
        .map(|i| ex.value(i).map(|v| v.to_owned()).unwrap_or_default())
        .collect();
    Ok(Reference {
        loss,
        after_step,
        grads,
    })
}

fn check_variant<T: Scalar>(
    case: &Case,
    r: &Reference<T>,
    rules: Rules,
    counts: Option<&mut Counts>,
) -> Result<(), String> {
    let what = rules_text(rules);
    // sgd_step == reference step. In half the cases the step follows a `backward`, as when a
    // user reads the gradients and then trains: gradient buffers then hold this step's
    // gradients, so a param updated both in place and from its buffer is caught (on fresh
    // buffers of zeros the second update would change nothing).
    let mut ex = case.executor::<T>(rules);
    if case.dag.nodes.len().is_multiple_of(2) {
        ex.forward().map_err(|e| format!("{what} forward: {e}"))?;
        ex.backward().map_err(|e| format!("{what} backward: {e}"))?;
    }
    let loss = ex
        .sgd_step(T::from_f64(LR))
        .map(Scalar::to_f64)
        .map_err(|e| format!("{what} sgd_step: {e}"))?;
    if !(loss == r.loss || (loss - r.loss).abs() <= rtol::<T>() * r.loss.abs()) {
        return Err(format!("{what} sgd_step loss {loss:e}, want {:e}", r.loss));
    }
    for i in 0..case.dag.nodes.len() {
        let got = ex.value(i).unwrap();
        close(&got, &r.after_step[i].view())
            .map_err(|e| format!("{what} sgd_step: `{}` after the step: {e}", case.names[i]))?;
    }
    // Every step of the training schedule names the sink its rule set allows.
    let plan = ex.plan();
    if !rules.has(Rule::SgdInPlace) && plan.training.steps.iter().any(|s| s.sink == Sink::Update) {
        return Err(format!("{what}: an in-place update without sgd-in-place"));
    }
    if let Some(c) = counts {
        c.record(ex.dag(), plan);
        c.runs += 1;
    }
    // backward == reference gradients, and every wanted gradient is there.
    let mut ex = case.executor::<T>(rules);
    ex.forward().map_err(|e| format!("{what} forward: {e}"))?;
    ex.backward().map_err(|e| format!("{what} backward: {e}"))?;
    for i in 0..case.dag.nodes.len() {
        let wanted = case.dag.nodes[i].wants_grad() && r.grads[i].is_some();
        match (ex.grad(i), &r.grads[i]) {
            (Some(g), Some(want)) => close(&g, &want.view())
                .map_err(|e| format!("{what} backward: d/d`{}`: {e}", case.names[i]))?,
            (Some(_), None) => {
                return Err(format!(
                    "{what} backward: a gradient for `{}`, which the reference does not reach",
                    case.names[i]
                ))
            }
            (None, _) if wanted || !rules.has(Rule::PruneGradients) && r.grads[i].is_some() => {
                return Err(format!(
                    "{what} backward: no gradient for `{}`",
                    case.names[i]
                ))
            }
            (None, _) => {}
        }
    }
    Ok(())
}

/// The runtime graph on the same network: `forward_and_backward` + `sgd_update` of the params.
fn check_graph<T: Scalar>(case: &Case, r: &Reference<T>) -> Result<(), String> {
    let mut g = Graph::<T>::new();
    let args: Vec<Vec<usize>> = case.dag.nodes.iter().map(|n| n.args.clone()).collect();
    let order = miniflow_core::plan::topo_order(&args).map_err(|c| format!("cycle {c:?}"))?;
    let mut made: Vec<Option<NodeId>> = vec![None; case.dag.nodes.len()];
    for i in order {
        let node = &case.dag.nodes[i];
        made[i] = Some(match node.as_op() {
            None => g
                .input(case.names[i].clone())
                .map_err(|e| format!("graph: {e}"))?,
            Some(op) => {
                let args: Vec<NodeId> = node.args.iter().filter_map(|&a| made[a]).collect();
                g.op_with(case.names[i].clone(), op, &args, &case.attrs[i])
                    .map_err(|e| format!("graph: {e}"))?
            }
        });
    }
    let ids: Vec<NodeId> = made.into_iter().flatten().collect();
    let feed: Vec<(NodeId, ArrayD<T>)> = case
        .leaves()
        .map(|i| (ids[i], case.values[i].mapv(T::from_f64)))
        .collect();
    let order = g
        .topological_sort(feed)
        .map_err(|e| format!("graph sort: {e}"))?;
    let loss = g
        .forward_and_backward(&order, ids[case.dag.loss])
        .map(Scalar::to_f64)
        .map_err(|e| format!("graph forward_and_backward: {e}"))?;
    if (loss - r.loss).abs() > rtol::<T>() * r.loss.abs() {
        return Err(format!("graph loss {loss:e}, want {:e}", r.loss));
    }
    for (i, &id) in ids.iter().enumerate() {
        if let (Ok(got), Some(want)) = (g.gradient(id), &r.grads[i]) {
            close(&got, &want.view()).map_err(|e| format!("graph: d/d`{}`: {e}", case.names[i]))?;
        }
    }
    let params: Vec<NodeId> = (0..case.dag.nodes.len())
        .filter(|&i| case.dag.nodes[i].is_param() && r.grads[i].is_some())
        .map(|i| ids[i])
        .collect();
    g.sgd_update(&params, T::from_f64(LR))
        .map_err(|e| format!("graph sgd_update: {e}"))?;
    for i in case.leaves() {
        let got = g.value(ids[i]).unwrap();
        close(&got, &r.after_step[i].view())
            .map_err(|e| format!("graph: `{}` after sgd_update: {e}", case.names[i]))?;
    }
    Ok(())
}

/// The runtime graph used as a `Network` (params and `#[grad]` inputs as in the case, planned
/// with every rule): `sgd_step` must give the reference's loss and leaves.
fn check_graph_network<T: Scalar>(case: &Case, r: &Reference<T>) -> Result<(), String> {
    let mut g = Graph::<T>::new();
    let args: Vec<Vec<usize>> = case.dag.nodes.iter().map(|n| n.args.clone()).collect();
    let order = miniflow_core::plan::topo_order(&args).map_err(|c| format!("cycle {c:?}"))?;
    let mut made: Vec<Option<NodeId>> = vec![None; case.dag.nodes.len()];
    let bad = |e: miniflow_core::Error| format!("graph network: {e}");
    for i in order {
        let node = &case.dag.nodes[i];
        let name = case.names[i].clone();
        made[i] = Some(match node.as_op() {
            None if node.is_param() => g.param(name, case.values[i].shape()).map_err(bad)?,
            None => {
                let id = g.input(name).map_err(bad)?;
                g.set_requires_grad(id, node.wants_grad()).map_err(bad)?;
                id
            }
            Some(op) => {
                let args: Vec<NodeId> = node.args.iter().filter_map(|&a| made[a]).collect();
                g.op_with(name, op, &args, &case.attrs[i]).map_err(bad)?
            }
        });
    }
    let ids: Vec<NodeId> = made.into_iter().flatten().collect();
    g.set_loss(ids[case.dag.loss]).map_err(bad)?;
    for i in case.leaves() {
        let v = case.values[i].mapv(T::from_f64);
        if case.dag.nodes[i].is_param() {
            g.set_param(&case.names[i], v.view()).map_err(bad)?;
        } else {
            g.set_input(&case.names[i], v.view()).map_err(bad)?;
        }
    }
    let loss = g
        .sgd_step(T::from_f64(LR))
        .map(Scalar::to_f64)
        .map_err(bad)?;
    if !(loss == r.loss || (loss - r.loss).abs() <= rtol::<T>() * r.loss.abs()) {
        return Err(format!("graph network loss {loss:e}, want {:e}", r.loss));
    }
    for i in case.leaves() {
        let got = Graph::value(&g, ids[i]).map_err(bad)?;
        close(&got, &r.after_step[i].view())
            .map_err(|e| format!("graph network: `{}` after sgd_step: {e}", case.names[i]))?;
    }
    Ok(())
}

fn check_case<T: Scalar>(case: &Case, mut counts: Option<&mut Counts>) -> Result<(), String> {
    let r = reference::<T>(case)?;
    for rules in variants() {
        check_variant(case, &r, rules, counts.as_deref_mut())?;
    }
    check_graph(case, &r)?;
    check_graph_network(case, &r)
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn run(count: usize, seed: u64) -> Counts {
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for k in 0..count {
        let case_seed = seed.wrapping_add((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let case = Case::new(case_seed);
        counts.nets += 1;
        let mut result = check_case::<f64>(&case, Some(&mut counts));
        if result.is_ok() && k % 4 == 0 {
            result = check_case::<f32>(&case, None).map_err(|e| format!("f32: {e}"));
        }
        if let Err(e) = result {
            failures.push(format!(
                "case {k} (seed {case_seed:#x}): {e}\n{}",
                case.describe()
            ));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing networks (first {} shown):\n{}",
        failures.len(),
        failures.len(),
        failures.join("\n")
    );
    counts
}

#[test]
fn every_rule_agrees_with_the_reference_on_random_networks() {
    let count = env("MINIFLOW_PLAN_NETS", DEFAULT_NETS as u64) as usize;
    let seed = env("MINIFLOW_PLAN_SEED", DEFAULT_SEED);
    let counts = run(count, seed);
    let report = counts.report();
    println!("{report}");
    if let Err(e) = counts.check(count as f64 / DEFAULT_NETS as f64) {
        panic!("rules or roles the random networks did not exercise enough:\n{e}\n\n{report}");
    }
}

/// Issue 8's miscompile, through the executor: `P`'s only use is a sigmoid feeding only the
/// `x` of a linear, so the sigmoid is fused and `P` updated in place.
#[test]
fn the_sigmoid_of_a_param_is_decremented() {
    let dag = Dag {
        nodes: vec![
            Node::input(false),
            Node::param(),
            Node::param(),
            Node::param(),
            Node::op(Op::Sigmoid, vec![1]),
            Node::op(Op::Linear, vec![4, 2, 3]),
            Node::op(Op::Mse, vec![0, 5]),
        ],
        loss: 6,
        outputs: vec![],
    };
    let mut rng = SplitMix(3);
    let mut arr = |shape: &[usize]| ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.uniform());
    let values = vec![
        arr(&[4]),
        arr(&[4, 3]),
        arr(&[3, 1]),
        arr(&[1]),
        ArrayD::zeros(IxDyn(&[0])),
        ArrayD::zeros(IxDyn(&[0])),
        ArrayD::zeros(IxDyn(&[0])),
    ];
    let case = Case {
        net: Case::new(0).net,
        names: ["y", "P", "W", "b", "s", "o", "c"]
            .map(String::from)
            .to_vec(),
        attrs: vec![Vec::new(); 7],
        dag,
        values,
        sizes: [4, 1],
    };
    let ex = case.executor::<f64>(Rules::ALL);
    assert_eq!(ex.plan().count(Rule::FuseSigmoidLinear), 1);
    assert!(ex.plan().training.in_place[1]);
    check_case::<f64>(&case, None).unwrap();
    check_case::<f32>(&case, None).unwrap();
}

/// The checker can fail: a plan whose fused step overwrote its param (the bug of issue 8)
/// does not pass as the reference.
#[test]
fn the_comparison_catches_a_wrong_step() {
    let want = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 2.0]).unwrap();
    let got = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 2.0 + 1e-9]).unwrap();
    assert!(close::<f64>(&got.view(), &want.view()).is_err());
    assert!(close::<f64>(&want.view(), &want.view()).is_ok());
    let mut counts = Counts::default();
    counts.add("write-first", "param, one consumer".into());
    assert!(counts.check(1.0).is_err(), "too few firings must fail");
}

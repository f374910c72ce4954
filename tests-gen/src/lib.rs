//! Dev-only: random `network!` definitions generated at build time and tested against the
//! runtime graph (not published).
//!
//! `build.rs` grows random valid networks over every op of the table with [`netgen`] (the
//! same generator the runtime-graph property tests in `miniflow-core/tests/suite/prop_graph.rs`
//! use) and writes them out as `network!` source with a test each; `tests/randnets_0.rs` and
//! `_1.rs` include them. This library is the harness those tests call:
//!
//! - [`check_network`]: the generated network against `Graph::from_spec(net.spec())` on random
//!   values (loss, every value, every gradient the network exposes), `sgd_step` against
//!   `forward_backward` + `miniflow::sgd` and against the graph's `sgd_update`, and two runs of
//!   each bit for bit; then [`check_against_executor`]: the expansion against the plan executor
//!   running the same plan, bit for bit;
//! - [`check_huge_inputs`]: a network fed ±1000 stays finite, forward and backward, generated
//!   and graph alike.

pub mod netgen;

use miniflow::exec::Executor;
use miniflow::ndarray::{ArrayD, ArrayViewD, IxDyn};
use miniflow::plan::Rules;
use miniflow::{DimSpec, Graph, Network, NetworkSpec, NodeId, NodeKind, NodeSpec, Scalar};
use netgen::{Choices, SplitMix};
use std::borrow::Cow;

/// Makes a fresh instance of a generated network.
pub type Make<T> = dyn Fn() -> Box<dyn Network<Elem = T>>;

/// A value for every leaf (input or param), by name.
pub type Feed<T> = Vec<(&'static str, ArrayD<T>)>;

/// The sizes of the named dims `batch` and `n` (the only ones the generator uses).
pub type Sizes = [(&'static str, usize); 2];

/// The relative tolerance for comparing two computations of the same math (the same
/// kernels, perhaps accumulated in another order): `1e-9` in `f64`, `1e-3` in `f32`.
fn rtol<T: Scalar>() -> f64 {
    if Scalar::to_f64(T::epsilon()) < 1e-10 {
        1e-9
    } else {
        1e-3
    }
}

/// The concrete shape of a declared shape (named dims other than those in `sizes` are 3).
pub fn concrete(shape: &[DimSpec], sizes: &Sizes) -> Vec<usize> {
    shape
        .iter()
        .map(|d| match *d {
            DimSpec::Fixed(n) => n,
            DimSpec::Named(name) => sizes
                .iter()
                .find(|(k, _)| *k == name)
                .map_or(3, |&(_, n)| n),
        })
        .collect()
}

fn index(spec: &NetworkSpec, name: &str) -> usize {
    spec.nodes
        .iter()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("{}: no node `{name}` in the spec", spec.name))
}

fn is_leaf(kind: NodeKind) -> bool {
    matches!(kind, NodeKind::Param | NodeKind::Input { .. })
}

/// Random values for every leaf of `spec`, in the domain its doc comment gives
/// (`probabilities`: in (0.05, 0.95); `labels < c`: class indices; else params in
/// [-0.8, 0.8) and inputs in [-2, 2)).
pub fn random_feed<T: Scalar>(spec: &NetworkSpec, sizes: &Sizes, rng: &mut SplitMix) -> Feed<T> {
    spec.nodes
        .iter()
        .filter(|n| is_leaf(n.kind))
        .map(|n| {
            let shape = concrete(declared(n), sizes);
            let value = if n.doc == "probabilities" {
                ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
                    T::from_f64(0.5 + 0.45 * rng.uniform())
                })
            } else if let Some(c) = n.doc.strip_prefix("labels < ") {
                let c = c
                    .parse::<usize>()
                    .unwrap_or_else(|_| concrete(&[DimSpec::Named(leak(c))], sizes)[0]);
                ArrayD::from_shape_simple_fn(IxDyn(&shape), || T::from_f64(rng.below(c) as f64))
            } else {
                let scale = if n.kind == NodeKind::Param { 0.8 } else { 2.0 };
                ArrayD::from_shape_simple_fn(IxDyn(&shape), || T::from_f64(scale * rng.uniform()))
            };
            (static_name(&n.name), value)
        })
        .collect()
}

/// A node's declared shape (every node of a generated network has one).
pub fn declared(n: &NodeSpec) -> &[DimSpec] {
    n.shape
        .as_deref()
        .unwrap_or_else(|| panic!("`{}` has no declared shape", n.name))
}

/// A spec's name as a `&'static str`: borrowed from a generated network's static spec (the
/// only ones these tests feed), leaked otherwise.
#[allow(clippy::ptr_arg)] // the Cow is matched: a borrowed name is kept, not leaked
pub fn static_name(name: &Cow<'static, str>) -> &'static str {
    match name {
        Cow::Borrowed(s) => s,
        Cow::Owned(s) => leak(s),
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Feeds every leaf in `feed` to `net`: inputs with `set_input`, params with `set_param`.
pub fn feed_net<T: Scalar>(net: &mut dyn Network<Elem = T>, feed: &Feed<T>) {
    let spec = net.spec().clone();
    for (name, value) in feed {
        let node = spec.node(name).expect("the feed names nodes of the spec");
        let r = match node.kind {
            NodeKind::Param => net.set_param(name, value.view()),
            _ => net.set_input(name, value.view()),
        };
        r.unwrap_or_else(|e| panic!("{}: feeding `{name}`: {e}", spec.name));
    }
}

/// Panics unless `a` and `b` agree elementwise to `rtol` relative, with a floor of `rtol`
/// times the largest magnitude in either (so tiny entries of a large array compare to it).
pub fn assert_close<T: Scalar>(what: &str, a: &ArrayViewD<'_, T>, b: &ArrayViewD<'_, T>) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let rtol = rtol::<T>();
    let scale = a
        .iter()
        .chain(b.iter())
        .fold(0.0f64, |m, x| m.max(Scalar::to_f64(*x).abs()));
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let (x, y) = (Scalar::to_f64(*x), Scalar::to_f64(*y));
        let ok = x == y || (x - y).abs() <= rtol * (x.abs().max(y.abs()) + 1e-2 * scale);
        assert!(
            ok && x.is_finite() == y.is_finite(),
            "{what}[{i}]: {x:e} vs {y:e}"
        );
    }
}

fn assert_scalar_close<T: Scalar>(what: &str, a: T, b: T) {
    let (a, b) = (
        ArrayD::from_elem(IxDyn(&[]), a),
        ArrayD::from_elem(IxDyn(&[]), b),
    );
    assert_close(what, &a.view(), &b.view());
}

/// Which nodes a generated network gives a gradient: those on a path from a param or a
/// `#[grad]` input to the loss, through arguments that get gradients (not labels).
pub fn expected_gradients(spec: &NetworkSpec) -> Vec<bool> {
    let n = spec.nodes.len();
    let mut from_leaf: Vec<bool> = spec
        .nodes
        .iter()
        .map(|n| matches!(n.kind, NodeKind::Param | NodeKind::Input { grad: true }))
        .collect();
    let differentiable = |k: usize, arg: usize| match spec.nodes[k].kind {
        NodeKind::Op(op) => op.differentiable(arg),
        _ => false,
    };
    // `spec.nodes` is in forward order: every node after its arguments.
    for (i, node) in spec.nodes.iter().enumerate() {
        for (k, a) in node.args.iter().enumerate() {
            let j = index(spec, a);
            assert!(
                j < i,
                "{}: `{a}` must come before `{}`",
                spec.name,
                node.name
            );
            if from_leaf[j] && differentiable(i, k) {
                from_leaf[i] = true;
            }
        }
    }
    let mut feeds_loss = vec![false; n];
    let mut stack = vec![index(spec, &spec.loss)];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut feeds_loss[i], true) {
            for (k, a) in spec.nodes[i].args.iter().enumerate() {
                if differentiable(i, k) {
                    stack.push(index(spec, a));
                }
            }
        }
    }
    (0..n).map(|i| from_leaf[i] && feeds_loss[i]).collect()
}

/// The spec's graph, fed `feed` and run forward and backward from the loss.
fn graph_run<T: Scalar>(
    spec: &NetworkSpec,
    feed: &Feed<T>,
) -> (Graph<T>, Vec<NodeId>, Vec<NodeId>, T) {
    let (mut g, ids) = Graph::<T>::from_spec(spec)
        .unwrap_or_else(|e| panic!("{}: Graph::from_spec: {e}", spec.name));
    let order = g
        .topological_sort(feed.iter().map(|(n, v)| (ids[index(spec, n)], v.clone())))
        .unwrap_or_else(|e| panic!("{}: topological_sort: {e}", spec.name));
    let cost = ids[index(spec, &spec.loss)];
    let loss = g
        .forward_and_backward(&order, cost)
        .unwrap_or_else(|e| panic!("{}: graph forward_and_backward: {e}", spec.name));
    (g, ids, order, loss)
}

/// What [`check_network`] compared.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Checked {
    /// Node values compared with the graph.
    pub values: usize,
    /// Gradients compared with the graph.
    pub grads: usize,
    /// Params compared after each training step.
    pub params: usize,
}

/// Checks the network `make` builds against the runtime graph rebuilt from its spec, on
/// random values from `seed`:
///
/// 1. loss, every node's value (outputs included) and every gradient the network exposes
///    agree with the graph's; the network exposes exactly the gradients the spec implies;
/// 2. three `sgd_step`s equal three `forward_backward` + [`miniflow::sgd`] and three graph
///    `forward_and_backward` + `sgd_update` on the params (losses and params);
/// 3. a second run of each gives the same bits.
pub fn check_network<T: Scalar>(make: &Make<T>, seed: u64) -> Checked {
    let mut rng = SplitMix(seed);
    let sizes: Sizes = [("batch", 1 + rng.below(5)), ("n", 1 + rng.below(4))];
    let mut net = make();
    let spec = &net.spec().clone();
    let name = &*spec.name;
    let feed = random_feed::<T>(spec, &sizes, &mut rng);
    let mut checked = Checked::default();

    // 1. Values and gradients.
    feed_net(&mut *net, &feed);
    let loss = net
        .forward()
        .unwrap_or_else(|e| panic!("{name}: forward: {e}"));
    net.backward()
        .unwrap_or_else(|e| panic!("{name}: backward: {e}"));
    for output in spec.outputs.iter() {
        let v = net
            .evaluate_dyn(output)
            .unwrap_or_else(|e| panic!("{name}: evaluate `{output}`: {e}"));
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{name}.{output} not finite"
        );
    }
    let (g, ids, _, graph_loss) = graph_run(spec, &feed);
    assert!(loss.is_finite(), "{name}: loss {loss}");
    assert_scalar_close(&format!("{name}: loss vs graph"), loss, graph_loss);
    let has_grad = expected_gradients(spec);
    for (k, node) in spec.nodes.iter().enumerate() {
        let what = format!("{name}.{}", node.name);
        let v = net
            .value_dyn(&node.name)
            .unwrap_or_else(|e| panic!("{what}: value: {e}"));
        assert_eq!(
            v.shape(),
            concrete(declared(node), &sizes),
            "{what}: value shape vs spec"
        );
        let gv = g
            .value(ids[k])
            .unwrap_or_else(|e| panic!("{what}: the graph has no value: {e}"));
        assert_close(&format!("{what} value vs graph"), &v, &gv);
        checked.values += 1;
        match net.grad_dyn(&node.name) {
            Ok(d) => {
                assert!(has_grad[k], "{what}: a gradient nobody asked for");
                let gd = g
                    .gradient(ids[k])
                    .unwrap_or_else(|e| panic!("{what}: the graph has no gradient: {e}"));
                assert_close(&format!("{what} gradient vs graph"), &d, &gd);
                checked.grads += 1;
            }
            Err(e) => assert!(!has_grad[k], "{what}: no gradient: {e}"),
        }
    }

    // 2. Training: fused, unfused, graph.
    let params: Vec<usize> = (0..spec.nodes.len())
        .filter(|&k| spec.nodes[k].kind == NodeKind::Param)
        .collect();
    let lr = T::from_f64(0.05);
    let train = |fused: bool| {
        let mut net = make();
        feed_net(&mut *net, &feed);
        let mut trace: Vec<Vec<T>> = Vec::new();
        for step in 0..3 {
            let loss = if fused {
                net.sgd_step(lr)
            } else {
                net.forward_backward()
                    .and_then(|loss| miniflow::sgd(&mut *net, lr).map(|()| loss))
            }
            .unwrap_or_else(|e| panic!("{name}: step {step}: {e}"));
            let mut row = vec![loss];
            for &k in &params {
                let v = net
                    .value_dyn(&spec.nodes[k].name)
                    .expect("params have values");
                row.extend(v.iter().copied());
            }
            trace.push(row);
        }
        trace
    };
    let train_graph = || {
        let (mut g, ids, order, first) = graph_run(spec, &feed);
        let trainables: Vec<NodeId> = params.iter().map(|&k| ids[k]).collect();
        let cost = ids[index(spec, &spec.loss)];
        let mut trace = Vec::new();
        let mut loss = first;
        for step in 0..3 {
            if step > 0 {
                loss = g
                    .forward_and_backward(&order, cost)
                    .unwrap_or_else(|e| panic!("{name}: graph step {step}: {e}"));
            }
            g.sgd_update(&trainables, lr)
                .unwrap_or_else(|e| panic!("{name}: graph sgd_update: {e}"));
            let mut row = vec![loss];
            for &t in &trainables {
                row.extend(g.value(t).expect("trained").iter().copied());
            }
            trace.push(row);
        }
        trace
    };
    let fused = train(true);
    let unfused = train(false);
    let graph = train_graph();
    for step in 0..3 {
        let row = |t: &[Vec<T>]| ArrayD::from_shape_vec(IxDyn(&[t[step].len()]), t[step].clone());
        let (f, u, gr) = (row(&fused), row(&unfused), row(&graph));
        let (f, u, gr) = (f.expect("row"), u.expect("row"), gr.expect("row"));
        assert_close(
            &format!("{name}: step {step}, sgd_step vs forward_backward + sgd (loss, params)"),
            &f.view(),
            &u.view(),
        );
        assert_close(
            &format!("{name}: step {step}, network vs graph training (loss, params)"),
            &u.view(),
            &gr.view(),
        );
        checked.params += params.len();
    }
    // The steps must move the params, or the comparison proves little (unless every param's
    // gradient is zero, as in `mse(a, a)`, or rounding noise, as in `sum(softmax(w))`).
    let moving = params.iter().any(|&k| {
        net.grad_dyn(&spec.nodes[k].name)
            .is_ok_and(|g| g.iter().any(|x| Scalar::to_f64(*x).abs() > 1e-6))
    });
    if moving {
        let start: Vec<T> = params
            .iter()
            .flat_map(|&k| {
                feed.iter()
                    .find(|(n, _)| *n == spec.nodes[k].name)
                    .expect("fed")
                    .1
                    .iter()
                    .copied()
            })
            .collect();
        assert_ne!(
            &fused[2][1..],
            &start[..],
            "{name}: training never moved the params"
        );
    }

    // 3. The same again, to the bit.
    let bits = |t: &[Vec<T>]| -> Vec<u64> {
        t.iter()
            .flatten()
            .map(|x| Scalar::to_f64(*x).to_bits())
            .collect()
    };
    assert!(
        bits(&fused) == bits(&train(true)),
        "{name}: two sgd_step runs differ"
    );
    assert!(
        bits(&unfused) == bits(&train(false)),
        "{name}: two forward_backward + sgd runs differ"
    );
    assert!(
        bits(&graph) == bits(&train_graph()),
        "{name}: two graph training runs differ"
    );
    check_against_executor(make, &feed);
    check_hostile_feeds(make, &feed, &sizes);
    checked
}

/// The expansion does exactly what the plan says: the network against the plan executor
/// (`miniflow::exec::Executor`, the same plan with every rule, run at run time) on the same
/// values, **bit for bit**: loss, every value and every gradient after `forward` +
/// `backward`, and loss and every value after each of three `sgd_step`s.
pub fn check_against_executor<T: Scalar>(make: &Make<T>, feed: &Feed<T>) {
    let spec = &make().spec().clone();
    let name = &*spec.name;
    let executor = || {
        let mut ex = Executor::<T>::from_spec(spec, Rules::ALL)
            .unwrap_or_else(|e| panic!("{name}: Executor::from_spec: {e}"));
        for (leaf, value) in feed {
            ex.set_value(index(spec, leaf), value.clone())
                .unwrap_or_else(|e| panic!("{name}: executor: `{leaf}`: {e}"));
        }
        ex
    };
    let same = |what: &str, a: &ArrayViewD<'_, T>, b: &ArrayViewD<'_, T>| {
        let bits = |v: &ArrayViewD<'_, T>| -> Vec<u64> {
            v.iter().map(|x| Scalar::to_f64(*x).to_bits()).collect()
        };
        assert!(
            a.shape() == b.shape() && bits(a) == bits(b),
            "{name}: {what}: the network and the plan executor differ:\n{a}\nvs\n{b}"
        );
    };
    let mut net = make();
    feed_net(&mut *net, feed);
    let mut ex = executor();
    let (l1, l2) = (net.forward(), ex.forward());
    let (l1, l2) = (l1.expect("forward"), l2.expect("executor forward"));
    assert_eq!(
        Scalar::to_f64(l1).to_bits(),
        Scalar::to_f64(l2).to_bits(),
        "{name}: loss"
    );
    net.backward().expect("backward");
    ex.backward().expect("executor backward");
    // Values the loss's forward computes, and the leaves (outputs off the loss path are not
    // computed by `forward`).
    let computed: Vec<bool> = (0..spec.nodes.len())
        .map(|k| ex.plan().loss.ops.contains(&k) || !matches!(spec.nodes[k].kind, NodeKind::Op(_)))
        .collect();
    for (k, node) in spec.nodes.iter().enumerate() {
        if !computed[k] {
            continue;
        }
        let v = net.value_dyn(&node.name).expect("a value");
        same(
            &format!("value of `{}`", node.name),
            &v,
            &ex.value(k).expect("a value"),
        );
        match (net.grad_dyn(&node.name), ex.grad(k)) {
            (Ok(a), Some(b)) => same(&format!("d/d`{}`", node.name), &a, &b),
            (Err(_), None) => {}
            (a, b) => panic!(
                "{name}: `{}`: the network {} a gradient, the executor {}",
                node.name,
                if a.is_ok() { "has" } else { "has no" },
                if b.is_some() { "has" } else { "has no" }
            ),
        }
    }
    let mut net = make();
    feed_net(&mut *net, feed);
    let mut ex = executor();
    let lr = T::from_f64(0.05);
    for step in 0..3 {
        let a = net.sgd_step(lr).expect("sgd_step");
        let b = ex.sgd_step(lr).expect("executor sgd_step");
        assert_eq!(
            Scalar::to_f64(a).to_bits(),
            Scalar::to_f64(b).to_bits(),
            "{name}: step {step}: loss"
        );
        for (k, node) in spec.nodes.iter().enumerate().filter(|(k, _)| computed[*k]) {
            let v = net.value_dyn(&node.name).expect("a value");
            same(
                &format!("step {step}: value of `{}`", node.name),
                &v,
                &ex.value(k).expect("a value"),
            );
        }
    }
}

/// Never a panic: values of the wrong rank or size, a zero or inconsistent named dim, NaN,
/// labels out of range, unknown names and calls out of order all give `Err` (or, where the
/// values are merely unusual, `Ok`), never a panic.
pub fn check_hostile_feeds<T: Scalar>(make: &Make<T>, feed: &Feed<T>, sizes: &Sizes) {
    let spec = &make().spec().clone();
    let name = &*spec.name;
    let fresh = || {
        let mut net = make();
        feed_net(&mut *net, feed);
        net
    };
    let set = |net: &mut dyn Network<Elem = T>, leaf: &str, v: &ArrayD<T>| match spec
        .node(leaf)
        .expect("a leaf")
        .kind
    {
        NodeKind::Param => net.set_param(leaf, v.view()),
        _ => net.set_input(leaf, v.view()),
    };
    for (leaf, value) in feed {
        let node = spec.node(leaf).expect("a leaf");
        let what = format!("{name}.{leaf}");
        // One axis too many, and one too few.
        let mut more = value.shape().to_vec();
        more.push(1);
        let mut net = fresh();
        assert!(
            set(&mut *net, leaf, &ArrayD::zeros(IxDyn(&more))).is_err(),
            "{what}: accepted a value of rank {}",
            more.len()
        );
        if let Some((_, fewer)) = value.shape().split_last() {
            assert!(
                set(&mut *net, leaf, &ArrayD::zeros(IxDyn(fewer))).is_err(),
                "{what}: accepted a value of rank {}",
                fewer.len()
            );
        }
        // The value is still the good one: forward works.
        net.forward()
            .unwrap_or_else(|e| panic!("{what}: forward after a rejected feed: {e}"));
        // A fixed dim off by one is an error; a named dim may change (a new batch size),
        // or be 0 (an error), or disagree with another input's (an error at forward).
        for (axis, d) in declared(node).iter().enumerate() {
            let mut shape = value.shape().to_vec();
            match d {
                DimSpec::Fixed(n) => {
                    shape[axis] = n + 1;
                    let mut net = fresh();
                    assert!(
                        set(&mut *net, leaf, &ArrayD::zeros(IxDyn(&shape))).is_err(),
                        "{what}: accepted {shape:?}"
                    );
                }
                DimSpec::Named(_) => {
                    for size in [0, shape[axis] + 1] {
                        shape[axis] = size;
                        let mut net = fresh();
                        let fill = T::from_f64(if node.doc.starts_with("labels") {
                            0.0
                        } else {
                            0.5
                        });
                        let r = set(&mut *net, leaf, &ArrayD::from_elem(IxDyn(&shape), fill));
                        if size == 0 {
                            assert!(r.is_err(), "{what}: accepted an empty batch {shape:?}");
                            continue;
                        }
                        r.unwrap_or_else(|e| panic!("{what}: a new batch size: {e}"));
                        // Other inputs may bind the dim to the old size: an error, or the
                        // new size throughout: fine. Either way, no panic.
                        if net.forward().is_ok() {
                            let _ = net.backward();
                            let _ = net.sgd_step(T::from_f64(0.01));
                        }
                    }
                }
            }
        }
        // NaN everywhere (labels: out of range, and a fraction): no panic.
        let mut net = fresh();
        let bad = if node.doc.starts_with("labels") {
            vec![T::from_f64(1e6), T::from_f64(0.5), T::from_f64(-1.0)]
        } else {
            vec![T::nan()]
        };
        for b in bad {
            set(&mut *net, leaf, &ArrayD::from_elem(value.raw_dim(), b))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            match net.forward_backward() {
                Ok(_) => {
                    let _ = net.sgd_step(T::from_f64(0.01));
                }
                Err(e) => assert!(!e.to_string().is_empty(), "{what}: empty error"),
            }
            if node.doc.starts_with("labels") {
                assert!(net.forward().is_err(), "{what}: accepted the label {b}");
            }
        }
    }
    // Unknown names and calls out of order.
    let mut net = make();
    assert!(net.backward().is_err(), "{name}: backward before forward");
    // (Every input of these networks is on the loss path; one without inputs may run.)
    let has_inputs = spec
        .nodes
        .iter()
        .any(|n| matches!(n.kind, NodeKind::Input { .. }));
    assert!(
        net.forward().is_err() || !has_inputs,
        "{name}: forward without feeds"
    );
    for bad in ["", "nope", "r#type", "__fed"] {
        if spec.node(bad).is_ok() {
            continue;
        }
        assert!(net.value_dyn(bad).is_err(), "{name}: value({bad:?})");
        assert!(net.grad_dyn(bad).is_err(), "{name}: grad({bad:?})");
        assert!(net.evaluate_dyn(bad).is_err(), "{name}: evaluate({bad:?})");
        let v = ArrayD::<T>::zeros(IxDyn(&[1]));
        assert!(
            net.set_input(bad, v.view()).is_err(),
            "{name}: set_input({bad:?})"
        );
        assert!(
            net.set_param(bad, v.view()).is_err(),
            "{name}: set_param({bad:?})"
        );
    }
    // The wrong kind of node.
    for n in spec.nodes.iter() {
        let v = ArrayD::<T>::zeros(IxDyn(&concrete(declared(n), sizes)));
        match n.kind {
            NodeKind::Param => assert!(net.set_input(&n.name, v.view()).is_err()),
            NodeKind::Input { .. } => assert!(net.set_param(&n.name, v.view()).is_err()),
            NodeKind::Op(_) => {
                assert!(net.set_input(&n.name, v.view()).is_err());
                assert!(net.set_param(&n.name, v.view()).is_err());
            }
        }
    }
}

/// Feeds inputs of ±1000 (labels: class indices; `probabilities`: 0 and 1; params: ±3) and
/// checks that the loss, every value and every gradient stay finite, in the generated network
/// and in the graph, and that the two agree on the loss.
pub fn check_huge_inputs<T: Scalar>(make: &Make<T>) {
    let mut net = make();
    let spec = &net.spec().clone();
    let name = &*spec.name;
    let sizes: Sizes = [("batch", 2), ("n", 2)];
    let feed: Feed<T> = spec
        .nodes
        .iter()
        .filter(|n| is_leaf(n.kind))
        .map(|n| {
            let shape = concrete(declared(n), &sizes);
            let mut k = 0usize;
            let value = ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
                k += 1;
                let sign = if k.is_multiple_of(2) { -1.0 } else { 1.0 };
                let v = if let Some(c) = n.doc.strip_prefix("labels < ") {
                    (k % c.parse::<usize>().unwrap_or(1)) as f64
                } else if n.doc == "probabilities" || n.name == "y" {
                    (k % 2) as f64
                } else if n.kind == NodeKind::Param {
                    3.0 * sign
                } else {
                    1000.0 * sign
                };
                T::from_f64(v)
            });
            (static_name(&n.name), value)
        })
        .collect();
    feed_net(&mut *net, &feed);
    let loss = net
        .forward_backward()
        .unwrap_or_else(|e| panic!("{name}: forward_backward: {e}"));
    assert!(loss.is_finite(), "{name}: loss {loss}");
    let (g, ids, _, graph_loss) = graph_run(spec, &feed);
    assert!(graph_loss.is_finite(), "{name}: graph loss {graph_loss}");
    assert_scalar_close(&format!("{name}: loss vs graph"), loss, graph_loss);
    let mut grads = 0;
    for (k, node) in spec.nodes.iter().enumerate() {
        let v = net.value_dyn(&node.name).expect("every node has a value");
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{name}.{}: value {v}",
            node.name
        );
        let gv = g.value(ids[k]).expect("graph value");
        assert!(
            gv.iter().all(|x| x.is_finite()),
            "{name}.{}: graph value {gv}",
            node.name
        );
        if let Ok(d) = net.grad_dyn(&node.name) {
            assert!(
                d.iter().all(|x| x.is_finite()),
                "{name}.{}: gradient {d}",
                node.name
            );
            grads += 1;
        }
        if let Ok(d) = g.gradient(ids[k]) {
            assert!(
                d.iter().all(|x| x.is_finite()),
                "{name}.{}: graph gradient {d}",
                node.name
            );
        }
    }
    assert!(grads >= 2, "{name}: only {grads} gradients checked");
    // A training step from there stays finite too.
    let loss = net
        .sgd_step(T::from_f64(0.01))
        .unwrap_or_else(|e| panic!("{name}: sgd_step: {e}"));
    assert!(loss.is_finite(), "{name}: loss after a step {loss}");
}

/// Looks up an input's value in a feed, for a borrowed-batch step.
pub type Lookup<'a, T> = dyn Fn(&str) -> ArrayViewD<'a, T> + 'a;

/// The borrowed-batch step against `feed` + `sgd_step`, bit for bit: two networks from the
/// same params, three steps (the last in check mode), one fed and stepped, the other stepped
/// by `step` on views of the same batch (a closure the build script writes per network, which
/// builds `<Net>Batch` from `lookup`). The borrowed network's own input buffers hold other
/// values, so reading them instead of the batch would show.
pub fn check_borrowed<T: Scalar, N: Network<Elem = T> + Default>(
    seed: u64,
    step: impl for<'a> Fn(&mut N, &Lookup<'a, T>, T) -> miniflow::Result<T>,
) {
    let mut rng = SplitMix(seed ^ 0xb0_77_0e_d0);
    let sizes: Sizes = [("batch", 1 + rng.below(5)), ("n", 1 + rng.below(4))];
    let (mut fed, mut borrowed) = (N::default(), N::default());
    let spec = fed.spec().clone();
    let name = &*spec.name;
    let first = random_feed::<T>(&spec, &sizes, &mut rng);
    feed_net(&mut fed, &first);
    feed_net(&mut borrowed, &random_feed::<T>(&spec, &sizes, &mut rng));
    // The same params in both.
    for (leaf, value) in &first {
        if matches!(spec.node(leaf).map(|n| n.kind), Ok(NodeKind::Param)) {
            borrowed.set_param(leaf, value.view()).expect("param");
        }
    }
    let lr = T::from_f64(0.05);
    let mut compared = 0;
    for k in 0..3 {
        let feed = if k == 0 {
            first.clone()
        } else {
            random_feed::<T>(&spec, &sizes, &mut rng)
        };
        if k == 2 {
            fed.set_check_finite(true);
            borrowed.set_check_finite(true);
        }
        for (leaf, value) in &feed {
            if !matches!(spec.node(leaf).map(|n| n.kind), Ok(NodeKind::Param)) {
                fed.set_input(leaf, value.view()).expect("input");
            }
        }
        let a = fed.sgd_step(lr);
        let lookup = |leaf: &str| {
            feed.iter()
                .find(|(n, _)| *n == leaf)
                .map(|(_, v)| v.view())
                .expect("every input is in the feed")
        };
        let b = step(&mut borrowed, &lookup, lr);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                compared += 1;
                assert_eq!(
                    Scalar::to_f64(a).to_bits(),
                    Scalar::to_f64(b).to_bits(),
                    "{name}: step {k}: loss {a} vs {b}"
                )
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}: step {k}"),
            (a, b) => panic!("{name}: step {k}: fed {a:?}, borrowed {b:?}"),
        }
        for node in spec
            .nodes
            .iter()
            .filter(|n| !matches!(n.kind, NodeKind::Input { .. }))
        {
            let (x, y) = (fed.value_dyn(&node.name), borrowed.value_dyn(&node.name));
            let (x, y) = (x.expect("value"), y.expect("value"));
            assert!(
                x.shape() == y.shape()
                    && x.iter()
                        .zip(y.iter())
                        .all(|(p, q)| Scalar::to_f64(*p).to_bits() == Scalar::to_f64(*q).to_bits()),
                "{name}.{}: step {k}: {x} vs {y}",
                node.name
            );
        }
    }
    // Two networks failing alike at every step would compare nothing.
    assert!(
        compared > 0,
        "{name}: no step succeeded, nothing was compared"
    );
}

//! The harness the integration tests share (the test binaries include it with `mod common;`):
//! a deterministic PRNG, random feeds for a network's spec, the comparison of a generated
//! network with the runtime graph rebuilt from its own spec, finite-difference checks through
//! the `Network` API, and the fused training step against `forward_backward` + `sgd`.
//! [`alloc`] holds the counting global allocator of the allocation tests.

// Not every test binary uses every helper.
#![allow(dead_code)]

pub mod alloc;
pub mod nets;

use miniflow::ndarray::{ArrayD, ArrayViewD, IxDyn};
use miniflow::{DimSpec, Error, Graph, Network, NetworkSpec, NodeKind, NodeSpec};
use std::borrow::Cow;

// ---------------------------------------------------------------------------------------
// A tiny deterministic PRNG (splitmix64): no new dependencies.
// ---------------------------------------------------------------------------------------

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    pub fn array(&mut self, shape: &[usize], scale: f64) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || scale * self.uniform())
    }
}

// ---------------------------------------------------------------------------------------
// The reusable harness.
// ---------------------------------------------------------------------------------------

/// A value for every leaf (input or param) of a network, by name.
pub type Feed = Vec<(&'static str, ArrayD<f64>)>;

/// The concrete shape of a declared shape, with named dims bound by `dims`.
pub fn concrete(shape: &[DimSpec], dims: &[(&str, usize)]) -> Vec<usize> {
    shape
        .iter()
        .map(|d| match d {
            DimSpec::Fixed(n) => *n,
            DimSpec::Named(name) => {
                dims.iter()
                    .find(|(k, _)| k == name)
                    .unwrap_or_else(|| panic!("no size given for dim `{name}`"))
                    .1
            }
        })
        .collect()
}

/// A node's declared shape (every node of a generated network has one).
pub fn declared(n: &NodeSpec) -> &[DimSpec] {
    n.shape
        .as_deref()
        .unwrap_or_else(|| panic!("`{}` has no declared shape", n.name))
}

/// A spec's name as a `&'static str`: borrowed from a generated network's static spec, leaked
/// otherwise (tests only).
#[allow(clippy::ptr_arg)] // the Cow is matched: a borrowed name is kept, not leaked
pub fn static_name(name: &Cow<'static, str>) -> &'static str {
    match name {
        Cow::Borrowed(s) => s,
        Cow::Owned(s) => Box::leak(s.clone().into_boxed_str()),
    }
}

/// Random values for every input and param of `spec`.
pub fn random_feed(spec: &NetworkSpec, dims: &[(&str, usize)], seed: u64) -> Feed {
    let mut rng = Rng::new(seed);
    spec.nodes
        .iter()
        .filter(|n| !matches!(n.kind, NodeKind::Op(_)))
        .map(|n| {
            let scale = match n.kind {
                NodeKind::Param => 0.8,
                _ => 2.0,
            };
            (
                static_name(&n.name),
                rng.array(&concrete(declared(n), dims), scale),
            )
        })
        .collect()
}

/// Feeds every leaf in `feed` to `net`: inputs with `set_input`, params with `set_param`.
pub fn feed_net<N: Network<Elem = f64>>(net: &mut N, feed: &Feed) {
    let spec = net.spec().clone();
    for (name, value) in feed {
        let node = spec.node(name).unwrap();
        let r = match node.kind {
            NodeKind::Param => net.set_param(name, value.view()),
            _ => net.set_input(name, value.view()),
        };
        r.unwrap_or_else(|e| panic!("feeding `{name}`: {e}"));
    }
}

pub fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
}

pub fn assert_arrays_close(what: &str, gen: &ArrayViewD<'_, f64>, oracle: &ArrayViewD<'_, f64>) {
    assert_eq!(
        gen.shape(),
        oracle.shape(),
        "{what}: generated shape vs graph shape"
    );
    for (i, (g, o)) in gen.iter().zip(oracle.iter()).enumerate() {
        assert!(
            g.is_finite() && rel_close(*g, *o, 1e-12),
            "{what}[{i}]: generated {g:e} vs graph {o:e}"
        );
    }
}

/// Which nodes the generated plan should give a gradient: those on a path from a param or a
/// `#[grad]` input to the loss (computed here from the spec, independently of the macro).
pub fn expected_gradients(spec: &NetworkSpec) -> Vec<bool> {
    let idx = |name: &str| spec.nodes.iter().position(|n| n.name == name).unwrap();
    let mut from_leaf: Vec<bool> = spec
        .nodes
        .iter()
        .map(|n| matches!(n.kind, NodeKind::Param | NodeKind::Input { grad: true }))
        .collect();
    // `spec.nodes` is in forward order: every node after its arguments.
    for (i, n) in spec.nodes.iter().enumerate() {
        for a in n.args.iter() {
            assert!(
                idx(a) < i,
                "spec order: `{a}` must come before `{}`",
                n.name
            );
            if from_leaf[idx(a)] {
                from_leaf[i] = true;
            }
        }
    }
    let mut feeds_loss = vec![false; spec.nodes.len()];
    let mut stack = vec![idx(&spec.loss)];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut feeds_loss[i], true) {
            stack.extend(spec.nodes[i].args.iter().map(|a| idx(a)));
        }
    }
    (0..spec.nodes.len())
        .map(|i| from_leaf[i] && feeds_loss[i])
        .collect()
}

/// What one comparison checked.
#[derive(Debug)]
pub struct Checked {
    pub loss: f64,
    pub values: usize,
    /// The names whose gradients were compared.
    pub grads: Vec<&'static str>,
}

/// Feeds `feed` to `net` and to the graph rebuilt from `net.spec()`, runs both (generated
/// forward/backward; graph `topological_sort` + `forward_and_backward`), and asserts that the
/// loss, every node's value, and every gradient the generated network computes agree to
/// 1e-12 relative, with the node's shape. `dims` binds the named dims used in `feed`.
pub fn compare_with_graph<N: Network<Elem = f64>>(
    net: &mut N,
    feed: &Feed,
    dims: &[(&str, usize)],
) -> Checked {
    let spec = &net.spec().clone();
    feed_net(net, feed);
    let loss = net.forward().unwrap();
    net.backward().unwrap();
    // `forward` computes what the loss needs; outputs off that path are computed on demand.
    for output in spec.outputs.iter() {
        let v = net.evaluate(&**output).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{}.{output}", spec.name);
    }

    let (mut graph, ids) = Graph::<f64>::from_spec(spec).unwrap();
    assert_eq!(ids.len(), spec.nodes.len());
    let id_of = |name: &str| ids[spec.nodes.iter().position(|n| n.name == name).unwrap()];
    let order = graph
        .topological_sort(feed.iter().map(|(n, v)| (id_of(n), v.clone())))
        .unwrap();
    let cost = graph.find(&spec.loss).unwrap();
    assert_eq!(cost, id_of(&spec.loss));
    let oracle_loss = graph.forward_and_backward(&order, cost).unwrap();
    assert!(
        loss.is_finite() && rel_close(loss, oracle_loss, 1e-12),
        "{}: loss: generated {loss:e} vs graph {oracle_loss:e}",
        spec.name
    );

    let has_grad = expected_gradients(spec);
    let mut checked = Checked {
        loss,
        values: 0,
        grads: Vec::new(),
    };
    for (k, node) in spec.nodes.iter().enumerate() {
        let what = format!("{}.{}", spec.name, node.name);
        let shape = concrete(declared(node), dims);
        let v = net.value(&*node.name).unwrap();
        assert_eq!(v.shape(), &shape[..], "{what}: value shape vs declared");
        let ov = graph
            .value(ids[k])
            .unwrap_or_else(|e| panic!("{what}: graph has no value: {e}"));
        assert_arrays_close(&format!("{what} value"), &v, &ov);
        checked.values += 1;

        match net.grad(&*node.name) {
            Ok(g) => {
                assert!(has_grad[k], "{what}: generated a gradient nobody needs");
                let og = graph
                    .gradient(ids[k])
                    .unwrap_or_else(|e| panic!("{what}: graph has no gradient: {e}"));
                assert_eq!(
                    g.shape(),
                    &shape[..],
                    "{what}: gradient shape vs node shape"
                );
                assert_arrays_close(&format!("{what} grad"), &g, &og);
                checked.grads.push(static_name(&node.name));
            }
            Err(e) => {
                assert!(!has_grad[k], "{what}: expected a gradient, got {e}");
                assert!(
                    matches!(&e, Error::NoGradient { name, .. } if *name == node.name),
                    "{what}: {e:?}"
                );
            }
        }
    }
    // Every param is trained: each has a gradient that was compared.
    for node in spec.nodes.iter() {
        if matches!(node.kind, NodeKind::Param | NodeKind::Input { grad: true }) {
            assert!(
                checked.grads.contains(&&*node.name),
                "{}: no gradient compared for leaf `{}`",
                spec.name,
                node.name
            );
        }
    }
    checked
}

/// Sets element `j` (in logical order) of the `k`-th param to `f(old)` through
/// `visit_params`, and returns the old value.
pub fn set_param_element<N: Network<Elem = f64>>(
    net: &mut N,
    k: usize,
    j: usize,
    f: impl Fn(f64) -> f64,
) -> f64 {
    let mut old = None;
    net.visit_params(&mut |p| {
        if p.index == k {
            let x = p.value.into_iter().nth(j).unwrap();
            old = Some(*x);
            *x = f(*x);
        }
    });
    old.unwrap_or_else(|| panic!("no param with index {k}"))
}

/// Whether a central difference (step 1e-5) agrees with an analytic derivative.
pub fn fd_close(numeric: f64, analytic: f64) -> bool {
    (numeric - analytic).abs() <= 1e-7 + 1e-6 * analytic.abs()
}

/// Checks every gradient the generated network computes for its params and `#[grad]` inputs
/// against central finite differences of its own `forward`, perturbing params through
/// `visit_params` and inputs through `set_input`. Leaves `net` as fed and returns how many
/// partial derivatives were checked.
pub fn check_finite_differences<N: Network<Elem = f64>>(net: &mut N, feed: &Feed) -> usize {
    const H: f64 = 1e-5;
    let spec = &net.spec().clone();
    feed_net(net, feed);
    net.forward_backward().unwrap();

    // Analytic gradients, copied before any perturbation.
    let mut param_grads: Vec<(String, ArrayD<f64>)> = Vec::new();
    net.visit_params(&mut |p| param_grads.push((p.name.to_string(), p.grad.to_owned())));
    let input_grads: Vec<(&'static str, ArrayD<f64>)> = spec
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Input { grad: true })
        .map(|n| (static_name(&n.name), net.grad(&*n.name).unwrap().to_owned()))
        .collect();

    let mut count = 0;
    let check = |what: &str, j: usize, numeric: f64, analytic: f64| {
        assert!(
            fd_close(numeric, analytic),
            "{}: d loss / d {what}[{j}]: analytic {analytic:e}, finite differences {numeric:e}",
            spec.name
        );
    };

    for (k, (name, grad)) in param_grads.iter().enumerate() {
        for j in 0..grad.len() {
            let orig = set_param_element(net, k, j, |x| x + H);
            let lp = net.forward().unwrap();
            set_param_element(net, k, j, |_| orig - H);
            let lm = net.forward().unwrap();
            // Restore the exact original value.
            set_param_element(net, k, j, |_| orig);
            check(
                name,
                j,
                (lp - lm) / (2.0 * H),
                grad.iter().nth(j).copied().unwrap(),
            );
            count += 1;
        }
    }

    for (name, grad) in &input_grads {
        let orig = feed.iter().find(|(n, _)| n == name).unwrap().1.clone();
        for j in 0..grad.len() {
            let mut x = orig.clone();
            *x.iter_mut().nth(j).unwrap() += H;
            net.set_input(name, x.view()).unwrap();
            let lp = net.forward().unwrap();
            let mut x = orig.clone();
            *x.iter_mut().nth(j).unwrap() -= H;
            net.set_input(name, x.view()).unwrap();
            let lm = net.forward().unwrap();
            check(
                name,
                j,
                (lp - lm) / (2.0 * H),
                grad.iter().nth(j).copied().unwrap(),
            );
            count += 1;
        }
        net.set_input(name, orig.view()).unwrap();
    }

    // The network is back where it was: the same loss and gradients.
    net.forward_backward().unwrap();
    let mut k = 0;
    net.visit_params(&mut |p| {
        assert_eq!(p.grad, param_grads[k].1.view(), "restored `{}`", p.name);
        k += 1;
    });
    count
}

// ---------------------------------------------------------------------------------------
// The fused training step against forward_backward + sgd.
// ---------------------------------------------------------------------------------------

/// Uniform values in [-1, 1) of `shape`, from `seed`.
pub fn rand(seed: u64, shape: &[usize]) -> ArrayD<f64> {
    Rng::new(seed).array(shape, 1.0)
}

/// Feeds for [`fused_equals_unfused`] from input names and shapes: at step `s`, input `i`
/// gets `rand(10 s + i, shape)`.
pub fn random_inputs<'a>(inputs: &'a [(&'static str, &'a [usize])]) -> impl Fn(usize) -> Feed + 'a {
    move |step| {
        inputs
            .iter()
            .enumerate()
            .map(|(i, &(name, shape))| (name, rand((step * 10 + i) as u64, shape)))
            .collect()
    }
}

/// Every param of `net`, by name, in spec order.
pub fn params_of(net: &impl Network<Elem = f64>) -> Vec<(String, ArrayD<f64>)> {
    net.spec()
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Param)
        .map(|n| (n.name.to_string(), net.value(&*n.name).unwrap().to_owned()))
        .collect()
}

/// Runs `steps` fused (`sgd_step`) and unfused (`forward_backward` + `miniflow::sgd`) steps
/// from the same random params, feeding `feeds(step)`, and compares the losses and every
/// param after each step.
pub fn fused_equals_unfused<N: Network<Elem = f64> + Default>(
    feeds: impl Fn(usize) -> Feed,
    steps: usize,
) {
    let (mut fused, mut plain) = (N::default(), N::default());
    let spec = &fused.spec().clone();
    // Every named dim at 1: only the params of this feed are used.
    let dims: Vec<(&str, usize)> = spec
        .nodes
        .iter()
        .flat_map(declared)
        .filter_map(|d| match d {
            DimSpec::Named(name) => Some((*name, 1)),
            DimSpec::Fixed(_) => None,
        })
        .collect();
    let start = random_feed(spec, &dims, 99);
    for (name, v) in &start {
        if spec.node(name).unwrap().kind == NodeKind::Param {
            fused.set_param(name, v.view()).unwrap();
            plain.set_param(name, v.view()).unwrap();
        }
    }
    for step in 0..steps {
        for (name, v) in feeds(step) {
            fused.set_input(name, v.view()).unwrap();
            plain.set_input(name, v.view()).unwrap();
        }
        let lf = fused.sgd_step(0.3).unwrap();
        let lp = plain.forward_backward().unwrap();
        miniflow::sgd(&mut plain, 0.3).unwrap();
        assert!(
            (lf - lp).abs() <= 1e-12 * lp.abs().max(1.0),
            "{}: loss {lf} vs {lp}",
            spec.name
        );
        for ((name, a), (_, b)) in params_of(&fused).iter().zip(params_of(&plain)) {
            let worst = (a - &b).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(
                worst <= 1e-12,
                "{}.{name} after step {step}: differs by {worst}",
                spec.name
            );
        }
    }
    // The steps moved every param, from where it started and from a fresh network's value,
    // or the comparison proves nothing.
    let fresh = N::default();
    for (name, v) in params_of(&fused) {
        let before = &start.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_ne!(before, &v, "{name} never moved");
        assert_ne!(fresh.value(&name).unwrap(), v.view(), "{name} never moved");
    }
}

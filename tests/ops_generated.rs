//! The ops added after the seed's four, inside `network!`: each network is compared with the
//! runtime graph rebuilt from its own spec ([`Graph::from_spec`], literals included) on random
//! values (loss, every value and every gradient to 1e-12 relative, with the harness of
//! `generated_vs_graph.rs`), its gradients are checked against finite differences through the
//! `Network` API, and its fused `sgd_step` against `forward_backward` + `miniflow::sgd` (as in
//! `training_step.rs`), on networks where the plan must not update a param in place because a
//! later backward kernel of a new op reads it. Bad labels are a typed error at run time.

use miniflow::core::error::LabelValue;
use miniflow::ndarray::{array, Array, ArrayD, ArrayViewD, IxDyn};
use miniflow::{DimSpec, Error, Graph, Network, NetworkSpec, NodeKind};

// ---------------------------------------------------------------------------------------
// Networks under test.
// ---------------------------------------------------------------------------------------

miniflow::network! {
    /// relu, tanh and leaky_relu (a positive and a negative slope) side by side.
    pub struct Activations {
        #[grad] input x: [batch, 3];
        input y: [batch, 4];
        param W: [3, 4];
        param b: [4];

        z = linear(x, W, b);
        r = relu(z);
        t = tanh(z);
        k = leaky_relu(z, 0.1);
        n = leaky_relu(z, -0.3);
        a = add(r, t, k, n);
        loss l = mse(y, a);
    }
}

miniflow::network! {
    /// matmul, mul and sub, and the reductions to scalars (rank-0 nodes), `m` used twice.
    pub struct Products {
        input x: [batch, 3];
        #[grad] input q: [batch, 2];
        param A: [3, 2];
        param B: [2, 2];

        h = matmul(x, A);
        p = mul(h, q);
        d = sub(p, h);
        e = matmul(d, B);
        s = sum(e);
        m = mean(p);
        loss l = add(s, m, m);
    }
}

miniflow::network! {
    /// A classifier: softmax as an inference output, cross-entropy on the logits as the loss.
    pub struct Classifier {
        input x: [batch, 4];
        input labels: [batch];
        param W: [4, 3];
        param c: [3];

        z = linear(x, W, c);
        output p = softmax(z);
        loss ce = softmax_cross_entropy(z, labels);
    }
}

miniflow::network! {
    /// The classifier in f32.
    #[elem(f32)]
    pub struct Classifier32 {
        input x: [batch, 4];
        input labels: [batch];
        param W: [4, 3];
        param c: [3];

        z = linear(x, W, c);
        output p = softmax(z);
        loss ce = softmax_cross_entropy(z, labels);
    }
}

miniflow::network! {
    /// softmax on the loss path: its Jacobian-vector product is used.
    pub struct SoftmaxInLoss {
        #[grad] input x: [batch, 3];
        input y: [batch, 3];
        param W: [3, 3];

        z = matmul(x, W);
        s = softmax(z);
        loss l = mse(y, s);
    }
}

miniflow::network! {
    /// bce on a sigmoid's output and bce_logits on the logits, with the targets' gradient;
    /// `y` ([batch]) against `[batch, 1]` predictions, as mse pairs them.
    pub struct Binary {
        input x: [batch, 2];
        #[grad] input y: [batch];
        param w: [2, 1];
        param b: [1];

        z = linear(x, w, b);
        p = sigmoid(z);
        l1 = bce(y, p);
        l2 = bce_logits(y, z);
        loss l = add(l1, l2);
    }
}

miniflow::network! {
    /// `mul(w, h)`: the contribution to `h` reads `w` after `w`'s own contribution, so `w` must
    /// not be updated in place by the fused step.
    pub struct MulParam {
        input x: [4, 3];
        input y: [4, 2];
        param w: [4, 2];
        param u: [3, 2];
        param b: [2];

        h = linear(x, u, b);
        p = mul(w, h);
        loss l = mse(y, p);
    }
}

miniflow::network! {
    /// leaky_relu reads its input: `leaky_relu(w)`'s contribution reads `w` after the matmul's
    /// contribution to `w`.
    pub struct LeakyParam {
        input y: [2, 2];
        param w: [2, 2];

        a = leaky_relu(w, 0.2);
        o = matmul(a, w);
        loss l = mse(y, o);
    }
}

miniflow::network! {
    /// `matmul(W, x)` with `x` computed from `V`: the contribution to `x` reads `W` after
    /// `W`'s.
    pub struct MatmulLeft {
        input inp: [2, 3];
        input y: [2, 2];
        param W: [2, 2];
        param V: [3, 2];
        param c: [2];

        x = linear(inp, V, c);
        h = matmul(W, x);
        t = tanh(h);
        loss l = mse(y, t);
    }
}

miniflow::network! {
    /// A hidden relu layer, then cross-entropy and bce_logits heads on one set of logits.
    pub struct Deep {
        input x: [batch, 4];
        input labels: [batch];
        input t: [batch, 3];
        param W1: [4, 5];
        param b1: [5];
        param W2: [5, 3];
        param b2: [3];

        h = linear(x, W1, b1);
        r = relu(h);
        z = linear(r, W2, b2);
        ce = softmax_cross_entropy(z, labels);
        bl = bce_logits(t, z);
        loss l = add(ce, bl);
    }
}

// ---------------------------------------------------------------------------------------
// A tiny deterministic PRNG (splitmix64): no new dependencies.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn array(&mut self, shape: &[usize], scale: f64) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || scale * self.uniform())
    }
}

// ---------------------------------------------------------------------------------------
// The reusable harness.
// ---------------------------------------------------------------------------------------

/// A value for every leaf (input or param) of a network, by name.
type Feed = Vec<(&'static str, ArrayD<f64>)>;

/// The concrete shape of a declared shape, with named dims bound by `dims`.
fn concrete(shape: &[DimSpec], dims: &[(&str, usize)]) -> Vec<usize> {
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

/// Random values for every input and param of `spec`.
fn random_feed(spec: &NetworkSpec, dims: &[(&str, usize)], seed: u64) -> Feed {
    let mut rng = Rng::new(seed);
    spec.nodes
        .iter()
        .filter(|n| !matches!(n.kind, NodeKind::Op(_)))
        .map(|n| {
            let scale = match n.kind {
                NodeKind::Param => 0.8,
                _ => 2.0,
            };
            (n.name, rng.array(&concrete(n.shape, dims), scale))
        })
        .collect()
}

/// Feeds every leaf in `feed` to `net`: inputs with `set_input`, params with `set_param`.
fn feed_net<N: Network<Elem = f64>>(net: &mut N, feed: &Feed) {
    let spec = net.spec();
    for (name, value) in feed {
        let node = spec.node(name).unwrap();
        let r = match node.kind {
            NodeKind::Param => net.set_param(name, value.view()),
            _ => net.set_input(name, value.view()),
        };
        r.unwrap_or_else(|e| panic!("feeding `{name}`: {e}"));
    }
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
}

fn assert_arrays_close(what: &str, gen: &ArrayViewD<'_, f64>, oracle: &ArrayViewD<'_, f64>) {
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
fn expected_gradients(spec: &NetworkSpec) -> Vec<bool> {
    let idx = |name: &str| spec.nodes.iter().position(|n| n.name == name).unwrap();
    let mut from_leaf: Vec<bool> = spec
        .nodes
        .iter()
        .map(|n| matches!(n.kind, NodeKind::Param | NodeKind::Input { grad: true }))
        .collect();
    // `spec.nodes` is in forward order: every node after its arguments.
    for (i, n) in spec.nodes.iter().enumerate() {
        for a in n.args {
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
    let mut stack = vec![idx(spec.loss)];
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
struct Checked {
    loss: f64,
    values: usize,
    /// The names whose gradients were compared.
    grads: Vec<&'static str>,
}

/// Feeds `feed` to `net` and to the graph rebuilt from `net.spec()`, runs both (generated
/// forward/backward; graph `topological_sort` + `forward_and_backward`), and asserts that the
/// loss, every node's value, and every gradient the generated network computes agree to
/// 1e-12 relative, with the node's shape. `dims` binds the named dims used in `feed`.
fn compare_with_graph<N: Network<Elem = f64>>(
    net: &mut N,
    feed: &Feed,
    dims: &[(&str, usize)],
) -> Checked {
    let spec = net.spec();
    feed_net(net, feed);
    let loss = net.forward().unwrap();
    net.backward().unwrap();
    // `forward` computes what the loss needs; outputs off that path are computed on demand.
    for output in spec.outputs {
        let v = net.evaluate(output).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{}.{output}", spec.name);
    }

    let (mut graph, ids) = Graph::<f64>::from_spec(spec).unwrap();
    assert_eq!(ids.len(), spec.nodes.len());
    let id_of = |name: &str| ids[spec.nodes.iter().position(|n| n.name == name).unwrap()];
    let order = graph
        .topological_sort(feed.iter().map(|(n, v)| (id_of(n), v.clone())))
        .unwrap();
    let cost = graph.find(spec.loss).unwrap();
    assert_eq!(cost, id_of(spec.loss));
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
        let shape = concrete(node.shape, dims);
        let v = net.value(node.name).unwrap();
        assert_eq!(v.shape(), &shape[..], "{what}: value shape vs declared");
        let ov = graph
            .value(ids[k])
            .unwrap_or_else(|| panic!("{what}: graph has no value"));
        assert_arrays_close(&format!("{what} value"), &v, &ov);
        checked.values += 1;

        match net.grad(node.name) {
            Ok(g) => {
                assert!(has_grad[k], "{what}: generated a gradient nobody needs");
                let og = graph
                    .gradient(ids[k])
                    .unwrap_or_else(|| panic!("{what}: graph has no gradient"));
                assert_eq!(
                    g.shape(),
                    &shape[..],
                    "{what}: gradient shape vs node shape"
                );
                assert_arrays_close(&format!("{what} grad"), &g, &og);
                checked.grads.push(node.name);
            }
            Err(e) => {
                assert!(!has_grad[k], "{what}: expected a gradient, got {e}");
                assert!(
                    matches!(&e, Error::NoGradient { name, .. } if name == node.name),
                    "{what}: {e:?}"
                );
            }
        }
    }
    // Every param is trained: each has a gradient that was compared.
    for node in spec.nodes {
        if matches!(node.kind, NodeKind::Param | NodeKind::Input { grad: true }) {
            assert!(
                checked.grads.contains(&node.name),
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
fn set_param_element<N: Network<Elem = f64>>(
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
fn fd_close(numeric: f64, analytic: f64) -> bool {
    (numeric - analytic).abs() <= 1e-7 + 1e-6 * analytic.abs()
}

/// Checks every gradient the generated network computes for its params and `#[grad]` inputs
/// against central finite differences of its own `forward`, perturbing params through
/// `visit_params` and inputs through `set_input`. Leaves `net` as fed and returns how many
/// partial derivatives were checked.
fn check_finite_differences<N: Network<Elem = f64>>(net: &mut N, feed: &Feed) -> usize {
    const H: f64 = 1e-5;
    let spec = net.spec();
    feed_net(net, feed);
    net.forward_backward().unwrap();

    // Analytic gradients, copied before any perturbation.
    let mut param_grads: Vec<(&'static str, ArrayD<f64>)> = Vec::new();
    net.visit_params(&mut |p| param_grads.push((p.name, p.grad.to_owned())));
    let input_grads: Vec<(&'static str, ArrayD<f64>)> = spec
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Input { grad: true })
        .map(|n| (n.name, net.grad(n.name).unwrap().to_owned()))
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
// Feeds the new ops need: class labels and targets in [0, 1].
// ---------------------------------------------------------------------------------------

/// Replaces `name`'s value in `feed`.
fn set(feed: &mut Feed, name: &str, value: ArrayD<f64>) {
    let slot = feed.iter_mut().find(|(n, _)| *n == name).unwrap();
    assert_eq!(slot.1.shape(), value.shape(), "`{name}`");
    slot.1 = value;
}

/// `m` class indices below `classes`, as floats.
fn labels(m: usize, classes: usize, seed: u64) -> ArrayD<f64> {
    let mut rng = Rng::new(seed);
    ArrayD::from_shape_simple_fn(IxDyn(&[m]), || {
        (((rng.uniform() + 1.0) / 2.0 * classes as f64).floor()).min(classes as f64 - 1.0)
    })
}

/// Values in [0, 1].
fn targets(shape: &[usize], seed: u64) -> ArrayD<f64> {
    Rng::new(seed).array(shape, 1.0).mapv(f64::abs)
}

// ---------------------------------------------------------------------------------------
// Generated vs graph, and finite differences.
// ---------------------------------------------------------------------------------------

#[test]
fn activations_match_graph_and_finite_differences() {
    let mut net = Activations::new();
    for (seed, batch) in [(1, 5), (2, 1), (3, 8)] {
        let dims = [("batch", batch)];
        let feed = random_feed(net.spec(), &dims, seed);
        let c = compare_with_graph(&mut net, &feed, &dims);
        let mut grads = c.grads.clone();
        grads.sort_unstable();
        assert_eq!(grads, ["W", "a", "b", "k", "l", "n", "r", "t", "x", "z"]);
        // Every activation sees both signs, or the comparison misses a branch.
        let z = net.value("z").unwrap();
        assert!(batch == 1 || (z.iter().any(|&v| v > 0.0) && z.iter().any(|&v| v < 0.0)));
    }
    // The literals are in the spec, and the graph rebuilt from it used them.
    let spec = net.spec();
    assert_eq!(spec.node("k").unwrap().attrs, &[0.1]);
    assert_eq!(spec.node("n").unwrap().attrs, &[-0.3]);
    assert_eq!(spec.node("n").unwrap().args, &["z"]);
    assert!(spec.node("r").unwrap().attrs.is_empty());
    let z = net.value("z").unwrap().to_owned();
    let n = net.value("n").unwrap();
    for (z, n) in z.iter().zip(n.iter()) {
        assert_eq!(*n, if *z > 0.0 { *z } else { -0.3 * z });
    }

    let dims = [("batch", 3)];
    let feed = random_feed(net.spec(), &dims, 4);
    // W 12, b 4; x 9.
    assert_eq!(check_finite_differences(&mut net, &feed), 16 + 9);
}

#[test]
fn products_and_reductions_match_graph_and_finite_differences() {
    let mut net = Products::new();
    for (seed, batch) in [(11, 4), (12, 1), (13, 6)] {
        let dims = [("batch", batch)];
        let feed = random_feed(net.spec(), &dims, seed);
        let c = compare_with_graph(&mut net, &feed, &dims);
        assert_eq!(c.grads.len(), 10, "{:?}", c.grads);
        // sum and mean are rank-0 nodes, with rank-0 gradients.
        for name in ["s", "m", "l"] {
            assert_eq!(net.value(name).unwrap().shape(), &[] as &[usize], "{name}");
            assert_eq!(net.grad(name).unwrap().shape(), &[] as &[usize], "{name}");
        }
        assert_eq!(net.grad("m").unwrap()[[]], 2.0, "m is used twice");
        let e = net.value("e").unwrap();
        assert!(rel_close(net.value("s").unwrap()[[]], e.sum(), 1e-12));
        let (s, m) = (net.value("s").unwrap()[[]], net.value("m").unwrap()[[]]);
        assert!(rel_close(c.loss, s + 2.0 * m, 1e-15));
    }
    let dims = [("batch", 3)];
    let feed = random_feed(net.spec(), &dims, 14);
    // A 6, B 4; q 6.
    assert_eq!(check_finite_differences(&mut net, &feed), 10 + 6);
}

#[test]
fn classifier_matches_graph_and_finite_differences() {
    let mut net = Classifier::new();
    for (seed, batch) in [(21, 6), (22, 1), (23, 9)] {
        let dims = [("batch", batch)];
        let mut feed = random_feed(net.spec(), &dims, seed);
        set(&mut feed, "labels", labels(batch, 3, seed));
        let c = compare_with_graph(&mut net, &feed, &dims);
        let mut grads = c.grads.clone();
        grads.sort_unstable();
        assert_eq!(
            grads,
            ["W", "c", "ce", "z"],
            "no gradient for the labels or the output"
        );
        assert!(matches!(net.grad("labels"), Err(Error::NoGradient { .. })));
        // The output is a distribution per row.
        let p = net.evaluate("p").unwrap();
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-15);
        }
    }
    let dims = [("batch", 5)];
    let mut feed = random_feed(net.spec(), &dims, 24);
    set(&mut feed, "labels", labels(5, 3, 24));
    assert_eq!(check_finite_differences(&mut net, &feed), 12 + 3);
}

#[test]
fn classifier_in_f32_agrees_with_f64() {
    let (mut n64, mut n32) = (Classifier::new(), Classifier32::new());
    let dims = [("batch", 7)];
    let mut feed = random_feed(n64.spec(), &dims, 25);
    set(&mut feed, "labels", labels(7, 3, 25));
    feed_net(&mut n64, &feed);
    for (name, value) in &feed {
        let v = value.mapv(|v| v as f32);
        let r = match n32.spec().node(name).unwrap().kind {
            NodeKind::Param => n32.set_param(name, v.view()),
            _ => n32.set_input(name, v.view()),
        };
        r.unwrap();
    }
    let (l64, l32) = (
        n64.forward_backward().unwrap(),
        n32.forward_backward().unwrap(),
    );
    assert!(
        (l64 - f64::from(l32)).abs() < 1e-5 * l64.abs(),
        "{l64} vs {l32}"
    );
    let (g64, g32) = (n64.grad("W").unwrap(), n32.grad("W").unwrap());
    for (a, b) in g64.iter().zip(g32.iter()) {
        assert!((a - f64::from(*b)).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn softmax_in_the_loss_matches_graph_and_finite_differences() {
    let mut net = SoftmaxInLoss::new();
    for (seed, batch) in [(31, 4), (32, 1)] {
        let dims = [("batch", batch)];
        let feed = random_feed(net.spec(), &dims, seed);
        let c = compare_with_graph(&mut net, &feed, &dims);
        assert!(c.grads.contains(&"s") && c.grads.contains(&"x"));
    }
    let dims = [("batch", 3)];
    let feed = random_feed(net.spec(), &dims, 33);
    assert_eq!(check_finite_differences(&mut net, &feed), 9 + 9);
}

#[test]
fn binary_losses_match_graph_and_finite_differences() {
    let mut net = Binary::new();
    for (seed, batch) in [(41, 6), (42, 2)] {
        let dims = [("batch", batch)];
        let mut feed = random_feed(net.spec(), &dims, seed);
        set(&mut feed, "y", targets(&[batch], seed));
        let c = compare_with_graph(&mut net, &feed, &dims);
        let mut grads = c.grads.clone();
        grads.sort_unstable();
        assert_eq!(grads, ["b", "l", "l1", "l2", "p", "w", "y", "z"]);
        // For p = sigmoid(z) away from saturation the two losses agree.
        let (l1, l2) = (net.value("l1").unwrap()[[]], net.value("l2").unwrap()[[]]);
        assert!(rel_close(l1, l2, 1e-12), "{l1} vs {l2}");
    }
    let dims = [("batch", 3)];
    let mut feed = random_feed(net.spec(), &dims, 43);
    set(&mut feed, "y", targets(&[3], 43));
    assert_eq!(check_finite_differences(&mut net, &feed), 3 + 3);
}

#[test]
fn deep_matches_graph_and_finite_differences() {
    let mut net = Deep::new();
    for (seed, batch) in [(51, 5), (52, 3)] {
        let dims = [("batch", batch)];
        let mut feed = random_feed(net.spec(), &dims, seed);
        set(&mut feed, "labels", labels(batch, 3, seed));
        set(&mut feed, "t", targets(&[batch, 3], seed));
        compare_with_graph(&mut net, &feed, &dims);
    }
    let dims = [("batch", 4)];
    let mut feed = random_feed(net.spec(), &dims, 53);
    set(&mut feed, "labels", labels(4, 3, 53));
    set(&mut feed, "t", targets(&[4, 3], 53));
    assert_eq!(check_finite_differences(&mut net, &feed), 20 + 5 + 15 + 3);
}

#[test]
fn fused_step_nets_match_graph() {
    compare_with_graph(
        &mut MulParam::new(),
        &random_feed(MulParam::new().spec(), &[], 61),
        &[],
    );
    compare_with_graph(
        &mut LeakyParam::new(),
        &random_feed(LeakyParam::new().spec(), &[], 62),
        &[],
    );
    compare_with_graph(
        &mut MatmulLeft::new(),
        &random_feed(MatmulLeft::new().spec(), &[], 63),
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// Bad labels at run time.
// ---------------------------------------------------------------------------------------

#[test]
fn bad_labels_are_a_typed_error_not_a_panic() {
    let mut net = Classifier::new();
    let dims = [("batch", 4)];
    let mut feed = random_feed(net.spec(), &dims, 71);
    for (bad, row) in [(3.0, 1), (-1.0, 0), (0.5, 3), (f64::NAN, 2)] {
        let mut l = array![0.0, 1.0, 2.0, 1.0];
        l[row] = bad;
        set(&mut feed, "labels", l.into_dyn());
        feed_net(&mut net, &feed);
        let want = Error::BadLabel {
            node: "ce".into(),
            labels: "labels".into(),
            row,
            value: LabelValue(bad),
            classes: 3,
        };
        assert_eq!(net.forward().unwrap_err(), want);
        assert_eq!(net.sgd_step(0.1).unwrap_err(), want);
        assert_eq!(net.backward().unwrap_err(), Error::BackwardBeforeForward);
        // The output does not need the labels.
        assert!(net.evaluate("p").is_ok());
    }
    assert_eq!(
        net.forward().unwrap_err().to_string(),
        "`ce`: row 2 of the labels `labels` is NaN, which is not a class index; labels must be \
         whole numbers 0, 1, ... below the number of classes, 3"
    );
    // The graph rebuilt from the spec says the same.
    let (mut g, ids) = Graph::<f64>::from_spec(net.spec()).unwrap();
    let order = g
        .topological_sort(feed.iter().map(|(n, v)| {
            (
                ids[net.spec().nodes.iter().position(|s| s.name == *n).unwrap()],
                v.clone(),
            )
        }))
        .unwrap();
    let cost = g.find("ce").unwrap();
    assert!(matches!(
        g.forward_and_backward(&order, cost),
        Err(Error::BadLabel { row: 2, .. })
    ));
}

// ---------------------------------------------------------------------------------------
// The fused training step against forward_backward + sgd.
// ---------------------------------------------------------------------------------------

fn params_of(net: &impl Network<Elem = f64>) -> Vec<(String, ArrayD<f64>)> {
    net.spec()
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Param)
        .map(|n| (n.name.to_string(), net.value(n.name).unwrap().to_owned()))
        .collect()
}

/// Runs `steps` fused and unfused steps from the same params, feeding `feeds(step)`, and
/// compares the losses and every param after each step.
fn fused_equals_unfused<N: Network<Elem = f64> + Default>(
    feeds: impl Fn(usize) -> Vec<(&'static str, ArrayD<f64>)>,
    steps: usize,
) {
    let (mut fused, mut plain) = (N::default(), N::default());
    let spec = fused.spec();
    let start = random_feed(spec, &[("batch", 1)], 99);
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
        miniflow::sgd(&mut plain, 0.3);
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
    // The steps moved every param, or the comparison proves nothing.
    for (name, v) in params_of(&fused) {
        let before = &start.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_ne!(before, &v, "{name} never moved");
    }
}

fn rand(seed: u64, shape: &[usize]) -> ArrayD<f64> {
    Rng::new(seed).array(shape, 1.0)
}

#[test]
fn fused_step_with_mul_reading_a_param() {
    fused_equals_unfused::<MulParam>(
        |s| {
            vec![
                ("x", rand(s as u64, &[4, 3])),
                ("y", rand(100 + s as u64, &[4, 2])),
            ]
        },
        4,
    );
}

#[test]
fn fused_step_with_leaky_relu_reading_a_param() {
    fused_equals_unfused::<LeakyParam>(|s| vec![("y", rand(s as u64, &[2, 2]))], 4);
}

#[test]
fn fused_step_with_matmul_reading_a_param_after_its_update() {
    fused_equals_unfused::<MatmulLeft>(
        |s| {
            vec![
                ("inp", rand(s as u64, &[2, 3])),
                ("y", rand(50 + s as u64, &[2, 2])),
            ]
        },
        4,
    );
}

#[test]
fn fused_step_with_every_new_op() {
    fused_equals_unfused::<Activations>(
        |s| {
            vec![
                ("x", rand(s as u64, &[5, 3])),
                ("y", rand(9 + s as u64, &[5, 4])),
            ]
        },
        3,
    );
    fused_equals_unfused::<Products>(
        |s| {
            vec![
                ("x", rand(s as u64, &[3, 3])),
                ("q", rand(7 + s as u64, &[3, 2])),
            ]
        },
        3,
    );
    fused_equals_unfused::<SoftmaxInLoss>(
        |s| {
            vec![
                ("x", rand(s as u64, &[4, 3])),
                ("y", rand(3 + s as u64, &[4, 3])),
            ]
        },
        3,
    );
    fused_equals_unfused::<Binary>(
        |s| {
            vec![
                ("x", rand(s as u64, &[6, 2])),
                ("y", targets(&[6], s as u64)),
            ]
        },
        3,
    );
    fused_equals_unfused::<Classifier>(
        |s| {
            vec![
                ("x", rand(s as u64, &[6, 4])),
                ("labels", labels(6, 3, s as u64)),
            ]
        },
        3,
    );
    fused_equals_unfused::<Deep>(
        |s| {
            vec![
                ("x", rand(s as u64, &[5, 4])),
                ("labels", labels(5, 3, s as u64)),
                ("t", targets(&[5, 3], s as u64)),
            ]
        },
        3,
    );
}

#[test]
fn training_the_classifier_lowers_its_loss() {
    // Two separable blobs of three classes; a few hundred fused steps must fit them.
    let mut net = Classifier::new();
    let x = Array::from_shape_fn((9, 4), |(i, j)| {
        let class = i % 3;
        (if j == class { 2.0 } else { 0.0 }) + 0.1 * ((i * 4 + j) as f64).sin()
    })
    .into_dyn();
    let y = ArrayD::from_shape_fn(IxDyn(&[9]), |i| (i[0] % 3) as f64);
    net.set_input("x", x.view()).unwrap();
    net.set_input("labels", y.view()).unwrap();
    let first = net.forward().unwrap();
    assert!(
        (first - 3f64.ln()).abs() < 1e-12,
        "zero params: uniform, ln 3"
    );
    let mut last = first;
    for _ in 0..300 {
        last = net.sgd_step(0.5).unwrap();
    }
    assert!(last < 0.05, "{first} -> {last}");
    let p = net.evaluate("p").unwrap();
    for (i, row) in p.rows().into_iter().enumerate() {
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
        assert_eq!(best, i % 3, "row {i}: {row}");
    }
}

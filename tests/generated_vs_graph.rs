//! Generated networks against the runtime graph: every network compiled by `network!` is
//! rebuilt as a [`Graph`] from its own spec (the oracle, written like the seed's MiniFlow),
//! both are fed the same random inputs and params, and the loss, every node's value and every
//! gradient the generated code computes must agree to 1e-12 (relative). The generated
//! gradients are also checked against central finite differences taken through the `Network`
//! API alone.

use miniflow::ndarray::{array, ArrayD, ArrayViewD, IxDyn};
use miniflow::{DimSpec, Error, Graph, Network, NetworkSpec, NodeKind};

// ---------------------------------------------------------------------------------------
// Networks under test.
// ---------------------------------------------------------------------------------------

miniflow::network! {
    /// The seed's test network, with the gradients of both inputs asked for.
    pub struct Course {
        #[grad] input X: [batch, 2];
        #[grad] input y: [batch];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

miniflow::network! {
    /// The course's `nn.py`: Linear(13->10) -> Sigmoid -> Linear(10->1) -> MSE.
    pub struct TwoLayer {
        input X: [batch, 13];
        input y: [batch];
        param W1: [13, 10];
        param b1: [10];
        param W2: [10, 1];
        param b2: [1];

        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}

miniflow::network! {
    /// Fan-out everywhere: `h` feeds `s` and `t`, `t` feeds `o` and `u`, `w2` is used by two
    /// linears, `x` (with `#[grad]`) by two linears, and `z` twice in one sum. Statements are
    /// out of order on purpose.
    pub struct FanOut {
        #[grad] input x: [batch, 4];
        input y: [batch];
        param w: [4, 3];
        param b: [3];
        param w2: [3, 1];
        param c: [1];
        param c2: [1];
        param wx: [4, 1];

        loss l = mse(y, v);
        v = add(o, u, z, z);
        z = linear(x, wx, c);
        h = linear(x, w, b);
        s = sigmoid(h);
        t = add(s, h);
        o = linear(t, w2, c);
        u = linear(t, w2, c2);
    }
}

miniflow::network! {
    /// A three-term sum with the same node twice: `add(a, a, q)`.
    pub struct AddTwice {
        input x: [n, 3];
        #[grad] input q: [n, 2];
        input y: [n, 1];
        param w: [3, 2];
        param b: [2];
        param v: [2, 1];
        param c: [1];

        a = linear(x, w, b);
        s = add(a, a, q);
        r = sigmoid(s);
        p = linear(r, v, c);
        loss l = mse(y, p);
    }
}

miniflow::network! {
    /// An output that needs only `x` (and params), and a loss that also needs `y`.
    pub struct WithOutput {
        input x: [batch, 3];
        input y: [batch];
        param w: [3, 2];
        param b: [2];
        param v: [2, 1];
        param c: [1];

        h = linear(x, w, b);
        s = sigmoid(h);
        output p = linear(s, v, c);
        loss l = mse(y, p);
    }
}

miniflow::network! {
    /// A loss that sums scalar nodes, one of them twice and one through a sigmoid: gradients
    /// flow through 0-d nodes with fan-out.
    pub struct ScalarSum {
        #[grad] input x: [batch, 2];
        input y: [batch];
        #[grad] input z: [batch, 2];
        param w: [2, 1];
        param b: [1];
        param v: [2, 2];
        param c: [2];

        p = linear(x, w, b);
        q = linear(x, v, c);
        s = sigmoid(q);
        l1 = mse(y, p);
        l2 = mse(z, s);
        t = sigmoid(l2);
        loss l = add(l1, t, l1);
    }
}

miniflow::network! {
    /// An output off the loss path with its own named dim, a scalar `#[grad]` input, and a
    /// param used twice by one op (`linear(W, W, b)`).
    pub struct OffPath {
        input x: [batch, 2];
        input y: [batch];
        input z: [k, 2];
        #[grad] input s0: [];
        param W: [2, 2];
        param b: [2];
        param v: [2, 1];
        param c: [1];

        h = linear(W, W, b);
        p = linear(x, h, b);
        o = linear(p, v, c);
        m = mse(y, o);
        loss l = add(m, s0);
        output q = linear(z, W, b);
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
// Tests.
// ---------------------------------------------------------------------------------------

#[test]
fn course_matches_graph_on_the_seed_numbers() {
    let mut net = Course::new();
    let feed: Feed = vec![
        ("X", array![[-1., -2.], [-1., -2.]].into_dyn()),
        ("y", array![1., 2.].into_dyn()),
        ("W", array![[2.], [3.]].into_dyn()),
        ("b", array![-3.].into_dyn()),
    ];
    let checked = compare_with_graph(&mut net, &feed, &[("batch", 2)]);
    assert!((checked.loss - 2.4999498960133932).abs() < 1e-12);
    assert_eq!(checked.values, 7);
    // X, y, W, b and the intermediates f and a (and the loss itself).
    let mut grads = checked.grads.clone();
    grads.sort_unstable();
    assert_eq!(grads, ["W", "X", "a", "b", "cost", "f", "y"]);
}

#[test]
fn course_matches_graph_on_random_values() {
    let mut net = Course::new();
    for (seed, batch) in [(1, 5), (2, 1), (3, 8)] {
        let dims = [("batch", batch)];
        let feed = random_feed(net.spec(), &dims, seed);
        compare_with_graph(&mut net, &feed, &dims);
    }
}

#[test]
fn course_gradients_match_finite_differences() {
    let mut net = Course::new();
    let dims = [("batch", 4)];
    let feed = random_feed(net.spec(), &dims, 11);
    // W: 2, b: 1, X: 8, y: 4.
    assert_eq!(check_finite_differences(&mut net, &feed), 15);
}

#[test]
fn two_layer_matches_graph_at_batch_11_then_3() {
    let mut net = TwoLayer::new();
    let dims = [("batch", 11)];
    let feed = random_feed(net.spec(), &dims, 21);
    let c = compare_with_graph(&mut net, &feed, &dims);
    assert_eq!(net.value("l1").unwrap().shape(), &[11, 10]);
    let mut grads = c.grads.clone();
    grads.sort_unstable();
    // No gradient for X or y (no #[grad]); every param and intermediate has one.
    assert_eq!(grads, ["W1", "W2", "b1", "b2", "cost", "l1", "l2", "s1"]);

    // Same instance, smaller batch: buffers resize.
    let dims = [("batch", 3)];
    let feed3 = random_feed(net.spec(), &dims, 22);
    compare_with_graph(&mut net, &feed3, &dims);
    assert_eq!(net.value("l1").unwrap().shape(), &[3, 10]);
    assert_eq!(net.grad("s1").unwrap().shape(), &[3, 10]);
    assert_eq!(net.grad("b1").unwrap().shape(), &[10]);

    // And back to 11: the same numbers as the first run.
    let again = compare_with_graph(&mut net, &feed, &[("batch", 11)]);
    assert_eq!(again.loss, c.loss);
    assert_eq!(net.value("l1").unwrap().shape(), &[11, 10]);
}

#[test]
fn two_layer_gradients_match_finite_differences() {
    let mut net = TwoLayer::new();
    let dims = [("batch", 3)];
    let feed = random_feed(net.spec(), &dims, 23);
    assert_eq!(
        check_finite_differences(&mut net, &feed),
        13 * 10 + 10 + 10 + 1
    );
}

#[test]
fn fan_out_matches_graph() {
    let mut net = FanOut::new();
    for (seed, batch) in [(31, 6), (32, 2)] {
        let dims = [("batch", batch)];
        let feed = random_feed(net.spec(), &dims, seed);
        let c = compare_with_graph(&mut net, &feed, &dims);
        let mut grads = c.grads.clone();
        grads.sort_unstable();
        assert_eq!(
            grads,
            ["b", "c", "c2", "h", "l", "o", "s", "t", "u", "v", "w", "w2", "wx", "x", "z"]
        );
    }
    // The spec is in forward order even though the source is not.
    let order: Vec<&str> = net.spec().nodes.iter().map(|n| n.name).collect();
    assert_eq!(
        order,
        ["x", "y", "w", "b", "w2", "c", "c2", "wx", "z", "h", "s", "t", "o", "u", "v", "l"]
    );
    assert_eq!(net.spec().loss, "l");
}

#[test]
fn fan_out_gradients_match_finite_differences() {
    let mut net = FanOut::new();
    let dims = [("batch", 3)];
    let feed = random_feed(net.spec(), &dims, 33);
    // w 12, b 3, w2 3, c 1, c2 1, wx 4; x 12.
    assert_eq!(check_finite_differences(&mut net, &feed), 24 + 12);
}

#[test]
fn add_with_a_repeated_argument_matches_graph() {
    let mut net = AddTwice::new();
    let dims = [("n", 4)];
    let feed = random_feed(net.spec(), &dims, 41);
    let c = compare_with_graph(&mut net, &feed, &dims);
    assert!(c.grads.contains(&"a") && c.grads.contains(&"q"));
    // d s / d a is 2: the gradient of `a` is twice that of `q` (both get g_s; a twice).
    let (ga, gq) = (net.grad("a").unwrap(), net.grad("q").unwrap());
    for (a, q) in ga.iter().zip(gq.iter()) {
        assert!(
            (a - 2.0 * q).abs() <= 1e-15 * q.abs().max(1e-300),
            "{a} vs 2*{q}"
        );
    }
    assert!(gq.iter().any(|&q| q != 0.0));
    // The sum itself: s = 2a + q.
    let (s, a) = (net.value("s").unwrap(), net.value("a").unwrap());
    let q = &feed.iter().find(|(n, _)| *n == "q").unwrap().1;
    for ((s, a), q) in s.iter().zip(a.iter()).zip(q.iter()) {
        assert_eq!(*s, a + a + q);
    }
}

#[test]
fn add_with_a_repeated_argument_matches_finite_differences() {
    let mut net = AddTwice::new();
    let dims = [("n", 3)];
    let feed = random_feed(net.spec(), &dims, 42);
    // w 6, b 2, v 2, c 1; q 6.
    assert_eq!(check_finite_differences(&mut net, &feed), 11 + 6);
}

#[test]
fn output_needs_only_its_inputs_and_the_loss_needs_all() {
    let mut net = WithOutput::new();
    assert_eq!(net.spec().outputs, ["p"]);
    let dims = [("batch", 5)];
    let feed = random_feed(net.spec(), &dims, 51);
    let without_y: Feed = feed.iter().filter(|(n, _)| *n != "y").cloned().collect();
    feed_net(&mut net, &without_y);

    // The output needs x, w, b, v, c: all fed, so it evaluates.
    let p = net.evaluate("p").unwrap().to_owned();
    assert_eq!(p.shape(), &[5, 1]);
    assert!(p.iter().all(|v| v.is_finite()));

    // The loss also needs y, which was not fed.
    let err = net.forward().unwrap_err();
    assert_eq!(
        err,
        Error::MissingFeed {
            input: "y".into(),
            needed_by: "l".into()
        }
    );
    assert_eq!(err.to_string(), "input `y` was not fed, but `l` needs it");
    let err = net.evaluate("l").unwrap_err();
    assert!(
        matches!(err, Error::MissingFeed { ref input, .. } if input == "y"),
        "{err}"
    );
    assert_eq!(net.backward().unwrap_err(), Error::BackwardBeforeForward);

    // Feed y: the whole network agrees with the graph, and the output evaluated before is
    // the graph's value of `p`.
    let c = compare_with_graph(&mut net, &feed, &dims);
    assert!(c.grads.contains(&"p"));
    let p_now = net.value("p").unwrap();
    assert_arrays_close("evaluated p vs p after forward", &p.view(), &p_now);
    let again = net.evaluate("p").unwrap().to_owned();
    assert_eq!(again, p);
}

#[test]
fn output_network_matches_finite_differences() {
    let mut net = WithOutput::new();
    let dims = [("batch", 4)];
    let feed = random_feed(net.spec(), &dims, 52);
    assert_eq!(check_finite_differences(&mut net, &feed), 6 + 2 + 2 + 1);
}

#[test]
fn scalar_sum_loss_matches_graph() {
    let mut net = ScalarSum::new();
    for (seed, batch) in [(71, 4), (72, 1)] {
        let dims = [("batch", batch)];
        let feed = random_feed(net.spec(), &dims, seed);
        let c = compare_with_graph(&mut net, &feed, &dims);
        assert_eq!(c.grads.len(), 13, "all but y: {:?}", c.grads);
        // d l / d l1 = 2 (used twice), d l / d t = 1.
        assert_eq!(net.grad("l1").unwrap()[[]], 2.0);
        assert_eq!(net.grad("t").unwrap()[[]], 1.0);
        let l = net.value("l1").unwrap()[[]] * 2.0 + net.value("t").unwrap()[[]];
        assert!(rel_close(c.loss, l, 1e-15));
    }
}

#[test]
fn scalar_sum_loss_matches_finite_differences() {
    let mut net = ScalarSum::new();
    let dims = [("batch", 3)];
    let feed = random_feed(net.spec(), &dims, 73);
    // w 2, b 1, v 4, c 2; x 6, z 6.
    assert_eq!(check_finite_differences(&mut net, &feed), 9 + 12);
}

#[test]
fn off_path_output_scalar_input_and_param_twice_in_one_op() {
    let mut net = OffPath::new();
    let dims = [("batch", 3), ("k", 5)];
    let feed = random_feed(net.spec(), &dims, 81);
    let without_z: Feed = feed.iter().filter(|(n, _)| *n != "z").cloned().collect();
    feed_net(&mut net, &without_z);
    // The loss does not need z; the output does.
    let loss = net.forward_backward().unwrap();
    assert_eq!(
        net.evaluate("q").unwrap_err(),
        Error::MissingFeed {
            input: "z".into(),
            needed_by: "q".into()
        }
    );
    let c = compare_with_graph(&mut net, &feed, &dims);
    assert_eq!(c.loss, loss);
    assert_eq!(net.value("q").unwrap().shape(), &[5, 2]);
    // q is off the loss path: no gradient. s0 adds 1 to the loss: gradient 1.
    assert!(matches!(net.grad("q"), Err(Error::NoGradient { .. })));
    assert!(!c.grads.contains(&"q"));
    assert_eq!(net.grad("s0").unwrap()[[]], 1.0);
    assert_eq!(net.grad("s0").unwrap().shape(), &[] as &[usize]);
}

#[test]
fn off_path_matches_finite_differences() {
    let mut net = OffPath::new();
    let dims = [("batch", 4), ("k", 2)];
    let feed = random_feed(net.spec(), &dims, 82);
    // W 4, b 2, v 2, c 1; s0 1.
    assert_eq!(check_finite_differences(&mut net, &feed), 9 + 1);
}

/// The harness itself must be able to fail: a corrupted oracle value is caught.
#[test]
#[should_panic(expected = "generated")]
fn harness_catches_a_mismatch() {
    let a = array![1.0, 2.0].into_dyn();
    let b = array![1.0, 2.0 + 1e-9].into_dyn();
    assert_arrays_close("probe", &a.view(), &b.view());
}

#[test]
fn finite_difference_check_can_fail() {
    let mut net = Course::new();
    let dims = [("batch", 2)];
    let feed = random_feed(net.spec(), &dims, 61);
    feed_net(&mut net, &feed);
    net.forward_backward().unwrap();
    let g = net.grad("W").unwrap()[[0, 0]];
    let h = 1e-5;
    let orig = set_param_element(&mut net, 0, 0, |w| w + h);
    let lp = net.forward().unwrap();
    set_param_element(&mut net, 0, 0, |_| orig - h);
    let lm = net.forward().unwrap();
    let numeric = (lp - lm) / (2.0 * h);
    assert!(fd_close(numeric, g), "{numeric:e} vs {g:e}");
    assert!(!fd_close(numeric, g * 1.001 + 1e-6));
    assert!(!fd_close(numeric, -g));
    assert!(
        g.abs() > 1e-4,
        "the probe gradient is not negligible: {g:e}"
    );
}

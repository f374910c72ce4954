//! The ops added after the seed's four, inside `network!`: each network is compared with the
//! runtime graph rebuilt from its own spec ([`Graph::from_spec`], literals included) on random
//! values (loss, every value and every gradient to 1e-12 relative, with the harness in
//! `common/mod.rs` that `generated_vs_graph.rs` uses too), its gradients are checked against
//! finite differences through the `Network` API, and its fused `sgd_step` against
//! `forward_backward` + `miniflow::sgd` (as in `training_step.rs`), on networks where the plan
//! must not update a param in place because a later backward kernel of a new op reads it. Bad
//! labels are a typed error at run time.

use crate::common;

use common::{
    check_finite_differences, compare_with_graph, feed_net, fused_equals_unfused, rand,
    random_feed, rel_close, Feed, Rng,
};
use miniflow::error::LabelValue;
use miniflow::ndarray::{array, Array, ArrayD, IxDyn};
use miniflow::{Error, Graph, Network, NodeKind};

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
    assert_eq!(spec.node("k").unwrap().attrs.as_ref(), &[0.1]);
    assert_eq!(spec.node("n").unwrap().attrs.as_ref(), &[-0.3]);
    assert_eq!(spec.node("n").unwrap().args.as_ref(), &["z"]);
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
         whole numbers 0, 1, ... below the number of classes, 3 (class indices, not one-hot rows \
         or probabilities: for those, pass the index of each row's largest entry, its argmax)"
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
    let mut net = Classifier::zeroed();
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

//! Generated networks against the runtime graph: every network compiled by `network!` is
//! rebuilt as a [`Graph`] from its own spec (the oracle, written like the seed's MiniFlow),
//! both are fed the same random inputs and params, and the loss, every node's value and every
//! gradient the generated code computes must agree to 1e-12 (relative). The generated
//! gradients are also checked against central finite differences taken through the `Network`
//! API alone.

use crate::common;

use common::nets::{Course, TwoLayer};

use common::{
    assert_arrays_close, check_finite_differences, compare_with_graph, fd_close, feed_net,
    random_feed, rel_close, set_param_element, Feed,
};
use miniflow::ndarray::array;
use miniflow::{Error, Network};

// ---------------------------------------------------------------------------------------
// Networks under test.
// ---------------------------------------------------------------------------------------

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
    let order: Vec<&str> = net.spec().nodes.iter().map(|n| &*n.name).collect();
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
    assert_eq!(net.spec().outputs.as_ref(), ["p"]);
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

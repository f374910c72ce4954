//! The known pitfalls of the seed's MiniFlow (DESIGN.md, section 1), each pinned with real
//! numbers: MSE shapes, fan-out sums, db's shape, integer-looking inputs, missing feeds, a
//! named loss, and the typed run-time errors of the `Network` API.

use crate::common;

use common::nets::Course;

use common::rel_close;
use miniflow::ndarray::{array, Array1, Array2, ArrayD};
use miniflow::{Error, Graph, Network, Optimizer, Sgd};

miniflow::network! {
    /// The seed's MSE test: a (m,) target against a (m, 1) prediction.
    pub struct MseOnly {
        #[grad] input y: [m];
        #[grad] input a: [m, 1];
        loss cost = mse(y, a);
    }
}

miniflow::network! {
    /// `h` feeds `s` and `t`; `w` is used by two linears.
    pub struct FanOut {
        input x: [n, 1];
        input y: [n];
        param w: [1, 1];
        param b: [1];
        param c: [1];

        h = linear(x, w, b);
        s = sigmoid(h);
        k = linear(x, w, c);
        t = add(s, h, k);
        loss l = mse(y, t);
    }
}

miniflow::network! {
    /// A wider bias (`b: [3]`) and a second layer.
    pub struct Wide {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 3];
        param b: [3];
        param V: [3, 1];
        param c: [1];

        f = linear(X, W, b);
        s = sigmoid(f);
        o = linear(s, V, c);
        loss cost = mse(y, o);
    }
}

miniflow::network! {
    /// A plain linear regression; no input gradients.
    pub struct Lin {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

miniflow::network! {
    /// The loss comes first in the source and is not last in forward order: `a` is.
    pub struct LossNotLast {
        loss cost = mse(y, f);
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        output a = sigmoid(f);
    }
}

fn assert_all_close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(rel_close(*g, *w, rel), "{what}[{i}]: got {g:e}, want {w:e}");
    }
}

fn grad_vec<N: Network<Elem = f64>>(net: &N, name: &str) -> (Vec<usize>, Vec<f64>) {
    let g = net.grad(name).unwrap();
    (g.shape().to_vec(), g.iter().copied().collect())
}

fn course_with_seed_values() -> Course {
    let mut net = Course::new();
    net.feed("X", &array![[-1., -2.], [-1., -2.]]).unwrap();
    net.feed("y", &array![1., 2.]).unwrap();
    net.set_param("W", array![[2.], [3.]].view().into_dyn())
        .unwrap();
    net.set_param("b", array![-3.].view().into_dyn()).unwrap();
    net
}

// --- MSE: (m,) target vs (m, 1) prediction -----------------------------------------------

#[test]
fn mse_of_m_target_and_m_by_1_prediction_is_elementwise_not_broadcast() {
    let mut net = MseOnly::new();
    let y = array![1., 2., 3.];
    let a = array![[4.5], [5.], [10.]];
    net.feed("y", &y).unwrap();
    net.feed("a", &a).unwrap();
    let cost = net.forward_backward().unwrap();
    assert!(rel_close(cost, 23.416666666666668, 1e-15), "{cost}");

    // What numpy would give without the reshape: (y - a) broadcast to (3, 3).
    let broadcast = (&y - &a).mapv(|d| d * d).mean().unwrap();
    assert_eq!((&y - &a).shape(), &[3, 3]);
    assert!(
        (broadcast - 27.083333333333332).abs() < 1e-12,
        "{broadcast}"
    );
    assert!((cost - broadcast).abs() > 1.0);

    // dy = (2/m)(y - a) shaped like y; da = -dy shaped like a.
    let (shape, dy) = grad_vec(&net, "y");
    assert_eq!(shape, [3]);
    assert_all_close("dy", &dy, &[-7. / 3., -2., -14. / 3.], 1e-15);
    let (shape, da) = grad_vec(&net, "a");
    assert_eq!(shape, [3, 1]);
    assert_all_close("da", &da, &[7. / 3., 2., 14. / 3.], 1e-15);

    // Argument order does not matter for the value.
    let mut g = Graph::<f64>::new();
    let (gy, ga) = (g.input("y").unwrap(), g.input("a").unwrap());
    let c1 = g.mse("c1", gy, ga).unwrap();
    let c2 = g.mse("c2", ga, gy).unwrap();
    let order = g
        .topological_sort([(gy, y.into_dyn()), (ga, a.into_dyn())])
        .unwrap();
    g.forward_order(&order).unwrap();
    assert_eq!(g.value(c1).unwrap()[[]], cost);
    assert_eq!(g.value(c2).unwrap()[[]], cost);
}

#[test]
fn seed_backprop_numbers_with_m_target_and_m_by_1_prediction() {
    let mut net = course_with_seed_values();
    let cost = net.forward_backward().unwrap();
    assert!(rel_close(cost, 2.4999498960133932, 1e-14), "{cost:e}");
    assert_eq!(net.value("a").unwrap().shape(), &[2, 1]);

    let (shape, dx) = grad_vec(&net, "X");
    assert_eq!(shape, [2, 2]);
    assert_all_close(
        "dX",
        &dx,
        &[
            -3.34017280e-05,
            -5.01025919e-05,
            -6.68040138e-05,
            -1.00206021e-04,
        ],
        1e-8,
    );
    let (shape, dy) = grad_vec(&net, "y");
    assert_eq!(shape, [2], "dy is shaped like y");
    assert_all_close("dy", &dy, &[0.9999833, 1.9999833], 1e-7);
    let (shape, dw) = grad_vec(&net, "W");
    assert_eq!(shape, [2, 1]);
    assert_all_close("dW", &dw, &[5.01028709e-05, 1.00205742e-04], 1e-8);
    let (shape, db) = grad_vec(&net, "b");
    assert_eq!(shape, [1]);
    assert_all_close("db", &db, &[-5.01028709e-05], 1e-8);
}

// --- Fan-out: gradients are sums over consumers --------------------------------------------

#[test]
fn fan_out_gradients_are_sums_over_consumers() {
    let mut net = FanOut::new();
    let (x, y) = ([0.5, -1.0], [3.0, -1.0]);
    let (w, b, c) = (2.0, 0.25, -0.5);
    net.feed("x", &array![[x[0]], [x[1]]]).unwrap();
    net.feed("y", &array![y[0], y[1]]).unwrap();
    net.set_param("w", array![[w]].view().into_dyn()).unwrap();
    net.set_param("b", array![b].view().into_dyn()).unwrap();
    net.set_param("c", array![c].view().into_dyn()).unwrap();
    let loss = net.forward_backward().unwrap();

    // By hand, row by row: t = s(h) + h + k, l = mean((y - t)²).
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mut want_loss = 0.0;
    let (mut dh, mut dk, mut dw, mut db, mut dc) = (vec![], vec![], 0.0, 0.0, 0.0);
    for i in 0..2 {
        let h = x[i] * w + b;
        let s = sig(h);
        let k = x[i] * w + c;
        let t = s + h + k;
        want_loss += (y[i] - t) * (y[i] - t) / 2.0;
        let g = -(y[i] - t); // (2/m)(t - y) with m = 2
        let gh = g * s * (1.0 - s) + g; // through s, plus directly into t
        dh.push(gh);
        dk.push(g);
        dw += x[i] * gh + x[i] * g; // w feeds h and k
        db += gh;
        dc += g;
    }
    assert!(rel_close(loss, want_loss, 1e-14), "{loss} vs {want_loss}");
    let (shape, gh) = grad_vec(&net, "h");
    assert_eq!(shape, [2, 1]);
    assert_all_close("dh", &gh, &dh, 1e-14);
    // Not just one of the two contributions (through `s`, or straight into `t`).
    let (_, gt) = grad_vec(&net, "t");
    let s = net.value("s").unwrap();
    for i in 0..2 {
        let via_s = gt[i] * s[[i, 0]] * (1.0 - s[[i, 0]]);
        assert!((gh[i] - gt[i]).abs() > 1e-3, "{} vs {}", gh[i], gt[i]);
        assert!((gh[i] - via_s).abs() > 1e-3, "{} vs {via_s}", gh[i]);
        assert!(rel_close(gh[i], gt[i] + via_s, 1e-14));
    }
    assert_all_close("dk", &grad_vec(&net, "k").1, &dk, 1e-14);
    assert_all_close("dw", &grad_vec(&net, "w").1, &[dw], 1e-14);
    assert_all_close("db", &grad_vec(&net, "b").1, &[db], 1e-14);
    assert_all_close("dc", &grad_vec(&net, "c").1, &[dc], 1e-14);
}

#[test]
fn gradients_do_not_accumulate_across_backward_calls() {
    let mut net = FanOut::new();
    net.feed("x", &array![[0.5], [-1.0]]).unwrap();
    net.feed("y", &array![3.0, -1.0]).unwrap();
    net.set_param("w", array![[2.0]].view().into_dyn()).unwrap();
    net.set_param("b", array![0.25].view().into_dyn()).unwrap();
    net.set_param("c", array![-0.5].view().into_dyn()).unwrap();
    net.forward_backward().unwrap();
    let first: Vec<_> = ["w", "b", "c", "h", "t"]
        .iter()
        .map(|n| net.grad(n).unwrap().to_owned())
        .collect();
    assert!(first.iter().all(|g| g.iter().all(|&v| v != 0.0)));
    net.backward().unwrap();
    net.forward_backward().unwrap();
    for (n, g) in ["w", "b", "c", "h", "t"].iter().zip(&first) {
        assert_eq!(
            net.grad(n).unwrap(),
            g.view(),
            "{n}: recomputed, not summed"
        );
    }
}

// --- db has b's shape ---------------------------------------------------------------------

#[test]
fn db_has_the_shape_of_b_and_sums_over_rows() {
    let mut net = course_with_seed_values();
    net.forward_backward().unwrap();
    assert_eq!(net.grad("b").unwrap().shape(), &[1], "not [2, 1]");
    let df = net.grad("f").unwrap();
    assert_eq!(df.shape(), &[2, 1]);
    assert!(rel_close(net.grad("b").unwrap()[[0]], df.sum(), 1e-15));

    let mut net = Wide::new();
    net.feed(
        "X",
        &array![[0.5, -1.], [2., 0.25], [-0.75, 1.5], [1., 1.], [0., -2.]],
    )
    .unwrap();
    net.feed("y", &array![1., -1., 0.5, 2., 0.]).unwrap();
    net.set_param(
        "W",
        array![[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]].view().into_dyn(),
    )
    .unwrap();
    net.set_param("b", array![0.1, 0.2, -0.3].view().into_dyn())
        .unwrap();
    net.set_param("V", array![[1.], [-2.], [0.5]].view().into_dyn())
        .unwrap();
    net.set_param("c", array![0.25].view().into_dyn()).unwrap();
    net.forward_backward().unwrap();
    let db = net.grad("b").unwrap().to_owned();
    assert_eq!(db.shape(), &[3]);
    let df = net
        .grad("f")
        .unwrap()
        .to_owned()
        .into_dimensionality::<miniflow::ndarray::Ix2>()
        .unwrap();
    assert_eq!(df.shape(), &[5, 3]);
    let col_sums: Array1<f64> = df.sum_axis(miniflow::ndarray::Axis(0));
    assert_all_close(
        "db",
        db.as_slice().unwrap(),
        col_sums.as_slice().unwrap(),
        1e-14,
    );
    assert!(db.iter().all(|&v| v != 0.0));
    let dc = net.grad("c").unwrap();
    assert_eq!(dc.shape(), &[1]);
    assert!(rel_close(dc[[0]], net.grad("o").unwrap().sum(), 1e-14));
}

// --- Integer-looking inputs are floats -----------------------------------------------------

#[test]
fn integer_looking_inputs_are_floats() {
    let ints: Array2<i32> = array![[1, 2], [2, 1]];
    let floats = array![[1., 2.], [2., 1.]];
    assert_eq!(ints.mapv(f64::from), floats);

    let run = |x: &Array2<f64>| {
        let mut net = Lin::new();
        net.feed("X", x).unwrap();
        net.feed("y", &array![0i32, 0].mapv(f64::from)).unwrap();
        net.set_param("W", array![[1i32], [0]].mapv(f64::from).view().into_dyn())
            .unwrap();
        net.set_param("b", array![0.].view().into_dyn()).unwrap();
        let loss = net.forward_backward().unwrap();
        (net, loss)
    };
    let (mut net, loss) = run(&floats);
    let (_, loss_from_ints) = run(&ints.mapv(f64::from));
    assert_eq!(loss, loss_from_ints);
    // f = [1, 2]; mean of squares 5 / 2 = 2.5, not an integer division's 2.
    assert_eq!(loss, 2.5);
    assert_eq!(net.grad("W").unwrap(), array![[5.], [4.]].into_dyn());
    assert_eq!(net.grad("b").unwrap(), array![3.].into_dyn());

    // An update of "integer" params is not truncated.
    miniflow::sgd(&mut net, 1e-2).unwrap();
    let w = net.value("W").unwrap();
    assert!((w[[0, 0]] - 0.95).abs() < 1e-15, "{w}");
    assert!((w[[1, 0]] + 0.04).abs() < 1e-15, "{w}");
    assert!((net.value("b").unwrap()[[0]] + 0.03).abs() < 1e-15);
}

// --- A missing feed is an error --------------------------------------------------------------

#[test]
fn missing_feed_names_the_input_and_the_node_needing_it() {
    let mut net = Course::new();
    net.feed("X", &array![[-1., -2.], [-1., -2.]]).unwrap();
    let err = net.forward().unwrap_err();
    assert_eq!(
        err,
        Error::MissingFeed {
            input: "y".into(),
            needed_by: "cost".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "input `y` was not fed, but `cost` needs it"
    );

    // Nothing fed: the first input in source order is named.
    let err = Course::new().forward().unwrap_err();
    assert!(
        matches!(&err, Error::MissingFeed { input, needed_by } if input == "X" && needed_by == "cost"),
        "{err:?}"
    );

    // The runtime graph does not drop the unfed subgraph either (its params hold values;
    // the unfed input is named).
    let (mut g, ids) = Graph::<f64>::from_spec(net.spec()).unwrap();
    assert_eq!(g.name(ids[0]), Some("X"));
    let order = g
        .topological_sort([(ids[0], array![[-1., -2.]].into_dyn())])
        .unwrap();
    let err = g.forward_order(&order).unwrap_err();
    assert_eq!(
        err,
        Error::MissingFeed {
            input: "y".into(),
            needed_by: "cost".into()
        }
    );
}

#[test]
fn a_rejected_feed_does_not_count_as_fed() {
    let mut net = Course::new();
    assert!(net.feed("X", &array![[1., 2., 3.]]).is_err());
    net.feed("y", &array![1.]).unwrap();
    let err = net.forward().unwrap_err();
    assert!(
        matches!(&err, Error::MissingFeed { input, .. } if input == "X"),
        "{err:?}"
    );
}

// --- The loss is named, not assumed last -----------------------------------------------------

#[test]
fn the_loss_is_the_named_node_not_the_last_one() {
    let mut net = LossNotLast::new();
    let spec = net.spec().clone();
    assert_eq!(spec.loss, "cost");
    assert_eq!(spec.nodes.last().unwrap().name, "a");
    assert_eq!(spec.outputs.as_ref(), ["a"]);

    net.feed("X", &array![[1., 2.], [2., 1.]]).unwrap();
    net.feed("y", &array![0., 0.]).unwrap();
    net.set_param("W", array![[1.], [0.]].view().into_dyn())
        .unwrap();
    net.set_param("b", array![0.].view().into_dyn()).unwrap();
    let loss = net.forward_backward().unwrap();
    assert_eq!(loss, 2.5);
    assert_eq!(net.value("cost").unwrap()[[]], 2.5);
    assert_eq!(net.grad("W").unwrap(), array![[5.], [4.]].into_dyn());
    // `a` is an output, not on the path to the loss: no gradient.
    assert!(matches!(net.grad("a"), Err(Error::NoGradient { .. })));
    let a = net.evaluate("a").unwrap();
    assert!((a[[0, 0]] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);

    // In the runtime graph, the last node of the order is `a`: taking it as the cost fails;
    // naming the cost works.
    let (mut g, ids) = Graph::<f64>::from_spec(&spec).unwrap();
    let feed: Vec<_> = ["X", "y", "W", "b"]
        .iter()
        .map(|n| {
            let k = spec.nodes.iter().position(|s| s.name == *n).unwrap();
            (ids[k], net.value(n).unwrap().to_owned())
        })
        .collect();
    let order = g.topological_sort(feed).unwrap();
    let last = *order.last().unwrap();
    assert_eq!(g.name(last), Some("a"));
    let err = g.forward_and_backward(&order, last).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { node, .. } if node == "a"),
        "{err:?}"
    );
    let cost = g.find(&spec.loss).unwrap();
    assert_eq!(g.forward_and_backward(&order, cost).unwrap(), 2.5);
}

// --- Typed run-time errors -------------------------------------------------------------------

#[test]
fn wrong_shapes_name_the_input_the_declared_and_the_found_shape() {
    let mut net = Course::new();
    let err = net
        .feed("X", &array![[1., 2., 3.], [4., 5., 6.]])
        .unwrap_err();
    assert_eq!(
        err,
        Error::Shape {
            node: "X".into(),
            expected: "[batch, 2]".into(),
            found: vec![2, 3]
        }
    );
    assert_eq!(
        err.to_string(),
        "wrong shape for `X`: expected [batch, 2], found [2, 3]"
    );
    // Wrong rank.
    let err = net.feed("X", &array![1., 2.]).unwrap_err();
    assert_eq!(
        err,
        Error::Shape {
            node: "X".into(),
            expected: "[batch, 2]".into(),
            found: vec![2]
        }
    );
    let err = net.feed("y", &array![[1.], [2.]]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("wrong shape for `y`: expected [batch], found [2, 1]; "),
        "{err}"
    );
    // An empty batch.
    let err = net
        .feed("X", &ArrayD::<f64>::zeros(vec![0, 2]))
        .unwrap_err();
    assert_eq!(
        err,
        Error::EmptyBatch {
            node: "X".into(),
            dim: "batch".into(),
            found: vec![0, 2]
        }
    );
    assert_eq!(
        err.to_string(),
        "empty batch: `X` was fed with batch = 0 ([0, 2]); feed at least one row"
    );
    // Params have fixed shapes.
    let err = net
        .set_param("W", array![[2., 3.]].view().into_dyn())
        .unwrap_err();
    assert_eq!(
        err,
        Error::Shape {
            node: "W".into(),
            expected: "[2, 1]".into(),
            found: vec![1, 2]
        }
    );
}

#[test]
fn inconsistent_named_dims_are_an_error_at_forward() {
    let mut net = Course::new();
    net.feed("X", &array![[-1., -2.], [-1., -2.]]).unwrap();
    net.feed("y", &array![1., 2., 3.]).unwrap();
    let err = net.forward().unwrap_err();
    assert_eq!(
        err,
        Error::InconsistentDim {
            dim: "batch".into(),
            first: "X".into(),
            first_size: 2,
            second: "y".into(),
            second_size: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "inconsistent dimension `batch`: `X` gives it 2, but `y` gives it 3"
    );
    // Fixing the feed fixes the forward.
    net.feed("y", &array![1., 2.]).unwrap();
    net.set_param("W", array![[2.], [3.]].view().into_dyn())
        .unwrap();
    net.set_param("b", array![-3.].view().into_dyn()).unwrap();
    assert!(rel_close(net.forward().unwrap(), 2.4999498960133932, 1e-14));
}

#[test]
fn backward_before_forward_is_an_error() {
    let mut net = course_with_seed_values();
    assert_eq!(net.backward().unwrap_err(), Error::BackwardBeforeForward);
    net.forward().unwrap();
    net.backward().unwrap();
    // A new feed invalidates the forward.
    net.feed("y", &array![0., 1.]).unwrap();
    assert_eq!(net.backward().unwrap_err(), Error::BackwardBeforeForward);
    net.forward().unwrap();
    net.backward().unwrap();
    // So does an update of the params.
    miniflow::sgd(&mut net, 1e-2).unwrap();
    assert_eq!(net.backward().unwrap_err(), Error::BackwardBeforeForward);
    net.set_param("b", array![0.].view().into_dyn()).unwrap();
    assert_eq!(net.backward().unwrap_err(), Error::BackwardBeforeForward);
}

#[test]
fn unknown_names_get_a_suggestion() {
    let mut net = course_with_seed_values();
    net.forward_backward().unwrap();
    let err = net.value("W3").unwrap_err();
    assert_eq!(
        err,
        Error::UnknownNode {
            name: "W3".into(),
            suggestion: Some("W".into())
        }
    );
    assert_eq!(err.to_string(), "no node named `W3`; did you mean `W`?");
    assert_eq!(
        net.grad("cots").unwrap_err(),
        Error::UnknownNode {
            name: "cots".into(),
            suggestion: Some("cost".into())
        }
    );
    assert_eq!(
        net.feed("Xs", &array![[1., 2.]]).unwrap_err(),
        Error::UnknownNode {
            name: "Xs".into(),
            suggestion: Some("X".into())
        }
    );
    assert_eq!(
        net.set_param("WW", array![[1.], [2.]].view().into_dyn())
            .unwrap_err(),
        Error::UnknownNode {
            name: "WW".into(),
            suggestion: Some("W".into())
        }
    );
    let err = net.evaluate("zzzzzz").unwrap_err();
    assert_eq!(
        err,
        Error::UnknownNode {
            name: "zzzzzz".into(),
            suggestion: None
        }
    );
    assert_eq!(err.to_string(), "no node named `zzzzzz`");
}

#[test]
fn set_input_on_a_param_is_the_wrong_kind() {
    let mut net = Course::new();
    let err = net
        .set_input("W", array![[2.], [3.]].view().into_dyn())
        .unwrap_err();
    assert_eq!(
        err,
        Error::WrongKind {
            name: "W".into(),
            wanted: "an input",
            actual: "a param"
        }
    );
    assert_eq!(
        err.to_string(),
        "`W` is a param, not an input; set a param with `set_param`"
    );
    let err = net
        .set_param("X", array![[1., 2.]].view().into_dyn())
        .unwrap_err();
    assert_eq!(
        err,
        Error::WrongKind {
            name: "X".into(),
            wanted: "a param",
            actual: "an input"
        }
    );
    let err = net
        .set_input("f", array![[1.]].view().into_dyn())
        .unwrap_err();
    assert!(
        matches!(&err, Error::WrongKind { name, actual, .. } if name == "f" && *actual == "an intermediate node"),
        "{err:?}"
    );
}

#[test]
fn grad_of_an_input_without_grad_attribute_is_no_gradient() {
    let mut net = Lin::new();
    net.feed("X", &array![[1., 2.]]).unwrap();
    net.feed("y", &array![1.]).unwrap();
    net.forward_backward().unwrap();
    let err = net.grad("X").unwrap_err();
    assert_eq!(
        err,
        Error::NoGradient {
            name: "X".into(),
            reason: "it is an input without `#[grad]`"
        }
    );
    assert!(err.to_string().contains("`#[grad]`"), "{err}");
    assert!(matches!(net.grad("y"), Err(Error::NoGradient { .. })));
    // The params and the intermediate do have one.
    assert_eq!(net.grad("W").unwrap().shape(), &[2, 1]);
    assert_eq!(net.grad("f").unwrap().shape(), &[1, 1]);
}

// --- SGD -------------------------------------------------------------------------------------

fn snapshot<N: Network<Elem = f64>>(net: &mut N) -> Vec<(String, ArrayD<f64>, ArrayD<f64>)> {
    let mut out = Vec::new();
    net.visit_params(&mut |p| {
        out.push((p.name.to_string(), p.value.to_owned(), p.grad.to_owned()))
    });
    out
}

fn wide_net() -> Wide {
    let mut net = Wide::new();
    net.feed("X", &array![[0.5, -1.], [2., 0.25], [-0.75, 1.5]])
        .unwrap();
    net.feed("y", &array![1., -1., 0.5]).unwrap();
    net.set_param(
        "W",
        array![[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]].view().into_dyn(),
    )
    .unwrap();
    net.set_param("b", array![0.1, 0.2, -0.3].view().into_dyn())
        .unwrap();
    net.set_param("V", array![[1.], [-2.], [0.5]].view().into_dyn())
        .unwrap();
    net.set_param("c", array![0.25].view().into_dyn()).unwrap();
    net
}

#[test]
fn sgd_moves_each_param_by_minus_lr_times_grad() {
    let mut net = wide_net();
    let before_loss = net.forward_backward().unwrap();
    let before = snapshot(&mut net);
    assert_eq!(
        before.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["W", "b", "V", "c"]
    );
    miniflow::sgd(&mut net, 0.1).unwrap();
    let after = snapshot(&mut net);
    for ((name, v0, g), (_, v1, _)) in before.iter().zip(&after) {
        assert!(g.iter().any(|&g| g != 0.0), "{name} has a gradient");
        for ((v0, g), v1) in v0.iter().zip(g).zip(v1) {
            assert_eq!(*v1, v0 - 0.1 * g, "{name}");
        }
        assert_eq!(net.value(name).unwrap(), v1.view());
    }

    // `Sgd::default()` is the course's lr 1e-2.
    let mut opt = Sgd::default();
    assert_eq!(opt.lr, 1e-2);
    let loss = net.forward_backward().unwrap();
    let before = snapshot(&mut net);
    opt.step(&mut net).unwrap();
    let after = snapshot(&mut net);
    for ((name, v0, g), (_, v1, _)) in before.iter().zip(&after) {
        for ((v0, g), v1) in v0.iter().zip(g).zip(v1) {
            assert_eq!(*v1, v0 - 1e-2 * g, "{name}");
        }
    }
    // Small steps down the gradient lower the loss.
    let after_loss = net.forward().unwrap();
    assert!(
        loss < before_loss && after_loss < loss,
        "{before_loss} {loss} {after_loss}"
    );
}

#[test]
fn sgd_on_the_network_matches_the_graphs_sgd_update() {
    let mut net = course_with_seed_values();
    net.forward_backward().unwrap();
    let (mut g, ids) = Graph::<f64>::from_spec(net.spec()).unwrap();
    let names = ["X", "y", "W", "b"];
    let spec = net.spec().clone();
    let id = |n: &str| ids[spec.nodes.iter().position(|s| s.name == n).unwrap()];
    let feed: Vec<_> = names
        .iter()
        .map(|n| (id(n), net.value(n).unwrap().to_owned()))
        .collect();
    let order = g.topological_sort(feed).unwrap();
    g.forward_and_backward(&order, id("cost")).unwrap();
    g.sgd_update(&[id("W"), id("b")], 1e-2).unwrap();
    Sgd::default().step(&mut net).unwrap();
    for n in ["W", "b"] {
        assert_eq!(net.value(n).unwrap(), g.value(id(n)).unwrap(), "{n}");
    }
}

// --- Layout -----------------------------------------------------------------------------------

#[test]
fn a_transposed_feed_is_read_in_logical_order() {
    let x = array![[-1., -2.], [-0.5, 3.], [2., 1.]];
    let xt = x.t().to_owned(); // [2, 3] in standard layout
    let mut a = Course::new();
    let mut b = Course::new();
    for net in [&mut a, &mut b] {
        net.feed("y", &array![1., 2., 0.]).unwrap();
        net.set_param("W", array![[2.], [3.]].view().into_dyn())
            .unwrap();
        net.set_param("b", array![-3.].view().into_dyn()).unwrap();
    }
    a.feed("X", &x).unwrap();
    b.feed("X", &xt.t()).unwrap(); // the same logical values, column-major in memory
    let (la, lb) = (a.forward_backward().unwrap(), b.forward_backward().unwrap());
    assert_eq!(la, lb);
    for n in ["X", "W", "b", "f"] {
        assert_eq!(a.grad(n).unwrap(), b.grad(n).unwrap(), "{n}");
    }
}

// --- Errors that read well and say what to do (issue 9, section 3) -------------------------

miniflow::network! {
    /// A classifier: labels are class indices, `[batch]`.
    pub struct Iris {
        input x: [batch, 4];
        input labels: [batch];
        param W: [4, 3];
        param c: [3];

        z = linear(x, W, c);
        loss ce = softmax_cross_entropy(z, labels);
    }
}

miniflow::network! {
    /// A regression whose target is a column, `[batch, 1]`.
    pub struct ColumnTarget {
        input X: [batch, 2];
        input y: [batch, 1];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn iris() -> Iris {
    let mut net = Iris::new();
    net.feed("x", &array![[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]])
        .unwrap();
    net
}

/// Old code: `Debug` printed `Shape { node: "X", expected: "[batch, 2]", found: [2, 5] }`, which
/// is what `fn main() -> miniflow::Result<()>` shows.
#[test]
fn debug_of_an_error_is_its_message() {
    let mut net = Course::new();
    let err = net.feed("X", &array![[1., 2., 3., 4., 5.]]).unwrap_err();
    assert_eq!(format!("{err:?}"), err.to_string());
    assert_eq!(
        format!("{err:?}"),
        "wrong shape for `X`: expected [batch, 2], found [1, 5]"
    );
    let r: miniflow::Result<()> = Err(err.clone());
    assert_eq!(
        format!("{r:?}"),
        "Err(wrong shape for `X`: expected [batch, 2], found [1, 5])"
    );
    // Still a value to match and compare.
    assert!(matches!(&err, Error::Shape { node, .. } if node == "X"));
    assert_eq!(
        err,
        Error::Shape {
            node: "X".into(),
            expected: "[batch, 2]".into(),
            found: vec![1, 5]
        }
    );
}

/// Old code: "wrong shape for `labels`: expected [batch], found [2, 3]", with no word on why.
#[test]
fn one_hot_labels_are_told_to_be_class_indices() {
    let mut net = iris();
    let err = net
        .feed("labels", &array![[1., 0., 0.], [0., 1., 0.]])
        .unwrap_err();
    assert!(matches!(&err, Error::Shape { node, .. } if node == "labels"));
    assert_eq!(
        err.to_string(),
        "wrong shape for `labels`: expected [batch], found [2, 3]; a 2-D array where a 1-D one \
         is expected: if these are one-hot labels (3 classes), pass class indices instead (each \
         row's argmax, as a 1-D array)"
    );
    // Values that are not class indices (probabilities, say): the same advice.
    net.feed("labels", &array![0.0, 0.7]).unwrap();
    let err = net.forward().unwrap_err();
    assert!(matches!(&err, Error::BadLabel { row: 1, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("is 0.7, which is not a class index") && msg.contains("argmax"),
        "{msg}"
    );
}

/// Old code: a 301-digit number.
#[test]
fn a_huge_bad_label_prints_compactly() {
    let mut net = iris();
    net.feed("labels", &array![0.0, 1e300]).unwrap();
    let msg = net.forward().unwrap_err().to_string();
    assert!(msg.contains("is 1e300, which"), "{msg}");
    assert!(msg.len() < 300, "{msg}");
    net.feed("labels", &array![1e-300, 1.0]).unwrap();
    let msg = net.forward().unwrap_err().to_string();
    assert!(msg.contains("is 1e-300, which"), "{msg}");
}

/// A `[batch, 1]` column where `[batch]` is expected, and the reverse.
#[test]
fn a_column_for_a_vector_and_back_suggest_the_fix() {
    let mut net = Course::new();
    let err = net.feed("y", &array![[1.], [2.]]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong shape for `y`: expected [batch], found [2, 1]; this is a [2, 1] column where a \
         1-D array is expected: pass `.column(0)` of it"
    );
    let mut net = ColumnTarget::new();
    let err = net.feed("y", &array![1., 2., 3.]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong shape for `y`: expected [batch, 1], found [3]; a 1-D array where a column is \
         expected: pass `.insert_axis(Axis(1))` of it (a [3, 1] column)"
    );
    // And the suggestions work.
    let y = array![1., 2., 3.];
    net.feed("y", &y.clone().insert_axis(miniflow::ndarray::Axis(1)))
        .unwrap();
    let mut net = Course::new();
    net.feed("y", &array![[1.], [2.]].column(0).to_owned())
        .unwrap();
    // A wrong shape with no usual fix gets no advice.
    let err = net.feed("X", &array![[1., 2., 3.]]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong shape for `X`: expected [batch, 2], found [1, 3]"
    );
}

/// Feeding a param, or setting an input as a param, names the call to use.
#[test]
fn the_wrong_setter_names_the_right_one() {
    let mut net = Course::new();
    let err = net.feed("W", &array![[2.], [3.]]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`W` is a param, not an input; set a param with `set_param`"
    );
    let err = net
        .set_param("X", array![[1., 2.]].view().into_dyn())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`X` is an input, not a param; feed an input with `feed` or `set_input`"
    );
    let err = net
        .set_param("f", array![[1.]].view().into_dyn())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`f` is an intermediate node, not a param; its value is computed by the forward pass: \
         feed inputs and set params instead"
    );
}

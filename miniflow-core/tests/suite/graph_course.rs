//! The runtime [`Graph`] reproduces every number of the course's tests (DESIGN.md section 1),
//! and pins the pitfalls: gradients summed over every consumer, db's shape, MSE shapes, unfed
//! inputs, the SGD rule, non-scalar costs and wrong shapes.

use crate::common;

use common::{assert_close, numeric_grad, Rng, FD_TOL};
use miniflow_core::ndarray::{arr0, array, Array1, Array2, ArrayD, ArrayViewD, Axis, IxDyn};
use miniflow_core::{Error, Graph, NodeId, Op};

/// Tolerance for the course's numbers (which are printed to 7–9 significant digits).
const TOL: f64 = 1e-8;

#[track_caller]
fn assert_values(
    what: &str,
    got: Result<ArrayViewD<'_, f64>, Error>,
    shape: &[usize],
    want: &[f64],
    tol: f64,
) {
    let got = got.unwrap_or_else(|e| panic!("{what}: no value: {e}"));
    assert_eq!(got.shape(), shape, "{what}: shape");
    let got: Vec<f64> = got.iter().copied().collect();
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g:e}, want {w:e} (tol {tol:e})\n{got:?}"
        );
    }
}

fn scalar(v: f64) -> ArrayD<f64> {
    arr0(v).into_dyn()
}

fn value_of(g: &Graph<f64>, id: NodeId) -> f64 {
    let v = g.value(id).expect("computed");
    assert_eq!(v.len(), 1);
    v.iter().copied().next().expect("one element")
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

// ---------------------------------------------------------------------------------------------
// The course table
// ---------------------------------------------------------------------------------------------

#[test]
fn course_add_two_and_three() {
    let mut g = Graph::<f64>::new();
    let (x, y, _z) = (
        g.input("x").unwrap(),
        g.input("y").unwrap(),
        g.input("z").unwrap(),
    );
    let f = g.add("f", x, y).unwrap();
    let order = g
        .topological_sort([(x, scalar(10.0)), (y, scalar(5.0))])
        .unwrap();
    g.forward_order(&order).unwrap();
    assert_values("x + y", g.value(f), &[], &[15.0], TOL);

    // A second graph: its ids are its own (the first graph's would be an error).
    let (x1, y1) = (x, y);
    let mut g = Graph::<f64>::new();
    let (x, y, z) = (
        g.input("x").unwrap(),
        g.input("y").unwrap(),
        g.input("z").unwrap(),
    );
    assert_eq!(
        (x.index(), y.index(), z.index()),
        (x1.index(), y1.index(), 2)
    );
    assert!(g.op("bad", Op::Add, &[x1, y1]).is_err());
    let f = g.op("sum", Op::Add, &[x, y, z]).unwrap();
    let order = g
        .topological_sort([(x, scalar(4.0)), (y, scalar(5.0)), (z, scalar(10.0))])
        .unwrap();
    assert_eq!(order, vec![x, y, z, f]);
    g.forward_order(&order).unwrap();
    assert_values("x + y + z", g.value(f), &[], &[19.0], TOL);
    assert_eq!(g.name(f), Some("sum"));
    assert_eq!(g.find("sum").unwrap(), f);

    // The same on arrays, elementwise.
    let order = g
        .topological_sort([
            (x, array![1., 2.].into_dyn()),
            (y, array![10., 20.].into_dyn()),
            (z, array![100., 200.].into_dyn()),
        ])
        .unwrap();
    g.forward_order(&order).unwrap();
    assert_values("elementwise", g.value(f), &[2], &[111.0, 222.0], TOL);
}

fn course_linear_graph() -> (Graph<f64>, [NodeId; 3], NodeId, Vec<NodeId>) {
    let mut g = Graph::<f64>::new();
    let (x, w, b) = (
        g.input("X").unwrap(),
        g.input("W").unwrap(),
        g.input("b").unwrap(),
    );
    let f = g.linear("f", x, w, b).unwrap();
    let order = g
        .topological_sort([
            (x, array![[-1., -2.], [-1., -2.]].into_dyn()),
            (w, array![[2., -3.], [2., -3.]].into_dyn()),
            (b, array![-3., -5.].into_dyn()),
        ])
        .unwrap();
    (g, [x, w, b], f, order)
}

#[test]
fn course_linear() {
    let (mut g, _, f, order) = course_linear_graph();
    g.forward_order(&order).unwrap();
    assert_values("linear", g.value(f), &[2, 2], &[-9., 4., -9., 4.], TOL);
}

#[test]
fn course_sigmoid_of_linear() {
    let mut g = Graph::<f64>::new();
    let (x, w, b) = (
        g.input("X").unwrap(),
        g.input("W").unwrap(),
        g.input("b").unwrap(),
    );
    let f = g.linear("f", x, w, b).unwrap();
    let s = g.sigmoid("s", f).unwrap();
    let order = g
        .topological_sort([
            (x, array![[-1., -2.], [-1., -2.]].into_dyn()),
            (w, array![[2., -3.], [2., -3.]].into_dyn()),
            (b, array![-3., -5.].into_dyn()),
        ])
        .unwrap();
    assert_eq!(order, vec![x, w, b, f, s]);
    g.forward_order(&order).unwrap();
    let (lo, hi) = (1.23394576e-04, 9.82013790e-01);
    assert_values(
        "sigmoid(linear)",
        g.value(s),
        &[2, 2],
        &[lo, hi, lo, hi],
        TOL,
    );
    // And to full precision against the closed form.
    assert_values(
        "sigmoid(linear) exact",
        g.value(s),
        &[2, 2],
        &[sig(-9.), sig(4.), sig(-9.), sig(4.)],
        1e-15,
    );
}

#[test]
fn course_mse_flat_and_column() {
    const WANT: f64 = 23.416666666666668;
    for a_shape in [&[3usize][..], &[3, 1]] {
        let mut g = Graph::<f64>::new();
        let (y, a) = (g.input("y").unwrap(), g.input("a").unwrap());
        let cost = g.mse("cost", y, a).unwrap();
        let a_val = ArrayD::from_shape_vec(IxDyn(a_shape), vec![4.5, 5., 10.]).unwrap();
        let order = g
            .topological_sort([(y, array![1., 2., 3.].into_dyn()), (a, a_val)])
            .unwrap();
        let loss = g.forward_and_backward(&order, cost).unwrap();
        assert!((loss - WANT).abs() < TOL, "a {a_shape:?}: {loss}");
        assert_values("cost", g.value(cost), &[], &[WANT], TOL);
        // (m,) against (m, 1) must pair elements, not broadcast to (3, 3) (which gives 27.0833...).
        // dy = (2/3)(y - a), da = -dy; each gradient has its own node's shape.
        let dy = [2. / 3. * -3.5, 2. / 3. * -3., 2. / 3. * -7.];
        let da: Vec<f64> = dy.iter().map(|v| -v).collect();
        assert_values("dy", g.gradient(y), &[3], &dy, 1e-12);
        assert_values("da", g.gradient(a), a_shape, &da, 1e-12);
    }
}

/// The seed's test network: `cost = MSE(y, Sigmoid(Linear(X, W, b)))`.
struct Seed {
    g: Graph<f64>,
    x: NodeId,
    y: NodeId,
    w: NodeId,
    b: NodeId,
    f: NodeId,
    a: NodeId,
    cost: NodeId,
}

fn seed_graph() -> Seed {
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("X").unwrap(), g.input("y").unwrap());
    let (w, b) = (g.input("W").unwrap(), g.input("b").unwrap());
    let f = g.op("f", Op::Linear, &[x, w, b]).unwrap();
    let a = g.op("a", Op::Sigmoid, &[f]).unwrap();
    let cost = g.op("cost", Op::Mse, &[y, a]).unwrap();
    Seed {
        g,
        x,
        y,
        w,
        b,
        f,
        a,
        cost,
    }
}

fn seed_feed(s: &Seed) -> Vec<(NodeId, ArrayD<f64>)> {
    vec![
        (s.x, array![[-1., -2.], [-1., -2.]].into_dyn()),
        (s.y, array![1., 2.].into_dyn()),
        (s.w, array![[2.], [3.]].into_dyn()),
        (s.b, array![-3.].into_dyn()),
    ]
}

#[test]
fn course_backprop_seed_test() {
    let mut s = seed_graph();
    let order = s.g.topological_sort(seed_feed(&s)).unwrap();
    assert_eq!(order, vec![s.x, s.y, s.w, s.b, s.f, s.a, s.cost]);
    let loss = s.g.forward_and_backward(&order, s.cost).unwrap();
    assert!((loss - 2.4999498960133932).abs() < TOL, "cost {loss}");
    assert!((loss - 2.4999498960133932).abs() < 1e-13, "cost {loss}");
    assert_values(
        "cost value",
        s.g.value(s.cost),
        &[],
        &[2.4999498960133932],
        TOL,
    );

    assert_values(
        "dX",
        s.g.gradient(s.x),
        &[2, 2],
        &[
            -3.34017280e-05,
            -5.01025919e-05,
            -6.68040138e-05,
            -1.00206021e-04,
        ],
        TOL,
    );
    // The seed prints dy as (2, 1); here dy has y's own shape, (2,).
    assert_values("dy", s.g.gradient(s.y), &[2], &[0.9999833, 1.9999833], TOL);
    assert_values(
        "dW",
        s.g.gradient(s.w),
        &[2, 1],
        &[5.01028709e-05, 1.00205742e-04],
        TOL,
    );
    assert_values("db", s.g.gradient(s.b), &[1], &[-5.01028709e-05], TOL);

    // The printed numbers have few digits and the gradients are tiny: check the closed forms
    // to full precision too. f = X·W + b = -11 in both rows, a = sigmoid(-11).
    let a = sig(-11.0);
    let dy = [1.0 - a, 2.0 - a]; // (2/m)(y - a) with m = 2
    let df = [-dy[0] * a * (1.0 - a), -dy[1] * a * (1.0 - a)];
    assert_values("dy exact", s.g.gradient(s.y), &[2], &dy, 1e-15);
    assert_values(
        "da exact",
        s.g.gradient(s.a),
        &[2, 1],
        &[-dy[0], -dy[1]],
        1e-15,
    );
    assert_values("df exact", s.g.gradient(s.f), &[2, 1], &df, 1e-18);
    assert_values(
        "dX exact",
        s.g.gradient(s.x),
        &[2, 2],
        &[2. * df[0], 3. * df[0], 2. * df[1], 3. * df[1]],
        1e-18,
    );
    assert_values(
        "dW exact",
        s.g.gradient(s.w),
        &[2, 1],
        &[-df[0] - df[1], -2. * df[0] - 2. * df[1]],
        1e-18,
    );
    assert_values("db exact", s.g.gradient(s.b), &[1], &[df[0] + df[1]], 1e-18);
    assert_values("dcost", s.g.gradient(s.cost), &[], &[1.0], 0.0);
}

/// The cost at the feed, by a fresh sort and forward (no backward).
fn cost_at(g: &mut Graph<f64>, feed: &[(NodeId, ArrayD<f64>)], cost: NodeId) -> f64 {
    let order = g.topological_sort(feed.iter().cloned()).unwrap();
    g.forward_order(&order).unwrap();
    value_of(g, cost)
}

/// Central differences of the cost with respect to every element of fed input `k`.
fn fd_grad(
    g: &mut Graph<f64>,
    feed: &[(NodeId, ArrayD<f64>)],
    k: usize,
    cost: NodeId,
) -> ArrayD<f64> {
    let mut feed = feed.to_vec();
    let base = feed[k].1.clone();
    numeric_grad(&base, |x| {
        feed[k].1 = x.clone();
        cost_at(g, &feed, cost)
    })
}

#[track_caller]
fn assert_fd(what: &str, got: Option<ArrayViewD<'_, f64>>, want: &ArrayD<f64>) {
    let got = got.unwrap_or_else(|| panic!("{what}: no gradient"));
    assert_close(what, got, want.view(), FD_TOL);
}

#[test]
fn seed_gradients_match_finite_differences() {
    // Every leaf of the seed network, including the target y, at the seed's values and at a
    // less saturated point where the gradients are not tiny.
    let mut s = seed_graph();
    let mut rng = Rng::new(3);
    let feeds = [
        seed_feed(&s),
        vec![
            (s.x, rng.array(IxDyn(&[4, 2]))),
            (s.y, rng.array(IxDyn(&[4]))),
            (s.w, rng.array(IxDyn(&[2, 1]))),
            (s.b, rng.array(IxDyn(&[1]))),
        ],
    ];
    for feed in feeds {
        let order = s.g.topological_sort(feed.clone()).unwrap();
        s.g.forward_and_backward(&order, s.cost).unwrap();
        let ids = [s.x, s.y, s.w, s.b];
        let grads: Vec<ArrayD<f64>> = ids
            .iter()
            .map(|&id| s.g.gradient(id).unwrap().to_owned())
            .collect();
        for (k, (&id, grad)) in ids.iter().zip(&grads).enumerate() {
            let fd = fd_grad(&mut s.g, &feed, k, s.cost);
            assert_fd(s.g.name(id).unwrap(), Some(grad.view()), &fd);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pitfalls
// ---------------------------------------------------------------------------------------------

#[test]
fn fan_out_gradients_are_summed_over_every_consumer() {
    // X feeds three ops (linear, sigmoid, add); W and b each feed two linears.
    //   f1 = linear(X, W, b); f2 = linear(f1, W, b); s = sigmoid(X); h = add(f2, s, X)
    //   cost = mse(y, h), y: [6], h: [3, 2]
    let mut g = Graph::<f64>::new();
    let (x, w, b, y) = (
        g.input("X").unwrap(),
        g.input("W").unwrap(),
        g.input("b").unwrap(),
        g.input("y").unwrap(),
    );
    let f1 = g.linear("f1", x, w, b).unwrap();
    let f2 = g.linear("f2", f1, w, b).unwrap();
    let s = g.sigmoid("s", x).unwrap();
    let h = g.op("h", Op::Add, &[f2, s, x]).unwrap();
    let cost = g.mse("cost", y, h).unwrap();

    let mut rng = Rng::new(42);
    let feed = vec![
        (x, rng.array(IxDyn(&[3, 2]))),
        (w, rng.array(IxDyn(&[2, 2]))),
        (b, rng.array(IxDyn(&[2]))),
        (y, rng.array(IxDyn(&[6]))),
    ];
    let order = g.topological_sort(feed.clone()).unwrap();
    g.forward_and_backward(&order, cost).unwrap();

    // Against finite differences of the whole graph.
    for (k, &id) in [x, w, b, y].iter().enumerate() {
        let got = g.gradient(id).unwrap().to_owned();
        let fd = fd_grad(&mut g, &feed, k, cost);
        assert_fd(g.name(id).unwrap(), Some(got.view()), &fd);
    }
    // Restore the base point's values and gradients.
    let order = g.topological_sort(feed.clone()).unwrap();
    g.forward_and_backward(&order, cost).unwrap();

    // Against the sum of each consumer's contribution, written out by hand.
    let xv: Array2<f64> = feed[0].1.clone().into_dimensionality().unwrap();
    let wv: Array2<f64> = feed[1].1.clone().into_dimensionality().unwrap();
    let bv: Array1<f64> = feed[2].1.clone().into_dimensionality().unwrap();
    let yv: Array2<f64> = feed[3].1.clone().into_shape_with_order((3, 2)).unwrap();
    let f1v = xv.dot(&wv) + &bv;
    let f2v = f1v.dot(&wv) + &bv;
    let sv = xv.mapv(sig);
    let hv = &f2v + &sv + &xv;
    let gh = (&yv - &hv) * (-2.0 / 6.0);
    let gf1 = gh.dot(&wv.t());
    let dx_linear = gf1.dot(&wv.t());
    let dx_sigmoid = &sv * &sv.mapv(|v| 1.0 - v) * &gh;
    let dx_add = gh.clone();
    let dx = &dx_linear + &dx_sigmoid + &dx_add;
    let dw = f1v.t().dot(&gh) + xv.t().dot(&gf1);
    let db = gh.sum_axis(Axis(0)) + gf1.sum_axis(Axis(0));

    let close = |what: &str, got: ArrayViewD<'_, f64>, want: &ArrayD<f64>| {
        assert_eq!(got.shape(), want.shape(), "{what}");
        for (a, b) in got.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12, "{what}: {got} vs {want}");
        }
    };
    close(
        "dX = sum of three",
        g.gradient(x).unwrap(),
        &dx.clone().into_dyn(),
    );
    close("dW = sum of two", g.gradient(w).unwrap(), &dw.into_dyn());
    close("db = sum of two", g.gradient(b).unwrap(), &db.into_dyn());
    // No single consumer's contribution is the whole gradient.
    for part in [&dx_linear, &dx_sigmoid, &dx_add] {
        let diff = (&dx - part).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            diff > 1e-6,
            "test data cannot tell the sum from one consumer"
        );
    }
}

#[test]
fn same_node_twice_in_one_op() {
    // add(x, x) and mse(x, x)-style reuse: both slots contribute.
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("x").unwrap(), g.input("y").unwrap());
    let d = g.add("d", x, x).unwrap();
    let cost = g.mse("cost", y, d).unwrap();
    let order = g
        .topological_sort([
            (x, array![1., 2.].into_dyn()),
            (y, array![0., 0.].into_dyn()),
        ])
        .unwrap();
    let loss = g.forward_and_backward(&order, cost).unwrap();
    // cost = ((2)² + (4)²)/2 = 10; d cost/dx = 2 · (2/2)(2x - 0) = 4x.
    assert!((loss - 10.0).abs() < 1e-12);
    assert_values("dx", g.gradient(x), &[2], &[4.0, 8.0], 1e-12);
}

#[test]
fn db_has_b_shape_for_every_batch_size() {
    for m in [1, 2, 5] {
        let mut g = Graph::<f64>::new();
        let (x, w, b, y) = (
            g.input("X").unwrap(),
            g.input("W").unwrap(),
            g.input("b").unwrap(),
            g.input("y").unwrap(),
        );
        let f = g.linear("f", x, w, b).unwrap();
        let cost = g.mse("cost", y, f).unwrap();
        let mut rng = Rng::new(m as u64);
        let order = g
            .topological_sort([
                (x, rng.array(IxDyn(&[m, 3]))),
                (w, rng.array(IxDyn(&[3, 4]))),
                (b, rng.array(IxDyn(&[4]))),
                (y, rng.array(IxDyn(&[m, 4]))),
            ])
            .unwrap();
        g.forward_and_backward(&order, cost).unwrap();
        assert_eq!(g.gradient(b).unwrap().shape(), &[4], "m = {m}");
        assert_eq!(g.gradient(w).unwrap().shape(), &[3, 4], "m = {m}");
        assert_eq!(g.gradient(x).unwrap().shape(), &[m, 3], "m = {m}");
        // db = Σ_rows df, where df = dcost/df.
        let df = g.gradient(f).unwrap().to_owned();
        let want = df.sum_axis(Axis(0));
        let got = g.gradient(b).unwrap();
        for (a, e) in got.iter().zip(want.iter()) {
            assert!((a - e).abs() < 1e-14);
        }
    }
}

#[test]
fn the_cost_is_named_not_assumed_last() {
    // A node created (and sorted) after the cost must not be taken for it.
    let mut s = seed_graph();
    let extra = s.g.op("extra", Op::Sigmoid, &[s.a]).unwrap();
    let order = s.g.topological_sort(seed_feed(&s)).unwrap();
    assert_eq!(order.last(), Some(&extra));
    let loss = s.g.forward_and_backward(&order, s.cost).unwrap();
    assert!((loss - 2.4999498960133932).abs() < TOL);
    assert_values("db", s.g.gradient(s.b), &[1], &[-5.01028709e-05], TOL);
    assert!(
        s.g.gradient(extra).is_err(),
        "a node that does not reach the cost got a gradient"
    );
}

#[test]
fn unfed_input_is_missing_feed() {
    // Everything but b: the order needs no values; the forward pass names what is missing.
    let mut s = seed_graph();
    let feed: Vec<_> = seed_feed(&s)
        .into_iter()
        .filter(|(id, _)| *id != s.b)
        .collect();
    let order = s.g.topological_sort(feed).unwrap();
    let err = s.g.forward_and_backward(&order, s.cost).unwrap_err();
    assert_eq!(
        err,
        Error::MissingFeed {
            input: "b".into(),
            needed_by: "f".into()
        }
    );
    assert!(err.to_string().contains("`b`"), "{err}");
    assert!(s.g.value(s.f).is_err(), "nothing was computed");

    // Everything but the target y.
    let mut s = seed_graph();
    let feed: Vec<_> = seed_feed(&s)
        .into_iter()
        .filter(|(id, _)| *id != s.y)
        .collect();
    let order = s.g.topological_sort(feed).unwrap();
    let err = s.g.forward_and_backward(&order, s.cost).unwrap_err();
    assert_eq!(
        err,
        Error::MissingFeed {
            input: "y".into(),
            needed_by: "cost".into()
        }
    );

    // An unfed input behind an op: the input is named, with the op reading it.
    let mut g = Graph::<f64>::new();
    let (x, u) = (g.input("x").unwrap(), g.input("u").unwrap());
    let su = g.op("su", Op::Sigmoid, &[u]).unwrap();
    let _sum = g.op("sum", Op::Add, &[x, su]).unwrap();
    let order = g.topological_sort([(x, array![1.].into_dyn())]).unwrap();
    let err = g.forward_order(&order).unwrap_err();
    assert_eq!(
        err,
        Error::MissingFeed {
            input: "u".into(),
            needed_by: "su".into()
        }
    );
}

/// Issue 9: the order needs no dummy batch. Sort once before the loop, feed each batch with
/// `set_value`, run: the seed's loop, without feeding anything first.
#[test]
fn the_order_is_sorted_once_before_any_batch() {
    let mut s = seed_graph();
    let order = s.g.topological_sort([]).unwrap();
    assert_eq!(order, vec![s.x, s.y, s.w, s.b, s.f, s.a, s.cost]);
    let mut rng = Rng::new(5);
    s.g.set_value(s.w, array![[2.], [3.]].into_dyn()).unwrap();
    s.g.set_value(s.b, array![-3.].into_dyn()).unwrap();
    for rows in [2, 5, 3] {
        s.g.set_value(s.x, rng.array(IxDyn(&[rows, 2]))).unwrap();
        s.g.set_value(s.y, rng.array(IxDyn(&[rows]))).unwrap();
        let loss = s.g.forward_and_backward(&order, s.cost).unwrap();
        assert!(loss.is_finite());
        assert_eq!(s.g.gradient(s.x).unwrap().shape(), &[rows, 2]);
        s.g.sgd_update(&[s.w, s.b], 0.1).unwrap();
    }
}

#[test]
fn sgd_update_moves_by_exactly_minus_lr_times_grad() {
    let mut s = seed_graph();
    let mut rng = Rng::new(9);
    let feed = vec![
        (s.x, rng.array(IxDyn(&[5, 2]))),
        (s.y, rng.array(IxDyn(&[5]))),
        (s.w, rng.array(IxDyn(&[2, 1]))),
        (s.b, rng.array(IxDyn(&[1]))),
    ];
    let order = s.g.topological_sort(feed.clone()).unwrap();
    let loss0 = s.g.forward_and_backward(&order, s.cost).unwrap();
    let lr = 1e-2;
    let before: Vec<(ArrayD<f64>, ArrayD<f64>)> = [s.w, s.b]
        .iter()
        .map(|&id| {
            (
                s.g.value(id).unwrap().to_owned(),
                s.g.gradient(id).unwrap().to_owned(),
            )
        })
        .collect();
    let x_before = s.g.value(s.x).unwrap().to_owned();
    s.g.sgd_update(&[s.w, s.b], lr).unwrap();
    for ((v0, grad), id) in before.iter().zip([s.w, s.b]) {
        let v1 = s.g.value(id).unwrap();
        assert_eq!(v1.shape(), v0.shape());
        for ((&new, &old), &gr) in v1.iter().zip(v0.iter()).zip(grad.iter()) {
            assert_eq!(new, old - lr * gr, "{}", s.g.name(id).unwrap());
            assert_ne!(gr, 0.0);
        }
    }
    // Non-trainables are untouched.
    assert_eq!(s.g.value(s.x).unwrap(), x_before.view());

    // A small step against the gradient lowers the cost (re-fed with the updated values).
    let order =
        s.g.topological_sort([
            (s.x, feed[0].1.clone()),
            (s.y, feed[1].1.clone()),
            (s.w, s.g.value(s.w).unwrap().to_owned()),
            (s.b, s.g.value(s.b).unwrap().to_owned()),
        ])
        .unwrap();
    let loss1 = s.g.forward_and_backward(&order, s.cost).unwrap();
    assert!(loss1 < loss0, "{loss1} !< {loss0}");
    let gnorm2: f64 = before
        .iter()
        .flat_map(|(_, g)| g.iter())
        .map(|g| g * g)
        .sum();
    // First order: loss1 ≈ loss0 - lr · |grad|².
    assert!(
        ((loss0 - loss1) - lr * gnorm2).abs() < 0.05 * lr * gnorm2,
        "{loss0} {loss1} {gnorm2}"
    );
}

#[test]
fn sgd_update_before_backward_is_an_error() {
    let mut s = seed_graph();
    let err = s.g.sgd_update(&[s.w], 1e-2).unwrap_err();
    assert!(
        matches!(&err, Error::NoGradient { name, .. } if name == "W"),
        "{err:?}"
    );
}

#[test]
fn non_scalar_cost_is_an_error() {
    let mut s = seed_graph();
    let order = s.g.topological_sort(seed_feed(&s)).unwrap();
    let err = s.g.forward_and_backward(&order, s.a).unwrap_err();
    match &err {
        Error::Shape { node, found, .. } => {
            assert_eq!(node, "a");
            assert_eq!(found, &vec![2, 1]);
        }
        other => panic!("expected Error::Shape for a non-scalar cost, got {other:?}"),
    }
    s.g.forward_order(&order).unwrap();
    let err = s.g.backward_order(&order, s.f).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { node, .. } if node == "f"),
        "{err:?}"
    );
    // An input is not a cost either.
    let err = s.g.backward_order(&order, s.x).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { node, .. } if node == "X"),
        "{err:?}"
    );
}

#[test]
fn backward_before_forward_is_an_error() {
    let mut s = seed_graph();
    let order = s.g.topological_sort(seed_feed(&s)).unwrap();
    let err = s.g.backward_order(&order, s.cost).unwrap_err();
    assert_eq!(err, Error::BackwardBeforeForward);
}

/// Runs the seed network with one leaf's value replaced and returns the error.
fn seed_error_with(replace: &str, value: ArrayD<f64>) -> Error {
    let mut s = seed_graph();
    let id = s.g.find(replace).unwrap();
    let feed: Vec<_> = seed_feed(&s)
        .into_iter()
        .map(|(i, v)| if i == id { (i, value.clone()) } else { (i, v) })
        .collect();
    let order = s.g.topological_sort(feed).unwrap();
    s.g.forward_and_backward(&order, s.cost).unwrap_err()
}

#[test]
fn wrong_shapes_name_the_node() {
    let z = |shape: &[usize]| ArrayD::<f64>::zeros(IxDyn(shape));
    // (leaf replaced, its bad shape, the op node to blame, words the message must contain)
    let cases: [(&str, &[usize], &str, &[&str]); 6] = [
        ("W", &[3, 1], "f", &["`W`", "`X`", "3", "2"]), // inner dims: X is [2, 2]
        ("b", &[2], "f", &["`b`", "`W`"]),              // bias length: W is [2, 1]
        ("X", &[2], "f", &["`X`", "rank"]),             // rank
        ("b", &[], "f", &["`b`", "rank"]),              // scalar bias
        ("y", &[3], "cost", &["`y`", "`a`", "[3]", "[2, 1]"]), // element counts
        ("y", &[2, 2], "cost", &["`y`", "`a`"]),
    ];
    for (leaf, shape, node, words) in cases {
        let err = seed_error_with(leaf, z(shape));
        let Error::OpShape { node: got, message } = &err else {
            panic!("{leaf} {shape:?}: expected Error::OpShape, got {err:?}");
        };
        assert_eq!(got, node, "{leaf} {shape:?}: {err}");
        for w in words {
            assert!(
                message.contains(w),
                "{leaf} {shape:?}: `{w}` not in `{err}`"
            );
        }
        assert!(err.to_string().contains(&format!("`{node}`")), "{err}");
    }

    // add with mismatched shapes, three arguments.
    let mut g = Graph::<f64>::new();
    let (p, q, r) = (
        g.input("p").unwrap(),
        g.input("q").unwrap(),
        g.input("r").unwrap(),
    );
    let sum = g.op("sum", Op::Add, &[p, q, r]).unwrap();
    let order = g
        .topological_sort([(p, z(&[2, 3])), (q, z(&[2, 3])), (r, z(&[3, 2]))])
        .unwrap();
    let err = g.forward_order(&order).unwrap_err();
    assert!(
        matches!(&err, Error::OpShape { node, message } if node == "sum" && message.contains("`r`")),
        "{err}"
    );
    assert!(g.value(sum).is_err());
}

#[test]
fn wrong_arity_is_an_error() {
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("x").unwrap(), g.input("y").unwrap());
    for (op, args) in [
        (Op::Add, vec![x]),
        (Op::Sigmoid, vec![x, y]),
        (Op::Linear, vec![x, y]),
        (Op::Mse, vec![x]),
    ] {
        let err = g.op("bad", op, &args).unwrap_err();
        assert!(
            matches!(&err, Error::OpShape { node, .. } if node == "bad"),
            "{op}: {err:?}"
        );
    }
}

#[test]
fn integer_looking_inputs_are_floats() {
    // x=10, y=5 are f64; halves survive (no integer arithmetic anywhere).
    let mut g = Graph::<f64>::new();
    let (y, a) = (g.input("y").unwrap(), g.input("a").unwrap());
    let cost = g.mse("cost", y, a).unwrap();
    let order = g
        .topological_sort([
            (y, array![1., 2.].into_dyn()),
            (a, array![2., 2.].into_dyn()),
        ])
        .unwrap();
    let loss = g.forward_and_backward(&order, cost).unwrap();
    assert_eq!(loss, 0.5);
    assert_values("dy", g.gradient(y), &[2], &[-1.0, 0.0], 0.0);
}

// ---------------------------------------------------------------------------------------------
// Once user-reachable panics; each is now a typed error.
// ---------------------------------------------------------------------------------------------

#[test]
fn backward_after_refeed_without_forward_is_an_error_not_a_panic() {
    let mut s = seed_graph();
    let order = s.g.topological_sort(seed_feed(&s)).unwrap();
    s.g.forward_order(&order).unwrap();
    // A new batch of 4 rows is fed (the sort sets the values), but forward is not re-run.
    let order =
        s.g.topological_sort([
            (s.x, ArrayD::zeros(IxDyn(&[4, 2]))),
            (s.y, ArrayD::zeros(IxDyn(&[4]))),
            (s.w, array![[2.], [3.]].into_dyn()),
            (s.b, array![-3.].into_dyn()),
        ])
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.g.backward_order(&order, s.cost)
    }));
    let r = r.expect("backward panicked instead of returning an error");
    assert_eq!(
        r,
        Err(miniflow_core::Error::BackwardBeforeForward),
        "backward used stale forward values of another batch size"
    );
}

#[test]
fn sgd_update_after_reshaping_a_trainable_is_an_error_not_a_panic() {
    let mut s = seed_graph();
    let order = s.g.topological_sort(seed_feed(&s)).unwrap();
    s.g.forward_and_backward(&order, s.cost).unwrap();
    s.g.set_value(s.w, ArrayD::zeros(IxDyn(&[3, 3]))).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.g.sgd_update(&[s.w], 1e-2)
    }));
    let r = r.expect("sgd_update panicked instead of returning an error");
    assert!(
        r.is_err(),
        "sgd_update applied a [2, 1] gradient to a [3, 3] value"
    );
}

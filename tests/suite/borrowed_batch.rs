//! Issue 11: a step on a borrowed batch (`sgd_step_on`, `loss_on`) reads the inputs where they
//! lie and computes exactly what `feed` + `sgd_step` computes.

use crate::common;

use common::nets::{TwoLayer, TwoLayerBatch};
use miniflow::ndarray::{array, s, Array1, Array2, Axis};
use miniflow::{Error, Network};

miniflow::network! {
    /// Every kind of input: a `#[grad]` matrix, a vector sharing its named dim, a scalar; an
    /// output computed on its own; the sigmoid fused into the linear after it.
    struct Mixed {
        #[grad] input X: [batch, 3];
        input y: [batch];
        input t: [];
        param W: [3, 4];
        param b: [4];
        param V: [4, 1];
        param c: [1];
        h = linear(X, W, b);
        s = sigmoid(h);
        output o = linear(s, V, c);
        e = mse(y, o);
        loss l = mul(t, e);
    }
}

miniflow::network! {
    #[elem(f32)]
    struct Mixed32 {
        input X: [batch, 3];
        input y: [batch];
        param W: [3, 4];
        param b: [4];
        param V: [4, 1];
        param c: [1];
        h = linear(X, W, b);
        s = relu(h);
        o = linear(s, V, c);
        loss l = mse(y, o);
    }
}

fn data(rows: usize, cols: usize, seed: f64) -> (Array2<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * cols + j) as f64 * 0.37 + seed).sin()
    });
    let y = Array1::from_shape_fn(rows, |i| (i as f64 * 0.7 + seed).cos());
    (x, y)
}

fn params<N: Network>(net: &mut N) -> Vec<Vec<N::Elem>> {
    let mut out = Vec::new();
    net.visit_params(&mut |p| out.push(p.value.iter().copied().collect()));
    out
}

#[test]
fn a_borrowed_step_is_bit_identical_to_feed_and_step() {
    let (mut fed, mut borrowed) = (Mixed::new(), Mixed::new());
    for (k, rows) in [7, 7, 3, 7, 12].into_iter().enumerate() {
        let (x, y) = data(rows, 3, k as f64);
        let t = array![0.5 + k as f64];
        let t = t.index_axis(Axis(0), 0);
        fed.feed(Mixed::X, &x).unwrap();
        fed.feed(Mixed::y, &y).unwrap();
        fed.feed(Mixed::t, &t).unwrap();
        let a = fed.sgd_step(0.3).unwrap();
        let b = borrowed
            .sgd_step_on(
                MixedBatch {
                    X: x.view(),
                    y: y.view(),
                    t,
                },
                0.3,
            )
            .unwrap();
        assert_eq!(a.to_bits(), b.to_bits(), "step {k}: loss");
        assert_eq!(params(&mut fed), params(&mut borrowed), "step {k}: params");
    }
    // The loss alone, then every value it computed.
    let (x, y) = data(5, 3, 9.0);
    let t = array![2.0];
    let t = t.index_axis(Axis(0), 0);
    fed.feed(Mixed::X, &x).unwrap();
    fed.feed(Mixed::y, &y).unwrap();
    fed.feed(Mixed::t, &t).unwrap();
    let a = fed.forward().unwrap();
    let b = borrowed
        .loss_on(MixedBatch {
            X: x.view(),
            y: y.view(),
            t,
        })
        .unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(
        fed.value(Mixed::s).unwrap(),
        borrowed.value(Mixed::s).unwrap()
    );
}

#[test]
fn f32_and_check_mode_agree_too() {
    let (mut fed, mut borrowed) = (Mixed32::new(), Mixed32::new());
    fed.set_check_finite(true);
    borrowed.set_check_finite(true);
    for k in 0..4 {
        let (x, y) = data(6, 3, k as f64);
        let (x, y) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
        fed.feed(Mixed32::X, &x).unwrap();
        fed.feed(Mixed32::y, &y).unwrap();
        let a = fed.sgd_step(0.1).unwrap();
        let b = borrowed
            .sgd_step_on(
                Mixed32Batch {
                    X: x.view(),
                    y: y.view(),
                },
                0.1,
            )
            .unwrap();
        assert_eq!(a.to_bits(), b.to_bits(), "step {k}");
        assert_eq!(params(&mut fed), params(&mut borrowed), "step {k}");
    }
}

/// A transposed, a sliced, a reversed (negative strides) and a broadcast view are read in
/// place too; the kernels' general
/// path agrees with the contiguous one to rounding.
#[test]
fn views_of_any_layout_are_accepted() {
    let (x, y) = data(8, 13, 1.0);
    let xt = x.t().to_owned(); // [13, 8]: its transpose is an [8, 13] view, column-major
    let wide = Array2::from_shape_fn(
        (8, 26),
        |(i, j)| if j % 2 == 0 { x[[i, j / 2]] } else { -1.0 },
    );
    let every_other = wide.slice(s![.., ..;2]);
    // Negative strides: x and y stored back to front, read through reversed views.
    let x_rev = x.slice(s![..;-1, ..;-1]).to_owned();
    let y_rev = y.slice(s![..;-1]).to_owned();
    let (reversed, y_view) = (x_rev.slice(s![..;-1, ..;-1]), y_rev.slice(s![..;-1]));
    assert_eq!(y_view, y.view());
    let yy = y.clone();
    let layouts = [xt.t(), every_other, reversed];
    let mut reference = TwoLayer::new();
    reference.feed(TwoLayer::X, &x).unwrap();
    reference.feed(TwoLayer::y, &yy).unwrap();
    let want = reference.sgd_step(0.5).unwrap();
    let want_params = params(&mut reference);
    for view in layouts {
        assert_eq!(view, x.view());
        let mut net = TwoLayer::new();
        let got = net
            .sgd_step_on(TwoLayerBatch { X: view, y: y_view }, 0.5)
            .unwrap();
        assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
        for (p, q) in params(&mut net).iter().zip(&want_params) {
            for (a, b) in p.iter().zip(q) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
    // One row broadcast to every row of the batch (a stride of 0).
    let row = x.row(0);
    let bx = row.broadcast((8, 13)).unwrap();
    let mut net = TwoLayer::new();
    let mut reference = TwoLayer::new();
    reference.feed(TwoLayer::X, &bx.to_owned()).unwrap();
    reference.feed(TwoLayer::y, &yy).unwrap();
    let want = reference.sgd_step(0.5).unwrap();
    let got = net
        .sgd_step_on(
            TwoLayerBatch {
                X: bx,
                y: yy.view(),
            },
            0.5,
        )
        .unwrap();
    assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
}

/// The network's own input buffers are neither read nor changed: what was fed stays fed.
#[test]
fn fed_inputs_are_left_as_they_were() {
    let (x, y) = data(4, 3, 0.0);
    let (x2, y2) = data(6, 3, 5.0);
    let t = array![1.0];
    let t = t.index_axis(Axis(0), 0);
    let mut net = Mixed::new();
    net.feed(Mixed::X, &x).unwrap();
    net.feed(Mixed::y, &y).unwrap();
    net.feed(Mixed::t, &t).unwrap();
    let before = net.forward().unwrap();
    net.sgd_step_on(
        MixedBatch {
            X: x2.view(),
            y: y2.view(),
            t,
        },
        0.0,
    )
    .unwrap();
    assert_eq!(net.value(Mixed::X).unwrap(), x);
    // lr 0 changed nothing, so a forward of the fed inputs gives the same loss.
    assert!(matches!(net.backward(), Err(Error::BackwardBeforeForward)));
    assert_eq!(net.forward().unwrap().to_bits(), before.to_bits());
    // An unfed network stays unfed.
    let mut fresh = Mixed::new();
    fresh
        .sgd_step_on(
            MixedBatch {
                X: x2.view(),
                y: y2.view(),
                t,
            },
            0.1,
        )
        .unwrap();
    assert!(
        matches!(fresh.forward(), Err(Error::MissingFeed { .. })),
        "{:?}",
        fresh.forward()
    );
}

/// Every check `feed` and `sgd_step` make, with nothing changed on `Err`.
#[test]
fn bad_batches_are_errors_that_change_nothing() {
    let (x, y) = data(4, 3, 0.0);
    let t = array![1.0];
    let t = t.index_axis(Axis(0), 0);
    let mut net = Mixed::new();
    let start = params(&mut net);
    let (x4, _) = data(4, 4, 0.0);
    let err = net
        .sgd_step_on(
            MixedBatch {
                X: x4.view(),
                y: y.view(),
                t,
            },
            0.1,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { node, found, .. } if node == "X" && found == &[4, 4]),
        "{err}"
    );
    let short = y.slice(s![..3]);
    let err = net
        .sgd_step_on(
            MixedBatch {
                X: x.view(),
                y: short,
                t,
            },
            0.1,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::InconsistentDim { dim, first_size: 4, second_size: 3, .. } if dim == "batch"),
        "{err}"
    );
    let empty = Array2::<f64>::zeros((0, 3));
    let err = net
        .sgd_step_on(
            MixedBatch {
                X: empty.view(),
                y: y.slice(s![..0]),
                t,
            },
            0.1,
        )
        .unwrap_err();
    assert!(matches!(err, Error::EmptyBatch { .. }), "{err}");
    let err = net
        .sgd_step_on(
            MixedBatch {
                X: x.view(),
                y: y.view(),
                t,
            },
            f64::NAN,
        )
        .unwrap_err();
    assert!(matches!(err, Error::BadHyperparameter { .. }), "{err}");
    // Check mode names a non-finite input itself.
    net.set_check_finite(true);
    let mut bad = x.clone();
    bad[[2, 1]] = f64::NAN;
    let err = net
        .sgd_step_on(
            MixedBatch {
                X: bad.view(),
                y: y.view(),
                t,
            },
            0.1,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, leaf: true, .. } if node == "X"),
        "{err}"
    );
    assert_eq!(params(&mut net), start);
}

/// `feed` copies at the value's own rank (no dynamic-rank view): every layout lands in the
/// buffer as its owned copy would, and a name with the wrong rank is still an error.
#[test]
fn feed_copies_any_layout_at_its_own_rank() {
    let (x, y) = data(8, 13, 3.0);
    let xt = x.t().to_owned();
    let wide = Array2::from_shape_fn(
        (8, 26),
        |(i, j)| if j % 2 == 0 { x[[i, j / 2]] } else { 7.0 },
    );
    let x_rev = x.slice(s![..;-1, ..;-1]).to_owned();
    let reversed = x_rev.slice(s![..;-1, ..;-1]);
    for view in [x.view(), xt.t(), wide.slice(s![.., ..;2]), reversed] {
        let mut net = TwoLayer::new();
        net.feed(TwoLayer::X, &view).unwrap();
        assert_eq!(net.value(TwoLayer::X).unwrap(), x);
    }
    let mut net = TwoLayer::new();
    net.feed(TwoLayer::X, &x).unwrap();
    let err = net.feed("X", &y).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { node, found, .. } if node == "X" && found == &[8]),
        "{err}"
    );
    assert_eq!(
        net.value(TwoLayer::X).unwrap(),
        x,
        "a failed feed changes nothing"
    );
    // A smaller batch after a larger one: the buffer takes the new shape.
    let x3 = x.slice(s![..3, ..]);
    net.feed(TwoLayer::X, &x3).unwrap();
    assert_eq!(net.value(TwoLayer::X).unwrap(), x3);
}

//! Every kernel in `miniflow_core::ops` checked against central finite differences of its own
//! forward, and against an independent reference for the forward itself.
//!
//! Each op is turned into a scalar objective by contracting its output with a fixed random
//! "upstream gradient" `G`: `L = Σ G ⊙ op(inputs)` (for `mse`, whose output is a scalar,
//! `L = g · mse(y, a)` with a scalar `g`). The backward kernel is called with `G` (or `g`) and
//! must return `∂L/∂input` for every input.

use crate::common;

use common::{assert_close, contract, numeric_grad, rel_err, Rng, EPS, EXACT_TOL, FD_TOL};
use miniflow_core::ndarray::{
    s, Array1, Array2, ArrayD, ArrayView1, ArrayView2, Axis, IxDyn, ShapeBuilder,
};
use miniflow_core::ops::{add, linear, mse, sigmoid, GradOut};

// ---------------------------------------------------------------------------------------------
// The checker itself must be able to fail.
// ---------------------------------------------------------------------------------------------

#[test]
fn checker_rejects_a_wrong_gradient() {
    let mut rng = Rng::new(1);
    let x = rng.array((3, 4));
    // f(x) = Σ x³, so df/dx = 3x².
    let f = |x: &Array2<f64>| x.iter().map(|v| v * v * v).sum::<f64>();
    let num = numeric_grad(&x, f);
    let right = x.mapv(|v| 3.0 * v * v);
    assert_close("right", num.view(), right.view(), FD_TOL);

    // A gradient off by 1e-4 in one element, or transposed, must be caught.
    let mut off = right.clone();
    off[[1, 2]] += 1e-4;
    let caught = std::panic::catch_unwind(|| {
        assert_close("off", num.view(), off.view(), FD_TOL);
    });
    assert!(caught.is_err(), "a gradient off by 1e-4 passed");
    let caught = std::panic::catch_unwind(|| {
        assert_close("NaN", num.view(), right.mapv(|_| f64::NAN).view(), FD_TOL);
    });
    assert!(caught.is_err(), "a NaN gradient passed");
}

#[test]
fn prng_is_deterministic_and_spread() {
    let a: Vec<f64> = (0..64)
        .scan(Rng::new(7), |r, _| Some(r.uniform(-1.0, 1.0)))
        .collect();
    let b: Vec<f64> = (0..64)
        .scan(Rng::new(7), |r, _| Some(r.uniform(-1.0, 1.0)))
        .collect();
    assert_eq!(a, b);
    assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    assert!(a.iter().any(|&v| v < -0.5) && a.iter().any(|&v| v > 0.5));
}

// ---------------------------------------------------------------------------------------------
// linear
// ---------------------------------------------------------------------------------------------

/// `x·w + b` by the textbook triple loop: an oracle independent of the kernel.
fn linear_ref(
    x: ArrayView2<'_, f64>,
    w: ArrayView2<'_, f64>,
    b: ArrayView1<'_, f64>,
) -> Array2<f64> {
    let (m, k) = x.dim();
    let n = w.ncols();
    Array2::from_shape_fn((m, n), |(i, j)| {
        b[j] + (0..k).map(|t| x[[i, t]] * w[[t, j]]).sum::<f64>()
    })
}

fn linear_fwd(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> Array2<f64> {
    let mut out = Array2::from_elem((x.nrows(), w.ncols()), f64::NAN);
    linear::forward(x.view(), w.view(), b.view(), out.view_mut());
    out
}

/// (m, k, n): x is [m, k], w is [k, n], b is [n].
const LINEAR_SHAPES: [(usize, usize, usize); 5] =
    [(1, 1, 1), (3, 2, 4), (5, 7, 3), (4, 3, 1), (2, 1, 6)];

#[test]
fn linear_forward_matches_reference() {
    let mut rng = Rng::new(10);
    for (m, k, n) in LINEAR_SHAPES {
        let (x, w, b) = (rng.array((m, k)), rng.array((k, n)), rng.array(n));
        let out = linear_fwd(&x, &w, &b);
        let want = linear_ref(x.view(), w.view(), b.view());
        assert_close(
            &format!("linear {m}x{k}x{n}"),
            out.view(),
            want.view(),
            EXACT_TOL,
        );
    }
}

#[test]
fn linear_seed_values() {
    // The course's Linear test: X=[[-1,-2],[-1,-2]], W=[[2,-3],[2,-3]], b=[-3,-5].
    let x = Array2::from_shape_vec((2, 2), vec![-1., -2., -1., -2.]).unwrap();
    let w = Array2::from_shape_vec((2, 2), vec![2., -3., 2., -3.]).unwrap();
    let b = Array1::from_vec(vec![-3., -5.]);
    let out = linear_fwd(&x, &w, &b);
    let want = Array2::from_shape_vec((2, 2), vec![-9., 4., -9., 4.]).unwrap();
    assert_close("seed linear", out.view(), want.view(), EXACT_TOL);
}

#[test]
fn linear_backward_matches_finite_differences() {
    let mut rng = Rng::new(11);
    for (m, k, n) in LINEAR_SHAPES {
        let (x, w, b) = (rng.array((m, k)), rng.array((k, n)), rng.array(n));
        let g = rng.array((m, n));
        let obj =
            |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| contract(&g, &linear_fwd(x, w, b));

        // Junk in every buffer: `write` must overwrite it.
        let mut dx = rng.junk((m, k));
        let mut dw = rng.junk((k, n));
        let mut db = rng.junk(n);
        linear::backward(
            x.view(),
            w.view(),
            g.view(),
            Some(GradOut::write(dx.view_mut())),
            Some(GradOut::write(dw.view_mut())),
            Some(GradOut::write(db.view_mut())),
        );

        let tag = format!("linear {m}x{k}x{n}");
        let num_dx = numeric_grad(&x, |x| obj(x, &w, &b));
        let num_dw = numeric_grad(&w, |w| obj(&x, w, &b));
        let num_db = numeric_grad(&b, |b| obj(&x, &w, b));
        assert_close(&format!("{tag} dx"), dx.view(), num_dx.view(), FD_TOL);
        assert_close(&format!("{tag} dw"), dw.view(), num_dw.view(), FD_TOL);
        assert_close(&format!("{tag} db"), db.view(), num_db.view(), FD_TOL);

        // And against the closed forms, to rounding.
        assert_close(
            &format!("{tag} dx = g·wᵀ"),
            dx.view(),
            g.dot(&w.t()).view(),
            EXACT_TOL,
        );
        assert_close(
            &format!("{tag} dw = xᵀ·g"),
            dw.view(),
            x.t().dot(&g).view(),
            EXACT_TOL,
        );
        assert_close(
            &format!("{tag} db = Σ_rows g"),
            db.view(),
            g.sum_axis(Axis(0)).view(),
            EXACT_TOL,
        );
    }
}

#[test]
fn linear_backward_each_gradient_alone() {
    // Passing `None` for the others must not change the one asked for.
    let mut rng = Rng::new(12);
    let (m, k, n) = (3, 4, 2);
    let (x, w, g) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
    let mut dx = Array2::zeros((m, k));
    let mut dw = Array2::zeros((k, n));
    let mut db = Array1::zeros(n);
    linear::backward(
        x.view(),
        w.view(),
        g.view(),
        Some(GradOut::write(dx.view_mut())),
        None,
        None,
    );
    linear::backward(
        x.view(),
        w.view(),
        g.view(),
        None,
        Some(GradOut::write(dw.view_mut())),
        None,
    );
    linear::backward(
        x.view(),
        w.view(),
        g.view(),
        None,
        None,
        Some(GradOut::write(db.view_mut())),
    );
    assert_close("dx alone", dx.view(), g.dot(&w.t()).view(), EXACT_TOL);
    assert_close("dw alone", dw.view(), x.t().dot(&g).view(), EXACT_TOL);
    assert_close("db alone", db.view(), g.sum_axis(Axis(0)).view(), EXACT_TOL);
}

#[test]
fn linear_on_strided_and_transposed_views() {
    // Kernels take views: Fortran-order, transposed and stepped views must give the same numbers.
    let mut rng = Rng::new(13);
    let (m, k, n) = (4, 3, 5);
    let x = rng.array((m, k));
    let w = rng.array((k, n));
    let b = rng.array(n);
    let g = rng.array((m, n));

    let xt = x.t().to_owned(); // [k, m], so xt.t() is a transposed view of x's values
    let mut w_f = Array2::zeros((k, n).f());
    w_f.assign(&w);
    let b_wide = {
        let mut a = rng.junk(2 * n);
        a.slice_mut(s![..;2]).assign(&b);
        a
    };
    let g_wide = {
        let mut a = rng.junk((m, 3 * n));
        a.slice_mut(s![.., ..;3]).assign(&g);
        a
    };

    let mut out_wide = rng.junk((m, 2 * n));
    linear::forward(
        xt.t(),
        w_f.view(),
        b_wide.slice(s![..;2]),
        out_wide.slice_mut(s![.., 1..;2]),
    );
    let want = linear_ref(x.view(), w.view(), b.view());
    assert_close(
        "strided forward",
        out_wide.slice(s![.., 1..;2]),
        want.view(),
        EXACT_TOL,
    );

    let mut dx_wide = rng.junk((m, 2 * k));
    let mut dw_t = rng.junk((n, k)); // written through a transposed view
    let mut db_wide = rng.junk(3 * n);
    let dx_before = dx_wide.clone();
    let db_before = db_wide.clone();
    linear::backward(
        xt.t(),
        w_f.view(),
        g_wide.slice(s![.., ..;3]),
        Some(GradOut::write(dx_wide.slice_mut(s![.., ..;2]))),
        Some(GradOut::write(dw_t.view_mut().reversed_axes())),
        Some(GradOut::write(db_wide.slice_mut(s![1..;3]))),
    );
    assert_close(
        "strided dx",
        dx_wide.slice(s![.., ..;2]),
        g.dot(&w.t()).view(),
        EXACT_TOL,
    );
    assert_close("transposed dw", dw_t.t(), x.t().dot(&g).view(), EXACT_TOL);
    assert_close(
        "strided db",
        db_wide.slice(s![1..;3]),
        g.sum_axis(Axis(0)).view(),
        EXACT_TOL,
    );
    // Elements outside the views are untouched.
    assert_eq!(dx_wide.slice(s![.., 1..;2]), dx_before.slice(s![.., 1..;2]));
    assert_eq!(db_wide.slice(s![..;3]), db_before.slice(s![..;3]));
    assert_eq!(db_wide.slice(s![2..;3]), db_before.slice(s![2..;3]));
}

#[test]
fn linear_grad_out_add_accumulates_and_write_overwrites() {
    let mut rng = Rng::new(14);
    let (m, k, n) = (3, 2, 4);
    let (x, w, g) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
    let (rdx, rdw, rdb) = (g.dot(&w.t()), x.t().dot(&g), g.sum_axis(Axis(0)));
    let (jx, jw, jb) = (rng.junk((m, k)), rng.junk((k, n)), rng.junk(n));
    let (mut dx, mut dw, mut db) = (jx.clone(), jw.clone(), jb.clone());

    let run = |dx: &mut Array2<f64>, dw: &mut Array2<f64>, db: &mut Array1<f64>, acc: bool| {
        let (ox, ow, ob) = if acc {
            (
                GradOut::add(dx.view_mut()),
                GradOut::add(dw.view_mut()),
                GradOut::add(db.view_mut()),
            )
        } else {
            (
                GradOut::write(dx.view_mut()),
                GradOut::write(dw.view_mut()),
                GradOut::write(db.view_mut()),
            )
        };
        assert_eq!(
            (ox.accumulate, ow.accumulate, ob.accumulate),
            (acc, acc, acc)
        );
        linear::backward(x.view(), w.view(), g.view(), Some(ox), Some(ow), Some(ob));
    };

    // `add` onto junk: junk + contribution.
    run(&mut dx, &mut dw, &mut db, true);
    assert_close("add dx", dx.view(), (&jx + &rdx).view(), EXACT_TOL);
    assert_close("add dw", dw.view(), (&jw + &rdw).view(), EXACT_TOL);
    assert_close("add db", db.view(), (&jb + &rdb).view(), EXACT_TOL);

    // `write` over that: the contribution alone.
    run(&mut dx, &mut dw, &mut db, false);
    assert_close("write dx", dx.view(), rdx.view(), EXACT_TOL);
    assert_close("write dw", dw.view(), rdw.view(), EXACT_TOL);
    assert_close("write db", db.view(), rdb.view(), EXACT_TOL);

    // A second `add` (a second consumer): twice the contribution.
    run(&mut dx, &mut dw, &mut db, true);
    assert_close("write+add dx", dx.view(), (&rdx * 2.0).view(), EXACT_TOL);
    assert_close("write+add dw", dw.view(), (&rdw * 2.0).view(), EXACT_TOL);
    assert_close("write+add db", db.view(), (&rdb * 2.0).view(), EXACT_TOL);
}

/// The sigmoid derivative folded into linear's `dx` must equal the unfused pair
/// (`linear::backward_x` into a buffer, then `sigmoid::backward`) in every `GradOut` mode:
/// `write`, `add` (a later contribution) and `add_scaled` (an in-place SGD update). Issue 8:
/// the folded kernel ignored `accumulate` and overwrote a param it should have decremented.
#[test]
fn linear_through_sigmoid_honours_every_grad_out_mode() {
    let mut rng = Rng::new(15);
    for (m, k, n) in LINEAR_SHAPES.into_iter().chain([(64, 60, 50)]) {
        let (l, w, g) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
        let s = l.mapv(sigmoid::sigmoid);
        let mut ds = Array2::zeros((m, k));
        linear::backward_x(w.view(), g.view(), GradOut::write(ds.view_mut()));
        let mut want = Array2::zeros((m, k));
        sigmoid::backward(s.view(), ds.view(), GradOut::write(want.view_mut()));
        let tag = format!("through sigmoid {m}x{k}x{n}");

        let junk = rng.junk((m, k));
        let mut dl = junk.clone();
        linear::backward_through_sigmoid(
            s.view(),
            w.view(),
            g.view(),
            GradOut::write(dl.view_mut()),
        );
        assert_close(&format!("{tag} write"), dl.view(), want.view(), EXACT_TOL);

        let mut dl = junk.clone();
        linear::backward_through_sigmoid(s.view(), w.view(), g.view(), GradOut::add(dl.view_mut()));
        assert_close(
            &format!("{tag} add"),
            dl.view(),
            (&junk + &want).view(),
            EXACT_TOL,
        );

        let mut dl = junk.clone();
        let alpha = -0.25;
        linear::backward_through_sigmoid(
            s.view(),
            w.view(),
            g.view(),
            GradOut::add_scaled(dl.view_mut(), alpha),
        );
        let stepped = &junk + &(&want * alpha);
        assert_close(
            &format!("{tag} add_scaled"),
            dl.view(),
            stepped.view(),
            EXACT_TOL,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// sigmoid
// ---------------------------------------------------------------------------------------------

fn sigmoid_fwd(x: &ArrayD<f64>) -> ArrayD<f64> {
    let mut out = ArrayD::from_elem(x.raw_dim(), f64::NAN);
    sigmoid::forward(x.view(), out.view_mut());
    out
}

const ELEMENTWISE_SHAPES: [&[usize]; 5] = [&[1], &[5], &[3, 4], &[2, 3, 2], &[]];

#[test]
fn sigmoid_forward_matches_reference() {
    let mut rng = Rng::new(20);
    for shape in ELEMENTWISE_SHAPES {
        let x = rng.array(IxDyn(shape)).mapv(|v| 8.0 * v);
        let out = sigmoid_fwd(&x);
        let want = x.mapv(|v| 1.0 / (1.0 + (-v).exp()));
        assert_close(
            &format!("sigmoid {shape:?}"),
            out.view(),
            want.view(),
            EXACT_TOL,
        );
    }
}

#[test]
fn sigmoid_backward_matches_finite_differences() {
    let mut rng = Rng::new(21);
    for shape in ELEMENTWISE_SHAPES {
        let x = rng.array(IxDyn(shape)).mapv(|v| 4.0 * v);
        let g = rng.array(IxDyn(shape));
        let s = sigmoid_fwd(&x);
        let mut dx = rng.junk(IxDyn(shape));
        sigmoid::backward(s.view(), g.view(), GradOut::write(dx.view_mut()));
        let num = numeric_grad(&x, |x| contract(&g, &sigmoid_fwd(x)));
        assert_close(
            &format!("sigmoid {shape:?} dx"),
            dx.view(),
            num.view(),
            FD_TOL,
        );
    }
}

#[test]
fn sigmoid_seed_values() {
    // sigmoid([[-9, 4], [-9, 4]]) from the course table.
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![-9., 4., -9., 4.]).unwrap();
    let out = sigmoid_fwd(&x);
    let want = ArrayD::from_shape_vec(
        IxDyn(&[2, 2]),
        vec![
            1.23394576e-04,
            9.82013790e-01,
            1.23394576e-04,
            9.82013790e-01,
        ],
    )
    .unwrap();
    for (&o, &w) in out.iter().zip(want.iter()) {
        assert!((o - w).abs() < 1e-8, "{o} vs {w}");
    }
}

#[test]
fn sigmoid_grad_out_add_accumulates_and_write_overwrites() {
    let mut rng = Rng::new(22);
    let x = rng.array((3, 4)).mapv(|v| 3.0 * v);
    let g = rng.array((3, 4));
    let s = x.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let contrib = Array2::from_shape_fn((3, 4), |i| s[i] * (1.0 - s[i]) * g[i]);
    let junk = rng.junk((3, 4));
    let mut dx = junk.clone();

    sigmoid::backward(s.view(), g.view(), GradOut::add(dx.view_mut()));
    assert_close(
        "add onto junk",
        dx.view(),
        (&junk + &contrib).view(),
        EXACT_TOL,
    );
    sigmoid::backward(s.view(), g.view(), GradOut::write(dx.view_mut()));
    assert_close("write", dx.view(), contrib.view(), EXACT_TOL);
    sigmoid::backward(s.view(), g.view(), GradOut::add(dx.view_mut()));
    assert_close(
        "write then add",
        dx.view(),
        (&contrib * 2.0).view(),
        EXACT_TOL,
    );
}

#[test]
fn sigmoid_saturates_without_nan() {
    let x = Array1::from_vec(vec![1000.0, -1000.0, 745.0, -745.0, 40.0, -40.0, 0.0]);
    let mut s = Array1::from_elem(x.len(), f64::NAN);
    sigmoid::forward(x.view(), s.view_mut());
    assert!(s.iter().all(|v| v.is_finite()), "{s}");
    assert_eq!(s[0], 1.0);
    assert_eq!(s[1], 0.0);
    assert_eq!(s[2], 1.0);
    assert!((0.0..1e-300).contains(&s[3]), "{}", s[3]);
    assert_eq!(s[6], 0.5);
    // sigmoid(-40) = e^-40 / (1 + e^-40), kept to full relative precision (no 1 - (1 - tiny)).
    let tiny = (-40.0f64).exp() / (1.0 + (-40.0f64).exp());
    assert!(rel_err(s[5] / tiny, 1.0) < 1e-14, "{} vs {tiny}", s[5]);

    let g = Array1::from_elem(x.len(), 3.0);
    let mut dx = Array1::from_elem(x.len(), f64::NAN);
    sigmoid::backward(s.view(), g.view(), GradOut::write(dx.view_mut()));
    assert!(dx.iter().all(|v| v.is_finite()), "{dx}");
    assert_eq!(dx[0], 0.0);
    assert_eq!(dx[1], 0.0);
    assert_eq!(dx[6], 0.75);
}

#[test]
fn sigmoid_scalar_fn() {
    use sigmoid::sigmoid;
    assert_eq!(sigmoid(0.0f64), 0.5);
    assert_eq!(sigmoid(1000.0f64), 1.0);
    assert_eq!(sigmoid(-1000.0f64), 0.0);
    assert_eq!(sigmoid(f64::INFINITY), 1.0);
    assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
    assert!(sigmoid(f64::NAN).is_nan());
    assert_eq!(sigmoid(100.0f32), 1.0f32);
    assert_eq!(sigmoid(-200.0f32), 0.0f32);
    assert!((sigmoid(1.0f32) - 0.731_058_6f32).abs() < 1e-6);

    let mut rng = Rng::new(23);
    for _ in 0..200 {
        let x = rng.uniform(-30.0, 30.0);
        let s = sigmoid(x);
        let naive = 1.0 / (1.0 + (-x).exp());
        assert!(
            rel_err(s, naive) < 1e-15,
            "sigmoid({x}) = {s}, want {naive}"
        );
        assert!((0.0..=1.0).contains(&s));
        // Symmetry: s(x) + s(-x) = 1.
        assert!((s + sigmoid(-x) - 1.0).abs() < 1e-15, "x = {x}");
        // Derivative s(1-s) against central differences.
        let fd = (sigmoid(x + EPS) - sigmoid(x - EPS)) / (2.0 * EPS);
        assert!(rel_err(s * (1.0 - s), fd) < FD_TOL, "x = {x}");
    }
    // Monotone, including across the branch at 0.
    let xs = [-50.0, -1.0, -1e-12, 0.0, 1e-12, 1.0, 50.0];
    for w in xs.windows(2) {
        assert!(sigmoid(w[0]) < sigmoid(w[1]), "{w:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// mse
// ---------------------------------------------------------------------------------------------

fn mse_ref(y: &ArrayD<f64>, a: &ArrayD<f64>) -> f64 {
    assert_eq!(y.len(), a.len());
    y.iter()
        .zip(a.iter())
        .map(|(y, a)| (y - a) * (y - a))
        .sum::<f64>()
        / y.len() as f64
}

/// (y's shape, a's shape): same number of elements, not always the same shape.
const MSE_SHAPES: [(&[usize], &[usize]); 6] = [
    (&[1], &[1, 1]),
    (&[3], &[3]),
    (&[4], &[4, 1]),
    (&[4, 1], &[4]),
    (&[3, 5], &[3, 5]),
    (&[6], &[2, 3]),
];

#[test]
fn mse_forward_matches_reference() {
    let mut rng = Rng::new(30);
    for (ys, as_) in MSE_SHAPES {
        let (y, a) = (rng.array(IxDyn(ys)), rng.array(IxDyn(as_)));
        let got = mse::forward(y.view(), a.view());
        assert!(rel_err(got, mse_ref(&y, &a)) < EXACT_TOL, "{ys:?} {as_:?}");
    }
    // The course table: mse([1, 2, 3], [4.5, 5, 10]) = 23.416666666666668.
    let y: Array1<f64> = Array1::from_vec(vec![1., 2., 3.]);
    let a: Array2<f64> = Array2::from_shape_vec((3, 1), vec![4.5, 5., 10.]).unwrap();
    assert!((mse::forward(y.view(), a.view()) - 23.416666666666668).abs() < 1e-12);
    assert!((mse::forward(y.view(), a.column(0)) - 23.416666666666668).abs() < 1e-12);
}

#[test]
fn mse_backward_matches_finite_differences() {
    let mut rng = Rng::new(31);
    for (ys, as_) in MSE_SHAPES {
        for up in [1.0, 0.37, -2.5] {
            let (y, a) = (rng.array(IxDyn(ys)), rng.array(IxDyn(as_)));
            let mut dy = rng.junk(IxDyn(ys));
            let mut da = rng.junk(IxDyn(as_));
            mse::backward(
                y.view(),
                a.view(),
                up,
                Some(GradOut::write(dy.view_mut())),
                Some(GradOut::write(da.view_mut())),
            );
            let num_dy = numeric_grad(&y, |y| up * mse::forward(y.view(), a.view()));
            let num_da = numeric_grad(&a, |a| up * mse::forward(y.view(), a.view()));
            let tag = format!("mse y{ys:?} a{as_:?} g={up}");
            assert_close(&format!("{tag} dy"), dy.view(), num_dy.view(), FD_TOL);
            assert_close(&format!("{tag} da"), da.view(), num_da.view(), FD_TOL);
        }
    }
}

#[test]
fn mse_column_prediction_against_flat_target_does_not_broadcast() {
    // y: (m,), a: (m, 1). Broadcasting would compare every y_j with every a_i.
    let mut rng = Rng::new(32);
    let m = 5;
    let y: Array1<f64> = rng.array(m);
    let a: Array2<f64> = rng.array((m, 1));
    let paired: f64 = (0..m).map(|i| (y[i] - a[[i, 0]]).powi(2)).sum::<f64>() / m as f64;
    let broadcast: f64 = (0..m)
        .flat_map(|i| (0..m).map(move |j| (i, j)))
        .map(|(i, j)| (y[j] - a[[i, 0]]).powi(2))
        .sum::<f64>()
        / (m * m) as f64;
    assert!(
        (paired - broadcast).abs() > 1e-3,
        "test data cannot tell the two apart"
    );

    let got = mse::forward(y.view(), a.view());
    assert!(rel_err(got, paired) < EXACT_TOL, "{got} vs paired {paired}");

    let up = 1.7;
    let mut dy = Array1::from_elem(m, 123.0); // y's shape
    let mut da = Array2::from_elem((m, 1), -77.0); // a's shape
    mse::backward(
        y.view(),
        a.view(),
        up,
        Some(GradOut::write(dy.view_mut())),
        Some(GradOut::write(da.view_mut())),
    );
    for i in 0..m {
        let want = 2.0 / m as f64 * (y[i] - a[[i, 0]]) * up;
        assert!(
            rel_err(dy[i], want) < EXACT_TOL,
            "dy[{i}] = {}, want {want}",
            dy[i]
        );
        assert!(
            rel_err(da[[i, 0]], -want) < EXACT_TOL,
            "da[{i}] = {}, want {}",
            da[[i, 0]],
            -want
        );
    }
    let num_dy = numeric_grad(&y, |y| up * mse::forward(y.view(), a.view()));
    let num_da = numeric_grad(&a, |a| up * mse::forward(y.view(), a.view()));
    assert_close("dy", dy.view(), num_dy.view(), FD_TOL);
    assert_close("da", da.view(), num_da.view(), FD_TOL);
}

#[test]
fn mse_grad_out_add_accumulates_and_write_overwrites() {
    let mut rng = Rng::new(33);
    let m = 4;
    let y: Array1<f64> = rng.array(m);
    let a: Array2<f64> = rng.array((m, 1));
    let up = -0.6;
    let k = 2.0 / m as f64 * up;
    let cy = Array1::from_shape_fn(m, |i| k * (y[i] - a[[i, 0]]));
    let ca = Array2::from_shape_fn((m, 1), |(i, _)| -k * (y[i] - a[[i, 0]]));
    let (jy, ja) = (rng.junk(m), rng.junk((m, 1)));
    let (mut dy, mut da) = (jy.clone(), ja.clone());

    let call = |dy: &mut Array1<f64>, da: &mut Array2<f64>, acc: bool| {
        if acc {
            let (gy, ga) = (GradOut::add(dy.view_mut()), GradOut::add(da.view_mut()));
            mse::backward(y.view(), a.view(), up, Some(gy), Some(ga));
        } else {
            let (gy, ga) = (GradOut::write(dy.view_mut()), GradOut::write(da.view_mut()));
            mse::backward(y.view(), a.view(), up, Some(gy), Some(ga));
        }
    };
    call(&mut dy, &mut da, true);
    assert_close("add dy", dy.view(), (&jy + &cy).view(), EXACT_TOL);
    assert_close("add da", da.view(), (&ja + &ca).view(), EXACT_TOL);
    call(&mut dy, &mut da, false);
    assert_close("write dy", dy.view(), cy.view(), EXACT_TOL);
    assert_close("write da", da.view(), ca.view(), EXACT_TOL);
    call(&mut dy, &mut da, true);
    assert_close("write+add dy", dy.view(), (&cy * 2.0).view(), EXACT_TOL);
    assert_close("write+add da", da.view(), (&ca * 2.0).view(), EXACT_TOL);

    // Only one of the two asked for: the other buffer is not touched.
    let mut only_dy = rng.junk(m);
    mse::backward(
        y.view(),
        a.view(),
        up,
        Some(GradOut::write(only_dy.view_mut())),
        None::<GradOut<'_, f64, _>>,
    );
    assert_close("dy alone", only_dy.view(), cy.view(), EXACT_TOL);
}

// ---------------------------------------------------------------------------------------------
// add
// ---------------------------------------------------------------------------------------------

fn add_fwd(xs: &[ArrayD<f64>]) -> ArrayD<f64> {
    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
    let mut out = ArrayD::from_elem(xs[0].raw_dim(), f64::NAN);
    add::forward(&views, out.view_mut());
    out
}

#[test]
fn add_forward_and_backward_match_finite_differences() {
    let mut rng = Rng::new(40);
    for n_inputs in [2, 3, 4] {
        for shape in ELEMENTWISE_SHAPES {
            let xs: Vec<ArrayD<f64>> = (0..n_inputs).map(|_| rng.array(IxDyn(shape))).collect();
            let tag = format!("add of {n_inputs} {shape:?}");

            let out = add_fwd(&xs);
            let mut want = ArrayD::zeros(IxDyn(shape));
            for x in &xs {
                want += x;
            }
            assert_close(
                &format!("{tag} forward"),
                out.view(),
                want.view(),
                EXACT_TOL,
            );

            let g = rng.array(IxDyn(shape));
            for i in 0..n_inputs {
                let mut dxi = rng.junk(IxDyn(shape));
                add::backward(g.view(), GradOut::write(dxi.view_mut()));
                let num = numeric_grad(&xs[i], |xi| {
                    let mut xs = xs.clone();
                    xs[i] = xi.clone();
                    contract(&g, &add_fwd(&xs))
                });
                assert_close(&format!("{tag} dx{i}"), dxi.view(), num.view(), FD_TOL);
            }
        }
    }
}

#[test]
fn add_of_three_course_values() {
    // The course's Add: x=4, y=5, z=10 -> 19 (and x=10, y=5 -> 15).
    let s = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
    assert_eq!(add_fwd(&[s(4.0), s(5.0), s(10.0)])[IxDyn(&[])], 19.0);
    assert_eq!(add_fwd(&[s(10.0), s(5.0)])[IxDyn(&[])], 15.0);
}

#[test]
fn add_grad_out_add_accumulates_and_write_overwrites() {
    // add(x, x, x): the same buffer gets one `write` and two `add`s, i.e. 3g.
    let mut rng = Rng::new(41);
    let g = rng.array((3, 2));
    let junk = rng.junk((3, 2));
    let mut dx = junk.clone();
    add::backward(g.view(), GradOut::add(dx.view_mut()));
    assert_close("add onto junk", dx.view(), (&junk + &g).view(), EXACT_TOL);
    add::backward(g.view(), GradOut::write(dx.view_mut()));
    assert_close("write", dx.view(), g.view(), EXACT_TOL);
    add::backward(g.view(), GradOut::add(dx.view_mut()));
    add::backward(g.view(), GradOut::add(dx.view_mut()));
    assert_close("write+add+add", dx.view(), (&g * 3.0).view(), EXACT_TOL);

    // And it is the derivative of x ↦ Σ g ⊙ (x + x + x).
    let x = rng.array((3, 2));
    let num = numeric_grad(&x, |x| {
        let xs = [
            x.clone().into_dyn(),
            x.clone().into_dyn(),
            x.clone().into_dyn(),
        ];
        contract(&g.clone().into_dyn(), &add_fwd(&xs))
    });
    assert_close("add(x, x, x) fd", dx.view(), num.view(), FD_TOL);
}

// ---------------------------------------------------------------------------------------------
// `write` must not read the buffer at all: even NaN garbage is overwritten.
// ---------------------------------------------------------------------------------------------

#[test]
fn write_ignores_nan_garbage() {
    let mut rng = Rng::new(50);
    let (m, k, n) = (3, 2, 4);
    let (x, w, g) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
    let mut dx = Array2::from_elem((m, k), f64::NAN);
    let mut dw = Array2::from_elem((k, n), f64::NAN);
    let mut db = Array1::from_elem(n, f64::NAN);
    linear::backward(
        x.view(),
        w.view(),
        g.view(),
        Some(GradOut::write(dx.view_mut())),
        Some(GradOut::write(dw.view_mut())),
        Some(GradOut::write(db.view_mut())),
    );
    assert_close("linear dx", dx.view(), g.dot(&w.t()).view(), EXACT_TOL);
    assert_close("linear dw", dw.view(), x.t().dot(&g).view(), EXACT_TOL);
    assert_close(
        "linear db",
        db.view(),
        g.sum_axis(Axis(0)).view(),
        EXACT_TOL,
    );

    let s = x.mapv(sigmoid::sigmoid);
    let gs = rng.array((m, k));
    let mut ds = Array2::from_elem((m, k), f64::NAN);
    sigmoid::backward(s.view(), gs.view(), GradOut::write(ds.view_mut()));
    let want = Array2::from_shape_fn((m, k), |i| s[i] * (1.0 - s[i]) * gs[i]);
    assert_close("sigmoid dx", ds.view(), want.view(), EXACT_TOL);

    let y: Array1<f64> = rng.array(m);
    let a: Array2<f64> = rng.array((m, 1));
    let mut dy = Array1::from_elem(m, f64::NAN);
    let mut da = Array2::from_elem((m, 1), f64::NAN);
    mse::backward(
        y.view(),
        a.view(),
        1.0,
        Some(GradOut::write(dy.view_mut())),
        Some(GradOut::write(da.view_mut())),
    );
    assert!(
        dy.iter().chain(da.iter()).all(|v| v.is_finite()),
        "{dy} {da}"
    );

    let mut dadd = Array2::from_elem((m, n), f64::NAN);
    add::backward(g.view(), GradOut::write(dadd.view_mut()));
    assert_close("add dx", dadd.view(), g.view(), EXACT_TOL);
}

//! The kernels of the ops added after the seed's four (relu, tanh, leaky_relu, matmul, mul,
//! sub, sum, mean, softmax, softmax_cross_entropy, bce, bce_logits), in the style of
//! `kernels_fd.rs`: every backward kernel against central finite differences of its own
//! forward (several shapes, batch > 1), every backward kernel's `GradOut` semantics (write over
//! junk, add, `add_scaled` with a negative alpha as the fused SGD step uses it, and a write
//! with alpha), forward against independent references, stability at ±1000, softmax rows
//! summing to 1, cross-entropy on a hand-computed example, and bad labels as typed errors (in
//! the kernel and through the runtime graph), along with the graph's literal and label rules.
//!
//! Each op is turned into a scalar objective by contracting its output with a fixed random
//! upstream gradient `G`: `L = Σ G ⊙ op(inputs)` (for a scalar output, `L = g · op(inputs)`).

use crate::common;

use common::{assert_close, contract, numeric_grad, rel_err, Rng, EXACT_TOL, FD_TOL};
use miniflow_core::error::LabelValue;
use miniflow_core::ndarray::{
    arr2, array, Array1, Array2, ArrayD, ArrayView, ArrayViewD, Axis, Ix1, Ix2, IxDyn,
};
use miniflow_core::ops::{
    bce, bce_logits, leaky_relu, matmul, mean, mul, relu, sigmoid, softmax, softmax_cross_entropy,
    sub, sum, tanh, GradOut, KernelError,
};
use miniflow_core::{Error, Graph, Op};

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

fn scalar(v: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

fn ix2(a: &ArrayD<f64>) -> ArrayView<'_, f64, Ix2> {
    a.view().into_dimensionality().unwrap()
}

fn ix1(a: &ArrayD<f64>) -> ArrayView<'_, f64, Ix1> {
    a.view().into_dimensionality().unwrap()
}

/// A dynamic-rank `GradOut` as a fixed-rank one (for the rank-2 kernels).
fn to2(d: GradOut<'_, f64, IxDyn>) -> GradOut<'_, f64, Ix2> {
    GradOut {
        buf: d.buf.into_dimensionality().unwrap(),
        accumulate: d.accumulate,
        alpha: d.alpha,
    }
}

/// Forward: the op's value from its node arguments (a 0-d array for a scalar op).
type Fwd<'a> = &'a dyn Fn(&[ArrayD<f64>]) -> ArrayD<f64>;
/// Backward into node argument `k`: (args, forward's value, upstream gradient, k, output).
type Bwd<'a> =
    &'a dyn Fn(&[ArrayD<f64>], &ArrayD<f64>, &ArrayD<f64>, usize, GradOut<'_, f64, IxDyn>);

/// For each node argument in `ks`: the backward kernel's contribution matches central finite
/// differences of `L = Σ G ⊙ fwd(args)`; and it honours `GradOut`: a write over NaN garbage,
/// an add onto junk, an `add_scaled` with alpha = -0.3 onto junk (the fused SGD step), and a
/// write with alpha = 2.5 all give what they must, to rounding. Returns how many partial
/// derivatives were checked.
fn check_backward(
    tag: &str,
    args: &[ArrayD<f64>],
    ks: &[usize],
    rng: &mut Rng,
    fwd: Fwd<'_>,
    bwd: Bwd<'_>,
) -> usize {
    let value = fwd(args);
    let g = rng.array(IxDyn(value.shape()));
    let mut checked = 0;
    for &k in ks {
        let shape = args[k].raw_dim();
        // Write over NaN: the buffer must not be read.
        let mut c = ArrayD::from_elem(shape.clone(), f64::NAN);
        bwd(args, &value, &g, k, GradOut::write(c.view_mut()));
        let num = numeric_grad(&args[k], |x| {
            let mut a = args.to_vec();
            a[k] = x.clone();
            contract(&g, &fwd(&a))
        });
        assert_close(&format!("{tag} d{k} vs fd"), c.view(), num.view(), FD_TOL);
        assert!(
            num.iter().any(|v| v.abs() > 1e-3),
            "{tag} d{k}: the probe gradient is negligible, the check proves little"
        );
        checked += num.len();

        let junk = rng.junk(shape.clone());
        let mut buf = junk.clone();
        bwd(args, &value, &g, k, GradOut::add(buf.view_mut()));
        assert_close(
            &format!("{tag} d{k} add"),
            buf.view(),
            (&junk + &c).view(),
            EXACT_TOL,
        );

        let mut buf = junk.clone();
        bwd(
            args,
            &value,
            &g,
            k,
            GradOut::add_scaled(buf.view_mut(), -0.3),
        );
        let want = &junk - &(&c * 0.3);
        assert_close(
            &format!("{tag} d{k} add_scaled"),
            buf.view(),
            want.view(),
            EXACT_TOL,
        );

        let mut buf = ArrayD::from_elem(shape, f64::NAN);
        let out = GradOut {
            buf: buf.view_mut(),
            accumulate: false,
            alpha: 2.5,
        };
        bwd(args, &value, &g, k, out);
        assert_close(
            &format!("{tag} d{k} write alpha"),
            buf.view(),
            (&c * 2.5).view(),
            EXACT_TOL,
        );
    }
    checked
}

const SHAPES: [&[usize]; 5] = [&[2, 3], &[4, 5], &[3, 2, 2], &[7], &[6, 1]];

// ---------------------------------------------------------------------------------------------
// The checker itself must be able to fail.
// ---------------------------------------------------------------------------------------------

#[test]
fn checker_catches_a_wrong_backward_and_ignored_semantics() {
    let mut rng = Rng::new(1);
    let x = rng.array(IxDyn(&[3, 4])).mapv(|v| 3.0 * v);
    let fwd: Fwd<'_> = &|a| a[0].mapv(f64::tanh);
    // The right derivative, to a wrong power: caught by the finite differences.
    let wrong: Bwd<'_> = &|_, t, g, _, d| {
        let c = ArrayD::from_shape_fn(t.raw_dim(), |i| (1.0 - t[&i].powi(3)) * g[&i]);
        GradOut {
            buf: d.buf,
            accumulate: false,
            alpha: d.alpha,
        }
        .buf
        .assign(&c);
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_backward(
            "wrong",
            std::slice::from_ref(&x),
            &[0],
            &mut Rng::new(2),
            fwd,
            wrong,
        )
    }));
    assert!(caught.is_err(), "a wrong derivative passed");
    // The right derivative that ignores `accumulate`: caught by the add check.
    let overwrites: Bwd<'_> = &|_, t, g, _, d| {
        let mut buf = d.buf;
        buf.assign(&ArrayD::from_shape_fn(t.raw_dim(), |i| {
            d.alpha * (1.0 - t[&i] * t[&i]) * g[&i]
        }));
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_backward(
            "overwrites",
            std::slice::from_ref(&x),
            &[0],
            &mut Rng::new(3),
            fwd,
            overwrites,
        )
    }));
    assert!(caught.is_err(), "a kernel ignoring `accumulate` passed");
    // The real kernel passes.
    let real: Bwd<'_> = &|_, t, g, _, d| tanh::backward(t.view(), g.view(), d);
    check_backward("tanh", &[x], &[0], &mut rng, fwd, real);
}

// ---------------------------------------------------------------------------------------------
// Elementwise: relu, tanh, leaky_relu, mul, sub.
// ---------------------------------------------------------------------------------------------

fn relu_fwd(a: &[ArrayD<f64>]) -> ArrayD<f64> {
    let mut out = ArrayD::from_elem(a[0].raw_dim(), f64::NAN);
    relu::forward(a[0].view(), out.view_mut());
    out
}

#[test]
fn relu_forward_and_backward() {
    let mut rng = Rng::new(10);
    let mut n = 0;
    for shape in SHAPES {
        let x = rng.array(IxDyn(shape)).mapv(|v| 3.0 * v);
        let want = x.mapv(|v| v.max(0.0));
        assert_close(
            "relu fwd",
            relu_fwd(std::slice::from_ref(&x)).view(),
            want.view(),
            0.0,
        );
        n += check_backward(
            &format!("relu {shape:?}"),
            &[x],
            &[0],
            &mut rng,
            &relu_fwd,
            &|_, r, g, _, d| relu::backward(r.view(), g.view(), d),
        );
    }
    assert!(n > 50);
    // The derivative at 0 is 0; NaN stays NaN.
    let x = array![0.0, -0.0, 2.0, f64::NAN].into_dyn();
    let r = relu_fwd(&[x]);
    assert!(r[[3]].is_nan() && r[[0]] == 0.0 && r[[2]] == 2.0);
    let mut d = ArrayD::zeros(IxDyn(&[4]));
    relu::backward(
        r.view(),
        ArrayD::from_elem(IxDyn(&[4]), 5.0).view(),
        GradOut::write(d.view_mut()),
    );
    assert_eq!(d.as_slice().unwrap(), &[0.0, 0.0, 5.0, 0.0]);
}

fn tanh_fwd(a: &[ArrayD<f64>]) -> ArrayD<f64> {
    let mut out = ArrayD::from_elem(a[0].raw_dim(), f64::NAN);
    tanh::forward(a[0].view(), out.view_mut());
    out
}

#[test]
fn tanh_forward_and_backward() {
    let mut rng = Rng::new(11);
    for shape in SHAPES {
        let x = rng.array(IxDyn(shape)).mapv(|v| 2.0 * v);
        let want = x.mapv(|v| (v.exp() - (-v).exp()) / (v.exp() + (-v).exp()));
        assert_close(
            "tanh fwd",
            tanh_fwd(std::slice::from_ref(&x)).view(),
            want.view(),
            EXACT_TOL,
        );
        check_backward(
            &format!("tanh {shape:?}"),
            &[x],
            &[0],
            &mut rng,
            &tanh_fwd,
            &|_, t, g, _, d| tanh::backward(t.view(), g.view(), d),
        );
    }
}

#[test]
fn leaky_relu_forward_and_backward_for_several_slopes() {
    let mut rng = Rng::new(12);
    for slope in [0.01, 0.3, -0.5, 0.0, 1.7] {
        for shape in SHAPES {
            let x = rng.array(IxDyn(shape)).mapv(|v| 3.0 * v);
            let fwd = move |a: &[ArrayD<f64>]| {
                let mut out = ArrayD::from_elem(a[0].raw_dim(), f64::NAN);
                leaky_relu::forward(a[0].view(), slope, out.view_mut());
                out
            };
            let want = x.mapv(|v| if v > 0.0 { v } else { slope * v });
            assert_close(
                "leaky fwd",
                fwd(std::slice::from_ref(&x)).view(),
                want.view(),
                0.0,
            );
            let tag = format!("leaky_relu({slope}) {shape:?}");
            if slope == 0.0 && x.iter().all(|&v| v <= 0.0) {
                continue; // an all-zero gradient: nothing to check against
            }
            check_backward(&tag, &[x], &[0], &mut rng, &fwd, &|a, _, g, _, d| {
                leaky_relu::backward(a[0].view(), slope, g.view(), d)
            });
        }
    }
    // With slope 0 it is relu, derivative at 0 included.
    let x = array![-1.0, 0.0, 2.0].into_dyn();
    let g = ArrayD::from_elem(IxDyn(&[3]), 1.0);
    let (mut a, mut b) = (ArrayD::zeros(IxDyn(&[3])), ArrayD::zeros(IxDyn(&[3])));
    leaky_relu::backward(x.view(), 0.0, g.view(), GradOut::write(a.view_mut()));
    relu::backward(
        relu_fwd(&[x]).view(),
        g.view(),
        GradOut::write(b.view_mut()),
    );
    assert_eq!(a, b);
}

#[test]
fn mul_and_sub_forward_and_backward() {
    let mut rng = Rng::new(13);
    for shape in SHAPES {
        let (a, b) = (rng.array(IxDyn(shape)), rng.array(IxDyn(shape)));
        let mul_fwd = |x: &[ArrayD<f64>]| {
            let mut out = ArrayD::from_elem(x[0].raw_dim(), f64::NAN);
            mul::forward(x[0].view(), x[1].view(), out.view_mut());
            out
        };
        let sub_fwd = |x: &[ArrayD<f64>]| {
            let mut out = ArrayD::from_elem(x[0].raw_dim(), f64::NAN);
            sub::forward(x[0].view(), x[1].view(), out.view_mut());
            out
        };
        let args = [a.clone(), b.clone()];
        assert_close("mul fwd", mul_fwd(&args).view(), (&a * &b).view(), 0.0);
        assert_close("sub fwd", sub_fwd(&args).view(), (&a - &b).view(), 0.0);
        check_backward(
            &format!("mul {shape:?}"),
            &args,
            &[0, 1],
            &mut rng,
            &mul_fwd,
            &|x, _, g, k, d| mul::backward(x[1 - k].view(), g.view(), d),
        );
        check_backward(
            &format!("sub {shape:?}"),
            &args,
            &[0, 1],
            &mut rng,
            &sub_fwd,
            &|_, _, g, k, d| {
                if k == 0 {
                    sub::backward_a(g.view(), d)
                } else {
                    sub::backward_b(g.view(), d)
                }
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// matmul
// ---------------------------------------------------------------------------------------------

#[test]
fn matmul_forward_and_backward() {
    let mut rng = Rng::new(20);
    for (m, k, n) in [
        (3, 4, 2),
        (5, 1, 3),
        (2, 6, 1),
        (8, 3, 5),
        (1, 2, 2),
        (20, 30, 70),
    ] {
        let a = rng.array(IxDyn(&[m, k]));
        let b = rng.array(IxDyn(&[k, n]));
        let fwd = |x: &[ArrayD<f64>]| {
            let mut out = Array2::from_elem((x[0].shape()[0], x[1].shape()[1]), f64::NAN);
            matmul::forward(ix2(&x[0]), ix2(&x[1]), out.view_mut());
            out.into_dyn()
        };
        // Against the textbook triple loop.
        let want = ArrayD::from_shape_fn(IxDyn(&[m, n]), |i| {
            (0..k).map(|t| a[[i[0], t]] * b[[t, i[1]]]).sum::<f64>()
        });
        let args = [a, b];
        assert_close("matmul fwd", fwd(&args).view(), want.view(), EXACT_TOL);
        if m * k * n > 1000 {
            continue; // the large case checks the GEMM path's forward only (fd is slow)
        }
        check_backward(
            &format!("matmul {m}x{k}x{n}"),
            &args,
            &[0, 1],
            &mut rng,
            &fwd,
            &|x, _, g, j, d| {
                if j == 0 {
                    matmul::backward_a(ix2(&x[1]), ix2(g), to2(d))
                } else {
                    matmul::backward_b(ix2(&x[0]), ix2(g), to2(d))
                }
            },
        );
    }
}

#[test]
fn matmul_backward_on_the_gemm_path_honours_grad_out() {
    // Above `SMALL_MACS` the products go to ndarray's GEMM: the same semantics must hold.
    let mut rng = Rng::new(21);
    let (m, k, n) = (60, 50, 70);
    let (a, b, g) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
    let (da, db) = (g.dot(&b.t()), a.t().dot(&g));
    let junk_a = rng.junk((m, k));
    let mut buf = junk_a.clone();
    matmul::backward_a(
        b.view(),
        g.view(),
        GradOut::add_scaled(buf.view_mut(), -0.5),
    );
    assert_close(
        "gemm da",
        buf.view(),
        (&junk_a - &(&da * 0.5)).view(),
        EXACT_TOL,
    );
    let mut buf = Array2::from_elem((k, n), 7.0);
    matmul::backward_b(a.view(), g.view(), GradOut::write(buf.view_mut()));
    assert_close("gemm db", buf.view(), db.view(), EXACT_TOL);
}

// ---------------------------------------------------------------------------------------------
// sum and mean: any shape to a scalar.
// ---------------------------------------------------------------------------------------------

#[test]
fn sum_and_mean_forward_and_backward() {
    let mut rng = Rng::new(30);
    for shape in SHAPES.iter().chain([&[][..], &[1, 1, 1][..]].iter()) {
        let x = rng.array(IxDyn(shape));
        let n = x.len() as f64;
        let sum_fwd = |a: &[ArrayD<f64>]| scalar(sum::forward(a[0].view()));
        let mean_fwd = |a: &[ArrayD<f64>]| scalar(mean::forward(a[0].view()));
        assert!(rel_err(sum_fwd(std::slice::from_ref(&x))[[]], x.sum()) < EXACT_TOL);
        assert!(rel_err(mean_fwd(std::slice::from_ref(&x))[[]], x.sum() / n) < EXACT_TOL);
        let args = [x];
        check_backward(
            &format!("sum {shape:?}"),
            &args,
            &[0],
            &mut rng,
            &sum_fwd,
            &|_, _, g, _, d| sum::backward(g[[]], d),
        );
        check_backward(
            &format!("mean {shape:?}"),
            &args,
            &[0],
            &mut rng,
            &mean_fwd,
            &|_, _, g, _, d| mean::backward(g[[]], d),
        );
    }
    // Exact values: the gradient of the mean of 4 elements is g / 4 in each.
    let mut d = Array2::from_elem((2, 2), f64::NAN);
    mean::backward(2.0, GradOut::write(d.view_mut()));
    assert_eq!(d, Array2::from_elem((2, 2), 0.5));
}

// ---------------------------------------------------------------------------------------------
// softmax
// ---------------------------------------------------------------------------------------------

fn softmax_fwd(a: &[ArrayD<f64>]) -> ArrayD<f64> {
    let x = ix2(&a[0]);
    let mut out = Array2::from_elem(x.raw_dim(), f64::NAN);
    softmax::forward(x, out.view_mut());
    out.into_dyn()
}

#[test]
fn softmax_forward_matches_reference_and_rows_sum_to_one() {
    let mut rng = Rng::new(40);
    for (m, c) in [(3, 4), (5, 2), (4, 1), (2, 9)] {
        let x = rng.array(IxDyn(&[m, c])).mapv(|v| 20.0 * v);
        let s = softmax_fwd(std::slice::from_ref(&x));
        let want = ArrayD::from_shape_fn(x.raw_dim(), |i| {
            let row = x.index_axis(Axis(0), i[0]);
            x[&i].exp() / row.iter().map(|v| v.exp()).sum::<f64>()
        });
        assert_close("softmax fwd", s.view(), want.view(), EXACT_TOL);
        for row in s.rows() {
            let total: f64 = row.sum();
            assert!((total - 1.0).abs() < 1e-15, "row sums to {total}");
            assert!(row.iter().all(|&p| (0.0..=1.0).contains(&p)));
        }
    }
    // Rows of large logits, including ±1000: still probabilities summing to 1, no NaN.
    let x = arr2(&[
        [1000.0, -1000.0, 0.0],
        [1000.0, 1000.0, -1000.0],
        [-1000.0, -1000.0, -1000.0],
        [700.0, 710.0, 690.0],
    ])
    .into_dyn();
    let s = softmax_fwd(&[x]);
    let row = |r: usize| {
        s.index_axis(Axis(0), r)
            .iter()
            .copied()
            .collect::<Vec<f64>>()
    };
    assert_eq!(row(0), [1.0, 0.0, 0.0]);
    assert_eq!(row(1), [0.5, 0.5, 0.0]);
    for row in s.rows() {
        assert!(row.iter().all(|p| p.is_finite()), "{s}");
        assert!((row.sum() - 1.0).abs() < 1e-15);
    }
    assert!((s[[2, 0]] - 1.0 / 3.0).abs() < 1e-16);
}

#[test]
fn softmax_backward_is_the_jacobian_vector_product() {
    let mut rng = Rng::new(41);
    for (m, c) in [(3, 4), (5, 2), (2, 9), (6, 3)] {
        let x = rng.array(IxDyn(&[m, c])).mapv(|v| 3.0 * v);
        check_backward(
            &format!("softmax {m}x{c}"),
            std::slice::from_ref(&x),
            &[0],
            &mut rng,
            &softmax_fwd,
            &|_, s, g, _, d| softmax::backward(ix2(s), ix2(g), to2(d)),
        );
        // Against the explicit Jacobian J_ij = s_i (δ_ij - s_j), row by row.
        let s = softmax_fwd(&[x]);
        let g = rng.array((m, c));
        let mut dx = Array2::from_elem((m, c), f64::NAN);
        softmax::backward(ix2(&s), g.view(), GradOut::write(dx.view_mut()));
        let want = Array2::from_shape_fn((m, c), |(r, i)| {
            (0..c)
                .map(|j| {
                    let jac = s[[r, i]] * (if i == j { 1.0 } else { 0.0 } - s[[r, j]]);
                    jac * g[[r, j]]
                })
                .sum::<f64>()
        });
        assert_close("softmax jvp", dx.view(), want.view(), EXACT_TOL);
    }
}

// ---------------------------------------------------------------------------------------------
// softmax_cross_entropy
// ---------------------------------------------------------------------------------------------

fn ce_fwd(a: &[ArrayD<f64>]) -> ArrayD<f64> {
    scalar(softmax_cross_entropy::forward(ix2(&a[0]), ix1(&a[1])).unwrap())
}

#[test]
fn cross_entropy_on_a_hand_computed_example() {
    // Row 0: logits [1, 2, 3], label 2: ln(e + e² + e³) - 3 = 0.40760596444...
    // Row 1: logits [1, 1, 1], label 0: ln 3 = 1.09861228866...
    let logits: Array2<f64> = arr2(&[[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]);
    let labels: Array1<f64> = array![2.0, 0.0];
    let loss = softmax_cross_entropy::forward(logits.view(), labels.view()).unwrap();
    assert!((loss - 0.7531091265562453).abs() < 1e-15, "{loss}");
    let by_hand = (((1f64.exp() + 2f64.exp() + 3f64.exp()).ln() - 3.0) + 3f64.ln()) / 2.0;
    assert!((loss - by_hand).abs() < 1e-15);

    // d/dlogits = (softmax - onehot) / m · g, with g = 2.
    let mut d = Array2::from_elem((2, 3), f64::NAN);
    softmax_cross_entropy::backward(
        logits.view(),
        labels.view(),
        2.0,
        GradOut::write(d.view_mut()),
    );
    let s0 = [0.09003057317038043, 0.24472847105479759, 0.6652409557748217];
    let want = arr2(&[
        [s0[0], s0[1], s0[2] - 1.0],
        [1.0 / 3.0 - 1.0, 1.0 / 3.0, 1.0 / 3.0],
    ]);
    assert_close("ce grad", d.view(), want.view(), 1e-15);
    // Each row of the gradient sums to 0.
    for row in d.rows() {
        assert!(row.sum().abs() < 1e-15);
    }
}

#[test]
fn cross_entropy_backward_matches_finite_differences() {
    let mut rng = Rng::new(50);
    for (m, c) in [(4, 3), (6, 5), (2, 2), (3, 7), (8, 4)] {
        let logits = rng.array(IxDyn(&[m, c])).mapv(|v| 4.0 * v);
        let labels = rng.labels(m, c);
        let args = [logits, labels];
        let n = check_backward(
            &format!("ce {m}x{c}"),
            &args,
            &[0],
            &mut rng,
            &ce_fwd,
            &|x, _, g, _, d| softmax_cross_entropy::backward(ix2(&x[0]), ix1(&x[1]), g[[]], to2(d)),
        );
        assert_eq!(n, m * c);
        // Against the definition, -mean log softmax[label], computed naively.
        let s = softmax_fwd(&[args[0].clone()]);
        let naive = (0..m)
            .map(|r| -s[[r, args[1][[r]] as usize]].ln())
            .sum::<f64>()
            / m as f64;
        assert!(rel_err(ce_fwd(&args)[[]], naive) < EXACT_TOL);
    }
}

#[test]
fn cross_entropy_with_one_class_is_zero_with_zero_gradient() {
    let logits = arr2(&[[3.0], [-2.0], [0.5]]);
    let labels = array![0.0, 0.0, 0.0];
    assert_eq!(
        softmax_cross_entropy::forward(logits.view(), labels.view()),
        Ok(0.0)
    );
    let mut d = Array2::from_elem((3, 1), f64::NAN);
    softmax_cross_entropy::backward(
        logits.view(),
        labels.view(),
        1.0,
        GradOut::write(d.view_mut()),
    );
    assert_eq!(d, Array2::<f64>::zeros((3, 1)));
}

#[test]
fn cross_entropy_is_stable_at_1000() {
    let logits = arr2(&[[1000.0, -1000.0], [1000.0, -1000.0], [-1000.0, -1000.0]]);
    let labels = array![0.0, 1.0, 1.0];
    let loss = softmax_cross_entropy::forward(logits.view(), labels.view()).unwrap();
    // Rows: 0, 2000, ln 2.
    assert!(rel_err(loss, (2000.0 + 2f64.ln()) / 3.0) < 1e-15, "{loss}");
    let mut d = Array2::from_elem((3, 2), f64::NAN);
    softmax_cross_entropy::backward(
        logits.view(),
        labels.view(),
        1.0,
        GradOut::write(d.view_mut()),
    );
    let want = arr2(&[[0.0, 0.0], [1.0, -1.0], [0.5, -0.5]]) / 3.0;
    assert_close("ce grad at 1000", d.view(), want.view(), 1e-15);
    // f32 too.
    let l32 =
        softmax_cross_entropy::forward(arr2(&[[1000.0f32, -1000.0]]).view(), array![1.0f32].view())
            .unwrap();
    assert_eq!(l32, 2000.0f32);
}

#[test]
fn bad_labels_are_typed_errors_in_the_kernel() {
    let logits = Array2::<f64>::zeros((3, 4));
    for (bad, row) in [
        (4.0, 1),
        (-1.0, 0),
        (1.5, 2),
        (f64::NAN, 1),
        (f64::INFINITY, 0),
        (1e300, 2),
    ] {
        let mut labels = array![0.0, 3.0, 2.0];
        labels[row] = bad;
        let err = softmax_cross_entropy::forward(logits.view(), labels.view()).unwrap_err();
        match err {
            KernelError::BadLabel {
                arg,
                row: r,
                value,
                classes,
            } => {
                assert_eq!((arg, r, classes), (1, row, 4), "{bad}");
                assert!(value.to_bits() == bad.to_bits(), "{value} vs {bad}");
            }
            other => panic!("{other:?}"),
        }
        // Backward after a (failed) forward never panics: the bad row just has no class.
        let mut d = Array2::from_elem((3, 4), f64::NAN);
        softmax_cross_entropy::backward(
            logits.view(),
            labels.view(),
            1.0,
            GradOut::write(d.view_mut()),
        );
        assert!(d.iter().all(|v| v.is_finite()));
        assert!(d.row(row).iter().all(|&v| (v - 0.25 / 3.0).abs() < 1e-15));
    }
    // Only whole numbers below the class count are classes; -0.0 is class 0.
    assert_eq!(softmax_cross_entropy::class_index(-0.0f64, 2), Some(0));
    assert_eq!(softmax_cross_entropy::class_index(1.0f32, 2), Some(1));
    assert_eq!(softmax_cross_entropy::class_index(2.0f64, 2), None);
    // The error names the node, the labels node, the row and the value.
    let e = KernelError::BadLabel {
        arg: 1,
        row: 2,
        value: 1.5,
        classes: 4,
    }
    .into_error("ce", &["logits", "y"]);
    assert_eq!(
        e,
        Error::BadLabel {
            node: "ce".into(),
            labels: "y".into(),
            row: 2,
            value: LabelValue(1.5),
            classes: 4
        }
    );
    assert_eq!(
        e.to_string(),
        "`ce`: row 2 of the labels `y` is 1.5, which is not a class index; labels must be whole \
         numbers 0, 1, ... below the number of classes, 4 (class indices, not one-hot rows or \
         probabilities: for those, pass the index of each row's largest entry, its argmax)"
    );
}

// ---------------------------------------------------------------------------------------------
// bce and bce_logits
// ---------------------------------------------------------------------------------------------

/// (y's shape, p's shape): the same number of elements, as in `mse`.
const PAIR_SHAPES: [(&[usize], &[usize]); 5] = [
    (&[4], &[4, 1]),
    (&[3, 2], &[3, 2]),
    (&[6], &[6]),
    (&[5, 1], &[5]),
    (&[2, 3], &[6]),
];

#[test]
fn bce_forward_and_backward() {
    let mut rng = Rng::new(60);
    for (ys, ps) in PAIR_SHAPES {
        for g in [1.0, -0.7] {
            let y = rng.array_in(IxDyn(ys), 0.0, 1.0);
            let p = rng.array_in(IxDyn(ps), 0.05, 0.95);
            let fwd = move |a: &[ArrayD<f64>]| scalar(g * bce::forward(a[0].view(), a[1].view()));
            let n = y.len() as f64;
            let want = y
                .iter()
                .zip(p.iter())
                .map(|(y, p)| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln()))
                .sum::<f64>()
                / n;
            assert!(rel_err(bce::forward(y.view(), p.view()), want) < EXACT_TOL);
            // `fwd` folds g in; the kernels take it as their upstream gradient.
            check_backward(
                &format!("bce {ys:?} {ps:?}"),
                &[y, p],
                &[0, 1],
                &mut rng,
                &fwd,
                &|a, _, up, k, d| {
                    if k == 0 {
                        bce::backward_y(a[0].view(), a[1].view(), g * up[[]], d)
                    } else {
                        bce::backward_p(a[0].view(), a[1].view(), g * up[[]], d)
                    }
                },
            );
        }
    }
}

#[test]
fn bce_clamps_saturated_probabilities() {
    // p exactly 0 or 1: finite, at most -ln(1e-12) per element.
    let y = array![1.0, 0.0, 1.0, 0.0];
    let p = array![0.0, 1.0, 1.0, 0.0];
    let loss = bce::forward(y.view(), p.view());
    // Two right (≈ 0) and two wrong (≈ -ln 1e-12 each). Not exactly: 1 - 1e-12 rounds in
    // f64, so 1 - p_c is 1e-12 only to about 1e-4 relative.
    let cap = -(1e-12f64).ln();
    assert!(rel_err(loss, cap / 2.0) < 1e-5, "{loss} vs {}", cap / 2.0);
    let mut dp = Array1::from_elem(4, f64::NAN);
    bce::backward_p(y.view(), p.view(), 1.0, GradOut::write(dp.view_mut()));
    assert!(dp.iter().all(|v| v.is_finite()), "{dp}");
    assert!(
        dp[0] < 0.0 && dp[1] > 0.0,
        "a saturated wrong prediction is pushed back: {dp}"
    );
    let mut dy = Array1::from_elem(4, f64::NAN);
    bce::backward_y(y.view(), p.view(), 1.0, GradOut::write(dy.view_mut()));
    assert!(dy.iter().all(|v| v.is_finite()), "{dy}");
    // f32: the clamp is the f32 epsilon, so 1 - eps is not 1.
    assert_eq!(bce::eps::<f64>(), 1e-12);
    assert_eq!(bce::eps::<f32>(), f32::EPSILON);
    let l32 = bce::forward(array![0.0f32].view(), array![1.0f32].view());
    assert!(l32.is_finite() && l32 > 10.0, "{l32}");
    // NaN is not hidden by the clamp.
    assert!(bce::forward(array![1.0].view(), array![f64::NAN].view()).is_nan());
}

#[test]
fn bce_logits_forward_and_backward() {
    let mut rng = Rng::new(61);
    for (ys, zs) in PAIR_SHAPES {
        let y = rng.array_in(IxDyn(ys), 0.0, 1.0);
        let z = rng.array(IxDyn(zs)).mapv(|v| 4.0 * v);
        let fwd = |a: &[ArrayD<f64>]| scalar(bce_logits::forward(a[0].view(), a[1].view()));
        // Equal to bce of the sigmoid, where that is accurate.
        let p = z.mapv(sigmoid::sigmoid);
        let via_bce = bce::forward(y.view(), p.view());
        assert!(rel_err(fwd(&[y.clone(), z.clone()])[[]], via_bce) < 1e-12);
        check_backward(
            &format!("bce_logits {ys:?} {zs:?}"),
            &[y, z],
            &[0, 1],
            &mut rng,
            &fwd,
            &|a, _, g, k, d| {
                if k == 0 {
                    bce_logits::backward_y(a[1].view(), g[[]], d)
                } else {
                    bce_logits::backward_z(a[0].view(), a[1].view(), g[[]], d)
                }
            },
        );
    }
}

#[test]
fn bce_logits_is_stable_at_1000() {
    let y = array![1.0, 0.0, 1.0, 0.0, 0.5];
    let z = array![1000.0, 1000.0, -1000.0, -1000.0, 0.0];
    let loss = bce_logits::forward(y.view(), z.view());
    // Elements: 0, 1000, 1000, 0, ln 2.
    assert!(rel_err(loss, (2000.0 + 2f64.ln()) / 5.0) < 1e-15, "{loss}");
    let mut dz = Array1::from_elem(5, f64::NAN);
    bce_logits::backward_z(y.view(), z.view(), 1.0, GradOut::write(dz.view_mut()));
    assert_close(
        "dz at 1000",
        dz.view(),
        (array![0.0, 1.0, -1.0, 0.0, 0.0] / 5.0).view(),
        1e-15,
    );
    assert!(bce_logits::forward(array![1.0f32].view(), array![-1000.0f32].view()) == 1000.0);
}

// ---------------------------------------------------------------------------------------------
// Stability at ±1000 of the activations.
// ---------------------------------------------------------------------------------------------

#[test]
fn activations_are_finite_at_1000() {
    let x = array![1000.0, -1000.0, 0.0, 20.0, -20.0];
    let g = Array1::from_elem(5, 1.0);
    let mut t = Array1::from_elem(5, f64::NAN);
    tanh::forward(x.view(), t.view_mut());
    assert_eq!(t.to_vec()[..3], [1.0, -1.0, 0.0]);
    let mut s = Array1::from_elem(5, f64::NAN);
    sigmoid::forward(x.view(), s.view_mut());
    assert_eq!(s.to_vec()[..3], [1.0, 0.0, 0.5]);
    for (what, out) in [("tanh", &t), ("sigmoid", &s)] {
        let mut d = Array1::from_elem(5, f64::NAN);
        if what == "tanh" {
            tanh::backward(out.view(), g.view(), GradOut::write(d.view_mut()));
        } else {
            sigmoid::backward(out.view(), g.view(), GradOut::write(d.view_mut()));
        }
        assert!(d.iter().all(|v| v.is_finite()), "{what}: {d}");
        assert_eq!((d[0], d[1]), (0.0, 0.0), "{what} saturates");
    }
    let mut r = Array1::from_elem(5, f64::NAN);
    leaky_relu::forward(x.view(), 0.01, r.view_mut());
    assert_eq!(r.to_vec()[..2], [1000.0, -10.0]);
    // f32 softmax at ±1000.
    let x32 = arr2(&[[1000.0f32, -1000.0, 0.0]]);
    let mut s32 = Array2::from_elem((1, 3), f32::NAN);
    softmax::forward(x32.view(), s32.view_mut());
    assert_eq!(s32.row(0).to_vec(), [1.0, 0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// Through the runtime graph: labels, literals and the typed errors.
// ---------------------------------------------------------------------------------------------

fn feed(v: ArrayViewD<'_, f64>) -> ArrayD<f64> {
    v.to_owned()
}

#[test]
fn graph_reports_a_bad_label_with_node_row_and_value() {
    let mut g = Graph::<f64>::new();
    let (x, w, y) = (
        g.input("x").unwrap(),
        g.input("w").unwrap(),
        g.input("y").unwrap(),
    );
    let z = g.op("z", Op::Matmul, &[x, w]).unwrap();
    let ce = g.op("ce", Op::SoftmaxCrossEntropy, &[z, y]).unwrap();
    let xv = arr2(&[[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]]).into_dyn();
    let wv = arr2(&[[0.1, 0.2, 0.3], [-0.1, 0.0, 0.4]]).into_dyn();
    let order = g
        .topological_sort([
            (x, xv.clone()),
            (w, wv.clone()),
            (y, array![0.0, 2.0, 3.0].into_dyn()),
        ])
        .unwrap();
    let err = g.forward_and_backward(&order, ce).unwrap_err();
    assert_eq!(
        err,
        Error::BadLabel {
            node: "ce".into(),
            labels: "y".into(),
            row: 2,
            value: LabelValue(3.0),
            classes: 3
        }
    );
    // The failed forward leaves nothing to go backward from.
    assert_eq!(
        g.backward_order(&order, ce).unwrap_err(),
        Error::BackwardBeforeForward
    );

    // Good labels: it runs, the logits get (softmax - onehot) / m, the labels nothing.
    g.set_value(y, array![0.0, 2.0, 1.0].into_dyn()).unwrap();
    let loss = g.forward_and_backward(&order, ce).unwrap();
    let zv = feed(g.value(z).unwrap());
    let want = softmax_cross_entropy::forward(ix2(&zv), array![0.0, 2.0, 1.0].view()).unwrap();
    assert_eq!(loss, want);
    assert!(g.gradient(y).is_err(), "labels get no gradient");
    let gw = g.gradient(w).unwrap();
    assert_eq!(gw.shape(), &[2, 3]);
    // The trainables train; the labels cannot be trained.
    g.sgd_update(&[w, x], 0.1).unwrap();
    let err = g.sgd_update(&[y], 0.1).unwrap_err();
    assert!(
        matches!(&err, Error::NoGradient { name, .. } if name == "y"),
        "{err}"
    );
}

#[test]
fn graph_refuses_to_train_what_flows_into_labels() {
    // y + shift as labels: `shift` would get no gradient through them.
    let mut g = Graph::<f64>::new();
    let (x, w, y, shift) = (
        g.input("x").unwrap(),
        g.input("w").unwrap(),
        g.input("y").unwrap(),
        g.input("shift").unwrap(),
    );
    let z = g.matmul("z", x, w).unwrap();
    let t = g.add("t", y, shift).unwrap();
    let ce = g.softmax_cross_entropy("ce", z, t).unwrap();
    let order = g
        .topological_sort([
            (x, arr2(&[[1.0], [2.0]]).into_dyn()),
            (w, arr2(&[[0.5, -0.5]]).into_dyn()),
            (y, array![1.0, 0.0].into_dyn()),
            (shift, array![0.0, 1.0].into_dyn()),
        ])
        .unwrap();
    g.forward_and_backward(&order, ce).unwrap();
    g.sgd_update(&[w], 0.1).unwrap();
    let err = g.sgd_update(&[w, shift], 0.1).unwrap_err();
    assert!(
        matches!(&err, Error::NoGradient { name, reason } if name == "shift" && reason.contains("labels")),
        "{err}"
    );
}

#[test]
fn graph_literals() {
    let mut g = Graph::<f64>::new();
    let x = g.input("x").unwrap();
    // The slope travels as a literal, not a node.
    let h = g.op_with("h", Op::LeakyRelu, &[x], &[0.25]).unwrap();
    let h2 = g.leaky_relu("h2", x, -2.0).unwrap();
    let s = g.sum("s", h).unwrap();
    let s2 = g.mean("s2", h2).unwrap();
    let l = g.add("l", s, s2).unwrap();
    let order = g
        .topological_sort([(x, array![[-4.0, 2.0], [1.0, -1.0]].into_dyn())])
        .unwrap();
    let loss = g.forward_and_backward(&order, l).unwrap();
    // sum(-1, 2, 1, -0.25) + mean(8, 2, 1, 2) = 1.75 + 3.25.
    assert_eq!(loss, 5.0);
    assert_eq!(g.value(s).unwrap().shape(), &[] as &[usize]);
    let gx = g.gradient(x).unwrap();
    // d/dx: 0.25 or 1 from the sum, (-2 or 1) / 4 from the mean.
    assert_eq!(
        gx.iter().copied().collect::<Vec<_>>(),
        [0.25 - 0.5, 1.25, 1.25, 0.25 - 0.5]
    );

    // Missing, extra and non-finite literals are typed errors, not panics.
    let e = g.op("bad", Op::LeakyRelu, &[x]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`bad`: `leaky_relu` takes 1 literal argument (`slope`), found 0; expected \
         leaky_relu(x: S, slope: a number like 0.01) -> S"
    );
    assert!(matches!(
        g.op("bad", Op::LeakyRelu, &[x, x]),
        Err(Error::BadLiteral { .. })
    ));
    assert!(matches!(
        g.op_with("bad", Op::Relu, &[x], &[1.0]),
        Err(Error::BadLiteral { .. })
    ));
    let e = g
        .op_with("bad", Op::LeakyRelu, &[x], &[f64::NAN])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`bad`: the `slope` of `leaky_relu` must be a finite number, found NaN"
    );
    assert!(matches!(
        g.op_with("bad", Op::LeakyRelu, &[x, x], &[0.1]),
        Err(Error::OpShape { .. })
    ));
    // The convenience method checks at once too.
    let mut g = Graph::<f64>::new();
    let x = g.input("x").unwrap();
    assert!(matches!(
        g.leaky_relu("h", x, f64::INFINITY),
        Err(Error::BadLiteral { .. })
    ));
}

#[test]
fn graph_shape_rules_of_the_new_ops() {
    let mut g = Graph::<f64>::new();
    let (a, b, v) = (
        g.input("a").unwrap(),
        g.input("b").unwrap(),
        g.input("v").unwrap(),
    );
    let m = g.op("m", Op::Matmul, &[a, b]).unwrap();
    let p = g.op("p", Op::Softmax, &[v]).unwrap();
    let order = g
        .topological_sort([
            (a, ArrayD::zeros(IxDyn(&[2, 3]))),
            (b, ArrayD::zeros(IxDyn(&[2, 3]))),
            (v, ArrayD::zeros(IxDyn(&[4]))),
        ])
        .unwrap();
    let err = g.forward_order(&order).unwrap_err();
    assert!(
        matches!(&err, Error::OpShape { node, message } if node == "m" && message.contains("dimension 0 of `b` is 2")),
        "{err}"
    );
    let _ = (m, p);
}

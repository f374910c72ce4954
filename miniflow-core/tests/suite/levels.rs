//! Every instruction-set level this CPU runs (the portable one always, so CI machines without
//! AVX2 or AVX-512 run it too) computes the same kernels and networks: the sigmoid within a
//! few ulp of `1 / (1 + exp(-x))` with its edge cases (NaN, ±inf, ±1000, denormal results
//! flushed to 0), the fused sigmoid backward in every `GradOut` mode, and whole networks
//! through the runtime graph (two hidden layers, every gradient) to 1e-12 between levels;
//! and `linear`'s backward on the packed GEMM against finite differences on each level.

use crate::common;

use common::{assert_close, Rng, EXACT_TOL};
use miniflow_core::ndarray::{Array1, ArrayD, IxDyn};
use miniflow_core::ops::{linear, sigmoid, with_simd_level, GradOut, SimdLevel};
use miniflow_core::{Graph, NodeId};

fn ulps(a: f64, b: f64) -> u64 {
    if a == b {
        return 0;
    }
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
}

fn ulps32(a: f32, b: f32) -> u32 {
    if a == b {
        return 0;
    }
    (a.to_bits() as i32 - b.to_bits() as i32).unsigned_abs()
}

/// Inputs covering the reduction's seams, the saturation ends and lengths that leave every
/// remainder of a register.
fn inputs(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * 0.7391 - 0.37 * n as f64) * if i % 3 == 0 { 0.01 } else { 1.0 })
        .collect()
}

#[test]
fn sigmoid_is_within_4_ulp_on_every_level() {
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            for n in [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 110, 1000] {
                let x = inputs(n);
                let xa = Array1::from(x.clone());
                let mut out = Array1::from_elem(n, f64::NAN);
                sigmoid::forward(xa.view(), out.view_mut());
                for (&x, &s) in x.iter().zip(&out) {
                    let want = 1.0 / (1.0 + (-x).exp());
                    let want = if want < f64::MIN_POSITIVE { 0.0 } else { want };
                    assert!(
                        ulps(s, want) <= 4,
                        "{} sigmoid({x}) = {s:e}, want {want:e}",
                        level.name()
                    );
                }
                let x32: Array1<f32> = xa.mapv(|v| v as f32);
                let mut out32 = Array1::from_elem(n, f32::NAN);
                sigmoid::forward(x32.view(), out32.view_mut());
                for (&x, &s) in x32.iter().zip(&out32) {
                    let want = 1.0 / (1.0 + (-x).exp());
                    let want = if want < f32::MIN_POSITIVE { 0.0 } else { want };
                    assert!(
                        ulps32(s, want) <= 4,
                        "{} f32 sigmoid({x}) = {s:e}, want {want:e}",
                        level.name()
                    );
                }
            }
        })
    }
}

#[test]
fn sigmoid_edge_cases_on_every_level() {
    for level in SimdLevel::available() {
        with_simd_level(level, || {
            let x = Array1::from(vec![
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                1000.0,
                -1000.0,
                0.0,
                -0.0,
                -745.0,
                710.0,
            ]);
            let mut s = Array1::from_elem(x.len(), 0.5);
            sigmoid::forward(x.view(), s.view_mut());
            let tag = level.name();
            assert!(s[0].is_nan(), "{tag}: NaN flows through");
            assert_eq!(s[1], 1.0, "{tag}: +inf");
            assert_eq!(s[2], 0.0, "{tag}: -inf");
            assert_eq!(s[3], 1.0, "{tag}: 1000");
            assert_eq!(s[4], 0.0, "{tag}: -1000");
            assert_eq!(s[5], 0.5, "{tag}: 0");
            assert_eq!(s[6], 0.5, "{tag}: -0");
            assert_eq!(s[7], 0.0, "{tag}: below the normal range, flushed");
            assert_eq!(s[8], 1.0, "{tag}: 710");
        })
    }
}

/// The fused sigmoid backward on every level and in every mode, against the unfused pair.
#[test]
fn through_sigmoid_on_every_level_and_mode() {
    let mut rng = Rng::new(21);
    for (m, k, n) in [
        (11, 10, 1),
        (256, 100, 1),
        (5, 7, 3),
        (64, 70, 50),
        (3, 1, 1),
    ] {
        let (l, w, g) = (rng.array((m, k)), rng.array((k, n)), rng.array((m, n)));
        let s = l.mapv(sigmoid::sigmoid);
        let want = (g.dot(&w.t())) * &s.mapv(|s| s * (1.0 - s));
        let junk = rng.junk((m, k));
        for level in SimdLevel::available() {
            with_simd_level(level, || {
                let tag = format!("{} {m}x{k}x{n}", level.name());
                let mut dl = junk.clone();
                let out = GradOut::write(dl.view_mut());
                linear::backward_through_sigmoid(s.view(), w.view(), g.view(), out);
                assert_close(&format!("{tag} write"), dl.view(), want.view(), EXACT_TOL);
                let mut dl = junk.clone();
                let out = GradOut::add(dl.view_mut());
                linear::backward_through_sigmoid(s.view(), w.view(), g.view(), out);
                let sum = &junk + &want;
                assert_close(&format!("{tag} add"), dl.view(), sum.view(), EXACT_TOL);
                let mut dl = junk.clone();
                let out = GradOut::add_scaled(dl.view_mut(), -0.3);
                linear::backward_through_sigmoid(s.view(), w.view(), g.view(), out);
                let step = &junk + &(&want * -0.3);
                assert_close(
                    &format!("{tag} add_scaled"),
                    dl.view(),
                    step.view(),
                    EXACT_TOL,
                );
            })
        }
    }
}

/// A network through the runtime graph: loss, every value and every gradient.
struct Net {
    g: Graph<f64>,
    order: Vec<NodeId>,
    cost: NodeId,
}

fn mlp(rng: &mut Rng, batch: usize, sizes: &[usize]) -> Net {
    let mut g = Graph::<f64>::new();
    let x = g.input("X").unwrap();
    let y = g.input("y").unwrap();
    let mut feeds = vec![
        (x, rng.array((batch, sizes[0])).into_dyn()),
        (y, rng.array((batch, sizes[sizes.len() - 1])).into_dyn()),
    ];
    let mut h = x;
    for (i, pair) in sizes.windows(2).enumerate() {
        let w = g.input(format!("W{i}")).unwrap();
        let b = g.input(format!("b{i}")).unwrap();
        feeds.push((w, rng.array((pair[0], pair[1])).into_dyn()));
        feeds.push((b, rng.array(pair[1]).into_dyn()));
        let l = g.linear(format!("l{i}"), h, w, b).unwrap();
        h = if i + 2 < sizes.len() {
            g.sigmoid(format!("s{i}"), l).unwrap()
        } else {
            l
        };
    }
    let cost = g.mse("cost", y, h).unwrap();
    let order = g.topological_sort(feeds).unwrap();
    Net { g, order, cost }
}

#[test]
fn networks_agree_on_every_level() {
    // (batch, layer sizes): the course's 13-10-1, a wide one whose products take the GEMM,
    // a deep narrow one.
    for (batch, sizes) in [
        (11, vec![13, 10, 1]),
        (64, vec![100, 80, 1]),
        (40, vec![20, 30, 30, 30, 5]),
    ] {
        let mut first: Option<(f64, Vec<ArrayD<f64>>)> = None;
        for level in SimdLevel::available() {
            let (loss, arrays) = with_simd_level(level, || {
                let mut rng = Rng::new(31);
                let mut net = mlp(&mut rng, batch, &sizes);
                let loss = net.g.forward_and_backward(&net.order, net.cost).unwrap();
                let mut arrays = Vec::new();
                for &id in &net.order {
                    arrays.push(net.g.value(id).unwrap().to_owned());
                    if let Ok(grad) = net.g.gradient(id) {
                        arrays.push(grad.to_owned());
                    }
                }
                (loss, arrays)
            });
            match &first {
                None => first = Some((loss, arrays)),
                Some((l0, a0)) => {
                    let tag = format!("{} {batch}x{sizes:?}", level.name());
                    assert!(common::rel_err(loss, *l0) <= EXACT_TOL, "{tag}: loss");
                    assert_eq!(a0.len(), arrays.len());
                    for (i, (x, y)) in a0.iter().zip(&arrays).enumerate() {
                        let shape = IxDyn(x.shape());
                        assert_close(
                            &format!("{tag}: array {i}"),
                            y.view().into_shape_with_order(shape.clone()).unwrap(),
                            x.view().into_shape_with_order(shape).unwrap(),
                            EXACT_TOL,
                        );
                    }
                }
            }
        }
    }
}

/// `linear`'s backward at shapes that run the packed GEMM, against finite differences, on
/// every level this CPU has (the forced lower ones included): `dW = xᵀ·g` with its transposed
/// `x` packed (a panel spanning over 256 KiB, more than two tiles wide), `x` rows 4 KiB apart,
/// partial panels, and several blocks of terms. A finite difference per entry would take a
/// forward per entry; instead each gradient is checked along three random directions (a
/// wrong entry anywhere moves the directional derivative) and at four single entries.
#[test]
fn linear_backward_on_the_packed_gemm_matches_finite_differences_on_every_level() {
    use common::{contract, rel_err, EPS, FD_TOL};
    use miniflow_core::ndarray::Array2;
    for &(m, k, n) in &[(64, 600, 60), (37, 512, 50), (20, 1030, 70)] {
        for level in SimdLevel::available() {
            with_simd_level(level, || {
                let mut rng = Rng::new(41);
                let (x, w, b) = (rng.array((m, k)), rng.array((k, n)), rng.array(n));
                let g = rng.array((m, n));
                let loss = |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| {
                    let mut out = Array2::from_elem((m, n), f64::NAN);
                    linear::forward(x.view(), w.view(), b.view(), out.view_mut());
                    contract(&g, &out)
                };
                let (mut dx, mut dw, mut db) = (rng.junk((m, k)), rng.junk((k, n)), rng.junk(n));
                linear::backward(
                    x.view(),
                    w.view(),
                    g.view(),
                    Some(GradOut::write(dx.view_mut())),
                    Some(GradOut::write(dw.view_mut())),
                    Some(GradOut::write(db.view_mut())),
                );
                let tag = format!("{} {m}x{k}x{n}", level.name());
                let check = |what: &str, got: f64, plus: f64, minus: f64| {
                    let num = (plus - minus) / (2.0 * EPS);
                    let err = rel_err(got, num);
                    assert!(err <= FD_TOL, "{tag} {what}: {got} against {num} ({err:e})");
                };
                for d in 0..3 {
                    let (vx, vw, vb) = (rng.array((m, k)), rng.array((k, n)), rng.array(n));
                    let step = |a: &Array2<f64>, v: &Array2<f64>, s: f64| a + &(v * s);
                    check(
                        &format!("dx along direction {d}"),
                        (&dx * &vx).sum(),
                        loss(&step(&x, &vx, EPS), &w, &b),
                        loss(&step(&x, &vx, -EPS), &w, &b),
                    );
                    check(
                        &format!("dw along direction {d}"),
                        (&dw * &vw).sum(),
                        loss(&x, &step(&w, &vw, EPS), &b),
                        loss(&x, &step(&w, &vw, -EPS), &b),
                    );
                    check(
                        &format!("db along direction {d}"),
                        (&db * &vb).sum(),
                        loss(&x, &w, &(&b + &(&vb * EPS))),
                        loss(&x, &w, &(&b - &(&vb * EPS))),
                    );
                }
                for e in 0..4 {
                    let pick = |rng: &mut Rng, len: usize| (rng.next_u64() % len as u64) as usize;
                    let (i, p, j) = (pick(&mut rng, m), pick(&mut rng, k), pick(&mut rng, n));
                    let bumped = |a: &Array2<f64>, at: (usize, usize), s: f64| {
                        let mut a = a.clone();
                        a[at] += s;
                        a
                    };
                    check(
                        &format!("dx[{i}, {p}] (entry {e})"),
                        dx[(i, p)],
                        loss(&bumped(&x, (i, p), EPS), &w, &b),
                        loss(&bumped(&x, (i, p), -EPS), &w, &b),
                    );
                    check(
                        &format!("dw[{p}, {j}] (entry {e})"),
                        dw[(p, j)],
                        loss(&x, &bumped(&w, (p, j), EPS), &b),
                        loss(&x, &bumped(&w, (p, j), -EPS), &b),
                    );
                }
            })
        }
    }
}

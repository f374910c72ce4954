//! Generated networks train the same on every instruction-set level this CPU runs (portable
//! always): ten fused SGD steps (the sigmoid folded into the next linear, params updated in
//! place) of a small and a wide network, in f64 and f32, compared between levels: every
//! param to 1e-12 relative in f64 (1e-5 in f32).

use miniflow::ndarray::{Array1, Array2, ArrayViewD};
use miniflow::ops::{with_simd_level, SimdLevel};
use miniflow::{Network, Scalar};

miniflow::network! {
    struct Small {
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
    /// Products large enough for the packed GEMM, a 1-wide last layer (the fused outer
    /// product) and a wide hidden one (the fused GEMM path).
    struct Wide {
        input X: [batch, 120];
        input y: [batch, 1];
        param W1: [120, 90];
        param b1: [90];
        param W2: [90, 70];
        param b2: [70];
        param W3: [70, 1];
        param b3: [1];
        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        s2 = sigmoid(l2);
        l3 = linear(s2, W3, b3);
        loss cost = mse(y, l3);
    }
}

miniflow::network! {
    #[elem(f32)]
    struct Wide32 {
        input X: [batch, 120];
        input y: [batch, 1];
        param W1: [120, 90];
        param b1: [90];
        param W2: [90, 1];
        param b2: [1];
        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        loss cost = mse(y, l2);
    }
}

fn values<T: Scalar>(seed: u64, n: usize) -> Vec<T> {
    (0..n)
        .map(|i| T::from_f64(((i as u64 * 2654435761 + seed) % 1000) as f64 / 1000.0 - 0.5))
        .collect()
}

/// Ten SGD steps from a fixed start; returns the losses and every param afterwards.
fn train<N: Network + Default>(batch: usize, inputs: usize, y_cols: Option<usize>) -> Vec<f64> {
    let mut net = N::default();
    let mut params = Vec::new();
    net.visit_params(&mut |p| params.push((p.name.to_string(), p.value.shape().to_vec())));
    for (i, (name, shape)) in params.iter().enumerate() {
        let len = shape.iter().product();
        let v = values::<N::Elem>(i as u64 + 7, len);
        let a = miniflow::ndarray::ArrayD::from_shape_vec(shape.clone(), v).unwrap();
        net.set_param(name, a.view()).unwrap();
    }
    let x = Array2::from_shape_vec((batch, inputs), values(1, batch * inputs)).unwrap();
    net.feed("X", &x).unwrap();
    match y_cols {
        Some(c) => net
            .feed(
                "y",
                &Array2::from_shape_vec((batch, c), values(2, batch * c)).unwrap(),
            )
            .unwrap(),
        None => net.feed("y", &Array1::from_vec(values(2, batch))).unwrap(),
    }
    let lr = N::Elem::from_f64(0.05);
    let mut out = Vec::new();
    for _ in 0..10 {
        out.push(net.sgd_step(lr).unwrap().to_f64());
    }
    net.visit_params(&mut |p| {
        let v: ArrayViewD<'_, N::Elem> = p.value.view();
        out.extend(v.iter().map(|x| x.to_f64()));
    });
    out
}

fn agree(what: &str, run: impl Fn() -> Vec<f64>, tol: f64) {
    let mut first: Option<Vec<f64>> = None;
    for level in SimdLevel::available() {
        let got = with_simd_level(level, &run);
        match &first {
            None => first = Some(got),
            Some(want) => {
                assert_eq!(want.len(), got.len());
                for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                    let err = (a - b).abs() / (a.abs() + b.abs()).max(1.0);
                    assert!(
                        err <= tol,
                        "{what} on {}: value {i}: {b} vs {a} (portable)",
                        level.name()
                    );
                }
            }
        }
    }
}

#[test]
fn fused_training_agrees_on_every_level() {
    agree("13-10-1", || train::<Small>(11, 13, None), 1e-12);
    agree("120-90-70-1", || train::<Wide>(96, 120, Some(1)), 1e-12);
    agree("f32 120-90-1", || train::<Wide32>(96, 120, Some(1)), 1e-5);
}

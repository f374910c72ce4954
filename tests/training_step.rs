//! `sgd_step` (the fused training step) against the unfused path it must equal:
//! `forward_backward` then `sgd`, on networks that exercise every fusion rule.

use miniflow::ndarray::{Array, ArrayD, IxDyn};
use miniflow::Network;

miniflow::network! {
    /// Two layers: the sigmoid folds into the second linear; every param updates in place.
    struct TwoLayer {
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
    /// `w` feeds two linears and `s` two consumers: no sigmoid fusion for `s`.
    struct Shared {
        input x: [n, 3];
        input y: [n, 3];
        param w: [3, 3];
        param b: [3];
        h = linear(x, w, b);
        s = sigmoid(h);
        t = add(s, h);
        o = linear(t, w, b);
        q = sigmoid(o);
        loss c = mse(y, q);
    }
}

miniflow::network! {
    /// `linear(w, w, b)`: `w` is read after its update would happen, so it is not updated in
    /// place.
    struct SelfProduct {
        input y: [3, 3];
        param w: [3, 3];
        param b: [3];
        o = linear(w, w, b);
        loss c = mse(y, o);
    }
}

miniflow::network! {
    /// `w` is also the `x` of another linear: that linear's `dv` reads `w` after `w`'s first
    /// contribution, so `w` must not be updated in place (the borrow checker cannot see this).
    struct ReadLater {
        input x: [3, 3];
        input y: [3, 3];
        param w: [3, 3];
        param v: [3, 3];
        param b: [3];
        param c: [3];
        h = linear(x, w, b);
        o = linear(w, v, c);
        t = add(h, o);
        loss l = mse(y, t);
    }
}

fn values(seed: u64, shape: &[usize]) -> ArrayD<f64> {
    let mut state = seed;
    Array::from_shape_fn(IxDyn(shape), |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

fn params(net: &impl Network<Elem = f64>) -> Vec<(String, ArrayD<f64>)> {
    net.spec()
        .nodes
        .iter()
        .filter(|n| n.kind == miniflow::NodeKind::Param)
        .map(|n| (n.name.to_string(), net.value(n.name).unwrap().to_owned()))
        .collect()
}

/// Runs `steps` fused and unfused steps from the same start and compares every param.
fn fused_equals_unfused<N: Network<Elem = f64> + Default>(
    feeds: &[(&str, &[usize])],
    steps: usize,
) {
    let (mut fused, mut plain) = (N::default(), N::default());
    for (k, node) in fused.spec().nodes.iter().enumerate() {
        if node.kind == miniflow::NodeKind::Param {
            let shape: Vec<usize> = node
                .shape
                .iter()
                .map(|d| match d {
                    miniflow::DimSpec::Fixed(n) => *n,
                    miniflow::DimSpec::Named(_) => unreachable!("params have fixed shapes"),
                })
                .collect();
            let v = values(100 + k as u64, &shape);
            fused.set_param(node.name, v.view()).unwrap();
            plain.set_param(node.name, v.view()).unwrap();
        }
    }
    for step in 0..steps {
        for (i, (name, shape)) in feeds.iter().enumerate() {
            let v = values((step * 10 + i) as u64, shape);
            fused.set_input(name, v.view()).unwrap();
            plain.set_input(name, v.view()).unwrap();
        }
        let lf = fused.sgd_step(0.1).unwrap();
        let lp = plain.forward_backward().unwrap();
        miniflow::sgd(&mut plain, 0.1);
        assert!(
            (lf - lp).abs() <= 1e-12 * lp.abs().max(1.0),
            "loss {lf} vs {lp}"
        );
        for ((name, a), (_, b)) in params(&fused).iter().zip(params(&plain)) {
            let worst = (a - &b).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(
                worst <= 1e-12,
                "{name} after step {step}: differs by {worst}"
            );
        }
    }
    // The steps must have moved the params, or the comparison proves nothing.
    let mut fresh = N::default();
    for (name, v) in params(&fused) {
        assert_ne!(fresh.value(&name).unwrap(), v.view(), "{name} never moved");
        fresh.set_param(&name, v.view()).unwrap();
    }
}

#[test]
fn two_layer_fused_step_equals_forward_backward_sgd() {
    fused_equals_unfused::<TwoLayer>(&[("X", &[11, 13]), ("y", &[11])], 4);
}

#[test]
fn shared_param_fused_step_equals_forward_backward_sgd() {
    fused_equals_unfused::<Shared>(&[("x", &[5, 3]), ("y", &[5, 3])], 4);
}

#[test]
fn self_product_fused_step_equals_forward_backward_sgd() {
    fused_equals_unfused::<SelfProduct>(&[("y", &[3, 3])], 4);
}

#[test]
fn param_read_after_its_update_is_updated_at_the_end() {
    fused_equals_unfused::<ReadLater>(&[("x", &[3, 3]), ("y", &[3, 3])], 4);
}

#[test]
fn sgd_step_needs_its_feeds() {
    let mut net = TwoLayer::new();
    net.set_input("X", values(1, &[2, 13]).view()).unwrap();
    assert!(matches!(
        net.sgd_step(0.1),
        Err(miniflow::Error::MissingFeed { .. })
    ));
}

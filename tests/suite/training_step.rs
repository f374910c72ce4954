//! `sgd_step` (the fused training step) against the unfused path it must equal:
//! `forward_backward` then `sgd`, on networks that exercise every fusion rule.

use crate::common;

use common::nets::TwoLayer;

use common::{fused_equals_unfused, rand, random_inputs};
use miniflow::Network;

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

miniflow::network! {
    /// Issue 8's miscompile: `P`'s only use is a sigmoid feeding only the `x` of a linear, so
    /// the sigmoid's derivative is folded into the linear's backward, and `P` is updated in
    /// place. The folded kernel used to overwrite `P` with `-lr·dP` instead of adding to it.
    struct SigmoidOfParam {
        input y: [4];
        param P: [4, 3];
        param W: [3, 1];
        param b: [1];
        s = sigmoid(P);
        o = linear(s, W, b);
        loss c = mse(y, o);
    }
}

#[test]
fn sigmoid_of_a_param_is_decremented_not_overwritten() {
    fused_equals_unfused::<SigmoidOfParam>(random_inputs(&[("y", &[4])]), 4);
}

#[test]
fn two_layer_fused_step_equals_forward_backward_sgd() {
    fused_equals_unfused::<TwoLayer>(random_inputs(&[("X", &[11, 13]), ("y", &[11])]), 4);
}

#[test]
fn shared_param_fused_step_equals_forward_backward_sgd() {
    fused_equals_unfused::<Shared>(random_inputs(&[("x", &[5, 3]), ("y", &[5, 3])]), 4);
}

#[test]
fn self_product_fused_step_equals_forward_backward_sgd() {
    fused_equals_unfused::<SelfProduct>(random_inputs(&[("y", &[3, 3])]), 4);
}

#[test]
fn param_read_after_its_update_is_updated_at_the_end() {
    fused_equals_unfused::<ReadLater>(random_inputs(&[("x", &[3, 3]), ("y", &[3, 3])]), 4);
}

#[test]
fn sgd_step_needs_its_feeds() {
    let mut net = TwoLayer::new();
    net.set_input("X", rand(1, &[2, 13]).view()).unwrap();
    assert!(matches!(
        net.sgd_step(0.1),
        Err(miniflow::Error::MissingFeed { .. })
    ));
}

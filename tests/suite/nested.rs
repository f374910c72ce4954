//! Nested calls (issue 9 §5): `o = linear(tanh(linear(X, W1, b1)), W2, b2)` is accepted, its
//! inner nodes get stable derived names, and the expansion is the flat form's.

use miniflow::ndarray::{Array1, Array2};
use miniflow::Network;

miniflow::network! {
    struct Nested {
        input X: [batch, 3];
        input y: [batch];
        param W1: [3, 4];
        param b1: [4];
        param W2: [4, 1];
        param b2: [1];
        loss cost = mse(y, linear(tanh(linear(X, W1, b1)), W2, b2));
    }
}

miniflow::network! {
    struct Flat {
        input X: [batch, 3];
        input y: [batch];
        param W1: [3, 4];
        param b1: [4];
        param W2: [4, 1];
        param b2: [1];
        cost_linear_tanh_linear = linear(X, W1, b1);
        cost_linear_tanh = tanh(cost_linear_tanh_linear);
        cost_linear = linear(cost_linear_tanh, W2, b2);
        loss cost = mse(y, cost_linear);
    }
}

miniflow::network! {
    /// A derived name that is taken gets a suffix; two calls of one op in one call too.
    struct Clash {
        input x: [2];
        input y: [2];
        o_tanh = sigmoid(x);
        loss o = mse(y, add(tanh(x), tanh(o_tanh)));
    }
}

#[test]
fn nested_and_flat_forms_train_bit_for_bit_alike() {
    let mut nested = Nested::new();
    let mut flat = Flat::new();
    let x = Array2::from_shape_fn((5, 3), |(i, j)| ((i * 3 + j) as f64 * 0.7).sin());
    let y = Array1::from_shape_fn(5, |i| i as f64 * 0.1);
    for (name, _) in [("W1", 0), ("b1", 0), ("W2", 0), ("b2", 0)] {
        let v = nested.value(name).unwrap().to_owned();
        flat.set_param(name, v.view()).unwrap();
    }
    nested.feed(Nested::X, &x).unwrap();
    nested.feed(Nested::y, &y).unwrap();
    flat.feed(Flat::X, &x).unwrap();
    flat.feed(Flat::y, &y).unwrap();
    for _ in 0..3 {
        let (a, b) = (nested.sgd_step(0.1).unwrap(), flat.sgd_step(0.1).unwrap());
        assert_eq!(a.to_bits(), b.to_bits());
    }
    let names: Vec<&str> = nested.spec().nodes.iter().map(|n| &*n.name).collect();
    let flat_names: Vec<&str> = flat.spec().nodes.iter().map(|n| &*n.name).collect();
    assert_eq!(names, flat_names, "the same nodes, in the same order");
    assert_eq!(
        nested.value(Nested::W2).unwrap(),
        flat.value(Flat::W2).unwrap()
    );
    // The inner nodes have handles of their own.
    nested.forward_backward().unwrap();
    assert_eq!(nested.grad(Nested::cost_linear_tanh).unwrap().dim(), (5, 4));
}

#[test]
fn derived_names_step_aside() {
    let net = Clash::new();
    let spec = net.spec();
    let names: Vec<&str> = spec.nodes.iter().map(|n| &*n.name).collect();
    for want in ["o_tanh", "o_add", "o_add_tanh", "o_add_tanh_2"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
}

//! Hygiene: node names that are DSL words, names the generated code uses for its own locals,
//! fields and methods, or raw identifiers still give a network that compiles and agrees with
//! the runtime graph.

miniflow::network! {
    /// Every node named like something else.
    pub struct Hygiene {
        #[grad] input input: [batch, 3];
        input output: [batch];
        param param: [3, 2];
        param lr: [2];
        param value: [2, 1];
        param name: [1];
        f = linear(input, param, lr);
        forward = sigmoid(f);
        spec = linear(forward, value, name);
        __fed = tanh(spec);
        __dims = add(__fed, spec);
        output batch = mean(__dims);
        grad = mse(output, __dims);
        loss loss = add(grad, batch);
    }
}

miniflow::network! {
    /// Raw identifiers and names of Rust items.
    pub struct RawNames {
        input r#type: [n, 2];
        input Ok: [n];
        param core: [2, 1];
        param miniflow: [1];
        r#match = linear(r#type, core, miniflow);
        loss None = mse(Ok, r#match);
    }
}

#[test]
fn names_that_clash_with_generated_code() {
    miniflow_randnets::check_network::<f64>(&|| Box::new(Hygiene::new()), 1);
}

#[test]
fn raw_identifiers_and_item_names() {
    miniflow_randnets::check_network::<f64>(&|| Box::new(RawNames::new()), 2);
}

miniflow::network! {
    /// A network named like the prelude's `Result` (the generated code must not say `Result`
    /// unqualified).
    pub struct Result {
        input x: [2];
        param w: [2];
        loss l = mse(x, w);
    }
}

miniflow::network! {
    /// And like the trait it implements.
    #[elem(f32)]
    pub struct Network {
        input x: [k, 2];
        input y: [k, 2];
        param w: [2, 2];
        param b: [2];
        h = linear(x, w, b);
        p = softmax(h);
        loss l = mse(y, p);
    }
}

#[test]
fn networks_named_like_prelude_items() {
    miniflow_randnets::check_network::<f64>(&|| Box::new(Result::new()), 3);
    miniflow_randnets::check_network::<f32>(&|| Box::new(Network::new()), 4);
}

/// Issue 8: `#[cfg]` on the network removes every item it expands to (before, the impls
/// stayed and failed to compile).
mod cfg_on_the_network {
    miniflow::network! {
        #[cfg(any())]
        pub struct Gone {
            input x: [2];
            param w: [2];
            loss l = mse(x, w);
        }
    }

    miniflow::network! {
        #[cfg(all())]
        pub struct Kept {
            input x: [2];
            param w: [2];
            loss l = mse(x, w);
        }
    }

    #[test]
    fn kept() {
        let _ = Kept::new();
    }
}

/// Issue 8: the expansion names nothing from the prelude (before: a bare `FnMut`).
#[no_implicit_prelude]
mod no_prelude {
    ::miniflow::network! {
        pub struct Bare {
            input x: [n, 2];
            param w: [2, 1];
            param b: [1];
            loss l = mean(h);
            h = linear(x, w, b);
        }
    }
}

/// Issue 8: lowercase constants named like the generated code's locals are in scope (before:
/// E0005, the locals became patterns).
mod constants_in_scope {
    #![allow(non_upper_case_globals, dead_code)]
    const lr: f64 = 0.5;
    const name: &str = "x";
    const value: u8 = 1;
    const loss: i32 = 3;
    const f: u8 = 2;
    const e: u8 = 7;
    const grad: u8 = 9;
    const on: bool = false;

    miniflow::network! {
        pub struct Shadowed {
            input x: [n, 2];
            input y: [n];
            param w: [2, 1];
            param b: [1];
            h = linear(x, w, b);
            loss c = mse(y, h);
        }
    }

    #[test]
    fn trains() {
        use miniflow::Network;
        let mut net = Shadowed::new();
        net.feed("x", &miniflow::ndarray::array![[1.0, 2.0]])
            .unwrap();
        net.feed("y", &miniflow::ndarray::array![1.0]).unwrap();
        assert!(net.sgd_step(0.1).is_ok());
    }
}

/// Issue 8: `#[deprecated]` on the network warns its users, not the generated code.
mod deprecated_network {
    #![deny(warnings)]
    miniflow::network! {
        #[deprecated(note = "use another network")]
        pub struct Old {
            input x: [2];
            param w: [2];
            loss l = mse(x, w);
        }
    }
}

/// Issue 8: `use miniflow::*` does not shadow the `core` crate.
mod glob_import {
    #![allow(unused_imports)]
    use core::fmt::Write as _;
    use miniflow::*;

    #[test]
    fn core_still_resolves() {
        let mut s = String::new();
        core::write!(s, "{}", 1).unwrap();
        assert_eq!(s, "1");
    }
}

/// Issue 8: `r#x` and `x` are one node, and run-time names carry no `r#`.
#[test]
fn raw_identifiers_are_plain_names_at_run_time() {
    use miniflow::Network;
    miniflow::network! {
        struct Raw {
            input r#type: [n, 2];
            input y: [n];
            param w: [2, 1];
            param b: [1];
            h = linear(type_, w, b);
            type_ = add(r#type, r#type);
            loss l = mse(y, r#h);
        }
    }
    let mut net = Raw::new();
    net.feed("type", &miniflow::ndarray::array![[1.0, 2.0]])
        .unwrap();
    net.feed("y", &miniflow::ndarray::array![1.0]).unwrap();
    net.forward().unwrap();
    assert!(net.spec().node("type").is_ok() && net.spec().node("r#type").is_err());
}

miniflow::network! {
    /// Inputs named like the borrowed-batch step's own parameters and locals.
    pub struct Locals {
        input fed: [n, 2];
        input batch: [n];
        input lr: [];
        param W: [2, 1];
        param b: [1];
        f = linear(fed, W, b);
        e = mse(batch, f);
        loss l = mul(lr, e);
    }
}

#[test]
fn a_borrowed_batch_whose_inputs_are_named_like_the_generated_locals() {
    use miniflow::ndarray::{arr0, array};
    use miniflow::Network;
    let (x, y, w) = (
        array![[1.0, 2.0], [0.5, -1.0]],
        array![0.3, -0.2],
        arr0(2.0),
    );
    let (mut fed, mut borrowed) = (Locals::new(), Locals::new());
    for _ in 0..3 {
        fed.feed(Locals::fed, &x).unwrap();
        fed.feed(Locals::batch, &y).unwrap();
        fed.feed(Locals::lr, &w).unwrap();
        let a = fed.sgd_step(0.1).unwrap();
        let batch = LocalsBatch {
            fed: x.view(),
            batch: y.view(),
            lr: w.view(),
        };
        let b = borrowed.sgd_step_on(batch, 0.1).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
    }
    assert_eq!(
        fed.value(Locals::W).unwrap(),
        borrowed.value(Locals::W).unwrap()
    );
}

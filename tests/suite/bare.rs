//! The bare form of `network!`: statements only (the brief's line) or the seed's nested
//! expression, an expression that builds a runtime `Graph` whose leaves are sized at run time.

use miniflow::ndarray::{array, Array1, Array2};
use miniflow::{Error, Graph, Network, NodeKind};

fn close(got: &[f64], want: &[f64], tol: f64) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tol)
}

/// The seed's test, feeding every leaf as the seed's `feed_dict` does.
fn run_seed(net: &mut Graph<f64>) -> miniflow::Result<()> {
    net.feed("X", &array![[-1., -2.], [-1., -2.]])?;
    net.feed("y", &array![1., 2.])?;
    net.set("W", &array![[2.], [3.]])?;
    net.set("b", &array![-3.])?;
    let cost = net.forward_backward()?;
    assert!((cost - 2.4999498960133932).abs() < 1e-12, "{cost}");
    let g = |n: &str| net.grad(n).map(|v| v.iter().copied().collect::<Vec<f64>>());
    let dx = [
        -3.34017280e-05,
        -5.01025919e-05,
        -6.68040138e-05,
        -1.00206021e-04,
    ];
    assert!(close(&g("X")?, &dx, 1e-12), "{:?}", g("X"));
    assert!(close(&g("y")?, &[0.9999833, 1.9999833], 1e-7));
    assert!(close(&g("W")?, &[5.01028709e-05, 1.00205742e-04], 1e-12));
    assert!(close(&g("b")?, &[-5.01028709e-05], 1e-12));
    Ok(())
}

#[test]
fn the_seeds_nested_expression_reproduces_the_seeds_test() -> miniflow::Result<()> {
    let mut net = miniflow::network! { MSE(y, Sigmoid(Linear(X, W, b))) };
    run_seed(&mut net)
}

#[test]
fn statements_without_declarations_reproduce_the_seeds_test() -> miniflow::Result<()> {
    let mut net = miniflow::network! { f = linear(X, W, b); a = sigmoid(f); cost = mse(y, a) };
    run_seed(&mut net)?;
    // Weight and bias positions are params; the other leaves inputs with gradients.
    let spec = net.spec();
    let kind = |n: &str| spec.nodes.iter().find(|s| s.name == n).map(|s| s.kind);
    assert_eq!(kind("W"), Some(NodeKind::Param));
    assert_eq!(kind("b"), Some(NodeKind::Param));
    assert_eq!(kind("X"), Some(NodeKind::Input { grad: true }));
    assert_eq!(kind("y"), Some(NodeKind::Input { grad: true }));
    assert_eq!(&*spec.loss, "cost");
    Ok(())
}

#[test]
fn the_bare_form_equals_the_declared_form_bit_for_bit() -> miniflow::Result<()> {
    miniflow::network! {
        struct Declared {
            #[grad] input X: [batch, 3];
            #[grad] input y: [batch];
            param W1: [3, 4];
            param b1: [4];
            param W2: [4, 1];
            param b2: [1];
            l1 = linear(X, W1, b1);
            s1 = sigmoid(l1);
            l2 = linear(s1, W2, b2);
            loss cost = mse(l2, y);
        }
    }
    let mut bare = miniflow::network! {
        l1 = linear(X, W1, b1); s1 = sigmoid(l1); l2 = linear(s1, W2, b2); cost = mse(l2, y)
    };
    let mut declared = Declared::new();
    // Same params in both (the bare form's are unset until set).
    for name in ["W1", "b1", "W2", "b2"] {
        let v = declared.value(name)?.to_owned();
        bare.set(name, &v)?;
    }
    let x = Array2::from_shape_fn((5, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
    let y = Array1::from_shape_fn(5, |i| i as f64 * 0.5);
    for net in [&mut bare as &mut dyn Network<Elem = f64>, &mut declared] {
        net.set_input("X", x.view().into_dyn())?;
        net.set_input("y", y.view().into_dyn())?;
    }
    for _ in 0..5 {
        let (a, b) = (bare.sgd_step(0.1)?, declared.sgd_step(0.1)?);
        assert_eq!(a.to_bits(), b.to_bits());
    }
    for name in ["W1", "b1", "W2", "b2"] {
        assert_eq!(
            bare.value(name)?,
            declared.value(name)?.into_dyn(),
            "{name}"
        );
    }
    bare.forward_backward()?;
    declared.forward_backward()?;
    for name in ["X", "y", "W1", "b2"] {
        assert_eq!(bare.grad(name)?, declared.grad(name)?.into_dyn(), "{name}");
    }
    Ok(())
}

#[test]
fn ranks_come_from_argument_positions_and_are_checked_when_fed() {
    let mut net = miniflow::network! { f = linear(X, W, b); a = sigmoid(f); cost = mse(y, a) };
    let e = net.feed("X", &array![1., 2.]).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { node, .. } if node == "X"),
        "{e}"
    );
    assert!(e.to_string().contains("rank 2"), "{e}");
    let e = net.set("b", &array![[1.]]).unwrap_err();
    assert!(e.to_string().contains("rank 1"), "{e}");
    // Sizes are checked by the ops when run, naming the node.
    net.feed("X", &array![[1., 2.]]).unwrap();
    net.feed("y", &array![1.]).unwrap();
    net.set("W", &array![[1.], [2.], [3.]]).unwrap();
    net.set("b", &array![0.]).unwrap();
    let e = net.forward().unwrap_err();
    assert!(
        matches!(&e, Error::OpShape { node, .. } if node == "f"),
        "{e}"
    );
}

#[test]
fn an_unset_param_is_named_not_a_panic() {
    let mut net = miniflow::network! { f = linear(X, W, b); cost = mse(y, f) };
    net.feed("X", &array![[1., 2.]]).unwrap();
    net.feed("y", &array![1.]).unwrap();
    let e = net.sgd_step(0.1).unwrap_err();
    assert!(matches!(&e, Error::ParamNotSet { .. }), "{e}");
    assert!(e.to_string().contains("was never set"), "{e}");
    // Optimizers and init see only the params that have values.
    net.set("W", &array![[1.], [2.]]).unwrap();
    let mut seen = Vec::new();
    net.visit_params(&mut |p| seen.push((p.index, p.name.to_string())));
    assert_eq!(seen, [(0, "W".to_string())]);
}

#[test]
fn declaring_a_leaf_overrides_the_default() -> miniflow::Result<()> {
    // `b` declared an input: a training step leaves it alone.
    let mut net = miniflow::network! {
        input b;
        f = linear(X, W, b);
        cost = mse(y, f)
    };
    net.feed("X", &array![[1., 2.]])?;
    net.feed("y", &array![1.])?;
    net.feed("b", &array![0.5])?;
    net.set("W", &array![[1.], [2.]])?;
    net.sgd_step(0.1)?;
    assert_eq!(net.value("b")?, array![0.5].into_dyn());
    assert_ne!(net.value("W")?, array![[1.], [2.]].into_dyn());
    // Declared dims are checked as in a struct.
    let mut sized = miniflow::network! {
        input X: [n, 2];
        f = linear(X, W, b);
        cost = mse(y, f)
    };
    let e = sized.feed("X", &array![[1., 2., 3.]]).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { node, .. } if node == "X"),
        "{e}"
    );
    Ok(())
}

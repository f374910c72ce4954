//! Check mode (like PyTorch's anomaly mode): the first node whose value or gradient is NaN or
//! infinite is named, in the generated network and in the runtime graph alike.

use miniflow::ndarray::{array, ArrayD};
use miniflow::{Error, Graph, Network, Op};

miniflow::network! {
    struct Net {
        input X: [batch, 1];
        input y: [batch];
        param W: [1, 1];
        param b: [1];
        f = linear(X, W, b);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

miniflow::network! {
    /// Forward stays finite (x·W = 1 per row), but dW = Σ_rows x overflows.
    struct Overflow {
        input X: [batch, 1];
        param W: [1, 1];
        param b: [1];
        h = linear(X, W, b);
        loss cost = sum(h);
    }
}

fn net(x: ArrayD<f64>, w: f64) -> Net {
    let mut net = Net::new();
    net.set_input("X", x.view()).unwrap();
    net.feed("y", &array![0.5, 0.5]).unwrap();
    net.set_param("W", array![[w]].view().into_dyn()).unwrap();
    net
}

fn overflow() -> Overflow {
    let mut n = Overflow::new();
    n.set_input("X", ArrayD::from_elem(vec![2, 1], 1e308).view())
        .unwrap();
    n.set_param("W", array![[1e-308]].view().into_dyn())
        .unwrap();
    n
}

#[test]
fn a_nan_input_is_named_in_check_mode_and_passes_through_otherwise() {
    let mut n = net(array![[1.0], [f64::NAN]].into_dyn(), 1.0);
    assert!(
        n.forward().unwrap().is_nan(),
        "without check mode NaN flows through"
    );
    n.set_check_finite(true);
    let err = n.forward().unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, pass: "forward", index, value, .. }
            if node == "X" && index == &[1, 0] && value == "NaN"),
        "{err}"
    );
}

#[test]
fn the_first_op_producing_inf_is_named() {
    let mut n = net(array![[1e300], [1.0]].into_dyn(), 1e10);
    n.set_check_finite(true);
    let err = n.forward().unwrap_err();
    assert_eq!(
        err,
        Error::NonFinite {
            node: "f".into(),
            pass: "forward",
            leaf: false,
            index: vec![0, 0],
            value: "inf".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "`f` produced a non-finite value (inf) at row 0, column 0 in the forward pass"
    );
}

#[test]
fn an_overflowing_gradient_is_named_in_backward() {
    let mut n = overflow();
    assert!(n.forward().unwrap().is_finite());
    n.backward().unwrap();
    assert!(
        n.grad("W").unwrap()[[0, 0]].is_infinite(),
        "the scenario overflows"
    );

    n.set_check_finite(true);
    n.forward().unwrap();
    let err = n.backward().unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, pass: "backward", .. } if node == "W"),
        "{err:?}"
    );
    // The fused step checks the updated param instead of a stored gradient.
    let err = n.sgd_step(0.1).unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, pass: "backward", .. } if node == "W"),
        "{err:?}"
    );
}

#[test]
fn the_runtime_graph_names_the_same_nodes() {
    let mut g = Graph::<f64>::new();
    let (x, y, w, b) = (
        g.input("X").unwrap(),
        g.input("y").unwrap(),
        g.input("W").unwrap(),
        g.input("b").unwrap(),
    );
    let f = g.op("f", Op::Linear, &[x, w, b]).unwrap();
    let a = g.sigmoid("a", f).unwrap();
    let _cost = g.mse("cost", y, a).unwrap();
    g.set_check_finite(true);
    let order = g
        .topological_sort([
            (x, array![[1e300], [1.0]].into_dyn()),
            (y, array![0.5, 0.5].into_dyn()),
            (w, array![[1e10]].into_dyn()),
            (b, array![0.0].into_dyn()),
        ])
        .unwrap();
    let err = g.forward_order(&order).unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, pass: "forward", .. } if node == "f"),
        "{err:?}"
    );

    let mut g = Graph::<f64>::new();
    let (x, w, b) = (
        g.input("X").unwrap(),
        g.input("W").unwrap(),
        g.input("b").unwrap(),
    );
    let h = g.op("h", Op::Linear, &[x, w, b]).unwrap();
    let cost = g.op("cost", Op::Sum, &[h]).unwrap();
    g.set_check_finite(true);
    let order = g
        .topological_sort([
            (x, ArrayD::from_elem(vec![2, 1], 1e308)),
            (w, array![[1e-308]].into_dyn()),
            (b, array![0.0].into_dyn()),
        ])
        .unwrap();
    let err = g.forward_and_backward(&order, cost).unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, pass: "backward", .. } if node == "W"),
        "{err:?}"
    );
}

/// Old code: the Graph said "`W` produced a non-finite value (NaN) at flat index 1".
#[test]
fn the_runtime_graph_names_a_nan_param_with_row_and_column() {
    let mut g = Graph::<f64>::new();
    let (x, w, b) = (
        g.input("X").unwrap(),
        g.input("W").unwrap(),
        g.input("b").unwrap(),
    );
    let h = g.op("h", Op::Linear, &[x, w, b]).unwrap();
    let cost = g.op("cost", Op::Sum, &[h]).unwrap();
    g.set_check_finite(true);
    let order = g
        .topological_sort([
            (x, array![[1.0, 2.0]].into_dyn()),
            (w, array![[1.0], [f64::NAN]].into_dyn()),
            (b, array![0.0].into_dyn()),
        ])
        .unwrap();
    let err = g.forward_and_backward(&order, cost).unwrap_err();
    assert_eq!(
        err,
        Error::NonFinite {
            node: "W".into(),
            pass: "forward",
            leaf: true,
            index: vec![1, 0],
            value: "NaN".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "`W` holds a non-finite value (NaN) at row 1, column 0, read by the forward pass: it was \
         fed or set that way"
    );
}

/// Old code: "`f` produced a non-finite value (NaN) at flat index 0": the param `W` is NaN,
/// but generated code checks only the inputs it reads and the values it computes.
///
/// Needs the generated forward to check, in check mode, every param it reads before its first
/// kernel call with `rt::check_finite_leaf` (as it checks inputs): see the rtfix report.
#[test]
fn a_nan_param_is_named_not_its_consumer() {
    let mut n = net(array![[1.0], [2.0]].into_dyn(), f64::NAN);
    n.set_check_finite(true);
    assert_eq!(
        n.forward().unwrap_err(),
        Error::NonFinite {
            node: "W".into(),
            pass: "forward",
            leaf: true,
            index: vec![0, 0],
            value: "NaN".into()
        }
    );
}

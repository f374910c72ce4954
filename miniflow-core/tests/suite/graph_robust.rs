//! Regression tests for the runtime [`Graph`]'s once-panicking and once-wrong-but-`Ok` calls
//! (issue 8, sections 3 and 4): each is now a typed error, and a call that fails changes
//! nothing.

use miniflow_core::ndarray::{array, ArrayD, IxDyn};
use miniflow_core::network::{DimSpec, NetworkSpec, NodeKind, NodeSpec};
use miniflow_core::{Error, Graph, NodeId, Op, Result};
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, failing the test with `what` if it panics.
#[track_caller]
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what} panicked"))
}

fn zeros(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::zeros(IxDyn(shape))
}

/// `cost = mse(y, linear(X, W, b))` with a batch of 2; returns the graph, its leaves, the
/// linear, the cost and the order.
struct Lin {
    g: Graph<f64>,
    x: NodeId,
    y: NodeId,
    w: NodeId,
    b: NodeId,
    f: NodeId,
    cost: NodeId,
    order: Vec<NodeId>,
}

fn lin() -> Result<Lin> {
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("X")?, g.input("y")?);
    let (w, b) = (g.input("W")?, g.input("b")?);
    let f = g.op("f", Op::Linear, &[x, w, b])?;
    let cost = g.op("cost", Op::Mse, &[y, f])?;
    let order = g.topological_sort([
        (x, array![[1., 2.], [3., 4.]].into_dyn()),
        (y, array![1., 0.].into_dyn()),
        (w, array![[0.5], [-0.5]].into_dyn()),
        (b, array![0.1].into_dyn()),
    ])?;
    Ok(Lin {
        g,
        x,
        y,
        w,
        b,
        f,
        cost,
        order,
    })
}

fn bits(g: &Graph<f64>, ids: &[NodeId]) -> Vec<Vec<u64>> {
    ids.iter()
        .map(|&id| {
            let v = g.value(id).map(|v| v.iter().map(|x| x.to_bits()).collect());
            let d = g
                .gradient(id)
                .map(|v| v.iter().map(|x| x.to_bits()).collect());
            [v.unwrap_or_default(), vec![u64::MAX], d.unwrap_or_default()].concat()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Section 3: panics.
// ---------------------------------------------------------------------------------------------

/// Old code: the forward before `replace_arg` still counted as fresh, and backward ran the
/// kernels on a `[3, 3]` weight with the `[2, 1]` weight's activations (`Ok`, or a panic).
#[test]
fn replace_arg_then_backward_needs_a_new_forward() -> Result<()> {
    let mut l = lin()?;
    let v = l.g.input("V")?;
    l.g.set_value(v, zeros(&[3, 3]))?;
    l.g.forward_order(&l.order)?;
    l.g.replace_arg(l.f, 1, v)?;
    let r = no_panic("backward", || l.g.backward_order(&l.order, l.cost));
    assert_eq!(r, Err(Error::BackwardBeforeForward));
    // Same shapes, only rewired: still the old forward, still an error.
    let mut l = lin()?;
    let v = l.g.input("V")?;
    l.g.set_value(v, array![[1.0], [1.0]].into_dyn())?;
    l.g.forward_order(&l.order)?;
    l.g.replace_arg(l.f, 1, v)?;
    assert_eq!(
        l.g.backward_order(&l.order, l.cost),
        Err(Error::BackwardBeforeForward)
    );
    // A new sort and forward of the rewired graph make it right again.
    let order = l.g.topological_sort([
        (l.x, array![[1., 2.], [3., 4.]].into_dyn()),
        (l.y, array![1., 0.].into_dyn()),
        (v, array![[1.0], [1.0]].into_dyn()),
        (l.b, array![0.1].into_dyn()),
    ])?;
    l.g.forward_and_backward(&order, l.cost)?;
    assert!(l.g.gradient(v).is_ok());
    Ok(())
}

/// Old code: a kernel panicked (the linear's stored value had 2 rows, X had 5).
#[test]
fn a_new_shape_and_a_partial_forward_do_not_reach_the_kernels() -> Result<()> {
    let mut l = lin()?;
    l.g.forward_order(&l.order)?;
    l.g.set_value(l.x, zeros(&[5, 2]))?;
    l.g.forward_order(&[l.y])?; // a partial forward that skips the linear
    let r = no_panic("backward", || l.g.backward_order(&l.order, l.cost));
    assert_eq!(r, Err(Error::BackwardBeforeForward));
    // Also with the same shape: the gradients would be those of the old X.
    let mut l = lin()?;
    l.g.forward_order(&l.order)?;
    l.g.set_value(l.x, array![[9., 9.], [9., 9.]].into_dyn())?;
    assert_eq!(
        l.g.backward_order(&l.order, l.cost),
        Err(Error::BackwardBeforeForward)
    );
    // An update of a trainable makes the activations stale as well.
    let mut l = lin()?;
    l.g.forward_and_backward(&l.order, l.cost)?;
    l.g.sgd_update(&[l.w], 0.1)?;
    assert_eq!(
        l.g.backward_order(&l.order, l.cost),
        Err(Error::BackwardBeforeForward)
    );
    // A partial forward that does recompute everything the cost needs is fine.
    l.g.forward_order(&[l.f, l.cost])?;
    l.g.backward_order(&l.order, l.cost)?;
    Ok(())
}

/// A backward over an order that does not fit the graph is an error, not wrong gradients.
#[test]
fn backward_checks_its_order() -> Result<()> {
    let mut l = lin()?;
    l.g.forward_order(&l.order)?;
    let without_f: Vec<NodeId> = l.order.iter().copied().filter(|&i| i != l.f).collect();
    let err = l.g.backward_order(&without_f, l.cost).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { what, .. } if what.contains("`f`")),
        "{err}"
    );
    let mut twice = l.order.clone();
    twice.insert(4, l.f);
    assert!(matches!(
        l.g.backward_order(&twice, l.cost),
        Err(Error::InvalidArgument { .. })
    ));
    let mut swapped = l.order.clone();
    let k = swapped.iter().position(|&i| i == l.f).unwrap_or(0);
    swapped.swap(k, 0);
    let err = l.g.backward_order(&swapped, l.cost).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { what, .. } if what.contains("before its argument")),
        "{err}"
    );
    assert!(matches!(
        l.g.forward_order(&swapped),
        Err(Error::InvalidArgument { .. })
    ));
    Ok(())
}

/// Old code: the helpers took any id; one past the end panicked later (index out of bounds),
/// and one in range silently named another graph's node.
#[test]
fn ids_of_another_graph_are_errors_in_every_builder() -> Result<()> {
    let mut other = Graph::<f64>::new();
    let mut far = other.input("o0")?;
    for k in 1..10 {
        far = other.input(format!("o{k}"))?;
    }
    let near = other.find("o0")?;
    let mut g = Graph::<f64>::new();
    let x = g.input("x")?;
    for foreign in [far, near] {
        let want = Err(Error::ForeignNode {
            id: foreign.to_string(),
        });
        assert_eq!(no_panic("sigmoid", || g.sigmoid("s", foreign)), want);
        assert_eq!(g.linear("l", x, foreign, x), want);
        assert_eq!(g.add("a", foreign, x), want);
        assert_eq!(g.mse("m", x, foreign), want);
        assert_eq!(g.leaky_relu("r", foreign, 0.1), want);
        assert_eq!(g.softmax_cross_entropy("ce", x, foreign), want);
        assert_eq!(g.op("o", Op::Tanh, &[foreign]), want.clone());
        assert_eq!(g.set_value(foreign, zeros(&[1])), want.clone().map(drop));
        assert_eq!(g.replace_arg(foreign, 0, x), want.clone().map(drop));
        assert_eq!(
            g.topological_sort([(foreign, zeros(&[1]))]).map(drop),
            want.clone().map(drop)
        );
        assert_eq!(g.forward_order(&[foreign]), want.clone().map(drop));
        assert_eq!(g.sgd_update(&[foreign], 0.1), want.clone().map(drop));
        assert_eq!(g.value(foreign).map(drop), want.clone().map(drop));
        assert_eq!(g.gradient(foreign).map(drop), want.clone().map(drop));
        assert_eq!(g.set_loss(foreign), want.clone().map(drop));
        assert_eq!(g.name(foreign), None);
    }
    assert_eq!(g.len(), 1, "a failed builder added a node");
    let err = g.sigmoid("err", far).unwrap_err();
    assert!(err.to_string().contains("another `Graph`"), "{err}");
    // A clone accepts the original's ids for the nodes they share, not for later ones.
    let mut c = g.clone();
    let s = c.sigmoid("s", x)?;
    assert_eq!(c.name(s), Some("s"));
    let t = g.tanh("t", x)?;
    assert!(matches!(c.sigmoid("u", t), Err(Error::ForeignNode { .. })));
    assert!(matches!(g.sigmoid("u", s), Err(Error::ForeignNode { .. })));
    Ok(())
}

/// Old code: `ArrayD::zeros` panicked on the `[2^32, 2^32]` result.
#[test]
fn zero_size_dims_whose_product_overflows_are_an_error() -> Result<()> {
    let mut g = Graph::<f64>::new();
    let (a, b) = (g.input("a")?, g.input("b")?);
    let _m = g.matmul("m", a, b)?;
    let r = no_panic("sort and forward", || {
        g.topological_sort([(a, zeros(&[1 << 32, 0])), (b, zeros(&[0, 1 << 32]))])
    });
    assert_eq!(
        r,
        Err(Error::EmptyBatch {
            node: "a".into(),
            dim: "axis 1".into(),
            found: vec![1 << 32, 0]
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section 4: wrong results returned as `Ok`.
// ---------------------------------------------------------------------------------------------

/// Old code: "input `a` was not fed".
#[test]
fn a_self_loop_is_reported_as_a_cycle() -> Result<()> {
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("x")?, g.input("y")?);
    let a = g.op("a", Op::Sigmoid, &[x])?;
    let _c = g.op("c", Op::Mse, &[y, a])?;
    g.replace_arg(a, 0, a)?;
    let feed = [(x, array![1.0].into_dyn()), (y, array![1.0].into_dyn())];
    let err = g.topological_sort(feed.clone()).unwrap_err();
    assert_eq!(
        err,
        Error::Cycle {
            path: vec!["a".into(), "a".into()]
        }
    );
    assert_eq!(err.to_string(), "the graph has a cycle: a -> a");
    // A longer cycle behind an argument that no feed reaches.
    let mut g = Graph::<f64>::new();
    let (x, y) = (g.input("x")?, g.input("y")?);
    let p = g.op("p", Op::Sigmoid, &[x])?;
    let q = g.op("q", Op::Tanh, &[p])?;
    let _c = g.op("c", Op::Mse, &[y, q])?;
    g.replace_arg(p, 0, q)?;
    assert_eq!(
        g.topological_sort([(x, array![1.0].into_dyn()), (y, array![1.0].into_dyn())]),
        Err(Error::Cycle {
            path: vec!["p".into(), "q".into(), "p".into()]
        })
    );
    Ok(())
}

/// Old code: the second `x` was created and silently unreachable by name.
#[test]
fn duplicate_names_are_errors() -> Result<()> {
    let mut g = Graph::<f64>::new();
    let x = g.input("x")?;
    let dup = Err(Error::DuplicateNode { name: "x".into() });
    assert_eq!(g.input("x"), dup);
    assert_eq!(g.op("x", Op::Sigmoid, &[x]), dup);
    assert_eq!(g.len(), 1);
    assert_eq!(
        g.input("x").unwrap_err().to_string(),
        "a node named `x` already exists; every node needs its own name"
    );
    // Every builder takes the node's name: errors, DOT and the spec show it.
    let s = g.sigmoid("s", x)?;
    assert_eq!(g.name(s), Some("s"));
    assert_eq!(
        g.tanh("s", x),
        Err(Error::DuplicateNode { name: "s".into() })
    );
    assert!(matches!(g.input(""), Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        g.param("", &[1]),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(g.len(), 2);

    // From a spec.
    let leaf = |kind| NodeSpec {
        name: "x".into(),
        kind,
        shape: Some(vec![DimSpec::Fixed(1)].into()),
        args: Cow::Borrowed(&[]),
        attrs: Cow::Borrowed(&[]),
        doc: "".into(),
    };
    let spec = NetworkSpec {
        name: "Dup".into(),
        nodes: vec![leaf(NodeKind::Input { grad: false }), leaf(NodeKind::Param)].into(),
        loss: "x".into(),
        outputs: Cow::Borrowed(&[]),
    };
    assert_eq!(Graph::<f64>::from_spec(&spec).map(drop), dup.map(drop));
    Ok(())
}

/// Old code: `z` was updated, then `t` failed.
#[test]
fn a_failed_sgd_update_changes_nothing() -> Result<()> {
    let mut g = Graph::<f64>::new();
    let (x, y, z, t) = (g.input("x")?, g.input("y")?, g.input("z")?, g.input("t")?);
    let s = g.op("s", Op::Mul, &[x, z])?;
    let c = g.op("c", Op::Mse, &[y, s])?;
    let order = g.topological_sort([
        (x, array![1.0].into_dyn()),
        (y, array![2.0].into_dyn()),
        (z, array![3.0].into_dyn()),
        (t, array![3.0].into_dyn()),
    ])?;
    g.forward_and_backward(&order, c)?;
    let all = [x, y, z, t, s, c];
    let before = bits(&g, &all);
    let err = g.sgd_update(&[z, t], 0.1).unwrap_err();
    assert!(
        matches!(&err, Error::NoGradient { name, .. } if name == "t"),
        "{err}"
    );
    assert_eq!(bits(&g, &all), before, "a failed update changed a value");
    for lr in [f64::NAN, f64::INFINITY] {
        assert!(matches!(
            g.sgd_update(&[z], lr),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert!(matches!(
        g.sgd_update(&[z, z], 0.1),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(bits(&g, &all), before);
    g.sgd_update(&[z], 0.1)?;
    assert_ne!(bits(&g, &all), before);
    Ok(())
}

/// A failed sort, forward or backward leaves every value and gradient as it was.
#[test]
fn failed_passes_change_nothing() -> Result<()> {
    let mut l = lin()?;
    l.g.forward_and_backward(&l.order, l.cost)?;
    let all = [l.x, l.y, l.w, l.b, l.f, l.cost];
    let before = bits(&l.g, &all);
    // A sort with one bad value sets none of the others.
    let r =
        l.g.topological_sort([(l.x, zeros(&[3, 2])), (l.y, zeros(&[0]))]);
    assert!(matches!(r, Err(Error::EmptyBatch { .. })), "{r:?}");
    assert_eq!(bits(&l.g, &all), before);
    // A forward that fails at the cost (3 targets, 2 predictions) keeps the old `f`.
    l.g.set_value(l.y, zeros(&[3]))?;
    let before = bits(&l.g, &all);
    assert!(matches!(
        l.g.forward_and_backward(&l.order, l.cost),
        Err(Error::OpShape { .. })
    ));
    assert_eq!(bits(&l.g, &all), before);
    // A backward that fails in check mode (dW overflows) keeps the old values and gradients.
    let mut l = lin()?;
    l.g.forward_and_backward(&l.order, l.cost)?;
    l.g.set_value(l.x, ArrayD::from_elem(IxDyn(&[2, 2]), 1e308))?;
    l.g.set_value(l.w, array![[1e-308], [0.]].into_dyn())?;
    l.g.set_value(l.y, array![-5., -5.].into_dyn())?;
    l.g.set_check_finite(true);
    let before = bits(&l.g, &all);
    let err = l.g.forward_and_backward(&l.order, l.cost).unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { node, pass: "backward", .. } if node == "W"),
        "{err}"
    );
    assert_eq!(bits(&l.g, &all), before);
    Ok(())
}

/// Old code: `op_with(.., &[1e39])` was accepted in f32 and the slope became `inf`.
#[test]
fn literals_are_checked_in_the_element_type() -> Result<()> {
    let mut g = Graph::<f32>::new();
    let x = g.input("x")?;
    let err = g.op_with("h", Op::LeakyRelu, &[x], &[1e39]).unwrap_err();
    assert!(
        matches!(&err, Error::BadLiteral { node, message } if node == "h" && message.contains("f32")),
        "{err}"
    );
    assert!(matches!(
        g.leaky_relu("h", x, -1e39),
        Err(Error::BadLiteral { .. })
    ));
    g.leaky_relu("h", x, 1e38)?;
    // f64 takes it.
    let mut g = Graph::<f64>::new();
    let x = g.input("x")?;
    g.op_with("h", Op::LeakyRelu, &[x], &[1e39])?;
    Ok(())
}

/// Old code: `W` "produced" the NaN, at "flat index 1".
#[test]
fn check_mode_names_a_nan_leaf_with_row_and_column() -> Result<()> {
    let mut g = Graph::<f64>::new();
    let (x, w, b) = (g.input("X")?, g.input("W")?, g.input("b")?);
    let h = g.op("h", Op::Linear, &[x, w, b])?;
    let c = g.op("c", Op::Sum, &[h])?;
    g.set_check_finite(true);
    let order = g.topological_sort([
        (x, array![[1.0, 2.0]].into_dyn()),
        (w, array![[1.0], [f64::NAN]].into_dyn()),
        (b, array![0.0].into_dyn()),
    ])?;
    let want = Error::NonFinite {
        node: "W".into(),
        pass: "forward",
        leaf: true,
        index: vec![1, 0],
        value: "NaN".into(),
    };
    assert_eq!(g.forward_and_backward(&order, c), Err(want.clone()));
    assert_eq!(
        want.to_string(),
        "`W` holds a non-finite value (NaN) at row 1, column 0, read by the forward pass: it was fed or set that way"
    );
    // A partial forward that leaves `W` out still names it, not `h`.
    assert_eq!(g.forward_order(&[h, c]), Err(want));
    Ok(())
}

/// Old code: `Ok(NaN)`; generated networks say `EmptyBatch`.
#[test]
fn an_empty_batch_is_an_error() -> Result<()> {
    let mut g = Graph::<f64>::new();
    let (y, a) = (g.input("y")?, g.input("a")?);
    let c = g.mse("c", y, a)?;
    let r = g.topological_sort([(y, zeros(&[0])), (a, zeros(&[0, 1]))]);
    let err = r.unwrap_err();
    assert_eq!(
        err,
        Error::EmptyBatch {
            node: "y".into(),
            dim: "axis 0".into(),
            found: vec![0]
        }
    );
    assert_eq!(
        err.to_string(),
        "empty batch: `y` was fed with axis 0 = 0 ([0]); feed at least one row"
    );
    assert!(matches!(
        g.set_value(a, zeros(&[0, 1])),
        Err(Error::EmptyBatch { .. })
    ));
    assert!(g.value(y).is_err() && g.value(c).is_err());
    Ok(())
}

/// One-hot labels (or a column of labels) are told apart from class indices.
#[test]
fn one_hot_labels_get_a_hint() -> Result<()> {
    for (labels, hint) in [
        (array![[0., 1.], [1., 0.]].into_dyn(), "argmax"),
        (array![[1.], [0.]].into_dyn(), ".column(0)"),
    ] {
        let mut g = Graph::<f64>::new();
        let (z, l) = (g.input("z")?, g.input("labels")?);
        let ce = g.op("ce", Op::SoftmaxCrossEntropy, &[z, l])?;
        let order = g.topological_sort([(z, zeros(&[2, 2])), (l, labels)])?;
        let err = g.forward_and_backward(&order, ce).unwrap_err();
        assert!(
            matches!(&err, Error::OpShape { node, message } if node == "ce" && message.contains(hint)),
            "{err}"
        );
    }
    Ok(())
}

//! Numerical care in the runtime graph: sigmoid, tanh, softmax, relu, leaky_relu and the
//! cross-entropy losses on inputs of ±1000 (and larger) give finite values and gradients, in
//! `f64` and `f32`. (`tests-gen/tests/numerics.rs` checks the same through generated
//! networks.)

use miniflow_core::{Graph, NodeId, Op, Scalar};
use ndarray::{ArrayD, IxDyn};

/// `[[m, -m, m/2], [-m/2, 0, m]]`.
fn huge<T: Scalar>(m: f64) -> ArrayD<T> {
    ArrayD::from_shape_vec(
        IxDyn(&[2, 3]),
        [m, -m, m / 2.0, -m / 2.0, 0.0, m]
            .iter()
            .map(|&v| T::from_f64(v))
            .collect(),
    )
    .expect("6 values")
}

fn targets<T: Scalar>() -> ArrayD<T> {
    ArrayD::from_shape_vec(
        IxDyn(&[2, 3]),
        [1.0, 0.0, 1.0, 0.0, 0.5, 1.0]
            .iter()
            .map(|&v| T::from_f64(v))
            .collect(),
    )
    .expect("6 values")
}

/// Runs `g` from `feed`, checks every value and gradient is finite, returns the loss.
fn run_finite<T: Scalar>(
    what: &str,
    mut g: Graph<T>,
    feed: Vec<(NodeId, ArrayD<T>)>,
    cost: NodeId,
    checked: &[NodeId],
) -> T {
    let order = g
        .topological_sort(feed)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let loss = g
        .forward_and_backward(&order, cost)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(loss.is_finite(), "{what}: loss {loss}");
    for &id in &order {
        let v = g.value(id).expect("computed");
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{what}: value of {id}: {v}"
        );
    }
    for &id in checked {
        let d = g
            .gradient(id)
            .unwrap_or_else(|_| panic!("{what}: no gradient for {id}"));
        assert!(
            d.iter().all(|x| x.is_finite()),
            "{what}: gradient of {id}: {d}"
        );
    }
    loss
}

/// `mse(y, op(x))` and `mse(y, op(linear(x, w, b)))` for each activation and softmax, `x` of
/// magnitude `m` (the unbounded relus only up to 1e4).
fn activations<T: Scalar>(m: f64) -> usize {
    let mut n = 0;
    for (name, attrs) in [
        ("sigmoid", &[][..]),
        ("tanh", &[]),
        ("softmax", &[]),
        ("relu", &[]),
        ("leaky_relu", &[0.01]),
    ] {
        let Some(op) = Op::from_name(name) else {
            continue;
        };
        if m > 1e4 && name.contains("relu") {
            continue; // unbounded: relu(1e300)² overflows, as it should
        }
        // Straight on the input.
        let mut g = Graph::<T>::new();
        let (x, y) = (g.input("x").unwrap(), g.input("y").unwrap());
        let a = g.op_with("a", op, &[x], attrs).expect("well formed");
        let c = g.mse("c", y, a).unwrap();
        let what = format!("{name}(±{m:e}) {}", std::any::type_name::<T>());
        run_finite(&what, g, vec![(x, huge(m)), (y, targets())], c, &[x, y, a]);
        // Behind a linear with weights that make the logits larger still.
        let mut g = Graph::<T>::new();
        let (x, y, w, b) = (
            g.input("x").unwrap(),
            g.input("y").unwrap(),
            g.input("w").unwrap(),
            g.input("b").unwrap(),
        );
        let h = g.linear("h", x, w, b).unwrap();
        let a = g.op_with("a", op, &[h], attrs).expect("well formed");
        let c = g.mse("c", y, a).unwrap();
        let w0 = ArrayD::from_shape_fn(IxDyn(&[3, 3]), |i| {
            T::from_f64(if i[0] == i[1] { 3.0 } else { -1.0 })
        });
        run_finite(
            &format!("{what} after linear"),
            g,
            vec![
                (x, huge(m)),
                (y, targets()),
                (w, w0),
                (b, ArrayD::zeros(IxDyn(&[3]))),
            ],
            c,
            &[x, w, b, h],
        );
        n += 2;
    }
    n
}

/// The cross-entropy losses on saturated inputs.
fn losses<T: Scalar>(m: f64) -> usize {
    let mut n = 0;
    let what = |name: &str| format!("{name}(±{m:e}) {}", std::any::type_name::<T>());
    if let (Some(bce), Some(sigmoid)) = (Op::from_name("bce"), Op::from_name("sigmoid")) {
        // sigmoid(±1000) is exactly 0 or 1: bce must clamp it.
        let mut g = Graph::<T>::new();
        let (x, y) = (g.input("x").unwrap(), g.input("y").unwrap());
        let p = g.op("p", sigmoid, &[x]).expect("well formed");
        let c = g.op("c", bce, &[y, p]).expect("well formed");
        run_finite(
            &what("bce"),
            g,
            vec![(x, huge(m)), (y, targets())],
            c,
            &[x, y, p],
        );
        n += 1;
    }
    if let Some(op) = Op::from_name("bce_logits") {
        let mut g = Graph::<T>::new();
        let (z, y) = (g.input("z").unwrap(), g.input("y").unwrap());
        let c = g.op("c", op, &[y, z]).expect("well formed");
        run_finite(
            &what("bce_logits"),
            g,
            vec![(z, huge(m)), (y, targets())],
            c,
            &[y, z],
        );
        n += 1;
    }
    if let Some(op) = Op::from_name("softmax_cross_entropy") {
        let mut g = Graph::<T>::new();
        let (z, labels) = (g.input("z").unwrap(), g.input("labels").unwrap());
        let c = g.op("c", op, &[z, labels]).expect("well formed");
        let l = ArrayD::from_shape_vec(IxDyn(&[2]), vec![T::from_f64(1.0), T::from_f64(2.0)])
            .expect("2 labels");
        run_finite(
            &what("softmax_cross_entropy"),
            g,
            vec![(z, huge(m)), (labels, l)],
            c,
            &[z],
        );
        n += 1;
    }
    n
}

#[test]
fn sigmoid_of_plus_minus_1000_is_exactly_0_and_1() {
    let mut g = Graph::<f64>::new();
    let x = g.input("x").unwrap();
    let s = g.sigmoid("s", x).unwrap();
    let y = g.input("y").unwrap();
    let c = g.mse("c", y, s).unwrap();
    let order = g
        .topological_sort([
            (
                x,
                ArrayD::from_shape_vec(IxDyn(&[2]), vec![1000.0, -1000.0]).unwrap(),
            ),
            (
                y,
                ArrayD::from_shape_vec(IxDyn(&[2]), vec![0.0, 1.0]).unwrap(),
            ),
        ])
        .unwrap();
    let loss = g.forward_and_backward(&order, c).unwrap();
    assert_eq!(g.value(s).unwrap().as_slice().unwrap(), &[1.0, 0.0]);
    assert_eq!(loss, 1.0);
    // Saturated: the derivative s(1 - s) is exactly 0, not NaN.
    assert_eq!(g.gradient(x).unwrap().as_slice().unwrap(), &[0.0, 0.0]);
}

#[test]
fn activations_and_losses_stay_finite_on_huge_inputs() {
    for m in [1000.0, 1e4] {
        assert!(activations::<f64>(m) >= 2 && activations::<f32>(m) >= 2);
        losses::<f64>(m);
        losses::<f32>(m);
    }
    // Beyond where exp overflows in either type.
    assert!(activations::<f64>(1e300) >= 2);
    assert!(activations::<f32>(1e30) >= 2);
}

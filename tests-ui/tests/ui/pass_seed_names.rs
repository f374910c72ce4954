// The seed's capitalized names (X, W1, b1, W2, b2) compile without a single warning.
#![deny(warnings)]

use miniflow::ndarray::array;
use miniflow::Network;

miniflow::network! {
    /// A two-layer network with the seed's names.
    pub struct TwoLayer {
        #[grad]
        input X: [batch, 2];
        input y: [batch];
        param W1: [2, 3];
        param b1: [3];
        param W2: [3, 1];
        param b2: [1];

        l1 = linear(X, W1, b1);
        s1 = sigmoid(l1);
        l2 = linear(s1, W2, b2);
        output s2 = sigmoid(l2);
        loss cost = mse(y, s2);
    }
}

fn main() {
    let mut net = TwoLayer::new();
    let _ = TwoLayer::default();
    net.feed("X", &array![[1., 2.], [3., 4.]]).unwrap();
    net.feed("y", &array![1., 0.]).unwrap();
    net.set_param(
        "W1",
        array![[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]].view().into_dyn(),
    )
    .unwrap();
    net.set_param("b1", array![0.1, 0.2, 0.3].view().into_dyn())
        .unwrap();
    net.set_param("W2", array![[1.], [-1.], [0.5]].view().into_dyn())
        .unwrap();
    net.set_param("b2", array![0.].view().into_dyn()).unwrap();
    let cost = net.forward_backward().unwrap();
    assert!(cost.is_finite() && cost > 0.0);
    assert_eq!(net.grad("X").unwrap().shape(), &[2, 2]);
    assert_eq!(net.evaluate("s2").unwrap().shape(), &[2, 1]);
}

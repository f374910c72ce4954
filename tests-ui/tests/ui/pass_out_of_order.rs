// Statements may come in any order: these are the course network's, reversed. The macro
// orders the computation, and the result matches a loss and gradients worked out by hand.
use miniflow::ndarray::array;
use miniflow::Network;

miniflow::network! {
    pub struct Reversed {
        loss cost = mse(y, a);
        output a = sigmoid(f);
        f = linear(X, W, b);
        param b: [1];
        param W: [2, 1];
        input y: [batch];
        input X: [batch, 2];
    }
}

fn main() {
    let mut net = Reversed::new();
    net.feed("X", &array![[1., 2.], [2., 4.]]).unwrap();
    net.feed("y", &array![1., 0.]).unwrap();
    net.set_param("W", array![[2.], [-1.]].view().into_dyn())
        .unwrap();
    net.set_param("b", array![0.].view().into_dyn()).unwrap();
    let cost = net.forward_backward().unwrap();

    // By hand: f = X·W + b = [0, 0], so a = sigmoid(f) = [0.5, 0.5], and
    // cost = ((1 - 0.5)² + (0 - 0.5)²) / 2 = 0.25.
    assert_eq!(cost, 0.25);
    // d cost/d a = 2 (a - y) / 2 = [-0.5, 0.5]; d a/d f = a (1 - a) = 0.25, so
    // d cost/d f = [-0.125, 0.125]; d cost/d W = Xᵀ · d f = [0.125, 0.25]; d cost/d b = 0.
    assert_eq!(net.grad("W").unwrap(), array![[0.125], [0.25]].into_dyn());
    assert_eq!(net.grad("b").unwrap(), array![0.].into_dyn());
    assert_eq!(net.evaluate("a").unwrap(), array![[0.5], [0.5]].into_dyn());
}

use miniflow::ndarray::array;
use miniflow::Network;

miniflow::network! {
    /// The seed's test network.
    pub struct Course {
        #[grad] input X: [batch, 2];
        #[grad] input y: [batch];
        param W: [2, 1];
        param b: [1];

        f = linear(X, W, b);
        output a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

#[test]
fn seed_backprop() {
    let mut net = Course::new();
    net.feed("X", &array![[-1., -2.], [-1., -2.]]).unwrap();
    net.feed("y", &array![1., 2.]).unwrap();
    net.set_param("W", array![[2.], [3.]].view().into_dyn())
        .unwrap();
    net.set_param("b", array![-3.].view().into_dyn()).unwrap();
    let cost = net.forward_backward().unwrap();
    assert!((cost - 2.4999498960133932).abs() < 1e-12);
    println!("{}", net.grad("X").unwrap());
}

// The typed API: handles for every node, reads at their static rank, no string names.
use miniflow::ndarray::{array, ArrayView0, ArrayView1, ArrayView2};
use miniflow::Network;

miniflow::network! {
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

fn main() -> miniflow::Result<()> {
    let mut net = Course::zeroed();
    net.feed(Course::X, &array![[-1., -2.], [-1., -2.]])?;
    net.feed(Course::y, &array![1., 2.])?;
    net.set(Course::W, &array![[2.], [3.]])?;
    net.set(Course::b, &array![-3.])?;
    let cost = net.forward_backward()?;
    assert!((cost - 2.4999498960133932).abs() < 1e-12);
    let dw: ArrayView2<f64> = net.grad(Course::W)?;
    assert!((dw[[0, 0]] - 5.01028709e-05).abs() < 1e-12);
    let db: ArrayView1<f64> = net.grad(Course::b)?;
    assert!((db[0] + 5.01028709e-05).abs() < 1e-12);
    let c: ArrayView0<f64> = net.value(Course::cost)?;
    assert_eq!(c[()], cost);
    let a: ArrayView2<f64> = net.evaluate(Course::a)?;
    assert_eq!(a.dim(), (2, 1));
    Ok(())
}

// An input is fed, not set: setting it through its handle is a compile error.
use miniflow::ndarray::array;
use miniflow::Network;

miniflow::network! {
    pub struct Course {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() -> miniflow::Result<()> {
    let mut net = Course::new();
    net.set(Course::y, &array![1.0, 2.0])?;
    Ok(())
}

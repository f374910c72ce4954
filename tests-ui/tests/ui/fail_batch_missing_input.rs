// A borrowed batch names every input: one left out is a compile error, not a run-time one.
use miniflow::ndarray::array;

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
    let x = array![[1.0, 2.0]];
    net.sgd_step_on(CourseBatch { X: x.view() }, 0.1)?;
    Ok(())
}

// A node where the op takes a number: the slope of `leaky_relu` is fixed in the source.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch, 1];
        input slope: [batch, 1];
        param W: [2, 1];
        h = matmul(X, W);
        o = leaky_relu(h, slope);
        loss cost = mse(y, o);
    }
}

fn main() {}

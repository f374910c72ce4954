// A slope too large for f64: it would be infinite. The error spans the whole literal, sign
// included.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch, 1];
        param W: [2, 1];
        h = matmul(X, W);
        o = leaky_relu(h, -1e999);
        loss cost = mse(y, o);
    }
}

fn main() {}

// `matmul(a, b)` needs a: [m, k] and b: [k, n]; here k is 3 for `X` and 2 for `W`.
miniflow::network! {
    pub struct Net {
        input X: [batch, 3];
        input y: [batch, 1];
        param W: [2, 1];
        h = matmul(X, W);
        loss cost = mse(y, h);
    }
}

fn main() {}

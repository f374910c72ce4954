// `sum` gives a scalar ([]); a matrix product needs rank 2.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [1, 1];
        param W: [1, 1];
        s = sum(X);
        h = matmul(s, W);
        loss cost = mse(y, h);
    }
}

fn main() {}

// Input `z` is declared but never used.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        input z: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}

// A misspelled op: the error points at it and suggests the op it is closest to.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        a = sigmod(f);
        loss cost = mse(y, a);
    }
}

fn main() {}

// `add` sums arrays of one shape; `h2` has a different one.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W1: [2, 1];
        param b1: [1];
        param W2: [2, 3];
        param b2: [3];
        h1 = linear(X, W1, b1);
        h2 = linear(X, W2, b2);
        s = add(h1, h2);
        loss cost = mse(y, s);
    }
}

fn main() {}

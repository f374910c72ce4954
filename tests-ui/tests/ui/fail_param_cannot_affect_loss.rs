// `V` and `c` only feed an output, so the loss never trains them.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        param V: [2, 1];
        param c: [1];
        f = linear(X, W, b);
        output g = linear(X, V, c);
        loss cost = mse(y, f);
    }
}

fn main() {}

// A param's shape must be fixed at compile time; only inputs take named dims.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, hidden];
        param b: [1];
        f = linear(X, W, b);
        loss cost = mse(y, f);
    }
}

fn main() {}

// `h` is computed but reaches neither the loss nor an output.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        h = sigmoid(f);
        loss cost = mse(y, f);
    }
}

fn main() {}

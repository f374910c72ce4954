// A param is trained, never computed.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        b = sigmoid(f);
        loss cost = mse(y, f);
    }
}

fn main() {}

// The same node name defined twice.
miniflow::network! {
    pub struct Net {
        input X: [batch, 2];
        input y: [batch];
        param W: [2, 1];
        param b: [1];
        f = linear(X, W, b);
        a = sigmoid(f);
        a = sigmoid(f);
        loss cost = mse(y, a);
    }
}

fn main() {}
